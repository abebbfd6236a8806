// The gate every page test goes through (tests/lib/browser.mjs): a browser
// test that cannot run is skipped, with its reason, only outside CI; in CI it
// fails. Pure checks of the decision, one run of a gated test in a child
// process each way, and a scan that every page test uses the gate. No stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EventEmitter } from 'node:events';
import {
  CHROMIUM, CHROMIUM_ARGS, browserGate, browserStatus, isCI, launchOptions, openPage,
} from '../lib/browser.mjs';

const execFileP = promisify(execFile);
const MISSING = join(tmpdir(), `gemgate-no-such-chromium-${process.pid}`);
const PRESENT = process.execPath; // a file that certainly exists

test('a missing browser fails under CI=true and is a skip reason without CI', () => {
  assert.throws(() => browserGate(MISSING, { CI: 'true' }), (e) => {
    assert.ok(e.message.includes(MISSING), e.message);
    assert.match(e.message, /is absent/);
    assert.match(e.message, /CI=true/);
    return true;
  });
  for (const env of [{}, { CI: '' }, { CI: 'false' }, { CI: '0' }]) {
    const reason = browserGate(MISSING, env);
    assert.equal(typeof reason, 'string', `env ${JSON.stringify(env)}`);
    assert.ok(reason.includes(MISSING) && /is absent/.test(reason), reason);
  }
  // Whatever value a CI service sets, it counts as CI.
  for (const value of ['1', 'TRUE', 'yes', 'woodpecker']) {
    assert.ok(isCI({ CI: value }), value);
    assert.throws(() => browserGate(MISSING, { CI: value }), /is absent/, `CI=${value}`);
  }
});

test('a present browser runs, in CI or not', () => {
  for (const env of [{}, { CI: 'true' }]) assert.equal(browserGate(PRESENT, env), false);
  assert.equal(browserGate('/any/path', { CI: 'true' }, () => true), false, 'the existence check is the one passed in');
  assert.deepEqual(browserStatus({ executablePath: PRESENT, env: { CI: 'true' } }), { ready: true, skip: false, failure: null });
});

test('browserStatus turns the decision into skip (local) or failure (CI), never both', () => {
  const local = browserStatus({ executablePath: MISSING, env: {} });
  assert.equal(local.ready, false);
  assert.match(local.skip, /is absent/);
  assert.equal(local.failure, null);

  const ci = browserStatus({ executablePath: MISSING, env: { CI: 'true' } });
  assert.equal(ci.ready, false);
  assert.equal(ci.skip, false, 'in CI the test must not be skipped');
  assert.ok(ci.failure instanceof Error);
  assert.match(ci.failure.message, /is absent/);
});

test('the launch options are the shared Chromium flags', () => {
  assert.equal(CHROMIUM, '/usr/bin/chromium');
  assert.deepEqual(launchOptions(), {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  assert.ok(Object.isFrozen(CHROMIUM_ARGS));
});

/** Runs a one-test file that uses browserTest with a missing browser, under `env`. */
async function runGatedTest(env) {
  const dir = mkdtempSync(join(tmpdir(), 'gemgate-gate-'));
  try {
    const file = join(dir, 'page.test.mjs');
    const lib = new URL('../lib/browser.mjs', import.meta.url).href;
    writeFileSync(file, [
      `import { browserStatus, browserTest } from ${JSON.stringify(lib)};`,
      `const status = browserStatus({ executablePath: ${JSON.stringify(MISSING)}, env: process.env });`,
      "browserTest('needs a browser', {}, () => { throw new Error('the body ran without a browser'); }, status);",
      '',
    ].join('\n'));
    // Without NODE_TEST_CONTEXT the child reports on its own, not to this runner.
    const { NODE_TEST_CONTEXT: _ignored, CI: _ci, ...base } = process.env;
    try {
      const { stdout } = await execFileP(process.execPath, ['--test-reporter=tap', file], {
        env: { ...base, ...env }, timeout: 60_000,
      });
      return { code: 0, stdout };
    } catch (e) {
      if (typeof e.code !== 'number') throw e;
      return { code: e.code, stdout: e.stdout };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a gated test with no browser fails in CI and is skipped, with its reason, outside CI', async () => {
  const ci = await runGatedTest({ CI: 'true' });
  assert.notEqual(ci.code, 0, `CI run passed:\n${ci.stdout}`);
  assert.match(ci.stdout, /^not ok 1 - needs a browser/m, ci.stdout);
  assert.match(ci.stdout, /is absent/, ci.stdout);
  assert.doesNotMatch(ci.stdout, /the body ran/, ci.stdout);
  assert.match(ci.stdout, /^# skipped 0$/m, ci.stdout);

  const local = await runGatedTest({});
  assert.equal(local.code, 0, local.stdout);
  assert.match(local.stdout, /^ok 1 - needs a browser # SKIP .*is absent/m, local.stdout);
  assert.match(local.stdout, /^# skipped 1$/m, local.stdout);
});

test('every page test goes through the gate', () => {
  const dir = new URL('.', import.meta.url);
  const pages = readdirSync(dir)
    .filter((f) => f.endsWith('.test.mjs'))
    .map((f) => ({ f, text: readFileSync(new URL(f, dir), 'utf8') }))
    .filter(({ text }) => /playwright|chromium/i.test(text) && !/^\/\/ The gate every page test/.test(text));
  assert.ok(pages.some(({ f }) => f === 'usage-page.test.mjs'), 'usage-page.test.mjs is not recognised as a page test');
  for (const { f, text } of pages) {
    assert.match(text, /from '\.\.\/lib\/browser\.mjs'/, `${f} drives a browser but does not import tests/lib/browser.mjs`);
    assert.match(text, /\bbrowserTest\(/, `${f}: page tests are declared with browserTest, so CI cannot skip them`);
    assert.doesNotMatch(text, /from 'playwright-core'|import\('playwright-core'\)|\/usr\/bin\/chromium/,
      `${f}: launch the browser with launchBrowser() from tests/lib/browser.mjs`);
  }
});

/**
 * A stand-in for a playwright page whose `goto` answers from `script`, one
 * entry per call: a response, or an error to throw. A call starts a request
 * for its URL that stays open when the entry is an error.
 */
function scriptedPage(script) {
  const page = new EventEmitter();
  page.calls = [];
  page.goto = async (url, options) => {
    page.calls.push({ url, options });
    const request = { url: () => url };
    page.emit('request', request);
    const next = script.shift();
    if (next instanceof Error) throw next;
    page.emit('requestfinished', request);
    return next;
  };
  return page;
}

const timeout = () => Object.assign(new Error('page.goto: Timeout 15000ms exceeded.'), { name: 'TimeoutError' });

test('openPage tries a navigation that times out once more, and no more', async (t) => {
  const stderr = t.mock.method(process.stderr, 'write', () => true);
  const answered = { status: () => 200 };
  const once = scriptedPage([timeout(), answered]);
  assert.equal(await openPage(once, 'http://127.0.0.1:1/admin/', { timeout: 50 }), answered);
  assert.deepEqual(once.calls.map((c) => c.options.timeout), [50, 50]);
  assert.match(stderr.mock.calls.map((c) => String(c.arguments[0])).join(''), /did not load within 50 ms \(requests still open: http:\/\/127\.0\.0\.1:1\/admin\/\); trying once more/);
  assert.equal(once.listenerCount('request'), 0, 'the listeners are removed');

  // Twice is a failure, which names what was still open.
  const twice = scriptedPage([timeout(), timeout(), answered]);
  await assert.rejects(openPage(twice, 'http://127.0.0.1:1/admin/keys'), (e) => {
    assert.equal(e.name, 'TimeoutError');
    assert.match(e.message, /did not load in 2 tries of 15000 ms; requests still open on the last: http:\/\/127\.0\.0\.1:1\/admin\/keys/);
    return true;
  });
  assert.equal(twice.calls.length, 2);

  // Anything but a timeout is not retried.
  const refused = scriptedPage([new Error('net::ERR_CONNECTION_REFUSED'), answered]);
  await assert.rejects(openPage(refused, 'http://127.0.0.1:1/'), /ERR_CONNECTION_REFUSED/);
  assert.equal(refused.calls.length, 1);
});

test('every page test navigates through openPage', () => {
  const dir = new URL('.', import.meta.url).pathname;
  const direct = readdirSync(dir)
    .filter((f) => f.endsWith('.test.mjs'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').map((line, i) => ({ f, i, line })))
    .filter(({ line }) => /\.goto\(/.test(line) && !/^\s*(\/\/|\*)/.test(line) && !/page\.goto = /.test(line));
  assert.deepEqual(direct.map(({ f, i, line }) => `${f}:${i + 1}: ${line.trim()}`), []);
});
