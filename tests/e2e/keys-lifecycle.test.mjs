// Upstream keys from the GEMINI_API_KEYS secret, per-day parking, health in
// the admin API, masking in logs, and the cron entry point.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { runCron } from '../lib/util.mjs';

const ENV_KEYS = ['ok-env-one', 'ok-env-two', 'rl-day-env-three'];
let stack;

before(async () => {
  // Duplicates and mixed separators, as people paste them.
  const raw = `${ENV_KEYS[0]}, ${ENV_KEYS[1]}\n${ENV_KEYS[2]} ${ENV_KEYS[0]}`;
  stack = await startStack({ secrets: { GEMINI_API_KEYS: raw } });
});
after(async () => stack?.stop());

async function chat(model) {
  const res = await stack.call('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

/** Next midnight in America/Los_Angeles after `ms`, computed with Intl. */
function nextLaMidnight(ms) {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: 'America/Los_Angeles', hourCycle: 'h23',
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const parts = Object.fromEntries(fmt.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const sinceMidnight = ((+parts.hour * 60 + +parts.minute) * 60 + +parts.second) * 1000 + (ms % 1000);
  // Walk to the next local midnight; a DST change shifts it by an hour at most.
  let guess = ms - sinceMidnight + 24 * 3600 * 1000;
  for (const delta of [0, -3600_000, 3600_000]) {
    const p = Object.fromEntries(fmt.formatToParts(new Date(guess + delta)).map((x) => [x.type, x.value]));
    if (p.hour === '00' && p.minute === '00' && p.second === '00') return guess + delta;
  }
  return guess;
}

test('GEMINI_API_KEYS is imported once, deduplicated, and listed masked', async () => {
  await chat('gemini-2.5-flash-env');
  const { keys, total } = await stack.admin('GET', '/keys');
  assert.equal(total, 3);
  assert.ok(keys.every((k) => k.source === 'env'));
  const body = JSON.stringify(keys);
  for (const k of ENV_KEYS) assert.ok(!body.includes(k), `${k} listed in full`);
});

test('D1 stores upstream keys encrypted, with only their masked form in clear', async () => {
  const rows = await stack.d1('SELECT secret, masked FROM upstream_keys');
  assert.equal(rows.length, 3);
  for (const row of rows) {
    assert.match(row.secret, /^enc:v2:[0-9a-f]{12}:[A-Za-z0-9+/=]+$/);
    assert.match(row.masked, /…/);
    for (const k of ENV_KEYS) {
      assert.ok(!row.secret.includes(k) && !row.masked.includes(k), `${k} stored in clear`);
    }
  }
});

test('a per-day 429 parks the key for that model until midnight in Los Angeles', async () => {
  const model = 'gemini-2.5-flash-perday';
  const before = Date.now();
  for (let i = 0; i < 4; i += 1) await chat(model);
  const calls = await stack.mockApi.calls({ model });
  assert.equal(calls.filter((c) => c.key === ENV_KEYS[2]).length, 1, 'the parked key was retried');
  const { keys } = await stack.admin('GET', '/keys');
  const parked = keys.find((k) => k.health.some((h) => h.model === model));
  assert.ok(parked, JSON.stringify(keys));
  const health = parked.health.find((h) => h.model === model);
  assert.equal(health.cooling, true);
  assert.equal(health.cooldown_until, nextLaMidnight(before));
  // Other models are unaffected by that park.
  const other = 'gemini-2.5-flash-perday-other';
  for (let i = 0; i < 3; i += 1) await chat(other);
  const otherCalls = await stack.mockApi.calls({ model: other });
  assert.equal(otherCalls.filter((c) => c.key === ENV_KEYS[2]).length, 1);
});

test('health reports counts and the cooling key is not healthy', async () => {
  const res = await fetch(`${stack.url}/health`);
  const body = await res.json();
  assert.deepEqual(body.keys, { total: 3, enabled: 3, healthy: 2 });
});

test('no upstream key appears in full in the worker log', async () => {
  const log = stack.log;
  assert.match(log, /rate_limited on key/, 'the failure was logged');
  for (const k of ENV_KEYS) assert.ok(!log.includes(k), `${k} appears in the log`);
});

test('the cron trigger runs and re-imports nothing new', async () => {
  await runCron(stack);
  const { total } = await stack.admin('GET', '/keys');
  assert.equal(total, 3);
});

test('the admin page is served by the worker with security headers', async () => {
  const res = await fetch(`${stack.url}/admin/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(res.headers.get('content-security-policy'), /default-src 'self'/);
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.match(await res.text(), /gemgate/);
});

test('the OpenAI model list is cached: a second listing makes no upstream call', async () => {
  const list = async () => {
    const res = await stack.call('GET', '/v1/models');
    assert.equal(res.status, 200);
    return (await res.json()).data.map((m) => m.id);
  };
  const first = await list();
  const listed = (await stack.mockApi.calls({ action: 'models.list' })).length;
  assert.ok(listed >= 1);
  const second = await list();
  assert.deepEqual(second, first);
  assert.equal((await stack.mockApi.calls({ action: 'models.list' })).length, listed);
  // A single model is answered from the cached list too.
  const one = await stack.call('GET', `/v1/models/${first[0]}`);
  assert.equal((await one.json()).id, first[0]);
  assert.equal((await stack.mockApi.calls({ action: 'models.get' })).length, 0);
});

test('a restarted worker does not import an unchanged GEMINI_API_KEYS again', async () => {
  assert.match(stack.log, /GEMINI_API_KEYS: 3 key\(s\) added/);
  const [meta] = await stack.d1("SELECT value FROM meta WHERE name = 'env_keys_digest'");
  assert.match(meta.value, /^[0-9a-f]{64}$/);
  await stack.restart();
  await chat('gemini-2.5-flash-after-restart');
  assert.doesNotMatch(stack.log, /GEMINI_API_KEYS:/, 'the keys were imported again');
  const { total } = await stack.admin('GET', '/keys');
  assert.equal(total, 3);
});

// Last in this file: it disables every key.
test('a suspended-key message that quotes the key is masked for the client and the log', async () => {
  const model = 'gemini-2.5-flash-suspended';
  await stack.mockApi.script({ model, fault: 'permission_denied' });
  const res = await stack.call('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.ok(res.status >= 400, `status ${res.status}`);
  const text = await res.text();
  const calls = await stack.mockApi.calls({ model });
  assert.ok(calls.length >= 2, 'several keys were tried');
  await stack.waitForLog(/Consumer 'api_key:/);
  for (const k of ENV_KEYS) {
    assert.ok(!text.includes(k), `${k} in the response: ${text}`);
    assert.ok(!stack.log.includes(k), `${k} in the worker log`);
  }
});
