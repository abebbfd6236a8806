// The operator's journey through the console, in one browser profile, the
// way a new operator meets gemgate: sent to the login, a wrong password,
// then in; three keys pasted and listed; a user created and its key copied
// from the page (read back from the clipboard); a chat with that key
// through the official `openai` SDK, seen on the dashboard's chart and in
// the logs with its user and model; a key disabled and its health shown
// changed; a setting changed and in force on the next request; an alias
// made on the models page and chatted through; logged out, and the old
// cookie refused.
//
// Each step acts through the page; the gateway's admin API and the mock
// are read only to check what the page claims.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { pollD1, sqlStr } from '../lib/util.mjs';
import { UI_TIMEOUT, dictionaries, keepLocal, watchErrors } from '../lib/console.mjs';

// AI Studio-shaped keys (AIza + 35), so the paste shows no "odd key" warning.
const KEYS = ['A', 'B', 'C'].map((c) => `AIzaSyJourney${c.repeat(26)}`);
const MODEL = 'gemini-2.5-flash';
const ALIAS = 'journey-fast';

let stack;
let browser;
let dicts;

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

/** The page's shown text of `selector`, trimmed. */
const text = async (page, selector) => (await page.textContent(selector, { timeout: UI_TIMEOUT }))?.trim();

/** Follows a nav link and waits for that page's title. */
async function go(page, path, titleKey) {
  await page.click(`nav.nav a[href="${path}"]`);
  await page.waitForFunction((t) => document.querySelector('h1#page-title')?.textContent === t, dicts.en[titleKey], { timeout: UI_TIMEOUT });
}

/** The mock's generateContent calls for `model`, the way the gateway sent them. */
async function upstreamCalls(model) {
  return stack.mockApi.calls({ model, action: 'generateContent' });
}

browserTest('the operator\'s journey: login, keys, a user, a chat seen on the dashboard and logs, health, a setting, an alias, logout', { timeout: 300_000 }, async () => {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1440, height: 900 } });
  const external = await keepLocal(context);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
  const page = await context.newPage();
  const errors = watchErrors(page);
  try {
    // 1. /admin/ sends a stranger to the login; a wrong password says so.
    await openPage(page, `${stack.url}/admin/`);
    await page.waitForSelector('#password', { timeout: UI_TIMEOUT });
    assert.equal(await page.$('nav.nav'), null, 'no console before logging in');
    await page.fill('#password', 'not-the-password');
    const [wrong] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/login'), { timeout: UI_TIMEOUT }),
      page.click('#login'),
    ]);
    assert.equal(wrong.status(), 401);
    await page.waitForFunction((t) => document.querySelector('#login-error')?.textContent.trim() === t, dicts.en['login.wrong'], { timeout: UI_TIMEOUT });

    // 2. The right one opens the dashboard.
    await page.fill('#password', 'test-admin-password');
    await page.click('#login');
    await page.waitForSelector('nav.nav', { timeout: UI_TIMEOUT });
    assert.equal(await text(page, 'h1#page-title'), dicts.en['nav.dashboard']);
    const cookie = (await context.cookies(`${stack.url}/admin/`)).find((c) => c.name === 'gemgate_admin');
    assert.ok(cookie, 'the session cookie was set');

    // 3. Three keys pasted at once, then listed.
    await go(page, '/admin/keys', 'nav.keys');
    await page.click('.add-keys > summary');
    await page.fill('#add-keys-text', KEYS.join('\n'));
    assert.equal(await page.$('.add-keys .warn-text'), null, 'AI Studio keys draw no warning');
    await page.click('#add-keys');
    await page.waitForSelector('#add-result', { timeout: UI_TIMEOUT });
    const counts = [...(await text(page, '#add-result')).matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));
    assert.deepEqual(counts, [3, 0, 0, 3], 'added 3, existing 0, invalid 0, of 3');
    await page.waitForFunction(() => document.querySelectorAll('.keys-table tbody tr:not(.detail-row)').length === 3, null, { timeout: UI_TIMEOUT });
    const listed = await page.$$eval('.keys-table tbody th code', (els) => els.map((e) => e.textContent));
    const { keys: stored } = await stack.admin('GET', '/keys');
    assert.deepEqual(listed.sort(), stored.map((k) => k.masked).sort(), 'the page lists the stored keys, masked');
    for (const k of KEYS) assert.ok(!listed.includes(k), 'no key is shown in full');
    assert.deepEqual(
      await page.$$eval('.keys-table tbody tr:not(.detail-row) .status-cell .pill', (els) => els.map((e) => e.textContent.trim())),
      [dicts.en['keys.healthy'], dicts.en['keys.healthy'], dicts.en['keys.healthy']],
    );

    // 4. A user; its key is shown once and copied from the page.
    await go(page, '/admin/users', 'nav.users');
    await page.click('#new-user');
    await page.fill('#user-name', 'journey');
    await page.click('#save-user');
    await page.waitForSelector('#new-key', { timeout: UI_TIMEOUT });
    await page.click('dialog[open] .dialog-actions .btn-primary');
    await page.waitForFunction((t) => document.querySelector('dialog[open] .dialog-actions .btn-primary')?.textContent === t, dicts.en['common.copied'], { timeout: UI_TIMEOUT });
    const userKey = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(userKey, /^sk-[A-Za-z0-9_-]{43}$/, 'the clipboard holds a user key');
    await page.click('dialog[open] .dialog-actions .btn:not(.btn-primary)');
    await page.waitForSelector('.users-table tbody tr', { timeout: UI_TIMEOUT });
    const user = (await stack.admin('GET', '/users')).users.find((u) => u.name === 'journey');

    // 5. A chat with that key through the official SDK.
    const client = openaiClient(stack, { apiKey: userKey });
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello from the journey' }] });
    assert.equal(chat.choices[0].message.role, 'assistant');
    assert.ok(chat.choices[0].message.content.length > 0);
    // The log row and the rollups are written after the answer.
    await pollD1(stack, `SELECT COUNT(*) AS n FROM usage_minute WHERE user_id = ${sqlStr(user.id)}`, ([row]) => row.n >= 1);

    // 6. The dashboard: its chart for the last hour, filtered to the user,
    // draws the one request; the split by user names them.
    await go(page, '/admin/', 'nav.dashboard');
    await page.click(`.segmented button:has-text("${dicts.en['range.1h']}")`);
    await page.selectOption('#f-user', { label: 'journey' });
    await page.waitForFunction(() => document.querySelector('.kpis .kpi-value')?.textContent.trim() === '1', null, { timeout: UI_TIMEOUT });
    const chart = page.locator('.charts .chart').first();
    // A refresh that lands now redraws the chart, and its old plot area has
    // no box any more: read the box of the plot area that is there.
    let box = null;
    for (let i = 0; i < 20 && !box; i += 1) {
      await chart.locator('.u-over').waitFor({ timeout: UI_TIMEOUT });
      box = await chart.locator('.u-over').boundingBox();
    }
    assert.ok(box, 'the requests chart has a plot area');
    // The cursor snaps to the nearest minute; sweep from the right (now)
    // until the legend reads the bucket with the request.
    let seen = null;
    for (let x = box.width - 1; x > 0 && seen === null; x -= 4) {
      await page.mouse.move(box.x + x, box.y + box.height / 2);
      const values = await chart.locator('.u-legend .u-series').evaluateAll((rows) => rows.map((r) => [r.querySelector('.u-label')?.textContent, r.querySelector('.u-value')?.textContent]));
      const requests = values.find(([label]) => label === dicts.en['dash.requests']);
      if (requests?.[1] === '1') seen = values;
    }
    assert.ok(seen, 'the requests chart shows a bucket with the one request');
    const byUser = page.locator('section.card', { has: page.locator('h2', { hasText: dicts.en['dash.byUser'] }) });
    assert.match(await byUser.locator('tbody tr').first().innerText(), /journey/);
    const byModel = page.locator('section.card', { has: page.locator('h2', { hasText: dicts.en['dash.byModel'] }) });
    assert.match(await byModel.locator('tbody tr').first().innerText(), new RegExp(MODEL.replace(/\./g, '\\.')));

    // 7. The logs: the request, with its user and model.
    await go(page, '/admin/logs', 'nav.logs');
    await page.waitForSelector('.logs-table tbody tr', { timeout: UI_TIMEOUT });
    const rows = await page.$$eval('.logs-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
    assert.equal(rows.length, 1, 'one request logged');
    const [status, model, who] = rows[0];
    assert.match(status, /^200/);
    assert.equal(model, MODEL);
    assert.equal(who, 'journey');

    // 8. A key disabled with its switch: its health shows it, and the pool
    // stops using it.
    await go(page, '/admin/keys', 'nav.keys');
    const first = page.locator('.keys-table tbody tr:not(.detail-row)').first();
    const masked = await first.locator('th code').textContent();
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/admin/api/keys'), { timeout: UI_TIMEOUT }),
      first.locator('[role="switch"]').click(),
    ]);
    await page.waitForFunction(([m, t]) => [...document.querySelectorAll('.keys-table tbody tr:not(.detail-row)')]
      .some((tr) => tr.querySelector('th code')?.textContent === m && tr.querySelector('.status-cell .pill')?.textContent.trim() === t), [masked, dicts.en['keys.disabled']], { timeout: UI_TIMEOUT });
    const disabled = (await stack.admin('GET', '/keys')).keys.find((k) => k.masked === masked);
    assert.equal(disabled.enabled, false);
    const off = KEYS.find((k) => masked.endsWith(k.slice(-4)));
    assert.ok(off, `${masked} is one of the pasted keys`);
    for (let i = 0; i < 4; i += 1) await client.chat.completions.create({ model: `${MODEL}-journey`, messages: [{ role: 'user', content: `after disabling ${i}` }] });
    const used = new Set((await stack.mockApi.calls({ model: `${MODEL}-journey` })).map((c) => c.key));
    assert.equal(used.size, 2, 'both enabled keys take turns');
    assert.ok(!used.has(off), 'the disabled key is not used');
    const summary = dicts.en['keys.summary'].replace('{total}', '3').replace('{healthy}', '2').replace('{cooling}', '0').replace('{disabled}', '1');
    await page.waitForFunction((s) => document.querySelector('.page-head p.muted')?.textContent.trim() === s, summary, { timeout: UI_TIMEOUT });

    // 9. A setting changed on the settings page is in force on the next
    // request: a model disabled there is refused at once.
    await go(page, '/admin/settings', 'nav.settings');
    await page.waitForSelector('#set-disabled_models', { timeout: UI_TIMEOUT });
    await client.chat.completions.create({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'before' }] });
    await page.fill('#set-disabled_models', 'gemini-2.5-pro*');
    await page.click('#save-settings');
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    await assert.rejects(
      client.chat.completions.create({ model: 'gemini-2.5-pro', messages: [{ role: 'user', content: 'after' }] }),
      (err) => err instanceof OpenAI.NotFoundError && /gemini-2\.5-pro/.test(err.message),
    );
    assert.ok(!(await client.models.list()).data.some((m) => m.id.startsWith('gemini-2.5-pro')), 'a disabled model is not listed');

    // 10. An alias made on the models page: listed, and chatted through.
    await go(page, '/admin/models', 'nav.models');
    await page.waitForSelector('.models-table tbody tr', { timeout: UI_TIMEOUT });
    const row = page.locator('.models-table tbody tr').filter({ has: page.locator('th code', { hasText: new RegExp(`^${MODEL.replace(/\./g, '\\.')}$`) }) });
    await row.locator('.actions .btn').click();
    await page.fill('dialog[open] #model-aliases', ALIAS);
    await page.click('dialog[open] .dialog-actions .btn-primary');
    await row.locator('code.tag', { hasText: ALIAS }).waitFor({ timeout: UI_TIMEOUT });
    assert.ok((await client.models.list()).data.some((m) => m.id === ALIAS), 'the alias is listed in /v1/models');
    const before = (await upstreamCalls(MODEL)).length;
    const aliased = await client.chat.completions.create({ model: ALIAS, messages: [{ role: 'user', content: 'through the alias' }] });
    assert.ok(aliased.choices[0].message.content.length > 0);
    assert.equal((await upstreamCalls(MODEL)).length, before + 1, `the alias reached ${MODEL} upstream`);

    // 11. Log out: back to the login, and the old cookie is refused.
    await page.click('.menu > summary');
    await page.click('#logout');
    await page.waitForSelector('#password', { timeout: UI_TIMEOUT });
    const res = await fetch(`${stack.url}/admin/api/keys`, { headers: { cookie: `gemgate_admin=${cookie.value}` } });
    assert.equal(res.status, 401, 'the old cookie no longer opens the admin API');
    await res.body?.cancel();

    assert.deepEqual(errors, [], 'no error in the page');
    assert.deepEqual(external, [], 'nothing but the gateway was requested');
  } finally {
    await context.close();
  }
});
