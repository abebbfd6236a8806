// Google OAuth: the authorization endpoint (accounts.google.com/o/oauth2/v2/auth),
// the token endpoint (oauth2.googleapis.com/token), userinfo
// (www.googleapis.com/oauth2/v2/userinfo) and revoke, plus access-token checks
// for Code Assist.
//
// Refresh tokens look like Google's: "1//<anything>". A refresh token is valid
// when it starts with "1//", its remainder does not start with "revoked-" or
// "invalid-", and it was not revoked through /__mock/oauth/revoke or /revoke.
// The remainder ("slug") names the account: `1//alice` is alice@example.com.

import { createHash, randomBytes } from 'node:crypto';
import { ttlOfSlug } from './accounts.mjs';
import { renderFault, unauthenticated } from './errors.mjs';
import { pause, parseForm, sendRaw } from './http.mjs';
import { dropConnection, noteScripted, send } from './respond.mjs';

export const ACCESS_TOKEN_TTL_SECONDS = 3599;
const SCOPES =
  'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email ' +
  'https://www.googleapis.com/auth/userinfo.profile openid';
const AUTH_CODE_PREFIX = 'mock-code-';
/** Authorization codes live 10 minutes, as Google's do. */
export const AUTH_CODE_TTL_SECONDS = 600;
const DEFAULT_SIGN_IN_SLUG = 'wizard';

export const slugOf = (refreshToken) => String(refreshToken ?? '').replace(/^1\/\//, '');

/** The account a refresh token stands for: `{ slug, email, id, project }`, all derived from the token. */
export function accountOf(refreshToken) {
  const slug = slugOf(refreshToken);
  const safe = slug.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'user';
  const digest = createHash('sha256').update(String(refreshToken)).digest();
  const id = `1${[...digest.subarray(0, 20)].map((b) => b % 10).join('')}`;
  return { slug, email: `${safe}@example.com`, id, project: `mock-project-${safe}` };
}

function refreshTokenValid(state, refreshToken) {
  const slug = slugOf(refreshToken);
  return (
    String(refreshToken).startsWith('1//') &&
    !slug.startsWith('revoked-') &&
    !slug.startsWith('invalid-') &&
    !state.oauth.revoked.has(refreshToken)
  );
}

/**
 * Looks up a bearer token. Returns `{ grant }` for a live token issued by
 * /token, else `{ problem }` with the 401 to send.
 */
export function checkBearer(state, authorization, service, method) {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) return { problem: unauthenticated({ missing: true, service, method }) };
  const grant = state.oauth.accessTokens.get(token);
  if (!grant) return { problem: unauthenticated({ service, method }) };
  const dead = grant.expired || grant.revoked || Date.now() > grant.expiresAt || state.oauth.revoked.has(grant.refreshToken);
  return dead ? { problem: unauthenticated({ expired: true, service, method }) } : { grant };
}

export const bearerOf = (req) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

// ---------------------------------------------------------------- /token

const oauthError = (error, description) => ({ status: 400, body: { error, error_description: description } });

/** The token endpoint takes form-encoded bodies (JSON is accepted too). */
function tokenForm(ctx) {
  const type = ctx.req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    try {
      return JSON.parse(ctx.rawBody || '{}');
    } catch {
      return {};
    }
  }
  return parseForm(ctx.rawBody);
}

export async function handleToken(ctx) {
  const { call, state } = ctx;
  const form = tokenForm(ctx);
  call.body = form;
  call.key = form.refresh_token ?? form.code ?? null;
  call.account = form.refresh_token ?? null;
  const resolved = state.resolve({ key: call.key, action: 'token', body: ctx.rawBody });
  noteScripted(call, resolved);
  const { behaviour } = resolved;
  if (!(await pause(behaviour.latencyMs, ctx.signal))) return;
  if (behaviour.fault === 'drop') return dropConnection(ctx);
  if (behaviour.fault && behaviour.fault !== 'key_invalid') {
    return send(ctx, renderFault(behaviour.fault, { surface: 'oauth', retryDelay: behaviour.retryDelay }));
  }
  const outcome = behaviour.fault === 'key_invalid' ? oauthError('invalid_grant', 'Token has been expired or revoked.') : grant(ctx, form);
  send(ctx, outcome, { plain: true });
}

function grant(ctx, form) {
  if (!form.grant_type) return oauthError('unsupported_grant_type', 'Invalid grant_type: ');
  if (!form.client_id) return oauthError('invalid_request', 'Could not determine client ID from request.');
  if (!form.client_secret) return oauthError('invalid_request', 'client_secret is missing.');
  if (form.grant_type === 'refresh_token') return refreshGrant(ctx, form);
  if (form.grant_type === 'authorization_code') return codeGrant(ctx, form);
  return oauthError('unsupported_grant_type', `Invalid grant_type: ${form.grant_type}`);
}

function refreshGrant(ctx, form) {
  if (!form.refresh_token) return oauthError('invalid_request', 'Missing required parameter: refresh_token');
  if (!refreshTokenValid(ctx.state, form.refresh_token)) {
    return oauthError('invalid_grant', 'Token has been expired or revoked.');
  }
  return { status: 200, body: issue(ctx, form.refresh_token, form.client_id) };
}

/**
 * `code=mock-code-<slug>` exchanges for refresh token `1//<slug>` with no
 * further checks. A code from the authorization endpoint must come with the
 * same client_id and redirect_uri and a code_verifier whose base64url
 * SHA-256 is its code_challenge; it works once, within 10 minutes.
 */
function codeGrant(ctx, form) {
  if (!form.code) return oauthError('invalid_request', 'Missing required parameter: code');
  if (form.code.startsWith(AUTH_CODE_PREFIX)) return exchanged(ctx, form, form.code.slice(AUTH_CODE_PREFIX.length));
  const issued = ctx.state.oauth.codes.get(form.code);
  if (!issued) return oauthError('invalid_grant', 'Malformed auth code.');
  if (issued.used || issued.expired || Date.now() > issued.expiresAt) return oauthError('invalid_grant', 'Bad Request');
  if (form.redirect_uri !== issued.redirectUri) return oauthError('redirect_uri_mismatch', 'Bad Request');
  if (form.client_id !== issued.clientId) return oauthError('invalid_grant', 'Bad Request');
  if (!form.code_verifier) return oauthError('invalid_grant', 'Missing code verifier.');
  if (createHash('sha256').update(form.code_verifier).digest('base64url') !== issued.challenge) {
    return oauthError('invalid_grant', 'Invalid code verifier.');
  }
  issued.used = true;
  return exchanged(ctx, form, issued.slug, issued.scope);
}

function exchanged(ctx, form, slug, scope) {
  const refreshToken = `1//${slug}`;
  ctx.call.account = refreshToken;
  const body = { ...issue(ctx, refreshToken, form.client_id), refresh_token: refreshToken };
  if (scope) body.scope = scope;
  return { status: 200, body };
}

function issue(ctx, refreshToken, clientId) {
  const { oauth } = ctx.state;
  const accessToken = `ya29.mock-${++oauth.issued}-${randomBytes(12).toString('base64url')}`;
  const ttl = ttlOfSlug(slugOf(refreshToken)) ?? ctx.opts.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  oauth.accessTokens.set(accessToken, { refreshToken, clientId, expiresAt: Date.now() + ttl * 1000 });
  return {
    access_token: accessToken,
    expires_in: ttl,
    scope: SCOPES,
    token_type: 'Bearer',
    id_token: idToken(accountOf(refreshToken), clientId, ttl),
  };
}

/** An unsigned-in-spirit JWT with Google's claims (the signature is random bytes). */
function idToken(account, clientId, ttl) {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = { alg: 'RS256', kid: 'mock-key', typ: 'JWT' };
  const claims = {
    iss: 'https://accounts.google.com',
    azp: clientId,
    aud: clientId,
    sub: account.id,
    email: account.email,
    email_verified: true,
    iat: now,
    exp: now + ttl + 1,
  };
  return `${b64(header)}.${b64(claims)}.${randomBytes(64).toString('base64url')}`;
}

// ---------------------------------------------------------------- authorization endpoint

/**
 * GET /o/oauth2/v2/auth. The mock signs in at once as the account named by
 * `login_hint` (a slug or `<slug>@example.com`; default "wizard") and
 * redirects to `redirect_uri` with `state`, a fresh single-use `code`
 * (bound to the client, the redirect URI and the PKCE challenge) and the
 * granted `scope`, as Google's consent screen does. Bad requests get
 * Google's HTML error page.
 */
export async function handleAuthorize(ctx) {
  const { call, state, url } = ctx;
  const q = Object.fromEntries(url.searchParams);
  const slug = signInSlug(q.login_hint);
  call.key = slug ? `1//${slug}` : null;
  const resolved = state.resolve({ key: call.key, action: 'authorize', body: '' });
  noteScripted(call, resolved);
  const { behaviour } = resolved;
  if (!(await pause(behaviour.latencyMs, ctx.signal))) return;
  if (behaviour.fault === 'drop') return dropConnection(ctx);
  if (behaviour.fault) return send(ctx, renderFault(behaviour.fault, { surface: 'oauth', retryDelay: behaviour.retryDelay }));

  const problem = authorizeProblem(q, slug);
  if (problem) return sendAuthError(ctx, problem);
  const code = `4/0${randomBytes(32).toString('base64url')}`;
  state.oauth.codes.set(code, {
    slug,
    clientId: q.client_id,
    redirectUri: q.redirect_uri,
    challenge: q.code_challenge,
    scope: q.scope,
    expiresAt: Date.now() + AUTH_CODE_TTL_SECONDS * 1000,
    used: false,
  });
  call.account = `1//${slug}`;
  const params = [['state', q.state], ['code', code], ['scope', q.scope], ['authuser', '0'], ['prompt', 'consent']];
  const location = `${q.redirect_uri}${q.redirect_uri.includes('?') ? '&' : '?'}${params
    .map(([k, v]) => `${k}=${googleEncode(v)}`)
    .join('&')}`;
  call.status = 302;
  call.response = { location };
  ctx.res.writeHead(302, { location, 'content-type': 'text/html; charset=UTF-8', 'content-length': 0 });
  ctx.res.end();
}

/** The slug `login_hint` names: "bob" or "bob@example.com"; null when it names none we can use. */
function signInSlug(hint) {
  if (hint === undefined || hint === '') return DEFAULT_SIGN_IN_SLUG;
  const slug = String(hint).replace(/@example\.com$/i, '');
  return /^[A-Za-z0-9._-]+$/.test(slug) ? slug : null;
}

/** Google leaves ":" and "/" unescaped in the redirect's query (`code=4/0A…`, `scope=https://…`). */
const googleEncode = (value) => encodeURIComponent(value).replace(/%2F/gi, '/').replace(/%3A/gi, ':');

/** The first problem with an authorization request, as `{ error, detail }`, or null. */
function authorizeProblem(q, slug) {
  const invalid = (detail) => ({ error: 'invalid_request', detail });
  if (!q.client_id) return invalid('Missing required parameter: client_id');
  if (!q.redirect_uri) return invalid('Missing required parameter: redirect_uri');
  if (!/^https?:\/\/[^/?#]+/i.test(q.redirect_uri)) {
    return invalid(`Invalid parameter value for redirect_uri: Missing scheme: ${q.redirect_uri}`);
  }
  if (!q.response_type) return invalid('Required parameter is missing: response_type');
  if (q.response_type !== 'code') return { error: 'unsupported_response_type', detail: `Invalid response_type: ${q.response_type}` };
  if (!q.scope) return invalid('Missing required parameter: scope');
  if (!q.code_challenge) return invalid('Missing required parameter: code_challenge');
  if (!/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge)) return invalid('Invalid code_challenge.');
  if (!q.code_challenge_method) return invalid('Missing required parameter: code_challenge_method');
  if (q.code_challenge_method !== 'S256') return invalid(`Invalid code_challenge_method: ${q.code_challenge_method}`);
  if (!q.state) return invalid('Missing required parameter: state');
  if (q.access_type !== undefined && !['online', 'offline'].includes(q.access_type)) {
    return invalid(`Invalid access_type: ${q.access_type}`);
  }
  if (q.prompt !== undefined && !q.prompt.split(' ').every((p) => ['none', 'consent', 'select_account'].includes(p))) {
    return invalid(`Invalid prompt: ${q.prompt}`);
  }
  if (!slug) return invalid(`Invalid login_hint: ${q.login_hint}`);
  return null;
}

/** Google's "Access blocked: Authorization Error" page, 400, with "Error 400: <error>". */
function sendAuthError(ctx, { error, detail }) {
  const escape = (text) => String(text).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html =
    '<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n' +
    '  <title>Error 400 (Bad Request)</title>\n' +
    '  <h1>Access blocked: Authorization Error</h1>\n' +
    `  <p>${escape(detail)}</p>\n` +
    `  <p><b>Error 400: ${escape(error)}</b></p>\n`;
  ctx.call.status = 400;
  ctx.call.error = { error, detail };
  sendRaw(ctx.res, 400, 'text/html; charset=UTF-8', html);
}

// ---------------------------------------------------------------- userinfo, revoke

export function handleUserinfo(ctx) {
  const { call, state, req, url } = ctx;
  const authorization = req.headers.authorization ?? (url.searchParams.get('access_token') ? `Bearer ${url.searchParams.get('access_token')}` : undefined);
  call.key = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1] ?? null;
  const { grant, problem } = checkBearer(state, authorization, 'oauth2.googleapis.com', 'google.identity.oauth2.v2.UserInfo.Get');
  if (problem) return send(ctx, problem);
  call.account = grant.refreshToken;
  const account = accountOf(grant.refreshToken);
  send(ctx, {
    status: 200,
    body: { id: account.id, email: account.email, verified_email: true, picture: 'https://lh3.googleusercontent.com/a/mock' },
  });
}

/** POST /revoke?token=... (or form `token=`): revokes a refresh token, or one access token. */
export function handleRevoke(ctx) {
  const token = ctx.url.searchParams.get('token') ?? parseForm(ctx.rawBody).token;
  ctx.call.key = token ?? null;
  const revoked = revoke(ctx.state, token);
  send(ctx, revoked ? { status: 200, body: {} } : oauthError('invalid_token', 'Bad Request'), { plain: true });
}

/** Revokes a refresh token (and so every access token issued from it) or a single access token. */
export function revoke(state, token) {
  if (!token) return false;
  const grant = state.oauth.accessTokens.get(token);
  if (grant) grant.revoked = true;
  else if (String(token).startsWith('1//')) state.oauth.revoked.add(token);
  else return false;
  return true;
}

/**
 * Marks an access token, or all tokens issued from a refresh token, as
 * expired; or an authorization code (then counted as one).
 */
export function expire(state, token) {
  const code = state.oauth.codes.get(token);
  if (code) {
    code.expired = true;
    return 1;
  }
  let count = 0;
  for (const [access, grant] of state.oauth.accessTokens) {
    if (access === token || grant.refreshToken === token) {
      grant.expired = true;
      count += 1;
    }
  }
  return count;
}
