// Cache busting and the pages' headers. The console is built into a folder
// of this test's own with a marker in its bundle; a browser loads it, a
// second build with another marker replaces it, and a reload in the same
// browser profile must request the new content-hashed script and run it,
// although the old one is cached as immutable. Also: index.html and /usage
// go out with no-cache, hashed assets with a year's immutable caching, and
// every page with the security headers (a CSP without inline script or
// eval).
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { UI_TIMEOUT, watchErrors } from '../lib/console.mjs';

const execFileP = promisify(execFile);
const STATE = join(ROOT, 'tests/.state');
let out;
let stack;

/** Builds the console into `out` with `marker` in its bundle. */
async function build(marker) {
  const { stdout } = await execFileP(process.execPath, [join(ROOT, 'admin-ui/build.mjs')], {
    cwd: ROOT,
    env: { ...process.env, GEMGATE_UI_OUT: out, GEMGATE_UI_MARKER: marker },
    timeout: 180_000,
  });
  assert.match(stdout, /console JS \+ CSS: [\d.]+ KB gzipped/);
}

before(async () => {
  mkdirSync(STATE, { recursive: true });
  out = mkdtempSync(join(STATE, 'ui-build-'));
  await build('first-build');
  stack = await startStack({ assetsDir: out });
});
after(async () => {
  await stack?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

/** The hashed files an HTML page loads. */
const assetsOf = (html) => [...html.matchAll(/(?:src|href)="(\/admin\/assets\/[^"]+)"/g)].map((m) => m[1]);

test('index.html and /usage are no-cache, hashed assets immutable; every page has the security headers', async () => {
  for (const path of ['/admin/', '/admin/keys', '/usage']) {
    const res = await fetch(`${stack.url}${path}`);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type'), /text\/html/, path);
    assert.equal(res.headers.get('cache-control'), 'no-cache', `${path}: cache-control`);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/, `${path}: CSP ${csp}`);
    assert.match(csp, /style-src 'self'(;|$)/, `${path}: CSP ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${path}: CSP ${csp}`);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${path}: an inline script`);
    assert.doesNotMatch(html, /\sstyle=/, `${path}: an inline style`);
    const assets = assetsOf(html);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `${path}: ${assets}`);
    for (const asset of assets) {
      assert.match(asset, /-[\w-]{8}\.(js|css|svg)$/, `${asset} has no content hash`);
      const a = await fetch(`${stack.url}${asset}`);
      assert.equal(a.status, 200, asset);
      assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable', asset);
      assert.equal(a.headers.get('x-content-type-options'), 'nosniff', asset);
      await a.arrayBuffer();
    }
  }
  // An unchanged page revalidates to 304; a missing asset is never cached.
  const first = await fetch(`${stack.url}/admin/`);
  await first.text();
  const again = await fetch(`${stack.url}/admin/`, { headers: { 'if-none-match': first.headers.get('etag') } });
  assert.equal(again.status, 304);
  const missing = await fetch(`${stack.url}/admin/assets/console-00000000.js`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('cache-control'), 'no-cache');
  await missing.text();
});

browserTest('after a rebuild with changed JS, a reload in the same browser profile loads the new hashed asset', { timeout: 300_000 }, async () => {
  const browser = await launchBrowser();
  try {
    // No request interception here: it would turn the HTTP cache off.
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const errors = watchErrors(page);
    const fetched = [];
    page.on('response', (r) => {
      const path = new URL(r.url()).pathname;
      if (path.startsWith('/admin/assets/')) fetched.push({ path, status: r.status() });
    });
    const marker = () => page.evaluate(() => document.documentElement.dataset.build ?? null);
    const script = () => page.evaluate(() => document.querySelector('script[type="module"]')?.getAttribute('src'));

    await openPage(page, `${stack.url}/admin/`);
    await page.waitForSelector('#password', { timeout: UI_TIMEOUT });
    assert.equal(await marker(), 'first-build');
    const oldScript = await script();
    assert.ok(fetched.some((f) => f.path === oldScript && f.status === 200), `${oldScript} was not fetched`);

    // A second visit takes the immutable script from the cache.
    await openPage(page, `${stack.url}/admin/`);
    await page.waitForSelector('#password', { timeout: UI_TIMEOUT });
    const cached = await page.evaluate((src) => performance.getEntriesByType('resource')
      .find((e) => new URL(e.name).pathname === src)?.transferSize ?? null, oldScript);
    assert.equal(cached, 0, `${oldScript} was fetched again instead of coming from the cache`);

    await build('second-build');
    // The stack serves the folder it started with; a restart picks up the new files.
    await stack.restart();
    fetched.length = 0;
    await page.reload({ timeout: UI_TIMEOUT });
    await page.waitForSelector('#password', { timeout: UI_TIMEOUT });
    assert.equal(await marker(), 'second-build', 'the reload still runs the old bundle');
    const newScript = await script();
    assert.notEqual(newScript, oldScript, 'a changed bundle must get a new name');
    assert.ok(fetched.some((f) => f.path === newScript && f.status === 200), `${newScript} was not requested: ${JSON.stringify(fetched)}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
