// Files pinned to their key (issue 14 §4): Google keeps an uploaded file (and
// a context cache) in the project of the key that made it, so the gateway
// proxies the resumable upload with its own upload URL, pins the file to that
// key in D1, and sends every later request naming it to that key, whatever
// the rotation says. Files are scoped to the caller's key: another user gets
// 404. Driven by the official `@google/genai` SDK (`files.upload`, `get`,
// `list`, `delete`, `caches.*`, `models.*` with a file part) and raw HTTP for
// the protocol's edges; the mock holds each file in its key's project and
// refuses it (403) from any other key, as Google does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { ApiError, GoogleGenAI, createPartFromUri, createUserContent } from '@google/genai';
import { CLIENT_TOKEN, startStack } from '../lib/harness.mjs';
import { REQUEST_TIMEOUT_MS, runCron, sqlStr } from '../lib/util.mjs';

const KEYS = ['ok-files-a', 'ok-files-b', 'ok-files-c'];
const MODEL = 'gemini-2.5-flash-files';

let stack;
let alice;
let bob;

const keyId = (secret) => createHash('sha256').update(secret).digest('hex').slice(0, 16);
/** Google's `sha256Hash`: the hex digest, base64-encoded. */
const sha256b64 = (bytes) => Buffer.from(createHash('sha256').update(bytes).digest('hex')).toString('base64');

async function createUser(name) {
  const created = await stack.admin('POST', '/users', { name, credit_quota: 1_000_000 });
  return { id: created.user.id, key: created.key };
}

/** The GenAI SDK on the worker with `apiKey` (a user key, or the static token). */
const sdk = (apiKey) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: stack.url, timeout: REQUEST_TIMEOUT_MS } });

before(async () => {
  stack = await startStack({ keys: KEYS });
  alice = { ...(await createUser('alice-files')) };
  bob = { ...(await createUser('bob-files')) };
  alice.ai = sdk(alice.key);
  bob.ai = sdk(bob.key);
});
after(async () => stack?.stop());

/** What the mock holds: every file with the key whose project has it. */
async function mockFiles() {
  return (await stack.mockApi.files()).files;
}

/** The upstream calls the mock recorded while `fn` ran. */
async function callsDuring(fn) {
  const before = (await stack.mockApi.calls()).length;
  const result = await fn();
  const calls = (await stack.mockApi.calls()).slice(before);
  return { result, calls };
}

/** The SDK's rejection of `promise`, an ApiError with `status`. */
async function apiError(promise, status, label) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ApiError, `${label}: expected an ApiError, got ${err ?? 'a success'}`);
  assert.equal(err.status, status, `${label}: ${err.message}`);
  return err;
}

/** Uploads `bytes` with `ai` and returns the File and the key (secret) that holds it upstream. */
async function upload(ai, bytes, mimeType = 'text/plain', displayName = 'notes') {
  const file = await ai.files.upload({ file: new Blob([bytes], { type: mimeType }), config: { mimeType, displayName } });
  const held = (await mockFiles()).find((f) => f.name === file.name);
  assert.ok(held, `the mock holds ${file.name}`);
  return { file, key: held.key };
}

const askAbout = (file, text = 'What is in this file?') =>
  createUserContent([createPartFromUri(file.uri, file.mimeType), text]);

/** Raw start of a resumable upload with `token`. */
async function rawStart(token, { length, mimeType = 'application/octet-stream', body = { file: { displayName: 'raw' } } } = {}) {
  return fetch(`${stack.url}/upload/v1beta/files`, {
    method: 'POST',
    headers: {
      'x-goog-api-key': token,
      'content-type': 'application/json',
      'x-goog-upload-protocol': 'resumable',
      'x-goog-upload-command': 'start',
      'x-goog-upload-header-content-length': String(length),
      'x-goog-upload-header-content-type': mimeType,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

async function rawChunk(url, token, bytes, offset, command) {
  return fetch(url, {
    method: 'POST',
    headers: { 'x-goog-api-key': token, 'x-goog-upload-command': command, 'x-goog-upload-offset': String(offset) },
    body: bytes,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

test('files.upload through the SDK: the bytes land whole on one key, and the file comes back as Google describes it', async () => {
  const bytes = Buffer.from('the quick brown fox\n'.repeat(50));
  const { result: { file, key }, calls } = await callsDuring(() => upload(alice.ai, bytes));
  assert.match(file.name, /^files\/[a-z0-9-]+$/);
  assert.equal(file.mimeType, 'text/plain');
  assert.equal(Number(file.sizeBytes), bytes.length);
  assert.equal(file.displayName, 'notes');
  assert.equal(file.state, 'ACTIVE');
  assert.ok(KEYS.includes(key), `held by one of the pool's keys: ${key}`);
  const held = (await mockFiles()).find((f) => f.name === file.name);
  assert.equal(held.sha256Hash, sha256b64(bytes), 'the bytes arrived unchanged');
  // The start and the bytes both went upstream on that key, never with the user's key.
  const uploads = calls.filter((c) => c.action?.startsWith('files.'));
  assert.deepEqual(uploads.map((c) => c.action), ['files.start', 'files.upload']);
  for (const c of uploads) assert.equal(c.key, key, `${c.action} on the pinned key`);
  for (const c of calls) assert.notEqual(c.key, alice.key);
  // The gateway remembers the pin, scoped, with Google's expiry.
  const [row] = await stack.d1(`SELECT key_id, expires_at, created_at FROM pinned_resources WHERE name = ${sqlStr(file.name)}`);
  assert.equal(row.key_id, keyId(key));
  assert.equal(row.expires_at, Date.parse(file.expirationTime), 'expires when Google deletes the file');
});

test('the upload URL points at the worker, binary bytes go up in chunks, and a session is the caller\'s alone', async () => {
  const bytes = randomBytes(300_000);
  const start = await rawStart(alice.key, { length: bytes.length });
  assert.equal(start.status, 200, await start.clone().text());
  const url = start.headers.get('x-goog-upload-url');
  assert.ok(url.startsWith(`${stack.url}/upload/v1beta/files?upload_id=`), url);
  assert.ok(!url.includes(new URL(stack.mock.url).host), 'Google\'s own upload URL never reaches the client');
  assert.equal(start.headers.get('x-goog-upload-status'), 'active');
  // Another user cannot continue it: the session is as unknown to bob as a made-up one.
  const stolen = await rawChunk(url, bob.key, bytes.subarray(0, 10), 0, 'upload');
  assert.equal(stolen.status, 404);
  assert.equal((await stolen.json()).error.status, 'NOT_FOUND');
  const half = 131_072;
  const first = await rawChunk(url, alice.key, bytes.subarray(0, half), 0, 'upload');
  assert.equal(first.status, 200, await first.clone().text());
  assert.equal(first.headers.get('x-goog-upload-status'), 'active');
  const last = await rawChunk(url, alice.key, bytes.subarray(half), half, 'upload, finalize');
  assert.equal(last.status, 200);
  assert.equal(last.headers.get('x-goog-upload-status'), 'final');
  const { file } = await last.json();
  const held = (await mockFiles()).find((f) => f.name === file.name);
  assert.equal(held.sha256Hash, sha256b64(bytes));
  assert.equal(Number(held.sizeBytes), bytes.length);
  // Finished: the session is gone.
  const again = await rawChunk(url, alice.key, bytes.subarray(0, 1), 0, 'upload');
  assert.equal(again.status, 404);
  const pinned = await stack.d1(`SELECT name FROM pinned_resources WHERE name = ${sqlStr(file.name)}`);
  assert.equal(pinned.length, 1);
  assert.deepEqual(await stack.d1('SELECT id FROM upload_sessions'), [], 'no session is left behind');
});

test('a file is used only with its key, even while the rotation has put that key last', async () => {
  const { file, key } = await upload(alice.ai, Buffer.from('pinned content'));
  // Cool the file's key for this model: a per-minute 429 with a long RetryInfo.
  await stack.mockApi.script({ key, model: MODEL, fault: 'rate_limit_minute', retryDelay: '600s', times: 1 });
  let cooled = false;
  for (let i = 0; i < KEYS.length + 1 && !cooled; i += 1) {
    const { calls } = await callsDuring(() => alice.ai.models.generateContent({ model: MODEL, contents: 'warm up' }));
    cooled = calls.some((c) => c.key === key && c.status === 429);
  }
  assert.ok(cooled, 'the file\'s key answered 429 once and is cooling');
  // Requests without the file never reach the cooled key.
  const { calls: plain } = await callsDuring(async () => {
    for (let i = 0; i < 4; i += 1) await alice.ai.models.generateContent({ model: MODEL, contents: `plain ${i}` });
  });
  assert.equal(plain.length, 4);
  assert.ok(plain.every((c) => c.key !== key), `the rotation skips the cooling key: ${plain.map((c) => c.key)}`);
  assert.ok(new Set(plain.map((c) => c.key)).size >= 2, 'and rotates over the others');
  // Every request naming the file goes to its key: generate, stream and count.
  const { result, calls } = await callsDuring(async () => {
    const answers = [];
    for (let i = 0; i < 3; i += 1) {
      answers.push(await alice.ai.models.generateContent({ model: MODEL, contents: askAbout(file, `ask ${i}`) }));
    }
    let streamed = '';
    for await (const chunk of await alice.ai.models.generateContentStream({ model: MODEL, contents: askAbout(file, 'stream') })) {
      streamed += chunk.text ?? '';
    }
    const counted = await alice.ai.models.countTokens({ model: MODEL, contents: askAbout(file, 'count') });
    return { answers, streamed, counted };
  });
  assert.equal(calls.length, 5, calls.map((c) => `${c.action}@${c.key}`).join(', '));
  for (const c of calls) {
    assert.equal(c.key, key, `${c.action} went to the file's key`);
    assert.equal(c.status, 200, `${c.action} was served`);
  }
  assert.ok(result.answers.every((a) => typeof a.text === 'string' && a.text.length > 0));
  assert.ok(result.streamed.length > 0);
  assert.ok(result.counted.totalTokens >= 258, 'a file part counts as media');
});

test('another user\'s key (and the static token) gets 404 for the file, everywhere, without a call upstream', async () => {
  const { file } = await upload(alice.ai, Buffer.from('alice only'));
  const { calls } = await callsDuring(async () => {
    const gotten = await apiError(bob.ai.files.get({ name: file.name }), 404, 'bob files.get');
    assert.match(gotten.message, /not found/i);
    await apiError(bob.ai.files.delete({ name: file.name }), 404, 'bob files.delete');
    await apiError(bob.ai.models.generateContent({ model: MODEL, contents: askAbout(file) }), 404, 'bob generate');
    await apiError(bob.ai.models.countTokens({ model: MODEL, contents: askAbout(file) }), 404, 'bob count');
    await apiError(sdk(CLIENT_TOKEN).files.get({ name: file.name }), 404, 'static token files.get');
    const listed = [];
    for await (const f of await bob.ai.files.list()) listed.push(f.name);
    assert.ok(!listed.includes(file.name), 'bob\'s list does not show it');
  });
  assert.deepEqual(calls.map((c) => c.action), [], 'nothing reached Google');
  // Alice still reads it, from its key.
  const mine = await alice.ai.files.get({ name: file.name });
  assert.equal(mine.name, file.name);
});

test('files.list shows the caller\'s own files, paged', async () => {
  const carol = await createUser('carol-files');
  const ai = sdk(carol.key);
  const names = [];
  for (let i = 0; i < 3; i += 1) names.push((await upload(ai, Buffer.from(`carol ${i}`), 'text/plain', `c${i}`)).file.name);
  const pager = await ai.files.list({ config: { pageSize: 2 } });
  assert.equal(pager.page.length, 2, 'the first page holds pageSize files');
  const listed = [];
  for await (const f of pager) listed.push(f.name);
  assert.deepEqual(listed.sort(), names.sort());
});

test('a file whose key left the pool fails clearly, and comes back with the key', async () => {
  const { file, key } = await upload(alice.ai, Buffer.from('soon orphaned'));
  await stack.admin('PATCH', `/keys/${keyId(key)}`, { enabled: false });
  try {
    const { calls } = await callsDuring(async () => {
      const err = await apiError(alice.ai.models.generateContent({ model: MODEL, contents: askAbout(file) }), 400, 'orphaned generate');
      assert.match(err.message, /no longer in the pool/);
      assert.match(err.message, new RegExp(file.name));
      await apiError(alice.ai.files.get({ name: file.name }), 400, 'orphaned files.get');
    });
    assert.deepEqual(calls, [], 'no other key is tried');
  } finally {
    await stack.admin('PATCH', `/keys/${keyId(key)}`, { enabled: true });
  }
  const back = await alice.ai.models.generateContent({ model: MODEL, contents: askAbout(file) });
  assert.ok(back.text.length > 0);
});

test('a context cache is made on its file\'s key, pinned and scoped like a file', async () => {
  const { file, key } = await upload(alice.ai, Buffer.from('cached context '.repeat(20)));
  const { result: cache, calls } = await callsDuring(() => alice.ai.caches.create({
    model: MODEL,
    config: { contents: askAbout(file, 'remember this'), ttl: '600s', displayName: 'ctx' },
  }));
  assert.match(cache.name, /^cachedContents\//);
  assert.deepEqual(calls.map((c) => [c.action, c.key]), [['cachedContents.create', key]]);
  // Generation with the cache goes to its key.
  const { calls: used } = await callsDuring(() => alice.ai.models.generateContent({
    model: MODEL, contents: 'and now?', config: { cachedContent: cache.name },
  }));
  assert.deepEqual(used.map((c) => c.key), [key]);
  await apiError(bob.ai.caches.get({ name: cache.name }), 404, 'bob caches.get');
  await apiError(bob.ai.models.generateContent({ model: MODEL, contents: 'x', config: { cachedContent: cache.name } }), 404, 'bob with alice\'s cache');
  // A new TTL moves the pin's expiry with Google's.
  const updated = await alice.ai.caches.update({ name: cache.name, config: { ttl: '7200s' } });
  const [row] = await stack.d1(`SELECT expires_at FROM pinned_resources WHERE name = ${sqlStr(cache.name)}`);
  assert.equal(row.expires_at, Date.parse(updated.expireTime));
  const listed = [];
  for await (const c of await alice.ai.caches.list()) listed.push(c.name);
  assert.ok(listed.includes(cache.name));
  await alice.ai.caches.delete({ name: cache.name });
  await apiError(alice.ai.caches.get({ name: cache.name }), 404, 'a deleted cache');
  assert.deepEqual(await stack.d1(`SELECT name FROM pinned_resources WHERE name = ${sqlStr(cache.name)}`), []);
});

test('an OpenAI chat naming a cache (extra_body.google.cached_content) goes to the cache\'s key; another user gets 404', async () => {
  const cache = await alice.ai.caches.create({
    model: MODEL,
    config: { contents: createUserContent(['a long shared context']), ttl: '600s' },
  });
  const holder = (await stack.mockApi.files()).cachedContents.find((c) => c.name === cache.name).key;
  const chat = (key, i) => fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: `question ${i}` }],
      extra_body: { google: { cached_content: cache.name } },
    }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const { calls } = await callsDuring(async () => {
    for (let i = 0; i < 3; i += 1) {
      const res = await chat(alice.key, i);
      assert.equal(res.status, 200, await res.clone().text());
      assert.ok((await res.json()).choices[0].message.content.length > 0);
    }
  });
  assert.deepEqual(calls.map((c) => c.key), [holder, holder, holder], 'every call on the cache\'s key');
  const { calls: none } = await callsDuring(async () => {
    const res = await chat(bob.key, 9);
    const body = await res.json();
    assert.equal(res.status, 404, JSON.stringify(body));
    assert.equal(typeof body.error?.message, 'string');
    assert.ok('type' in body.error && 'code' in body.error, 'OpenAI\'s error shape');
  });
  assert.deepEqual(none, []);
});

test('files.delete deletes upstream on the file\'s key and forgets the pin', async () => {
  const { file, key } = await upload(alice.ai, Buffer.from('short lived'));
  const { calls } = await callsDuring(() => alice.ai.files.delete({ name: file.name }));
  assert.deepEqual(calls.map((c) => [c.action, c.key]), [['files.delete', key]]);
  assert.ok(!(await mockFiles()).some((f) => f.name === file.name), 'gone from Google');
  assert.deepEqual(await stack.d1(`SELECT name FROM pinned_resources WHERE name = ${sqlStr(file.name)}`), []);
  await apiError(alice.ai.files.get({ name: file.name }), 404, 'a deleted file');
});

test('the cron forgets a file once Google has deleted it (48 hours), and not before', async () => {
  const { file } = await upload(alice.ai, Buffer.from('expiring'));
  const pinned = () => stack.d1(`SELECT name FROM pinned_resources WHERE name = ${sqlStr(file.name)}`);
  await runCron(stack);
  assert.equal((await pinned()).length, 1, 'kept while Google keeps it');
  // Time passes the way the other cron tests let it: the stored expiry (Google's
  // expirationTime) moves into the past, as it is 48 hours later.
  await stack.d1(`UPDATE pinned_resources SET expires_at = ${Date.now() - 1000} WHERE name = ${sqlStr(file.name)}`);
  await runCron(stack);
  assert.deepEqual(await pinned(), [], 'forgotten after its expiry');
  assert.match(stack.log, /\[gemgate\] cron files: [1-9]\d* pin\(s\)/);
  const { calls } = await callsDuring(() => apiError(alice.ai.files.get({ name: file.name }), 404, 'an expired file'));
  assert.deepEqual(calls, [], 'an expired pin answers 404 without asking Google');
});

test('bad upload requests get Google-shaped errors without reaching Google', async () => {
  const { calls } = await callsDuring(async () => {
    for (const [what, init, status] of [
      ['a multipart upload', { 'x-goog-upload-protocol': 'multipart' }, 400],
      ['no upload command', { 'x-goog-upload-command': null }, 400],
      ['an unknown command', { 'x-goog-upload-command': 'explode' }, 400],
      ['no credentials', { 'x-goog-api-key': null }, 401],
    ]) {
      const headers = {
        'x-goog-api-key': alice.key,
        'x-goog-upload-protocol': 'resumable',
        'x-goog-upload-command': 'start',
        'content-type': 'application/json',
        ...init,
      };
      for (const [k, v] of Object.entries(headers)) if (v === null) delete headers[k];
      const res = await fetch(`${stack.url}/upload/v1beta/files`, { method: 'POST', headers, body: '{}', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const body = await res.json();
      assert.equal(res.status, status, `${what}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.error?.message, 'string', what);
      assert.equal(body.error.code, status, what);
    }
    const made_up = await rawChunk(`${stack.url}/upload/v1beta/files?upload_id=${'0'.repeat(32)}`, alice.key, Buffer.from('x'), 0, 'upload, finalize');
    assert.equal(made_up.status, 404);
    const not_json = await fetch(`${stack.url}/upload/v1beta/files`, {
      method: 'POST',
      headers: { 'x-goog-api-key': alice.key, 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start' },
      body: '{"file":',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    assert.equal(not_json.status, 400);
  });
  assert.deepEqual(calls.map((c) => c.action), []);
});
