// The Gemini API's Files API, with Google's resumable upload protocol, and
// its cachedContents (README: "Files and cached contents"). Both live under
// /v1beta only. Every file and cached content belongs to the API key that
// created it, and no other key can see it: a key stands for a Google project.
//
//   POST   /upload/v1beta/files                      start a resumable upload   files.start
//   POST   /upload/v1beta/files?upload_id=…          send bytes / finalize      files.upload
//   GET    /v1beta/files[/{id}], DELETE /v1beta/files/{id}                       files.list / get / delete
//   POST   /v1beta/cachedContents, GET /v1beta/cachedContents[/{id}],
//   PATCH  /v1beta/cachedContents/{id}, DELETE /v1beta/cachedContents/{id}       cachedContents.*

import { createHash } from 'node:crypto';
import {
  alreadyExists,
  cachedContentNotFound,
  durationMs,
  entityNotFound,
  fileNotAccessible,
  invalidArgument,
  invalidPayload,
  modelNotFound,
} from './errors.mjs';
import {
  DEFAULT_CACHE_TTL_MS,
  FILE_ID,
  MAX_FILE_BYTES,
  UPLOAD_CHUNK_GRANULARITY,
  cachedContentJson,
  checkReferences,
} from './filestore.mjs';
import { admit, apiKeyOf } from './gemini.mjs';
import { findModel, stripModelsPrefix, supports } from './models.mjs';
import { BODY_FIELDS, REQUEST_TYPES, checkContents, parseRequest } from './requests.mjs';
import { send } from './respond.mjs';
import { promptTokens } from './tokens.mjs';

const API_VERSION = 'v1beta';
/** files.list: 10 by default, at most 100 (Google's documented limits). */
const FILES_PAGE = { fallback: 10, max: 100 };
/** cachedContents.list: Google documents at most 1000 and "some default" below it. */
const CACHES_PAGE = { fallback: 100, max: 1000 };
const DEFAULT_MIME_TYPE = 'application/octet-stream';

/**
 * Matches a Files API or cachedContents route: `{ action, apiVersion,
 * surface, run, id?, binary?, keyless? }`, or null. `binary`: the body is
 * bytes, not text. `keyless`: no API key is needed.
 */
export function filesRoute(method, url) {
  const path = url.pathname;
  const route = (action, run, extra = {}) => ({ action, apiVersion: API_VERSION, surface: 'files', run, ...extra });
  if (path === '/upload/v1beta/files') {
    if (method !== 'POST') return null;
    // The upload URL is the same path with the session's id: the id is the capability, the key is optional.
    return url.searchParams.has('upload_id')
      ? route('files.upload', uploadChunk, { binary: true, keyless: true })
      : route('files.start', startUpload);
  }
  if (path === '/v1beta/files') return method === 'GET' ? route('files.list', listFiles) : null;
  let m = /^\/v1beta\/files\/([^/:]+)$/.exec(path);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (method === 'GET') return route('files.get', getFile, { id });
    if (method === 'DELETE') return route('files.delete', deleteFile, { id });
    return null;
  }
  if (path === '/v1beta/cachedContents') {
    if (method === 'POST') return route('cachedContents.create', createCache);
    if (method === 'GET') return route('cachedContents.list', listCaches);
    return null;
  }
  m = /^\/v1beta\/cachedContents\/([^/:]+)$/.exec(path);
  if (m) {
    const id = decodeURIComponent(m[1]);
    if (method === 'GET') return route('cachedContents.get', getCache, { id });
    if (method === 'PATCH') return route('cachedContents.patch', patchCache, { id });
    if (method === 'DELETE') return route('cachedContents.delete', deleteCache, { id });
  }
  return null;
}

export async function handleFiles(ctx, route) {
  // On upload chunks this is whichever key was sent, if any; the file belongs to the key that started the upload.
  ctx.call.key = apiKeyOf(ctx.req, ctx.url);
  const behaviour = route.keyless
    ? await admit(ctx, route, { keyless: true, body: chunkIdentity(ctx) })
    : await admit(ctx, route);
  if (behaviour) await route.run(ctx, route, behaviour);
}

const header = (req, name) => {
  const value = req.headers[name];
  return value === undefined ? undefined : String(value).trim();
};

/**
 * A resumable upload's responses have no body, only headers (and Google's
 * upload server sends `text/plain` for them).
 */
function sendEmpty(ctx, headers) {
  const { call, res } = ctx;
  call.status = 200;
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': 0 });
  res.end();
}

/** Sends an error of a live upload session, whose status stays `active`. */
function refuseChunk(ctx, error) {
  if (!ctx.res.headersSent) ctx.res.setHeader('x-goog-upload-status', 'active');
  send(ctx, error);
}

// ---------------------------------------------------------------- resumable upload

/**
 * `x-goog-upload-command: start`. The body is a CreateFileRequest,
 * `{file: {name?, displayName?, mimeType?, ...}}`, possibly empty. The MIME
 * type is the body's, else the `x-goog-upload-header-content-type` header's;
 * the declared size is `x-goog-upload-header-content-length`, else the
 * body's `sizeBytes`, else none (any size is then taken).
 */
function startUpload(ctx) {
  const { req, call, state } = ctx;
  const protocol = (header(req, 'x-goog-upload-protocol') ?? '').toLowerCase();
  const command = (header(req, 'x-goog-upload-command') ?? '').toLowerCase();
  if (protocol !== 'resumable') {
    return send(ctx, invalidArgument('The mock supports resumable uploads only: send X-Goog-Upload-Protocol: resumable.'));
  }
  if (command !== 'start') {
    return send(ctx, invalidArgument(`Invalid X-Goog-Upload-Command "${command}": a new upload starts with "start".`));
  }
  const parsed = parseRequest(REQUEST_TYPES['files.start'], ctx.rawBody);
  if (parsed.violations) return send(ctx, invalidPayload(parsed.violations));
  const file = parsed.value.file ?? {};

  const lengthHeader = header(req, 'x-goog-upload-header-content-length');
  if (lengthHeader !== undefined && !/^\d+$/.test(lengthHeader)) {
    return send(ctx, invalidArgument(`Invalid X-Goog-Upload-Header-Content-Length "${lengthHeader}".`));
  }
  const declared = lengthHeader !== undefined ? Number(lengthHeader) : file.sizeBytes;
  if (declared !== undefined && declared > MAX_FILE_BYTES) {
    return send(ctx, invalidArgument(`The file is ${declared} bytes; files may be at most ${MAX_FILE_BYTES} bytes (2 GB).`));
  }

  let fileId;
  if (file.name) {
    fileId = file.name.replace(/^files\//, '');
    if (!FILE_ID.test(fileId)) {
      return send(
        ctx,
        invalidArgument(
          `* CreateFileRequest.file.name: Invalid name "${file.name}": the id after "files/" may have up to 40 ` +
            'lowercase alphanumeric characters or dashes (-), and cannot start or end with a dash.\n',
        ),
      );
    }
    if (state.fileStore.file(fileId)) return send(ctx, alreadyExists(`File files/${fileId} already exists.`));
  }

  const mimeType = file.mimeType || header(req, 'x-goog-upload-header-content-type') || DEFAULT_MIME_TYPE;
  const upload = state.fileStore.startUpload({ key: call.key, fileId, displayName: file.displayName, mimeType, declared });
  const uploadUrl = `${ctx.baseUrl}/upload/v1beta/files?upload_id=${upload.id}&upload_protocol=resumable`;
  call.upload = { id: upload.id, url: uploadUrl, declared: declared ?? null, mimeType, status: 'active' };
  sendEmpty(ctx, {
    'x-goog-upload-status': 'active',
    'x-goog-upload-url': uploadUrl,
    'x-goog-upload-control-url': uploadUrl,
    'x-goog-upload-chunk-granularity': String(UPLOAD_CHUNK_GRANULARITY),
  });
}

/** What a flaky rule tells chunk requests apart by: the session, the offset and the bytes (a retry sends the same). */
function chunkIdentity(ctx) {
  const digest = createHash('sha256').update(ctx.bodyBytes ?? Buffer.alloc(0)).digest('hex');
  return `${ctx.url.searchParams.get('upload_id')}\n${ctx.req.headers['x-goog-upload-offset'] ?? ''}\n${digest}`;
}

/** `upload`, `upload, finalize`, `finalize`, `query` or `cancel`, as a set; null for anything else. */
function parseCommand(text) {
  const words = new Set(
    String(text ?? '')
      .toLowerCase()
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean),
  );
  const only = (...allowed) => words.size > 0 && [...words].every((w) => allowed.includes(w));
  if (only('upload', 'finalize')) return words;
  if (words.size === 1 && (words.has('query') || words.has('cancel'))) return words;
  return null;
}

/**
 * A request to an upload URL. The body is raw bytes, appended at
 * `x-goog-upload-offset` (which must be the number of bytes received so
 * far). `finalize` makes the file, when the total is the declared size.
 */
function uploadChunk(ctx) {
  const { req, url, call, state } = ctx;
  const store = state.fileStore;
  const upload = store.uploads.get(url.searchParams.get('upload_id'));
  if (!upload) return send(ctx, entityNotFound());
  const bytes = ctx.bodyBytes ?? Buffer.alloc(0);
  const commandText = header(req, 'x-goog-upload-command') ?? '';
  const offsetText = header(req, 'x-goog-upload-offset');
  call.upload = { id: upload.id, command: commandText, offset: offsetText ?? null, bytes: bytes.length, received: upload.received, status: 'active' };

  const command = parseCommand(commandText);
  if (!command) {
    return refuseChunk(
      ctx,
      invalidArgument(`Invalid X-Goog-Upload-Command "${commandText}": use "upload", "upload, finalize", "finalize", "query" or "cancel".`),
    );
  }
  if (command.has('query')) {
    return sendEmpty(ctx, {
      'x-goog-upload-status': 'active',
      'x-goog-upload-size-received': String(upload.received),
      'x-goog-upload-chunk-granularity': String(UPLOAD_CHUNK_GRANULARITY),
    });
  }
  if (command.has('cancel')) {
    store.endUpload(upload);
    call.upload.status = 'cancelled';
    return sendEmpty(ctx, { 'x-goog-upload-status': 'cancelled' });
  }

  // Bytes need an offset; a bare `finalize` may leave it out.
  if (command.has('upload') || bytes.length > 0 || offsetText !== undefined) {
    if (offsetText === undefined || !/^\d+$/.test(offsetText)) {
      return refuseChunk(ctx, invalidArgument(`Missing or invalid X-Goog-Upload-Offset "${offsetText ?? ''}".`));
    }
    if (Number(offsetText) !== upload.received) {
      return refuseChunk(
        ctx,
        invalidArgument(`Invalid X-Goog-Upload-Offset ${offsetText}: the upload has received ${upload.received} bytes, so the next chunk starts at ${upload.received}.`),
      );
    }
  }
  const total = upload.received + bytes.length;
  if (upload.declared !== undefined && total > upload.declared) {
    return refuseChunk(
      ctx,
      invalidArgument(`The upload would have ${total} bytes, more than the ${upload.declared} declared in X-Goog-Upload-Header-Content-Length.`),
    );
  }
  if (total > MAX_FILE_BYTES) {
    return refuseChunk(ctx, invalidArgument(`The upload would have ${total} bytes; files may be at most ${MAX_FILE_BYTES} bytes (2 GB).`));
  }
  store.append(upload, bytes);
  call.upload.received = upload.received;

  if (!command.has('finalize')) return sendEmpty(ctx, { 'x-goog-upload-status': 'active' });
  if (upload.declared !== undefined && upload.received !== upload.declared) {
    return refuseChunk(
      ctx,
      invalidArgument(`Cannot finalize: the upload has ${upload.received} of the ${upload.declared} bytes declared in X-Goog-Upload-Header-Content-Length.`),
    );
  }
  if (upload.fileId && store.file(upload.fileId)) {
    store.endUpload(upload);
    call.upload.status = 'failed';
    return send(ctx, alreadyExists(`File files/${upload.fileId} already exists.`));
  }
  const record = store.finishUpload(upload, ctx.baseUrl);
  call.upload.status = 'final';
  call.file = record.resource.name;
  ctx.res.setHeader('x-goog-upload-status', 'final');
  send(ctx, { status: 200, body: { file: record.resource } });
}

// ---------------------------------------------------------------- files

function getFile(ctx, route) {
  ctx.call.file = `files/${route.id}`;
  const record = ctx.state.fileStore.ownedFile(ctx.call.key, route.id);
  if (!record) return send(ctx, fileNotAccessible(route.id));
  send(ctx, { status: 200, body: record.resource });
}

function listFiles(ctx) {
  const page = paged(ctx, ctx.state.fileStore.filesOf(ctx.call.key), FILES_PAGE);
  if (!page) return;
  send(ctx, { status: 200, body: pageBody('files', page, (r) => r.resource) });
}

function deleteFile(ctx, route) {
  const store = ctx.state.fileStore;
  ctx.call.file = `files/${route.id}`;
  if (!store.ownedFile(ctx.call.key, route.id)) return send(ctx, fileNotAccessible(route.id));
  store.deleteFile(route.id);
  send(ctx, { status: 200, body: {} });
}

// ---------------------------------------------------------------- paging

/**
 * One page of `records` (newest first): `{ items, next }`, or null when the
 * page token was refused (already answered). Page tokens are opaque: here,
 * the base64url of the last record's sequence number, so a page stays right
 * when records before it are deleted meanwhile.
 */
function paged(ctx, records, { fallback, max }) {
  const params = ctx.url.searchParams;
  const requested = Number.parseInt(params.get('pageSize') ?? '', 10);
  const size = requested > 0 ? Math.min(requested, max) : fallback;
  const token = params.get('pageToken');
  let rest = records;
  if (token) {
    const m = /^seq:(\d+)$/.exec(Buffer.from(token, 'base64url').toString());
    if (!m) {
      send(ctx, invalidArgument('Invalid page token.'));
      return null;
    }
    rest = records.filter((r) => r.seq < Number(m[1]));
  }
  const items = rest.slice(0, size);
  const next = rest.length > size ? Buffer.from(`seq:${items.at(-1).seq}`).toString('base64url') : undefined;
  return { items, next };
}

/** `{ <field>: [...], nextPageToken? }`; Google sends `{}` for an empty list and no token on the last page. */
function pageBody(field, { items, next }, render) {
  return {
    ...(items.length ? { [field]: items.map(render) } : {}),
    ...(next ? { nextPageToken: next } : {}),
  };
}

// ---------------------------------------------------------------- cached contents

/**
 * The expiry a create or patch asks for: `ttl` (from now) or `expireTime`,
 * or `fallback` when neither is given. Returns `{ expiresAt }` or `{ problem }`.
 */
function expiryOf(body, prefix, fallback, now = Date.now()) {
  if (body.ttl !== undefined) {
    const ms = durationMs(body.ttl);
    return ms > 0 ? { expiresAt: now + ms } : { problem: `* ${prefix}.ttl: ttl must be positive\n` };
  }
  if (body.expireTime !== undefined) {
    const at = Date.parse(body.expireTime);
    return at > now ? { expiresAt: at } : { problem: `* ${prefix}.expire_time: expire_time must be in the future\n` };
  }
  return fallback === undefined ? { problem: `* ${prefix}.expiration: ttl or expire_time must be set\n` } : { expiresAt: fallback };
}

function parsedBody(ctx, action) {
  const parsed = parseRequest(REQUEST_TYPES[action], ctx.rawBody, { bodyField: BODY_FIELDS[action] });
  if (parsed.violations) {
    send(ctx, invalidPayload(parsed.violations));
    return null;
  }
  return parsed.value;
}

/**
 * Checks, in order: the body parses (400), `model` is given (400), the
 * model exists and caches (404), the contents are well-formed (400), the
 * expiry is in the future (400), every Files API file is the caller's (403).
 */
function createCache(ctx, route) {
  const { call, state } = ctx;
  const body = parsedBody(ctx, route.action);
  if (!body) return;
  const prefix = 'CreateCachedContentRequest.cached_content';
  if (!body.model) return send(ctx, invalidArgument(`* ${prefix}.model: model is not specified\n`));
  const modelId = stripModelsPrefix(body.model);
  call.model = modelId;
  const model = findModel(modelId, ctx.catalog);
  if (!model || !supports(model, 'createCachedContent')) {
    return send(ctx, modelNotFound(modelId, API_VERSION, 'createCachedContent'));
  }
  if (body.contents?.length) {
    const problem = checkContents(body, prefix);
    if (problem) return send(ctx, invalidArgument(problem));
  }
  const now = Date.now();
  const expiry = expiryOf(body, prefix, now + DEFAULT_CACHE_TTL_MS, now);
  if (expiry.problem) return send(ctx, invalidArgument(expiry.problem));
  const source = { contents: body.contents, systemInstruction: body.systemInstruction };
  const { refusal } = checkReferences(state.fileStore, { key: call.key, source, modelId, baseUrl: ctx.baseUrl });
  if (refusal) return send(ctx, refusal);
  const { total, details } = promptTokens({ contents: body.contents, systemInstruction: body.systemInstruction, tools: body.tools });
  const record = state.fileStore.addCache({
    key: call.key,
    model: modelId,
    displayName: body.displayName,
    expiresAt: expiry.expiresAt,
    tokens: total,
    details,
    now,
  });
  call.cachedContent = `cachedContents/${record.id}`;
  send(ctx, { status: 200, body: cachedContentJson(record) });
}

/** The caller's cached content `route.id`, or null after sending the 403. */
function ownedCache(ctx, route) {
  ctx.call.cachedContent = `cachedContents/${route.id}`;
  const record = ctx.state.fileStore.ownedCache(ctx.call.key, route.id);
  if (!record) {
    send(ctx, cachedContentNotFound());
    return null;
  }
  ctx.call.model = record.model;
  return record;
}

function getCache(ctx, route) {
  const record = ownedCache(ctx, route);
  if (record) send(ctx, { status: 200, body: cachedContentJson(record) });
}

function listCaches(ctx) {
  const page = paged(ctx, ctx.state.fileStore.cachesOf(ctx.call.key), CACHES_PAGE);
  if (!page) return;
  send(ctx, { status: 200, body: pageBody('cachedContents', page, cachedContentJson) });
}

const UPDATABLE = new Set(['ttl', 'expireTime']);

/**
 * Only the expiration can change: `ttl` or `expireTime` in the body, and
 * `?updateMask=` (optional, as the SDKs send none) may name only those.
 */
function patchCache(ctx, route) {
  const body = parsedBody(ctx, route.action);
  if (!body) return;
  const record = ownedCache(ctx, route);
  if (!record) return;
  const prefix = 'UpdateCachedContentRequest';
  const maskText = ctx.url.searchParams.get('updateMask') ?? ctx.url.searchParams.get('update_mask');
  let changes = body;
  if (maskText !== null) {
    const fields = maskText
      .split(',')
      .map((f) => f.trim().replace(/_([a-z])/g, (_, c) => c.toUpperCase()))
      .filter(Boolean);
    const fixed = fields.find((f) => !UPDATABLE.has(f));
    if (fixed !== undefined) {
      return send(ctx, invalidArgument(`* ${prefix}.update_mask: only ttl and expire_time can be updated, not "${fixed}"\n`));
    }
    changes = Object.fromEntries(fields.filter((f) => body[f] !== undefined).map((f) => [f, body[f]]));
  }
  // One clock reading for both, so that a ttl is exactly expireTime - updateTime.
  const now = Date.now();
  const expiry = expiryOf(changes, `${prefix}.cached_content`, undefined, now);
  if (expiry.problem) return send(ctx, invalidArgument(expiry.problem));
  ctx.state.fileStore.setExpiry(record, expiry.expiresAt, now);
  send(ctx, { status: 200, body: cachedContentJson(record) });
}

function deleteCache(ctx, route) {
  const record = ownedCache(ctx, route);
  if (!record) return;
  ctx.state.fileStore.deleteCache(record.id);
  send(ctx, { status: 200, body: {} });
}
