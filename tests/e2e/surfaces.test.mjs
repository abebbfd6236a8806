// The surfaces around chat: client auth in its four forms on both surfaces,
// /health and /healthz, the OpenAI models and embeddings routes, and the
// masked admin key listing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { startStack, CLIENT_TOKEN, ADMIN_PASSWORD } from '../lib/harness.mjs';
import { REQUEST_TIMEOUT_MS, decodeFloat32, json, upstreamCallsDuring } from '../lib/util.mjs';
import { embeddingValues } from '../mock/lib/tokens.mjs';

/** Random upstream keys, so a leaked fragment cannot appear by accident. */
const newKey = () => `ok-${randomBytes(15).toString('hex')}`;
const KEYS = [newKey(), newKey(), newKey()];
const LATER_KEY = newKey();
const SECOND_CLIENT_TOKEN = 'sk-second-token'; // the harness's other ACCESS_TOKENS entry

let stack;

before(async () => {
  // This file runs without ENCRYPTION_KEY: the plaintext fallback must work.
  stack = await startStack({ keys: KEYS, secrets: { ENCRYPTION_KEY: '' } });
});
after(async () => stack?.stop());

/** A raw request to the worker with explicit headers (no token added), bounded in time. */
const send = (method, path, { headers = {}, body } = {}) =>
  stack.call(method, path, { headers, body, token: null, timeoutMs: REQUEST_TIMEOUT_MS });

/**
 * Every 8-character window of the part of `secret` a mask hides (all but
 * the first and last 4 characters): none may appear in `text`.
 */
function assertNoSecret(text, secret, label) {
  assert.ok(!text.includes(secret), `${label}: contains a whole secret`);
  const hidden = secret.slice(4, -4);
  for (let i = 0; i + 8 <= hidden.length; i += 1) {
    const window = hidden.slice(i, i + 8);
    assert.ok(!text.includes(window), `${label}: contains the secret fragment ${window}`);
  }
}

const AUTH_FORMS = {
  'Authorization: Bearer': (t) => ({ headers: { authorization: `Bearer ${t}` }, query: '' }),
  'x-goog-api-key': (t) => ({ headers: { 'x-goog-api-key': t }, query: '' }),
  '?key=': (t) => ({ headers: {}, query: `?key=${encodeURIComponent(t)}` }),
  'x-api-key': (t) => ({ headers: { 'x-api-key': t }, query: '' }),
};

function assertOpenAiError(body, label) {
  assert.equal(typeof body.error?.message, 'string', `${label}: error.message`);
  assert.equal(typeof body.error.type, 'string', `${label}: error.type`);
  assert.ok('param' in body.error && 'code' in body.error, `${label}: param and code`);
}

function assertGeminiError(body, status, label) {
  assert.equal(body.error?.code, status, `${label}: error.code`);
  assert.equal(typeof body.error.message, 'string', `${label}: error.message`);
  assert.equal(typeof body.error.status, 'string', `${label}: error.status`);
}

// ---------------------------------------------------------------- client auth

test('OpenAI chat accepts the client token in all four forms, and the upstream sees an upstream key', async () => {
  for (const [form, make] of Object.entries(AUTH_FORMS)) {
    const { headers, query } = make(CLIENT_TOKEN);
    const { result: res, calls } = await upstreamCallsDuring(stack, () =>
      send('POST', `/v1/chat/completions${query}`, {
        headers,
        body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `auth via ${form}` }] },
      }));
    assert.equal(res.status, 200, `${form}: ${res.status}`);
    const body = await json(res, form);
    assert.equal(body.choices[0].message.content, `echo: auth via ${form}`, form);
    assert.equal(calls.length, 1, `${form}: one upstream call`);
    assert.ok(KEYS.includes(calls[0].key), `${form}: upstream key was ${calls[0].key}`);
    assert.equal(calls[0].headers.authorization, undefined, `${form}: the client's Authorization went upstream`);
    assert.ok(!JSON.stringify(calls[0]).includes(CLIENT_TOKEN), `${form}: the client token went upstream`);
  }
});

test('Gemini generateContent accepts the client token in all four forms, and the upstream sees an upstream key', async () => {
  for (const [form, make] of Object.entries(AUTH_FORMS)) {
    const { headers, query } = make(SECOND_CLIENT_TOKEN);
    const { result: res, calls } = await upstreamCallsDuring(stack, () =>
      send('POST', `/v1beta/models/gemini-2.5-flash:generateContent${query}`, {
        headers,
        body: { contents: [{ role: 'user', parts: [{ text: `native via ${form}` }] }] },
      }));
    assert.equal(res.status, 200, `${form}: ${res.status}`);
    const body = await json(res, form);
    assert.equal(body.candidates[0].content.parts.at(-1).text, `echo: native via ${form}`, form);
    assert.equal(calls.length, 1, `${form}: one upstream call`);
    assert.ok(KEYS.includes(calls[0].key), `${form}: upstream key was ${calls[0].key}`);
    assert.equal(calls[0].query.key, undefined, `${form}: a ?key= went upstream`);
    assert.equal(calls[0].headers.authorization, undefined, `${form}: the client's Authorization went upstream`);
    assert.ok(!JSON.stringify(calls[0]).includes(SECOND_CLIENT_TOKEN), `${form}: the client token went upstream`);
  }
});

test('a missing or unknown token gets 401 in the OpenAI shape on the OpenAI surface', async () => {
  const cases = [['no token', { headers: {}, query: '' }]];
  for (const [form, make] of Object.entries(AUTH_FORMS)) cases.push([`unknown ${form}`, make('sk-unknown-token-0000')]);
  for (const [label, { headers, query }] of cases) {
    const { result: res, calls } = await upstreamCallsDuring(stack, () =>
      send('POST', `/v1/chat/completions${query}`, {
        headers,
        body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'x' }] },
      }));
    assert.equal(res.status, 401, `${label}: ${res.status}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, label);
    const body = await json(res, label);
    assertOpenAiError(body, label);
    assert.equal(body.error.type, 'authentication_error', label);
    assert.deepEqual(calls, [], `${label}: reached the upstream`);
  }
  // Also on the models route.
  const res = await send('GET', '/v1/models', { headers: { authorization: 'Bearer sk-unknown-token-0000' } });
  assert.equal(res.status, 401);
  assertOpenAiError(await json(res), 'models');
});

test('a missing or unknown token gets 401 in the Gemini shape on the native surface', async () => {
  const cases = [['no token', { headers: {}, query: '' }]];
  for (const [form, make] of Object.entries(AUTH_FORMS)) cases.push([`unknown ${form}`, make('sk-unknown-token-0000')]);
  for (const prefix of ['/v1beta', '/gemini/v1beta', '/v1']) {
    for (const [label, { headers, query }] of cases) {
      const { result: res, calls } = await upstreamCallsDuring(stack, () =>
        send('POST', `${prefix}/models/gemini-2.5-flash:generateContent${query}`, {
          headers,
          body: { contents: [{ parts: [{ text: 'x' }] }] },
        }));
      const where = `${prefix} ${label}`;
      assert.equal(res.status, 401, `${where}: ${res.status}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/, where);
      const body = await json(res, where);
      assertGeminiError(body, 401, where);
      assert.equal(body.error.status, 'UNAUTHENTICATED', where);
      assert.deepEqual(calls, [], `${where}: reached the upstream`);
    }
  }
  const res = await send('GET', '/v1beta/models', { headers: { 'x-goog-api-key': 'sk-unknown-token-0000' } });
  assert.equal(res.status, 401);
  assertGeminiError(await json(res), 401, 'native models');
});

// ---------------------------------------------------------------- health

test('/health and /healthz report key counts without auth and without secrets', async () => {
  for (const path of ['/health', '/healthz']) {
    const res = await send('GET', path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, path);
    const text = await res.text();
    const body = JSON.parse(text);
    assert.equal(body.keys.total, KEYS.length, `${path}: ${text}`);
    assert.equal(body.keys.enabled, KEYS.length, `${path}: ${text}`);
    for (const secret of [...KEYS, CLIENT_TOKEN, SECOND_CLIENT_TOKEN, ADMIN_PASSWORD]) assertNoSecret(text, secret, path);
  }
});

test('health counts follow the key pool, and the add is idempotent', async () => {
  const added = await stack.admin('POST', '/keys', { keys: [LATER_KEY, KEYS[0]] });
  assertNoSecret(JSON.stringify(added), LATER_KEY, 'POST /admin/api/keys');
  assertNoSecret(JSON.stringify(added), KEYS[0], 'POST /admin/api/keys');
  const again = await stack.admin('POST', '/keys', { keys: `${LATER_KEY}\n${KEYS[1]}` });
  assertNoSecret(JSON.stringify(again), LATER_KEY, 'POST /admin/api/keys (text)');
  const bodies = [];
  for (const path of ['/health', '/healthz']) {
    const res = await send('GET', path);
    const text = await res.text();
    const body = JSON.parse(text);
    assert.equal(body.keys.total, KEYS.length + 1, `${path}: ${text}`);
    assert.equal(body.keys.enabled, KEYS.length + 1, `${path}: ${text}`);
    for (const secret of [...KEYS, LATER_KEY, CLIENT_TOKEN, ADMIN_PASSWORD]) assertNoSecret(text, secret, path);
    bodies.push(body);
  }
  assert.deepEqual(bodies[0].keys, bodies[1].keys, '/health and /healthz agree');
});

test('the admin key listing is masked', async () => {
  const res = await send('GET', '/admin/api/keys', { headers: { authorization: `Bearer ${ADMIN_PASSWORD}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const { keys } = JSON.parse(text);
  const all = [...KEYS, LATER_KEY];
  assert.equal(keys.length, all.length, text.slice(0, 500));
  for (const secret of all) assertNoSecret(text, secret, 'GET /admin/api/keys');
  for (const k of keys) {
    assert.equal(typeof k.masked, 'string');
    assert.ok(all.some((s) => k.masked.startsWith(s.slice(0, 4)) && k.masked.endsWith(s.slice(-4))), `unexpected mask ${k.masked}`);
    assert.ok(!all.includes(k.masked));
  }
});

// ---------------------------------------------------------------- models

test('GET /v1/models lists every upstream model, all pages gathered, ids without models/', async () => {
  const catalog = await stack.mockApi.models();
  const res = await send('GET', '/v1/models', { headers: { authorization: `Bearer ${CLIENT_TOKEN}` } });
  assert.equal(res.status, 200);
  const body = await json(res, 'models');
  assert.equal(body.object, 'list');
  const ids = body.data.map((m) => m.id);
  for (const m of body.data) {
    assert.ok(!m.id.startsWith('models/'), `id ${m.id} keeps the models/ prefix`);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.owned_by, 'string');
    assert.ok(Number.isInteger(m.created), `created of ${m.id}`);
  }
  assert.equal(new Set(ids).size, ids.length, 'duplicate ids');
  assert.deepEqual([...ids].sort(), catalog.map((m) => m.name.replace(/^models\//, '')).sort());

  // The upstream list is paged: the worker walked every page with an upstream key.
  const lists = await stack.mockApi.calls({ action: 'models.list' });
  assert.ok(lists.length >= 1, 'models.list never reached the upstream');
  for (const c of lists) assert.ok([...KEYS, LATER_KEY].includes(c.key), `models.list used ${c.key}`);
  const pageSize = Math.min(Number(lists[0].query.pageSize) || 50, 1000);
  const pagesNeeded = Math.ceil(catalog.length / pageSize);
  const walk = lists.slice(0, pagesNeeded);
  assert.equal(walk.length, pagesNeeded, `${catalog.length} models at ${pageSize} per page need ${pagesNeeded} calls`);
  walk.slice(1).forEach((c, i) => assert.ok(c.query.pageToken, `page ${i + 2} was asked without a pageToken`));
});

test('GET /v1/models/{id} returns one model, and an unknown id is a 404', async () => {
  for (const id of ['gemini-2.5-flash', 'gemini-embedding-001']) {
    const res = await send('GET', `/v1/models/${id}`, { headers: { authorization: `Bearer ${CLIENT_TOKEN}` } });
    assert.equal(res.status, 200, id);
    const body = await json(res, id);
    assert.equal(body.id, id);
    assert.equal(body.object, 'model');
    assert.equal(typeof body.owned_by, 'string');
    assert.ok(Number.isInteger(body.created));
  }
  const res = await send('GET', '/v1/models/no-such-model-here', { headers: { authorization: `Bearer ${CLIENT_TOKEN}` } });
  assert.equal(res.status, 404);
  const body = await json(res, 'unknown model');
  assertOpenAiError(body, 'unknown model');
  assert.equal(body.error.code, 'model_not_found');
});

// ---------------------------------------------------------------- embeddings

async function embed(body) {
  const res = await send('POST', '/v1/embeddings', { body, headers: { authorization: `Bearer ${CLIENT_TOKEN}` } });
  const text = await res.text();
  assert.equal(res.status, 200, `embeddings ${JSON.stringify(body).slice(0, 200)}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

test('float and base64 embeddings of the same input agree (little-endian float32)', async () => {
  const input = 'the same sentence, twice';
  const floats = await embed({ model: 'gemini-embedding-001', input });
  assert.equal(floats.object, 'list');
  assert.equal(floats.model, 'gemini-embedding-001');
  assert.equal(floats.data.length, 1);
  assert.equal(floats.data[0].object, 'embedding');
  assert.equal(floats.data[0].index, 0);
  const vector = floats.data[0].embedding;
  assert.ok(Array.isArray(vector) && vector.length === 3072, `length ${vector?.length}`);
  assert.ok(vector.every((v) => typeof v === 'number' && Number.isFinite(v)));
  assert.ok(floats.usage.prompt_tokens > 0 && floats.usage.total_tokens >= floats.usage.prompt_tokens);

  const b64 = await embed({ model: 'gemini-embedding-001', input, encoding_format: 'base64' });
  assert.equal(typeof b64.data[0].embedding, 'string');
  const decoded = decodeFloat32(b64.data[0].embedding);
  assert.equal(decoded.length, vector.length);
  decoded.forEach((v, i) => assert.equal(v, Math.fround(vector[i]), `component ${i}: ${v} vs ${vector[i]}`));

  const explicit = await embed({ model: 'gemini-embedding-001', input, encoding_format: 'float' });
  assert.deepEqual(explicit.data[0].embedding, vector, 'encoding_format float is the default');
});

test('dimensions becomes outputDimensionality upstream', async () => {
  const { result, calls } = await upstreamCallsDuring(stack, () =>
    embed({ model: 'gemini-embedding-001', input: ['short one', 'short two'], dimensions: 256 }));
  assert.deepEqual(result.data.map((d) => d.embedding.length), [256, 256]);
  assert.equal(calls.length, 1);
  const [call] = calls;
  assert.equal(call.model, 'gemini-embedding-001');
  assert.ok(KEYS.concat(LATER_KEY).includes(call.key));
  const requests = call.body.requests ?? [call.body];
  assert.equal(requests.length, 2);
  for (const r of requests) assert.equal(r.outputDimensionality, 256, JSON.stringify(r));
});

test('array input gives one embedding per input, in order, with its index', async () => {
  const inputs = ['first text', 'second text', 'third text'];
  const { result: batch, calls } = await upstreamCallsDuring(stack, () => embed({ model: 'gemini-embedding-001', input: inputs }));
  assert.deepEqual(batch.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(batch.data.every((d) => d.object === 'embedding'));
  assert.equal(calls.length, 1, 'one upstream call for the batch');
  const texts = (calls[0].body.requests ?? []).map((r) => r.content.parts.map((p) => p.text).join(''));
  assert.deepEqual(texts, inputs, 'upstream got the inputs in order');
  // The mock's vectors are a pure function of the text: each batch entry
  // equals the single-input embedding of its own text.
  for (const [i, text] of inputs.entries()) {
    const single = await embed({ model: 'gemini-embedding-001', input: text });
    assert.deepEqual(batch.data[i].embedding, single.data[0].embedding, `data[${i}] is not the embedding of "${text}"`);
  }
  assert.notDeepEqual(batch.data[0].embedding, batch.data[1].embedding);
});

test('an array of 150 inputs (over Gemini\'s 100 per batchEmbedContents) still gets 150 embeddings, in order', async () => {
  // OpenAI accepts up to 2048 inputs per request; Google's batchEmbedContents
  // takes at most 100 requests, so the gateway has to split the batch.
  const inputs = Array.from({ length: 150 }, (_, i) => `bulk input number ${i}`);
  const { result, calls } = await upstreamCallsDuring(stack, () =>
    send('POST', '/v1/embeddings', {
      headers: { authorization: `Bearer ${CLIENT_TOKEN}` },
      body: { model: 'gemini-embedding-001', input: inputs, dimensions: 8 },
    }));
  const text = await result.text();
  assert.equal(result.status, 200, `150 inputs: ${result.status} ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  assert.equal(body.data.length, inputs.length);
  body.data.forEach((d, i) => {
    assert.equal(d.index, i);
    const expected = embeddingValues(inputs[i], 8, false).map(Math.fround);
    assert.deepEqual(d.embedding.map(Math.fround), expected, `data[${i}] is not the embedding of input ${i}`);
  });
  for (const c of calls) assert.ok((c.body.requests ?? []).length <= 100, `an upstream batch of ${c.body.requests?.length}`);
});

test('browser clients get CORS: preflight on both surfaces, and readable answers', async () => {
  for (const path of ['/v1/chat/completions', '/v1beta/models/gemini-2.5-flash:streamGenerateContent']) {
    const pre = await fetch(`${stack.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://chat.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      },
    });
    assert.equal(pre.status, 204, path);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /x-stainless-os/);
  }
  const ok = await stack.call('POST', '/v1/chat/completions', {
    body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] },
    headers: { origin: 'https://chat.example' },
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), '*');
  const denied = await stack.call('GET', '/v1/models', { token: 'sk-wrong' });
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get('access-control-allow-origin'), '*', 'errors must be readable too');
  assert.match(denied.headers.get('access-control-expose-headers'), /retry-after/);
  // The admin surface is same-origin only.
  const admin = await fetch(`${stack.url}/admin/api/keys`, { method: 'OPTIONS' });
  assert.equal(admin.headers.get('access-control-allow-origin'), null);
});

test('without ENCRYPTION_KEY keys are stored in plaintext, with a warning, and still listed masked', async () => {
  const rows = await stack.d1('SELECT secret, masked FROM upstream_keys');
  const secrets = rows.map((r) => r.secret);
  for (const k of KEYS) assert.ok(secrets.includes(k), `${k} not stored as is`);
  assert.ok(secrets.every((v) => !v.startsWith('enc:')));
  assert.ok(rows.every((r) => r.masked && !secrets.includes(r.masked)));
  assert.match(stack.log, /ENCRYPTION_KEY is not set/);
});

test('chat and embeddings also answer without the /v1 prefix', async () => {
  const chat = await stack.call('POST', '/chat/completions', {
    body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'bare' }] },
  });
  assert.equal(chat.status, 200);
  assert.equal((await chat.json()).choices[0].message.content, 'echo: bare');
  const emb = await stack.call('POST', '/embeddings', {
    body: { model: 'gemini-embedding-001', input: 'bare', dimensions: 4 },
  });
  assert.equal(emb.status, 200);
  assert.equal((await emb.json()).data[0].embedding.length, 4);
});

test('gemini-balance\'s /openai/v1 and /hf/v1 prefixes answer like /v1, through the OpenAI SDK', async () => {
  for (const prefix of ['/openai/v1', '/hf/v1']) {
    const client = new OpenAI({ apiKey: CLIENT_TOKEN, baseURL: `${stack.url}${prefix}`, maxRetries: 0, timeout: REQUEST_TIMEOUT_MS });
    const chat = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: `via ${prefix}` }] });
    assert.equal(chat.choices[0].message.content, `echo: via ${prefix}`);
    let streamed = '';
    const stream = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'streamed' }], stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, 'echo: streamed');
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === 'gemini-2.5-flash'), `${prefix}/models`);
    const emb = await client.embeddings.create({ model: 'gemini-embedding-001', input: 'x', dimensions: 4 });
    assert.equal(emb.data[0].embedding.length, 4);
    // The prefix is OpenAI's: a client's token is still required, and errors come in OpenAI's shape.
    const anonymous = await send('POST', `${prefix}/chat/completions`, { body: { model: 'gemini-2.5-flash', messages: [] } });
    assert.equal(anonymous.status, 401);
    assert.equal(typeof (await anonymous.json()).error.message, 'string');
    const native = await stack.call('POST', `${prefix}/models/gemini-2.5-flash:generateContent`, {
      body: { contents: [{ parts: [{ text: 'x' }] }] }, timeoutMs: REQUEST_TIMEOUT_MS,
    });
    assert.equal(native.status, 404, `${prefix}: a native action`);
    const refused = await native.json();
    assert.equal(typeof refused.error.type, 'string', 'OpenAI\'s error shape');
    assert.match(refused.error.message, /\/v1beta\//);
  }
});
