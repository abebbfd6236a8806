// Code Assist accounts: what state an account is in (from its refresh token's
// slug, or a rule's `account` field), its tiers, onboarding operations and
// the per-model daily request quota that retrieveUserQuota reports.
//
// A slug is the refresh token without its "1//". Prefixes (README, "Account
// states"): `new-` not onboarded, `noproject-` needs the operator's project,
// `ineligible-`, `validate-`, `subscription-`, `free-`; anything else is a
// paid standard-tier user, already onboarded.

import { randomBytes } from 'node:crypto';

/** The state names a rule's `account` field takes, each with the slug prefix that implies it. */
export const ACCOUNT_STATES = {
  standard: null,
  not_onboarded: 'new-',
  project_required: 'noproject-',
  ineligible: 'ineligible-',
  validation_required: 'validate-',
  subscription_required: 'subscription-',
  free: 'free-',
};

/** The Code Assist models retrieveUserQuota always lists a bucket for. */
export const QUOTA_MODELS = [
  'gemini-2.5-pro',
  'gemini-2.5-flash',
  'gemini-2.5-flash-lite',
  'gemini-3-pro-preview',
  'gemini-3-flash-preview',
];
export const DEFAULT_DAILY_LIMIT = 100;
export const DEFAULT_ONBOARD_POLLS = 2;

export const STANDARD_TIER = {
  id: 'standard-tier',
  name: 'Gemini Code Assist',
  description: 'Unlimited coding assistant with the most powerful Gemini models',
  userDefinedCloudaicompanionProject: true,
  privacyNotice: {},
};

/** Google's wording when a free individual account uses Gemini CLI's client (seen in user reports). */
export const CLIENT_UNSUPPORTED_MESSAGE =
  'This client is no longer supported for Gemini Code Assist for individuals. ' +
  'To continue using Gemini, please migrate to the Antigravity suite of products: https://antigravity.google';
/** Seen in a user report as a 403 (with a line break and tabs after "Code"; single spaces here). */
export const INELIGIBLE_MESSAGE =
  'Your account is not eligible for Gemini Code Assist at this time. ' +
  'If you believe this is an error, please email gemini-code-assist-user-feedback@google.com.';
/** Seen in user reports: a project is named but the account holds no Code Assist license. */
export const NO_LICENSE_MESSAGE =
  'You are currently configured to use a Google Cloud Project but lack a Gemini Code Assist license. ' +
  'Please contact your administrator to request a license. (#3501)';
export const VALIDATION_MESSAGE = 'Verify your account to continue.';
export const VALIDATION_LEARN_MORE_URL = 'https://support.google.com/accounts?p=al_alert';
export const SUBSCRIPTION_MESSAGE =
  'This account needs a Google AI Pro or Ultra subscription to use Gemini Code Assist. Subscribe to continue.';

/** The state a slug implies. */
export function stateOfSlug(slug) {
  for (const [state, prefix] of Object.entries(ACCOUNT_STATES)) {
    if (prefix && slug.startsWith(prefix)) return state;
  }
  return 'standard';
}

/** `-<name><N>-` anywhere in the slug, as a number, or undefined. */
function slugNumber(slug, name) {
  const m = new RegExp(`-${name}(\\d+)-`).exec(`-${slug}`);
  return m ? Number(m[1]) : undefined;
}

/** Access-token lifetime the slug asks for (`-ttl<N>-`), in seconds, or undefined. */
export const ttlOfSlug = (slug) => slugNumber(slug, 'ttl');
/** Requests per model per day (`-limit<N>-`). */
export const dailyLimitOfSlug = (slug) => slugNumber(slug, 'limit') ?? DEFAULT_DAILY_LIMIT;
/** How many getOperation polls onboarding takes (`new-poll<N>-`). */
export const pollsOfSlug = (slug) => slugNumber(slug, 'poll') ?? DEFAULT_ONBOARD_POLLS;

// ---------------------------------------------------------------- time

const LA = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/Los_Angeles',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** Wall-clock fields of `ms` in America/Los_Angeles. */
export function laWallClock(ms) {
  const p = Object.fromEntries(LA.formatToParts(ms).map((x) => [x.type, x.value]));
  return { year: +p.year, month: +p.month, day: +p.day, hour: +p.hour, minute: +p.minute, second: +p.second };
}

/** The Los Angeles calendar day of `ms`, "YYYY-MM-DD" (the quota day). */
export function laDay(ms) {
  const { year, month, day } = laWallClock(ms);
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The next midnight in America/Los_Angeles after `ms`, as epoch ms (DST-aware). */
export function nextLaMidnight(ms = Date.now()) {
  const { year, month, day } = laWallClock(ms);
  const wanted = Date.UTC(year, month - 1, day + 1); // the wall clock we want, read as if UTC
  let guess = wanted + 8 * 3600_000; // PST; corrected below when DST applies
  for (let i = 0; i < 3; i += 1) {
    const w = laWallClock(guess);
    guess += wanted - Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  }
  return guess;
}

/** RFC 3339 in UTC with whole seconds, as Google writes timestamps here: "2025-10-20T19:14:08Z". */
export const rfc3339 = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

// ---------------------------------------------------------------- per-account memory

/**
 * What the mock remembers about Code Assist accounts, keyed by refresh token:
 * completed onboarding (with its project), onboarding operations and their
 * polls, and each account's requests per model on the current quota day.
 */
export class AccountBook {
  constructor() {
    this.clear();
  }

  clear() {
    this.onboarded = new Map(); // refresh token -> { project: string|null }
    this.operations = new Map(); // id -> { name, refreshToken, needed, polls, project, done }
    this.usage = new Map(); // `${refreshToken}\n${model}` -> { day, count }
  }

  onboard(refreshToken, project) {
    this.onboarded.set(refreshToken, { project: project ?? null });
  }

  /** A pending onboarding operation that completes on its `needed`-th poll. */
  startOperation(refreshToken, { needed, project }) {
    const id = `onboard-${randomBytes(8).toString('hex')}`;
    const op = { name: `operations/${id}`, refreshToken, needed, polls: 0, project, done: false };
    this.operations.set(id, op);
    return op;
  }

  /** Counts one poll; the operation is done once it has been polled `needed` times. */
  poll(id) {
    const op = this.operations.get(id);
    if (!op) return null;
    op.polls += 1;
    if (!op.done && op.polls >= op.needed) {
      op.done = true;
      this.onboard(op.refreshToken, op.project);
    }
    return op;
  }

  operationsSnapshot() {
    return [...this.operations.values()].map(({ name, refreshToken, needed, polls, project, done }) => ({
      name,
      account: refreshToken,
      needed,
      polls,
      project,
      done,
    }));
  }

  used(refreshToken, model, now = Date.now()) {
    const entry = this.usage.get(`${refreshToken}\n${model}`);
    return entry && entry.day === laDay(now) ? entry.count : 0;
  }

  count(refreshToken, model, now = Date.now()) {
    const key = `${refreshToken}\n${model}`;
    const day = laDay(now);
    const entry = this.usage.get(key);
    if (entry && entry.day === day) entry.count += 1;
    else this.usage.set(key, { day, count: 1 });
  }

  /** Models this account used today, besides the fixed list. */
  modelsUsed(refreshToken, now = Date.now()) {
    const day = laDay(now);
    return [...this.usage]
      .filter(([key, entry]) => key.startsWith(`${refreshToken}\n`) && entry.day === day)
      .map(([key]) => key.slice(refreshToken.length + 1));
  }
}

// ---------------------------------------------------------------- the account as Code Assist sees it

/**
 * Resolves what an account looks like right now. `state` is the rule's
 * `account` value or the slug's; `requested` is the project a
 * loadCodeAssist / onboardUser body names (or null). Returns
 * `{ state, slug, project, ready }`: `project` is the project its calls
 * must name (null when it has none yet), `ready` whether it may generate.
 */
export function accountView(book, { refreshToken, slug, state, defaultProject }) {
  const onboarded = book.onboarded.get(refreshToken);
  switch (state) {
    case 'standard':
      return { state, slug, project: defaultProject, ready: true };
    case 'not_onboarded':
      return onboarded ? { state, slug, project: onboarded.project, ready: true } : { state, slug, project: null, ready: false };
    case 'project_required':
      return onboarded?.project ? { state, slug, project: onboarded.project, ready: true } : { state, slug, project: null, ready: false };
    default:
      return { state, slug, project: null, ready: false };
  }
}

const standardDefault = () => ({ ...STANDARD_TIER, isDefault: true });

/** loadCodeAssist's answer for an account (`view` from accountView). `requested`: the project the request names. */
export function loadCodeAssistBody(view, requested) {
  const current = (project) => ({
    currentTier: STANDARD_TIER,
    allowedTiers: [standardDefault()],
    cloudaicompanionProject: project,
    gcpManaged: false,
  });
  const { state, slug } = view;
  switch (state) {
    case 'standard':
    case 'not_onboarded':
      return view.ready ? current(view.project) : { allowedTiers: [standardDefault()], gcpManaged: false };
    case 'project_required':
      // A Workspace account is served only under the project it was onboarded with, named in the request.
      return view.ready && requested === view.project
        ? current(view.project)
        : { allowedTiers: [standardDefault()], gcpManaged: false };
    case 'ineligible':
      return {
        allowedTiers: [standardDefault()],
        ineligibleTiers: [
          { reasonCode: 'INELIGIBLE_ACCOUNT', reasonMessage: INELIGIBLE_MESSAGE, tierId: 'standard-tier', tierName: 'Gemini Code Assist' },
        ],
        gcpManaged: false,
      };
    case 'validation_required':
      return {
        allowedTiers: [standardDefault()],
        ineligibleTiers: [
          {
            reasonCode: 'VALIDATION_REQUIRED',
            reasonMessage: VALIDATION_MESSAGE,
            tierId: 'standard-tier',
            tierName: 'Gemini Code Assist',
            validationUrl: validationUrl(slug),
            validationUrlLinkText: 'Verify your account',
            validationLearnMoreUrl: VALIDATION_LEARN_MORE_URL,
            validationLearnMoreLinkText: 'Learn more',
          },
        ],
        gcpManaged: false,
      };
    case 'subscription_required':
      return {
        allowedTiers: [standardDefault()],
        ineligibleTiers: [
          {
            reasonCode: 'SUBSCRIPTION_REQUIRED',
            reasonMessage: SUBSCRIPTION_MESSAGE,
            tierId: 'g1-pro-tier',
            tierName: 'Gemini Code Assist in Google One AI Pro',
            validationUrl: subscriptionUrl(slug),
          },
        ],
        gcpManaged: false,
      };
    default:
      return null;
  }
}

export const validationUrl = (slug) => `https://accounts.google.com/signin/continue?mock=${encodeURIComponent(slug)}`;
export const subscriptionUrl = (slug) => `https://one.google.com/mock-subscribe?${encodeURIComponent(slug)}`;

const ONBOARD_RESPONSE_TYPE = 'type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse';

/** A long-running operation as onboardUser and getOperation answer it. */
export function operationBody(op) {
  if (!op.done) return { name: op.name, done: false };
  const response = { '@type': ONBOARD_RESPONSE_TYPE };
  if (op.project) response.cloudaicompanionProject = { id: op.project, name: op.project };
  return { name: op.name, done: true, response };
}

/** retrieveUserQuota's buckets for an account. */
export function quotaBuckets(book, { refreshToken, limit, now = Date.now() }) {
  const models = [...QUOTA_MODELS, ...book.modelsUsed(refreshToken, now).filter((m) => !QUOTA_MODELS.includes(m)).sort()];
  const resetTime = rfc3339(nextLaMidnight(now));
  return models.map((modelId) => {
    const remaining = Math.max(0, limit - book.used(refreshToken, modelId, now));
    return { remainingFraction: remaining / limit, resetTime, tokenType: 'REQUESTS', modelId };
  });
}
