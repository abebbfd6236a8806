// A request body without a Content-Length (chunked) is counted as it streams
// in: at the first chunk past `max_body_bytes` the gateway cancels the upload
// and answers 413 in the surface's own error shape, never reading the rest.
//
// Under `wrangler dev`, the request that follows an upload its worker stopped
// reading is disturbed by the runtime itself: wrangler answers it with its own
// 503 "Your worker restarted mid-request" (or 500 "Network connection lost",
// or resets its connection), before any worker code runs. To tell that apart
// from the gateway, the same upload sequence runs against a bare JavaScript
// passthrough (the bench's, plus the same cap) under the same `wrangler dev`:
// stopping at the cap, it shows the same disturbance; reading every byte
// before answering, none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, startScriptWorker, CLIENT_TOKEN, ADMIN_PASSWORD } from '../lib/harness.mjs';
import { REQUEST_TIMEOUT_MS } from '../lib/util.mjs';

const KEY = 'ok-body-cap-1';
const PASSTHROUGH_KEY = 'ok-body-cap-passthrough';
const CAP = 64 * 1024;
const ADMIN_CAP = 1024 * 1024;
const MODEL = 'gemini-2.5-flash';
const ROUNDS = 3;
/** What wrangler dev itself answers for a request it could not hand to the worker. */
const RUNTIME_DISTURBANCE = /Your worker restarted mid-request|Network connection lost/;

let stack;
let bare;

before(async () => {
  stack = await startStack({ keys: [KEY], settings: { max_body_bytes: CAP } });
  bare = await startScriptWorker({
    script: CAPPED_PASSTHROUGH_JS,
    vars: { UPSTREAM: stack.mock.url, UPSTREAM_KEY: PASSTHROUGH_KEY, CAP: String(CAP) },
  });
});
after(async () => {
  await bare?.stop();
  await stack?.stop();
});

/**
 * The bench's passthrough (tests/bench/run.mjs) with the gateway's cap on a
 * chunked body: read chunk by chunk, counted, and at the first chunk past the
 * cap either cancelled (as the gateway does) or, with `?drain=1`, read to its
 * end and thrown away, before the 413.
 */
const CAPPED_PASSTHROUGH_JS = `
const ROUTE = /^\\/v1beta\\/models\\/[^/:]+:(generateContent|streamGenerateContent)$/;
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== 'POST' || !ROUTE.test(url.pathname)) return json(404, { error: { message: 'not found' } });
    const cap = Number(env.CAP);
    const chunks = [];
    let size = 0;
    if (request.body) {
      const reader = request.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > cap) {
          if (url.searchParams.get('drain') === '1') {
            for (;;) if ((await reader.read()).done) break;
          } else {
            await reader.cancel();
          }
          return json(413, { error: { code: 413, message: 'too large', status: 'INVALID_ARGUMENT' } });
        }
        chunks.push(value);
      }
    }
    return fetch(env.UPSTREAM + url.pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': env.UPSTREAM_KEY },
      body: new Blob(chunks),
    });
  },
};
`;

/**
 * One raw HTTP request to `base`; `chunked` sends the body in 8 KiB chunks
 * without a Content-Length. Resolves with `{ status, headers, text }`.
 */
function raw(base, { method, path, headers = {}, body, chunked = false, resetOk = false }) {
  const { hostname, port } = new URL(base);
  const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      {
        host: hostname,
        port,
        method,
        path,
        headers: {
          ...headers,
          ...(payload ? (chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': payload.length }) : {}),
        },
        timeout: REQUEST_TIMEOUT_MS,
        // A connection of its own: a kept-alive one the server is just closing
        // would fail the write with a reset that says nothing about the request.
        agent: false,
      },
      (res) => {
        answered = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    // The server may answer before it read the whole upload: the write error that follows is expected.
    // `resetOk`: a reset before any answer is what the caller wants to see (the bare
    // worker's runtime may drop an upload it stopped reading), not an error.
    req.on('error', (err) => {
      if (answered) return;
      if (resetOk && ['ECONNRESET', 'EPIPE'].includes(err.code)) resolve({ status: 0, headers: {}, text: '', reset: err.code });
      else reject(err);
    });
    if (chunked && payload) {
      for (let at = 0; at < payload.length; at += 8192) req.write(payload.subarray(at, at + 8192));
      req.end();
    } else {
      req.end(payload);
    }
  });
}

const bearer = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' };
const goog = { 'x-goog-api-key': CLIENT_TOKEN, 'content-type': 'application/json' };
const adminAuth = { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' };
const chatBody = (text) => JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: text }] });
const genBody = (text) => JSON.stringify({ contents: [{ role: 'user', parts: [{ text }] }] });
const GEN = `/v1beta/models/${MODEL}:generateContent`;

/** The uploads over the cap, one per surface, each with the shape its 413 must take. */
const UPLOADS = [
  { surface: 'openai', method: 'POST', path: '/v1/chat/completions', headers: bearer, body: chatBody('x'.repeat(3 * CAP)) },
  { surface: 'gemini', method: 'POST', path: GEN, headers: goog, body: genBody('y'.repeat(3 * CAP)) },
  { surface: 'admin', method: 'PUT', path: '/admin/api/settings', headers: adminAuth,
    body: JSON.stringify({ prompt_injection: 'z'.repeat(ADMIN_CAP + 4096) }) },
];

/** The ordinary requests that follow every upload; each must be served. */
const ORDINARY = [
  { name: 'chat', method: 'POST', path: '/v1/chat/completions', headers: bearer, body: chatBody('after'),
    ok: (b) => assert.equal(b.choices[0].message.content, 'echo: after') },
  { name: 'models', method: 'GET', path: '/v1/models', headers: bearer, ok: (b) => assert.ok(b.data.length > 0) },
  { name: 'native', method: 'POST', path: GEN, headers: goog, body: genBody('native after'),
    ok: (b) => assert.equal(b.candidates[0].content.parts.at(-1).text, 'echo: native after') },
];

/** A 413 in the surface's shape. */
function assert413(upload, res) {
  const label = `${upload.method} ${upload.path}`;
  assert.equal(res.status, 413, `${label}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/json\b/i, label);
  const { error } = JSON.parse(res.text);
  if (upload.surface === 'gemini') {
    assert.equal(error.code, 413, label);
    assert.equal(error.status, 'INVALID_ARGUMENT', label);
  } else {
    assert.equal(error.type, 'invalid_request_error', label);
    assert.equal(error.code, 'request_too_large', label);
    assert.ok('param' in error, label);
  }
  assert.match(error.message, /\d/, `${label}: the message names the limit`);
}

/**
 * The runtime's own answer to a request it lost: plain text from wrangler, no
 * worker's JSON, or a connection reset before any answer (a follower is sent
 * with `resetOk`, so a reset is seen here rather than thrown).
 */
function isRuntimeDisturbance(res) {
  if (res.reset) return true;
  return res.status >= 500 && RUNTIME_DISTURBANCE.test(res.text) && !/^\s*\{/.test(res.text);
}

/**
 * `ROUNDS` rounds of: each upload (chunked, over the cap), then `follow`
 * ordinary requests. Returns every follower's `{ round, upload, index, res }`.
 */
async function uploadRounds(base, uploads, follow, check413 = assert413) {
  const followers = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const upload of uploads) {
      check413(upload, await raw(base, { ...upload, chunked: true }));
      for (const [index, req] of follow.entries()) {
        followers.push({ round, upload: upload.path, index, name: req.name, req, res: await raw(base, { ...req, resetOk: true }) });
      }
    }
  }
  return followers;
}

/** Asserts the followers were served, but for the runtime's disturbances; returns how many those were. */
function judgeFollowers(label, followers) {
  let disturbed = 0;
  for (const { round, upload, index, name, req, res } of followers) {
    const where = `${label}: round ${round}, ${name} after ${upload}`;
    if (res.status === 200) {
      if (req.ok) req.ok(JSON.parse(res.text));
      continue;
    }
    assert.ok(isRuntimeDisturbance(res), `${where}: ${res.status} ${res.text.slice(0, 300)}`);
    // Only the first request after an upload is ever disturbed.
    assert.equal(index, 0, `${where}: disturbed, though it is not the first request after the upload`);
    disturbed += 1;
  }
  return disturbed;
}

test('a chunked body under the cap is read whole, across many chunks', async () => {
  const text = 'w'.repeat(CAP - 2048);
  const res = await raw(stack.url, { method: 'POST', path: '/v1/chat/completions', headers: bearer, body: chatBody(text), chunked: true });
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.equal(JSON.parse(res.text).choices[0].message.content, `echo: ${text}`);
  const gen = await raw(stack.url, { method: 'POST', path: GEN, headers: goog, body: genBody(text), chunked: true });
  assert.equal(gen.status, 200, gen.text.slice(0, 300));
});

let gatewayDisturbed = 0;

test(`${ROUNDS} rounds of chunked uploads over the cap on every surface: each a 413 in its shape, none upstream, and the gateway serves what follows`, async (t) => {
  const followers = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const upload of UPLOADS) {
      const callsBefore = (await stack.mockApi.calls()).length;
      assert413(upload, await raw(stack.url, { ...upload, chunked: true }));
      const reached = (await stack.mockApi.calls()).slice(callsBefore);
      assert.deepEqual(reached.map((c) => `${c.method} ${c.path}`), [], `${upload.path}: the refused upload reached the upstream`);
      for (const [index, req] of ORDINARY.entries()) {
        followers.push({ round, upload: upload.path, index, name: req.name, req, res: await raw(stack.url, { ...req, resetOk: true }) });
      }
    }
  }
  assert.equal(followers.length, ROUNDS * UPLOADS.length * ORDINARY.length);
  gatewayDisturbed = judgeFollowers('gateway', followers);
  t.diagnostic(`gateway: ${gatewayDisturbed} of ${followers.length} following requests disturbed by the runtime`);
  // Still one healthy key: no upload cooled or disabled it.
  const { keys } = await stack.admin('GET', '/keys');
  assert.equal(keys[0].enabled, true);
  assert.deepEqual((keys[0].health ?? []).filter((h) => h.cooling), []);
  // The admin upload changed no setting.
  const settings = await stack.admin('GET', '/settings');
  assert.equal(settings.max_body_bytes, CAP);
  assert.ok(!JSON.stringify(settings.prompt_injection ?? '').includes('zzzz'));
});

test('the same runtime with a bare passthrough: stopping at the cap disturbs what follows as it does for the gateway; reading every byte does not', async (t) => {
  const upload = { surface: 'gemini', method: 'POST', path: GEN, headers: { 'content-type': 'application/json' }, body: genBody('y'.repeat(3 * CAP)), resetOk: true };
  // The bare worker's own 413 is not under test; the runtime may disturb the upload itself too
  // (an answer of its own, or a reset before any answer).
  const barely413 = (u, res) => assert.ok(res.status === 413 || res.reset || isRuntimeDisturbance(res), `${u.path}: ${res.status} ${res.text.slice(0, 300)}`);
  const follow = [
    { name: 'generate', method: 'POST', path: GEN, headers: { 'content-type': 'application/json' }, body: genBody('bare after'),
      ok: (b) => assert.equal(b.candidates[0].content.parts.at(-1).text, 'echo: bare after') },
    { name: 'generate again', method: 'POST', path: GEN, headers: { 'content-type': 'application/json' }, body: genBody('bare again') },
  ];
  const stopped = judgeFollowers('bare, stopping', await uploadRounds(bare.url, [upload], follow, barely413));
  const drainedUpload = { ...upload, path: `${GEN}?drain=1` };
  const drained = judgeFollowers('bare, draining', await uploadRounds(bare.url, [drainedUpload], follow, barely413));
  t.diagnostic(`bare passthrough: ${stopped} of ${ROUNDS} disturbed when it stops at the cap, ${drained} when it drains`);
  // Reading every byte spares the next request: the trigger is the unread body.
  assert.equal(drained, 0);
  // The gateway's disturbances are the runtime's: the bare worker that stops reading shows them too.
  assert.ok(gatewayDisturbed === 0 || stopped > 0,
    `the gateway's following requests were disturbed ${gatewayDisturbed} times, a bare worker's never: the gateway's own doing`);
});

test('the gateway is healthy once the uploads are over', async () => {
  for (const req of ORDINARY) {
    // The first request may still meet the runtime's disturbance of the last upload.
    let res = await raw(stack.url, { ...req, resetOk: true });
    if (isRuntimeDisturbance(res)) res = await raw(stack.url, req);
    assert.equal(res.status, 200, `${req.name}: ${res.status} ${res.text.slice(0, 300)}`);
    req.ok(JSON.parse(res.text));
  }
});
