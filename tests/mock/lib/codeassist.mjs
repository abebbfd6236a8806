// The Code Assist surface used by Gemini CLI (cloudcode-pa.googleapis.com/v1internal).
// Requests wrap a GenerateContentRequest in `{ model, project, user_prompt_id, request }`;
// responses wrap a GenerateContentResponse in `{ response, traceId }`.

import { randomBytes } from 'node:crypto';
import { entityNotFound, invalidArgument, invalidPayload, renderFault } from './errors.mjs';
import { countTokensBody, plannedReply, streamObjects } from './gemini.mjs';
import { fullResponse, streamChunks } from './generate.mjs';
import { pause } from './http.mjs';
import { findModel, stripModelsPrefix } from './models.mjs';
import { accountOf, bearerOf, checkBearer, slugOf } from './oauth.mjs';
import { REQUEST_TYPES, checkContents, parseRequest } from './requests.mjs';
import { dropConnection, noteScripted, send } from './respond.mjs';

const SERVICE = 'cloudcode-pa.googleapis.com';
const METHODS = { generateContent, streamGenerateContent, countTokens, loadCodeAssist, onboardUser };

const FREE_TIER = {
  id: 'free-tier',
  name: 'Gemini Code Assist for individuals',
  description: 'Gemini Code Assist for individuals',
  userDefinedCloudaicompanionProject: false,
  privacyNotice: { showNotice: false },
};
const STANDARD_TIER = {
  id: 'standard-tier',
  name: 'Gemini Code Assist',
  description: 'Unlimited coding assistant with the most powerful Gemini models',
  userDefinedCloudaicompanionProject: true,
  privacyNotice: {},
};

export function codeAssistRoute(method, pathname) {
  const m = /^\/v1internal:([A-Za-z]+)$/.exec(pathname);
  if (!m || method !== 'POST' || !METHODS[m[1]]) return null;
  return { action: `v1internal.${m[1]}`, method: m[1] };
}

/** The model an envelope names (countTokens nests it, with a "models/" prefix). */
function envelopeModel(body) {
  const model = body?.model ?? body?.request?.model;
  return model ? stripModelsPrefix(model) : null;
}

export async function handleCodeAssist(ctx, route) {
  const { call, state, req } = ctx;
  const rpc = `google.internal.cloud.code.v1internal.CloudCode.${route.method[0].toUpperCase()}${route.method.slice(1)}`;
  call.key = bearerOf(req);
  const { grant, problem } = checkBearer(state, req.headers.authorization, SERVICE, rpc);
  if (problem) return send(ctx, problem);
  call.account = grant.refreshToken;
  call.model = envelopeModel(call.body);
  call.project = call.body?.project ?? null;
  const resolved = state.resolve({
    key: call.key,
    account: grant.refreshToken,
    identity: slugOf(grant.refreshToken),
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
  await METHODS[route.method](ctx, { route, grant, behaviour });
}

/** Parses and checks the envelope; returns `{ id, model, request }` or null when answered. */
function admitGeneration(ctx, route) {
  const parsed = parseRequest(REQUEST_TYPES[route.action], ctx.rawBody);
  if (parsed.violations) {
    send(ctx, invalidPayload(parsed.violations));
    return null;
  }
  const id = envelopeModel(parsed.value);
  const model = id && findModel(id, ctx.catalog);
  if (!model || !model.supportedGenerationMethods.includes('generateContent')) {
    send(ctx, entityNotFound());
    return null;
  }
  return { id, model, envelope: parsed.value };
}

const traceId = () => randomBytes(8).toString('hex');

function generateContent(ctx, { route, behaviour }) {
  const admitted = admitGeneration(ctx, route);
  if (!admitted) return;
  const planned = plannedReply(ctx, { ...admitted, request: admitted.envelope.request ?? {}, behaviour });
  if (!planned) return;
  send(ctx, { status: 200, body: { response: fullResponse(planned.plan, planned.meta), traceId: traceId() } });
}

async function streamGenerateContent(ctx, { route, behaviour }) {
  const admitted = admitGeneration(ctx, route);
  if (!admitted) return;
  const planned = plannedReply(ctx, { ...admitted, request: admitted.envelope.request ?? {}, behaviour });
  if (!planned) return;
  const trace = traceId();
  const chunks = behaviour.chunks ?? streamChunks(planned.plan, planned.meta);
  await streamObjects(ctx, chunks.map((response) => ({ response, traceId: trace })), behaviour);
}

function countTokens(ctx, { route }) {
  const admitted = admitGeneration(ctx, route);
  if (!admitted) return;
  const inner = admitted.envelope.request ?? {};
  const problem = checkContents(inner, 'CountTokensRequest');
  if (problem) return send(ctx, invalidArgument(problem));
  const { totalTokens } = countTokensBody(ctx, inner);
  send(ctx, { status: 200, body: { totalTokens } });
}

/**
 * Accounts whose refresh token slug starts with "new-" are not onboarded
 * until onboardUser is called; every other account is a free-tier user
 * with project `mock-project-<slug>`.
 */
function onboarded(ctx, grant) {
  const slug = slugOf(grant.refreshToken);
  return !slug.startsWith('new-') || ctx.state.oauth.onboarded.has(grant.refreshToken);
}

function loadCodeAssist(ctx, { grant }) {
  const account = accountOf(grant.refreshToken);
  const allowedTiers = [{ ...FREE_TIER, isDefault: true }, STANDARD_TIER];
  const body = onboarded(ctx, grant)
    ? {
        currentTier: FREE_TIER,
        allowedTiers,
        cloudaicompanionProject: account.project,
        gcpManaged: false,
        manageSubscriptionUri: 'https://accounts.google.com/AccountChooser',
      }
    : { allowedTiers, gcpManaged: false };
  send(ctx, { status: 200, body });
}

/** Onboarding completes at once: the long-running operation comes back done. */
function onboardUser(ctx, { grant }) {
  ctx.state.oauth.onboarded.add(grant.refreshToken);
  const account = accountOf(grant.refreshToken);
  send(ctx, {
    status: 200,
    body: {
      name: `operations/mock-onboard-${account.id}`,
      done: true,
      response: {
        '@type': 'type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse',
        cloudaicompanionProject: { id: account.project, name: account.project },
      },
    },
  });
}
