// The console's Accounts page (Gemini CLI / Code Assist accounts) in
// headless Chromium, against the real stack: the worker and the project's
// mock of Google, whose accounts are refresh tokens `1//<slug>` (`alice` a
// working paid account, `validate-bob` one Google wants verified,
// `free-carol` a free individual account Google refuses on this client).
//
// - credentials imported as files through the file input: the counts, and
//   the entry that is not a credential named by its file;
// - a needs-attention account explained in English and in Chinese, with
//   Google's own message and its link;
// - the sign-in wizard to the end: the link from the page, Google's sign-in
//   (done by the test, as the operator's browser would: the mock answers
//   with the redirect to the page that fails to load), the address pasted
//   back, a tampered or reused one refused beside the field;
// - test, quota, re-check, project, disable and enable, delete, and the
//   two exports;
// - the page at 1440×900 and 375×812, in Chinese and English, light and
//   dark, screenshotted into tests/.screenshots/, with no sideways
//   scrolling, no page error, no text outside the dictionaries and no
//   serious or critical axe-core violation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { REQUEST_TIMEOUT_MS, closeWithin, inSteps } from '../lib/util.mjs';
import { UI_TIMEOUT, axeViolations, dictionaries, keepLocal, logIn, placeholders, untranslated, watchErrors } from '../lib/console.mjs';

const SHOTS = join(ROOT, 'tests/.screenshots');
const SIZES = [[1440, 900], [375, 812]];
const LANGS = { zh: 'zh-CN', en: 'en-US' };
const THEMES = ['light', 'dark'];
/** The reason codes the admin API gives, each explained by the page. */
const REASONS = ['ineligible_tier', 'project_required', 'validation_required', 'subscription_required', 'client_unsupported', 'revoked', 'forbidden'];

const ALICE = { refresh_token: '1//alice', token_type: 'Bearer', expiry_date: 0, access_token: 'x' };
const BOB = { type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: '1//validate-bob' };

let stack;
let browser;
let dicts;
/** Every request a page made that was not to the gateway. */
const external = [];

before(async () => {
  dicts = await dictionaries();
  if (!BROWSER.ready) return;
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A fresh logged-in context that may reach nothing but the gateway. */
async function newContext({ lang = 'en', theme = 'light', size = SIZES[0] } = {}) {
  const context = await browser.newContext({ locale: LANGS[lang], colorScheme: theme, viewport: { width: size[0], height: size[1] } });
  const blocked = await keepLocal(context);
  context.on('close', () => external.push(...blocked));
  await logIn(context, stack.url);
  return context;
}

/** The stored accounts, as the admin API lists them. */
const stored = async () => (await stack.admin('GET', '/accounts')).accounts;
const byEmail = async (email) => (await stored()).find((a) => a.email === email);

/** An account's row in the table. */
const rowOf = (page, id) => page.locator(`.accounts-table tbody tr[data-id="${id}"]`);

/** The numbers in a text ("Added 2, already there 0, invalid 1." → [2, 0, 1]). */
const numbers = (text) => [...text.matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));

/** Waits for `selector`, or fails saying what the page shows instead. */
async function ready(page, selector, label) {
  try {
    await page.waitForSelector(selector, { timeout: UI_TIMEOUT });
  } catch {
    const shown = await page.evaluate(() => document.querySelector('.load-error, .banner, main')?.innerText?.slice(0, 400) ?? '');
    assert.fail(`${label}: ${selector} never appeared; the page shows: ${JSON.stringify(shown)}`);
  }
}

/** Opens a closed <details> box by its summary (a click on an open one would close it). */
async function openBox(page, selector) {
  if (!(await page.locator(selector).evaluate((d) => d.open))) await page.click(`${selector} > summary`);
  await page.waitForFunction((s) => document.querySelector(s)?.open, selector, { timeout: UI_TIMEOUT });
}

/** Waits until `selector`'s trimmed text is `text`. */
const textIs = (page, selector, text) => page.waitForFunction(
  ([s, want]) => document.querySelector(s)?.textContent.replace(/\s+/g, ' ').trim() === want, [selector, text], { timeout: UI_TIMEOUT },
);

/** The JSON of the file a click on `selector` downloads. */
async function downloaded(page, click) {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: UI_TIMEOUT }), click()]);
  return { name: download.suggestedFilename(), json: JSON.parse(readFileSync(await download.path(), 'utf8')) };
}

/** Signs in at the mock's Google as `slug`, the way a browser follows `authUrl`; returns the address it lands on. */
async function signInAt(authUrl, slug) {
  const url = new URL(authUrl);
  url.searchParams.set('login_hint', slug);
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await res.body?.cancel();
  assert.equal(res.status, 302, `${url.origin}${url.pathname} answered ${res.status}`);
  const location = res.headers.get('location');
  assert.match(location, /^http:\/\/localhost:8085\/?\?.*\bstate=.*\bcode=/, 'Google sends the browser to the page that fails to load');
  return location;
}

/** A model Code Assist serves, which a scripted 429 cools on alice. */
const COOLED_MODEL = 'gemini-2.5-flash';

/**
 * Cools alice for COOLED_MODEL for ten minutes: the mock answers her next
 * request with a per-minute 429 asking for 600 s. With no API key in the
 * stack, a chat for that model goes to the accounts, and alice is the one
 * that serves.
 */
async function coolAlice() {
  await stack.mockApi.script({ key: ALICE.refresh_token, model: COOLED_MODEL, fault: 'rate_limit_minute', retryDelay: '600s', times: 1 });
  const res = await stack.call('POST', '/v1/chat/completions', {
    body: { model: COOLED_MODEL, messages: [{ role: 'user', content: 'cool alice down' }] },
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  await res.text();
  const alice = await byEmail('alice@example.com');
  const cooling = (alice.cooldowns ?? []).find((c) => c.model === COOLED_MODEL);
  assert.ok(cooling && cooling.until_ms > Date.now() + 60_000, `alice's cooldowns after a 429 of 600 s: ${JSON.stringify(alice.cooldowns)} (the chat answered ${res.status})`);
}

test('the dictionaries explain every reason code and status, with the same placeholders in both languages', () => {
  const { en, zh } = dicts;
  const keys = Object.keys(en).filter((k) => k.startsWith('accounts.') || k === 'nav.accounts');
  assert.deepEqual(Object.keys(zh).filter((k) => k.startsWith('accounts.') || k === 'nav.accounts').sort(), keys.sort());
  for (const code of [...REASONS, 'other']) assert.ok(en[`accounts.reason.${code}`] && zh[`accounts.reason.${code}`], `reason ${code}`);
  for (const s of ['active', 'needs_attention', 'disabled']) assert.ok(en[`accounts.status.${s}`] && zh[`accounts.status.${s}`], `status ${s}`);
  for (const key of keys) assert.deepEqual(placeholders(zh[key]), placeholders(en[key]), `${key}: placeholders differ`);
});

browserTest('accounts: files imported, a needs-attention account explained in both languages, the sign-in wizard, the actions and the exports', { timeout: 300_000 }, async () => {
  const context = await newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  try {
    await inSteps(270_000, async (step) => {
      step('1. navigation');
      // 1. The section is in the navigation, between Keys and Users.
      await openPage(page, `${stack.url}/admin/`);
      await ready(page, 'nav.nav', 'the console');
      const nav = await page.$$eval('nav.nav a', (as) => as.map((a) => a.getAttribute('href')));
      assert.deepEqual(nav.slice(nav.indexOf('/admin/keys'), nav.indexOf('/admin/keys') + 3), ['/admin/keys', '/admin/accounts', '/admin/users']);
      await page.click('nav.nav a[href="/admin/accounts"]');
      await textIs(page, 'h1#page-title', dicts.en['nav.accounts']);
      await ready(page, '.accounts-table, .empty', 'the accounts list');
      assert.equal(await page.textContent('.empty'), dicts.en['accounts.none'], 'no account yet');

      step('2. file import');
      // 2. Three files picked at once: gemini-cli's oauth_creds.json, an
      // authorized_user file, and one that is JSON but no credential.
      await openBox(page, '.import-box');
      await page.setInputFiles('#import-files', [
        { name: 'oauth_creds.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(ALICE)) },
        { name: 'bob.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(BOB)) },
        { name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ note: 'not a credential' })) },
      ]);
      await textIs(page, '#import-accounts', dicts.en['accounts.importButton'].replace('{n}', '3'));
      const [imported] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/admin/api/accounts'), { timeout: 60_000 }),
        page.click('#import-accounts'),
      ]);
      assert.equal(imported.status(), 200, `POST /admin/api/accounts answered ${imported.status()}`);
      const sent = JSON.parse(imported.request().postData());
      assert.deepEqual(sent, { credentials: [ALICE, BOB, { note: 'not a credential' }] }, 'each file is one entry of the credentials array');
      await ready(page, '#import-result', 'the import result');
      assert.deepEqual(numbers(await page.textContent('#import-result .result')), [2, 0, 1], 'added 2, already there 0, invalid 1');
      const invalid = await page.$$eval('#import-result .invalid-list li', (lis) => lis.map((li) => li.textContent));
      assert.equal(invalid.length, 1);
      assert.match(invalid[0], /^notes\.json/, 'the refused entry is named by its file');

      const alice = await byEmail('alice@example.com');
      const bob = await byEmail('validate-bob@example.com');
      assert.equal(alice?.status, 'active', `alice: ${JSON.stringify(alice)}`);
      assert.equal(bob?.status, 'needs_attention', `bob: ${JSON.stringify(bob)}`);
      assert.equal(bob.reason, 'validation_required');
      assert.ok(bob.url, 'Google gave bob a link to verify the account');

      step('3. needs-attention row, en and zh');
      // 3. Bob's row says what Google wants, in the console's words, with
      // Google's own under them and its link: in English, then in Chinese.
      const bobRow = rowOf(page, bob.id);
      await bobRow.waitFor({ timeout: UI_TIMEOUT });
      const attention = `.accounts-table tbody tr[data-id="${bob.id}"] .attention-text`;
      const link = bobRow.locator('.attention-link');
      await textIs(page, attention, dicts.en['accounts.reason.validation_required']);
      assert.equal(await bobRow.locator('.status-cell .pill').textContent(), dicts.en['accounts.status.needs_attention']);
      assert.equal(await link.getAttribute('href'), bob.url);
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.match(await link.getAttribute('rel'), /noopener/);
      assert.match(await link.textContent(), new RegExp(`^${dicts.en['accounts.link.validation_required']}`));
      if (bob.message) assert.equal(await bobRow.locator('.attention-message').textContent(), bob.message);
      await page.click('#lang');
      await textIs(page, 'h1#page-title', dicts.zh['nav.accounts']);
      await textIs(page, attention, dicts.zh['accounts.reason.validation_required']);
      assert.equal(await link.getAttribute('href'), bob.url);
      assert.match(await link.textContent(), new RegExp(`^${dicts.zh['accounts.link.validation_required']}`));
      assert.equal(await bobRow.locator('.status-cell .pill').textContent(), dicts.zh['accounts.status.needs_attention']);
      await page.click('#lang');
      await textIs(page, 'h1#page-title', dicts.en['nav.accounts']);

      step('4. status filter');
      // 4. The status filter, with counts.
      const filter = page.locator('.toolbar .segmented button');
      assert.deepEqual(await filter.evaluateAll((bs) => bs.map((b) => b.textContent.replace(/\s+/g, ' ').trim())),
        [`${dicts.en['accounts.filterAll']} 2`, `${dicts.en['accounts.status.active']} 1`, `${dicts.en['accounts.status.needs_attention']} 1`, `${dicts.en['accounts.status.disabled']} 0`]);
      await filter.nth(2).click();
      await page.waitForFunction((id) => {
        const rows = [...document.querySelectorAll('.accounts-table tbody tr[data-id]')];
        return rows.length === 1 && rows[0].dataset.id === id;
      }, bob.id, { timeout: UI_TIMEOUT });
      await filter.nth(0).click();
      await page.waitForFunction(() => document.querySelectorAll('.accounts-table tbody tr[data-id]').length === 2, null, { timeout: UI_TIMEOUT });

      step('5. sign-in wizard');
      // 5. The sign-in wizard. Step 1 gives Google's sign-in link, to open in a new tab.
      await openBox(page, '.oauth-box');
      const [started] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/admin/api/accounts/oauth/start'), { timeout: UI_TIMEOUT }),
        page.click('#oauth-start'),
      ]);
      assert.equal(started.status(), 200, `oauth/start answered ${started.status()}`);
      const { auth_url: authUrl } = await started.json();
      await ready(page, '#oauth-link', 'the sign-in link');
      assert.equal(await page.getAttribute('#oauth-link', 'href'), authUrl);
      assert.equal(await page.getAttribute('#oauth-link', 'target'), '_blank');
      assert.match(await page.textContent('#oauth-expiry'), /\d+:\d\d/, 'the link\'s time left is counted down');
      // Google signs in and sends the browser to http://localhost:8085/?state=…&code=…
      const landed = await signInAt(authUrl, 'free-carol');
      // A tampered address is refused, beside the field.
      await page.fill('#oauth-callback', landed.replace(/([?&]state=)[^&]+/, '$1tampered'));
      await page.click('#oauth-finish');
      await ready(page, '#oauth-callback-err', 'the refusal of a tampered address');
      assert.equal(await page.getAttribute('#oauth-callback', 'aria-invalid'), 'true');
      // Step 2: the whole address pasted back adds the account.
      await page.fill('#oauth-callback', landed);
      await page.click('#oauth-finish');
      await ready(page, '#oauth-result', 'the sign-in result');
      assert.deepEqual(numbers(await page.textContent('#oauth-result .result')), [1, 0, 0], 'added 1');
      assert.equal(await page.$('#oauth-callback-err'), null, 'the earlier refusal is gone');
      const carol = await byEmail('free-carol@example.com');
      assert.equal(carol?.source, 'oauth', `carol: ${JSON.stringify(carol)}`);
      assert.equal(carol.status, 'needs_attention');
      assert.equal(carol.reason, 'client_unsupported');
      await textIs(page, `.accounts-table tbody tr[data-id="${carol.id}"] .attention-text`, dicts.en['accounts.reason.client_unsupported']);
      // The same address again: its state was used.
      await page.fill('#oauth-callback', landed);
      await page.click('#oauth-finish');
      await ready(page, '#oauth-callback-err', 'the refusal of a reused address');
      assert.equal((await stored()).length, 3);

      step('6. disable and enable');
      // 6. Disable and enable alice with her switch.
      const aliceRow = rowOf(page, alice.id);
      const pill = `.accounts-table tbody tr[data-id="${alice.id}"] .status-cell .pill`;
      for (const [enabled, status] of [[false, 'disabled'], [true, 'active']]) {
        const [patched] = await Promise.all([
          page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(`/admin/api/accounts/${alice.id}`), { timeout: UI_TIMEOUT }),
          aliceRow.locator('[role="switch"]').click(),
        ]);
        assert.deepEqual(JSON.parse(patched.request().postData()), { enabled });
        await textIs(page, pill, dicts.en[`accounts.status.${status}`]);
        assert.equal(await aliceRow.locator('[role="switch"]').getAttribute('aria-checked'), String(enabled));
        assert.equal((await byEmail('alice@example.com')).enabled, enabled);
      }

      step('7. test');
      // 7. Test alice: the outcome and latency shown in her row.
      await aliceRow.getByRole('button', { name: dicts.en['accounts.test'], exact: true }).click();
      await aliceRow.locator('.test-result .pill-ok').waitFor({ timeout: 60_000 });

      step('8. quota');
      // 8. Quota: alice's buckets, and bob's refusal in place.
      await aliceRow.getByRole('button', { name: dicts.en['accounts.quota'], exact: true }).click();
      await ready(page, '.quota-table tbody tr', 'alice\'s quota');
      const models = await page.$$eval('.quota-table tbody th code', (cs) => cs.map((c) => c.textContent));
      assert.ok(models.includes('gemini-2.5-pro'), `quota buckets: ${models}`);
      await aliceRow.getByRole('button', { name: dicts.en['accounts.quota'], exact: true }).click();
      await bobRow.getByRole('button', { name: dicts.en['accounts.quota'], exact: true }).click();
      await ready(page, '.quota-detail .load-error', 'bob\'s quota refusal');
      await bobRow.getByRole('button', { name: dicts.en['accounts.quota'], exact: true }).click();

      step('9. cooldown countdown');
      // 9. A 429 cools alice for one model: after a refresh her row counts
      // the cooldown down, live.
      await coolAlice();
      await page.click('#refresh-accounts');
      const cooldown = aliceRow.locator('.cooldowns li', { has: page.locator('code', { hasText: COOLED_MODEL }) }).locator('.pill');
      await cooldown.waitFor({ timeout: UI_TIMEOUT });
      const [head, tail] = dicts.en['accounts.coolingFor'].split('{time}');
      const first = (await cooldown.textContent()).trim();
      assert.ok(first.startsWith(head) && first.endsWith(tail) && /\b(9|10):\d\d\b/.test(first), `a 600 s cooldown reads ${JSON.stringify(first)}`);
      await page.waitForFunction(([id, model, was]) => {
        const li = [...document.querySelectorAll(`.accounts-table tbody tr[data-id="${id}"] .cooldowns li`)].find((l) => l.querySelector('code')?.textContent === model);
        const now = li?.querySelector('.pill')?.textContent.trim();
        return now && now !== was;
      }, [alice.id, COOLED_MODEL, first], { timeout: UI_TIMEOUT });

      step('10. re-check');
      // 10. Re-check bob: the answer is said, and his row stays explained.
      const [onboarded] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith(`/admin/api/accounts/${bob.id}/onboard`), { timeout: 60_000 }),
        bobRow.getByRole('button', { name: dicts.en['accounts.recheck'], exact: true }).click(),
      ]);
      assert.equal(onboarded.status(), 200);
      const rechecked = dicts.en['accounts.rechecked'].replace('{email}', bob.email).replace('{status}', dicts.en['accounts.status.needs_attention']);
      await textIs(page, '.banner-ok .banner-text', rechecked);
      await textIs(page, attention, dicts.en['accounts.reason.validation_required']);

      step('11. project');
      // 11. Carol's project set, then cleared by an empty value.
      const carolRow = rowOf(page, carol.id);
      for (const value of ['carol-project', '']) {
        await carolRow.locator('.project-edit').click();
        await page.fill('dialog[open] #account-project', value);
        const [patched] = await Promise.all([
          page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith(`/admin/api/accounts/${carol.id}`), { timeout: UI_TIMEOUT }),
          page.click('#save-project'),
        ]);
        assert.equal(patched.status(), 200, `PATCH project_id ${JSON.stringify(value)}: ${patched.status()}`);
        await page.waitForSelector('dialog[open]', { state: 'detached', timeout: UI_TIMEOUT });
        assert.equal((await byEmail('free-carol@example.com')).project_id ?? '', value);
      }

      step('12. exports');
      // 12. The exports: no secret without asking; with secrets after a
      // confirmation that says it is logged.
      const plain = await downloaded(page, () => page.click('#export'));
      assert.match(plain.name, /\.json$/);
      assert.deepEqual(plain.json.accounts.map((a) => a.email).sort(), ['alice@example.com', 'free-carol@example.com', 'validate-bob@example.com']);
      assert.ok(plain.json.accounts.every((a) => !('refresh_token' in a)), 'no refresh token without secrets');
      await page.click('#export-secrets');
      await ready(page, 'dialog[open]', 'the confirmation');
      assert.equal(await page.textContent('dialog[open] .dialog-body p'), dicts.en['accounts.exportSecretsText']);
      const secret = await downloaded(page, () => page.click('dialog[open] .btn-danger'));
      assert.equal(secret.json.accounts.find((a) => a.email === 'alice@example.com')?.refresh_token, ALICE.refresh_token);
      await page.waitForSelector('dialog[open]', { state: 'detached', timeout: UI_TIMEOUT });

      step('13. delete');
      // 13. Carol deleted, after a confirmation.
      await carolRow.getByRole('button', { name: dicts.en['common.delete'], exact: true }).click();
      await ready(page, 'dialog[open]', 'the delete confirmation');
      await page.click('dialog[open] .btn-danger');
      await carolRow.waitFor({ state: 'detached', timeout: UI_TIMEOUT });
      assert.equal(await byEmail('free-carol@example.com'), undefined);

      assert.deepEqual(errors, [], 'no error in the page');
    });
  } finally {
    await closeWithin(context);
  }
});

/**
 * The states under test: the list, and the list with both ways of adding
 * open (the wizard started). Accounts in every status are there first.
 */
const STATES = [
  { name: 'accounts' },
  {
    name: 'accounts-add',
    async prepare(page) {
      await openBox(page, '.import-box');
      await openBox(page, '.oauth-box');
      await page.click('#oauth-start');
      await page.waitForSelector('#oauth-link', { timeout: UI_TIMEOUT });
    },
  },
];

/** Accounts in every status: active (cooling for one model), needs attention (two reasons) and disabled. */
async function seed() {
  await stack.admin('POST', '/accounts', { credentials: ['alice', 'validate-bob', 'free-carol', 'dana'].map((s) => ({ refresh_token: `1//${s}` })) });
  const dana = await byEmail('dana@example.com');
  if (dana.enabled) await stack.admin('PATCH', `/accounts/${dana.id}`, { enabled: false });
  const alice = await byEmail('alice@example.com');
  if (!(alice.cooldowns ?? []).some((c) => c.until_ms > Date.now() + 60_000)) await coolAlice();
}

async function visit(state, variant) {
  const context = await newContext(variant);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const res = await openPage(page, `${stack.url}/admin/accounts`);
  assert.equal(res.status(), 200);
  await ready(page, '.accounts-table tbody tr', state.name);
  await state.prepare?.(page);
  await page.evaluate(() => document.fonts.ready);
  return { context, page, errors };
}

for (const state of STATES) {
  browserTest(`screenshots: ${state.name}, 1440×900 and 375×812, zh and en, light and dark`, { timeout: 300_000 }, async () => {
    await seed();
    mkdirSync(SHOTS, { recursive: true });
    const name = (lang, theme, size) => `${state.name}-${lang}-${theme}-${size.join('x')}.png`;
    for (const lang of Object.keys(LANGS)) for (const theme of THEMES) for (const size of SIZES) rmSync(join(SHOTS, name(lang, theme, size)), { force: true });
    for (const lang of Object.keys(LANGS)) {
      for (const theme of THEMES) {
        for (const size of SIZES) {
          const { context, page, errors } = await visit(state, { lang, theme, size });
          try {
            const file = name(lang, theme, size);
            await page.evaluate(() => window.scrollTo(0, 0));
            await page.screenshot({ path: join(SHOTS, file), fullPage: true });
            const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
            assert.ok(overflow <= 1, `${file}: the page scrolls sideways by ${overflow} px`);
            assert.deepEqual(errors, [], `${file}: errors in the page`);
          } finally {
            await context.close();
          }
        }
      }
    }
  });
}

for (const state of STATES) {
  browserTest(`no untranslated string: ${state.name}, in zh and en`, { timeout: 120_000 }, async () => {
    await seed();
    for (const lang of Object.keys(LANGS)) {
      const { context, page } = await visit(state, { lang });
      try {
        assert.equal(await page.evaluate(() => document.documentElement.lang), LANGS[lang].split('-US')[0]);
        const bad = await untranslated(page, dicts, lang);
        assert.deepEqual(bad, [], `${state.name} in ${lang} shows text outside the ${lang} dictionary`);
      } finally {
        await context.close();
      }
    }
  });
}

for (const state of STATES) {
  browserTest(`accessibility (axe-core): ${state.name}, light and dark, zh and en`, { timeout: 120_000 }, async () => {
    await seed();
    for (const lang of Object.keys(LANGS)) {
      for (const theme of THEMES) {
        const { context, page } = await visit(state, { lang, theme });
        try {
          assert.deepEqual(await axeViolations(page), [], `${state.name} (${lang}, ${theme}): serious or critical axe violations`);
        } finally {
          await context.close();
        }
      }
    }
  });
}

browserTest('the dashboard counts the accounts beside the keys, in both languages', { timeout: 60_000 }, async () => {
  await seed();
  const counts = (await stack.admin('GET', '/accounts')).counts;
  assert.ok(counts.total > 0);
  for (const lang of Object.keys(LANGS)) {
    const context = await newContext({ lang });
    try {
      const page = await context.newPage();
      await openPage(page, `${stack.url}/admin/`);
      const line = page.locator('[data-accounts]');
      await line.waitFor({ timeout: UI_TIMEOUT });
      const expected = dicts[lang]['dash.accounts']
        .replace('{total}', counts.total).replace('{active}', counts.active)
        .replace('{attention}', counts.needs_attention).replace('{disabled}', counts.disabled);
      assert.equal((await line.textContent()).trim(), expected);
    } finally {
      await context.close();
    }
  }
});

browserTest('the accounts page requested nothing but the gateway', { timeout: 30_000 }, async () => {
  assert.deepEqual(external, []);
});
