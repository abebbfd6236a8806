// Operations (issue 13): every response names its request (x-request-id),
// upstream failures reach the error view, /health judges per model, /metrics
// speaks Prometheus, and the maintenance jobs (probe and recover, the
// archive, the history) do what they say, fired through /__scheduled. Time
// passes by moving the stored timestamps back (`ago`): the jobs read the
// clock, so a key disabled "four days ago" is one whose disabled_at says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ADMIN_PASSWORD, CLIENT_TOKEN, startStack } from '../lib/harness.mjs';
import { pollD1, runCron } from '../lib/util.mjs';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const KEYS = ['ok-ops-a', 'ok-ops-b', 'ok-ops-c'];
const REQ_ID = /^req_[0-9a-f]{24}$/;

let stack;

before(async () => {
  stack = await startStack({ keys: KEYS });
});
after(async () => stack?.stop());

const chat = (model, text, headers = {}) =>
  stack.call('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: text }] },
    headers,
  });

/** Polls an admin GET (bounded) until `ready(body)` holds. */
async function pollAdmin(path, ready, attempts = 40) {
  let body;
  for (let i = 0; i < attempts; i += 1) {
    body = await stack.admin('GET', path);
    if (ready(body)) return body;
    await stack.admin('GET', '/session').catch(() => {}); // paces the loop with one round trip
  }
  return assert.fail(`${path} never became ready: ${JSON.stringify(body).slice(0, 800)}`);
}

/** A key's id: the first 16 hex digits of its secret's SHA-256. */
const idOf = (secret) => createHash('sha256').update(secret).digest('hex').slice(0, 16);

/** Moves `column` of the rows `where` selects `ms` into the past. */
const ago = (table, column, ms, where) =>
  stack.d1(`UPDATE ${table} SET ${column} = ${column} - ${ms} WHERE ${where}`);

const keyByName = async (secret) => {
  const { keys } = await stack.admin('GET', '/keys');
  return keys.find((k) => k.id === idOf(secret));
};

// ---------------------------------------------------------------- request ids

test('every response carries an x-request-id: the client\'s own when sane, one of ours otherwise', async () => {
  const own = await chat('gemini-2.5-flash-ops-id', 'hello', { 'x-request-id': 'client-id-123' });
  assert.equal(own.status, 200);
  assert.equal(own.headers.get('x-request-id'), 'client-id-123');
  assert.match(own.headers.get('access-control-expose-headers') ?? '', /x-request-id/);

  const made = await chat('gemini-2.5-flash-ops-id', 'hello');
  assert.match(made.headers.get('x-request-id') ?? '', REQ_ID);
  const other = await chat('gemini-2.5-flash-ops-id', 'hello');
  assert.notEqual(other.headers.get('x-request-id'), made.headers.get('x-request-id'));

  const odd = await chat('gemini-2.5-flash-ops-id', 'hello', { 'x-request-id': 'has space' });
  assert.match(odd.headers.get('x-request-id') ?? '', REQ_ID, 'an id with a space is replaced');
  const long = await chat('gemini-2.5-flash-ops-id', 'hello', { 'x-request-id': 'x'.repeat(129) });
  assert.match(long.headers.get('x-request-id') ?? '', REQ_ID, 'an id over 128 characters is replaced');

  // Errors, the public routes, the pages, the native surface and a preflight.
  const cases = [
    ['unknown route', () => stack.call('GET', '/v1/nope')],
    ['no token', () => stack.call('POST', '/v1/chat/completions', { token: null, body: {} })],
    ['bad body', () => stack.call('POST', '/v1/chat/completions', { body: '{', raw: true, headers: { 'content-type': 'application/json' } })],
    ['health', () => stack.call('GET', '/health', { token: null })],
    ['console page', () => stack.call('GET', '/admin/', { token: null })],
    ['console asset 404', () => stack.call('GET', '/admin/assets/nope.js', { token: null })],
    ['native', () => stack.call('POST', '/v1beta/models/gemini-2.5-flash-ops-id:generateContent', {
      token: null,
      headers: { 'x-goog-api-key': CLIENT_TOKEN },
      body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    })],
    ['admin', () => stack.call('GET', '/admin/api/keys', { token: ADMIN_PASSWORD })],
    ['preflight', () => fetch(`${stack.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://chat.example', 'access-control-request-method': 'POST' },
    })],
  ];
  for (const [what, send] of cases) {
    const res = await send();
    await res.arrayBuffer();
    assert.match(res.headers.get('x-request-id') ?? '', REQ_ID, `${what} (${res.status})`);
  }

  // The same id is in the request log, with the surface.
  const rows = await pollD1(
    stack,
    "SELECT request_id, surface, status FROM request_log WHERE request_id = 'client-id-123'",
    (r) => r.length === 1,
  );
  assert.deepEqual(rows[0], { request_id: 'client-id-123', surface: 'openai', status: 200 });
  const logs = await pollAdmin('/logs?limit=50', (b) => b.logs?.some((e) => e.request_id === 'client-id-123'));
  assert.equal(logs.logs.find((e) => e.request_id === 'client-id-123').surface, 'openai');
});

// ---------------------------------------------------------------- the error view and a probe

test('an upstream failure is in the error view at once, with the request it touched, and a probe brings the key back', async () => {
  const model = 'gemini-2.5-flash-ops-probe';
  await stack.mockApi.script({ key: 'ok-ops-a', model, fault: 'rate_limit_minute', retryDelay: '30s' });
  // Round robin reaches key a within three requests; each still succeeds elsewhere.
  const ids = [];
  for (let i = 0; i < KEYS.length; i += 1) {
    const id = `ops-probe-${i}`;
    const res = await chat(model, `probe ${i}`, { 'x-request-id': id });
    assert.equal(res.status, 200, await res.clone().text());
    ids.push(id);
    if ((await stack.mockApi.calls({ key: 'ok-ops-a', model })).length) break;
  }
  const failed = (await stack.mockApi.calls({ key: 'ok-ops-a', model })).filter((c) => c.status === 429);
  assert.equal(failed.length, 1, 'key a met the 429 once');

  const view = await pollAdmin(`/errors?model=${model}`, (b) => b.groups.length > 0);
  assert.equal(view.groups.length, 1);
  const [group] = view.groups;
  const keyA = await keyByName('ok-ops-a');
  assert.ok(keyA, 'key a is listed');
  assert.equal(group.upstream_id, keyA.id);
  assert.equal(group.kind, 'key');
  assert.equal(group.name, keyA.masked);
  assert.equal(group.class, 'rate_limited');
  assert.equal(group.status, 429);
  assert.equal(group.failures, 1);
  assert.equal(group.requests, 1);
  assert.ok(group.message.length > 0, 'Google\'s message is kept');
  assert.ok(group.cooldown_until > Date.now(), 'the key cools on that model');
  assert.equal(view.events.length, 1);
  assert.ok(ids.includes(view.events[0].request_id), `the failure names its request (${view.events[0].request_id})`);
  const text = JSON.stringify(view);
  for (const secret of [...KEYS, ADMIN_PASSWORD]) assert.ok(!text.includes(secret), `${secret} leaked`);
  // Filters: another class or key finds nothing; a bad class is a 400 in the admin shape.
  assert.equal((await stack.admin('GET', `/errors?model=${model}&class=server_error`)).groups.length, 0);
  assert.equal((await stack.admin('GET', `/errors?upstream=${(await keyByName('ok-ops-b')).id}&model=${model}`)).groups.length, 0);
  const bad = await stack.call('GET', '/admin/api/errors?class=nope', { token: ADMIN_PASSWORD });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, 'class');
  // The worker's log line names the request too.
  await stack.waitForLog(new RegExp(`req=${view.events[0].request_id} rate_limited on key`));

  // A cooldown still running is not probed.
  await runCron(stack);
  assert.equal((await stack.mockApi.calls({ key: 'ok-ops-a', model, action: 'countTokens' })).length, 0);
  // Google heals and the cooldown ends (moved back past now): the cron probes the key on that model.
  await stack.mockApi.script({ key: 'ok-ops-a', model, fault: null });
  await ago('key_model_health', 'cooldown_until', HOUR, `key_id = '${keyA.id}' AND model = '${model}'`);
  await runCron(stack);
  const probes = (await stack.mockApi.calls({ key: 'ok-ops-a', model, action: 'countTokens' }));
  assert.equal(probes.length, 1, 'one cheap probe on the cooled model');
  const health = (await keyByName('ok-ops-a')).health.find((h) => h.model === model);
  assert.equal(health.consecutive_failures, 0, JSON.stringify(health));
  // (The gate itself still counts the quota's real 30 s: only D1's copy of
  // the time was moved. In production the probe comes after the real end.)
  const { jobs } = await stack.admin('GET', '/jobs');
  const probe = jobs.find((j) => j.name === 'probe');
  assert.ok(probe.last.ok, JSON.stringify(probe.last));
  assert.ok(probe.last.counts.recovered >= 1, JSON.stringify(probe.last));
  // Recovered: a second run has nothing left to probe on that model.
  await runCron(stack);
  assert.equal((await stack.mockApi.calls({ key: 'ok-ops-a', model, action: 'countTokens' })).length, 1);
});

// ---------------------------------------------------------------- invalid keys: re-checks and the archive

test('invalid keys are re-checked once a day, come back when Google agrees, and are archived after three days', async () => {
  const model = 'gemini-2.5-flash-ops-invalid';
  const bad = ['invalid-ops-x', 'invalid-ops-y', 'invalid-ops-z'];
  await stack.admin('POST', '/keys', { keys: bad });
  // Each invalid key is met once and disabled; every request still succeeds.
  for (let i = 0; i < 12; i += 1) {
    const res = await chat(model, `invalid ${i}`);
    assert.equal(res.status, 200);
    const { keys } = await stack.admin('GET', '/keys');
    if (keys.filter((k) => bad.map(idOf).includes(k.id) && !k.enabled).length === 3) break;
  }
  await pollAdmin('/keys', (b) => b.keys.filter((k) => bad.map(idOf).includes(k.id) && !k.enabled).length === 3);
  const [x, y, z] = bad.map(idOf);

  // Before a day has passed, nothing is probed.
  const probesOf = async (key) => (await stack.mockApi.calls({ key, action: 'countTokens' })).length;
  await runCron(stack);
  assert.deepEqual(await Promise.all(bad.map(probesOf)), [0, 0, 0]);
  // Google revives y. A day later the cron probes all three once; y is back.
  await stack.mockApi.script({ key: 'invalid-ops-y', fault: null });
  const inBad = `id IN ('${x}', '${y}', '${z}')`;
  await ago('upstream_keys', 'disabled_at', 25 * HOUR, inBad);
  await runCron(stack);
  assert.deepEqual(await Promise.all(bad.map(probesOf)), [1, 1, 1]);
  let { keys } = await stack.admin('GET', '/keys');
  assert.equal(keys.find((k) => k.id === y).enabled, true, 'y answered and is back in the pool');
  assert.equal(keys.find((k) => k.id === x).enabled, false);
  // Not spammed: the same day, no second probe.
  await runCron(stack);
  assert.deepEqual(await Promise.all(bad.map(probesOf)), [1, 1, 1]);

  // Four days on (three more, and a day since the last probe), x and z are
  // probed once more and, still invalid, move to the archive.
  const inXz = `id IN ('${x}', '${z}')`;
  await ago('upstream_keys', 'disabled_at', 3 * DAY, inXz);
  await ago('upstream_keys', 'probed_at', 25 * HOUR, inXz);
  const t0 = Date.now();
  await runCron(stack);
  assert.deepEqual(await Promise.all(bad.map(probesOf)), [2, 1, 2]);
  ({ keys } = await stack.admin('GET', '/keys'));
  assert.ok(!keys.some((k) => k.id === x || k.id === z), 'archived keys leave the list');
  assert.ok(keys.some((k) => k.id === y));
  const archive = await stack.admin('GET', '/keys/archive');
  assert.deepEqual(archive.keys.map((k) => k.id).sort(), [x, z].sort());
  assert.ok(archive.keys.every((k) => k.archived_at >= t0 && /^inva/.test(k.masked)));
  assert.ok(!JSON.stringify(archive).includes('invalid-ops-x'), 'the archive is masked');
  const { jobs } = await stack.admin('GET', '/jobs');
  assert.ok(jobs.find((j) => j.name === 'archive').last.counts.archived >= 2);
  // The archive is not probed: it waits for the operator.
  await ago('upstream_keys', 'probed_at', 25 * HOUR, inXz);
  await runCron(stack);
  assert.deepEqual(await Promise.all(bad.map(probesOf)), [2, 1, 2]);

  // Restore x, purge z; an id not in the archive is refused by name.
  const wrong = await stack.call('POST', '/admin/api/keys/archive/restore', { token: ADMIN_PASSWORD, body: { ids: [y] } });
  assert.equal(wrong.status, 400);
  assert.match((await wrong.json()).error.message, new RegExp(y));
  assert.deepEqual(await stack.admin('POST', '/keys/archive/restore', { ids: [x] }), { restored: 1 });
  assert.deepEqual(await stack.admin('POST', '/keys/archive/purge', { ids: [z] }), { purged: 1 });
  ({ keys } = await stack.admin('GET', '/keys'));
  const restored = keys.find((k) => k.id === x);
  assert.equal(restored.enabled, true);
  assert.deepEqual(restored.health, [], 'a restored key starts with a clean record');
  assert.deepEqual((await stack.admin('GET', '/keys/archive')).keys, []);
  assert.deepEqual(await stack.d1(`SELECT id FROM upstream_keys WHERE id = '${z}'`), []);
});

// ---------------------------------------------------------------- job history

test('the job history records each run of each job, with its counts', async () => {
  await runCron(stack);
  const { jobs } = await stack.admin('GET', '/jobs');
  assert.deepEqual(jobs.map((j) => j.name), ['import', 'probe', 'archive', 'tokens', 'retention', 'reseal', 'files']);
  for (const job of jobs) {
    assert.equal(job.schedule, '*/5 * * * *');
    assert.ok(job.runs.length >= 2, `${job.name} ran in the earlier tests too`);
    assert.deepEqual(job.last, job.runs[0]);
    assert.equal(job.last.ok, true, `${job.name}: ${job.last.error}`);
    assert.equal(typeof job.last.duration_ms, 'number');
    assert.ok(job.last.started_at <= Date.now() && job.last.started_at > Date.now() - HOUR);
    assert.equal(typeof job.last.counts, 'object');
  }
  assert.deepEqual(Object.keys(jobs.find((j) => j.name === 'retention').last.counts).sort(),
    ['health_rows', 'log_rows', 'minute_rollups', 'responses', 'rollups']);
  assert.deepEqual(Object.keys(jobs.find((j) => j.name === 'probe').last.counts).sort(),
    ['due', 'probed', 'recovered', 'still_failing']);
});

// ---------------------------------------------------------------- /metrics

test('/metrics needs the admin password and speaks Prometheus: counters, latency, usable upstreams, queues', async () => {
  const anonymous = await stack.call('GET', '/metrics', { token: null });
  assert.equal(anonymous.status, 401);
  assert.ok((await anonymous.json()).error, 'refused in the admin shape');

  await stack.admin('PATCH', '/settings', { model_limits: [{ pattern: 'gemini-2.5-flash-ops-q', max_concurrency: 2 }] });
  const model = 'gemini-2.5-flash-ops-metrics';
  for (let i = 0; i < 3; i += 1) assert.equal((await chat(model, `m${i}`)).status, 200);
  const sample = (text, name, labels) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  const labels = `surface="openai",model="${model}",outcome="ok"`;
  let text;
  for (let i = 0; i < 40; i += 1) {
    const res = await stack.call('GET', '/metrics', { token: ADMIN_PASSWORD });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    text = await res.text();
    if (sample(text, 'gemgate_requests_total', labels) === 3) break;
  }
  assert.equal(sample(text, 'gemgate_requests_total', labels), 3, text.slice(0, 2000));
  assert.equal(sample(text, 'gemgate_request_duration_seconds_count', labels), 3);
  assert.equal(sample(text, 'gemgate_request_duration_seconds_bucket', `${labels},le="+Inf"`), 3);
  assert.match(text, /# TYPE gemgate_request_duration_seconds histogram/);
  const enabled = (await stack.admin('GET', '/keys')).keys.filter((k) => k.enabled).length;
  assert.equal(sample(text, 'gemgate_usable_upstreams', `model="${model}",kind="key"`), enabled);
  assert.equal(sample(text, 'gemgate_queue_in_flight', 'model="gemini-2.5-flash-ops-q"'), 0);
  assert.equal(sample(text, 'gemgate_queue_waiting', 'model="gemini-2.5-flash-ops-q"'), 0);
  // The earlier 429 is counted by model and class.
  assert.equal(sample(text, 'gemgate_upstream_errors_recent', 'model="gemini-2.5-flash-ops-probe",class="rate_limited"'), 1);
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    assert.match(line, /^[a-z_]+\{[^}]*\} [0-9.e+-]+$/, line);
  }
  for (const secret of [...KEYS, ADMIN_PASSWORD, CLIENT_TOKEN]) assert.ok(!text.includes(secret));
  await stack.admin('PATCH', '/settings', { model_limits: [] });
});

// ---------------------------------------------------------------- /health

test('/health judges per model: ok, degraded when a model has nothing usable, down (503) when nothing can serve', async () => {
  const h = await startStack({ keys: ['ok-health-1', 'ok-health-2'] });
  try {
    const look = async () => {
      const res = await h.call('GET', '/health', { token: null });
      const body = await res.json();
      for (const secret of ['ok-health-1', 'ok-health-2', ADMIN_PASSWORD]) assert.ok(!JSON.stringify(body).includes(secret));
      return { status: res.status, body };
    };
    let { status, body } = await look();
    assert.equal(status, 200);
    assert.equal(body.status, 'ok');
    assert.ok(body.models.length >= 1);
    assert.ok(body.models.every((m) => m.keys === 2 && m.total === 2), JSON.stringify(body.models));

    // Both keys out of their day's quota on one model: that model has none usable.
    const model = 'gemini-2.5-flash-ops-health';
    await h.mockApi.script({ model, fault: 'rate_limit_day' });
    const res = await h.call('POST', '/v1/chat/completions', { body: { model, messages: [{ role: 'user', content: 'x' }] } });
    assert.equal(res.status, 429);
    for (let i = 0; i < 40; i += 1) {
      ({ status, body } = await look());
      if (body.models.some((m) => m.model === model && m.keys === 0)) break;
    }
    assert.equal(status, 200);
    assert.equal(body.status, 'degraded', JSON.stringify(body));
    assert.deepEqual(body.models.find((m) => m.model === model), { model, keys: 0, accounts: 0, total: 2 });
    assert.ok(body.models.some((m) => m.model !== model && m.keys === 2), 'other models still serve');

    // Every key disabled: nothing can serve.
    const { keys } = await h.admin('GET', '/keys');
    for (const k of keys) await h.admin('PATCH', `/keys/${k.id}`, { enabled: false });
    ({ status, body } = await look());
    assert.equal(status, 503);
    assert.equal(body.status, 'down');
    assert.ok(body.models.every((m) => m.keys === 0));
  } finally {
    await h.stop();
  }
});
