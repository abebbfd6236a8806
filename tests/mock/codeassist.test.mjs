// Tests of the mock's Google sign-in (authorization endpoint, PKCE code
// exchange, token lifetimes) and Code Assist account states: onboarding,
// operations, the project check, retrieveUserQuota and the 429 shape.
// `node --test tests/mock/`. No sleeps to synchronise: the only waits are
// a bounded poll for a token to expire.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMock } from './google.mjs';
import { mockClient } from './client.mjs';
import { laWallClock, nextLaMidnight } from './lib/accounts.mjs';
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

// ---------------------------------------------------------------- account states

describe('Code Assist account states', () => {
  test('default: a standard-tier user, onboarded, served under mock-project-<slug> only', T, async () => {
    const slug = fresh();
    const project = `mock-project-${slug}`;
    const at = await accessToken(`1//${slug}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.status, 200);
    assert.equal(load.json.currentTier.id, 'standard-tier');
    assert.deepEqual(load.json.allowedTiers, [{ ...load.json.currentTier, isDefault: true }]);
    assert.equal(load.json.cloudaicompanionProject, project);
    assert.equal(load.json.gcpManaged, false);
    assert.equal(load.json.ineligibleTiers, undefined);

    assert.equal((await internal('generateContent', at, envelope(project))).status, 200);
    assert.equal((await stream(at, envelope(project))).status, 200);
    assert.equal((await countTokens(at)).status, 200);

    const wrong = forbidden(await internal('generateContent', at, envelope('someone-elses')));
    assert.equal(wrong.message, 'Permission denied on resource project someone-elses.');
    assert.deepEqual(wrong.details[0], {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'CONSUMER_INVALID',
      domain: 'googleapis.com',
      metadata: { containerInfo: 'someone-elses', consumer: 'projects/someone-elses', service: 'cloudaicompanion.googleapis.com' },
    });
    assert.equal(forbidden(await stream(at, envelope('other'))).message, 'Permission denied on resource project other.');
    assert.equal(forbidden(await internal('generateContent', at, envelope(undefined))).message, 'Permission denied on resource project .');
    const c = (await ctl.calls({ key: at, action: 'v1internal.generateContent' })).at(-1);
    assert.equal(c.project, null);
    assert.equal(c.accountState, 'standard');
  });

  test('new-*: onboardUser starts an operation that the second poll completes; then the account serves', T, async () => {
    const slug = fresh('new-');
    const project = `mock-project-${slug}`;
    const at = await accessToken(`1//${slug}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.json.currentTier, undefined);
    assert.equal(load.json.cloudaicompanionProject, undefined);
    assert.deepEqual(load.json.allowedTiers.map((t) => [t.id, t.isDefault, t.userDefinedCloudaicompanionProject]), [
      ['standard-tier', true, true],
    ]);
    const refused = forbidden(await internal('generateContent', at, envelope(project)));
    assert.match(refused.message, /lack a Gemini Code Assist license/);
    forbidden(await countTokens(at));

    const onboard = await internal('onboardUser', at, { tierId: 'standard-tier', metadata: METADATA });
    assert.equal(onboard.status, 200);
    assert.equal(onboard.json.done, false);
    assert.match(onboard.json.name, /^operations\/[A-Za-z0-9-]+$/);
    assert.equal(onboard.json.response, undefined);

    const first = await getOperation(at, onboard.json.name);
    assert.deepEqual(first.json, { name: onboard.json.name, done: false });
    assert.equal((await internal('loadCodeAssist', at, { metadata: METADATA })).json.currentTier, undefined, 'not onboarded while pending');
    const second = await getOperation(at, onboard.json.name);
    assert.deepEqual(second.json, {
      name: onboard.json.name,
      done: true,
      response: {
        '@type': 'type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse',
        cloudaicompanionProject: { id: project, name: project },
      },
    });
    const polls = await ctl.calls({ key: at, action: 'v1internal.getOperation' });
    assert.deepEqual(polls.map((c) => [c.method, c.path, c.operation.polls, c.operation.done]), [
      ['GET', `/v1internal/${onboard.json.name}`, 1, false],
      ['GET', `/v1internal/${onboard.json.name}`, 2, true],
    ]);
    const [op] = (await ctl.operations()).filter((o) => o.account === `1//${slug}`);
    assert.deepEqual(op, { name: onboard.json.name, account: `1//${slug}`, needed: 2, polls: 2, project, done: true });

    const after = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(after.json.currentTier.id, 'standard-tier');
    assert.equal(after.json.cloudaicompanionProject, project);
    assert.equal((await internal('generateContent', at, envelope(project))).status, 200);
    assert.equal((await countTokens(at)).status, 200);
  });

  test('new-poll<N>-*: the N-th poll completes, with the project onboardUser named', T, async () => {
    const slug = fresh('new-poll3-');
    const at = await accessToken(`1//${slug}`);
    const onboard = await internal('onboardUser', at, { tierId: 'standard-tier', cloudaicompanionProject: 'operator-proj', metadata: METADATA });
    const results = [];
    for (let i = 0; i < 3; i += 1) results.push((await getOperation(at, onboard.json.name)).json.done);
    assert.deepEqual(results, [false, false, true]);
    assert.equal((await internal('loadCodeAssist', at, {})).json.cloudaicompanionProject, 'operator-proj');
    assert.equal((await internal('generateContent', at, envelope('operator-proj'))).status, 200);
    forbidden(await internal('generateContent', at, envelope(`mock-project-${slug}`)));

    // Another account cannot poll it; an unknown operation is 404.
    const stranger = await accessToken(`1//${fresh()}`);
    assert.equal((await getOperation(stranger, onboard.json.name)).status, 404);
    assert.equal((await getOperation(at, 'operations/nope')).status, 404);
  });

  test('noproject-*: a Workspace account is served only under the project it was onboarded with', T, async () => {
    const slug = fresh('noproject-');
    const at = await accessToken(`1//${slug}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.json.currentTier, undefined);
    assert.equal(load.json.ineligibleTiers, undefined);
    assert.equal(load.json.cloudaicompanionProject, undefined);
    assert.deepEqual(load.json.allowedTiers.map((t) => [t.id, t.isDefault, t.userDefinedCloudaicompanionProject]), [
      ['standard-tier', true, true],
    ]);

    const bare = await internal('onboardUser', at, { tierId: 'standard-tier', metadata: METADATA });
    assert.equal(bare.json.done, true);
    assert.deepEqual(Object.keys(bare.json.response), ['@type'], 'no project without one asked for');
    forbidden(await internal('generateContent', at, envelope('ops-project')));

    const named = await internal('onboardUser', at, {
      tierId: 'standard-tier',
      cloudaicompanionProject: 'ops-project',
      metadata: { ...METADATA, duetProject: 'ops-project' },
    });
    assert.equal(named.json.done, true);
    assert.deepEqual(named.json.response.cloudaicompanionProject, { id: 'ops-project', name: 'ops-project' });

    const withProject = await internal('loadCodeAssist', at, { cloudaicompanionProject: 'ops-project', metadata: METADATA });
    assert.equal(withProject.json.currentTier.id, 'standard-tier');
    assert.equal(withProject.json.cloudaicompanionProject, 'ops-project');
    const viaMetadata = await internal('loadCodeAssist', at, { metadata: { ...METADATA, duetProject: 'ops-project' } });
    assert.equal(viaMetadata.json.cloudaicompanionProject, 'ops-project');
    assert.equal((await internal('loadCodeAssist', at, { metadata: METADATA })).json.currentTier, undefined);

    assert.equal((await internal('generateContent', at, envelope('ops-project'))).status, 200);
    assert.equal(forbidden(await internal('generateContent', at, envelope(`mock-project-${slug}`))).details[0].reason, 'CONSUMER_INVALID');
  });

  test('ineligible-*: INELIGIBLE_ACCOUNT, onboarding gives no project, generation is refused', T, async () => {
    const at = await accessToken(`1//${fresh('ineligible-')}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.json.currentTier, undefined);
    assert.deepEqual(load.json.allowedTiers.map((t) => [t.id, t.isDefault]), [['standard-tier', true]]);
    const [tier] = load.json.ineligibleTiers;
    assert.deepEqual(Object.keys(tier), ['reasonCode', 'reasonMessage', 'tierId', 'tierName']);
    assert.equal(tier.reasonCode, 'INELIGIBLE_ACCOUNT');
    assert.equal(tier.tierId, 'standard-tier');
    assert.equal(tier.tierName, 'Gemini Code Assist');
    assert.match(tier.reasonMessage, /not eligible for Gemini Code Assist/);

    const onboard = await internal('onboardUser', at, { tierId: 'standard-tier', metadata: METADATA });
    assert.equal(onboard.json.done, true);
    assert.equal(onboard.json.response.cloudaicompanionProject, undefined);
    for (const r of [await internal('generateContent', at, envelope('p')), await stream(at, envelope('p')), await countTokens(at)]) {
      assert.equal(forbidden(r).message, tier.reasonMessage);
    }
  });

  test('validate-*: VALIDATION_REQUIRED with the account\'s link; generation gets cloudcode-pa\'s 403', T, async () => {
    const slug = fresh('validate-');
    const at = await accessToken(`1//${slug}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.json.currentTier, undefined);
    const [tier] = load.json.ineligibleTiers;
    assert.equal(tier.reasonCode, 'VALIDATION_REQUIRED');
    assert.equal(tier.reasonMessage, 'Verify your account to continue.');
    assert.equal(tier.validationUrl, `https://accounts.google.com/signin/continue?mock=${slug}`);
    assert.equal(tier.validationLearnMoreUrl, 'https://support.google.com/accounts?p=al_alert');
    assert.equal(tier.tierId, 'standard-tier');

    for (const r of [
      await internal('generateContent', at, envelope('p')),
      await stream(at, envelope('p')),
      await countTokens(at),
      await internal('onboardUser', at, { tierId: 'standard-tier' }),
    ]) {
      const error = forbidden(r);
      assert.equal(error.message, 'Verify your account to continue.');
      const [info, help] = error.details;
      assert.equal(info.reason, 'VALIDATION_REQUIRED');
      assert.equal(info.domain, 'cloudcode-pa.googleapis.com');
      assert.equal(info.metadata.validation_url, tier.validationUrl);
      assert.deepEqual(help, {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [
          { description: 'Verify your account', url: tier.validationUrl },
          { description: 'Learn more', url: tier.validationLearnMoreUrl },
        ],
      });
    }
  });

  test('subscription-*: SUBSCRIPTION_REQUIRED on g1-pro-tier, onboarding gives no project', T, async () => {
    const slug = fresh('subscription-');
    const at = await accessToken(`1//${slug}`);
    const load = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(load.json.currentTier, undefined);
    assert.deepEqual(load.json.allowedTiers.map((t) => [t.id, t.isDefault, t.userDefinedCloudaicompanionProject]), [
      ['standard-tier', true, true],
    ]);
    const [tier] = load.json.ineligibleTiers;
    assert.equal(tier.reasonCode, 'SUBSCRIPTION_REQUIRED');
    assert.equal(tier.tierId, 'g1-pro-tier');
    assert.equal(tier.validationUrl, `https://one.google.com/mock-subscribe?${slug}`);
    assert.equal(typeof tier.reasonMessage, 'string');
    const onboard = await internal('onboardUser', at, { tierId: 'standard-tier' });
    assert.equal(onboard.json.done, true);
    assert.equal(onboard.json.response.cloudaicompanionProject, undefined);
    assert.equal(forbidden(await internal('generateContent', at, envelope('p'))).message, tier.reasonMessage);
  });

  test('free-*: every Code Assist method is refused as an unsupported client', T, async () => {
    const at = await accessToken(`1//${fresh('free-')}`);
    const prefix = 'This client is no longer supported for Gemini Code Assist for individuals.';
    for (const r of [
      await internal('loadCodeAssist', at, { metadata: METADATA }),
      await internal('onboardUser', at, { tierId: 'free-tier' }),
      await internal('generateContent', at, envelope('p')),
      await stream(at, envelope('p')),
      await countTokens(at),
    ]) {
      assert.ok(forbidden(r).message.startsWith(prefix), r.text);
    }
  });

  test('a rule\'s account field sets the state for the calls it matches; unknown states are rejected', T, async () => {
    const slug = fresh();
    const at = await accessToken(`1//${slug}`);
    await ctl.script({ key: `1//${slug}`, action: 'v1internal.loadCodeAssist', account: 'validation_required', times: 1 });
    const first = await internal('loadCodeAssist', at, { metadata: METADATA });
    assert.equal(first.json.ineligibleTiers[0].reasonCode, 'VALIDATION_REQUIRED');
    assert.equal((await internal('loadCodeAssist', at, { metadata: METADATA })).json.currentTier.id, 'standard-tier');
    assert.equal((await ctl.calls({ key: at, action: 'v1internal.loadCodeAssist' }))[0].accountState, 'validation_required');

    // Without `action` a rule applies to the generation calls, here matched on the bearer.
    await ctl.script({ key: at, account: 'free', times: 1 });
    forbidden(await internal('generateContent', at, envelope(`mock-project-${slug}`)));
    assert.equal((await internal('generateContent', at, envelope(`mock-project-${slug}`))).status, 200);

    await assert.rejects(ctl.script({ key: at, account: 'gold' }), /unknown account state "gold"/);
  });

  test('setup bodies are checked field by field, like other requests', T, async () => {
    const at = await accessToken(`1//${fresh()}`);
    const r = await internal('loadCodeAssist', at, { metadata: { pluginTyp: 'GEMINI' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /Unknown name "pluginTyp" at 'metadata': Cannot find field\./);
  });

  test('Code Assist calls keep user-agent and x-goog-api-client in the record', T, async () => {
    const slug = fresh();
    const at = await accessToken(`1//${slug}`);
    const headers = { 'user-agent': 'GeminiCLI/0.9.0 (linux; x64)', 'x-goog-api-client': 'gl-node/20.0.0' };
    await internal('generateContent', at, envelope(`mock-project-${slug}`), { headers });
    await internal('loadCodeAssist', at, { metadata: METADATA }, { headers });
    for (const c of await ctl.calls({ key: at })) {
      assert.equal(c.headers['user-agent'], headers['user-agent']);
      assert.equal(c.headers['x-goog-api-client'], headers['x-goog-api-client']);
    }
  });
});

// ---------------------------------------------------------------- quota

describe('retrieveUserQuota and Code Assist 429s', () => {
  test('one REQUESTS bucket per model; the fraction falls with each call; the limit then answers 429', T, async () => {
    const slug = `${fresh()}-limit4-q`;
    const project = `mock-project-${slug}`;
    const at = await accessToken(`1//${slug}`);
    const quota = async () => {
      const r = await internal('retrieveUserQuota', at, { project });
      assert.equal(r.status, 200, r.text);
      return Object.fromEntries(r.json.buckets.map((b) => [b.modelId, b]));
    };
    const before = await quota();
    assert.deepEqual(Object.keys(before), [
      'gemini-2.5-pro',
      'gemini-2.5-flash',
      'gemini-2.5-flash-lite',
      'gemini-3-pro-preview',
      'gemini-3-flash-preview',
    ]);
    const bucket = before['gemini-2.5-flash'];
    assert.deepEqual(Object.keys(bucket), ['remainingFraction', 'resetTime', 'tokenType', 'modelId']);
    assert.equal(bucket.remainingFraction, 1);
    assert.equal(bucket.tokenType, 'REQUESTS');
    assert.match(bucket.resetTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const reset = Date.parse(bucket.resetTime);
    assert.ok(reset > Date.now() && reset <= Date.now() + 25 * 3600_000);
    assert.deepEqual([laWallClock(reset).hour, laWallClock(reset).minute, laWallClock(reset).second], [0, 0, 0], 'midnight in Los Angeles');

    await internal('generateContent', at, envelope(project));
    await stream(at, envelope(project));
    await countTokens(at); // countTokens is not a request against the quota
    await internal('generateContent', at, envelope(project, 'gemini-2.5-pro'));
    const now = await quota();
    assert.equal(now['gemini-2.5-flash'].remainingFraction, 0.5);
    assert.equal(now['gemini-2.5-pro'].remainingFraction, 0.75);
    assert.equal(now['gemini-3-pro-preview'].remainingFraction, 1);

    await internal('generateContent', at, envelope(project));
    await internal('generateContent', at, envelope(project));
    assert.equal((await quota())['gemini-2.5-flash'].remainingFraction, 0);
    const over = await internal('generateContent', at, envelope(project));
    assert.equal(over.status, 429);
    const [info, retry] = over.json.error.details;
    assert.equal(info.reason, 'QUOTA_EXHAUSTED');
    assert.equal(info.metadata.quotaResetTimeStamp, bucket.resetTime);
    assert.equal(info.metadata.model, 'gemini-2.5-flash');
    assert.equal(retry['@type'], 'type.googleapis.com/google.rpc.RetryInfo');
    assert.equal((await ctl.calls({ key: at, action: 'v1internal.generateContent' })).at(-1).fault, 'rate_limit_day');
  });

  test('other models the account used get a bucket too; a wrong project is refused', T, async () => {
    const slug = fresh();
    const project = `mock-project-${slug}`;
    const at = await accessToken(`1//${slug}`);
    await internal('generateContent', at, envelope(project, 'gemini-2.5-flash-t900'));
    const r = await internal('retrieveUserQuota', at, { project });
    const extra = r.json.buckets.at(-1);
    assert.equal(extra.modelId, 'gemini-2.5-flash-t900');
    assert.equal(extra.remainingFraction, 0.99);
    assert.equal(forbidden(await internal('retrieveUserQuota', at, { project: 'nope' })).message, 'Permission denied on resource project nope.');
    forbidden(await internal('retrieveUserQuota', await accessToken(`1//${fresh('new-')}`), { project }));
  });

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

  test('goDuration and nextLaMidnight', () => {
    assert.deepEqual(
      [0, 539, 1500, 30_000, 60_000, 3_600_000, 91_226_179].map(goDuration),
      ['0s', '539ms', '1.5s', '30s', '1m0s', '1h0m0s', '25h20m26.179s'],
    );
    // Winter (PST, UTC-8) and summer (PDT, UTC-7), and just before midnight.
    assert.equal(new Date(nextLaMidnight(Date.parse('2025-01-15T12:00:00Z'))).toISOString(), '2025-01-16T08:00:00.000Z');
    assert.equal(new Date(nextLaMidnight(Date.parse('2025-07-15T12:00:00Z'))).toISOString(), '2025-07-16T07:00:00.000Z');
    assert.equal(new Date(nextLaMidnight(Date.parse('2025-07-16T06:59:59Z'))).toISOString(), '2025-07-16T07:00:00.000Z');
    // The day DST starts (2025-03-09) and ends (2025-11-02).
    assert.equal(new Date(nextLaMidnight(Date.parse('2025-03-09T12:00:00Z'))).toISOString(), '2025-03-10T07:00:00.000Z');
    assert.equal(new Date(nextLaMidnight(Date.parse('2025-11-02T12:00:00Z'))).toISOString(), '2025-11-03T08:00:00.000Z');
  });
});

// ---------------------------------------------------------------- reset

describe('reset', () => {
  test('POST /__mock/reset clears codes, operations, onboarding and quota use', T, async () => {
    const local = await startMock();
    const saved = mock;
    mock = local; // the helpers talk to `mock`
    try {
      const localCtl = mockClient(local.url);
      const { code, verifier } = await signIn(fresh());
      const slug = fresh('new-poll1-');
      const at = await accessToken(`1//${slug}`);
      const onboard = await internal('onboardUser', at, { tierId: 'standard-tier' });
      assert.equal((await getOperation(at, onboard.json.name)).json.done, true);
      const project = `mock-project-${slug}`;
      assert.equal((await internal('generateContent', at, envelope(project))).status, 200);
      const fraction = async () =>
        (await internal('retrieveUserQuota', at, { project })).json.buckets.find((b) => b.modelId === 'gemini-2.5-flash')?.remainingFraction;
      assert.equal(await fraction(), 0.99);

      await localCtl.reset();
      assert.deepEqual(await localCtl.operations(), []);
      assert.equal((await exchange(code, verifier)).json.error_description, 'Malformed auth code.');
      assert.equal((await getOperation(at, onboard.json.name)).status, 404);
      assert.equal((await internal('loadCodeAssist', at, {})).json.currentTier, undefined, 'onboarding forgotten');
      forbidden(await internal('generateContent', at, envelope(project)));
      // Onboard again to read the quota: it starts full.
      const again = await internal('onboardUser', at, { tierId: 'standard-tier' });
      await getOperation(at, again.json.name);
      assert.equal(await fraction(), 1);
    } finally {
      mock = saved;
      await local.close();
    }
  });
});
