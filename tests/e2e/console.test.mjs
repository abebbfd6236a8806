// The admin console and /usage in headless Chromium, against a stack with
// keys in every state, users and logged requests:
//
// - every page at 1440×900 and 375×812 (the operations section and the
//   keys' archive at 390×844 too), in Chinese and English, light and
//   dark, screenshotted into tests/.screenshots/ (git-ignored), with no
//   page exception, no CSP violation and no sideways scrolling;
// - both dictionaries have the same keys, and every page in each language
//   shows no raw key and no text outside its dictionary (data values are
//   marked translate="no"; product names and numbers are allowed);
// - axe-core finds no serious or critical violation on any page, in
//   either theme and language;
// - the pages reach nothing but the gateway;
// - login (wrong password, the throttle's wait), the language and theme
//   switches, adding keys in bulk, users (the key shown once and copied),
//   a setting refused beside its field, and logging out.
//
// The operations section and the keys' archive are shown with stubbed
// answers holding every kind of row, and the operations page once more with
// the stack's own; console-ops.test.mjs drives them for real.
//
// The scheduling states (the model_limits editor and its preset, the
// projects view and the bulk project dialog, the dashboard's queues) are
// visited here too; console-limits.test.mjs tests what they do.
//
// The dashboard, models, logs and settings-defaults pages need admin API
// routes (`/admin/api/stats`, `/models`, `/logs`, `/settings/defaults`);
// where one is missing, its page shows the error and its tests fail.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ADMIN_PASSWORD, CLIENT_TOKEN, startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { pollD1, sqlStr } from '../lib/util.mjs';
import { UI_TIMEOUT, axeViolations, dictionaries, keepLocal, logIn, placeholders, untranslated, watchErrors } from '../lib/console.mjs';

const SHOTS = join(ROOT, 'tests/.screenshots');
const SEEDED = ['ok-console-a', 'ok-console-b', 'rl-minute-600s-console', 'invalid-console', 'err503-console'];
const SIZES = [[1440, 900], [375, 812]];
/** The new sections are shot at a 390 px phone too. */
const WITH_390 = [[1440, 900], [390, 844], [375, 812]];
const LANGS = { zh: 'zh-CN', en: 'en-US' };
const THEMES = ['light', 'dark'];

let stack;
let browser;
let userKey;
let dicts;
/** Every request a page made that was not to the gateway. */
const external = [];

before(async () => {
  dicts = await dictionaries();
  if (!BROWSER.ready) return;
  // Keys in every state: healthy, cooling for a while (a per-minute 429 asking
  // for 10 minutes), disabled (invalid) and demoted (503). The spare keys
  // that make a second page come after the requests, so that round robin
  // reaches each of these first.
  stack = await startStack();
  await stack.admin('POST', '/keys', { keys: SEEDED, label: 'seeded', project: 'console-test' });
  const alice = await stack.admin('POST', '/users', { name: 'alice', credit_quota: 500, rpm: 60, note: 'research team' });
  await stack.admin('POST', '/users', { name: '王小明', rpd: 1000, allowed_models: ['gemini-2.5-flash*'] });
  userKey = alice.key;
  // Requests that succeed, fail over, and fail: the logs, the stats and the
  // keys' health have something to show.
  await stack.mockApi.script({ key: '*', model: 'gemini-2.5-pro-console-fail', fault: 'server_500' });
  const calls = [];
  for (let i = 0; i < 12; i += 1) {
    calls.push({ token: i % 2 ? userKey : CLIENT_TOKEN, model: i % 3 ? 'gemini-2.5-flash' : 'gemini-2.5-pro', stream: i % 4 === 0 });
  }
  calls.push({ token: CLIENT_TOKEN, model: 'gemini-2.5-pro-console-fail', stream: false });
  for (const c of calls) {
    const res = await stack.call('POST', '/v1/chat/completions', {
      token: c.token,
      body: { model: c.model, stream: c.stream, messages: [{ role: 'user', content: 'hello' }] },
    });
    await res.text();
  }
  // The log rows and the hourly rollups are written off the request path.
  await pollD1(stack, 'SELECT COUNT(*) AS n FROM request_log', ([row]) => row.n >= calls.length);
  await pollD1(stack, `SELECT COALESCE(SUM(requests), 0) AS n FROM usage_hourly WHERE user_id = ${sqlStr(alice.user.id)}`, ([row]) => row.n >= 6);
  const spare = Array.from({ length: 110 }, (_, i) => `AIzaSyConsole${String(i).padStart(26, '0')}`);
  await stack.admin('POST', '/keys', { keys: spare, label: 'spare', class: 'paid' });
  // Limits for models these tests never call, so the editor has rows to show.
  await stack.admin('PATCH', '/settings', {
    model_limits: [
      { pattern: 'gemini-2.5-pro-exp*', max_concurrency: 4, max_wait_ms: 2000 },
      { pattern: 'gemma-3*', key_rpm: 30, key_rpd: 14400, key_tpm: 15000 },
    ],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const contexts = new Map();
/** A logged-in (or not) context per language, theme and size, made once. */
async function contextFor({ lang = 'en', theme = 'light', size = SIZES[0], auth = true } = {}) {
  const id = `${lang}-${theme}-${size.join('x')}-${auth}`;
  if (!contexts.has(id)) {
    const context = await browser.newContext({
      locale: LANGS[lang], colorScheme: theme, viewport: { width: size[0], height: size[1] },
    });
    const blocked = await keepLocal(context);
    context.on('close', () => external.push(...blocked));
    if (auth) await logIn(context, stack.url);
    contexts.set(id, context);
  }
  return contexts.get(id);
}
after(async () => {
  for (const c of contexts.values()) await c.close().catch(() => {});
});

/** Waits for `selector`, or fails saying what the page shows instead. */
async function ready(page, selector, label) {
  try {
    await page.waitForSelector(selector, { timeout: UI_TIMEOUT });
  } catch {
    const shown = await page.evaluate(() => document.querySelector('.load-error, .banner, main')?.innerText?.slice(0, 400) ?? '');
    assert.fail(`${label}: ${selector} never appeared; the page shows: ${JSON.stringify(shown)}`);
  }
}

// The operations section's answers (GET /admin/api/errors, /jobs and /health)
// and the keys' archive, with every kind of row they can hold: a long message
// from Google, an account, a key cooling and a disabled one, a failed job
// run and a count name the console does not know.
const NOW = Date.now();
const MIN = 60_000;
const LONG_MESSAGE = 'Resource has been exhausted (e.g. check quota). Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-pro. Please retry in 41.2s.';
const OPS_ERRORS = {
  since: NOW - 60 * MIN,
  now: NOW,
  groups: [
    { upstream_id: 'k1a2b3c4d5e6f7a8', kind: 'key', name: 'AIza…Xy9Q', label: 'team-a', model: 'gemini-2.5-pro', class: 'rate_limited', status: 429, message: LONG_MESSAGE, failures: 37, requests: 21, first_at: NOW - 50 * MIN, last_at: NOW - 2 * MIN, cooldown_until: NOW + 9 * MIN, disabled: false },
    { upstream_id: 'k9f8e7d6c5b4a3f2', kind: 'key', name: 'AIza…b7Kd', label: null, model: 'gemini-2.5-flash', class: 'key_invalid', status: 400, message: 'API key not valid. Please pass a valid API key.', failures: 1, requests: 1, first_at: NOW - 40 * MIN, last_at: NOW - 40 * MIN, cooldown_until: 0, disabled: true },
    { upstream_id: 'acct-7', kind: 'account', name: 'research.team.long-address@example-university.edu', label: 'cli', model: 'gemini-2.5-pro-preview-06-05', class: 'server_error', status: 503, message: 'The model is overloaded. Please try again later.', failures: 4, requests: 3, first_at: NOW - 30 * MIN, last_at: NOW - 5 * 3600e3, cooldown_until: 0, disabled: false },
    { upstream_id: 'k1a2b3c4d5e6f7a8', kind: 'key', name: 'AIza…Xy9Q', label: 'team-a', model: 'gemini-2.5-flash', class: 'timeout', status: null, message: null, failures: 2, requests: 2, first_at: NOW - 20 * MIN, last_at: NOW - 20 * MIN, cooldown_until: 0, disabled: false },
  ],
  events: [
    { ts: NOW - 2 * MIN, request_id: 'req_0123456789abcdef01234567', upstream_id: 'k1a2b3c4d5e6f7a8', model: 'gemini-2.5-pro', class: 'rate_limited', status: 429, message: LONG_MESSAGE },
    { ts: NOW - 20 * MIN, request_id: 'req_89abcdef0123456789abcdef', upstream_id: 'k1a2b3c4d5e6f7a8', model: 'gemini-2.5-flash', class: 'timeout', status: null, message: null },
    { ts: NOW - 40 * MIN, request_id: 'client-supplied-id-42', upstream_id: 'k9f8e7d6c5b4a3f2', model: 'gemini-2.5-flash', class: 'key_invalid', status: 400, message: 'API key not valid. Please pass a valid API key.' },
    { ts: NOW - 45 * MIN, request_id: 'req_fedcba9876543210fedcba98', upstream_id: 'acct-7', model: 'gemini-2.5-pro-preview-06-05', class: 'network', status: null, message: 'connection reset by peer' },
  ],
};
const run = (job, agoMin, counts, ok = true, error = null) => ({ job, started_at: NOW - agoMin * MIN, duration_ms: 40 + agoMin * 7, ok, counts, error });
const OPS_JOBS = {
  jobs: [
    { name: 'import', schedule: '*/5 * * * *', runs: [run('import', 3, { changed: 0 }), run('import', 8, { changed: 1 })] },
    { name: 'probe', schedule: '*/5 * * * *', runs: [run('probe', 3, { due: 4, probed: 4, recovered: 3, still_failing: 1 }), run('probe', 8, { due: 0, probed: 0, recovered: 0, still_failing: 0 }), run('probe', 13, { due: 2, probed: 2, recovered: 0, still_failing: 2, shadowed: 1 })] },
    { name: 'archive', schedule: '*/5 * * * *', runs: [run('archive', 3, { archived: 2 })] },
    { name: 'tokens', schedule: '*/5 * * * *', runs: [run('tokens', 3, { refreshed: 0, fresh: 0, refused: 0, failed: 1 }, false, 'D1_ERROR: too many SQL variables while refreshing account acct-7'), run('tokens', 8, { refreshed: 1, fresh: 2, refused: 0, failed: 0 })] },
    { name: 'retention', schedule: '*/5 * * * *', runs: [] },
    { name: 'reseal', schedule: '*/5 * * * *', runs: [run('reseal', 3, { resealed: 50, remaining: 12, failed: 0 })] },
    { name: 'files', schedule: '*/5 * * * *', runs: [run('files', 3, { pins: 4, upload_sessions: 1 })] },
  ].map((j) => ({ ...j, last: j.runs[0] ?? null })),
};
const OPS_HEALTH = {
  status: 'degraded',
  keys: { total: 12, enabled: 10, healthy: 7 },
  accounts: { total: 2, active: 1, needs_attention: 1, disabled: 0 },
  models: [
    { model: 'gemini-2.5-flash', keys: 7, accounts: 1, total: 8 },
    { model: 'gemini-2.5-pro', keys: 0, accounts: 1, total: 1 },
    { model: 'gemini-2.5-pro-preview-06-05', keys: 0, accounts: 0, total: 0 },
  ],
};
const ARCHIVE = {
  total: 3,
  keys: [
    { id: 'a1b2c3d4e5f60718', masked: 'AIza…Qm3k', label: 'old batch', project: 'proj-legacy-001', disabled_reason: 'API key not valid. Please pass a valid API key.', disabled_at: NOW - 5 * 86400e3, archived_at: NOW - 2 * 86400e3 },
    { id: 'b2c3d4e5f6071829', masked: 'AIza…zz01', label: null, project: null, disabled_reason: 'API key expired. Please renew the API key.', disabled_at: NOW - 9 * 86400e3, archived_at: NOW - 6 * 86400e3 },
    { id: 'c3d4e5f607182930', masked: 'inva…ole3', label: 'seeded', project: 'console-test', disabled_reason: null, disabled_at: NOW - 4 * 86400e3, archived_at: NOW - 3600e3 },
  ],
};
const stubOps = async (page) => {
  await page.route((url) => url.pathname === '/admin/api/errors', (r) => r.fulfill({ json: OPS_ERRORS }));
  await page.route((url) => url.pathname === '/admin/api/jobs', (r) => r.fulfill({ json: OPS_JOBS }));
  await page.route((url) => url.pathname === '/health', (r) => r.fulfill({ json: OPS_HEALTH }));
};
const stubArchive = (page) => page.route((url) => url.pathname === '/admin/api/keys/archive', (r) => r.fulfill({ json: ARCHIVE }));
const openArchive = async (page) => {
  await page.click('.page > .segmented button:nth-child(3)');
  await page.waitForSelector('.archive-table tbody tr', { timeout: UI_TIMEOUT });
};

/**
 * The pages and states under test. `ready` is what shows the page has its
 * data; `prepare` opens a part that is closed at first; `dialog` marks a
 * state that opens a modal; `route` stands in for an API answer.
 */
const PAGES = [
  { name: 'login', path: '/admin/', auth: false, ready: '#password' },
  {
    name: 'dashboard', path: '/admin/', ready: '.charts .chart .u-wrap',
    async prepare(page) {
      await page.waitForSelector('.queues-card .empty, .queues-card tbody tr', { timeout: UI_TIMEOUT });
    },
  },
  {
    // The queues as GET /admin/api/models/queues will answer once it works.
    name: 'dashboard-queues', path: '/admin/', ready: '.queues-table tbody tr',
    async route(page) {
      await page.route('**/admin/api/models/queues', (r) => r.fulfill({ json: { models: [
        { model: 'gemini-2.5-pro', max_concurrency: 2, max_wait_ms: 1000, in_flight: 2, queued: 3, granted: 10, waited: 3, rejected: 1, expired: 0, wait_p50_ms: 0, wait_p95_ms: 12, wait_max_ms: 40 },
        { model: 'gemini-2.5-flash-preview-09-2025', max_concurrency: 20, max_wait_ms: 30000, in_flight: 5, queued: 0, granted: 1200, waited: 30, rejected: 0, expired: 2, wait_p50_ms: 140, wait_p95_ms: 2300, wait_max_ms: 12000 },
      ] } }));
    },
  },
  { name: 'keys', path: '/admin/keys', ready: '.keys-table tbody tr' },
  {
    name: 'keys-add', path: '/admin/keys', ready: '.keys-table tbody tr',
    async prepare(page) {
      await page.click('.add-keys > summary');
      await page.fill('#add-keys-text', 'AIzaSyA00000000000000000000000000000001\nnot-a-key, another-odd-one');
      await page.waitForSelector('.add-keys .warn-text', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'keys-edit', dialog: true, path: '/admin/keys', ready: '.keys-table tbody tr',
    async prepare(page) {
      await page.click('.keys-table tbody tr:first-child .actions .btn:first-child');
      await page.waitForSelector('dialog[open] #edit-label', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'keys-projects', path: '/admin/keys', ready: '.keys-table tbody tr',
    async prepare(page) {
      await page.click('.page > .segmented button:nth-child(2)');
      await page.waitForSelector('.projects-table tbody tr', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'keys-set-project', dialog: true, path: '/admin/keys', ready: '.keys-table tbody tr',
    async prepare(page) {
      await page.check('#select-page');
      await page.click('#set-project');
      await page.waitForSelector('dialog[open] #bulk-project', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'keys-archive', path: '/admin/keys', ready: '.keys-table tbody tr', sizes: WITH_390, route: stubArchive,
    async prepare(page) {
      await openArchive(page);
      await page.check('.archive-table tbody tr:first-child .check input');
    },
  },
  {
    name: 'keys-archive-purge', dialog: true, path: '/admin/keys', ready: '.keys-table tbody tr', route: stubArchive,
    async prepare(page) {
      await openArchive(page);
      await page.check('#archive-select-all');
      await page.click('#archive-purge');
      await page.waitForSelector('dialog[open] .btn-danger', { timeout: UI_TIMEOUT });
    },
  },
  {
    // Empty (nothing archived yet), as the stack answers.
    name: 'keys-archive-empty', path: '/admin/keys', ready: '.keys-table tbody tr',
    async prepare(page) {
      await page.click('.page > .segmented button:nth-child(3)');
      await ready(page, '.archive-view .empty', 'the empty archive');
    },
  },
  { name: 'users', path: '/admin/users', ready: '.users-table tbody tr' },
  {
    name: 'users-new', dialog: true, path: '/admin/users', ready: '.users-table tbody tr',
    async prepare(page) {
      await page.click('#new-user');
      await page.waitForSelector('dialog[open] #user-name', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'users-usage', path: '/admin/users', ready: '.users-table tbody tr',
    async prepare(page) {
      await page.click('.users-table tbody tr:first-child .actions button:first-child');
      await ready(page, '.usage-detail .chart .u-wrap', 'a user\'s usage chart');
    },
  },
  {
    name: 'models', path: '/admin/models', ready: '.models-table tbody tr',
    async prepare(page) {
      await page.waitForSelector('.limits-table tbody tr', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'models-preset', dialog: true, path: '/admin/models', ready: '.limits-table tbody tr',
    async prepare(page) {
      await page.click('#apply-preset');
      await page.waitForSelector('dialog[open] .preset-table tbody tr', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'models-edit', dialog: true, path: '/admin/models', ready: '.models-table tbody tr',
    async prepare(page) {
      await page.click('.models-table tbody tr:first-child .actions .btn');
      await page.waitForSelector('dialog[open] #model-aliases', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'settings', path: '/admin/settings', ready: '.settings-group',
    async prepare(page) {
      const failed = await page.$('.settings-form > .notice-info');
      assert.equal(failed && await failed.innerText(), null, 'the settings page could not load the defaults');
      // The stack runs with ENCRYPTION_KEY: the secrets card shows the key, not the plaintext warning.
      await page.waitForSelector('#secrets-done', { timeout: UI_TIMEOUT });
      assert.equal(await page.$('#secrets-plaintext'), null);
    },
  },
  {
    // A key rotation half done, as GET /admin/api/secrets answers mid-way
    // (rotation.test.mjs drives a real one).
    name: 'settings-rotating', path: '/admin/settings', ready: '#secrets-progress',
    async route(page) {
      await page.route('**/admin/api/secrets', (r) => r.fulfill({ json: {
        encryption: 'on', current_fingerprint: '134b01671e9e', previous_set: true, previous_fingerprint: 'e69a593d54f3', batch_size: 50,
        remaining: { keys: 1210, accounts: 3, sign_ins: 0 }, plaintext: { keys: 4, accounts: 0, sign_ins: 0 }, unknown_key: { keys: 2, accounts: 0, sign_ins: 0 },
      } }));
    },
  },
  {
    // The plaintext fallback: no ENCRYPTION_KEY.
    name: 'settings-plaintext', path: '/admin/settings', ready: '#secrets-plaintext',
    async route(page) {
      await page.route('**/admin/api/secrets', (r) => r.fulfill({ json: {
        encryption: 'off', current_fingerprint: null, previous_set: false, previous_fingerprint: null, batch_size: 50,
        remaining: { keys: 0, accounts: 0, sign_ins: 0 }, plaintext: { keys: 115, accounts: 1, sign_ins: 0 }, unknown_key: { keys: 0, accounts: 0, sign_ins: 0 },
      } }));
    },
  },
  { name: 'logs', path: '/admin/logs', ready: '.logs-table tbody tr' },
  {
    name: 'ops', path: '/admin/ops', ready: '.errors-table tbody tr', sizes: WITH_390, route: stubOps,
    async prepare(page) {
      await page.waitForSelector('.job-card[data-job="retention"] .job-never', { timeout: UI_TIMEOUT });
      await page.waitForSelector('#health-status', { timeout: UI_TIMEOUT });
      await page.click('.job-card[data-job="probe"] .job-runs > summary');
    },
  },
  {
    // The stack's own answers: the seeded invalid and 503 keys' failures, no cron run yet.
    name: 'ops-live', path: '/admin/ops', ready: '.errors-table tbody tr',
    async prepare(page) {
      await page.waitForSelector('.jobs-grid .job-card', { timeout: UI_TIMEOUT });
      await page.waitForSelector('#health-status', { timeout: UI_TIMEOUT });
    },
  },
  {
    name: 'logs-detail', dialog: true, path: '/admin/logs', ready: '.logs-table tbody tr',
    async prepare(page) {
      await page.click('.logs-table tbody tr:first-child th button');
      await page.waitForSelector('dialog[open] .detail-list', { timeout: UI_TIMEOUT });
    },
  },
  { name: 'usage', path: '/usage', auth: false, ready: '#key' },
  {
    name: 'usage-result', path: '/usage', auth: false, ready: '#key',
    async prepare(page) {
      await page.fill('#key', userKey);
      await page.click('#check');
      await page.waitForSelector('#models tbody tr', { timeout: UI_TIMEOUT });
    },
  },
];

/** Opens `p` in a fresh page of the variant's context, ready and prepared. */
async function visit(p, variant) {
  const context = await contextFor({ ...variant, auth: p.auth !== false });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await p.route?.(page);
  const res = await openPage(page, `${stack.url}${p.path}`);
  assert.equal(res.status(), 200, `${p.path}: ${res.status()}`);
  await ready(page, p.ready, p.name);
  await p.prepare?.(page);
  // Fonts and charts settle before anything is measured.
  await page.evaluate(() => document.fonts.ready);
  return { page, errors };
}

test('both dictionaries have the same keys, placeholders and no empty text; every key the code uses exists', () => {
  const { en, zh } = dicts;
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort(), 'zh and en differ in keys');
  for (const key of Object.keys(en)) {
    assert.ok(en[key].trim() && zh[key].trim(), `${key} is empty`);
    assert.deepEqual(placeholders(zh[key]), placeholders(en[key]), `${key}: placeholders differ`);
  }
  // Keys written out in the sources (t('a.b')); built keys (t(`x.${y}`)) are
  // covered by the page visits.
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.js') && !path.includes('/i18n/')) files.push(path);
    }
  };
  walk(join(ROOT, 'admin-ui/src'));
  for (const file of files) {
    for (const [, key] of readFileSync(file, 'utf8').matchAll(/\bt\('([\w.]+)'/g)) {
      assert.ok(key in en, `${file} uses ${key}, which the dictionaries lack`);
    }
  }
});

for (const p of PAGES) {
  const sizes = p.sizes ?? SIZES;
  browserTest(`screenshots: ${p.name}, ${sizes.map((z) => z.join('×')).join(', ')}, zh and en, light and dark`, { timeout: 300_000 }, async () => {
    mkdirSync(SHOTS, { recursive: true });
    const name = (lang, theme, size) => `${p.name}-${lang}-${theme}-${size.join('x')}.png`;
    // No screenshot of an earlier run is left to pass for this one's.
    for (const lang of Object.keys(LANGS)) for (const theme of THEMES) for (const size of sizes) rmSync(join(SHOTS, name(lang, theme, size)), { force: true });
    for (const lang of Object.keys(LANGS)) {
      for (const theme of THEMES) {
        for (const size of sizes) {
          const { page, errors } = await visit(p, { lang, theme, size });
          try {
            const file = name(lang, theme, size);
            // A click may have scrolled; the sticky header would be drawn mid-page.
            await page.evaluate(() => window.scrollTo(0, 0));
            // A modal is fixed to the viewport: shoot what is on screen.
            await page.screenshot({ path: join(SHOTS, file), fullPage: !p.dialog });
            const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
            assert.ok(overflow <= 1, `${file}: the page scrolls sideways by ${overflow} px`);
            assert.deepEqual(errors, [], `${file}: errors in the page`);
          } finally {
            await page.close();
          }
        }
      }
    }
  });
}

for (const p of PAGES) {
  browserTest(`no untranslated string: ${p.name}, in zh and en`, { timeout: 120_000 }, async () => {
    for (const lang of Object.keys(LANGS)) {
      const { page } = await visit(p, { lang });
      try {
        assert.equal(await page.evaluate(() => document.documentElement.lang), LANGS[lang].split('-US')[0]);
        const bad = await untranslated(page, dicts, lang);
        assert.deepEqual(bad, [], `${p.name} in ${lang} shows text outside the ${lang} dictionary`);
      } finally {
        await page.close();
      }
    }
  });
}

for (const p of PAGES) {
  browserTest(`accessibility (axe-core): ${p.name}, light and dark, zh and en`, { timeout: 120_000 }, async () => {
    for (const lang of Object.keys(LANGS)) {
      for (const theme of THEMES) {
        const { page } = await visit(p, { lang, theme });
        try {
          const violations = await axeViolations(page);
          assert.deepEqual(violations, [], `${p.name} (${lang}, ${theme}): serious or critical axe violations`);
        } finally {
          await page.close();
        }
      }
    }
  });
}

browserTest('login: a wrong password says so, a throttled one shows the wait, the right one opens the console', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ locale: 'en-US', extraHTTPHeaders: { 'cf-connecting-ip': '198.51.100.77' } });
  const blocked = await keepLocal(context);
  try {
    const page = await context.newPage();
    await openPage(page, `${stack.url}/admin/keys`);
    for (let i = 1; i <= 5; i += 1) {
      await page.fill('#password', `wrong-${i}`);
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/admin/api/login'), { timeout: UI_TIMEOUT }),
        page.click('#login'),
      ]);
      assert.equal(res.status(), 401);
      await page.waitForFunction((text) => document.querySelector('#login-error')?.textContent.trim() === text, dicts.en['login.wrong'], { timeout: UI_TIMEOUT });
    }
    // The sixth guess from this address is refused with 429 and Retry-After.
    await page.fill('#password', ADMIN_PASSWORD);
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/login'), { timeout: UI_TIMEOUT }),
      page.click('#login'),
    ]);
    assert.equal(res.status(), 429);
    const wait = dicts.en['login.throttled'].split('{time}');
    await page.waitForFunction(([a, b]) => {
      const text = document.querySelector('#login-error')?.textContent.trim() ?? '';
      return text.startsWith(a) && text.endsWith(b) && /\d+:\d\d/.test(text);
    }, wait, { timeout: UI_TIMEOUT });
    assert.ok(await page.isDisabled('#login'), 'the login button waits too');

    // From another address the right password opens the page asked for.
    const fresh = await browser.newContext({ locale: 'zh-CN', extraHTTPHeaders: { 'cf-connecting-ip': '198.51.100.78' } });
    const freshBlocked = await keepLocal(fresh);
    const p2 = await fresh.newPage();
    await openPage(p2, `${stack.url}/admin/keys`);
    await p2.fill('#password', ADMIN_PASSWORD);
    await p2.click('#login');
    await p2.waitForSelector('nav.nav', { timeout: UI_TIMEOUT });
    assert.equal(await p2.textContent('h1#page-title'), dicts.zh['nav.keys']);
    assert.equal(await p2.getAttribute('nav.nav a[aria-current="page"]', 'href'), '/admin/keys');
    await fresh.close();
    external.push(...freshBlocked);
  } finally {
    await context.close();
    external.push(...blocked);
  }
});

browserTest('the language and theme switches apply at once and are remembered', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ locale: 'en-US', colorScheme: 'light' });
  const blocked = await keepLocal(context);
  try {
    await logIn(context, stack.url);
    const page = await context.newPage();
    await openPage(page, `${stack.url}/admin/users`);
    await page.waitForSelector('h1#page-title', { timeout: UI_TIMEOUT });
    assert.equal(await page.textContent('h1#page-title'), dicts.en['nav.users']);
    await page.click('#lang');
    await page.waitForFunction((t) => document.querySelector('h1#page-title')?.textContent === t, dicts.zh['nav.users'], { timeout: UI_TIMEOUT });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    // system → light → dark
    await page.click('#theme');
    await page.click('#theme');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const darkBg = await bg();
    await page.reload();
    await page.waitForSelector('h1#page-title', { timeout: UI_TIMEOUT });
    assert.equal(await page.textContent('h1#page-title'), dicts.zh['nav.users'], 'the language is remembered');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the theme is remembered');
    assert.equal(await bg(), darkBg);
    await page.click('#theme');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), undefined, 'back to the system theme');
  } finally {
    await context.close();
    external.push(...blocked);
  }
});

browserTest('keys: a bulk paste reports added, existing and invalid and warns about odd keys; a bulk delete asks first', { timeout: 120_000 }, async () => {
  const page = await (await contextFor()).newPage();
  try {
    await openPage(page, `${stack.url}/admin/keys`);
    await ready(page, '.keys-table tbody tr', 'keys');
    await page.click('.add-keys > summary');
    const fresh = Array.from({ length: 1500 }, (_, i) => `AIzaSyBulk${String(i).padStart(29, '0')}`);
    await page.fill('#add-keys-text', [...fresh, 'ok-console-a', 'odd-bulk-key', 'odd-bulk-key'].join('\n'));
    await page.fill('#add-label', 'bulk-import');
    await page.waitForFunction(() => /\b2\b/.test(document.querySelector('.add-keys .warn-text')?.textContent ?? ''), null, { timeout: UI_TIMEOUT });
    const before = (await stack.admin('GET', '/keys')).total;
    await page.click('#add-keys');
    await page.waitForSelector('#add-result', { timeout: 60_000 });
    const result = await page.textContent('#add-result');
    // 1,500 new and the odd one (the server takes any printable key); ok-console-a was there.
    const numbers = [...result.matchAll(/\d[\d,]*/g)].map((m) => Number(m[0].replace(/,/g, '')));
    assert.deepEqual(numbers, [1501, 1, 0, 1502], result);
    assert.equal((await stack.admin('GET', '/keys')).total, before + 1501);

    // One page of them (100) selected and deleted, after a confirmation.
    await page.fill('#key-search', 'bulk-import');
    await page.waitForFunction(() => [...document.querySelectorAll('.keys-table tbody th .sub')].every((s) => s.textContent === 'bulk-import')
      && document.querySelectorAll('.keys-table tbody tr').length === 100, null, { timeout: UI_TIMEOUT });
    await page.check('.keys-table thead input[type="checkbox"]');
    await page.click('#delete-keys');
    await page.waitForSelector('dialog[open]', { timeout: UI_TIMEOUT });
    assert.match(await page.textContent('dialog[open] .dialog-body p'), /100/);
    await page.click('dialog[open] .btn-danger');
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    assert.equal((await stack.admin('GET', '/keys')).total, before + 1401);
  } finally {
    await page.close();
  }
});

browserTest('keys: "test now" shows each selected key\'s outcome', { timeout: 120_000 }, async () => {
  const page = await (await contextFor()).newPage();
  try {
    await openPage(page, `${stack.url}/admin/keys`);
    await page.fill('#key-search', 'seeded');
    await page.waitForFunction((n) => document.querySelectorAll('.keys-table tbody tr:not(.detail-row)').length === n, SEEDED.length, { timeout: UI_TIMEOUT });
    await page.check('.keys-table thead input[type="checkbox"]');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/keys/test'), { timeout: 60_000 }),
      page.click('#test-keys'),
    ]);
    assert.equal(res.status(), 200, `POST /admin/api/keys/test answered ${res.status()}`);
    await page.waitForFunction(() => [...document.querySelectorAll('.keys-table tbody tr')].every((tr) => tr.querySelector('.pill-ok, .pill-danger')), null, { timeout: UI_TIMEOUT });
  } finally {
    await page.close();
  }
});

browserTest('users: create shows the key once and copies it; edit, disable, rotate and delete', { timeout: 120_000 }, async () => {
  const context = await contextFor();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
  const page = await context.newPage();
  const errors = watchErrors(page);
  try {
    await openPage(page, `${stack.url}/admin/users`);
    await ready(page, '.users-table tbody tr', 'users');
    await page.click('#new-user');
    await page.fill('#user-name', 'carol');
    await page.fill('#user-credit_quota', '250');
    // Above 2^53: the browser takes it, the server refuses it.
    await page.fill('#user-rpm', '10000000000000000');
    await page.click('#save-user');
    // The server's 400 names the field; its message stands beside it.
    await page.waitForSelector('#user-rpm-err', { timeout: UI_TIMEOUT });
    assert.match(await page.textContent('#user-rpm-err'), /rpm/);
    await page.fill('#user-rpm', '30');
    await page.click('#save-user');
    await page.waitForSelector('#new-key', { timeout: UI_TIMEOUT });
    const key = await page.inputValue('#new-key');
    assert.match(key, /^sk-[A-Za-z0-9_-]{43}$/);
    await page.screenshot({ path: join(SHOTS, 'users-key-once-en-light-1440x900.png') });
    await page.click('dialog[open] .dialog-actions .btn-primary');
    await page.waitForFunction((t) => document.querySelector('dialog[open] .dialog-actions .btn-primary')?.textContent === t, dicts.en['common.copied'], { timeout: UI_TIMEOUT });
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    await page.click('dialog[open] .dialog-actions .btn:not(.btn-primary)');
    const users = (await stack.admin('GET', '/users')).users;
    const carol = users.find((u) => u.name === 'carol');
    assert.equal(carol.credit_quota, 250);
    assert.equal(carol.rpm, 30);
    const row = page.locator('.users-table tbody tr', { hasText: 'carol' });
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/admin/api/users/'), { timeout: UI_TIMEOUT }),
      row.locator('[role="switch"]').click(),
    ]);
    // Rotate: the new key is shown once, and the old one stops working.
    await row.getByRole('button', { name: dicts.en['users.rotate'] }).click();
    await page.click('dialog[open] .btn-primary');
    await page.waitForSelector('#new-key', { timeout: UI_TIMEOUT });
    const rotated = await page.inputValue('#new-key');
    assert.notEqual(rotated, key);
    await page.click('dialog[open] .dialog-actions .btn:not(.btn-primary)');
    const after = (await stack.admin('GET', `/users/${carol.id}`)).user;
    assert.equal(after.enabled, false, 'the switch disabled carol');
    assert.equal((await stack.call('GET', '/v1/usage', { token: key })).status, 401);
    // Delete, after a confirmation.
    await row.getByRole('button', { name: dicts.en['common.delete'] }).click();
    await page.click('dialog[open] .btn-danger');
    await page.waitForFunction(() => ![...document.querySelectorAll('.users-table tbody th')].some((th) => th.textContent.includes('carol')), null, { timeout: UI_TIMEOUT });
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

browserTest('settings: a refused value shows the server\'s reason beside its field; a good one is saved', { timeout: 120_000 }, async () => {
  const page = await (await contextFor({ lang: 'zh' })).newPage();
  try {
    await openPage(page, `${stack.url}/admin/settings`);
    await ready(page, '#set-max_retries', 'settings');
    await page.fill('#set-max_retries', '99');
    await page.click('#save-settings');
    await page.waitForSelector('#set-max_retries-err', { timeout: UI_TIMEOUT });
    assert.match(await page.textContent('#set-max_retries-err'), /max_retries/);
    assert.equal(await page.getAttribute('#set-max_retries', 'aria-invalid'), 'true');
    await page.fill('#set-max_retries', '4');
    await page.click('#save-settings');
    await page.waitForSelector('.banner-ok', { timeout: UI_TIMEOUT });
    assert.equal((await stack.admin('GET', '/settings')).max_retries, 4);
    await stack.admin('PATCH', '/settings', { max_retries: null });
  } finally {
    await page.close();
  }
});

browserTest('logs: filters, "load more" and the CSV link of the filtered rows', { timeout: 120_000 }, async () => {
  const page = await (await contextFor()).newPage();
  try {
    await openPage(page, `${stack.url}/admin/logs`);
    await ready(page, '.logs-table tbody tr', 'logs');
    await page.selectOption('#log-status', '5xx');
    await page.click('#apply-filters');
    await page.waitForFunction(() => [...document.querySelectorAll('.logs-table tbody tr .pill')].every((p) => !/^2/.test(p.textContent)), null, { timeout: UI_TIMEOUT });
    const href = await page.getAttribute('#export-csv', 'href');
    assert.match(href, /^\/admin\/api\/logs\?.*status=5xx.*format=csv/);
    const csv = await page.context().request.get(`${stack.url}${href}`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()['content-type'], /text\/csv/);
  } finally {
    await page.close();
  }
});

browserTest('log out, and log out everywhere, end the session', { timeout: 120_000 }, async () => {
  const a = await browser.newContext({ locale: 'en-US' });
  const b = await browser.newContext({ locale: 'en-US' });
  external.push(...await keepLocal(a), ...await keepLocal(b));
  try {
    await logIn(a, stack.url);
    await logIn(b, stack.url);
    const pa = await a.newPage();
    await openPage(pa, `${stack.url}/admin/users`);
    await pa.click('.menu > summary');
    await pa.click('#logout');
    await pa.waitForSelector('#password', { timeout: UI_TIMEOUT });
    await pa.reload();
    await pa.waitForSelector('#password', { timeout: UI_TIMEOUT });

    const pb = await b.newPage();
    await openPage(pb, `${stack.url}/admin/users`);
    await pb.click('.menu > summary');
    await pb.click('#logout-all');
    await pb.click('dialog[open] .btn-danger');
    await pb.waitForSelector('#password', { timeout: UI_TIMEOUT });
    // Every other context's contexts were logged out too.
    const other = await (await contextFor({ lang: 'zh', theme: 'dark' })).request.get(`${stack.url}/admin/api/session`);
    assert.equal((await other.json()).authenticated, false);
  } finally {
    await a.close();
    await b.close();
    for (const c of contexts.values()) await c.close().catch(() => {});
    contexts.clear();
  }
});

browserTest('the pages requested nothing but the gateway', { timeout: 30_000 }, async () => {
  for (const c of contexts.values()) await c.close().catch(() => {});
  contexts.clear();
  assert.deepEqual(external, []);
});
