// ModelGate state lives in Durable Object storage: key health survives a
// restart of `wrangler dev`. The rotation is each isolate's own (issue 11:
// keys are chosen inside the isolate, from a cursor that starts at a random
// offset), so after a restart it must still be a strict rotation over the
// keys that are not cooling, from wherever it starts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { upstreamCallsDuring } from '../lib/util.mjs';

let stack;
const KEYS = ['ok-restart-1', 'ok-restart-2', 'ok-restart-3', 'ok-restart-4'];

before(async () => {
  stack = await startStack({ keys: KEYS });
});
after(async () => stack?.stop());

/** The upstream keys one chat request went through, in order. */
async function chatKey(model) {
  const { calls } = await upstreamCallsDuring(stack, async () => {
    const res = await stack.call('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: 'hi' }] },
    });
    assert.equal(res.status, 200, await res.clone().text());
  });
  return calls.map((c) => c.key);
}

test('key cooldowns survive a restart, and the rotation after it is still strict', async () => {
  const model = 'gemini-2.5-flash-restart';
  // One key is rate limited for a long time on this model only.
  const cooled = 'ok-restart-2';
  await stack.mockApi.script({ key: cooled, model, fault: 'rate_limit_minute', retryDelay: '600s', times: 1 });

  const order = [];
  for (let i = 0; i < 5; i += 1) order.push(await chatKey(model));
  const served = order.map((keys) => keys.at(-1));
  assert.ok(order.flat().includes(cooled), 'the cooled key was never tried');
  assert.ok(!served.includes(cooled));

  // The rotation order is the candidates' (keys in D1 order); read it off
  // the first full cycle.
  const cycle = served.slice(0, KEYS.length - 1);
  assert.equal(new Set(cycle).size, cycle.length, `not a rotation: ${served}`);
  assert.deepEqual(served.slice(cycle.length), cycle.slice(0, served.length - cycle.length));
  const follow = (k) => cycle[(cycle.indexOf(k) + 1) % cycle.length];

  await stack.restart();

  const after = [];
  for (let i = 0; i < 6; i += 1) after.push(await chatKey(model));
  // The cooled key stays cooled: no restart forgot its 600 s cooldown.
  assert.ok(!after.flat().includes(cooled), `cooled key retried after restart: ${after}`);
  // Every non-cooling key serves, in the same cyclic order as before.
  const rotation = after.map((k) => k.at(-1));
  for (let i = 1; i < rotation.length; i += 1) {
    assert.equal(rotation[i], follow(rotation[i - 1]), `rotation broken after restart: ${rotation}`);
  }
});
