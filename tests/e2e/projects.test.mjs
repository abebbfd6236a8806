// Project groups of upstream keys over raw HTTP, against the real stack and
// the mock's Google:
//
// - POST /admin/api/keys/project sets and clears the project of many keys at
//   once, counts only the keys that exist, bumps their revision, and refuses
//   a bad body with a 400 that names the field;
// - GET /admin/api/projects counts keys, enabled, disabled and cooling keys
//   per project (null: the keys with no project), and per model the cooling
//   keys and those parked until the per-day reset, after scripted 429s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ADMIN_PASSWORD, startStack } from '../lib/harness.mjs';
import { REQUEST_TIMEOUT_MS } from '../lib/util.mjs';

const KEYS = ['ok-proj-a1', 'ok-proj-a2', 'ok-proj-b1', 'ok-proj-n1', 'ok-proj-n2'];
/** Models of this file only, so scripted faults touch nothing else. */
const MINUTE_MODEL = 'gemini-2.5-flash-proj-minute';
const DAY_MODEL = 'gemini-2.5-flash-proj-day';
/** Enough reads of the admin API for a background mirror write to land. */
const POLLS = 200;

let stack;
/** Key id by secret: the first 8 bytes of its SHA-256, in hex, as the gateway derives it. */
const ids = Object.fromEntries(KEYS.map((k) => [k, createHash('sha256').update(k).digest('hex').slice(0, 16)]));

before(async () => {
  stack = await startStack({ keys: KEYS });
  const { keys } = await stack.admin('GET', '/keys');
  assert.deepEqual(keys.map((k) => k.id).sort(), Object.values(ids).sort());
});
after(async () => stack?.stop());

/** An admin call that answers with status and JSON, errors included. */
async function raw(method, path, body) {
  const res = await fetch(`${stack.url}/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

const setProject = (body) => raw('POST', '/keys/project', body);
const projectOf = async (secret) => (await stack.admin('GET', `/keys/${ids[secret]}`)).project;
const projects = async () => (await stack.admin('GET', '/projects')).projects;
const group = (list, name) => list.find((p) => p.project === name);

test('a project is set on many keys at once, trimmed; an unknown id is skipped and not counted', async () => {
  const [before] = await stack.d1(`SELECT MAX(updated_at) AS t FROM upstream_keys WHERE id = '${ids['ok-proj-a1']}'`);
  const res = await setProject({ ids: [ids['ok-proj-a1'], ids['ok-proj-a2'], 'no-such-key', ids['ok-proj-a1']], project: '  alpha ' });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { updated: 2 });
  assert.equal(await projectOf('ok-proj-a1'), 'alpha');
  assert.equal(await projectOf('ok-proj-a2'), 'alpha');
  assert.equal(await projectOf('ok-proj-b1'), null);
  const [after] = await stack.d1(`SELECT updated_at AS t FROM upstream_keys WHERE id = '${ids['ok-proj-a1']}'`);
  assert.ok(after.t > before.t, `updated_at was not bumped: ${before.t} → ${after.t}`);

  const none = await setProject({ ids: ['no-such-key', 'nor-this-one'], project: 'ghost' });
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json, { updated: 0 });
  assert.ok(!(await projects()).some((p) => p.project === 'ghost'), 'a project with no key is not listed');
});

test('null clears the project of many keys; the keys API shows it', async () => {
  const res = await setProject({ ids: [ids['ok-proj-b1'], ids['ok-proj-n1']], project: 'temp' });
  assert.deepEqual(res.json, { updated: 2 });
  assert.equal(await projectOf('ok-proj-n1'), 'temp');
  const cleared = await setProject({ ids: [ids['ok-proj-b1'], ids['ok-proj-n1']], project: null });
  assert.equal(cleared.status, 200, cleared.text);
  assert.deepEqual(cleared.json, { updated: 2 });
  assert.equal(await projectOf('ok-proj-b1'), null);
  assert.equal(await projectOf('ok-proj-n1'), null);
  assert.ok(!(await projects()).some((p) => p.project === 'temp'));
});

test('a thousand ids are taken at once; more are refused', async () => {
  const many = [ids['ok-proj-b1'], ...Array.from({ length: 999 }, (_, i) => `unknown-${i}`)];
  const res = await setProject({ ids: many, project: 'beta' });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { updated: 1 });
  assert.equal(await projectOf('ok-proj-b1'), 'beta');
  const over = await setProject({ ids: [...many, 'one-more'], project: 'beta' });
  assert.equal(over.status, 400, over.text);
  assert.equal(over.json.error.param, 'ids');
});

test('a bad body is refused with a 400 in the admin shape that names the field', async () => {
  const a1 = ids['ok-proj-a1'];
  const cases = [
    [{ project: 'p' }, 'ids'],
    [{ ids: [], project: 'p' }, 'ids'],
    [{ ids: a1, project: 'p' }, 'ids'],
    [{ ids: [7], project: 'p' }, 'ids'],
    [{ ids: [''], project: 'p' }, 'ids'],
    [{ ids: [a1] }, 'project'],
    [{ ids: [a1], project: '' }, 'project'],
    [{ ids: [a1], project: '   ' }, 'project'],
    [{ ids: [a1], project: 'x'.repeat(101) }, 'project'],
    [{ ids: [a1], project: 42 }, 'project'],
    [{ ids: [a1], project: ['p'] }, 'project'],
    [{ ids: [a1], project: 'p', everything: true }, 'everything'],
  ];
  for (const [body, field] of cases) {
    const res = await setProject(body);
    assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${res.text}`);
    assert.equal(res.json?.error?.param, field, `${JSON.stringify(body).slice(0, 80)}: ${res.text}`);
    assert.equal(typeof res.json.error.message, 'string');
    assert.ok(res.json.error.message.includes(field), res.json.error.message);
  }
  const notJson = await setProject('{"ids": [');
  assert.equal(notJson.status, 400, notJson.text);
  // 100 characters is the most, counted as characters.
  const longest = await setProject({ ids: [a1], project: '项'.repeat(100) });
  assert.equal(longest.status, 200, longest.text);
  await setProject({ ids: [a1], project: 'alpha' });
  assert.equal(await projectOf('ok-proj-a1'), 'alpha', 'refused bodies changed nothing');
});

/** Sends chats for `model` until the mock has seen `secret` answer one (bounded by the key count). */
async function chatUntilTried(model, secret) {
  for (let i = 0; i <= KEYS.length; i += 1) {
    const res = await stack.call('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: 'hello' }] },
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    await res.text();
    if ((await stack.mockApi.calls({ model, key: secret })).length) return;
  }
  assert.fail(`${secret} was never tried for ${model}`);
}

/** Reads GET /admin/api/projects until `ready` holds (bounded); returns the list. */
async function projectsWhen(ready, what) {
  let list;
  for (let i = 0; i < POLLS; i += 1) {
    list = await projects();
    if (ready(list)) return list;
  }
  return assert.fail(`GET /admin/api/projects never showed ${what}: ${JSON.stringify(list)}`);
}

test('keys and capacity per project: a scripted 429 cools a key of its project, a per-day one parks a key', async () => {
  // alpha: a1, a2; beta: b1; no project: n1 and n2 (disabled).
  assert.deepEqual((await setProject({ ids: [ids['ok-proj-n1'], ids['ok-proj-n2']], project: null })).json, { updated: 2 });
  await stack.admin('PATCH', `/keys/${ids['ok-proj-n2']}`, { enabled: false });
  const calm = await projects();
  assert.deepEqual(calm.map((p) => p.project), ['alpha', 'beta', null], 'named projects by name, then the keys with none');
  assert.deepEqual(group(calm, 'alpha'), { project: 'alpha', keys: 2, enabled: 2, disabled: 0, cooling: 0, models: [] });
  assert.deepEqual(group(calm, 'beta'), { project: 'beta', keys: 1, enabled: 1, disabled: 0, cooling: 0, models: [] });
  assert.deepEqual(group(calm, null), { project: null, keys: 2, enabled: 1, disabled: 1, cooling: 0, models: [] });

  // A per-minute 429 asking for ten minutes on a1.
  await stack.mockApi.script({ key: 'ok-proj-a1', model: MINUTE_MODEL, fault: 'rate_limit_minute', retryDelay: '600s' });
  await chatUntilTried(MINUTE_MODEL, 'ok-proj-a1');
  // The quota is alpha's: a2 cools with a1, and both are mirrored for the view.
  const cooled = await projectsWhen((list) => group(list, 'alpha')?.cooling === 2, 'both alpha keys cooling');
  const alpha = group(cooled, 'alpha');
  // Exactly the alpha keys whose mirrored health cools on that model, as the keys API lists them.
  const { keys } = await stack.admin('GET', '/keys');
  const mirrored = keys.filter((k) => k.project === 'alpha' && k.health.some((h) => h.model === MINUTE_MODEL && h.cooling));
  assert.deepEqual(mirrored.map((k) => k.id).sort(), [ids['ok-proj-a1'], ids['ok-proj-a2']].sort(), JSON.stringify(mirrored));
  assert.equal(alpha.cooling, mirrored.length);
  assert.deepEqual(alpha.models, [{ model: MINUTE_MODEL, cooling: 2, parked: 0 }]);
  assert.equal(alpha.keys, 2);
  assert.equal(alpha.enabled, 2);
  assert.deepEqual(group(cooled, null), { project: null, keys: 2, enabled: 1, disabled: 1, cooling: 0, models: [] });

  // A per-day 429 on b1: parked until midnight in Los Angeles.
  await stack.mockApi.script({ key: 'ok-proj-b1', model: DAY_MODEL, fault: 'rate_limit_day' });
  await chatUntilTried(DAY_MODEL, 'ok-proj-b1');
  const parked = await projectsWhen((list) => group(list, 'beta')?.cooling === 1, 'beta cooling');
  assert.deepEqual(group(parked, 'beta'), {
    project: 'beta', keys: 1, enabled: 1, disabled: 0, cooling: 1, models: [{ model: DAY_MODEL, cooling: 1, parked: 1 }],
  });

  // A disabled key's cooldown does not count: b1 disabled leaves beta with nothing cooling.
  await stack.admin('PATCH', `/keys/${ids['ok-proj-b1']}`, { enabled: false });
  assert.deepEqual(group(await projects(), 'beta'), { project: 'beta', keys: 1, enabled: 0, disabled: 1, cooling: 0, models: [] });
  await stack.admin('PATCH', `/keys/${ids['ok-proj-b1']}`, { enabled: true });

  // Moving a cooled key moves its cooling with it.
  assert.deepEqual((await setProject({ ids: [ids['ok-proj-b1']], project: 'gamma' })).json, { updated: 1 });
  const moved = await projects();
  assert.equal(group(moved, 'beta'), undefined, 'beta has no key left');
  assert.deepEqual(group(moved, 'gamma'), {
    project: 'gamma', keys: 1, enabled: 1, disabled: 0, cooling: 1, models: [{ model: DAY_MODEL, cooling: 1, parked: 1 }],
  });
});

test('the project routes answer the admin only', async () => {
  const ok = await raw('GET', '/projects');
  assert.equal(ok.status, 200, ok.text);
  assert.ok(Array.isArray(ok.json.projects), ok.text);
  const res = await fetch(`${stack.url}/admin/api/projects`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await res.text();
  assert.equal(res.status, 401);
  const post = await fetch(`${stack.url}/admin/api/keys/project`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['x'], project: 'p' }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  await post.text();
  assert.equal(post.status, 401);
});
