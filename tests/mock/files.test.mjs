// Tests of the mock's Files API (resumable upload), cachedContents and the
// reference checks on generation: `node --test tests/mock/`. Everything goes
// over real HTTP; nothing sleeps. Each test uses its own keys, so tests never
// see each other's files.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startMock } from './google.mjs';
import { mockClient } from './client.mjs';

const T = { timeout: 10_000 };
const HOUR = 3600 * 1000;

let mock;
let ctl;
before(async () => {
  mock = await startMock();
  ctl = mockClient(mock.url);
});
after(() => mock.close());

// ---------------------------------------------------------------- helpers

let counter = 0;
/** A key nobody else uses: each key is its own Google project. */
const freshKey = (prefix = 'files') => `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`;
const freshModel = () => `gemini-2.5-flash-f${++counter}`;

/** A request to the mock. `body`: an object (sent as JSON), a string or a Buffer (sent as is). */
async function call(path, { method = 'GET', key, body, headers = {}, base = mock.url } = {}) {
  const json = body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string';
  const res = await fetch(path.startsWith('http') ? path : `${base}${path}`, {
    method,
    headers: { ...(json ? { 'content-type': 'application/json' } : {}), ...(key ? { 'x-goog-api-key': key } : {}), ...headers },
    body: body === undefined ? undefined : json ? JSON.stringify(body) : body,
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

/** `x-goog-upload-command: start`, as @google/genai sends it. */
function start(key, { size, mimeType = 'application/octet-stream', body, headers = {}, query = '' } = {}) {
  return call(`/upload/v1beta/files${query}`, {
    method: 'POST',
    key,
    body: body ?? { file: { mimeType } },
    headers: {
      'x-goog-upload-protocol': 'resumable',
      'x-goog-upload-command': 'start',
      ...(size !== undefined ? { 'x-goog-upload-header-content-length': String(size) } : {}),
      'x-goog-upload-header-content-type': mimeType,
      ...headers,
    },
  });
}

/** A request to an upload URL: raw bytes at `offset`. No key unless given. */
function chunk(uploadUrl, bytes, { offset, command = 'upload', key, headers = {} } = {}) {
  return call(uploadUrl, {
    method: 'POST',
    key,
    body: bytes,
    headers: {
      'content-type': 'application/octet-stream',
      'x-goog-upload-command': command,
      ...(offset !== undefined ? { 'x-goog-upload-offset': String(offset) } : {}),
      ...headers,
    },
  });
}

async function uploadUrlFor(key, opts) {
  const r = await start(key, opts);
  assert.equal(r.status, 200, r.text);
  return r.headers.get('x-goog-upload-url');
}

/** Uploads `bytes` in one `upload, finalize` chunk; resolves to the File. */
async function upload(key, bytes, { mimeType = 'image/png', displayName, name } = {}) {
  const body = { file: { mimeType, ...(displayName ? { displayName } : {}), ...(name ? { name } : {}) } };
  const url = await uploadUrlFor(key, { size: bytes.length, mimeType, body });
  const r = await chunk(url, bytes, { offset: 0, command: 'upload, finalize' });
  assert.equal(r.status, 200, r.text);
  return r.json.file;
}

const fileId = (file) => file.name.slice('files/'.length);
const hex = (bytes) => createHash('sha256').update(bytes).digest('hex');
/** Google's sha256Hash: the base64 of the hex digest. */
const googleSha = (bytes) => Buffer.from(hex(bytes)).toString('base64');

const error = (code, status, message) => ({ error: { code, message, status } });
const fileDenied = (id) => error(403, 'PERMISSION_DENIED', `You do not have permission to access the File ${id} or it may not exist.`);
const CACHE_DENIED = error(403, 'PERMISSION_DENIED', 'CachedContent not found (or permission denied)');

const filePart = (fileUri, mimeType = 'image/png') => ({ fileData: { mimeType, fileUri } });
const withParts = (...parts) => ({ contents: [{ role: 'user', parts: [...parts, { text: 'describe it' }] }] });
const generate = (model, key, body, method = 'generateContent', query = '') =>
  call(`/v1beta/models/${model}:${method}${query}`, { method: 'POST', key, body });

const createCache = (key, body) => call('/v1beta/cachedContents', { method: 'POST', key, body });

const lastCall = async (filter) => (await ctl.calls(filter)).at(-1);

/** Every page of a list, following nextPageToken (bounded: a list of n items has at most n pages). */
async function allPages(path, key, field, pageSize, bound = 50) {
  const pages = [];
  let token;
  for (let i = 0; i < bound; i += 1) {
    const r = await call(`${path}?pageSize=${pageSize}${token ? `&pageToken=${token}` : ''}`, { key });
    assert.equal(r.status, 200, r.text);
    pages.push(r.json[field].map((x) => x.name));
    token = r.json.nextPageToken;
    if (!token) return pages;
  }
  throw new Error(`more than ${bound} pages`);
}

// ---------------------------------------------------------------- resumable upload

describe('resumable upload', () => {
  test('start answers 200 with an empty body and the upload URL in headers', T, async () => {
    const key = freshKey();
    const r = await start(key, { size: 5, mimeType: 'text/plain', body: { file: { displayName: 'notes', mimeType: 'text/plain' } } });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    const url = r.headers.get('x-goog-upload-url');
    assert.match(url, new RegExp(`^${mock.url}/upload/v1beta/files\\?upload_id=[A-Za-z0-9_-]{16,}&upload_protocol=resumable$`));
    assert.equal(r.headers.get('x-goog-upload-control-url'), url);
    assert.equal(r.headers.get('x-goog-upload-status'), 'active');
    assert.equal(r.headers.get('x-goog-upload-chunk-granularity'), '8388608');
    const c = await lastCall({ key, action: 'files.start' });
    assert.deepEqual(c.body, { file: { displayName: 'notes', mimeType: 'text/plain' } });
    assert.equal(c.status, 200);
    assert.deepEqual(c.upload, { id: new URL(url).searchParams.get('upload_id'), url, declared: 5, mimeType: 'text/plain', status: 'active' });
    assert.deepEqual((await ctl.files()).uploads.find((u) => u.key === key), { id: c.upload.id, key, declared: 5, received: 0 });
  });

  test('a binary file in two chunks comes back byte for byte, with Google\'s sha256Hash', T, async () => {
    const key = freshKey();
    // Every byte value, NULs and invalid UTF-8 included.
    const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(744)]);
    const url = await uploadUrlFor(key, { size: bytes.length, mimeType: 'application/pdf', body: { file: { displayName: 'report.pdf' } } });

    const first = await chunk(url, bytes.subarray(0, 600), { offset: 0 });
    assert.equal(first.status, 200);
    assert.equal(first.text, '');
    assert.equal(first.headers.get('x-goog-upload-status'), 'active');

    const last = await chunk(url, bytes.subarray(600), { offset: 600, command: 'upload, finalize' });
    assert.equal(last.status, 200);
    assert.equal(last.headers.get('x-goog-upload-status'), 'final');
    const file = last.json.file;
    assert.match(file.name, /^files\/[a-z0-9]{12}$/);
    const created = Date.parse(file.createTime);
    assert.deepEqual(file, {
      name: file.name,
      displayName: 'report.pdf',
      mimeType: 'application/pdf',
      sizeBytes: '1000',
      createTime: file.createTime,
      updateTime: file.createTime,
      expirationTime: new Date(created + 48 * HOUR).toISOString(),
      sha256Hash: googleSha(bytes),
      uri: `${mock.url}/v1beta/files/${fileId(file)}`,
      state: 'ACTIVE',
      source: 'UPLOADED',
    });
    assert.equal(Buffer.from(file.sha256Hash, 'base64').toString(), hex(bytes), 'decoded, it is the sha256sum');
    assert.ok((await ctl.fileBytes(file.name)).equals(bytes), 'the stored bytes are the uploaded ones');

    // Chunks are recorded by their length, never as text; they carried no key.
    const chunks = (await ctl.calls({ action: 'files.upload' })).filter((c) => c.upload.id === new URL(url).searchParams.get('upload_id'));
    assert.deepEqual(
      chunks.map((c) => [c.body, c.bodyBytes, c.key, c.upload.offset, c.upload.received, c.upload.status]),
      [
        [null, 600, null, '0', 600, 'active'],
        [null, 400, null, '600', 1000, 'final'],
      ],
    );
    assert.equal(chunks[1].file, file.name);
    // It is the starting key's file.
    assert.equal((await call(`/v1beta/files/${fileId(file)}`, { key })).json.sha256Hash, googleSha(bytes));
  });

  test('the MIME type comes from the body, else from the start header; the key may come in ?key=', T, async () => {
    const key = freshKey();
    const fromHeader = await uploadUrlFor(null, { size: 3, mimeType: 'audio/wav', body: '', query: `?key=${key}` });
    const a = await chunk(fromHeader, Buffer.from('abc'), { offset: 0, command: 'upload, finalize' });
    assert.equal(a.json.file.mimeType, 'audio/wav');
    assert.equal(a.json.file.displayName, undefined, 'no displayName unless one was given');

    const fromBody = await uploadUrlFor(key, { size: 3, mimeType: 'text/plain', body: { file: { mimeType: 'text/csv' } } });
    assert.equal((await chunk(fromBody, Buffer.from('a,b'), { offset: 0, command: 'upload, finalize' })).json.file.mimeType, 'text/csv');

    const emptyObject = await uploadUrlFor(key, { size: 1, mimeType: 'image/gif', body: {} });
    assert.equal((await chunk(emptyObject, Buffer.from('x'), { offset: 0, command: 'upload, finalize' })).json.file.mimeType, 'image/gif');
    assert.equal((await ctl.files()).files.filter((f) => f.key === key).length, 3);
  });

  test('wrong offsets, too many bytes and a short finalize are 400s that change nothing', T, async () => {
    const key = freshKey();
    const url = await uploadUrlFor(key, { size: 10 });
    const invalid = (r, pattern) => {
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.match(r.json.error.message, pattern);
      assert.equal(r.headers.get('x-goog-upload-status'), 'active', 'the session stays usable');
    };

    invalid(await chunk(url, Buffer.from('hello'), { offset: 5 }), /Invalid X-Goog-Upload-Offset 5: the upload has received 0 bytes/);
    invalid(await chunk(url, Buffer.from('hello')), /Missing or invalid X-Goog-Upload-Offset/);
    assert.equal((await chunk(url, Buffer.from('0123'), { offset: 0 })).status, 200);
    invalid(await chunk(url, Buffer.from('0123'), { offset: 0 }), /has received 4 bytes, so the next chunk starts at 4/);
    invalid(await chunk(url, Buffer.from('4567890'), { offset: 4 }), /would have 11 bytes, more than the 10 declared/);
    invalid(await chunk(url, Buffer.from('45'), { offset: 4, command: 'upload, finalize' }), /has 6 of the 10 bytes declared/);
    invalid(await chunk(url, Buffer.alloc(0), { command: 'upload, finish' }), /Invalid X-Goog-Upload-Command "upload, finish"/);

    const query = await chunk(url, Buffer.alloc(0), { command: 'query' });
    assert.equal(query.status, 200);
    assert.equal(query.headers.get('x-goog-upload-size-received'), '6', 'the short finalize kept its valid bytes');

    const done = await chunk(url, Buffer.from('6789'), { offset: 6, command: 'upload, finalize' });
    assert.equal(done.status, 200);
    assert.ok((await ctl.fileBytes(done.json.file.name)).equals(Buffer.from('0123456789')));

    // A finished session is gone, like an unknown one.
    const gone = await chunk(url, Buffer.from('x'), { offset: 10 });
    assert.deepEqual(gone.json, error(404, 'NOT_FOUND', 'Requested entity was not found.'));
    const unknown = await chunk(`${mock.url}/upload/v1beta/files?upload_id=nope&upload_protocol=resumable`, Buffer.from('x'), { offset: 0 });
    assert.equal(unknown.status, 404);
  });

  test('`finalize` alone ends an upload whose bytes are in; `cancel` forgets one', T, async () => {
    const key = freshKey();
    const url = await uploadUrlFor(key, { size: 4 });
    assert.equal((await chunk(url, Buffer.from('abcd'), { offset: 0 })).status, 200);
    const done = await chunk(url, Buffer.alloc(0), { command: 'finalize' });
    assert.equal(done.status, 200);
    assert.equal(done.headers.get('x-goog-upload-status'), 'final');
    assert.equal(done.json.file.sizeBytes, '4');

    const other = await uploadUrlFor(key, { size: 4 });
    assert.equal((await chunk(other, Buffer.from('ab'), { offset: 0 })).status, 200);
    const cancelled = await chunk(other, Buffer.alloc(0), { command: 'cancel' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.headers.get('x-goog-upload-status'), 'cancelled');
    assert.equal((await chunk(other, Buffer.from('cd'), { offset: 2 })).status, 404);
    const stored = await ctl.files();
    assert.deepEqual(stored.uploads.filter((u) => u.key === key), []);
    assert.equal(stored.files.filter((f) => f.key === key).length, 1);
  });

  test('an upload without a declared size takes any size', T, async () => {
    const key = freshKey();
    const url = await uploadUrlFor(key, {});
    assert.equal((await ctl.files()).uploads.find((u) => u.key === key).declared, null);
    assert.equal((await chunk(url, Buffer.from('abc'), { offset: 0 })).status, 200);
    const done = await chunk(url, Buffer.from('de'), { offset: 3, command: 'upload, finalize' });
    assert.equal(done.json.file.sizeBytes, '5');
  });

  test('the file belongs to the key that started the upload, whatever key the chunks carry', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const url = await uploadUrlFor(owner, { size: 2 });
    const done = await chunk(url, Buffer.from('hi'), { offset: 0, command: 'upload, finalize', key: other });
    assert.equal(done.status, 200);
    const id = fileId(done.json.file);
    assert.equal((await lastCall({ action: 'files.upload', key: other })).file, done.json.file.name, 'the chunk records the key it carried');
    assert.equal((await ctl.files()).files.find((f) => f.name === done.json.file.name).key, owner);
    assert.equal((await call(`/v1beta/files/${id}`, { key: owner })).status, 200);
    assert.deepEqual((await call(`/v1beta/files/${id}`, { key: other })).json, fileDenied(id));
  });

  test('start: no key is 403, and the key conventions apply as to model calls', T, async () => {
    const none = await start(null, { size: 1 });
    assert.equal(none.status, 403);
    assert.equal(none.json.error.status, 'PERMISSION_DENIED');
    assert.match(none.json.error.message, /unregistered callers/);

    const invalid = await start(freshKey('invalid'), { size: 1 });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json.error.details[0].reason, 'API_KEY_INVALID');
    const denied = await start(freshKey('denied'), { size: 1 });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.details[0].reason, 'CONSUMER_SUSPENDED');
    assert.equal((await start(freshKey('err500'), { size: 1 })).status, 500);
    assert.equal((await start(freshKey('err503'), { size: 1 })).status, 503);
    const limited = await start(freshKey('rl-minute'), { size: 1 });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.status, 'RESOURCE_EXHAUSTED');

    // The quota and 5xx conventions are the start's only; invalid-/denied- fail every method.
    assert.equal((await call('/v1beta/files', { key: freshKey('err503') })).status, 200);
    assert.equal((await call('/v1beta/files', { key: freshKey('invalid') })).status, 400);
    assert.equal((await call('/v1beta/cachedContents', { key: freshKey('denied') })).status, 403);
  });

  test('script rules: a key rule reaches the start, a model rule does not, an action rule reaches chunks', T, async () => {
    const key = freshKey();
    await ctl.script({ key, fault: 'server_503', times: 1 });
    assert.equal((await start(key, { size: 2 })).status, 503);
    assert.equal((await lastCall({ key, action: 'files.start' })).fault, 'server_503');

    await ctl.script({ key, model: 'gemini-2.5-flash', fault: 'server_500', times: 1 });
    const url = await uploadUrlFor(key, { size: 2 });
    await ctl.clearScripts();

    // A dropped chunk can be sent again at the same offset.
    await ctl.script({ action: 'files.upload', fault: 'drop', times: 1 });
    await assert.rejects(chunk(url, Buffer.from('ok'), { offset: 0, command: 'upload, finalize' }));
    const retried = await chunk(url, Buffer.from('ok'), { offset: 0, command: 'upload, finalize' });
    assert.equal(retried.status, 200);
    const [dropped, ok] = (await ctl.calls({ action: 'files.upload' })).slice(-2);
    assert.ok(dropped.droppedAt);
    assert.equal(ok.status, 200);

    await ctl.script({ key, action: 'files.get', fault: 'not_found', times: 1 });
    const nf = await call(`/v1beta/files/${fileId(retried.json.file)}`, { key });
    assert.deepEqual(nf.json, error(404, 'NOT_FOUND', 'Requested entity was not found.'));
  });

  test('a chosen file name is used, must be well-formed, and cannot be taken twice', T, async () => {
    const [key, other] = [freshKey(), freshKey()];
    const name = `files/my-doc-${counter}`;
    const file = await upload(key, Buffer.from('x'), { name });
    assert.equal(file.name, name);
    assert.equal(file.uri, `${mock.url}/v1beta/${name}`);

    const taken = await start(other, { size: 1, body: { file: { name } } });
    assert.deepEqual(taken.json, error(409, 'ALREADY_EXISTS', `File ${name} already exists.`));
    for (const bad of ['files/-dash', 'files/UPPER', `files/${'a'.repeat(41)}`]) {
      const r = await start(key, { size: 1, body: { file: { name: bad } } });
      assert.equal(r.status, 400, bad);
      assert.match(r.json.error.message, /CreateFileRequest\.file\.name: Invalid name/);
    }
  });

  test('start needs the resumable protocol and a CreateFileRequest body', T, async () => {
    const key = freshKey();
    const multipart = await start(key, { size: 1, headers: { 'x-goog-upload-protocol': 'multipart' } });
    assert.equal(multipart.status, 400);
    assert.equal(multipart.json.error.status, 'INVALID_ARGUMENT');
    assert.equal((await start(key, { size: 1, headers: { 'x-goog-upload-command': 'upload' } })).status, 400);
    assert.equal((await start(key, { size: 1, headers: { 'x-goog-upload-header-content-length': 'ten' } })).status, 400);
    const unknown = await start(key, { size: 1, body: { file: { mimeType: 'text/plain', colour: 'blue' } } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error.message, 'Invalid JSON payload received. Unknown name "colour" at \'file\': Cannot find field.');
  });
});

// ---------------------------------------------------------------- files

describe('files', () => {
  test('get: the owner gets the File; another key, or an unknown id, gets Google\'s 403', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const file = await upload(owner, Buffer.from('png?'), { displayName: 'a.png' });
    const mine = await call(`/v1beta/files/${fileId(file)}`, { key: owner });
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.json, file);
    assert.equal(mine.headers.get('content-type'), 'application/json; charset=UTF-8');

    const theirs = await call(`/v1beta/files/${fileId(file)}`, { key: other });
    assert.equal(theirs.status, 403);
    assert.deepEqual(theirs.json, fileDenied(fileId(file)));
    assert.deepEqual((await call('/v1beta/files/nosuchfile1', { key: owner })).json, fileDenied('nosuchfile1'));
    assert.equal((await call(`/v1beta/files/${fileId(file)}`)).status, 403, 'no key at all');
  });

  test('list pages through the caller\'s files only, newest first', T, async () => {
    const [key, other, empty] = [freshKey(), freshKey(), freshKey()];
    const names = [];
    for (let i = 0; i < 5; i += 1) names.push((await upload(key, Buffer.from(`file ${i}`))).name);
    await upload(other, Buffer.from('not yours'));

    const pages = await allPages('/v1beta/files', key, 'files', 2);
    assert.deepEqual(pages, [names.slice(3).reverse(), names.slice(1, 3).reverse(), names.slice(0, 1)]);
    const whole = await call('/v1beta/files', { key });
    assert.deepEqual(whole.json.files.map((f) => f.name), [...names].reverse());
    assert.equal(whole.json.nextPageToken, undefined, 'no token on the last page');

    assert.deepEqual((await call('/v1beta/files', { key: empty })).json, {}, 'no files: an empty object');
    const bad = await call('/v1beta/files?pageToken=garbage', { key });
    assert.deepEqual(bad.json, error(400, 'INVALID_ARGUMENT', 'Invalid page token.'));
  });

  test('list: 10 files per page by default', T, async () => {
    const key = freshKey();
    for (let i = 0; i < 11; i += 1) await upload(key, Buffer.from([i]));
    const first = await call('/v1beta/files', { key });
    assert.equal(first.json.files.length, 10);
    const second = await call(`/v1beta/files?pageToken=${first.json.nextPageToken}`, { key });
    assert.equal(second.json.files.length, 1);
    assert.equal((await call('/v1beta/files?pageSize=1000', { key })).json.files.length, 11);
  });

  test('a page token stays right when files before it are deleted', T, async () => {
    const key = freshKey();
    const names = [];
    for (let i = 0; i < 4; i += 1) names.push((await upload(key, Buffer.from([i]))).name);
    const first = await call('/v1beta/files?pageSize=2', { key });
    for (const f of first.json.files) await call(`/v1beta/${f.name}`, { method: 'DELETE', key });
    const second = await call(`/v1beta/files?pageSize=2&pageToken=${first.json.nextPageToken}`, { key });
    assert.deepEqual(second.json.files.map((f) => f.name), [names[1], names[0]]);
  });

  test('delete: the owner gets {} and the file is gone; another key gets 403 and it stays', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const file = await upload(owner, Buffer.from('bye'));
    const id = fileId(file);
    const refused = await call(`/v1beta/files/${id}`, { method: 'DELETE', key: other });
    assert.deepEqual(refused.json, fileDenied(id));
    assert.equal((await call(`/v1beta/files/${id}`, { key: owner })).status, 200);

    const deleted = await call(`/v1beta/files/${id}`, { method: 'DELETE', key: owner });
    assert.equal(deleted.status, 200);
    assert.deepEqual(deleted.json, {});
    assert.deepEqual((await call(`/v1beta/files/${id}`, { key: owner })).json, fileDenied(id));
    assert.equal((await ctl.files()).files.some((f) => f.name === file.name), false);
  });

  test('an expired file is gone like a deleted one', T, async () => {
    const key = freshKey();
    const file = await upload(key, Buffer.from('old'));
    assert.equal(await ctl.expireFile(file.name), 1);
    assert.equal(await ctl.expireFile(file.name), 0);
    assert.deepEqual((await call(`/v1beta/${file.name}`, { key })).json, fileDenied(fileId(file)));
  });

  test('the Files API is v1beta only: /v1/files is Google\'s HTML 404', T, async () => {
    const r = await call('/v1/files', { key: freshKey() });
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.equal((await call('/v1/cachedContents', { key: freshKey() })).status, 404);
    assert.equal((await call('/upload/v1beta/files', { method: 'PUT', key: freshKey() })).status, 404);
  });
});

// ---------------------------------------------------------------- references in generation

describe('file references', () => {
  test('generateContent accepts the caller\'s file in each URI form and refuses another key\'s with 403', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const model = freshModel();
    const file = await upload(owner, Buffer.from('image bytes'));
    const id = fileId(file);
    const forms = [file.uri, `https://generativelanguage.googleapis.com/v1beta/files/${id}`, `files/${id}`];
    for (const uri of forms) {
      const ok = await generate(model, owner, withParts(filePart(uri)));
      assert.equal(ok.status, 200, `${uri}: ${ok.text}`);
      // Token counting is unchanged: a file part is 258 tokens, the text ceil(11 / 4) = 3.
      assert.equal(ok.json.usageMetadata.promptTokenCount, 261);
    }
    for (const uri of forms) {
      const refused = await generate(model, other, withParts(filePart(uri)));
      assert.equal(refused.status, 403, uri);
      assert.deepEqual(refused.json, fileDenied(id));
    }
    // A foreign file in the system instruction is refused too.
    const inSystem = await generate(model, other, { ...withParts(), systemInstruction: { parts: [filePart(file.uri)] } });
    assert.deepEqual(inSystem.json, fileDenied(id));
  });

  test('other URIs pass as before; a deleted or unknown Files API file is refused', T, async () => {
    const key = freshKey();
    const model = freshModel();
    for (const uri of ['https://www.youtube.com/watch?v=9hE5-98ZeCg', 'gs://bucket/video.mp4', 'https://example.com/a.png']) {
      assert.equal((await generate(model, key, withParts(filePart(uri, 'video/mp4')))).status, 200, uri);
    }
    const file = await upload(key, Buffer.from('short-lived'));
    await call(`/v1beta/${file.name}`, { method: 'DELETE', key });
    assert.deepEqual((await generate(model, key, withParts(filePart(file.uri)))).json, fileDenied(fileId(file)));
    assert.deepEqual((await generate(model, key, withParts(filePart('files/neverexisted')))).json, fileDenied('neverexisted'));
  });

  test('streamGenerateContent and both forms of countTokens check files too', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const model = freshModel();
    const file = await upload(owner, Buffer.from('x'));
    const body = withParts(filePart(file.uri));

    assert.equal((await generate(model, owner, body, 'streamGenerateContent', '?alt=sse')).status, 200);
    const stream = await generate(model, other, body, 'streamGenerateContent', '?alt=sse');
    assert.equal(stream.status, 403);
    assert.deepEqual(stream.json, fileDenied(fileId(file)));

    const count = await generate(model, owner, body, 'countTokens');
    assert.deepEqual(count.json, {
      totalTokens: 261,
      promptTokensDetails: [
        { modality: 'TEXT', tokenCount: 3 },
        { modality: 'IMAGE', tokenCount: 258 },
      ],
    });
    assert.deepEqual((await generate(model, other, body, 'countTokens')).json, fileDenied(fileId(file)));
    const inner = { generateContentRequest: { model: `models/${model}`, ...body } };
    assert.equal((await generate(model, owner, inner, 'countTokens')).json.totalTokens, 261);
    assert.deepEqual((await generate(model, other, inner, 'countTokens')).json, fileDenied(fileId(file)));
  });

  test('Code Assist has no Files API: a reference to one is a 400', T, async () => {
    const slug = `files-ca-${counter++}`;
    const token = await call('/token', {
      method: 'POST',
      body: `grant_type=refresh_token&refresh_token=1//${slug}&client_id=c&client_secret=s`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const bearer = { authorization: `Bearer ${token.json.access_token}` };
    const file = await upload(freshKey(), Buffer.from('x'));
    const envelope = (request) => ({ model: 'gemini-2.5-flash', project: `mock-project-${slug}`, request });
    const ca = (method, body) => call(`/v1internal:${method}`, { method: 'POST', body, headers: bearer });

    for (const uri of [file.uri, `files/${fileId(file)}`]) {
      const r = await ca('generateContent', envelope(withParts(filePart(uri))));
      assert.deepEqual(r.json, error(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.'), uri);
    }
    const count = await ca('countTokens', { request: { model: 'models/gemini-2.5-flash', ...withParts(filePart(file.uri)) } });
    assert.equal(count.status, 400);
    const cached = await ca('generateContent', envelope({ ...withParts(), cachedContent: 'cachedContents/abc' }));
    assert.equal(cached.status, 400);
    const youtube = await ca('generateContent', envelope(withParts(filePart('https://www.youtube.com/watch?v=x', 'video/mp4'))));
    assert.equal(youtube.status, 200);
  });
});

// ---------------------------------------------------------------- cachedContents

describe('cachedContents', () => {
  test('create answers a CachedContent that lives 1 h by default; its tokens are the cached prompt\'s', T, async () => {
    const key = freshKey();
    const model = freshModel();
    const file = await upload(key, Buffer.from('doc'), { mimeType: 'application/pdf' });
    const r = await createCache(key, {
      model: `models/${model}`,
      displayName: 'manual',
      systemInstruction: { parts: [{ text: 'You answer from the manual.' }] },
      contents: [{ role: 'user', parts: [filePart(file.uri, 'application/pdf'), { text: 'the manual' }] }],
    });
    assert.equal(r.status, 200, r.text);
    const cache = r.json;
    assert.match(cache.name, /^cachedContents\/[a-z0-9]{12}$/);
    assert.deepEqual(Object.keys(cache), ['name', 'model', 'createTime', 'updateTime', 'expireTime', 'displayName', 'usageMetadata']);
    assert.equal(cache.model, `models/${model}`);
    assert.equal(cache.displayName, 'manual');
    assert.equal(cache.updateTime, cache.createTime);
    assert.equal(Date.parse(cache.expireTime) - Date.parse(cache.createTime), HOUR);
    // 258 (the PDF) + ceil(10 / 4) + ceil(27 / 4).
    assert.deepEqual(cache.usageMetadata, { totalTokenCount: 258 + 3 + 7 });

    const c = await lastCall({ key, action: 'cachedContents.create' });
    assert.equal(c.cachedContent, cache.name);
    assert.equal(c.model, model);
    const got = await call(`/v1beta/${cache.name}`, { key });
    assert.deepEqual(got.json, cache);
    assert.deepEqual((await call('/v1beta/cachedContents', { key })).json, { cachedContents: [cache] });

    const deleted = await call(`/v1beta/${cache.name}`, { method: 'DELETE', key });
    assert.deepEqual(deleted.json, {});
    assert.deepEqual((await call(`/v1beta/${cache.name}`, { key })).json, CACHE_DENIED);
    assert.deepEqual((await call('/v1beta/cachedContents', { key })).json, {});
  });

  test('ttl and expireTime set the expiry; both at once, or one in the past, are 400', T, async () => {
    const key = freshKey();
    const model = `models/${freshModel()}`;
    const ttl = (await createCache(key, { model, ttl: '300s' })).json;
    assert.equal(Date.parse(ttl.expireTime) - Date.parse(ttl.createTime), 300_000);
    const fractional = (await createCache(key, { model, ttl: '1.5s' })).json;
    assert.equal(Date.parse(fractional.expireTime) - Date.parse(fractional.createTime), 1500);
    const at = new Date(Date.now() + 2 * HOUR).toISOString();
    assert.equal((await createCache(key, { model, expireTime: at })).json.expireTime, at);

    const both = await createCache(key, { model, ttl: '60s', expireTime: at });
    assert.equal(both.status, 400);
    assert.match(both.json.error.message, /oneof field 'expiration' is already set/);
    const past = await createCache(key, { model, expireTime: '2020-01-01T00:00:00Z' });
    assert.equal(past.json.error.message, '* CreateCachedContentRequest.cached_content.expire_time: expire_time must be in the future\n');
    assert.equal((await createCache(key, { model, ttl: '0s' })).status, 400);
    const badTtl = await createCache(key, { model, ttl: '5m' });
    assert.equal(badTtl.json.error.message, "Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), \"5m\"");
  });

  test('create: a missing model is 400, an unknown one 404, a foreign file 403, an unknown field 400', T, async () => {
    const [key, other] = [freshKey(), freshKey()];
    const missing = await createCache(key, { contents: withParts().contents });
    assert.deepEqual(missing.json, error(400, 'INVALID_ARGUMENT', '* CreateCachedContentRequest.cached_content.model: model is not specified\n'));

    const unknown = await createCache(key, { model: 'models/no-such-model' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.message.split(',')[0], 'models/no-such-model is not found for API version v1beta');
    assert.equal((await createCache(key, { model: 'models/text-embedding-004' })).status, 404, 'embedding models cannot cache');

    const file = await upload(other, Buffer.from('theirs'));
    const foreign = await createCache(key, { model: `models/${freshModel()}`, ...withParts(filePart(file.uri)) });
    assert.deepEqual(foreign.json, fileDenied(fileId(file)));

    const typo = await createCache(key, { model: `models/${freshModel()}`, ttls: '60s' });
    assert.equal(typo.json.error.message, 'Invalid JSON payload received. Unknown name "ttls" at \'cached_content\': Cannot find field.');
    assert.deepEqual((await ctl.files()).cachedContents.filter((c) => c.key === key), [], 'nothing was created');
  });

  test('another key gets 403 on get, patch and delete, and lists none of it', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const cache = (await createCache(owner, { model: `models/${freshModel()}` })).json;
    assert.deepEqual((await call(`/v1beta/${cache.name}`, { key: other })).json, CACHE_DENIED);
    assert.deepEqual((await call(`/v1beta/${cache.name}`, { method: 'PATCH', key: other, body: { ttl: '60s' } })).json, CACHE_DENIED);
    assert.deepEqual((await call(`/v1beta/${cache.name}`, { method: 'DELETE', key: other })).json, CACHE_DENIED);
    assert.deepEqual((await call('/v1beta/cachedContents', { key: other })).json, {});
    assert.deepEqual((await call(`/v1beta/${cache.name}`, { key: owner })).json, cache, 'unchanged');
    assert.deepEqual((await call('/v1beta/cachedContents/nosuchcache', { key: owner })).json, CACHE_DENIED);
  });

  test('patch changes only the expiration, with or without updateMask', T, async () => {
    const key = freshKey();
    const cache = (await createCache(key, { model: `models/${freshModel()}`, displayName: 'keep me' })).json;
    const patch = (body, query = '') => call(`/v1beta/${cache.name}${query}`, { method: 'PATCH', key, body });

    const byTtl = await patch({ ttl: '120s' });
    assert.equal(byTtl.status, 200);
    assert.equal(Date.parse(byTtl.json.expireTime) - Date.parse(byTtl.json.updateTime), 120_000);
    assert.equal(byTtl.json.createTime, cache.createTime);
    assert.equal(byTtl.json.displayName, 'keep me');

    const at = new Date(Date.now() + 5 * HOUR).toISOString();
    assert.equal((await patch({ expireTime: at }, '?updateMask=expireTime')).json.expireTime, at);
    assert.equal((await patch({ expire_time: at }, '?updateMask=expire_time')).json.expireTime, at);

    const masked = await patch({ displayName: 'renamed', ttl: '60s' }, '?updateMask=displayName');
    assert.equal(masked.json.error.message, '* UpdateCachedContentRequest.update_mask: only ttl and expire_time can be updated, not "displayName"\n');
    const nothing = await patch({});
    assert.equal(nothing.json.error.message, '* UpdateCachedContentRequest.cached_content.expiration: ttl or expire_time must be set\n');
    assert.equal((await call(`/v1beta/${cache.name}`, { key })).json.expireTime, at, 'the refused patches changed nothing');
  });

  test('list pages through the caller\'s cached contents, newest first', T, async () => {
    const key = freshKey();
    const model = `models/${freshModel()}`;
    const names = [];
    for (let i = 0; i < 3; i += 1) names.push((await createCache(key, { model, displayName: `c${i}` })).json.name);
    assert.deepEqual(await allPages('/v1beta/cachedContents', key, 'cachedContents', 2), [[names[2], names[1]], [names[0]]]);
  });

  test('generation on a cache: the owner\'s runs with cached tokens; foreign, other-model and instruction-carrying requests are refused', T, async () => {
    const [owner, other] = [freshKey(), freshKey()];
    const model = freshModel();
    const cache = (
      await createCache(owner, {
        model: `models/${model}`,
        systemInstruction: { parts: [{ text: 'Be brief.' }] },
        contents: [{ role: 'user', parts: [{ text: 'a long document'.repeat(10) }] }],
      })
    ).json;
    const cached = cache.usageMetadata.totalTokenCount;
    assert.equal(cached, 3 + 38);
    const body = { ...withParts(), cachedContent: cache.name };

    const ok = await generate(model, owner, body);
    assert.equal(ok.status, 200, ok.text);
    const usage = ok.json.usageMetadata;
    assert.equal(usage.cachedContentTokenCount, cached);
    assert.equal(usage.promptTokenCount, cached + 3, 'the prompt count includes the cached tokens');
    assert.deepEqual(usage.cacheTokensDetails, [{ modality: 'TEXT', tokenCount: cached }]);
    assert.deepEqual(usage.promptTokensDetails, [{ modality: 'TEXT', tokenCount: cached + 3 }]);
    assert.equal(usage.totalTokenCount, usage.promptTokenCount + usage.candidatesTokenCount + (usage.thoughtsTokenCount ?? 0));
    const rec = await lastCall({ key: owner, model });
    assert.equal(rec.cachedContent, cache.name);
    assert.equal(rec.tokens.cached, cached);

    const stream = await generate(model, owner, body, 'streamGenerateContent', '?alt=sse');
    const events = stream.text.split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.slice('data: '.length)));
    assert.ok(events.every((e) => e.usageMetadata.cachedContentTokenCount === cached), 'every event reports the cached tokens');

    const counted = await generate(model, owner, { generateContentRequest: { model: `models/${model}`, ...body } }, 'countTokens');
    assert.equal(counted.json.totalTokens, cached + 3);
    assert.equal(counted.json.cachedContentTokenCount, cached);

    assert.deepEqual((await generate(model, other, body)).json, CACHE_DENIED);
    assert.deepEqual((await generate(model, other, body, 'streamGenerateContent', '?alt=sse')).json, CACHE_DENIED);
    const otherModel = freshModel();
    assert.deepEqual(
      (await generate(otherModel, owner, body)).json,
      error(400, 'INVALID_ARGUMENT', `Model used by GenerateContent request (models/${otherModel}) and CachedContent (models/${model}) has to be the same.`),
    );
    const instructions = error(400, 'INVALID_ARGUMENT', 'Tool config, tools and system instruction should not be set in the request when using cached content.');
    assert.deepEqual((await generate(model, owner, { ...body, systemInstruction: { parts: [{ text: 'x' }] } })).json, instructions);
    assert.deepEqual((await generate(model, owner, { ...body, tools: [{ googleSearch: {} }] })).json, instructions);
    assert.deepEqual((await generate(model, owner, { ...body, toolConfig: { functionCallingConfig: { mode: 'NONE' } } })).json, instructions);
    assert.deepEqual((await generate(model, owner, { ...body, cachedContent: 'nosuchcache' })).json, CACHE_DENIED);

    assert.equal(await ctl.expireCachedContent(cache.name), 1);
    assert.deepEqual((await generate(model, owner, body)).json, CACHE_DENIED, 'an expired cache is gone');
  });
});

// ---------------------------------------------------------------- inspection

describe('inspection', () => {
  test('every files, upload and cachedContents call is recorded with its action and key', T, async () => {
    const key = freshKey();
    const since = (await ctl.calls()).at(-1)?.seq ?? 0;
    const file = await upload(key, Buffer.from('abc'));
    await call(`/v1beta/${file.name}`, { key });
    await call('/v1beta/files', { key });
    const cache = (await createCache(key, { model: `models/${freshModel()}` })).json;
    await call(`/v1beta/${cache.name}`, { key });
    await call('/v1beta/cachedContents', { key });
    await call(`/v1beta/${cache.name}`, { method: 'PATCH', key, body: { ttl: '10s' } });
    await call(`/v1beta/${cache.name}`, { method: 'DELETE', key });
    await call(`/v1beta/${file.name}`, { method: 'DELETE', key });
    const calls = await ctl.calls({ since });
    assert.deepEqual(
      calls.map((c) => [c.action, c.key, c.status]),
      [
        ['files.start', key, 200],
        ['files.upload', null, 200],
        ['files.get', key, 200],
        ['files.list', key, 200],
        ['cachedContents.create', key, 200],
        ['cachedContents.get', key, 200],
        ['cachedContents.list', key, 200],
        ['cachedContents.patch', key, 200],
        ['cachedContents.delete', key, 200],
        ['files.delete', key, 200],
      ],
    );
    assert.deepEqual(
      calls.filter((c) => c.file).map((c) => [c.action, c.file]),
      [
        ['files.upload', file.name],
        ['files.get', file.name],
        ['files.delete', file.name],
      ],
    );
    assert.equal(calls[1].bodyBytes, 3);
    assert.equal(calls[1].body, null);
  });

  test('/__mock/files lists what each key stores; reset clears files, uploads and caches', T, async () => {
    // A mock of its own: reset is global.
    const own = await startMock();
    try {
      const c = mockClient(own.url);
      const base = own.url;
      const startHere = (key, size, body) =>
        call('/upload/v1beta/files', {
          base,
          method: 'POST',
          key,
          body,
          headers: { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start', 'x-goog-upload-header-content-length': String(size) },
        });
      const url = (await startHere('ka', 2, { file: { mimeType: 'text/plain', displayName: 'two' } })).headers.get('x-goog-upload-url');
      assert.ok(url.startsWith(`${own.url}/upload/v1beta/files?upload_id=`), 'the upload URL names this mock');
      const file = (await chunk(url, Buffer.from('hi'), { offset: 0, command: 'upload, finalize' })).json.file;
      const pending = (await startHere('kb', 9, {})).headers.get('x-goog-upload-url');
      const cache = (await call('/v1beta/cachedContents', { base, method: 'POST', key: 'kb', body: { model: 'models/gemini-2.5-flash' } })).json;

      assert.deepEqual(await c.files(), {
        files: [{ name: file.name, key: 'ka', sizeBytes: '2', mimeType: 'text/plain', sha256Hash: googleSha(Buffer.from('hi')), displayName: 'two' }],
        cachedContents: [{ name: cache.name, key: 'kb', model: 'models/gemini-2.5-flash' }],
        uploads: [{ id: new URL(pending).searchParams.get('upload_id'), key: 'kb', declared: 9, received: 0 }],
      });
      assert.equal(own.state.fileStore.ownedFile('ka', fileId(file)).key, 'ka', 'in-process tests can read the store');

      await c.reset();
      assert.deepEqual(await c.files(), { files: [], cachedContents: [], uploads: [] });
      assert.equal((await chunk(pending, Buffer.from('x'), { offset: 0 })).status, 404, 'pending uploads are gone too');
      await assert.rejects(c.fileBytes(file.name), /404/);
    } finally {
      await own.close();
    }
  });
});
