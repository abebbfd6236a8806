// Upstream faults before the first byte must not reach clients (issue 13
// §5.1): with six keys and the mock failing 30 % of calls (at most two
// faults per request), a mix of OpenAI and native requests, streamed and not,
// with the static token and with user keys, at 20 concurrent, gives
// 0 client-visible failures, every answer complete, and user ledgers that
// charge exactly the usage Google reported for the calls that served.
//
// The faults: a per-minute 429 (Google's shape, with a short RetryInfo),
// 500, 503, a reset connection and a first-byte timeout. The mock's flaky
// rule draws them deterministically per request body (tests/mock/README.md,
// "Flaky rules"); every request here has its own content, so the mock's call
// records say exactly what each request met. "At least one key stays
// healthy" is made structural: three keys (one more than a request's faults)
// are the rule's spares, which fail transiently like the others but never
// draw the 429 (it takes a key out until its retryDelay) and never fail more
// than twice in a row (five in a row open a key's circuit). So every request,
// even after two faults, has an untried key in rotation; the other three keys
// draw every fault, 429s included.
// The upstream timeout is lowered to 3 s so a `slow` fault (8 s) is a
// first-byte timeout, while an ordinary call on a loaded machine stays well
// inside it; every other setting keeps its default, `max_retries` (3)
// included, so at most two faults leave attempts to spare.
//
// One thing is not the gateway's: wrangler dev now and then loses a POST
// before it reaches the worker, more often on a loaded machine (see
// DEV_SERVER_LOSS). Such a request is counted apart and printed, only if the
// gateway provably never saw it, and at most 3 % of a run.
//
// GEMGATE_SOAK_REQUESTS sets the request count (default 300; `make soak`
// runs 2,000). The test prints its figures as one JSON line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startStack, CLIENT_TOKEN } from '../lib/harness.mjs';
import { pollD1, sqlStr } from '../lib/util.mjs';

const KEYS = ['ok-tf-1', 'ok-tf-2', 'ok-tf-3', 'ok-tf-4', 'ok-tf-5', 'ok-tf-6'];
/** Never draw the per-minute 429 nor long runs of faults (the flaky rule's `spareKeys`). */
const SPARE_KEYS = ['ok-tf-4', 'ok-tf-5', 'ok-tf-6'];
const UPSTREAM_TIMEOUT_MS = 3000;
const SLOW_MS = 8000;
const RETRY_DELAY = '1s';
const FAULTS = ['rate_limit_minute', 'server_500', 'server_503', 'drop', 'slow'];
const RATE = 0.3;
const MAX_PER_REQUEST = 2;
const REQUESTS = Number(process.env.GEMGATE_SOAK_REQUESTS ?? 300);
const IN_FLIGHT = 20;
const USERS = 3;
/** Token prices: charges derive from Google's usageMetadata. */
const MODEL_PATTERN = 'gemini-2.5-flash-tf-*';
const PROMPT_PRICE = 1;
const COMPLETION_PRICE = 2;
const CLIENT_TIMEOUT_MS = 60_000;
/**
 * How a request that wrangler dev lost on its way to the worker fails: the
 * dev proxy's own plain-text 503 (a keep-alive race in the dev server,
 * cloudflare/workers-sdk#14641; tests/e2e/body-cap.test.mjs shows a bare JS
 * worker gets it too), or the client's connection to the dev server reset.
 * On a loaded machine a few POSTs in a thousand meet it. Such a request is
 * counted apart, and only when the gateway provably never saw it: no
 * upstream call, and no request_log row (the gateway logs every request).
 */
const DEV_SERVER_LOSS = /Your worker restarted mid-request|Network connection lost|^TypeError: fetch failed|^Error: Connection error\.|ECONNRESET/;
/** A dev server that loses more than this share of requests is broken, not loaded. */
const MAX_DISTURBED = Math.ceil(REQUESTS * 0.03);

assert.ok(Number.isInteger(REQUESTS) && REQUESTS >= 16, `GEMGATE_SOAK_REQUESTS must be an integer ≥ 16, got ${process.env.GEMGATE_SOAK_REQUESTS}`);

let stack;

before(async () => {
  stack = await startStack({
    keys: KEYS,
    settings: {
      upstream_timeout_ms: UPSTREAM_TIMEOUT_MS,
      charging_mode: 'token',
      model_costs: [{ pattern: MODEL_PATTERN, prompt_price: PROMPT_PRICE, completion_price: COMPLETION_PRICE }],
    },
  });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

const MODEL_CALLS = new Set(['generateContent', 'streamGenerateContent']);

/** The user text of an upstream call (what identifies the client request). */
const textOf = (call) => (call.body?.contents?.at(-1)?.parts ?? []).map((p) => p.text ?? '').join('');

/** The credits token mode charges for a mock call record's `tokens`. */
const chargeOfTokens = (t) => t.prompt * PROMPT_PRICE + (t.candidates + t.thoughts) * COMPLETION_PRICE;

const sum = (values) => values.reduce((a, b) => a + b, 0);

/** The SDK clients for one credential (the static token or a user key); no client-side retries. */
function clientsFor(apiKey) {
  return {
    openai: new OpenAI({ apiKey, baseURL: `${stack.url}/v1`, maxRetries: 0, timeout: CLIENT_TIMEOUT_MS }),
    // No `retryOptions`: the GenAI SDK then sends each request once.
    genai: new GoogleGenAI({ apiKey, httpOptions: { baseUrl: stack.url, timeout: CLIENT_TIMEOUT_MS } }),
  };
}

/** The four ways a request is sent, in the deterministic mix. */
const KINDS = ['openai', 'openai-stream', 'native', 'native-stream'];

/** One request through an official SDK; resolves to the whole reply text. */
async function ask(clients, kind, model, content) {
  switch (kind) {
    case 'openai': {
      const res = await clients.openai.chat.completions.create({ model, messages: [{ role: 'user', content }] });
      return res.choices[0].message.content;
    }
    case 'openai-stream': {
      const events = await clients.openai.chat.completions.create({ model, messages: [{ role: 'user', content }], stream: true });
      let text = '';
      for await (const chunk of events) text += chunk.choices[0]?.delta?.content ?? '';
      return text;
    }
    case 'native':
      return (await clients.genai.models.generateContent({ model, contents: content })).text;
    case 'native-stream': {
      let text = '';
      for await (const chunk of await clients.genai.models.generateContentStream({ model, contents: content })) text += chunk.text ?? '';
      return text;
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

/** A message for any SDK error: status and the gateway's message (or the network error's code). */
const describeError = (err) =>
  `${err.status ?? err.name}: ${err.error?.message ?? err.message}${err.cause?.code ? ` (${err.cause.code})` : ''}`;

/** Runs `fn(i)` for i in 0..n-1 with at most `width` in flight; resolves to the results in order. */
async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next;
      next += 1;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

/**
 * Resolves once every call the in-process mock recorded for `model` has
 * ended (answered, dropped or abandoned); fails after `timeoutMs`. A gateway
 * that gave up on a slow call closes it at once; one that did not leaves it
 * running until the mock answers it.
 */
function allCallsEnded(model, timeoutMs) {
  const { state } = stack.mock;
  const open = () => state.calls.filter((c) => c.model === model && !c.finishedAt);
  if (open().length === 0) return Promise.resolve();
  return new Promise((ok, fail) => {
    const onDone = () => {
      if (open().length === 0) finish(ok);
    };
    const timer = setTimeout(() => finish(() => fail(new Error(`${open().length} upstream calls still open after ${timeoutMs} ms`))), timeoutMs);
    const finish = (fn) => {
      clearTimeout(timer);
      state.off('done', onDone);
      fn();
    };
    state.on('done', onDone);
  });
}

/**
 * A call that served its request: answered 200 without a fault, and read to
 * the end by the gateway. A call the gateway abandoned (its own timeout on a
 * call the machine's load made slow) may have got a 200 from the mock, but
 * never reached the client.
 */
const servedBy = (c) => c.status === 200 && !c.fault && c.abandonedAt === undefined;

const tally = (values) => {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
};

// ---------------------------------------------------------------- tests

test('a call slower than upstream_timeout_ms is a first-byte timeout: abandoned after it, served from another key', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-tf-slow';
  const clients = clientsFor(CLIENT_TOKEN);
  for (const kind of ['openai', 'openai-stream']) {
    const content = `slow ${kind}`;
    await stack.mockApi.script({ model, latencyMs: SLOW_MS, times: 1 });
    const started = Date.now();
    assert.equal(await ask(clients, kind, model, content), `echo: ${content}`);
    const elapsed = Date.now() - started;
    await allCallsEnded(model, 10_000);
    const calls = (await stack.mockApi.calls({ model })).filter((c) => textOf(c) === content);
    assert.equal(calls.length, 2, `one timed-out call and one answer: ${JSON.stringify(calls.map((c) => [c.key, c.status]))}`);
    const [slow, served] = calls;
    assert.equal(slow.status, null, 'the mock never answered the slow call');
    assert.equal(typeof slow.abandonedAt, 'number', 'the gateway closed the slow call');
    const gaveUpAfter = slow.abandonedAt - slow.at;
    assert.ok(gaveUpAfter >= UPSTREAM_TIMEOUT_MS - 100 && gaveUpAfter < SLOW_MS, `gave up after ${gaveUpAfter} ms`);
    assert.equal(served.status, 200);
    assert.notEqual(served.key, slow.key, 'the retry went to another key');
    assert.ok(elapsed < SLOW_MS, `the client waited ${elapsed} ms`);
  }
});

test(
  `6 keys, 30 % faults before the first byte (≤ 2 per request): ${REQUESTS} mixed requests at ${IN_FLIGHT} concurrent, 0 client-visible failures, exact ledgers`,
  { timeout: 300_000 + REQUESTS * 300 },
  async (t) => {
    const model = 'gemini-2.5-flash-tf-flaky';
    await stack.mockApi.script({
      model,
      retryDelay: RETRY_DELAY,
      flaky: { rate: RATE, faults: FAULTS, maxPerRequest: MAX_PER_REQUEST, seed: 7, slowMs: SLOW_MS, spareKeys: SPARE_KEYS },
    });
    // Credentials: index 0 is the static token, 1..USERS are user keys.
    const users = [];
    for (let u = 0; u < USERS; u += 1) {
      const created = await stack.admin('POST', '/users', { name: `tf-user-${u}`, credit_quota: 1_000_000_000 });
      users.push({ id: created.user.id, key: created.key });
    }
    const credentials = [{ label: 'static', key: CLIENT_TOKEN }, ...users.map((u, n) => ({ label: `user${n}`, key: u.key, user: u }))];
    const clients = credentials.map((c) => clientsFor(c.key));

    // The mix: the kind cycles every request, the credential every four, so
    // each credential sends every kind. Every content is unique, so every
    // upstream body is.
    const kindOf = (i) => KINDS[i % KINDS.length];
    const credOf = (i) => Math.floor(i / KINDS.length) % credentials.length;
    const contentOf = (i) => `transient ${i} of ${REQUESTS}`;
    const started = Date.now();
    const outcomes = await pool(REQUESTS, IN_FLIGHT, async (i) => {
      try {
        return { text: await ask(clients[credOf(i)], kindOf(i), model, contentOf(i)) };
      } catch (err) {
        return { error: describeError(err) };
      }
    });
    const wallMs = Date.now() - started;
    await allCallsEnded(model, SLOW_MS + 10_000);

    // ---- what the mock saw, per client request
    const calls = (await stack.mockApi.calls({ model })).filter((c) => MODEL_CALLS.has(c.action));
    const byText = new Map();
    for (const c of calls) byText.set(textOf(c), [...(byText.get(textOf(c)) ?? []), c]);
    const perRequest = Array.from({ length: REQUESTS }, (_, i) => (byText.get(contentOf(i)) ?? []).sort((a, b) => a.seq - b.seq));
    assert.equal(perRequest.reduce((n, cs) => n + cs.length, 0), calls.length, 'every upstream call belongs to one of the requests');

    const faultCounts = Object.fromEntries(FAULTS.map((f) => [f, calls.filter((c) => c.fault === f).length]));
    const faulted = calls.filter((c) => c.fault).length;
    const share = faulted / calls.length;
    const failures = outcomes.flatMap((o, i) => (o.error ? [{ i, kind: kindOf(i), cred: credentials[credOf(i)].label, error: o.error }] : []));
    const isDisturbed = (i) => DEV_SERVER_LOSS.test(outcomes[i].error ?? '') && perRequest[i].length === 0;
    const disturbed = failures.filter((f) => isDisturbed(f.i));
    const gatewayFailures = failures.filter((f) => !isDisturbed(f.i));
    const wrong = outcomes.flatMap((o, i) => (o.text !== undefined && o.text !== `echo: ${contentOf(i)}` ? [{ i, kind: kindOf(i), text: o.text }] : []));
    // Calls the gateway gave up on although the mock drew no fault for them:
    // its own first-byte timeout on a call the machine's load made slow.
    const strayTimeouts = calls.filter((c) => !c.fault && c.abandonedAt !== undefined).length;
    const summary = {
      requests: REQUESTS,
      inFlight: IN_FLIGHT,
      byKind: tally(outcomes.map((_, i) => kindOf(i))),
      byCredential: tally(outcomes.map((_, i) => credentials[credOf(i)].label)),
      wallMs,
      requestsPerSecond: Number((REQUESTS / (wallMs / 1000)).toFixed(1)),
      upstreamCalls: calls.length,
      faults: faultCounts,
      faultShare: Number(share.toFixed(3)),
      spareKeyFaults: tally(calls.filter((c) => SPARE_KEYS.includes(c.key) && c.fault).map((c) => c.fault)),
      strayTimeouts,
      faultsPerRequest: tally(perRequest.map((cs) => cs.filter((c) => c.fault).length)),
      callsPerRequest: tally(perRequest.map((cs) => cs.length)),
      callsPerKey: tally(calls.map((c) => c.key)),
      succeeded: outcomes.filter((o) => o.text !== undefined).length,
      failed: failures.length,
      devServerDisturbed: disturbed.map((f) => f.i),
      failuresByError: tally(failures.map((f) => f.error)),
      failedRequests: failures.slice(0, 10).map((f) => ({ ...f, calls: perRequest[f.i].map((c) => `${c.key}:${c.fault ?? c.status}`) })),
      wrongText: wrong.length,
    };

    // ---- the gateway's handling of each request, as the mock saw it
    const checkRequests = () => {
      for (const [i, cs] of perRequest.entries()) {
        const label = `request ${i} (${kindOf(i)}, ${credentials[credOf(i)].label}: ${cs.map((c) => `${c.key}:${c.fault ?? c.status}${c.abandonedAt ? '/abandoned' : ''}`).join(' → ')})`;
        if (isDisturbed(i)) continue;
        assert.ok(cs.length > 0, `${label} never reached the upstream`);
        assert.ok(cs.filter((c) => c.fault).length <= MAX_PER_REQUEST, `${label} got more than ${MAX_PER_REQUEST} faults`);
        const keys = cs.map((c) => c.key);
        assert.equal(new Set(keys).size, keys.length, `${label} used a key twice`);
        // Nothing was served after a fault on the same key within one
        // request: a faulted key is not asked again, and a slow call the
        // gateway timed out was closed, never answered.
        for (const [n, c] of cs.entries()) {
          if (!c.fault) continue;
          assert.ok(!cs.slice(n + 1).some((later) => later.key === c.key), `${label}: ${c.key} was asked again after its ${c.fault}`);
          if (c.fault === 'slow') {
            assert.equal(c.status, null, `${label}: the slow call on ${c.key} was answered after the gateway's timeout`);
            assert.equal(typeof c.abandonedAt, 'number', `${label}: the gateway never closed its slow call on ${c.key}`);
          }
        }
        const served = cs.filter(servedBy);
        assert.ok(served.length <= 1, `${label}: served ${served.length} times`);
        if (outcomes[i].text !== undefined) assert.equal(served[0], cs.at(-1), `${label}: the answer must come from the last call`);
      }
    };

    // ---- the ledgers: per user, what was charged = Google's usage of the calls that served
    const ledgers = [];
    const checkLedgers = async () => {
      for (const [n, cred] of credentials.entries()) {
        if (!cred.user) continue;
        const { id, key } = cred.user;
        const mine = outcomes.flatMap((_, i) => (credOf(i) === n && !isDisturbed(i) ? [i] : []));
        const servedCalls = mine.flatMap((i) => perRequest[i].filter(servedBy));
        assert.ok(servedCalls.every((c) => c.tokens), `${cred.label}: a served call without usage`);
        const expected = sum(servedCalls.map((c) => chargeOfTokens(c.tokens)));
        // Each request settles once its answer is done, off the hot path: read
        // the ledger until nothing is reserved and the total is reached
        // (bounded; the worker's settle lines cannot be counted here, since
        // the harness keeps only the log's tail).
        let usage;
        for (let n = 0, deadline = Date.now() + 60_000; n < 10_000 && Date.now() < deadline; n += 1) {
          usage = await (await stack.call('GET', '/v1/usage', { token: key })).json();
          if (usage.reserved === 0 && usage.used >= expected) break;
        }
        // D1's rows land off the hot path too: read until they reach the total (bounded).
        const [{ used: creditsUsed, logged, rows: logRows }] = await pollD1(
          stack,
          `SELECT credits_used AS used, (SELECT COALESCE(SUM(credits), 0) FROM request_log WHERE user_id = ${sqlStr(id)}) AS logged, ` +
            `(SELECT COUNT(*) FROM request_log WHERE user_id = ${sqlStr(id)}) AS rows FROM users WHERE id = ${sqlStr(id)}`,
          ([r]) => r !== undefined && r.used >= expected && r.logged >= expected && r.rows >= mine.length,
          40,
        );
        const row = {
          user: cred.label,
          requests: mine.length,
          servedCalls: servedCalls.length,
          mockUsage: expected,
          requestLogRows: logRows,
          used: usage.used,
          reserved: usage.reserved,
          creditsUsed,
          requestLogCredits: logged,
        };
        ledgers.push(row);
        assert.ok(expected > 0, `${cred.label}: the mock reported usage`);
        assert.equal(servedCalls.length, mine.length, `${cred.label}: one served call per request`);
        assert.equal(row.requestLogRows, mine.length, `${cred.label}: one request_log row per request`);
        assert.equal(row.used, expected, `${cred.label}: /v1/usage used = Σ the mock's usage`);
        assert.equal(row.reserved, 0, `${cred.label}: every reservation was settled`);
        assert.equal(row.creditsUsed, expected, `${cred.label}: D1 users.credits_used`);
        assert.equal(row.requestLogCredits, expected, `${cred.label}: Σ request_log.credits`);
      }
    };

    try {
      checkRequests();
      // ---- the acceptance: no client saw any of it
      assert.deepEqual(wrong, [], 'replies with the wrong text');
      assert.equal(gatewayFailures.length, 0, `${gatewayFailures.length} of ${REQUESTS} requests failed: ${JSON.stringify(gatewayFailures.slice(0, 5))}`);
      assert.ok(disturbed.length <= MAX_DISTURBED, `${disturbed.length} requests lost by wrangler dev's proxy (at most ${MAX_DISTURBED})`);
      await checkLedgers();
      // The gateway logs every request it got: the disturbed ones never reached it.
      const [{ logged }] = await pollD1(
        stack,
        `SELECT COUNT(*) AS logged FROM request_log WHERE model = ${sqlStr(model)}`,
        ([r]) => r.logged >= REQUESTS - disturbed.length,
        40,
      );
      summary.requestLogRows = logged;
      assert.equal(logged, REQUESTS - disturbed.length, 'one request_log row per request the gateway received');
    } finally {
      t.diagnostic(`transient faults: ${JSON.stringify({ ...summary, ledgers })}`);
      if (failures.length > 0) {
        // What the dev server and the runtime said about it, if anything.
        const said = stack.log.split('\n').filter((l) => !l.includes('[gemgate]') && /ProxyWorker|restarted|memory|panicked|connection lost|uncaught|ECONNRESET/i.test(l));
        t.diagnostic(`dev server log: ${JSON.stringify(said.slice(0, 20))}`);
      }
    }

    // ---- the faults really happened, as scripted (so passing means something)
    for (const f of FAULTS) assert.ok(faultCounts[f] > 0, `no ${f} fault happened: ${JSON.stringify(faultCounts)}`);
    assert.equal(summary.spareKeyFaults.rate_limit_minute, undefined, 'the spare keys never got a 429');
    for (const key of SPARE_KEYS) assert.ok(calls.some((c) => c.key === key && c.fault), `the spare key ${key} failed transiently too`);
    for (const kind of KINDS) {
      const hit = perRequest.filter((cs, i) => kindOf(i) === kind && cs.some((c) => c.fault)).length;
      assert.ok(hit > 0, `no ${kind} request met a fault`);
    }
    // Retries stop at the first success, so at rate p with two faults at most the
    // expected share of all calls is (p + p²) / (1 + p + p²) = 0.28 for p = 0.3.
    assert.ok(Math.abs(share - RATE) <= 0.06, `fault share ${share.toFixed(3)} is not near ${RATE}`);
  },
);
