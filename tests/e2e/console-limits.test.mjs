// The console's scheduling pieces in headless Chromium, against the real
// stack and the mock's Google:
//
// - the Models page's model_limits editor: rows added, filled, reordered and
//   removed, saved with health_refresh_ms and read back through the API; a
//   row the server refuses explained beside the editor, nothing saved;
// - Google's free-tier preset: the rows it adds or replaces shown first, then
//   saved, a replaced row keeping its concurrency;
// - the Keys page: the project of two keys set in one action and cleared
//   again, and the Projects view counting them;
// - the dashboard's Queues card: "no concurrency-limited models" while the
//   queues endpoint fails or lists nothing, each model's queue once it answers.
//
// Every page reaches nothing but the gateway. The pages' screenshots, axe and untranslated-text checks are in
// console.test.mjs (its page list has these states too).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { UI_TIMEOUT, dictionaries, keepLocal, logIn, untranslated, watchErrors } from '../lib/console.mjs';

const KEYS = ['ok-limits-a', 'ok-limits-b', 'ok-limits-c'];

let stack;
let browser;
let dicts;

before(async () => {
  dicts = await dictionaries();
  if (!BROWSER.ready) return;
  stack = await startStack({ keys: KEYS });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/**
 * A fresh logged-in page that may reach nothing but the gateway. `queues`,
 * when given, is what GET /admin/api/models/queues answers in it (a route's
 * fulfil options), as it will once that endpoint works.
 */
async function openConsole(path, { lang = 'en', queues } = {}) {
  const context = await browser.newContext({ locale: lang === 'zh' ? 'zh-CN' : 'en-US', viewport: { width: 1440, height: 900 } });
  const external = await keepLocal(context);
  await logIn(context, stack.url);
  const page = await context.newPage();
  if (queues) await page.route('**/admin/api/models/queues', (r) => r.fulfill(queues));
  const errors = watchErrors(page);
  const res = await openPage(page, `${stack.url}${path}`);
  assert.equal(res.status(), 200);
  return {
    page,
    errors,
    /** Closes the context; the page must have requested nothing but the gateway. */
    async close() {
      await context.close();
      assert.deepEqual(external, [], `${path} requested more than the gateway`);
    },
  };
}

/** Waits for `selector`, or fails saying what the page shows instead. */
async function ready(page, selector, label) {
  try {
    await page.waitForSelector(selector, { timeout: UI_TIMEOUT });
  } catch {
    const shown = await page.evaluate(() => document.querySelector('.load-error, .banner, main')?.innerText?.slice(0, 400) ?? '');
    assert.fail(`${label}: ${selector} never appeared; the page shows: ${JSON.stringify(shown)}`);
  }
}

const settings = () => stack.admin('GET', '/settings');
const row = (page, n) => page.locator(`.limits-table tbody tr:nth-child(${n})`);
const cell = (page, n, field) => row(page, n).locator(`input[data-field="${field}"]`);
/** Waits for the PATCH of the settings that `click` sends; returns its status. */
async function patched(page, click) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith('/admin/api/settings'), { timeout: UI_TIMEOUT }),
    click(),
  ]);
  return res.status();
}

browserTest('models: rows of model_limits are added, reordered, removed and saved with health_refresh_ms', { timeout: 120_000 }, async () => {
  await stack.admin('PATCH', '/settings', { model_limits: null, health_refresh_ms: null });
  const { page, errors, close } = await openConsole('/admin/models');
  try {
    await ready(page, '.limits-card .limits-empty', 'the limits editor with no rows');
    for (let i = 0; i < 3; i += 1) await page.click('#add-limit');
    await cell(page, 1, 'pattern').fill('gemini-2.5-flash*');
    await cell(page, 1, 'key_rpm').fill('10');
    await cell(page, 1, 'key_rpd').fill('250');
    await cell(page, 2, 'pattern').fill('gemini-2.5-flash-lite*');
    await cell(page, 2, 'max_concurrency').fill('3');
    await cell(page, 2, 'max_wait_ms').fill('1500');
    await cell(page, 3, 'pattern').fill('gemini-scratch');
    // flash* comes first, so flash-lite* can never apply: the page says so.
    await page.waitForSelector('.limits-table tbody tr:nth-child(2) .shadowed', { timeout: UI_TIMEOUT });
    await row(page, 2).locator('.move-up').click();
    assert.equal(await cell(page, 1, 'pattern').inputValue(), 'gemini-2.5-flash-lite*');
    assert.equal(await page.locator('.limits-table .shadowed').count(), 0, 'in this order every row can apply');
    await row(page, 3).locator('.remove-row').click();
    assert.equal(await page.locator('.limits-table tbody tr').count(), 2);
    await page.fill('#health-refresh', '5000');
    assert.equal(await patched(page, () => page.click('#save-limits')), 200);
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    const saved = await settings();
    assert.deepEqual(saved.model_limits, [
      { pattern: 'gemini-2.5-flash-lite*', max_concurrency: 3, max_wait_ms: 1500 },
      { pattern: 'gemini-2.5-flash*', key_rpm: 10, key_rpd: 250 },
    ]);
    assert.equal(saved.health_refresh_ms, 5000);
    // Saved: nothing left to save, and a reload shows the same rows.
    assert.ok(await page.isDisabled('#save-limits'));
    await page.reload();
    await ready(page, '.limits-table tbody tr', 'the saved rows');
    assert.equal(await cell(page, 2, 'key_rpd').inputValue(), '250');
    assert.equal(await page.inputValue('#health-refresh'), '5000');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

browserTest('models: a row the server refuses is explained beside the editor and nothing is saved', { timeout: 120_000 }, async () => {
  await stack.admin('PATCH', '/settings', { model_limits: [{ pattern: 'gemini-2.5-pro*', max_concurrency: 2 }] });
  const { page, close } = await openConsole('/admin/models', { lang: 'zh' });
  try {
    await ready(page, '.limits-table tbody tr', 'the limits editor');
    // A wait without a concurrency cap: the server refuses it (400, model_limits).
    await page.click('#add-limit');
    await cell(page, 2, 'pattern').fill('gemini-2.0-flash*');
    await cell(page, 2, 'max_wait_ms').fill('1000');
    assert.equal(await patched(page, () => page.click('#save-limits')), 400);
    await page.waitForSelector('#limits-error', { timeout: UI_TIMEOUT });
    const message = await page.textContent('#limits-error');
    assert.match(message, /max_wait_ms/);
    assert.match(message, /gemini-2\.0-flash\*/);
    assert.equal(await page.locator('.banner-error').count(), 0, 'the error is beside the editor, not in the banner');
    assert.deepEqual((await settings()).model_limits, [{ pattern: 'gemini-2.5-pro*', max_concurrency: 2 }]);
    // Fixed, it saves, and the message goes.
    await cell(page, 2, 'max_concurrency').fill('1');
    assert.equal(await patched(page, () => page.click('#save-limits')), 200);
    await page.waitForSelector('#limits-error', { state: 'detached', timeout: UI_TIMEOUT });
    assert.equal((await settings()).model_limits.length, 2);
  } finally {
    await close();
  }
});

browserTest('models: the free-tier preset shows what it adds and replaces, then saves; a replaced row keeps its concurrency', { timeout: 120_000 }, async () => {
  const { presets: [preset] } = await stack.admin('GET', '/model-limits/presets');
  assert.ok(preset.limits.some((r) => r.pattern === 'gemini-2.5-pro*'), JSON.stringify(preset));
  const mine = [
    { pattern: 'gemini-2.5-pro*', max_concurrency: 2, max_wait_ms: 1000, key_rpm: 1 },
    { pattern: 'my-own-model', max_concurrency: 5 },
  ];
  await stack.admin('PATCH', '/settings', { model_limits: mine });
  const { page, errors, close } = await openConsole('/admin/models');
  try {
    await ready(page, '.limits-table tbody tr', 'the limits editor');
    await page.click('#apply-preset');
    await page.waitForSelector('dialog[open] .preset-table tbody tr', { timeout: UI_TIMEOUT });
    const plan = await page.$$eval('dialog[open] .preset-table tbody tr', (trs) => trs.map((tr) => [tr.querySelector('code').textContent, tr.dataset.action]));
    assert.deepEqual(plan, preset.limits.map((r) => [r.pattern, r.pattern === 'gemini-2.5-pro*' ? 'replace' : 'add']));
    assert.equal(await page.locator('dialog[open] [data-action="replace"] .pill').textContent(), dicts.en['limits.action_replace']);
    // Nothing is saved before the confirmation.
    assert.deepEqual((await settings()).model_limits, mine);
    assert.equal(await patched(page, () => page.click('#apply-preset-confirm')), 200);
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    const pro = preset.limits.find((r) => r.pattern === 'gemini-2.5-pro*');
    const expected = [
      { pattern: 'gemini-2.5-pro*', max_concurrency: 2, max_wait_ms: 1000, key_rpm: pro.key_rpm, key_rpd: pro.key_rpd, key_tpm: pro.key_tpm },
      { pattern: 'my-own-model', max_concurrency: 5 },
      ...preset.limits.filter((r) => r.pattern !== 'gemini-2.5-pro*'),
    ];
    assert.deepEqual((await settings()).model_limits, expected);
    // The table shows the saved rows, in that order.
    const patterns = await page.$$eval('.limits-table tbody input[data-field="pattern"]', (inputs) => inputs.map((i) => i.value));
    assert.deepEqual(patterns, expected.map((r) => r.pattern));
    assert.ok(await page.isDisabled('#save-limits'), 'saved: no unsaved change is left');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

browserTest('keys: the project of two keys is set in one action, shown in the Projects view, and cleared', { timeout: 120_000 }, async () => {
  const { page, errors, close } = await openConsole('/admin/keys');
  try {
    await ready(page, '.keys-table tbody tr', 'keys');
    const { keys } = await stack.admin('GET', '/keys');
    // The page lists the keys in the API's order.
    const [a, b] = keys;
    for (const n of [1, 2]) await page.check(`.keys-table tbody tr:nth-child(${n}) td.check input`);
    await page.click('#set-project');
    await page.waitForSelector('dialog[open] #bulk-project', { timeout: UI_TIMEOUT });
    await page.fill('#bulk-project', '  console-project ');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/keys/project'), { timeout: UI_TIMEOUT }),
      page.click('#apply-project'),
    ]);
    assert.equal(res.status(), 200);
    assert.deepEqual(await res.json(), { updated: 2 });
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    const after = (await stack.admin('GET', '/keys')).keys;
    assert.deepEqual(after.filter((k) => k.project === 'console-project').map((k) => k.id).sort(), [a.id, b.id].sort());
    // The table shows the new project on both rows.
    await page.waitForFunction(() => [...document.querySelectorAll('.keys-table tbody td[data-label]')].filter((td) => td.textContent.trim() === 'console-project').length === 2, null, { timeout: UI_TIMEOUT });

    // The Projects view counts them.
    await page.getByRole('button', { name: dicts.en['keys.viewProjects'] }).click();
    await ready(page, '.projects-table tbody tr[data-project="console-project"]', 'the projects view');
    const cells = await page.$$eval('.projects-table tbody tr[data-project="console-project"] td.num', (tds) => tds.map((td) => td.textContent.trim()));
    assert.deepEqual(cells, ['2', '2', '0', '0'], 'keys, enabled, cooling, disabled');
    const others = await page.$$eval('.projects-table tbody tr[data-project=""] td.num', (tds) => tds.map((td) => td.textContent.trim()));
    assert.deepEqual(others, [String(KEYS.length - 2), String(KEYS.length - 2), '0', '0'], 'the keys with no project');
    assert.deepEqual(await untranslated(page, dicts, 'en'), []);

    // "Show keys" goes back to the keys of that project; clearing it there.
    await page.click('.projects-table tbody tr[data-project="console-project"] .actions button');
    await page.waitForFunction(() => document.querySelectorAll('.keys-table tbody tr:not(.detail-row)').length === 2, null, { timeout: UI_TIMEOUT });
    await page.check('#select-page');
    await page.click('#set-project');
    await page.waitForSelector('dialog[open] #clear-project', { timeout: UI_TIMEOUT });
    const [cleared] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/keys/project'), { timeout: UI_TIMEOUT }),
      page.click('#clear-project'),
    ]);
    assert.deepEqual(await cleared.json(), { updated: 2 });
    assert.ok((await stack.admin('GET', '/keys')).keys.every((k) => k.project === null));
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

browserTest('keys: a project name the server refuses is explained beside the field', { timeout: 120_000 }, async () => {
  const { page, close } = await openConsole('/admin/keys');
  try {
    await ready(page, '.keys-table tbody tr', 'keys');
    await page.check('#select-page');
    await page.click('#set-project');
    await page.waitForSelector('dialog[open] #bulk-project', { timeout: UI_TIMEOUT });
    // The input stops at 100 characters; the server's limit is what is shown when a longer one is sent.
    await page.evaluate(() => document.getElementById('bulk-project').removeAttribute('maxlength'));
    await page.fill('#bulk-project', 'p'.repeat(101));
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/keys/project'), { timeout: UI_TIMEOUT }),
      page.click('#apply-project'),
    ]);
    assert.equal(res.status(), 400);
    await page.waitForSelector('#bulk-project-err', { timeout: UI_TIMEOUT });
    assert.match(await page.textContent('#bulk-project-err'), /project/);
    assert.ok((await stack.admin('GET', '/keys')).keys.every((k) => k.project === null));
  } finally {
    await close();
  }
});

const QUEUES = {
  models: [
    { model: 'gemini-2.5-pro', max_concurrency: 2, max_wait_ms: 1000, in_flight: 1, queued: 4, granted: 10, waited: 3, rejected: 7, expired: 0, wait_p50_ms: 0, wait_p95_ms: 12, wait_max_ms: 40 },
  ],
};

browserTest('dashboard: the Queues card says no model is limited while the queues answer fails or is empty, and lists each queue once it answers', { timeout: 120_000 }, async () => {
  // Unstubbed (this branch's endpoint fails; once it works it may list the
  // capped models of the earlier tests), failing, and empty.
  for (const queues of [undefined, { status: 500, json: { error: { message: 'boom' } } }, { json: { models: [] } }]) {
    const { page, errors, close } = await openConsole('/admin/', { queues });
    try {
      await ready(page, '.queues-card', 'the queues card');
      await page.waitForFunction((text) => document.querySelector('.queues-card .empty')?.textContent === text || document.querySelector('.queues-card tbody tr'),
        dicts.en['dash.queuesNone'], { timeout: UI_TIMEOUT });
      if (queues) assert.equal(await page.textContent('.queues-card .empty'), dicts.en['dash.queuesNone']);
      assert.equal(await page.locator('.banner-error, .queues-card .load-error').count(), 0, 'a failed queues answer is not an error of the page');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  }
  const { page, close } = await openConsole('/admin/', { queues: { json: QUEUES } });
  try {
    await ready(page, '.queues-table tbody tr', 'the queues table');
    assert.match(await page.textContent('.queues-table tbody th'), /gemini-2\.5-pro/);
    const cells = await page.$$eval('.queues-table tbody td.num', (tds) => tds.map((td) => td.textContent.replace(/\s+/g, ' ').trim()));
    assert.deepEqual(cells, ['1 / 2', '4', '0 ms', '12 ms', '40 ms', '7'], 'in flight / max, queued, wait p50, p95 and max, rejected');
    assert.deepEqual(await untranslated(page, dicts, 'en'), []);
  } finally {
    await close();
  }
});
