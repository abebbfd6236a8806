// Key-pool failover through the official OpenAI SDK against the mock. A
// request that meets a rate-limited (429) or invalid key moves on to another
// key, never the same one twice, for at most max_retries + 1 upstream calls.
// A per-minute 429 cools the key for its RetryInfo delay and no longer; an
// invalid key is disabled, with its reason, until an admin re-enables it;
// keys stay masked in listings and logs. When every key is rate limited the
// client gets a 429 with Retry-After set to the earliest cooldown end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { upstreamCallsDuring } from '../lib/util.mjs';

let stack;
let client;

const OK = 'ok-failover-alpha';
const LIMITED = 'rl-minute-1500ms-failover-beta'; // per-minute 429, RetryInfo 1.5 s
const INVALID = 'invalid-failover-gamma'; // 400 API_KEY_INVALID

before(async () => {
  stack = await startStack({ keys: [OK, LIMITED, INVALID] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

/** Sends one chat request and returns the upstream calls it caused. */
async function chatAndTrace(model, content) {
  const { result: res, calls } = await upstreamCallsDuring(stack, () =>
    client.chat.completions.create({ model, messages: [{ role: 'user', content }] }));
  return { res, calls };
}

test('20 sequential requests succeed while one key is rate limited and one is invalid', async () => {
  const model = 'gemini-2.5-flash-failover';
  const traces = [];
  for (let i = 0; i < 20; i += 1) {
    const { res, calls } = await chatAndTrace(model, `hello ${i}`);
    assert.equal(res.choices[0].message.content, `echo: hello ${i}`);
    traces.push(calls);
  }
  const all = traces.flat();
  const keysOf = (calls) => calls.map((c) => c.key);

  // No request touched the same key twice.
  for (const [i, calls] of traces.entries()) {
    const keys = keysOf(calls);
    assert.equal(new Set(keys).size, keys.length, `request ${i} reused a key: ${keys}`);
    assert.equal(calls.at(-1).key, OK, `request ${i} must end on the healthy key`);
  }
  // The invalid key was tried exactly once, and never again.
  assert.equal(all.filter((c) => c.key === INVALID).length, 1);
  // Within its 1.5 s retry delay the 429 key was tried only once.
  const limited = all.filter((c) => c.key === LIMITED);
  assert.ok(limited.length >= 1, 'the 429 key was never tried');
  const first = limited[0].at;
  const within = all.filter((c) => c.key === LIMITED && c.at - first < 1500);
  assert.equal(within.length, 1, 'the 429 key was retried inside its retry delay');

  // The invalid key is disabled, with its reason, and listed masked.
  const { keys } = await stack.admin('GET', '/keys');
  const invalid = keys.find((k) => k.masked.startsWith(INVALID.slice(0, 4)) && !k.enabled);
  assert.ok(invalid, `invalid key not disabled: ${JSON.stringify(keys)}`);
  assert.match(invalid.disabled_reason, /API_KEY_INVALID/);
  for (const k of keys) {
    assert.ok(!JSON.stringify(k).includes(OK) && !JSON.stringify(k).includes(LIMITED), 'a key leaked unmasked');
  }
  // Failures were logged, with the keys masked.
  assert.match(stack.log, /API_KEY_INVALID|key_invalid/);
  for (const secret of [OK, LIMITED, INVALID]) {
    assert.ok(!stack.log.includes(secret), `${secret} appears in the worker log`);
  }
});

test('the 429 key is used again once its retry delay has passed', async () => {
  const model = 'gemini-2.5-flash-cooldown';
  // The first request that reaches the 429 key cools it for 1.5 s.
  let firstHit = null;
  for (let i = 0; i < 10 && !firstHit; i += 1) {
    const { calls } = await chatAndTrace(model, `warm ${i}`);
    firstHit = calls.find((c) => c.key === LIMITED) ?? null;
  }
  assert.ok(firstHit, 'round robin never reached the 429 key');
  // Keep sending real requests (bounded by count and time) until the gate
  // offers the key again; every request must still succeed meanwhile.
  let secondHit = null;
  const deadline = Date.now() + 20_000;
  for (let i = 0; i < 2000 && !secondHit && Date.now() < deadline; i += 1) {
    const { res, calls } = await chatAndTrace(model, `probe ${i}`);
    assert.equal(res.choices[0].finish_reason, 'stop');
    secondHit = calls.find((c) => c.key === LIMITED) ?? null;
  }
  assert.ok(secondHit, 'the 429 key never came back after its retry delay');
  assert.ok(
    secondHit.at - firstHit.at >= 1500,
    `429 key retried after ${secondHit.at - firstHit.at} ms, before its 1.5 s retry delay`,
  );
});

test('when every key is rate limited the client gets 429 with Retry-After after max_retries + 1 calls', async () => {
  await stack.admin('DELETE', '/keys', { all: true });
  const keys = ['ok-all429-1', 'ok-all429-2', 'ok-all429-3', 'ok-all429-4', 'ok-all429-5', 'ok-all429-6'];
  await stack.admin('POST', '/keys', { keys });
  await stack.admin('PUT', '/settings', { max_retries: 2 });
  const model = 'gemini-2.5-flash-all429';
  await stack.mockApi.script({ model, fault: 'rate_limit_minute', retryDelay: '7s' });
  const { result: res, calls } = await upstreamCallsDuring(stack, () => stack.call('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  }));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  const body = await res.json();
  assert.equal(typeof body.error.message, 'string');
  assert.equal(body.error.type, 'rate_limit_error');
  assert.ok('param' in body.error && 'code' in body.error);
  assert.equal(calls.length, 3, `expected max_retries + 1 = 3 upstream calls, saw ${calls.length}`);
  assert.equal(new Set(calls.map((c) => c.key)).size, 3);

  // The SDK surfaces it as a RateLimitError.
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'again' }] }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429,
  );
  await stack.admin('PUT', '/settings', { max_retries: 3 });
});

test('a key disabled as invalid serves again once an admin re-enables it', async () => {
  await stack.admin('DELETE', '/keys', { all: true });
  await stack.admin('POST', '/keys', { keys: ['ok-revive-a', 'ok-revive-b'] });
  const model = 'gemini-2.5-flash-revive';
  await stack.mockApi.script({ key: 'ok-revive-a', model, fault: 'key_invalid', times: 1 });
  // Stop right after the request that disabled it, so no later request lets
  // the gate prune the key before the admin re-enables it.
  for (let i = 0; i < 2; i += 1) {
    const { calls } = await chatAndTrace(model, `before ${i}`);
    if (calls.some((c) => c.key === 'ok-revive-a')) break;
  }
  const tried = (await stack.mockApi.calls({ model })).filter((c) => c.key === 'ok-revive-a');
  assert.equal(tried.length, 1);
  const { keys } = await stack.admin('GET', '/keys');
  const disabled = keys.find((k) => !k.enabled);
  assert.ok(disabled, JSON.stringify(keys));
  assert.match(disabled.disabled_reason, /API_KEY_INVALID/);

  const revived = await stack.admin('PATCH', `/keys/${disabled.id}`, { enabled: true });
  assert.equal(revived.enabled, true);
  const served = [];
  for (let i = 0; i < 4; i += 1) {
    const { calls } = await chatAndTrace(model, `after ${i}`);
    served.push(calls.at(-1).key);
  }
  assert.ok(served.includes('ok-revive-a'), `re-enabled key never served: ${served}`);
});
