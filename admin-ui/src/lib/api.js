// Every call the console makes to the gateway goes through here. State
// changes carry the session's CSRF token; every error answer becomes one
// ApiError with the server's `error.message`, shown in the message banner,
// or, for a 400 that names a field the caller has (`fields`), beside that
// field instead. A 401 on an admin route means the session ended.
import { t } from './i18n.js';
import { store } from './store.js';

export class ApiError extends Error {
  constructor(status, message, { param = null, code = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
    /** Seconds, from Retry-After (429). */
    this.retryAfter = retryAfter;
  }
}

/** The message banner: `{ kind: 'error' | 'ok', text, server, id }` or null. */
export const notice = store(null);
let noticeId = 0;

/** Shows `err` (an ApiError or any Error) in the banner. */
export function report(err) {
  const server = err instanceof ApiError && err.status > 0;
  notice.set({ kind: 'error', text: err.message, server, id: ++noticeId });
}

/** Shows a short confirmation in the banner. */
export function confirmDone(text) {
  notice.set({ kind: 'ok', text, server: false, id: ++noticeId });
}

export const clearNotice = () => notice.set(null);

/** The session as the console knows it: `{ authenticated, csrf, expiresAt }`. */
export const session = store({ authenticated: false, csrf: null, expiresAt: null, checked: false, lost: false });

function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** `path` with `params` as its query string (empty values left out). */
export const withQuery = (path, params) => `${path}${query(params)}`;

function retryAfterSeconds(res) {
  const value = res.headers.get('retry-after');
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : null;
}

/**
 * One JSON call. Options: `body` (sent as JSON), `params` (query string),
 * `fields` (names of the caller's form fields: a 400 naming one of them is
 * left to the caller), `quiet` (the caller shows the error itself),
 * `headers` (extra request headers, e.g. a user key's Authorization).
 */
export async function request(method, path, { body, params, fields = [], quiet = false, headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const changesState = method !== 'GET' && method !== 'HEAD';
  const { csrf } = session.get();
  if (changesState && csrf) h['x-csrf-token'] = csrf;
  let res;
  try {
    res = await fetch(withQuery(path, params), {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    const err = new ApiError(0, t('error.network'));
    if (!quiet) report(err);
    throw err;
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) return data;

  const e = data && typeof data.error === 'object' && data.error ? data.error : {};
  const message = typeof e.message === 'string' && e.message.trim() ? e.message : t('error.status', { status: res.status });
  const err = new ApiError(res.status, message, {
    param: typeof e.param === 'string' ? e.param : null,
    code: typeof e.code === 'string' ? e.code : null,
    retryAfter: retryAfterSeconds(res),
  });
  const sessionRoute = /^\/admin\/api\/(login|logout|session)$/.test(path);
  if (res.status === 401 && path.startsWith('/admin/api/') && !sessionRoute) {
    session.set({ ...session.get(), authenticated: false, csrf: null, lost: true });
  }
  const forAField = res.status === 400 && err.param && fields.includes(err.param);
  if (!quiet && !forAField) report(err);
  throw err;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
  del: (path, body, opts) => request('DELETE', path, { ...opts, body }),
};

/** Path segment, escaped. */
export const seg = (s) => encodeURIComponent(String(s));
