// Tests of the mock's Google sign-in (authorization endpoint, PKCE code
// exchange, token lifetimes) and Code Assist's 429 shape.
// `node --test tests/mock/`. No sleeps to synchronise: the only waits are
// a bounded poll for a token to expire.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMock } from './google.mjs';
import { mockClient } from './client.mjs';
import { goDuration } from './lib/errors.mjs';

const T = { timeout: 10_000 };
const CLIENT_ID = 'mock-client.apps.googleusercontent.com';
const REDIRECT = 'http://127.0.0.1:8787/oauth2callback';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email openid';

let mock;
let ctl;
before(async () => {
  mock = await startMock();
  ctl = mockClient(mock.url);
});
after(() => mock.close());

// ---------------------------------------------------------------- helpers

let counter = 0;
/** A slug nobody else uses, so tests do not share account state. */
const fresh = (prefix = '') => `${prefix}u${++counter}-${randomBytes(3).toString('hex')}`;

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(overrides = {}) {
  const params = {
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: SCOPE,
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    state: 'st-123',
    access_type: 'offline',
    prompt: 'consent',
    ...overrides,
  };
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined));
  return `${mock.url}/o/oauth2/v2/auth?${query}`;
}

async function authorize(overrides) {
  const res = await fetch(authorizeUrl(overrides), { redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), type: res.headers.get('content-type'), text: await res.text() };
}

/** Signs in as `slug` through the authorization endpoint; returns the code and the verifier. */
async function signIn(slug) {
  const { verifier, challenge } = pkce();
  const r = await authorize({ login_hint: slug, code_challenge: challenge });
  assert.equal(r.status, 302);
  return { code: new URL(r.location).searchParams.get('code'), verifier };
}

async function tokenRequest(fields) {
  const res = await fetch(`${mock.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT_ID, client_secret: 'secret', ...fields }),
  });
  return { status: res.status, json: await res.json() };
}

const exchange = (code, verifier, extra = {}) =>
  tokenRequest({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, ...extra });

async function accessToken(refreshToken) {
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.access_token;
}

async function internal(method, at, body, { query = '', headers = {} } = {}) {
  const res = await fetch(`${mock.url}/v1internal:${method}${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${at}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

async function getOperation(at, name) {
  const res = await fetch(`${mock.url}/v1internal/${name}`, { headers: { authorization: `Bearer ${at}` } });
  return { status: res.status, json: await res.json() };
}

const ask = (text) => ({ contents: [{ role: 'user', parts: [{ text }] }] });
const envelope = (project, model = 'gemini-2.5-flash', text = 'hi') => ({ model, project, user_prompt_id: 'p1', request: ask(text) });
const stream = (at, body) => internal('streamGenerateContent', at, body, { query: '?alt=sse' });
const countTokens = (at, model = 'gemini-2.5-flash') =>
  internal('countTokens', at, { request: { model: `models/${model}`, contents: ask('x').contents } });
const METADATA = { ideType: 'IDE_UNSPECIFIED', platform: 'PLATFORM_UNSPECIFIED', pluginType: 'GEMINI' };

/** Asserts a 403 PERMISSION_DENIED and returns its error object. */
function forbidden(r) {
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.error.status, 'PERMISSION_DENIED');
  return r.json.error;
}

// ---------------------------------------------------------------- authorization endpoint

describe('OAuth authorization endpoint', () => {
  test('signs in the login_hint account and redirects with state, code and scope; records the call', T, async () => {
    const slug = fresh();
    const r = await authorize({ login_hint: `${slug}@example.com` });
    assert.equal(r.status, 302);
    const location = new URL(r.location);
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
    assert.deepEqual([...location.searchParams.keys()], ['state', 'code', 'scope', 'authuser', 'prompt']);
    assert.equal(location.searchParams.get('state'), 'st-123');
    assert.equal(location.searchParams.get('scope'), SCOPE);
    assert.match(location.searchParams.get('code'), /^4\/0[A-Za-z0-9_-]{40,}$/);
    assert.ok(r.location.includes('code=4/0'), 'Google leaves the slash of the code unescaped');

    const c = (await ctl.calls({ action: 'authorize' })).at(-1);
    assert.equal(c.method, 'GET');
    assert.equal(c.path, '/o/oauth2/v2/auth');
    assert.equal(c.status, 302);
    assert.equal(c.query.login_hint, `${slug}@example.com`);
    assert.equal(c.query.code_challenge_method, 'S256');
    assert.equal(c.account, `1//${slug}`);

    const second = new URL((await authorize({ login_hint: slug })).location).searchParams.get('code');
    assert.notEqual(second, location.searchParams.get('code'), 'codes are random');
  });

  test('without login_hint the account is "wizard"; a redirect_uri with a query keeps it', T, async () => {
    const { verifier, challenge } = pkce();
    const redirect = `${REDIRECT}?from=console`;
    const r = await authorize({ code_challenge: challenge, redirect_uri: redirect });
    const location = new URL(r.location);
    assert.equal(location.searchParams.get('from'), 'console');
    const ok = await exchange(location.searchParams.get('code'), verifier, { redirect_uri: redirect });
    assert.equal(ok.json.refresh_token, '1//wizard');
  });

  test('a missing or invalid parameter gets Google\'s HTML "Error 400" page', T, async () => {
    const cases = [
      [{ client_id: undefined }, 'invalid_request', 'Missing required parameter: client_id'],
      [{ redirect_uri: undefined }, 'invalid_request', 'Missing required parameter: redirect_uri'],
      [{ redirect_uri: 'not-a-url' }, 'invalid_request', 'Invalid parameter value for redirect_uri: Missing scheme: not-a-url'],
      [{ response_type: undefined }, 'invalid_request', 'Required parameter is missing: response_type'],
      [{ response_type: 'token' }, 'unsupported_response_type', 'Invalid response_type: token'],
      [{ scope: undefined }, 'invalid_request', 'Missing required parameter: scope'],
      [{ code_challenge: undefined }, 'invalid_request', 'Missing required parameter: code_challenge'],
      [{ code_challenge: 'short' }, 'invalid_request', 'Invalid code_challenge.'],
      [{ code_challenge_method: undefined }, 'invalid_request', 'Missing required parameter: code_challenge_method'],
      [{ code_challenge_method: 'plain' }, 'invalid_request', 'Invalid code_challenge_method: plain'],
      [{ state: undefined }, 'invalid_request', 'Missing required parameter: state'],
      [{ access_type: 'forever' }, 'invalid_request', 'Invalid access_type: forever'],
      [{ prompt: 'sometimes' }, 'invalid_request', 'Invalid prompt: sometimes'],
      [{ login_hint: 'bob smith' }, 'invalid_request', 'Invalid login_hint: bob smith'],
    ];
    for (const [overrides, error, detail] of cases) {
      const r = await authorize(overrides);
      assert.equal(r.status, 400, detail);
      assert.equal(r.location, null);
      assert.match(r.type, /^text\/html/);
      assert.ok(r.text.includes(`Error 400: ${error}`), r.text);
      assert.ok(r.text.includes(detail), r.text);
    }
    const c = (await ctl.calls({ action: 'authorize' })).at(-1);
    assert.equal(c.status, 400);
    assert.deepEqual(c.error, { error: 'invalid_request', detail: 'Invalid login_hint: bob smith' });
  });
});

// ---------------------------------------------------------------- code exchange

describe('authorization code exchange (PKCE)', () => {
  test('a good verifier gets the refresh token 1//<slug> and an access token; the code works once', T, async () => {
    const slug = fresh();
    const { code, verifier } = await signIn(slug);
    const ok = await exchange(code, verifier);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.refresh_token, `1//${slug}`);
    assert.match(ok.json.access_token, /^ya29\.mock-/);
    assert.equal(ok.json.expires_in, 3599);
    assert.equal(ok.json.scope, SCOPE);
    assert.equal(ok.json.token_type, 'Bearer');
    const c = (await ctl.calls({ action: 'token' })).at(-1);
    assert.equal(c.body.code_verifier, verifier, 'the form body is recorded decoded');
    assert.equal(c.body.grant_type, 'authorization_code');
    assert.equal(c.account, `1//${slug}`);

    // The access token works, and so does the refresh token.
    const load = await internal('loadCodeAssist', ok.json.access_token, { metadata: METADATA });
    assert.equal(load.status, 200);
    assert.equal((await tokenRequest({ grant_type: 'refresh_token', refresh_token: ok.json.refresh_token })).status, 200);

    assert.deepEqual(await exchange(code, verifier), { status: 400, json: { error: 'invalid_grant', error_description: 'Bad Request' } });
  });

  test('each refusal has Google\'s error and description; a refused attempt does not use the code up', T, async () => {
    const { code, verifier } = await signIn(fresh());
    const refused = (error, description) => ({ status: 400, json: { error, error_description: description } });
    assert.deepEqual(await exchange(code, pkce().verifier), refused('invalid_grant', 'Invalid code verifier.'));
    assert.deepEqual(
      await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }),
      refused('invalid_grant', 'Missing code verifier.'),
    );
    assert.deepEqual(await exchange(code, verifier, { redirect_uri: 'http://127.0.0.1:9/other' }), refused('redirect_uri_mismatch', 'Bad Request'));
    assert.deepEqual(await exchange(code, verifier, { client_id: 'someone-else' }), refused('invalid_grant', 'Bad Request'));
    assert.deepEqual(await exchange('4/0unknown', verifier), refused('invalid_grant', 'Malformed auth code.'));
    assert.equal((await exchange(code, verifier)).status, 200);
  });

  test('a code expires (10 minutes, or now through /__mock/oauth/expire)', T, async () => {
    const { code, verifier } = await signIn(fresh());
    assert.equal(await ctl.expire(code), 1);
    assert.deepEqual(await exchange(code, verifier), { status: 400, json: { error: 'invalid_grant', error_description: 'Bad Request' } });
  });

  test('the mock-code-<slug> shortcut needs no verifier', T, async () => {
    const slug = fresh();
    const r = await tokenRequest({ grant_type: 'authorization_code', code: `mock-code-${slug}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.refresh_token, `1//${slug}`);
  });

  test('revoked-* and invalid-* refresh tokens are invalid_grant', T, async () => {
    for (const token of ['1//revoked-x', '1//invalid-y']) {
      assert.deepEqual(await tokenRequest({ grant_type: 'refresh_token', refresh_token: token }), {
        status: 400,
        json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
      });
    }
  });
});

// ---------------------------------------------------------------- token lifetime

describe('access-token lifetime', () => {
  test('a -ttl<N>- slug gets expires_in N, and the token really stops working', T, async () => {
    const slug = fresh('ttl-') + '-ttl1-x';
    const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: `1//${slug}` });
    assert.equal(r.json.expires_in, 1);
    const body = { metadata: METADATA };
    assert.equal((await internal('loadCodeAssist', r.json.access_token, body)).status, 200);
    // Bounded poll: the token dies one second after it was issued.
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i += 1) {
      await sleep(100);
      status = (await internal('loadCodeAssist', r.json.access_token, body)).status;
    }
    assert.equal(status, 401);
    // The refresh token still gets a new one.
    assert.equal((await internal('loadCodeAssist', await accessToken(`1//${slug}`), body)).status, 200);
  });

  test('the accessTokenTtlSeconds option sets the default; a slug overrides it', T, async () => {
    const local = await startMock({ accessTokenTtlSeconds: 120 });
    try {
      const post = (refresh) =>
        fetch(`${local.url}/token`, {
          method: 'POST',
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, client_id: 'c', client_secret: 's' }),
        }).then((res) => res.json());
      assert.equal((await post('1//plain')).expires_in, 120);
      assert.equal((await post('1//x-ttl7-y')).expires_in, 7);
    } finally {
      await local.close();
    }
  });
});

// ---------------------------------------------------------------- quota

describe('Code Assist 429s', () => {
  test('rate_limit_day on Code Assist carries quotaResetDelay, quotaResetTimeStamp and RetryInfo', T, async () => {
    const slug = fresh();
    const at = await accessToken(`1//${slug}`);
    await ctl.script({ key: `1//${slug}`, fault: 'rate_limit_day', times: 1 });
    const started = Date.now();
    const r = await internal('generateContent', at, envelope(`mock-project-${slug}`, 'gemini-2.5-pro'));
    assert.equal(r.status, 429);
    assert.equal(r.json.error.status, 'RESOURCE_EXHAUSTED');
    assert.equal(r.json.error.message, 'You have exhausted your capacity on this model. Your quota will reset after 30s.');
    const [info, retry] = r.json.error.details;
    assert.deepEqual(Object.keys(info.metadata), ['uiMessage', 'model', 'quotaResetDelay', 'quotaResetTimeStamp']);
    assert.equal(info.reason, 'QUOTA_EXHAUSTED');
    assert.equal(info.domain, 'cloudcode-pa.googleapis.com');
    assert.equal(info.metadata.model, 'gemini-2.5-pro');
    assert.equal(info.metadata.quotaResetDelay, '30s');
    const at30 = Date.parse(info.metadata.quotaResetTimeStamp);
    assert.ok(at30 >= started + 29_000 && at30 <= Date.now() + 31_000, info.metadata.quotaResetTimeStamp);
    assert.deepEqual(retry, { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '30s' });
  });

  test('a rule\'s quotaResetTimeStamp is sent exactly and sets the delays', T, async () => {
    const slug = fresh();
    const at = await accessToken(`1//${slug}`);
    const stamp = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await ctl.script({ key: `1//${slug}`, fault: 'rate_limit_day', quotaResetTimeStamp: stamp, times: 1 });
    const r = await internal('generateContent', at, envelope(`mock-project-${slug}`));
    const [info, retry] = r.json.error.details;
    assert.equal(info.metadata.quotaResetTimeStamp, stamp);
    assert.match(info.metadata.quotaResetDelay, /^1h59m\d+(\.\d+)?s$|^2h0m0s$/);
    const seconds = Number.parseFloat(retry.retryDelay);
    assert.ok(seconds > 7100 && seconds <= 7200, retry.retryDelay);
    assert.match(r.json.error.message, /reset after (1h59m\d+s|2h0m0s)\.$/);

    await assert.rejects(ctl.script({ fault: 'rate_limit_day', quotaResetTimeStamp: 'tomorrow' }), /quotaResetTimeStamp must be an RFC 3339/);
  });

  test('goDuration', () => {
    assert.deepEqual(
      [0, 539, 1500, 30_000, 60_000, 3_600_000, 91_226_179].map(goDuration),
      ['0s', '539ms', '1.5s', '30s', '1m0s', '1h0m0s', '25h20m26.179s'],
    );
  });
});
