// Everything the mock remembers: recorded calls, scripted rules, gates,
// OAuth grants, and the Files API's files and cached contents. Events (for in-process tests, so nobody has to poll):
//   'call'  (record)             a request was recorded
//   'done'  (record)             its response finished (or the socket died)
//   'event' ({ call, index })    a stream event was written
//   'held'  ({ gate, call })     a stream is waiting on a gate
//   'released' ({ gate })        a gate was released

import { EventEmitter } from 'node:events';
import { ACCOUNT_STATES, AccountBook } from './accounts.mjs';
import { DEFAULT_DAY_DELAY, DEFAULT_MINUTE_DELAY, FAULTS, durationString } from './errors.mjs';
import { FileStore } from './filestore.mjs';
import { Flaky, flakyProblem } from './flaky.mjs';
import { answerProblem } from './answer.mjs';
import { pause } from './http.mjs';

/** The model calls. */
export const MODEL_ACTIONS = new Set([
  'generateContent',
  'streamGenerateContent',
  'countTokens',
  'embedContent',
  'batchEmbedContents',
  'predict',
  'v1internal.generateContent',
  'v1internal.streamGenerateContent',
  'v1internal.countTokens',
]);

/**
 * Where the quota and 5xx key conventions (`rl-*`, `err500-*`, `err503-*`,
 * `slow-*`) and rules without `action` apply: the model calls, and the start
 * of a file upload (a call that names no model, so only rules without a
 * `model` reach it).
 */
export const KEYED_ACTIONS = new Set([...MODEL_ACTIONS, 'files.start']);

const BEHAVIOUR_FIELDS = [
  'fault',
  'retryDelay',
  'latencyMs',
  'reply',
  'candidates',
  'promptFeedback',
  'chunks',
  'eventDelayMs',
  'bodyStallMs',
  'cutAfterEvents',
  'holdBeforeLast',
  'account',
  'quotaResetTimeStamp',
  'project',
  'answer',
];
const MATCH_FIELDS = ['key', 'model', 'action', 'times'];
/** Decides per call instead of overriding a behaviour field (see flaky.mjs). */
const FLAKY_FIELD = 'flaky';


/** `*` matches any run of characters; everything else is literal. */
function globMatches(pattern, value) {
  if (pattern === undefined) return true;
  if (value === undefined || value === null) return false;
  const source = String(pattern).split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${source}$`).test(String(value));
}

/**
 * Behaviour implied by a key's name (see README). `identity` is the API key,
 * or for Code Assist the refresh token behind the bearer, minus its "1//".
 */
export function conventionFor(identity, action) {
  const key = String(identity ?? '');
  if (key.startsWith('invalid-')) return { fault: 'key_invalid' };
  if (key.startsWith('denied-')) return { fault: 'permission_denied' };
  if (!KEYED_ACTIONS.has(action)) return {};
  const minute = /^rl-minute-(?:(\d+)(ms|s)-)?/.exec(key);
  if (minute) return { fault: 'rate_limit_minute', retryDelay: delayFrom(minute, DEFAULT_MINUTE_DELAY) };
  const day = /^rl-day-(?:(\d+)(ms|s)-)?/.exec(key);
  if (day) return { fault: 'rate_limit_day', retryDelay: delayFrom(day, DEFAULT_DAY_DELAY) };
  if (key.startsWith('err500-')) return { fault: 'server_500' };
  if (key.startsWith('err503-')) return { fault: 'server_503' };
  const slow = /^slow-(\d+)-/.exec(key);
  if (slow) return { latencyMs: Number(slow[1]) };
  return {};
}

function delayFrom(match, fallback) {
  if (!match[1]) return fallback;
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  return durationString(ms);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Validates a rule posted to /__mock/script; returns an error string or null. */
export function ruleProblem(spec) {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return 'rule must be a JSON object';
  const unknown = Object.keys(spec).filter(
    (k) => !BEHAVIOUR_FIELDS.includes(k) && !MATCH_FIELDS.includes(k) && k !== FLAKY_FIELD,
  );
  if (unknown.length) return `unknown rule field(s): ${unknown.join(', ')}`;
  const { fault } = spec;
  if (fault !== undefined && fault !== null && typeof fault !== 'object' && !FAULTS.includes(fault)) {
    return `unknown fault "${fault}"; use one of ${FAULTS.join(', ')} or {status, body}`;
  }
  if (spec.times !== undefined && !(Number.isInteger(spec.times) && spec.times > 0)) return 'times must be a positive integer';
  if (spec.latencyMs !== undefined && !(Number.isFinite(spec.latencyMs) && spec.latencyMs >= 0)) {
    return 'latencyMs must be a non-negative number';
  }
  if (spec.bodyStallMs !== undefined && !(Number.isFinite(spec.bodyStallMs) && spec.bodyStallMs > 0)) {
    return 'bodyStallMs must be a positive number';
  }
  if (spec.account !== undefined && !Object.hasOwn(ACCOUNT_STATES, spec.account)) {
    return `unknown account state "${spec.account}"; use one of ${Object.keys(ACCOUNT_STATES).join(', ')}`;
  }
  if (spec.quotaResetTimeStamp !== undefined && !RFC3339.test(String(spec.quotaResetTimeStamp))) {
    return 'quotaResetTimeStamp must be an RFC 3339 timestamp such as "2025-10-20T19:14:08Z"';
  }
  if (spec.project !== undefined && !(typeof spec.project === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(spec.project))) {
    return 'project must be a project number or id (a string of 1 to 64 letters, digits, "-" or "_")';
  }
  if (spec.answer !== undefined) {
    const problem = answerProblem(spec.answer);
    if (problem) return problem;
  }
  if (spec.flaky !== undefined) return flakyProblem(spec.flaky);
  return null;
}

export class MockState extends EventEmitter {
  constructor({ gateTimeoutMs = 30_000 } = {}) {
    super();
    this.gateTimeoutMs = gateTimeoutMs;
    this.seq = 0;
    this.ruleSeq = 0;
    this.calls = [];
    this.rules = [];
    this.gates = new Map();
    // Authorization codes (lib/oauth.mjs) and Code Assist account memory (lib/accounts.mjs).
    this.oauth = { accessTokens: new Map(), revoked: new Set(), codes: new Map(), issued: 0 };
    this.accounts = new AccountBook();
    // Files, resumable uploads and cached contents, per API key (lib/filestore.mjs).
    this.fileStore = new FileStore();
  }

  // -------------------------------------------------------------- calls

  record(fields) {
    const call = { seq: ++this.seq, at: Date.now(), ...fields, status: null };
    this.calls.push(call);
    this.emit('call', call);
    return call;
  }

  finish(call) {
    if (call.finishedAt) return;
    call.finishedAt = Date.now();
    this.emit('done', call);
  }

  /** Calls matching every given filter (`key`, `model`, `action`; `since` = seq lower bound, exclusive). */
  findCalls({ key, model, action, since } = {}) {
    return this.calls.filter(
      (c) =>
        (!key || c.key === key) &&
        (!model || c.model === model) &&
        (!action || c.action === action) &&
        (!since || c.seq > Number(since)),
    );
  }

  // -------------------------------------------------------------- rules

  addRule(spec) {
    const rule = { id: ++this.ruleSeq, ...spec };
    if (rule.times !== undefined) rule.remaining = rule.times;
    // Kept off the JSON that /__mock/scripts lists.
    if (rule.flaky) Object.defineProperty(rule, 'flakyState', { value: new Flaky(rule.flaky), enumerable: false });
    this.rules.push(rule);
    return rule;
  }

  clearRules() {
    this.rules = [];
  }

  /**
   * The behaviour for one request: the key-name convention, overridden
   * field by field by the newest matching rule (which uses up one of its
   * `times`). A flaky rule then draws for this call (`body` = the raw
   * request body): a drawn fault replaces `fault`, and `slow` forces success
   * after `slowMs`. Returns `{ behaviour, ruleId, flaky? }`, `flaky` being
   * the draw (`{ request, attempt, fault }`).
   */
  resolve({ key, account, identity, model, action, body }) {
    const base = conventionFor(identity ?? key, action);
    const rule = this.rules.findLast((r) => this.ruleMatches(r, { key, account, model, action }));
    if (!rule) return { behaviour: base, ruleId: null };
    if (rule.remaining !== undefined && --rule.remaining <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
    const overrides = Object.fromEntries(BEHAVIOUR_FIELDS.filter((f) => f in rule).map((f) => [f, rule[f]]));
    // A reset time given without a delay sets the delay too (see errors.mjs codeAssistRateLimited).
    if ('quotaResetTimeStamp' in rule && !('retryDelay' in rule)) delete base.retryDelay;
    const behaviour = { ...base, ...overrides };
    if (!rule.flakyState) return { behaviour, ruleId: rule.id };
    const flaky = rule.flakyState.decide(body, key);
    if (flaky.fault === 'slow') Object.assign(behaviour, { fault: null, latencyMs: rule.flakyState.slowMs, slow: true });
    else if (flaky.fault) behaviour.fault = flaky.fault;
    return { behaviour, ruleId: rule.id, flaky };
  }

  ruleMatches(rule, { key, account, model, action }) {
    const keyOk = rule.key === undefined || globMatches(rule.key, key) || globMatches(rule.key, account);
    const actionOk = rule.action === undefined ? KEYED_ACTIONS.has(action) : globMatches(rule.action, action);
    return keyOk && actionOk && globMatches(rule.model, model);
  }

  // -------------------------------------------------------------- gates

  gate(name) {
    let gate = this.gates.get(name);
    if (!gate) {
      let open;
      const opened = new Promise((resolve) => {
        open = resolve;
      });
      gate = { released: false, waiting: 0, opened, open };
      this.gates.set(name, gate);
    }
    return gate;
  }

  /** Releasing is sticky: a stream reaching the gate later passes straight through. */
  release(name) {
    const gate = this.gate(name);
    const waiting = gate.waiting;
    gate.released = true;
    gate.open('released');
    this.emit('released', { gate: name });
    return waiting;
  }

  /** Waits for a release, the auto-release timeout, or `signal`. Resolves 'released' | 'timeout' | 'aborted'. */
  async waitGate(name, call, signal) {
    const gate = this.gate(name);
    if (gate.released) return 'released';
    gate.waiting += 1;
    this.emit('held', { gate: name, call });
    const done = new AbortController(); // cancels the auto-release timer once the wait is over
    try {
      const timer = pause(this.gateTimeoutMs, AbortSignal.any([signal, done.signal]));
      const timeout = timer.then((ok) => (ok ? 'timeout' : 'aborted'));
      return await Promise.race([gate.opened, timeout]);
    } finally {
      done.abort();
      gate.waiting -= 1;
    }
  }

  gatesSnapshot() {
    return Object.fromEntries([...this.gates].map(([name, g]) => [name, { released: g.released, waiting: g.waiting }]));
  }

  // -------------------------------------------------------------- reset

  /**
   * Clears calls, rules, gates (opening any held stream), OAuth revocations,
   * authorization codes, Code Assist onboarding, operations and quota usage,
   * and every file, pending upload and cached content; issued access tokens
   * stay valid.
   */
  reset() {
    for (const name of this.gates.keys()) this.release(name);
    this.calls = [];
    this.rules = [];
    this.gates = new Map();
    this.oauth.revoked.clear();
    this.oauth.codes.clear();
    this.accounts.clear();
    this.fileStore.clear();
  }
}
