// A known fault of the pinned `wrangler dev` (4.86, the newest that runs on
// Node 20), not of gemgate: its proxy in front of the worker reuses kept-alive
// connections to the runtime, and a request sent on one the runtime is just
// closing is lost on that hop (cloudflare/workers-sdk#14641; fixed upstream by
// retrying in the proxy, workers-sdk#15252, in versions that need a newer
// Node). The proxy answers such a POST with its own 503, "Your worker
// restarted mid-request…", although nothing restarted; a GET it queues for a
// restart that never comes (page tests bound that with openPage's retry).
//
// Importing this module (the harness does) makes `fetch` in the test process
// send a request once more when, and only when, the answer is that 503 of
// the proxy: a text gemgate never sends. The request's body must be one that
// can be sent twice (a string, bytes, form or none); every retry is printed,
// so a rise in them shows in the log.

/** The start of the dev proxy's own 503 body. */
export const LOST_ON_PROXY = 'Your worker restarted mid-request';

const resendable = (body) =>
  body == null || typeof body === 'string' || body instanceof Uint8Array || body instanceof ArrayBuffer
  || body instanceof URLSearchParams;

/**
 * `fetch` over `inner`, sending a request again once when the dev proxy
 * lost it. `log` receives the line printed for each retry.
 */
export function retryingFetch(inner, log = (line) => process.stderr.write(line)) {
  return async function fetch(input, init) {
    const res = await inner(input, init);
    if (res.status !== 503 || input instanceof Request || !resendable(init?.body)) return res;
    const text = await res.clone().text();
    if (!text.startsWith(LOST_ON_PROXY)) return res;
    log(`dev-proxy: wrangler dev lost ${init?.method ?? 'GET'} ${String(input)} on its proxy hop (workers-sdk#14641); sending it once more\n`);
    return inner(input, init);
  };
}

if (!globalThis.fetch.gemgateDevProxy) {
  globalThis.fetch = Object.assign(retryingFetch(globalThis.fetch), { gemgateDevProxy: true });
}
