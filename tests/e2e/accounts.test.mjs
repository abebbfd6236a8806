// Gemini CLI (Code Assist) accounts, end to end against the mock: import and
// serve through the account on both surfaces (streaming, tools), the
// envelope, project and gemini-cli headers on the wire; single-flight token
// refresh; every refusal as needs-attention with failover to a key and no
// further calls; the paste-back OAuth wizard with PKCE and a signed,
// single-use, expiring state; a mixed pool under both preferences with
// embeddings kept on keys; GCLI_CREDS_* imported at startup; and no token in
// D1, in an admin answer or in the log.
//
// Mock accounts are refresh tokens `1//<slug>`: `alice` is alice@example.com,
// a paid account with project mock-project-alice; slugs starting with
// `validate-`, `subscription-`, `ineligible-`, `noproject-`, `free-`,
// `new-` and `revoked-` behave as tests/mock/README.md describes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { ADMIN_PASSWORD, startStack } from '../lib/harness.mjs';
import { genaiClient, openaiClient } from '../lib/clients.mjs';
import { REQUEST_TIMEOUT_MS, runCron } from '../lib/util.mjs';

let stack;
let openai;
let ai;

const ENV_CRED = { refresh_token: '1//env-dora', client_id: 'env-client.apps.googleusercontent.com', client_secret: 'env-secret' };

before(async () => {
  stack = await startStack({
    keys: ['ok-acct-key'],
    secrets: { GCLI_CREDS_DORA: JSON.stringify(ENV_CRED) },
  });
  openai = openaiClient(stack);
  ai = genaiClient(stack);
});
after(async () => stack?.stop());

/** An admin call that may fail: `{status, body}`. */
async function adminRaw(method, path, body) {
  const res = await fetch(`${stack.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

/** Every answer the admin API gave in this file, to check none carries a token. */
const answers = [];
async function admin(method, path, body) {
  const res = await adminRaw(method, path, body);
  answers.push(res.text);
  assert.ok(res.status < 300, `admin ${method} ${path}: ${res.status} ${res.text}`);
  return res.body;
}

/** Imports one credential and returns its account. */
async function importOne(credential) {
  const answer = await admin('POST', '/accounts', credential);
  assert.equal(answer.invalid.length, 0, JSON.stringify(answer.invalid));
  assert.equal(answer.accounts.length, 1);
  return answer.accounts[0];
}

/** Routes `pattern` to the given kinds (first row wins) and lets Code Assist serve `models`. */
async function route(rows, models) {
  const current = await admin('GET', '/settings');
  const settings = current.settings ?? current;
  await admin('PATCH', '/settings', {
    upstream_routing: rows,
    code_assist_models: [...new Set([...(settings.code_assist_models ?? []), ...models])],
  });
}

/** Switches off every other enabled account; returns what switches them back on. */
async function only(email) {
  const others = (await admin('GET', '/accounts')).accounts.filter((a) => a.email !== email && a.enabled);
  for (const a of others) assert.equal((await admin('PATCH', `/accounts/${a.id}`, { enabled: false })).status, 'disabled');
  return async () => {
    for (const a of others) assert.equal((await admin('PATCH', `/accounts/${a.id}`, { enabled: true })).enabled, true);
  };
}

const codeAssistCalls = async (account, since = 0) =>
  (await stack.mockApi.calls({ since })).filter((c) => c.action?.startsWith('v1internal.') && (!account || c.account === account));

const seq = async () => (await stack.mockApi.calls()).at(-1)?.seq ?? 0;

test('1. an imported credential is refreshed, onboarded, and serves both surfaces with tools and streams', async () => {
  const model = 'gemini-2.5-flash-acct1';
  const account = await importOne({ refresh_token: '1//alice', token_type: 'Bearer', expiry_date: 0, access_token: 'stale' });
  assert.equal(account.email, 'alice@example.com');
  assert.equal(account.status, 'active');
  assert.equal(account.project_id, 'mock-project-alice');
  assert.ok(account.tier, 'the tier is kept');
  // Import again: deduped by email.
  const again = await admin('POST', '/accounts', [{ refresh_token: '1//alice' }]);
  assert.deepEqual([again.added, again.existing], [0, 1]);

  await route([{ pattern: 'gemini-2.5-flash-acct1', kinds: ['account'] }], [model]);
  const restore = await only('alice@example.com');
  const since = await seq();
  const chat = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi from openai' }] });
  assert.equal(chat.choices[0].message.content, 'echo: hi from openai');

  const stream = await openai.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'streamed' }] });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'echo: streamed');

  await stack.mockApi.script({ key: '1//alice', model, times: 1, reply: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] } });
  const tools = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'weather?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  });
  const call = tools.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  const native = await ai.models.generateContent({ model, contents: 'native hi' });
  assert.equal(native.text, 'echo: native hi');
  let nativeText = '';
  for await (const chunk of await ai.models.generateContentStream({ model, contents: 'native stream' })) nativeText += chunk.text ?? '';
  assert.equal(nativeText, 'echo: native stream');
  const counted = await ai.models.countTokens({ model, contents: 'count me' });
  assert.ok(counted.totalTokens > 0);

  const calls = await codeAssistCalls('1//alice', since);
  assert.ok(calls.length >= 6, `calls: ${calls.map((c) => c.action)}`);
  const generate = calls.find((c) => c.action === 'v1internal.generateContent');
  assert.equal(generate.body.model, model);
  assert.equal(generate.body.project, 'mock-project-alice');
  assert.match(generate.body.user_prompt_id, /^[0-9a-f]{16}$/);
  assert.ok(Array.isArray(generate.body.request.contents));
  assert.equal(generate.body.request.model, undefined);
  assert.match(generate.headers['user-agent'], /^GeminiCLI\/\d+\.\d+\.\d+ /);
  assert.ok(generate.headers['x-goog-api-client']);
  assert.match(generate.headers.authorization, /^Bearer ya29\./);
  const streamed = calls.find((c) => c.action === 'v1internal.streamGenerateContent');
  assert.equal(streamed.alt, 'sse');
  assert.ok(calls.some((c) => c.action === 'v1internal.countTokens'));
  // No key served any of it.
  const keyCalls = (await stack.mockApi.calls({ since })).filter((c) => c.key === 'ok-acct-key' && c.model === model);
  assert.equal(keyCalls.length, 0);
  await restore();
});

test('2. twenty concurrent requests on an expired token cause exactly one refresh', async () => {
  const model = 'gemini-2.5-flash-acct2';
  const token = '1//bella';
  await importOne({ refresh_token: token });
  await route([{ pattern: model, kinds: ['account'] }], [model]);
  // Warm: the isolate holds a token, then Google expires it.
  await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'warm' }] });
  const res = await fetch(`${stack.mock.url}/__mock/oauth/expire`, { method: 'POST', body: JSON.stringify({ refresh_token: token }) });
  assert.equal(res.status, 200);
  const since = await seq();
  const all = await Promise.all(
    Array.from({ length: 20 }, (_, i) => openai.chat.completions.create({ model, messages: [{ role: 'user', content: `n${i}` }] })),
  );
  all.forEach((r, i) => assert.equal(r.choices[0].message.content, `echo: n${i}`));
  const refreshes = (await stack.mockApi.calls({ since, action: 'token' })).filter((c) => c.account === token);
  assert.equal(refreshes.length, 1, `refreshes: ${refreshes.length}`);
});

test('3. each refusal leaves the account in needs-attention with its reason and link', async () => {
  const cases = [
    ['1//validate-vic', 'validation_required', /^https:\/\//],
    ['1//subscription-sue', 'subscription_required', /^https:\/\//],
    ['1//ineligible-ian', 'ineligible_tier', null],
    ['1//noproject-nia', 'project_required', null],
    ['1//free-fay', 'client_unsupported', null],
  ];
  for (const [token, reason, url] of cases) {
    const account = await importOne({ refresh_token: token });
    assert.equal(account.status, 'needs_attention', `${token}: ${JSON.stringify(account)}`);
    assert.equal(account.reason, reason, token);
    if (url) assert.match(account.url ?? '', url, token);
    else assert.equal(account.url, null, token);
    assert.ok(account.message, `${token} has an explanation`);
  }
  // A revoked grant at import leaves nothing behind.
  const revoked = await admin('POST', '/accounts', { credentials: [{ refresh_token: '1//revoked-rex' }, { refresh_token: '1//carl' }] });
  assert.equal(revoked.added, 1);
  assert.equal(revoked.invalid.length, 1);
  assert.equal(revoked.invalid[0].index, 0);
  assert.match(revoked.invalid[0].reason, /invalid_grant/);
  const listed = await admin('GET', '/accounts');
  assert.ok(!listed.accounts.some((a) => a.email.startsWith('revoked-rex')));

  // A project fixes the one that needed it.
  const nia = listed.accounts.find((a) => a.email.startsWith('noproject-nia'));
  const fixed = await admin('PATCH', `/accounts/${nia.id}`, { project_id: 'nia-own-project' });
  assert.equal(fixed.status, 'active');
  assert.equal(fixed.project_id, 'nia-own-project');
});

test('3b. a refusal while serving fails over to a key, and the account gets no further call', async () => {
  const model = 'gemini-2.5-pro-acct3';
  const token = '1//late-lou';
  const lou = await importOne({ refresh_token: token });
  await route([{ pattern: model, kinds: ['key', 'account'], prefer: 'account' }], [model]);
  let restore = await only(lou.email);
  await stack.mockApi.script({
    key: token,
    model,
    fault: { status: 403, body: { error: { code: 403, message: 'This client is no longer supported for Gemini Code Assist for individuals.', status: 'PERMISSION_DENIED' } } },
  });
  const since = await seq();
  const first = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'first' }] });
  assert.equal(first.choices[0].message.content, 'echo: first');
  for (let i = 0; i < 50; i += 1) {
    const r = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: `more ${i}` }] });
    assert.equal(r.choices[0].message.content, `more ${i}`.replace(/^/, 'echo: '));
  }
  const accountCalls = await codeAssistCalls(token, since);
  assert.equal(accountCalls.length, 1, 'the refused account was called once, then never again');
  const now = await admin('GET', `/accounts/${lou.id}`);
  assert.equal(now.status, 'needs_attention', 'lou');
  assert.equal(now.reason, 'client_unsupported');
  await restore();

  // A grant revoked later: the refresh fails for good, and the account waits for the operator.
  const model2 = 'gemini-2.5-pro-acct3b';
  const token2 = '1//gone-gus';
  const gusAccount = await importOne({ refresh_token: token2 });
  await route([{ pattern: model2, kinds: ['key', 'account'], prefer: 'account' }], [model2]);
  restore = await only(gusAccount.email);
  await fetch(`${stack.mock.url}/__mock/oauth/revoke`, { method: 'POST', body: JSON.stringify({ refresh_token: token2 }) });
  const after = await openai.chat.completions.create({ model: model2, messages: [{ role: 'user', content: 'after revoke' }] });
  assert.equal(after.choices[0].message.content, 'echo: after revoke');
  const gus = await admin('GET', `/accounts/${gusAccount.id}`);
  assert.equal(gus.status, 'needs_attention', 'gus');
  assert.equal(gus.reason, 'revoked');
  await restore();
});

/** The wizard's state token, forged with the gateway's derivation (to test expiry). */
function forgeState(sid, iat, exp) {
  const key = createHash('sha256').update(Buffer.concat([Buffer.from('gemgate oauth state\0'), Buffer.from(ADMIN_PASSWORD)])).digest();
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'HS256' });
  const body = b64({ iat, exp, sid });
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

test('4. the paste-back wizard: PKCE reaches the token endpoint; a tampered, reused or expired state is refused', async () => {
  const start = await admin('POST', '/accounts/oauth/start');
  const auth = new URL(start.auth_url);
  assert.equal(auth.searchParams.get('redirect_uri'), 'http://localhost:8085');
  assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(auth.searchParams.get('access_type'), 'offline');
  assert.equal(auth.searchParams.get('prompt'), 'consent');
  assert.equal(auth.searchParams.get('state'), start.state);
  auth.searchParams.set('login_hint', 'wendy');
  const landed = await fetch(auth, { redirect: 'manual' });
  assert.equal(landed.status, 302);
  const callback = landed.headers.get('location');
  assert.ok(callback.startsWith('http://localhost:8085'), callback);

  // Tampered: the state's signature no longer matches.
  const tampered = callback.replace(/state=([^&]+)/, (_, s) => `state=${s.slice(0, -2)}xx`);
  const bad = await adminRaw('POST', '/accounts/oauth/finish', { callback_url: tampered });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /not one this gateway issued/);

  const since = await seq();
  const done = await admin('POST', '/accounts/oauth/finish', { callback_url: callback });
  assert.equal(done.added, 1);
  assert.equal(done.accounts[0].email, 'wendy@example.com');
  assert.equal(done.accounts[0].source, 'oauth');
  const exchange = (await stack.mockApi.calls({ since, action: 'token' })).find((c) => c.body.grant_type === 'authorization_code');
  const challenge = createHash('sha256').update(exchange.body.code_verifier).digest('base64url');
  assert.equal(challenge, auth.searchParams.get('code_challenge'));

  // Reused.
  const reused = await adminRaw('POST', '/accounts/oauth/finish', { callback_url: callback });
  assert.equal(reused.status, 400);
  assert.match(reused.body.error.message, /already used/);

  // Expired: a state signed like ours, issued 11 minutes ago.
  const now = Math.floor(Date.now() / 1000);
  const old = forgeState('0123456789abcdef0123456789abcdef', now - 660, now - 60);
  const expired = await adminRaw('POST', '/accounts/oauth/finish', { callback_url: `http://localhost:8085/?state=${old}&code=x` });
  assert.equal(expired.status, 400);
  assert.match(expired.body.error.message, /expired/);
});

test('5. a mixed pool: the preferred kind serves while it can; embeddings stay on keys', async () => {
  const model = 'gemini-2.5-flash-acct5';
  const token = '1//mixed-max';
  await importOne({ refresh_token: token });
  const limitedKey = 'rl-minute-600s-acct5';
  await admin('POST', '/keys', { keys: [limitedKey] });
  // Keys preferred (the default), the key rate-limited: the account serves.
  await route([{ pattern: model, kinds: ['key', 'account'], prefer: 'key' }], [model]);
  await stack.mockApi.script({ key: 'ok-acct-key', model, fault: 'rate_limit_minute', retryDelay: '600s' });
  let since = await seq();
  for (let i = 0; i < 3; i += 1) {
    const r = await openai.chat.completions.create({ model, messages: [{ role: 'user', content: `k${i}` }] });
    assert.equal(r.choices[0].message.content, `echo: k${i}`);
  }
  let calls = await stack.mockApi.calls({ since });
  assert.equal(calls.filter((c) => c.action === 'v1internal.generateContent').length, 3);
  assert.equal(calls.filter((c) => c.action === 'generateContent' && c.model === model && c.status === 200).length, 0);
  await stack.mockApi.clearScripts();

  // Reversed: accounts preferred, the account rate-limited: the key serves.
  // Only this account may serve (the others are switched off for a while).
  const restore = await only('mixed-max@example.com');
  const model2 = 'gemini-2.5-flash-acct5b';
  await route([{ pattern: model2, kinds: ['key', 'account'], prefer: 'account' }], [model2]);
  const healthy = await openai.chat.completions.create({ model: model2, messages: [{ role: 'user', content: 'pref' }] });
  assert.equal(healthy.choices[0].message.content, 'echo: pref');
  since = await seq();
  await stack.mockApi.script({ key: token, model: model2, fault: 'rate_limit_minute', retryDelay: '600s' });
  for (let i = 0; i < 3; i += 1) {
    const r = await openai.chat.completions.create({ model: model2, messages: [{ role: 'user', content: `a${i}` }] });
    assert.equal(r.choices[0].message.content, `echo: a${i}`);
  }
  calls = await stack.mockApi.calls({ since });
  assert.equal(calls.filter((c) => c.action === 'v1internal.generateContent').length, 1, 'the account cooled after one 429');
  assert.equal(calls.filter((c) => c.action === 'generateContent' && c.key === 'ok-acct-key').length, 3);
  await restore();

  // Embeddings never go to an account, even where accounts are preferred for everything.
  await route([{ pattern: '*', kinds: ['key', 'account'], prefer: 'account' }], ['text-embedding-004']);
  since = await seq();
  const emb = await openai.embeddings.create({ model: 'text-embedding-004', input: ['one', 'two'] });
  assert.equal(emb.data.length, 2);
  calls = await stack.mockApi.calls({ since });
  assert.equal(calls.filter((c) => c.action?.startsWith('v1internal.')).length, 0);
  await route([], []);
});

test('GCLI_CREDS_* secrets are imported at startup, once', async () => {
  let dora;
  for (let i = 0; i < 50 && !dora; i += 1) {
    dora = (await admin('GET', '/accounts')).accounts.find((a) => a.email === 'env-dora@example.com');
    if (!dora) await stack.waitForLog(/GCLI_CREDS_DORA\[0\]: account/, 200).catch(() => {});
  }
  assert.ok(dora, 'the env credential was imported');
  assert.equal(dora.source, 'env');
  const since = await seq();
  await stack.restart();
  await admin('GET', '/accounts');
  await stack.waitForLog(/GCLI_CREDS_DORA: already imported/);
  const refreshed = (await stack.mockApi.calls({ since, action: 'token' })).filter((c) => c.account === ENV_CRED.refresh_token);
  assert.equal(refreshed.length, 0, 'a restart imported the same credential again');
  const rows = await stack.d1("SELECT COUNT(*) AS n FROM accounts WHERE email = 'env-dora@example.com'");
  assert.equal(rows[0].n, 1);
});

test('6. no refresh or access token in D1, in an admin answer (export aside), or in the log', async () => {
  const listed = await admin('GET', '/accounts');
  assert.ok(listed.accounts.length >= 5);
  const one = await admin('GET', `/accounts/${listed.accounts[0].id}`);
  assert.equal(one.id, listed.accounts[0].id);
  const plain = await admin('GET', '/accounts/export');
  assert.ok(plain.accounts.every((a) => a.refresh_token === undefined && a.client_secret === undefined));
  for (const text of answers) {
    assert.ok(!/1\/\/[a-z]/.test(text), `an admin answer carries a refresh token: ${text.slice(0, 200)}`);
    assert.ok(!/ya29\./.test(text), 'an admin answer carries an access token');
  }
  const rows = await stack.d1('SELECT refresh_token, client_secret FROM accounts');
  // Sealed values are `enc:v2:<key fingerprint>:<base64>`; base64 may contain `1//` by chance,
  // so the check is the prefix and the absence of a mock token's slug.
  for (const row of rows) {
    assert.match(row.refresh_token, /^enc:v2:[0-9a-f]{12}:[A-Za-z0-9+/=]+$/, 'a refresh token is stored in plaintext');
    assert.ok(!/1\/\/[a-z]{3}/.test(row.refresh_token), 'a refresh token is stored in plaintext');
    assert.match(row.client_secret, /^enc:v2:[0-9a-f]{12}:/, 'a client secret is stored in plaintext');
    assert.ok(!row.client_secret.includes('env-secret') && !row.client_secret.startsWith('GOCSPX'), 'a client secret is stored in plaintext');
  }
  // The export with secrets gives what re-imports, and is logged.
  const full = await admin('GET', '/accounts/export?secrets=1');
  const alice = full.accounts.find((a) => a.email === 'alice@example.com');
  assert.equal(alice.refresh_token, '1//alice');
  assert.equal(alice.type, 'authorized_user');
  await stack.waitForLog(/accounts exported WITH refresh tokens/);
  assert.ok(!/1\/\/[a-z]/.test(stack.log), 'the log carries a refresh token');
  assert.ok(!/ya29\.mock/.test(stack.log), 'the log carries an access token');
});

test('models, health and the dashboard count the accounts; cron refreshes a token ahead of its expiry', async () => {
  const openaiList = await openai.models.list();
  const ids = openaiList.data.map((m) => m.id);
  assert.ok(ids.includes('gemini-3-pro-preview'), 'a Code Assist model is listed when accounts exist');
  assert.equal(ids.filter((id) => id === 'gemini-3-pro-preview').length, 1);
  const native = await fetch(`${stack.url}/v1beta/models`, { headers: { 'x-goog-api-key': 'sk-test-client-token' } });
  const page = await native.json();
  assert.ok(page.models.some((m) => m.name === 'models/gemini-3-pro-preview'));

  const health = await (await fetch(`${stack.url}/health`)).json();
  assert.ok(health.accounts.total >= 5, JSON.stringify(health));
  assert.ok(health.accounts.needs_attention >= 5);
  assert.equal(health.accounts.total, health.accounts.active + health.accounts.needs_attention + health.accounts.disabled);
  const stats = await admin('GET', '/stats?range=1h');
  assert.deepEqual(stats.accounts, health.accounts);

  // A token that lives 5 minutes is refreshed by every five-minute cron run
  // before it runs out; one with an hour left, only when the object holds none.
  const token = '1//short-ttl300-sam';
  await importOne({ refresh_token: token });
  await runCron(stack);
  const since = await seq();
  await runCron(stack);
  const tokenCalls = (await stack.mockApi.calls({ since, action: 'token' }));
  assert.equal(tokenCalls.filter((c) => c.account === token).length, 1, 'cron refreshed the short-lived token');
  assert.equal(tokenCalls.filter((c) => c.account === '1//alice').length, 0, 'a token with an hour left is not refreshed');
});

test('7. an account cooled by a 429 is probed by the cron once its cooldown ends, and recovers', async () => {
  const model = 'gemini-2.5-flash-acct-probe';
  const token = '1//alice';
  await admin('POST', '/accounts', { refresh_token: token }); // added, or already there from an earlier test
  await route([{ pattern: model, kinds: ['account'] }], [model]);
  const restore = await only('alice@example.com');
  try {
    const alice = (await admin('GET', '/accounts')).accounts.find((a) => a.email === 'alice@example.com');
    assert.ok(alice?.enabled, JSON.stringify(alice));
    await stack.mockApi.script({ key: token, model, fault: 'rate_limit_minute', retryDelay: '30s', times: 1 });
    const res = await stack.call('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: 'cool alice' }] }, timeoutMs: REQUEST_TIMEOUT_MS,
    });
    const text = await res.text();
    assert.equal(res.status, 429, `alice was the only upstream and Google said 429: ${text}`);
    const health = async () => (await stack.d1(
      `SELECT cooldown_until, consecutive_failures FROM account_model_health WHERE account_id = '${alice.id}' AND model = '${model}'`,
    ))[0];
    // The failure reaches D1 in the background: poll (bounded).
    let row;
    for (let i = 0; i < 20 && !(row?.cooldown_until > Date.now()); i += 1) row = await health();
    assert.ok(row?.cooldown_until > Date.now(), `alice cools on ${model}: ${JSON.stringify(row)}`);

    const probes = async (since) => (await codeAssistCalls(token, since)).filter((c) => c.model === model);
    // A cooldown still running is not probed.
    let since = await seq();
    await runCron(stack);
    assert.equal((await probes(since)).length, 0, 'no probe while alice cools');
    // The cooldown ends (moved back past now): one cheap generate on that model, and alice is clean again.
    await stack.d1(`UPDATE account_model_health SET cooldown_until = cooldown_until - 3600000 WHERE account_id = '${alice.id}' AND model = '${model}'`);
    since = await seq();
    await runCron(stack);
    const made = await probes(since);
    assert.equal(made.length, 1, `one probe: ${JSON.stringify(made.map((c) => c.action))}`);
    assert.match(made[0].action, /generateContent$/);
    assert.equal(made[0].body?.request?.generationConfig?.maxOutputTokens, 1, 'the probe asks for one token');
    const after = await health();
    // (Only D1's copy of the time was moved; the gate still counts the real
    // 30 s, and mirrors it back. In production the probe comes after the real end.)
    assert.equal(after?.consecutive_failures ?? 0, 0, `alice recovered: ${JSON.stringify(after)}`);
    const probe = (await admin('GET', '/jobs')).jobs.find((j) => j.name === 'probe');
    assert.ok(probe.last.ok && probe.last.counts.recovered >= 1, JSON.stringify(probe.last));
    // Recovered: the next run has nothing to probe on that model.
    since = await seq();
    await runCron(stack);
    assert.equal((await probes(since)).length, 0, 'a recovered account is not probed again');
  } finally {
    await restore();
  }
});
