// The Code Assist surface used by Gemini CLI (cloudcode-pa.googleapis.com/v1internal).
// Requests wrap a GenerateContentRequest in `{ model, project, user_prompt_id, request }`;
// responses wrap a GenerateContentResponse in `{ response, traceId }`.
//
// Every account is in one of the states of lib/accounts.mjs (from its slug,
// or a rule's `account` field). The setup methods (loadCodeAssist,
// onboardUser, getOperation) answer by that state; generation is refused
// with a 403 until the account is ready, and must name the account's project.

import { randomBytes } from 'node:crypto';
import {
  CLIENT_UNSUPPORTED_MESSAGE,
  INELIGIBLE_MESSAGE,
  NO_LICENSE_MESSAGE,
  SUBSCRIPTION_MESSAGE,
  VALIDATION_LEARN_MORE_URL,
  VALIDATION_MESSAGE,
  accountView,
  dailyLimitOfSlug,
  loadCodeAssistBody,
  nextLaMidnight,
  operationBody,
  pollsOfSlug,
  quotaBuckets,
  rfc3339,
  stateOfSlug,
  validationUrl,
} from './accounts.mjs';
import {
  codeAssistForbidden,
  codeAssistRateLimited,
  entityNotFound,
  invalidArgument,
  invalidPayload,
  projectPermissionDenied,
  renderFault,
  validationRequired,
} from './errors.mjs';
import { countTokensBody, holdWhole, plannedReply, referencesOf, streamObjects } from './gemini.mjs';
import { fullResponse, streamChunks } from './generate.mjs';
import { pause } from './http.mjs';
import { findModel, stripModelsPrefix } from './models.mjs';
import { accountOf, bearerOf, checkBearer, slugOf } from './oauth.mjs';
import { REQUEST_TYPES, checkContents, parseRequest } from './requests.mjs';
import { dropConnection, noteScripted, send } from './respond.mjs';

const SERVICE = 'cloudcode-pa.googleapis.com';
const METHODS = {
  generateContent,
  streamGenerateContent,
  countTokens,
  loadCodeAssist,
  onboardUser,
  retrieveUserQuota,
  getOperation,
};
/** Methods reached as `POST /v1internal:<method>`; getOperation is `GET /v1internal/operations/<id>`. */
const POST_METHODS = new Set(Object.keys(METHODS).filter((m) => m !== 'getOperation'));

export function codeAssistRoute(method, pathname) {
  const op = /^\/v1internal\/operations\/([^/]+)$/.exec(pathname);
  if (op) return method === 'GET' ? { action: 'v1internal.getOperation', method: 'getOperation', operation: op[1] } : null;
  const m = /^\/v1internal:([A-Za-z]+)$/.exec(pathname);
  if (!m || method !== 'POST' || !POST_METHODS.has(m[1])) return null;
  return { action: `v1internal.${m[1]}`, method: m[1] };
}

/** The model an envelope names (countTokens nests it, with a "models/" prefix). */
function envelopeModel(body) {
  const model = body?.model ?? body?.request?.model;
  return typeof model === 'string' && model ? stripModelsPrefix(model) : null;
}

export async function handleCodeAssist(ctx, route) {
  const { call, state, req } = ctx;
  const rpc = `google.internal.cloud.code.v1internal.CloudCode.${route.method[0].toUpperCase()}${route.method.slice(1)}`;
  call.key = bearerOf(req);
  const { grant, problem } = checkBearer(state, req.headers.authorization, SERVICE, rpc);
  if (problem) return send(ctx, problem);
  call.account = grant.refreshToken;
  call.model = envelopeModel(call.body);
  call.project = typeof call.body?.project === 'string' ? call.body.project : null;
  const slug = slugOf(grant.refreshToken);
  const resolved = state.resolve({
    key: call.key,
    account: grant.refreshToken,
    identity: slug,
    model: call.model,
    action: route.action,
    body: ctx.rawBody,
  });
  noteScripted(call, resolved);
  const { behaviour } = resolved;
  if (!(await pause(behaviour.latencyMs, ctx.signal))) return;
  if (behaviour.fault === 'drop') return dropConnection(ctx);
  if (behaviour.fault) {
    return send(
      ctx,
      renderFault(behaviour.fault, {
        surface: 'codeassist',
        model: call.model,
        retryDelay: behaviour.retryDelay,
        quotaResetTimeStamp: behaviour.quotaResetTimeStamp,
      }),
    );
  }
  const accountState = behaviour.account ?? stateOfSlug(slug);
  call.accountState = accountState;
  // Free individual accounts are refused on every method, whatever they send.
  if (accountState === 'free') return send(ctx, codeAssistForbidden(CLIENT_UNSUPPORTED_MESSAGE));
  const view = accountView(state.accounts, {
    refreshToken: grant.refreshToken,
    slug,
    state: accountState,
    defaultProject: accountOf(grant.refreshToken).project,
  });
  await METHODS[route.method](ctx, { route, grant, behaviour, view });
}

/** Parses the body as the method's request message; sends the 400 and returns null when it is not one. */
function parsed(ctx, route) {
  const result = parseRequest(REQUEST_TYPES[route.action], ctx.rawBody);
  if (result.violations) {
    send(ctx, invalidPayload(result.violations));
    return null;
  }
  return result.value;
}

/** The 403 for an account that may not generate yet (or ever), or null when it may. */
function refusal(view) {
  if (view.ready) return null;
  switch (view.state) {
    case 'ineligible':
      return codeAssistForbidden(INELIGIBLE_MESSAGE);
    case 'validation_required':
      return validationRequired({ message: VALIDATION_MESSAGE, url: validationUrl(view.slug), learnMoreUrl: VALIDATION_LEARN_MORE_URL });
    case 'subscription_required':
      return codeAssistForbidden(SUBSCRIPTION_MESSAGE);
    default: // not onboarded yet, or a Workspace account without its project
      return codeAssistForbidden(NO_LICENSE_MESSAGE);
  }
}

/** Sends the 403 when the account may not use `project`; returns whether it was refused. */
function refusedProject(ctx, view, project) {
  const denied = refusal(view) ?? (project === view.project ? null : projectPermissionDenied(project ?? ''));
  if (denied) send(ctx, denied);
  return Boolean(denied);
}

/**
 * Parses and checks a generation envelope: the account's state, then its
 * project (countTokens carries none), then the model. Returns
 * `{ id, model, envelope }`, or null when already answered.
 */
function admitGeneration(ctx, route, view) {
  const envelope = parsed(ctx, route);
  if (!envelope) return null;
  if (route.method === 'countTokens') {
    const denied = refusal(view);
    if (denied) return void send(ctx, denied);
  } else if (refusedProject(ctx, view, envelope.project)) {
    return null;
  }
  const id = envelopeModel(envelope);
  const model = id && findModel(id, ctx.catalog);
  if (!model || !model.supportedGenerationMethods.includes('generateContent')) {
    send(ctx, entityNotFound());
    return null;
  }
  return { id, model, envelope };
}

/** The daily per-model limit (`-limit<N>-`): a QUOTA_EXHAUSTED 429 once used up, reset at midnight Pacific. */
function overDailyLimit(ctx, grant, modelId) {
  const { state, call } = ctx;
  const limit = dailyLimitOfSlug(slugOf(grant.refreshToken));
  if (state.accounts.used(grant.refreshToken, modelId) < limit) return false;
  call.fault = 'rate_limit_day';
  send(ctx, codeAssistRateLimited({ model: modelId, perDay: true, quotaResetTimeStamp: rfc3339(nextLaMidnight()) }));
  return true;
}

/** Plans the reply of a generate or stream call; null when already answered. Counts the request against the quota. */
function plannedGeneration(ctx, { route, grant, behaviour, view }) {
  const admitted = admitGeneration(ctx, route, view);
  if (!admitted || overDailyLimit(ctx, grant, admitted.id)) return null;
  const planned = plannedReply(ctx, { ...admitted, request: admitted.envelope.request ?? {}, behaviour });
  if (planned) ctx.state.accounts.count(grant.refreshToken, admitted.id);
  return planned;
}

const traceId = () => randomBytes(8).toString('hex');

async function generateContent(ctx, args) {
  const planned = plannedGeneration(ctx, args);
  if (!planned || !(await holdWhole(ctx, args.behaviour))) return;
  send(ctx, { status: 200, body: { response: fullResponse(planned.plan, planned.meta), traceId: traceId() } });
}

async function streamGenerateContent(ctx, args) {
  const planned = plannedGeneration(ctx, args);
  if (!planned) return;
  const trace = traceId();
  const chunks = args.behaviour.chunks ?? streamChunks(planned.plan, planned.meta);
  await streamObjects(ctx, chunks.map((response) => ({ response, traceId: trace })), args.behaviour);
}

function countTokens(ctx, { route, view }) {
  const admitted = admitGeneration(ctx, route, view);
  if (!admitted) return;
  const inner = admitted.envelope.request ?? {};
  const problem = checkContents(inner, 'CountTokensRequest');
  if (problem) return send(ctx, invalidArgument(problem));
  // Code Assist has no Files API: a reference to one is refused.
  if (referencesOf(ctx, inner, admitted.id).refusal) return;
  const { totalTokens } = countTokensBody(ctx, inner);
  send(ctx, { status: 200, body: { totalTokens } });
}

/** The project a setup request names, in `cloudaicompanionProject` or `metadata.duetProject`. */
const requestedProject = (body) => body.cloudaicompanionProject || body.metadata?.duetProject || null;

function loadCodeAssist(ctx, { route, view }) {
  const body = parsed(ctx, route);
  if (!body) return;
  const requested = requestedProject(body);
  ctx.call.project = requested;
  send(ctx, { status: 200, body: loadCodeAssistBody(view, requested) });
}

/**
 * Onboarding. A ready account gets a done operation with its project. A
 * `not_onboarded` account gets a pending operation that getOperation
 * completes on its N-th poll (`new-poll<N>-`, default 2), with the project
 * the request names or `mock-project-<slug>`. A Workspace account
 * (`project_required`) is done at once, with the project it named (then
 * onboarded under it) or with none. Ineligible and subscription accounts get
 * a done operation without a project; validation is refused with its 403.
 */
function onboardUser(ctx, { route, grant, view }) {
  const body = parsed(ctx, route);
  if (!body) return;
  const { accounts } = ctx.state;
  const requested = requestedProject(body);
  ctx.call.project = requested;
  const done = (project) => ({ name: `operations/onboard-${randomBytes(8).toString('hex')}`, done: true, project });
  let op;
  switch (view.state) {
    case 'validation_required':
      return send(ctx, refusal(view));
    case 'ineligible':
    case 'subscription_required':
      op = done(null);
      break;
    case 'project_required':
      if (requested) accounts.onboard(grant.refreshToken, requested);
      op = done(requested);
      break;
    case 'not_onboarded':
      if (view.ready) op = done(view.project);
      else {
        const slug = slugOf(grant.refreshToken);
        op = accounts.startOperation(grant.refreshToken, {
          needed: pollsOfSlug(slug),
          project: requested ?? accountOf(grant.refreshToken).project,
        });
        // `new-poll0-`: nothing to wait for.
        if (op.needed === 0) accounts.poll(op.name.slice('operations/'.length));
      }
      break;
    default:
      op = done(view.project);
  }
  ctx.call.operation = { name: op.name, done: op.done };
  send(ctx, { status: 200, body: operationBody(op) });
}

/** GET /v1internal/operations/<id>: counts a poll of one of this account's operations. */
function getOperation(ctx, { route, grant }) {
  const { accounts } = ctx.state;
  const known = accounts.operations.get(route.operation);
  if (!known || known.refreshToken !== grant.refreshToken) return send(ctx, entityNotFound());
  const op = accounts.poll(route.operation);
  ctx.call.operation = { name: op.name, polls: op.polls, done: op.done };
  send(ctx, { status: 200, body: operationBody(op) });
}

/** retrieveUserQuota: one REQUESTS bucket per Code Assist model, falling as the account generates. */
function retrieveUserQuota(ctx, { route, grant, view }) {
  const body = parsed(ctx, route);
  if (!body) return;
  ctx.call.project = body.project ?? null;
  if (refusedProject(ctx, view, body.project)) return;
  const limit = dailyLimitOfSlug(slugOf(grant.refreshToken));
  send(ctx, { status: 200, body: { buckets: quotaBuckets(ctx.state.accounts, { refreshToken: grant.refreshToken, limit }) } });
}
