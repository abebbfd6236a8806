// The test process's guard against the pinned wrangler dev's lost proxy hop
// (tests/lib/dev-proxy.mjs): a request is sent once more only when the answer
// is the dev proxy's own 503, only once, and only with a body that can be
// sent twice. No stack: a scripted inner fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOST_ON_PROXY, retryingFetch } from '../lib/dev-proxy.mjs';

const lost = () => new Response(`${LOST_ON_PROXY}. Please try sending the request again. Only GET or HEAD requests are retried automatically.`, { status: 503 });

/** An inner fetch answering from `answers` in turn, recording its calls. */
function scripted(...answers) {
  const calls = [];
  const inner = async (input, init) => {
    calls.push({ input, init });
    return answers.shift()();
  };
  return { inner, calls };
}

test('a request the dev proxy lost is sent once more, and the retry is printed', async () => {
  const { inner, calls } = scripted(lost, () => new Response('{"ok":true}', { status: 200 }));
  const lines = [];
  const fetch = retryingFetch(inner, (line) => lines.push(line));
  const res = await fetch('http://127.0.0.1:1/v1/chat/completions', { method: 'POST', body: '{"model":"m"}' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  assert.equal(calls.length, 2);
  assert.equal(calls[1].init.body, '{"model":"m"}', 'the same body again');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /lost POST http:\/\/127\.0\.0\.1:1\/v1\/chat\/completions .*sending it once more/);
});

test('only once: a second loss is the answer', async () => {
  const { inner, calls } = scripted(lost, lost, () => new Response('never'));
  const res = await retryingFetch(inner, () => {})('http://127.0.0.1:1/x', { method: 'POST', body: 'b' });
  assert.equal(res.status, 503);
  assert.equal(calls.length, 2);
});

test("gemgate's own 503s, other statuses and bodies that cannot be sent twice are not retried", async () => {
  const own = () => new Response('{"error":{"message":"all keys cooling","code":503}}', { status: 503 });
  for (const [answer, init] of [
    [own, { method: 'POST', body: '{}' }],
    [() => new Response(LOST_ON_PROXY, { status: 500 }), { method: 'POST', body: '{}' }],
    [lost, { method: 'POST', body: new ReadableStream({ start: (c) => c.close() }), duplex: 'half' }],
  ]) {
    const { inner, calls } = scripted(answer, () => new Response('retried'));
    const res = await retryingFetch(inner, () => {})('http://127.0.0.1:1/x', init);
    assert.notEqual(await res.text(), 'retried');
    assert.equal(calls.length, 1);
  }
});

test('importing the harness installs the guard on the global fetch', async () => {
  await import('../lib/harness.mjs');
  assert.equal(globalThis.fetch.gemgateDevProxy, true);
});
