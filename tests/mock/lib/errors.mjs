// Google's error bodies, `{"error": {"code", "message", "status", "details"?}}`.
// Each builder returns `{ status, body }`; the caller sends it as JSON.

const RATE_LIMIT_DOCS = 'https://ai.google.dev/gemini-api/docs/rate-limits';
const CODE_ASSIST_DOMAIN = 'cloudcode-pa.googleapis.com';
export const DEFAULT_MINUTE_DELAY = '2s';
export const DEFAULT_DAY_DELAY = '30s';

export function googleError(code, status, message, details) {
  const error = { code, message, status };
  if (details?.length) error.details = details;
  return { status: code, body: { error } };
}

const errorInfo = (reason, domain, metadata) => ({
  '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
  reason,
  domain,
  metadata,
});

const retryInfo = (retryDelay) => ({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay });

const localized = (message) => ({
  '@type': 'type.googleapis.com/google.rpc.LocalizedMessage',
  locale: 'en-US',
  message,
});

/** Milliseconds as a protobuf Duration JSON string: 2000 -> "2s", 1500 -> "1.500s". */
export function durationString(ms) {
  const seconds = Math.floor(ms / 1000);
  const millis = Math.round(ms % 1000);
  return millis === 0 ? `${seconds}s` : `${seconds}.${String(millis).padStart(3, '0')}s`;
}

// ---------------------------------------------------------------- auth

export function unregisteredCaller() {
  return googleError(
    403,
    'PERMISSION_DENIED',
    "Method doesn't allow unregistered callers (callers without established identity). " +
      'Please use API Key or other form of API consumer identity to call this API.',
  );
}

/** A bad key is a 400 INVALID_ARGUMENT, not a 401: Google's long-standing quirk. */
export function apiKeyInvalid() {
  const message = 'API key not valid. Please pass a valid API key.';
  return googleError(400, 'INVALID_ARGUMENT', message, [
    errorInfo('API_KEY_INVALID', 'googleapis.com', { service: 'generativelanguage.googleapis.com' }),
    localized(message),
  ]);
}

export function consumerSuspended(key) {
  const message = `Permission denied: Consumer 'api_key:${key}' has been suspended.`;
  return googleError(403, 'PERMISSION_DENIED', message, [
    errorInfo('CONSUMER_SUSPENDED', 'googleapis.com', {
      consumer: `projects/${projectNumber(key)}`,
      service: 'generativelanguage.googleapis.com',
    }),
    localized(message),
  ]);
}

function projectNumber(key) {
  let n = 0;
  for (const c of String(key)) n = (n * 31 + c.charCodeAt(0)) % 1e12;
  return String(100000000000 + n);
}

/** OAuth-protected endpoints (Code Assist, userinfo) answer 401 UNAUTHENTICATED. */
export function unauthenticated({ missing, expired, service, method } = {}) {
  const lead = missing
    ? 'Request is missing required authentication credential.'
    : 'Request had invalid authentication credentials.';
  const reason = missing ? 'CREDENTIALS_MISSING' : expired ? 'ACCESS_TOKEN_EXPIRED' : 'ACCESS_TOKEN_TYPE_UNSUPPORTED';
  return googleError(
    401,
    'UNAUTHENTICATED',
    `${lead} Expected OAuth 2 access token, login cookie or other valid authentication credential. ` +
      'See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    [errorInfo(reason, 'googleapis.com', { service, method })],
  );
}

// ---------------------------------------------------------------- quota

/**
 * Gemini API free-tier 429. The per-day variant still carries a RetryInfo,
 * as Google's do, so clients cannot rely on RetryInfo alone to tell the two
 * apart: the QuotaFailure's quotaId ("...PerDay..." vs "...PerMinute...") is
 * the signal.
 */
export function rateLimited({ model, retryDelay, perDay, project }) {
  const window = perDay ? 'PerDay' : 'PerMinute';
  const quotaId = `GenerateRequests${window}PerProjectPerModel-FreeTier`;
  return googleError(
    429,
    'RESOURCE_EXHAUSTED',
    'You exceeded your current quota, please check your plan and billing details. ' +
      `For more information on this error, head to: ${RATE_LIMIT_DOCS}.`,
    [
      ...(project === undefined ? [] : [quotaErrorInfo(project, quotaId)]),
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [
          {
            quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
            quotaId,
            quotaDimensions: { location: 'global', model },
            quotaValue: perDay ? '250' : '10',
          },
        ],
      },
      {
        '@type': 'type.googleapis.com/google.rpc.Help',
        links: [{ description: 'Learn more about Gemini API quotas', url: RATE_LIMIT_DOCS }],
      },
      retryInfo(retryDelay),
    ],
  );
}

/**
 * The ErrorInfo Google adds to a paid project's 429: it names the project
 * that ran out (`consumer: projects/<number>`), which is how a gateway can
 * learn which keys share one quota.
 */
function quotaErrorInfo(project, quotaLimit) {
  return errorInfo('RATE_LIMIT_EXCEEDED', 'googleapis.com', {
    consumer: `projects/${project}`,
    service: 'generativelanguage.googleapis.com',
    quota_limit: quotaLimit,
    quota_location: 'global',
  });
}

/**
 * Code Assist (cloudcode-pa) 429s have their own shape: an ErrorInfo in the
 * cloudcode-pa domain whose reason is RATE_LIMIT_EXCEEDED (short window) or
 * QUOTA_EXHAUSTED (daily), with `quotaResetDelay` (a Go duration string,
 * "539.477544ms", "9h22m20.91s") and `quotaResetTimeStamp` (RFC 3339, whole
 * seconds), plus a RetryInfo. Gemini CLI keys off the reason.
 *
 * `retryDelay` (protobuf Duration) and `quotaResetTimeStamp` may each be
 * given; a missing one is derived from the other. With neither, the
 * default delay of the window applies.
 */
export function codeAssistRateLimited({ model, retryDelay, quotaResetTimeStamp, perDay, now = Date.now() }) {
  let delayMs;
  let resetAt;
  if (quotaResetTimeStamp !== undefined) {
    resetAt = Date.parse(quotaResetTimeStamp);
    delayMs = retryDelay !== undefined ? durationMs(retryDelay) : Math.max(0, resetAt - now);
  } else {
    delayMs = durationMs(retryDelay ?? (perDay ? DEFAULT_DAY_DELAY : DEFAULT_MINUTE_DELAY));
    resetAt = Math.ceil((now + delayMs) / 1000) * 1000;
  }
  const delay = retryDelay ?? durationString(delayMs);
  return googleError(
    429,
    'RESOURCE_EXHAUSTED',
    `You have exhausted your capacity on this model. Your quota will reset after ${goDuration(Math.floor(delayMs / 1000) * 1000)}.`,
    [
      errorInfo(perDay ? 'QUOTA_EXHAUSTED' : 'RATE_LIMIT_EXCEEDED', CODE_ASSIST_DOMAIN, {
        uiMessage: 'true',
        model,
        quotaResetDelay: goDuration(delayMs),
        quotaResetTimeStamp: new Date(resetAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      }),
      retryInfo(delay),
    ],
  );
}

/** A protobuf Duration string ("3s", "1.500s") in milliseconds. */
export function durationMs(duration) {
  return Math.round(Number.parseFloat(String(duration)) * 1000);
}

/** Milliseconds as Go's time.Duration prints them: "0s", "539ms", "1.5s", "2m0s", "25h20m26.179s". */
export function goDuration(ms) {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const fraction = millis % 1000 ? `.${String(millis % 1000).padStart(3, '0').replace(/0+$/, '')}` : '';
  const seconds = `${Math.floor(millis / 1000)}${fraction}s`;
  if (hours) return `${hours}h${minutes}m${seconds}`;
  return minutes ? `${minutes}m${seconds}` : seconds;
}

// ---------------------------------------------------------------- Code Assist account refusals

/** A plain 403 PERMISSION_DENIED, as cloudcode-pa sends for license and eligibility refusals. */
export function codeAssistForbidden(message) {
  return googleError(403, 'PERMISSION_DENIED', message);
}

/** The envelope names a project the account may not use. */
export function projectPermissionDenied(project) {
  const message = `Permission denied on resource project ${project}.`;
  return googleError(403, 'PERMISSION_DENIED', message, [
    errorInfo('CONSUMER_INVALID', 'googleapis.com', {
      containerInfo: project,
      consumer: `projects/${project}`,
      service: 'cloudaicompanion.googleapis.com',
    }),
    localized(message),
    {
      '@type': 'type.googleapis.com/google.rpc.Help',
      links: [{ description: 'Google developers console', url: 'https://console.developers.google.com' }],
    },
  ]);
}

/** Google wants the account holder to verify the account (cloudcode-pa's VALIDATION_REQUIRED 403). */
export function validationRequired({ message, url, learnMoreUrl }) {
  return googleError(403, 'PERMISSION_DENIED', message, [
    errorInfo('VALIDATION_REQUIRED', CODE_ASSIST_DOMAIN, {
      validation_error_message: message,
      validation_url_link_text: 'Verify your account',
      validation_url: url,
      validation_learn_more_link_text: 'Learn more',
      validation_learn_more_url: learnMoreUrl,
    }),
    {
      '@type': 'type.googleapis.com/google.rpc.Help',
      links: [
        { description: 'Verify your account', url },
        { description: 'Learn more', url: learnMoreUrl },
      ],
    },
  ]);
}

// ---------------------------------------------------------------- server side

export function internalError() {
  return googleError(
    500,
    'INTERNAL',
    'An internal error has occurred. Please retry or report in ' +
      'https://developers.generativeai.google/guide/troubleshooting',
  );
}

export function overloaded() {
  return googleError(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
}

// ---------------------------------------------------------------- request problems

/**
 * Unknown or unsupported model. Google names the API version and the method
 * in the message, with the model always written as `models/{id}`.
 */
export function modelNotFound(model, apiVersion, method) {
  return googleError(
    404,
    'NOT_FOUND',
    `models/${model} is not found for API version ${apiVersion}, or is not supported for ${method}. ` +
      'Call ListModels to see the list of available models and their supported methods.',
  );
}

export function entityNotFound() {
  return googleError(404, 'NOT_FOUND', 'Requested entity was not found.');
}

/**
 * A Files API file that is not the caller's (another key is another
 * project), or that does not exist (any more): Google does not tell the two
 * apart. `id` is the file id without "files/".
 */
export function fileNotAccessible(id) {
  return googleError(403, 'PERMISSION_DENIED', `You do not have permission to access the File ${id} or it may not exist.`);
}

/** A cached content that is not the caller's, or that does not exist (any more). */
export function cachedContentNotFound() {
  return googleError(403, 'PERMISSION_DENIED', 'CachedContent not found (or permission denied)');
}

export function alreadyExists(message) {
  return googleError(409, 'ALREADY_EXISTS', message);
}

/**
 * 400 INVALID_ARGUMENT. JSON-parse problems (`violations` given) come with a
 * google.rpc.BadRequest listing one fieldViolation per problem, the message
 * being all problems joined by newlines.
 */
export function invalidArgument(message, violations) {
  const details = violations?.length
    ? [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: violations }]
    : undefined;
  return googleError(400, 'INVALID_ARGUMENT', message, details);
}

/** Builds the INVALID_ARGUMENT for a list of `{ field?, description }` violations. */
export function invalidPayload(violations) {
  return invalidArgument(
    violations.map((v) => v.description).join('\n'),
    violations.map((v) => (v.field ? { field: v.field, description: v.description } : { description: v.description })),
  );
}

// ---------------------------------------------------------------- scripted faults

export const FAULTS = [
  'rate_limit_minute',
  'rate_limit_day',
  'key_invalid',
  'permission_denied',
  'server_500',
  'server_503',
  'not_found',
  'drop',
];

/**
 * Renders a scripted fault for a surface ("gemini", "files" or "codeassist";
 * "files" is the Gemini API's Files and cachedContents methods).
 * `fault` is one of FAULTS or a raw `{ status, body, contentType? }`
 * (an object body is sent as Google JSON, a string body verbatim).
 * `project` (Gemini API 429s only) adds the ErrorInfo naming the project.
 * `drop` has no body: handlers destroy the connection instead (see
 * respond.mjs `dropConnection`).
 */
export function renderFault(fault, { surface, model, key, retryDelay, quotaResetTimeStamp, project, apiVersion, method }) {
  if (typeof fault === 'object') {
    return { status: fault.status ?? 500, body: fault.body ?? '', contentType: fault.contentType };
  }
  const codeAssist = surface === 'codeassist';
  switch (fault) {
    case 'rate_limit_minute':
    case 'rate_limit_day': {
      const perDay = fault === 'rate_limit_day';
      if (codeAssist) return codeAssistRateLimited({ model, perDay, retryDelay, quotaResetTimeStamp });
      return rateLimited({ model, perDay, project, retryDelay: retryDelay ?? (perDay ? DEFAULT_DAY_DELAY : DEFAULT_MINUTE_DELAY) });
    }
    case 'key_invalid':
      return codeAssist ? unauthenticated({ service: CODE_ASSIST_DOMAIN }) : apiKeyInvalid();
    case 'permission_denied':
      return codeAssist
        ? googleError(403, 'PERMISSION_DENIED', 'The caller does not have permission')
        : consumerSuspended(key);
    case 'server_500':
      return internalError();
    case 'server_503':
      return overloaded();
    case 'not_found':
      // Files and cachedContents calls name no model: their not-found is the generic one.
      return codeAssist || surface === 'files' ? entityNotFound() : modelNotFound(model, apiVersion, method);
    default:
      return internalError();
  }
}
