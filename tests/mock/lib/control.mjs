// /__mock/* control endpoints. Never recorded as calls.

import { sendPlainJson } from './http.mjs';
import { ruleProblem } from './state.mjs';
import { expire, revoke } from './oauth.mjs';

function parseJson(text) {
  try {
    return { value: text.trim() ? JSON.parse(text) : {} };
  } catch (err) {
    return { error: `body is not JSON: ${err.message}` };
  }
}

const ROUTES = {
  'POST /__mock/reset': ({ state }) => {
    state.reset();
    return { ok: true };
  },
  'POST /__mock/script': ({ state }, body) => {
    const problem = ruleProblem(body);
    if (problem) return [400, { error: problem }];
    return { rule: state.addRule(body) };
  },
  'GET /__mock/scripts': ({ state }) => ({ rules: state.rules }),
  'DELETE /__mock/scripts': ({ state }) => {
    state.clearRules();
    return { ok: true };
  },
  'GET /__mock/calls': ({ state, url }) => ({ calls: state.findCalls(Object.fromEntries(url.searchParams)) }),
  'POST /__mock/release': ({ state }, body) => {
    if (typeof body.gate !== 'string' || !body.gate) return [400, { error: 'gate (string) is required' }];
    return { gate: body.gate, released: true, waiting: state.release(body.gate) };
  },
  'GET /__mock/gates': ({ state }) => ({ gates: state.gatesSnapshot() }),
  'GET /__mock/models': ({ catalog }) => ({ models: catalog }),
  'POST /__mock/oauth/revoke': ({ state }, body) => {
    const token = body.refresh_token ?? body.access_token;
    return revoke(state, token) ? { revoked: token } : [400, { error: 'unknown token' }];
  },
  'POST /__mock/oauth/expire': ({ state }, body) => ({
    expired: expire(state, body.access_token ?? body.refresh_token ?? body.code),
  }),
  'GET /__mock/operations': ({ state }) => ({ operations: state.accounts.operationsSnapshot() }),
  'GET /__mock/files': ({ state }) => state.fileStore.snapshot(),
  'POST /__mock/files/expire': ({ state }, body) => {
    if (typeof body.name !== 'string' || !body.name) return [400, { error: 'name ("files/<id>" or "cachedContents/<id>") is required' }];
    return { expired: state.fileStore.expire(body.name) };
  },
  'GET /__mock/health': () => ({ ok: true }),
  'POST /__mock/wait': ({ state }, body) => {
    const seq = Number(body.seq);
    const timeoutMs = Math.min(Math.max(Number(body.timeoutMs ?? 10_000) || 0, 0), 60_000);
    if (!Number.isInteger(seq) || seq <= 0) return [400, { error: 'seq (a call number) is required' }];
    const call = state.calls.find((c) => c.seq === seq);
    if (!call) return [404, { error: `no call ${seq}` }];
    return waitFinished(state, call, timeoutMs);
  },
};

/** Resolves once `call` finished (its connection closed, whoever closed it), or after `timeoutMs`. */
function waitFinished(state, call, timeoutMs) {
  if (call.finishedAt) return Promise.resolve({ finished: true, call });
  return new Promise((resolve) => {
    const done = (c) => {
      if (c !== call) return;
      clearTimeout(timer);
      state.off('done', done);
      resolve({ finished: true, call });
    };
    const timer = setTimeout(() => {
      state.off('done', done);
      resolve({ finished: false, call });
    }, timeoutMs);
    state.on('done', done);
  });
}

/**
 * `GET /__mock/files/<id>/content`: the stored bytes of a file, whoever owns
 * it, as `application/octet-stream` (the Files API itself has no download
 * for uploaded files). Returns false when the path is another one.
 */
function sendFileContent({ req, res, url, state }) {
  const m = /^\/__mock\/files\/([^/]+)\/content$/.exec(url.pathname);
  if (req.method !== 'GET' || !m) return false;
  let id;
  try {
    id = decodeURIComponent(m[1]);
  } catch {
    id = m[1];
  }
  const record = state.fileStore.file(id);
  if (!record) {
    sendPlainJson(res, 404, { error: `no file files/${id}` });
    return true;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': record.bytes.length });
  res.end(record.bytes);
  return true;
}

export async function handleControl(ctx) {
  const { req, res, url, rawBody } = ctx;
  if (sendFileContent(ctx)) return;
  const route = ROUTES[`${req.method} ${url.pathname.replace(/\/$/, '')}`];
  if (!route) return sendPlainJson(res, 404, { error: `no control endpoint ${req.method} ${url.pathname}` });
  const body = parseJson(rawBody);
  if (body.error) return sendPlainJson(res, 400, { error: body.error });
  const result = await route(ctx, body.value ?? {});
  const [status, payload] = Array.isArray(result) ? result : [200, result];
  sendPlainJson(res, status, payload);
}
