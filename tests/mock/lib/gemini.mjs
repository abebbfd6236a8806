// The Gemini API surface: /v1beta (and /v1) models, generation, tokens, embeddings.

import {
  invalidArgument,
  invalidPayload,
  modelNotFound,
  renderFault,
  unregisteredCaller,
} from './errors.mjs';
import { answerObjects } from './answer.mjs';
import { checkReferences } from './filestore.mjs';
import { fullResponse, newResponseId, planReply, streamChunks } from './generate.mjs';
import { pause, sendGoogleJsonStalled } from './http.mjs';
import { predictProblem, predictResponse } from './imagen.mjs';
import { findModel, modelVersionOf, publicModel, stripModelsPrefix, supports, traitsOf } from './models.mjs';
import {
  REQUEST_TYPES,
  checkBatchEmbed,
  checkContents,
  checkEmbed,
  checkGenerateContent,
  parseRequest,
} from './requests.mjs';
import { dropConnection, noteScripted, send } from './respond.mjs';
import { JSON_ARRAY, SSE, hold, writeStream } from './stream.mjs';
import { embeddingValues, mergeDetails, promptTokens, textTokens } from './tokens.mjs';

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

const MODEL_HANDLERS = {
  generateContent,
  streamGenerateContent,
  countTokens,
  embedContent,
  batchEmbedContents,
  predict,
};

/** Matches a Gemini API route: `{ action, apiVersion, model?, run }`, or null. */
export function geminiRoute(method, pathname) {
  let m = /^\/(v1beta|v1)\/models\/?$/.exec(pathname);
  if (m && method === 'GET') return { action: 'models.list', apiVersion: m[1], run: listModels };
  m = /^\/(v1beta|v1)\/models\/([^/:]+)$/.exec(pathname);
  if (m && method === 'GET') return { action: 'models.get', apiVersion: m[1], model: decodeURIComponent(m[2]), run: getModel };
  m = /^\/(v1beta|v1)\/models\/([^/:]+):([A-Za-z]+)$/.exec(pathname);
  if (m && method === 'POST' && MODEL_HANDLERS[m[3]]) {
    return { action: m[3], apiVersion: m[1], model: decodeURIComponent(m[2]), run: modelMethod };
  }
  return null;
}

/** API key from `x-goog-api-key`, else from `?key=`. */
export const apiKeyOf = (req, url) => req.headers['x-goog-api-key'] || url.searchParams.get('key') || null;

/**
 * Authentication and scripted behaviour shared by every route: returns the
 * behaviour to continue with, or null when the request was already answered.
 * `keyless` (a resumable upload's chunks, whose upload id is the
 * capability): no key is needed and key conventions do not apply, only rules
 * naming the route's action. `body` is what a flaky rule identifies the
 * request by (default: the raw body).
 */
export async function admit(ctx, route, { keyless = false, body = ctx.rawBody } = {}) {
  const { call, state } = ctx;
  if (!keyless && !call.key) {
    send(ctx, unregisteredCaller());
    return null;
  }
  const identity = keyless ? '' : undefined;
  const resolved = state.resolve({ key: call.key, identity, model: route.model, action: route.action, body });
  noteScripted(call, resolved);
  const { behaviour } = resolved;
  if (!(await pause(behaviour.latencyMs, ctx.signal))) return null;
  if (behaviour.fault === 'drop') {
    dropConnection(ctx);
    return null;
  }
  if (behaviour.fault) {
    const method = route.action.startsWith('models.') ? 'GetModel' : route.action;
    const where = { surface: route.surface ?? 'gemini', model: route.model, key: call.key, apiVersion: route.apiVersion, method };
    send(ctx, renderFault(behaviour.fault, { ...where, retryDelay: behaviour.retryDelay, project: behaviour.project }));
    return null;
  }
  return behaviour;
}

export async function handleGemini(ctx, route) {
  ctx.call.key = apiKeyOf(ctx.req, ctx.url);
  const behaviour = await admit(ctx, route);
  if (behaviour) await route.run(ctx, route, behaviour);
}

// ---------------------------------------------------------------- models

/** Page tokens are opaque: here, the base64url of the last model name served. */
function listModels(ctx) {
  const { url, catalog } = ctx;
  const requested = Number.parseInt(url.searchParams.get('pageSize') ?? '', 10);
  const pageSize = requested > 0 ? Math.min(requested, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  const token = url.searchParams.get('pageToken');
  let start = 0;
  if (token) {
    const after = catalog.findIndex((m) => m.name === Buffer.from(token, 'base64url').toString());
    if (after === -1) return send(ctx, invalidArgument('Invalid page token.'));
    start = after + 1;
  }
  const page = catalog.slice(start, start + pageSize);
  const more = start + pageSize < catalog.length;
  send(ctx, {
    status: 200,
    body: {
      models: page.map(publicModel),
      // Google omits nextPageToken entirely on the last page.
      ...(more ? { nextPageToken: Buffer.from(page.at(-1).name).toString('base64url') } : {}),
    },
  });
}

function getModel(ctx, route) {
  const id = stripModelsPrefix(route.model);
  const model = findModel(id, ctx.catalog);
  if (!model) return send(ctx, modelNotFound(id, route.apiVersion, 'GetModel'));
  send(ctx, { status: 200, body: publicModel(model) });
}

// ---------------------------------------------------------------- model methods

/** JSON parsing (Google's front end) comes before the model lookup, which comes before semantic checks. */
async function modelMethod(ctx, route, behaviour) {
  const parsed = parseRequest(REQUEST_TYPES[route.action], ctx.rawBody);
  if (parsed.violations) return send(ctx, invalidPayload(parsed.violations));
  const model = findModel(route.model, ctx.catalog);
  if (!model || !supports(model, route.action)) {
    return send(ctx, modelNotFound(route.model, route.apiVersion, route.action));
  }
  await MODEL_HANDLERS[route.action](ctx, { id: route.model, model, request: parsed.value, behaviour });
}

/** A scripted reply may sit under `reply`, or as top-level `candidates` / `promptFeedback`. */
export function scriptedReply(behaviour) {
  if (behaviour.reply) return behaviour.reply;
  if (behaviour.candidates || behaviour.promptFeedback) {
    return { candidates: behaviour.candidates, promptFeedback: behaviour.promptFeedback };
  }
  return undefined;
}

/**
 * The request's references to files and cached contents (lib/filestore.mjs),
 * checked for the calling key: `{ refusal }` (already sent) or `{ cache }`.
 * `source` has the request's contents, systemInstruction, tools, toolConfig
 * and cachedContent. Code Assist calls (`v1internal.*`) may refer to neither.
 */
export function referencesOf(ctx, source, modelId) {
  const surface = ctx.call.action.startsWith('v1internal.') ? 'codeassist' : 'gemini';
  const refs = checkReferences(ctx.state.fileStore, { key: ctx.call.key, source, modelId, baseUrl: ctx.baseUrl, surface });
  if (refs.refusal) send(ctx, refs.refusal);
  if (refs.cache) ctx.call.cachedContent = `cachedContents/${refs.cache.id}`;
  return refs;
}

/** Plans the reply for a valid request; null (already answered) when Google would reject it. */
export function plannedReply(ctx, { id, model, request, behaviour }, check = checkGenerateContent) {
  const problem = check(request, id);
  if (problem) {
    send(ctx, invalidArgument(problem));
    return null;
  }
  const { refusal, cache } = referencesOf(ctx, request, id);
  if (refusal) return null;
  const responseId = newResponseId();
  const plan = planReply({ request, modelId: id, reply: scriptedReply(behaviour), responseId, cache });
  ctx.call.tokens = plan.tokens;
  return { plan, meta: { modelVersion: modelVersionOf(model), responseId } };
}

/**
 * A scripted `answer` (see answer.mjs): the part of a long answer this call
 * gives, cut off or ending with the marker the system instruction asks for.
 */
async function answerCall(ctx, { id, model, request, behaviour }, stream) {
  const problem = checkGenerateContent(request, id);
  if (problem) return send(ctx, invalidArgument(problem));
  if (referencesOf(ctx, request, id).refusal) return;
  const meta = { modelVersion: modelVersionOf(model), responseId: newResponseId(), stream };
  const { objects, plan, tokens } = answerObjects(request, behaviour.answer, meta);
  ctx.call.tokens = tokens;
  ctx.call.answer = { from: plan.served.from, to: plan.served.to, continuation: plan.continuation !== null, finishReason: plan.finishReason ?? null };
  if (!stream) return send(ctx, { status: 200, body: objects[0] });
  await streamObjects(ctx, objects, behaviour);
}

async function generateContent(ctx, args) {
  if (args.behaviour.answer) return answerCall(ctx, args, false);
  const planned = plannedReply(ctx, args);
  if (!planned || !(await holdWhole(ctx, args.behaviour))) return;
  const body = fullResponse(planned.plan, planned.meta);
  if (args.behaviour.bodyStallMs) {
    Object.assign(ctx.call, { status: 200, response: body });
    await sendGoogleJsonStalled(ctx.res, 200, body, args.behaviour.bodyStallMs, ctx.signal);
    return;
  }
  send(ctx, { status: 200, body });
}

/**
 * `holdBeforeLast` on a non-stream answer: the whole answer is the last (and
 * only) event, so nothing is sent until the gate opens. False when the client
 * went away meanwhile.
 */
export async function holdWhole(ctx, behaviour) {
  if (!behaviour.holdBeforeLast) return true;
  return hold(behaviour.holdBeforeLast, ctx.call, ctx.state, ctx.signal);
}

async function streamGenerateContent(ctx, args) {
  if (args.behaviour.answer) return answerCall(ctx, args, true);
  const planned = plannedReply(ctx, args);
  if (!planned) return;
  const objects = args.behaviour.chunks ?? streamChunks(planned.plan, planned.meta);
  await streamObjects(ctx, objects, args.behaviour);
}

/** Streams as SSE when `alt=sse`, else as Google's incrementally written JSON array. */
export async function streamObjects(ctx, objects, behaviour) {
  const { call } = ctx;
  call.chunks = objects;
  const lastUsage = objects.at(-1)?.usageMetadata ?? objects.at(-1)?.response?.usageMetadata;
  if (behaviour.chunks && lastUsage) call.tokens = tokensFromUsage(lastUsage);
  const framing = ctx.url.searchParams.get('alt') === 'sse' ? SSE : JSON_ARRAY;
  await writeStream({ res: ctx.res, framing, objects, behaviour, call, state: ctx.state, signal: ctx.signal });
}

const tokensFromUsage = (u) => ({
  prompt: u.promptTokenCount ?? 0,
  candidates: u.candidatesTokenCount ?? 0,
  thoughts: u.thoughtsTokenCount ?? 0,
  total: u.totalTokenCount ?? 0,
});

/**
 * countTokens takes either `contents` or a whole `generateContentRequest`
 * (then system instruction, tools and a cached content count too).
 */
function countTokens(ctx, { id, request }) {
  const inner = request.generateContentRequest;
  let problem;
  if (inner) {
    problem = inner.model
      ? checkContents(inner, 'CountTokensRequest.generate_content_request')
      : '* CountTokensRequest.generate_content_request.model: unexpected model name format\n';
  } else {
    problem = checkContents(request, 'CountTokensRequest');
  }
  if (problem) return send(ctx, invalidArgument(problem));
  const source = inner ?? { contents: request.contents };
  const { refusal, cache } = referencesOf(ctx, source, inner ? stripModelsPrefix(inner.model) : id);
  if (refusal) return;
  send(ctx, { status: 200, body: countTokensBody(ctx, source, cache) });
}

/** `cache`: the cached content the request uses; its tokens are part of the prompt, and reported apart too. */
export function countTokensBody(ctx, source, cache = null) {
  const { total, details } = promptTokens(source);
  const cached = cache?.tokens ?? 0;
  const all = mergeDetails(details, cache?.details ?? []);
  ctx.call.tokens = { prompt: total + cached, candidates: 0, thoughts: 0, total: total + cached, ...(cache ? { cached } : {}) };
  return {
    totalTokens: total + cached,
    ...(cache ? { cachedContentTokenCount: cached } : {}),
    ...(all.length ? { promptTokensDetails: all } : {}),
    ...(cache?.details.length ? { cacheTokensDetails: cache.details } : {}),
  };
}

// ---------------------------------------------------------------- embeddings

const contentText = (content) => (content?.parts ?? []).map((p) => p.text ?? '').join(' ');

/** Full-size vectors by default; outputDimensionality truncates (never beyond the default size). */
function embedding(id, request) {
  const full = traitsOf(id).embeddingDimensions;
  const dims = request.outputDimensionality > 0 ? Math.min(request.outputDimensionality, full) : full;
  return { values: embeddingValues(contentText(request.content), dims, dims === full) };
}

function embedContent(ctx, { id, request }) {
  const problem = checkEmbed(request);
  if (problem) return send(ctx, invalidArgument(problem));
  const prompt = textTokens(contentText(request.content));
  ctx.call.tokens = { prompt, candidates: 0, thoughts: 0, total: prompt };
  send(ctx, { status: 200, body: { embedding: embedding(id, request) } });
}

function batchEmbedContents(ctx, { id, request }) {
  const problem = checkBatchEmbed(request, id);
  if (problem) return send(ctx, invalidArgument(problem));
  const prompt = request.requests.reduce((sum, r) => sum + textTokens(contentText(r.content)), 0);
  ctx.call.tokens = { prompt, candidates: 0, thoughts: 0, total: prompt };
  send(ctx, { status: 200, body: { embeddings: request.requests.map((r) => embedding(id, r)) } });
}

// ---------------------------------------------------------------- Imagen

/** `:predict` on an Imagen model: `sampleCount` PNGs (see imagen.mjs). */
function predict(ctx, { request }) {
  const problem = predictProblem(request);
  if (problem) return send(ctx, invalidArgument(problem));
  ctx.call.tokens = { prompt: 0, candidates: 0, thoughts: 0, total: 0 };
  send(ctx, { status: 200, body: predictResponse(request) });
}
