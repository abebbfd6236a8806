// Rotating ENCRYPTION_KEY (issue 13, secrets): keys and an account stored
// under key A (sealed as today, plus a value sealed by the older enc:v1
// format and one stored in plaintext before any key was set) keep serving
// after a restart with ENCRYPTION_KEY=B and ENCRYPTION_KEY_PREVIOUS=A; the
// cron's re-seal job works through the rows in batches while every key
// keeps serving, and GET /admin/api/secrets counts what remains; afterwards
// D1 holds nothing sealed under A (nor v1, nor plaintext: every stored value
// is checked here by decrypting it under B), and B alone still serves. A
// value sealed under a third key is reported, not lost. Without
// ENCRYPTION_KEY, the admin API says so and the console shows the
// plaintext warning.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { startStack } from '../lib/harness.mjs';
import { browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { UI_TIMEOUT, dictionaries, keepLocal, logIn, untranslated, watchErrors } from '../lib/console.mjs';
import { runCron, upstreamCallsDuring } from '../lib/util.mjs';

const KEY_A = 'rotation-test-key-A-3f9c2a7e51d04b68';
const KEY_B = 'rotation-test-key-B-8d1e6b0c27f94a35';
const KEY_C = 'rotation-test-key-C-never-configured';

// More keys than one batch (50), so the job needs two runs for them.
const IMPORTED = Array.from({ length: 58 }, (_, i) => `ok-rot-${String(i).padStart(2, '0')}`);
const LEGACY_V1 = 'ok-rot-legacy-v1';
const LEGACY_PLAIN = 'ok-rot-legacy-plain';
const DISABLED = IMPORTED.slice(0, 2);
const ENABLED = [...IMPORTED.slice(2), LEGACY_V1, LEGACY_PLAIN];
const ALL_KEYS = [...IMPORTED, LEGACY_V1, LEGACY_PLAIN];
const ACCOUNT = '1//alice';
const KEY_MODEL = 'gemini-2.5-flash-rotation';
const ACCOUNT_MODEL = 'gemini-2.5-flash-rotation-acct';

// ---------------------------------------------------------------- the stored format, re-done in node

const material = (key) => createHash('sha256').update(key.trim()).digest();
const fingerprint = (key) =>
  createHash('sha256').update(Buffer.concat([Buffer.from('gemgate key fingerprint\0'), material(key)])).digest('hex').slice(0, 12);
const FP_A = fingerprint(KEY_A);
const FP_B = fingerprint(KEY_B);
const keyId = (secret) => createHash('sha256').update(secret).digest('hex').slice(0, 16);

function seal(key, plain) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', material(key), iv);
  return Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64');
}
const sealV1 = (key, plain) => `enc:v1:${seal(key, plain)}`;
const sealV2 = (key, plain) => `enc:v2:${fingerprint(key)}:${seal(key, plain)}`;

/** Opens a stored value under `key`; throws unless it is an enc:v2 value of that key that authenticates. */
function openUnder(key, stored) {
  const prefix = `enc:v2:${fingerprint(key)}:`;
  assert.ok(stored.startsWith(prefix), `not sealed under ${fingerprint(key)}: ${stored.slice(0, 24)}…`);
  const bytes = Buffer.from(stored.slice(prefix.length), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', material(key), bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
}

// ---------------------------------------------------------------- the stack

let stack;
let dicts;

before(async () => {
  dicts = await dictionaries();
  stack = await startStack({ keys: IMPORTED, secrets: { ENCRYPTION_KEY: KEY_A } });
});
after(async () => stack?.stop());

const secrets = () => stack.admin('GET', '/secrets');
const total = (counts) => Object.values(counts).reduce((s, n) => s + n, 0);

/** Sends chat requests (bounded) until every enabled key has served one; returns the keys seen. */
async function everyKeyServes(label) {
  const seen = new Set();
  for (let i = 0; i < ENABLED.length * 3 && !ENABLED.every((k) => seen.has(k)); i += 1) {
    const { calls } = await upstreamCallsDuring(stack, async () => {
      const res = await stack.call('POST', '/v1/chat/completions', {
        body: { model: KEY_MODEL, messages: [{ role: 'user', content: `hi ${i}` }] },
      });
      assert.equal(res.status, 200, `${label}: ${await res.clone().text()}`);
      assert.equal((await res.json()).choices[0].message.content, `echo: hi ${i}`);
    });
    for (const c of calls) seen.add(c.key);
  }
  assert.deepEqual(ENABLED.filter((k) => !seen.has(k)), [], `${label}: these keys never served`);
  assert.deepEqual(DISABLED.filter((k) => seen.has(k)), [], `${label}: a disabled key served`);
}

/** One request through the account; the mock must see the account's refresh token (opened from D1) at work. */
async function accountServes(label) {
  const since = (await stack.mockApi.calls()).at(-1)?.seq ?? 0;
  const res = await stack.call('POST', '/v1/chat/completions', {
    body: { model: ACCOUNT_MODEL, messages: [{ role: 'user', content: 'through the account' }] },
  });
  assert.equal(res.status, 200, `${label}: ${await res.clone().text()}`);
  const calls = (await stack.mockApi.calls({ since })).filter((c) => c.action?.startsWith('v1internal.') && c.account === ACCOUNT);
  assert.ok(calls.length > 0, `${label}: the account did not serve`);
}

test('1. under key A: keys (v2, an old v1 value, a plaintext row), an account and a sign-in are stored, and counted', async () => {
  for (const id of DISABLED) await stack.admin('PATCH', `/keys/${keyId(id)}`, { enabled: false });
  // What an older gateway left in D1: a value in the v1 format (which names
  // no key) and one stored before ENCRYPTION_KEY was set.
  const now = Date.now();
  const row = (secret, stored) =>
    `('${keyId(secret)}', '${stored}', 'legacy', 1, 'free', 1, 'admin', ${now}, ${now}, '${secret.slice(0, 4)}…')`;
  await stack.d1(
    `INSERT INTO upstream_keys (id, secret, label, weight, class, enabled, source, created_at, updated_at, masked) VALUES
       ${row(LEGACY_V1, sealV1(KEY_A, LEGACY_V1))}, ${row(LEGACY_PLAIN, LEGACY_PLAIN)}`,
  );
  const imported = await stack.admin('POST', '/accounts', { refresh_token: ACCOUNT });
  assert.equal(imported.accounts[0].status, 'active', JSON.stringify(imported));
  const current = await stack.admin('GET', '/settings');
  await stack.admin('PATCH', '/settings', {
    upstream_routing: [{ pattern: ACCOUNT_MODEL, kinds: ['account'] }],
    code_assist_models: [...(current.settings ?? current).code_assist_models, ACCOUNT_MODEL],
  });
  // A sign-in under way holds a sealed PKCE verifier.
  await stack.admin('POST', '/accounts/oauth/start');

  const stored = await stack.d1('SELECT secret FROM upstream_keys');
  assert.equal(stored.filter((r) => r.secret.startsWith(`enc:v2:${FP_A}:`)).length, IMPORTED.length, 'keys added now are sealed under A, named');

  const report = await secrets();
  assert.deepEqual(
    { encryption: report.encryption, current: report.current_fingerprint, previous_set: report.previous_set, previous: report.previous_fingerprint },
    { encryption: 'on', current: FP_A, previous_set: false, previous: null },
  );
  assert.deepEqual(report.remaining, { keys: 2, accounts: 0, sign_ins: 0 }, 'the v1 and the plaintext row are not under A by name');
  assert.deepEqual(report.plaintext, { keys: 1, accounts: 0, sign_ins: 0 });
  assert.deepEqual(report.unknown_key, { keys: 0, accounts: 0, sign_ins: 0 });
  assert.equal(report.batch_size, 50);
  assert.doesNotMatch(JSON.stringify(report), /rotation-test-key|ok-rot|1\/\/alice/, 'the report carries no secret');
});

test('2. after switching to B with A as previous, every key and the account still serve, and all of it remains to re-seal', async () => {
  await stack.restart({ secrets: { ENCRYPTION_KEY: KEY_B, ENCRYPTION_KEY_PREVIOUS: KEY_A } });
  const report = await secrets();
  assert.equal(report.current_fingerprint, FP_B);
  assert.equal(report.previous_fingerprint, FP_A);
  assert.equal(report.previous_set, true);
  assert.deepEqual(report.remaining, { keys: ALL_KEYS.length, accounts: 1, sign_ins: 1 });
  assert.deepEqual(report.plaintext, { keys: 1, accounts: 0, sign_ins: 0 });
  assert.deepEqual(report.unknown_key, { keys: 0, accounts: 0, sign_ins: 0 });
  await everyKeyServes('under B with A as previous');
  await accountServes('under B with A as previous');
  assert.doesNotMatch(stack.log, /cannot open/, 'no stored value failed to open');
});

/** A console page in `lang`, logged in and cut off from everything but the gateway. */
async function consolePage(browser, lang) {
  const context = await browser.newContext({ locale: lang === 'zh' ? 'zh-CN' : 'en-US' });
  await keepLocal(context);
  await logIn(context, stack.url);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await openPage(page, `${stack.url}/admin/settings`);
  await page.waitForSelector('.secrets-card h2', { timeout: UI_TIMEOUT });
  return { context, page, errors };
}

browserTest('3. the settings page shows the rotation under way and how many rows remain', { timeout: 120_000 }, async () => {
  const browser = await launchBrowser();
  try {
    const { page, errors } = await consolePage(browser, 'en');
    await page.waitForSelector('#secrets-progress', { timeout: UI_TIMEOUT });
    assert.equal((await page.innerText('#secrets-remaining')).trim(), String(ALL_KEYS.length + 2));
    assert.match(await page.innerText('.secrets-card'), new RegExp(FP_B));
    assert.equal(await page.$('#secrets-plaintext'), null, 'no plaintext warning while ENCRYPTION_KEY is set');
    assert.deepEqual(await untranslated(page, dicts, 'en'), []);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('4. the re-seal job works through the rows in batches while every key keeps serving, until nothing remains', async () => {
  const left = [];
  for (let run = 0; run < 6; run += 1) {
    await runCron(stack);
    const report = await secrets();
    left.push(report.remaining);
    if (total(report.remaining) === 0) break;
    // Half-way: some keys under B, some still under A; all serve.
    await everyKeyServes(`after re-seal run ${run + 1}`);
    await accountServes(`after re-seal run ${run + 1}`);
  }
  assert.deepEqual(left, [
    { keys: ALL_KEYS.length - 50, accounts: 0, sign_ins: 0 },
    { keys: 0, accounts: 0, sign_ins: 0 },
  ], 'one batch of 50 keys per run, every account and sign-in in the first');
  assert.match(stack.log, /\[gemgate\] cron reseal: 52 re-sealed, 10 remaining, 0 failed/);
  assert.match(stack.log, /\[gemgate\] cron reseal: 10 re-sealed, 0 remaining, 0 failed/);
  const report = await secrets();
  assert.deepEqual(report.plaintext, { keys: 0, accounts: 0, sign_ins: 0 }, 'the plaintext row was sealed too');
  await everyKeyServes('after the rotation');
});

test('5. D1 holds nothing sealed under A, nothing in v1 and nothing in plaintext: every value opens under B', async () => {
  const keys = await stack.d1('SELECT id, secret FROM upstream_keys');
  assert.equal(keys.length, ALL_KEYS.length);
  const byId = new Map(ALL_KEYS.map((k) => [keyId(k), k]));
  for (const { id, secret } of keys) {
    assert.doesNotMatch(secret, new RegExp(`^enc:v2:${FP_A}:|^enc:v1:`), `key ${id} is still under A`);
    assert.equal(openUnder(KEY_B, secret), byId.get(id), `key ${id}`);
  }
  const [account] = await stack.d1('SELECT refresh_token, client_secret FROM accounts');
  assert.equal(openUnder(KEY_B, account.refresh_token), ACCOUNT);
  assert.ok(openUnder(KEY_B, account.client_secret).length > 0);
  const signIns = await stack.d1('SELECT verifier FROM oauth_states');
  assert.equal(signIns.length, 1);
  assert.match(openUnder(KEY_B, signIns[0].verifier), /^[A-Za-z0-9_-]{43,128}$/, 'a PKCE verifier');
});

test('6. a value sealed under a key that is neither current nor previous is reported and skipped, not lost', async () => {
  const stray = 'ok-rot-stray-under-c';
  const now = Date.now();
  await stack.d1(
    `INSERT INTO upstream_keys (id, secret, label, weight, class, enabled, source, created_at, updated_at, masked)
       VALUES ('${keyId(stray)}', '${sealV2(KEY_C, stray)}', 'stray', 1, 'free', 0, 'admin', ${now}, ${now}, 'ok-r…')`,
  );
  let report = await secrets();
  assert.deepEqual([report.remaining.keys, report.unknown_key.keys], [1, 1]);
  await runCron(stack);
  // A warning goes to stderr, which reaches the harness apart from the
  // stdout line runCron waited for: wait for it rather than assume it came first.
  await stack.waitForLog(new RegExp(`cannot open keys ${keyId(stray)}: (internal: )?sealed under key ${fingerprint(KEY_C)}`));
  assert.match(stack.log, /\[gemgate\] cron reseal: 0 re-sealed, 1 remaining, 1 failed/);
  const [row] = await stack.d1(`SELECT secret FROM upstream_keys WHERE id = '${keyId(stray)}'`);
  assert.ok(row.secret.startsWith(`enc:v2:${fingerprint(KEY_C)}:`), 'the value the job cannot open is left as it was');
  await stack.d1(`DELETE FROM upstream_keys WHERE id = '${keyId(stray)}'`);
  report = await secrets();
  assert.equal(total(report.remaining), 0);
});

test('7. with B alone (ENCRYPTION_KEY_PREVIOUS removed) every key and the account still serve', async () => {
  await stack.restart({ secrets: { ENCRYPTION_KEY_PREVIOUS: null } });
  const report = await secrets();
  assert.deepEqual(
    [report.current_fingerprint, report.previous_set, report.previous_fingerprint, total(report.remaining)],
    [FP_B, false, null, 0],
  );
  await everyKeyServes('under B alone');
  await accountServes('under B alone');
  assert.doesNotMatch(stack.log, /cannot open/);
});

test('8. without ENCRYPTION_KEY the admin API reports the plaintext fallback', async () => {
  await stack.restart({ secrets: { ENCRYPTION_KEY: null } });
  const report = await secrets();
  assert.equal(report.encryption, 'off');
  assert.equal(report.current_fingerprint, null);
  assert.deepEqual(report.remaining, { keys: 0, accounts: 0, sign_ins: 0 }, 'nothing to re-seal without a key');
  assert.deepEqual(report.plaintext, { keys: 0, accounts: 0, sign_ins: 0 });
});

browserTest('9. without ENCRYPTION_KEY the console shows the plaintext warning, in both languages', { timeout: 120_000 }, async () => {
  assert.equal((await secrets()).encryption, 'off', 'runs after the restart without ENCRYPTION_KEY');
  const browser = await launchBrowser();
  try {
    for (const lang of ['en', 'zh']) {
      const { page, errors } = await consolePage(browser, lang);
      await page.waitForSelector('#secrets-plaintext', { timeout: UI_TIMEOUT });
      assert.equal((await page.innerText('#secrets-plaintext')).trim(), dicts[lang]['secrets.plaintextWarning']);
      assert.equal(await page.$('#secrets-progress'), null);
      assert.deepEqual(await untranslated(page, dicts, lang), [], lang);
      assert.deepEqual(errors, [], lang);
    }
  } finally {
    await browser.close();
  }
});
