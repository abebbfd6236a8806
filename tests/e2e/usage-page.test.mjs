// The self-service usage page (`GET /usage`, admin-ui/usage.html) in headless
// Chromium through playwright-core: paste a user key, check, and read quota,
// used, remaining and the per-model table; the language follows
// navigator.language and the #lang toggle switches it. The page may only talk
// to the gateway (127.0.0.1): any other request is blocked and fails the test.
//
// Stable hooks the page provides: input #key, button #check, outputs #quota,
// #used, #remaining, table #models (tbody rows: model, requests, credits),
// button #lang, #title ("用量查询" in zh, "Usage" in en), and #error.
//
// Chromium and its gate come from tests/lib/browser.mjs: without the browser
// the test is skipped locally and fails in CI.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { charged, pollD1, sqlStr, waitForSettlements } from '../lib/util.mjs';

/** Bound for every page wait. */
const UI_TIMEOUT = 15_000;
const FLASH_COST = 2;

let stack;

before(async () => {
  if (!BROWSER.ready) return;
  stack = await startStack({ keys: ['ok-page-1'] });
});
after(async () => stack?.stop());

/**
 * The per-model table comes from usage_hourly, which is written in a D1
 * batch off the hot path after settlement; nothing signals when it lands, so
 * this polls D1 (bounded, no sleeps) until `userId` has `requests` there.
 */
async function waitForRollups(userId, requests) {
  await pollD1(
    stack,
    `SELECT COALESCE(SUM(requests), 0) AS requests FROM usage_hourly WHERE user_id = ${sqlStr(userId)}`,
    ([row]) => row.requests >= requests,
  );
}

/** The first integer in a label such as "96", "96 credits" or "剩余 1,096". */
function num(text, label) {
  const m = /-?\d[\d,]*/.exec(String(text ?? ''));
  assert.ok(m, `${label}: no number in ${JSON.stringify(text)}`);
  return Number(m[0].replace(/,/g, ''));
}

/** Blocks, and records, every request that is not to the local gateway. */
async function keepLocal(context) {
  const external = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    external.push(url.href);
    return route.abort();
  });
  return external;
}

/** What the page shows now. */
const readPage = (page) => page.evaluate(() => {
  const text = (sel) => document.querySelector(sel)?.textContent?.trim() ?? null;
  return {
    title: text('#title'),
    quota: text('#quota'),
    used: text('#used'),
    remaining: text('#remaining'),
    error: text('#error'),
    rows: [...document.querySelectorAll('#models tbody tr')].map((tr) =>
      [...tr.querySelectorAll('td, th')].map((cell) => cell.textContent.trim())),
  };
});

/** Pastes `key`, submits, and waits (bounded) for the /v1/usage answer to be rendered. */
async function check(page, key) {
  await page.fill('#key', key);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/usage', { timeout: UI_TIMEOUT }),
    page.click('#check'),
  ]);
  return response;
}

async function waitForTitle(page, title) {
  await page.waitForFunction(
    (expected) => document.querySelector('#title')?.textContent?.trim() === expected,
    title,
    { timeout: UI_TIMEOUT },
  );
}

function assertNumbers(shown, { model, quota, used }, label) {
  assert.equal(num(shown.quota, `${label} #quota`), quota, `${label}: quota`);
  assert.equal(num(shown.used, `${label} #used`), used, `${label}: used`);
  assert.equal(num(shown.remaining, `${label} #remaining`), quota - used, `${label}: remaining`);
  const row = shown.rows.find((cells) => cells[0]?.includes(model));
  assert.ok(row, `${label}: no #models row for ${model}: ${JSON.stringify(shown.rows)}`);
  assert.equal(num(row[1], `${label} requests cell`), 2, `${label}: requests`);
  assert.equal(num(row[2], `${label} credits cell`), used, `${label}: credits`);
}

browserTest('the /usage page shows quota, used, remaining and per-model usage, in Chinese and English', { timeout: 180_000 }, async () => {
  const model = 'gemini-2.5-flash-q-page';
  const quota = 100;
  const { user, key } = await stack.admin('POST', '/users', { name: 'usage-page', credit_quota: quota });
  for (const content of ['first', 'second']) {
    const res = await stack.call('POST', '/v1/chat/completions', {
      token: key,
      body: { model, messages: [{ role: 'user', content }] },
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
  }
  await waitForSettlements(stack, user.id, 2, { where: charged });
  const used = 2 * FLASH_COST;
  await waitForRollups(user.id, 2);
  // The API's numbers first, so a page bug is not mistaken for a ledger bug.
  const api = await (await stack.call('GET', '/v1/usage', { token: key })).json();
  assert.equal(api.used, used, JSON.stringify(api));
  assert.equal(api.models.find((m) => m.model === model)?.requests, 2, JSON.stringify(api.models));

  const browser = await launchBrowser();
  try {
    // Chinese by default for a zh-CN browser; the toggle switches to English.
    const zh = await browser.newContext({ locale: 'zh-CN' });
    const zhExternal = await keepLocal(zh);
    const page = await zh.newPage();
    const loaded = await openPage(page, `${stack.url}/usage`);
    assert.equal(loaded.status(), 200);
    assert.match(loaded.headers()['content-type'] ?? '', /text\/html/);
    assert.equal((await readPage(page)).title, '用量查询');

    const response = await check(page, key);
    assert.equal(response.status(), 200);
    await page.waitForFunction(
      () => document.querySelectorAll('#models tbody tr').length > 0 && /\d/.test(document.querySelector('#remaining')?.textContent ?? ''),
      null,
      { timeout: UI_TIMEOUT },
    );
    const shownZh = await readPage(page);
    assertNumbers(shownZh, { model, quota, used }, 'zh');
    assert.ok(!shownZh.error || !(await page.isVisible('#error')), `an error is shown after a good check: ${shownZh.error}`);

    await page.click('#lang');
    await waitForTitle(page, 'Usage');
    assertNumbers(await readPage(page), { model, quota, used }, 'after switching to en');
    assert.deepEqual(zhExternal, [], 'the page requested something other than the gateway');

    // English by default for an en-US browser; an unknown key shows an error.
    const en = await browser.newContext({ locale: 'en-US' });
    const enExternal = await keepLocal(en);
    const enPage = await en.newPage();
    await openPage(enPage, `${stack.url}/usage`);
    assert.equal((await readPage(enPage)).title, 'Usage');
    const denied = await check(enPage, `sk-${'A'.repeat(43)}`);
    assert.equal(denied.status(), 401);
    await enPage.waitForFunction(
      () => (document.querySelector('#error')?.textContent ?? '').trim().length > 0,
      null,
      { timeout: UI_TIMEOUT },
    );
    assert.ok(await enPage.isVisible('#error'), '#error is not visible');
    assert.deepEqual(enExternal, [], 'the page requested something other than the gateway');
  } finally {
    await browser.close();
  }
});
