// What the admin console reads: dashboard stats from the rollups (series,
// totals, splits by model/key/user, success rate and latency percentiles),
// the request log (filters, search in errors, cursor paging, CSV export),
// the key list's filters and paging, and "test now" on chosen keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, ADMIN_PASSWORD } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { pollD1, sqlStr } from '../lib/util.mjs';

const OK_KEYS = ['ok-stats-1', 'ok-stats-2'];
const BAD_KEY = 'invalid-stats-3';
const MODEL = 'gemini-2.5-flash-stats';
const FAILING = 'gemini-2.5-flash-stats-fail';

let stack;
let user;

before(async () => {
  stack = await startStack({ keys: [...OK_KEYS, BAD_KEY] });
  const created = await stack.admin('POST', '/users', { name: 'stats-alice' });
  user = { id: created.user.id, key: created.key };
  const client = openaiClient(stack, { apiKey: user.key });
  for (let i = 0; i < 3; i += 1) {
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: `hi ${i}` }] });
  }
  const stream = await client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'streamed' }] });
  for await (const _ of stream) { /* read to the end */ }
  await stack.mockApi.script({ model: FAILING, fault: 'server_500' });
  await assert.rejects(
    client.chat.completions.create({ model: FAILING, messages: [{ role: 'user', content: 'doomed' }] }),
    (e) => e.status >= 500,
  );
  // The log and rollups are written in a batch off the hot path: wait (bounded) for all five.
  await pollD1(stack, `SELECT COUNT(*) AS n FROM request_log WHERE user_id = ${sqlStr(user.id)}`, (rows) => rows[0].n >= 5);
});
after(async () => stack?.stop());

const admin = (path) => stack.admin('GET', path);

async function raw(path) {
  return fetch(`${stack.url}/admin/api${path}`, { headers: { authorization: `Bearer ${ADMIN_PASSWORD}` } });
}

test('stats: series, totals and splits come from the rollups, in every range', async () => {
  for (const [range, points, bucket] of [['1h', 60, 60], ['24h', 24, 3600], ['7d', 28, 21600], ['30d', 30, 86400]]) {
    const s = await admin(`/stats?range=${range}`);
    assert.equal(s.range, range);
    assert.equal(s.series.length, points, range);
    assert.equal(s.bucket_seconds, bucket);
    assert.match(s.from, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(s.totals.requests, 5, `${range}: ${JSON.stringify(s.totals)}`);
    assert.equal(s.totals.errors, 1);
    assert.ok(Math.abs(s.totals.success_rate - 0.8) < 1e-9);
    assert.equal(s.series.reduce((n, p) => n + p.requests, 0), 5);
    assert.ok(s.totals.p50_ms !== null && s.totals.p95_ms >= s.totals.p50_ms);
    assert.ok(s.totals.prompt_tokens > 0);
    const byModel = Object.fromEntries(s.by_model.map((m) => [m.model, m]));
    assert.equal(byModel[MODEL].requests, 4);
    assert.equal(byModel[FAILING].errors, 1);
    assert.deepEqual(s.by_user.map((u) => [u.name, u.requests]), [['stats-alice', 5]]);
    assert.ok(s.by_key.every((k) => typeof k.masked === 'string' && !OK_KEYS.includes(k.masked)));
    assert.equal(s.by_key.reduce((n, k) => n + k.requests, 0), 4, 'the failed request served from no key');
  }
  // Filters narrow everything; an unknown one is a 400 naming it.
  const onlyFailing = await admin(`/stats?range=1h&model=${FAILING}`);
  assert.equal(onlyFailing.totals.requests, 1);
  const nobody = await admin('/stats?range=24h&user=u_nobody');
  assert.equal(nobody.totals.requests, 0);
  assert.equal(nobody.totals.success_rate, 1);
  for (const bad of ['range=2h', 'colour=red']) {
    const res = await raw(`/stats?${bad}`);
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.param, bad.split('=')[0]);
  }
  // The pool's state per model.
  const s = await admin('/stats?range=1h');
  const pool = s.capacity.find((c) => c.model === FAILING);
  assert.ok(pool, JSON.stringify(s.capacity));
  assert.ok(s.top_failing_keys.length >= 1);
  assert.ok(s.top_failing_keys.every((k) => !JSON.stringify(k).includes('ok-stats')), 'keys are masked');
});

test('logs: newest first, with user and key names, the error, and every filter', async () => {
  const { logs, next_cursor: next } = await admin('/logs');
  assert.equal(logs.length, 5);
  assert.equal(next, null);
  assert.ok(logs.every((l, i) => i === 0 || l.ts <= logs[i - 1].ts), 'newest first');
  const failed = logs.find((l) => l.status >= 500);
  assert.equal(failed.model, FAILING);
  assert.equal(failed.user_name, 'stats-alice');
  assert.match(failed.error, /internal error/i);
  const served = logs.find((l) => l.status === 200);
  assert.ok(served.key_masked && !OK_KEYS.includes(served.key_masked));
  assert.equal(served.error, null);

  const only = async (query) => (await admin(`/logs?${query}`)).logs;
  assert.equal((await only('status=5xx')).length, 1);
  assert.equal((await only('status=error')).length, 1);
  assert.equal((await only('status=2xx')).length, 4);
  assert.equal((await only(`model=${MODEL}`)).length, 4);
  assert.equal((await only(`user=${user.id}`)).length, 5);
  assert.equal((await only('stream=true')).length, 1);
  assert.equal((await only(`key=${served.key_id}`)).every((l) => l.key_id === served.key_id), true);
  assert.equal((await only(`q=${encodeURIComponent('internal ERROR')}`)).length, 1, 'search ignores case');
  assert.equal((await only('q=100%25')).length, 0, 'wildcards in the search are literal');
  const future = new Date(Date.now() + 3_600_000).toISOString();
  assert.equal((await only(`from=${future}&to=${new Date(Date.now() + 7_200_000).toISOString()}`)).length, 0);

  // Cursor paging walks every row once.
  const seen = [];
  let cursor = '';
  for (let page = 0; page < 10; page += 1) {
    const r = await admin(`/logs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...r.logs.map((l) => l.id));
    if (!r.next_cursor) break;
    cursor = r.next_cursor;
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), logs.map((l) => l.id).sort((a, b) => a - b));

  for (const bad of ['status=3xx', 'limit=0', 'cursor=zzz', 'from=yesterday', 'sort=ts']) {
    const res = await raw(`/logs?${bad}`);
    assert.equal(res.status, 400, bad);
    assert.equal((await res.json()).error.param, bad.split('=')[0]);
  }
});

test('logs: the CSV export holds every filtered row', async () => {
  const res = await raw('/logs?format=csv&status=2xx');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/csv/);
  assert.match(res.headers.get('content-disposition'), /attachment/);
  const lines = (await res.text()).trim().split('\r\n');
  assert.equal(lines[0], 'id,ts,user_id,user_name,model,key_id,key_masked,status,prompt_tokens,completion_tokens,reasoning_tokens,credits,latency_ms,stream,error,request_id,surface');
  assert.equal(lines.length, 1 + 4);
  assert.ok(lines.slice(1).every((l) => l.includes(',200,') && l.includes('stats-alice')));
});

test('keys: filters, search and paging; "test now" records what it found', async () => {
  const all = await admin('/keys');
  assert.equal(all.keys.length, 3, 'without limit every key, as before');
  const page = await admin('/keys?limit=1&offset=1');
  assert.equal(page.keys.length, 1);
  assert.equal(page.keys[0].id, all.keys[1].id);
  assert.equal(page.matched, 3);
  assert.equal(page.total, 3);

  const invalid = all.keys.find((k) => k.masked.startsWith('inva'));
  const tested = await stack.admin('POST', '/keys/test', { ids: [all.keys[0].id, invalid.id] });
  const byId = Object.fromEntries(tested.results.map((r) => [r.id, r]));
  assert.equal(byId[all.keys[0].id].ok, true);
  assert.equal(byId[all.keys[0].id].outcome, 'ok');
  assert.equal(byId[invalid.id].ok, false);
  assert.equal(byId[invalid.id].outcome, 'key_invalid');
  assert.ok(!JSON.stringify(tested).includes(BAD_KEY), 'the secret never comes back');
  const probes = await stack.mockApi.calls({ action: 'countTokens' });
  assert.ok(probes.some((c) => c.key === BAD_KEY), 'a real upstream call');

  // The invalid key is now disabled, like after any other request.
  let disabled;
  for (let i = 0; i < 20 && !disabled?.keys.length; i += 1) disabled = await admin('/keys?status=disabled');
  assert.deepEqual(disabled.keys.map((k) => k.id), [invalid.id]);
  assert.equal(disabled.counts.disabled, 1);
  assert.equal((await admin('/keys?status=healthy')).keys.length, 2);
  assert.equal((await admin(`/keys?q=${encodeURIComponent(invalid.masked.slice(0, 4).toUpperCase())}`)).matched, 1);

  for (const bad of ['status=sad', 'limit=5000']) {
    const res = await raw(`/keys?${bad}`);
    assert.equal(res.status, 400, bad);
  }
  const none = await fetch(`${stack.url}/admin/api/keys/test`, {
    method: 'POST', body: JSON.stringify({ ids: [] }),
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
  });
  assert.equal(none.status, 400);
});

test('settings defaults are published for the console', async () => {
  const defaults = await admin('/settings/defaults');
  assert.equal(defaults.max_retries, 3);
  assert.equal(defaults.admin_session_hours, 12);
  assert.deepEqual(defaults.model_aliases, {});
  assert.equal(defaults.default_model, null);
});
