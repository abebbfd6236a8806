// What every page test (a test that drives a real browser through
// playwright-core) shares: the Chromium it launches, the flags it launches
// it with, and the gate that decides whether the test may run here.
//
//   import { BROWSER, browserTest, launchBrowser } from '../lib/browser.mjs';
//   before(async () => { if (BROWSER.ready) stack = await startStack(); });
//   browserTest('the page works', { timeout: 180_000 }, async () => {
//     const browser = await launchBrowser();
//     ...
//   });
//
// The gate: with the browser present the test runs. Without it, a local run
// skips the test and says why, but a CI run (CI set, as CI services do) fails
// it: a CI run must never report as passed a test that did not run.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

/** Debian's Chromium; the Makefile installs it (apt-get install -y chromium). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, sandbox-free (containers), and nothing that phones home. */
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** playwright-core's `chromium.launch` options for CHROMIUM. */
export function launchOptions({ executablePath = CHROMIUM, timeout = 60_000 } = {}) {
  return { executablePath, args: [...CHROMIUM_ARGS], timeout };
}

/** Whether `env` says this is a CI run: CI set to anything but '', '0' or 'false'. */
export function isCI(env) {
  const value = String(env?.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== '0' && value !== 'false';
}

/**
 * The gate's decision, from its inputs alone (`exists` is only there so a
 * caller can stand in for the file system): `false` when `executablePath`
 * exists, so the test runs; otherwise the reason to skip it, or, under CI,
 * an Error thrown with that reason, since CI must not skip it.
 */
export function browserGate(executablePath, env, exists = existsSync) {
  if (exists(executablePath)) return false;
  const reason = `${executablePath} is absent: this test needs a browser (apt-get install -y chromium; the Makefile installs it)`;
  if (isCI(env)) {
    throw new Error(`${reason}. CI=${env.CI}: in CI a browser test that cannot run fails instead of being skipped`);
  }
  return reason;
}

/**
 * The gate applied: `{ ready, skip, failure }`. `ready`: the browser is
 * there (set up the test's stack only then); `skip`: false or the reason to
 * skip; `failure`: the Error a CI run fails the test with, or null.
 */
export function browserStatus({ executablePath = CHROMIUM, env = process.env, exists = existsSync } = {}) {
  try {
    const skip = browserGate(executablePath, env, exists);
    return { ready: skip === false, skip, failure: null };
  } catch (failure) {
    return { ready: false, skip: false, failure };
  }
}

/** This machine's gate, decided once per test file. */
export const BROWSER = browserStatus();

/**
 * node:test's `test` behind the gate: run when the browser is there, skipped
 * with the reason where a skip is allowed, failed with the gate's message in
 * CI. `status` defaults to this machine's.
 */
export function browserTest(name, options, fn, status = BROWSER) {
  return test(name, { ...options, skip: status.skip }, async (t) => {
    if (status.failure) throw status.failure;
    assert.ok(status.ready, 'browserTest ran without a browser');
    return fn(t);
  });
}

/** Launches CHROMIUM through playwright-core with the shared options (and any `overrides`). */
export async function launchBrowser(overrides = {}) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    assert.fail(`playwright-core is not installed (add it to devDependencies): ${e.message}`);
  }
  return chromium.launch({ ...launchOptions(), ...overrides });
}

/** Bound for one try of a page's navigation. */
export const NAVIGATION_TIMEOUT = 15_000;

/**
 * `page.goto(url)`, each try bounded at `timeout`, tried at most twice;
 * resolves with the document's response. Every page test navigates through
 * it.
 *
 * Why twice: once in some thousands of navigations over a whole suite, the
 * local runtime has left a document unanswered (CI's log: "navigating to
 * …/admin/accounts, waiting until load" and nothing after it for 15 s),
 * where 300 fresh contexts loading that same page in a row, and 2,400
 * direct requests for it and its assets, were each answered at once. A
 * second try tells such a lost request from a page that does not load: a
 * page that times out twice fails the test, and the error names the
 * requests that were still open. A retry is printed, so a rise in them
 * shows in the log. Any other failure (a refused connection, a bad URL) is
 * thrown at once.
 */
export async function openPage(page, url, { timeout = NAVIGATION_TIMEOUT, tries = 2 } = {}) {
  const open = new Set();
  const opened = (request) => open.add(request);
  const closed = (request) => open.delete(request);
  page.on('request', opened);
  page.on('requestfinished', closed);
  page.on('requestfailed', closed);
  try {
    for (let attempt = 1; attempt <= tries; attempt += 1) {
      open.clear();
      try {
        return await page.goto(url, { timeout });
      } catch (e) {
        if (e?.name !== 'TimeoutError') throw e;
        const pending = [...open].map((request) => request.url()).join(', ') || 'none';
        if (attempt >= tries) {
          e.message = `${e.message}\n${url} did not load in ${tries} tries of ${timeout} ms; requests still open on the last: ${pending}`;
          throw e;
        }
        process.stderr.write(`openPage: ${url} did not load within ${timeout} ms (requests still open: ${pending}); trying once more\n`);
      }
    }
    throw new Error(`openPage: tries must be at least 1, not ${tries}`);
  } finally {
    page.off('request', opened);
    page.off('requestfinished', closed);
    page.off('requestfailed', closed);
  }
}
