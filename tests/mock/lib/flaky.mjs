// Flaky rules: a rule field that makes a share of the matching model calls
// fail transiently, deterministically, and never more than a set number of
// times for one client request.
//
//   { model: 'gemini-2.5-flash-t9',
//     flaky: { rate: 0.3, faults: ['server_500', 'server_503', 'drop', 'slow'],
//              maxPerRequest: 2, seed: 7, slowMs: 2500 } }
//
// `spareKeys` lists keys that never draw a fault that takes a key out of a
// gateway's rotation: no quota 429 or invalid/suspended key, and never more
// than SPARE_RUN faults in a row (so no run of transient failures opens a
// circuit breaker). A test that draws quota faults can so keep keys healthy,
// while the spare keys still fail transiently.

import { createHash } from 'node:crypto';
import { FAULTS } from './errors.mjs';

/** Fault names a flaky rule may draw from: every scripted fault, plus `slow`. */
export const FLAKY_FAULTS = [...FAULTS, 'slow'];
/** Faults after which a gateway stops using the key for a while (or for good): never drawn on a spare key. */
export const KEY_REMOVING_FAULTS = ['rate_limit_minute', 'rate_limit_day', 'key_invalid', 'permission_denied'];
/** Most faults a spare key gets in a row (by arrival); a gateway's circuit breaker needs more. */
export const SPARE_RUN = 2;
const FIELDS = ['rate', 'faults', 'maxPerRequest', 'seed', 'slowMs', 'spareKeys'];

/** Validates a rule's `flaky` value; returns an error string or null. */
export function flakyProblem(flaky) {
  if (flaky === null || typeof flaky !== 'object' || Array.isArray(flaky)) return 'flaky must be a JSON object';
  const unknown = Object.keys(flaky).filter((k) => !FIELDS.includes(k));
  if (unknown.length) return `unknown flaky field(s): ${unknown.join(', ')}; use ${FIELDS.join(', ')}`;
  const { rate, faults, maxPerRequest, seed, slowMs, spareKeys } = flaky;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) return 'flaky.rate must be a number in 0..1';
  if (!Array.isArray(faults) || faults.length === 0) return 'flaky.faults must be a non-empty list of fault names';
  const bad = faults.filter((f) => !FLAKY_FAULTS.includes(f));
  if (bad.length) return `unknown flaky fault(s) ${bad.map((f) => JSON.stringify(f)).join(', ')}; use ${FLAKY_FAULTS.join(', ')}`;
  if (maxPerRequest !== undefined && !(Number.isInteger(maxPerRequest) && maxPerRequest >= 0)) {
    return 'flaky.maxPerRequest must be a non-negative integer';
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) return 'flaky.seed must be an integer';
  if (faults.includes('slow') && !(Number.isInteger(slowMs) && slowMs > 0)) {
    return 'flaky.slowMs (a positive integer) is required when faults include "slow"';
  }
  if (slowMs !== undefined && !(Number.isInteger(slowMs) && slowMs > 0)) return 'flaky.slowMs must be a positive integer';
  if (spareKeys !== undefined && !(Array.isArray(spareKeys) && spareKeys.every((k) => typeof k === 'string' && k.length > 0))) {
    return 'flaky.spareKeys must be a list of keys (non-empty strings)';
  }
  return null;
}

const sha256 = (text) => createHash('sha256').update(text).digest();

/**
 * The decision state of one flaky rule: per request (body hash), how many
 * calls it made and how many of them were failed.
 */
export class Flaky {
  constructor({ rate, faults, maxPerRequest = Infinity, seed = 0, slowMs, spareKeys = [] }) {
    Object.assign(this, { rate, faults, maxPerRequest, seed, slowMs });
    this.spareKeys = new Set(spareKeys);
    this.spareFaults = faults.filter((f) => !KEY_REMOVING_FAULTS.includes(f));
    /** Per spare key, how many of its latest calls in a row were failed. */
    this.spareRuns = new Map();
    this.requests = new Map();
  }

  /**
   * Decides one call. Returns `{ request, attempt, fault }`: `request` is the
   * body's hash (hex, 16 characters), `attempt` counts this body's calls from
   * 0, `fault` is the fault name drawn, or null. The draw depends only on the
   * seed, the body and the attempt, so a run replays exactly, except on a
   * spare key (`spareKeys`): there the fault is drawn from the listed faults
   * that do not take a key out (none left: the call is not failed), and a
   * call after SPARE_RUN failed ones in a row on that key is not failed,
   * which depends on the order calls arrive in.
   */
  decide(rawBody, key) {
    const request = sha256(String(rawBody ?? '')).toString('hex').slice(0, 16);
    let seen = this.requests.get(request);
    if (!seen) {
      seen = { calls: 0, faults: 0 };
      this.requests.set(request, seen);
    }
    const attempt = seen.calls;
    seen.calls += 1;
    const spare = this.spareKeys.has(key);
    const run = spare ? (this.spareRuns.get(key) ?? 0) : 0;
    let fault = null;
    if (seen.faults < this.maxPerRequest && run < SPARE_RUN) {
      const draw = sha256(`${this.seed}\n${request}\n${attempt}`);
      const from = spare ? this.spareFaults : this.faults;
      if (from.length > 0 && draw.readUInt32BE(0) / 2 ** 32 < this.rate) {
        fault = from[draw.readUInt32BE(4) % from.length];
        seen.faults += 1;
      }
    }
    if (spare) this.spareRuns.set(key, fault ? run + 1 : 0);
    return { request, attempt, fault };
  }
}
