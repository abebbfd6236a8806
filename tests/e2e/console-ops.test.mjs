// The console's Operations section and the keys' archive, against a real
// stack (nothing stubbed): an invalid key fails a request and is disabled,
// the cron runs, the key's disabled_at moves four days back (the jobs read
// the clock, so that is "four days later"), and the cron archives it. Then,
// in the browser: the Operations page shows the key's failure group (masked
// name, class) and every job's last run; the Keys page's archive lists the
// key, and Restore brings it back into the key list.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLIENT_TOKEN, ROOT, startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { runCron } from '../lib/util.mjs';
import { UI_TIMEOUT, dictionaries, keepLocal, logIn, watchErrors } from '../lib/console.mjs';

const SHOTS = join(ROOT, 'tests/.screenshots');
const BAD = 'invalid-console-x';
const GOOD = 'ok-console-ops';
const MODEL = 'gemini-2.5-flash';
const DAY = 86_400_000;
/** A key's id: the first 16 hex digits of its secret's SHA-256. */
const idOf = (secret) => createHash('sha256').update(secret).digest('hex').slice(0, 16);
const BAD_ID = idOf(BAD);

let stack;
let browser;
let dicts;

before(async () => {
  dicts = await dictionaries();
  if (!BROWSER.ready) return;
  stack = await startStack();
  await stack.admin('POST', '/keys', { keys: [BAD, GOOD] });
  // Round robin reaches the invalid key within a few requests; each still
  // succeeds on the good one. Bounded: at most 10 requests.
  for (let i = 0; i < 10; i += 1) {
    const res = await stack.call('POST', '/v1/chat/completions', {
      token: CLIENT_TOKEN, body: { model: MODEL, messages: [{ role: 'user', content: `hello ${i}` }] },
    });
    assert.equal(res.status, 200, await res.text());
    const { keys } = await stack.admin('GET', '/keys');
    if (keys.find((k) => k.id === BAD_ID)?.enabled === false) break;
  }
  const { keys } = await stack.admin('GET', '/keys');
  assert.equal(keys.find((k) => k.id === BAD_ID)?.enabled, false, 'the invalid key was disabled');
  await runCron(stack);
  await stack.d1(`UPDATE upstream_keys SET disabled_at = disabled_at - ${4 * DAY} WHERE id = '${BAD_ID}'`);
  await runCron(stack);
  const archive = await stack.admin('GET', '/keys/archive');
  assert.deepEqual(archive.keys.map((k) => k.id), [BAD_ID], 'the cron archived the key');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

async function pageFor(lang, width, height) {
  const context = await browser.newContext({ locale: lang === 'zh' ? 'zh-CN' : 'en-US', viewport: { width, height } });
  const blocked = await keepLocal(context);
  await logIn(context, stack.url);
  const page = await context.newPage();
  return { context, page, blocked, errors: watchErrors(page) };
}

browserTest('operations: the invalid key\'s failure group and every job\'s last run are shown, in en and zh', { timeout: 180_000 }, async () => {
  const masked = (await stack.admin('GET', '/keys/archive')).keys[0].masked;
  mkdirSync(SHOTS, { recursive: true });
  for (const [lang, width, height] of [['en', 1440, 900], ['zh', 390, 844]]) {
    const { context, page, blocked, errors } = await pageFor(lang, width, height);
    try {
      const d = dicts[lang];
      await openPage(page, `${stack.url}/admin/ops`);
      const row = page.locator(`.errors-table tbody tr[data-upstream="${BAD_ID}"]`);
      await row.first().waitFor({ timeout: UI_TIMEOUT });
      assert.equal((await row.first().locator('.ops-name').textContent()).trim(), masked);
      assert.equal((await row.first().locator('td .pill').first().textContent()).trim(), d['ops.class.key_invalid']);
      assert.equal(await page.textContent('h1#page-title'), d['nav.ops']);
      // The request that met the key is listed below, by its id.
      await page.waitForSelector('.events-table tbody tr .req-id code', { timeout: UI_TIMEOUT });

      // Every job has run twice: its card shows the last run, ok, with its counts.
      await page.waitForSelector('.job-card .job-last', { timeout: UI_TIMEOUT });
      const cards = await page.$$eval('.job-card', (els) => els.map((el) => ({
        job: el.dataset.job,
        title: el.querySelector('h3').textContent.trim(),
        ok: el.querySelector('.job-last .pill')?.textContent.trim(),
        chips: [...el.querySelectorAll('.job-last .chip')].map((c) => c.textContent.replace(/\s+/g, ' ').trim()),
        earlier: !!el.querySelector('.job-runs'),
      })));
      assert.deepEqual(cards.map((c) => c.job), ['import', 'probe', 'archive', 'tokens', 'retention', 'reseal', 'files']);
      for (const c of cards) {
        assert.equal(c.title, d[`ops.job.${c.job}`]);
        assert.equal(c.ok, d['ops.ok'], `${c.job} ran ok`);
        assert.ok(c.earlier, `${c.job} lists its earlier run`);
      }
      const archived = cards.find((c) => c.job === 'archive').chips;
      assert.deepEqual(archived, [`${d['ops.count.archived']}: 1`]);
      assert.ok(['log_rows', 'rollups', 'minute_rollups', 'health_rows'].every((n) => cards.find((c) => c.job === 'retention').chips.some((chip) => chip.startsWith(`${d[`ops.count.${n}`]}:`))));
      await page.evaluate(() => document.fonts.ready);
      await page.screenshot({ path: join(SHOTS, `ops-real-${lang}-${width}.png`), fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow} px`);
      assert.deepEqual(errors, []);
      assert.deepEqual(blocked, []);
    } finally {
      await context.close();
    }
  }
});

browserTest('keys: the archive lists the archived key, and Restore brings it back to the key list', { timeout: 120_000 }, async () => {
  const { context, page, blocked, errors } = await pageFor('en', 1440, 900);
  try {
    const masked = (await stack.admin('GET', '/keys/archive')).keys[0].masked;
    await openPage(page, `${stack.url}/admin/keys`);
    await page.waitForSelector('.keys-table tbody tr', { timeout: UI_TIMEOUT });
    const listed = () => page.$$eval('.keys-table:not(.archive-table) tbody th code', (els) => els.map((e) => e.textContent.trim()));
    assert.ok(!(await listed()).includes(masked), 'an archived key is not in the key list');
    await page.getByRole('button', { name: dicts.en['keys.viewArchive'] }).click();
    const row = page.locator(`.archive-table tbody tr[data-id="${BAD_ID}"]`);
    await row.waitFor({ timeout: UI_TIMEOUT });
    assert.equal((await row.locator('th code').textContent()).trim(), masked);
    await row.locator('.check input').check();
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/keys/archive/restore'), { timeout: UI_TIMEOUT }),
      page.click('#archive-restore'),
    ]);
    assert.equal(res.status(), 200);
    assert.deepEqual(await res.json(), { restored: 1 });
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    await page.waitForSelector('.archive-view .empty', { timeout: UI_TIMEOUT });
    await page.getByRole('button', { name: dicts.en['keys.viewKeys'], exact: true }).click();
    await page.waitForFunction((m) => [...document.querySelectorAll('.keys-table tbody th code')].some((e) => e.textContent.trim() === m), masked, { timeout: UI_TIMEOUT });
    const { keys } = await stack.admin('GET', '/keys');
    assert.equal(keys.find((k) => k.id === BAD_ID)?.enabled, true, 'restored and enabled');
    assert.deepEqual(errors, []);
    assert.deepEqual(blocked, []);
  } finally {
    await context.close();
  }
});
