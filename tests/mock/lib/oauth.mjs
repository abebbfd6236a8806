// Google OAuth: the token endpoint (oauth2.googleapis.com/token), userinfo
// (www.googleapis.com/oauth2/v2/userinfo) and revoke, plus access-token checks
// for Code Assist.
//
// Refresh tokens look like Google's: "1//<anything>". A refresh token is valid
// when it starts with "1//", its remainder does not start with "revoked-" or
// "invalid-", and it was not revoked through /__mock/oauth/revoke or /revoke.
// The remainder ("slug") names the account: `1//alice` is alice@example.com.

import { createHash, randomBytes } from 'node:crypto';
import { renderFault, unauthenticated } from './errors.mjs';
import { pause, parseForm } from './http.mjs';
import { dropConnection, noteScripted, send } from './respond.mjs';

export const ACCESS_TOKEN_TTL_SECONDS = 3599;
const SCOPES =
  'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email ' +
  'https://www.googleapis.com/auth/userinfo.profile openid';
const AUTH_CODE_PREFIX = 'mock-code-';

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

/** `code=mock-code-<slug>` exchanges for refresh token `1//<slug>` (and an access token). */
function codeGrant(ctx, form) {
  if (!form.code?.startsWith(AUTH_CODE_PREFIX)) return oauthError('invalid_grant', 'Malformed auth code.');
  const refreshToken = `1//${form.code.slice(AUTH_CODE_PREFIX.length)}`;
  return { status: 200, body: { ...issue(ctx, refreshToken, form.client_id), refresh_token: refreshToken } };
}

function issue(ctx, refreshToken, clientId) {
  const { oauth } = ctx.state;
  const accessToken = `ya29.mock-${++oauth.issued}-${randomBytes(12).toString('base64url')}`;
  const ttl = ctx.opts.accessTokenTtlSeconds ?? ACCESS_TOKEN_TTL_SECONDS;
  oauth.accessTokens.set(accessToken, { refreshToken, clientId, expiresAt: Date.now() + ttl * 1000 });
  return {
    access_token: accessToken,
    expires_in: ttl,
    scope: SCOPES,
    token_type: 'Bearer',
    id_token: idToken(accountOf(refreshToken), clientId),
  };
}

/** An unsigned-in-spirit JWT with Google's claims (the signature is random bytes). */
function idToken(account, clientId) {
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
    exp: now + ACCESS_TOKEN_TTL_SECONDS + 1,
  };
  return `${b64(header)}.${b64(claims)}.${randomBytes(64).toString('base64url')}`;
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

/** Marks an access token, or all tokens issued from a refresh token, as expired. */
export function expire(state, token) {
  let count = 0;
  for (const [access, grant] of state.oauth.accessTokens) {
    if (access === token || grant.refreshToken === token) {
      grant.expired = true;
      count += 1;
    }
  }
  return count;
}
