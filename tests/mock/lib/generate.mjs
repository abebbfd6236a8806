// Builds GenerateContentResponses: the default echo reply, scripted replies,
// usage metadata, and the split of a reply into stream chunks.

import { createHash, randomBytes } from 'node:crypto';
import { openApiToJsonSchema, schemaInstance } from './instance.mjs';
import { logprobsFor } from './logprobs.mjs';
import { traitsOf } from './models.mjs';
import { mediaCandidates } from './imagen.mjs';
import { mergeDetails, partsTokens, promptTokens, textTokens } from './tokens.mjs';

export const newResponseId = () => randomBytes(16).toString('base64url').slice(0, 22);

/**
 * Plans a reply: `{ candidates, thoughtParts, usage, promptFeedback, tokens, logprobs }`.
 * `candidates[i]` is `{ parts, finishReason, index }` without thought parts;
 * `thoughtParts` (shown only when includeThoughts) lead every candidate;
 * `logprobs` is the number of top candidates when responseLogprobs is on.
 * `cache` (`{ tokens, details }`): the cached content the request uses. As
 * Google counts it, its tokens are part of `promptTokenCount` and are also
 * reported as `cachedContentTokenCount` (with `cacheTokensDetails`).
 */
export function planReply({ request, modelId, reply, responseId, cache = null }) {
  const own = promptTokens(request);
  const prompt = cache
    ? { total: own.total + cache.tokens, details: mergeDetails(own.details, cache.details) }
    : own;
  const thinking = planThinking(request, modelId);
  const scripted = normalizeScripted(reply);
  const candidates = scripted
    ? scripted.candidates
    : mediaCandidates(request, modelId) ?? echoCandidates(request, modelId, responseId);
  const candidatesTokens = candidates.reduce((sum, c) => sum + partsTokens(c.parts), 0);
  const thoughts = candidates.length ? thinking.tokens : 0;
  const usage = {
    promptTokenCount: prompt.total,
    ...(candidates.length ? { candidatesTokenCount: candidatesTokens } : {}),
    totalTokenCount: prompt.total + candidatesTokens + thoughts,
    ...(cache ? { cachedContentTokenCount: cache.tokens } : {}),
    ...(prompt.details.length ? { promptTokensDetails: prompt.details } : {}),
    ...(cache?.details.length ? { cacheTokensDetails: cache.details } : {}),
    // Google reports thoughtsTokenCount whenever a 2.5/3 model thought, even if thoughts are not returned.
    ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
    ...scripted?.usageMetadata,
  };
  const config = request.generationConfig ?? {};
  return {
    candidates,
    thoughtParts: thinking.include && candidates.length ? thinking.parts : [],
    logprobs: config.responseLogprobs === true ? config.logprobs ?? 0 : undefined,
    promptFeedback: scripted?.promptFeedback,
    usage,
    tokens: {
      prompt: usage.promptTokenCount,
      candidates: usage.candidatesTokenCount ?? 0,
      thoughts: usage.thoughtsTokenCount ?? 0,
      total: usage.totalTokenCount,
      ...(cache ? { cached: usage.cachedContentTokenCount ?? 0 } : {}),
    },
  };
}

// ---------------------------------------------------------------- echo

/** The text of the last user turn, parts joined; non-text parts described in brackets. */
export function lastUserText(request) {
  const last = (request.contents ?? []).findLast((c) => c.role !== 'model');
  const parts = last?.parts ?? [];
  const texts = parts.filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text);
  return texts.length ? texts.join('') : parts.map(describePart).join(' ');
}

function describePart(part) {
  if (part.inlineData) return `[inlineData ${part.inlineData.mimeType ?? ''}]`.replace(' ]', ']');
  if (part.fileData) return `[fileData ${part.fileData.fileUri ?? ''}]`;
  if (part.functionResponse) return `[functionResponse ${part.functionResponse.name ?? ''}]`;
  if (part.functionCall) return `[functionCall ${part.functionCall.name ?? ''}]`;
  return '[part]';
}

function echoCandidates(request, modelId, responseId) {
  const config = request.generationConfig ?? {};
  const count = Math.max(1, config.candidateCount ?? 1);
  const userText = lastUserText(request);
  const tools = builtInTools(request);
  return Array.from({ length: count }, (_, index) => {
    const text = replyText(config, index > 0 ? `${userText} [${index}]` : userText);
    const { text: clipped, finishReason } = applyStops(text, config);
    const part = { text: clipped };
    // Gemini 3 signs its replies; the signature rides on the text part.
    if (traitsOf(modelId).thoughtSignatures) part.thoughtSignature = signature(responseId, index);
    const parts = tools.codeExecution ? [part, ...CODE_EXECUTION_PARTS] : [part];
    return {
      parts,
      finishReason,
      index,
      ...(tools.googleSearch ? { groundingMetadata: groundingFor(parts, userText) } : {}),
      ...(tools.urlContext ? { urlContextMetadata: urlContextFor(userText) } : {}),
    };
  });
}

// ---------------------------------------------------------------- built-in tools

/** Which built-in tools the request enables (either spelling, as Google's parser takes both). */
function builtInTools(request) {
  const has = (camel, snake) => (request.tools ?? []).some((t) => t && (t[camel] ?? t[snake]) != null);
  return {
    googleSearch: has('googleSearch', 'google_search'),
    codeExecution: has('codeExecution', 'code_execution'),
    urlContext: has('urlContext', 'url_context'),
  };
}

/** What a model with the codeExecution tool adds after its answer: the code it ran, the result, a remark. */
export const CODE_EXECUTION_PARTS = Object.freeze([
  { executableCode: { language: 'PYTHON', code: 'print(6 * 7)' } },
  { codeExecutionResult: { outcome: 'OUTCOME_OK', output: '42\n' } },
  { text: 'The code printed 42.' },
]);

/** The web sources every grounded answer cites. */
export const GROUNDING_SOURCES = Object.freeze([
  { uri: 'https://vertexaisearch.cloud.google.com/grounding-api-redirect/mock-source-1', title: 'source-one.example' },
  { uri: 'https://vertexaisearch.cloud.google.com/grounding-api-redirect/mock-source-2', title: 'source-two.example' },
]);

/**
 * Google Search grounding for an answer: the first half of the answer text
 * (in code points) cites source 1, the second half sources 2 and 1. Segment
 * indices are UTF-8 byte offsets into the candidate's text (its text parts
 * joined), `startIndex` left out when 0, as protobuf JSON drops defaults.
 */
export function groundingFor(parts, query) {
  const text = answerText(parts);
  const chars = [...text];
  const mid = Math.ceil(chars.length / 2);
  const segment = (from, to) => {
    const before = chars.slice(0, from).join('');
    const cited = chars.slice(from, to).join('');
    const start = Buffer.byteLength(before);
    return { ...(start ? { startIndex: start } : {}), endIndex: start + Buffer.byteLength(cited), text: cited };
  };
  const supports = [];
  if (mid > 0) supports.push({ segment: segment(0, mid), groundingChunkIndices: [0] });
  if (chars.length > mid) supports.push({ segment: segment(mid, chars.length), groundingChunkIndices: [1, 0] });
  return {
    searchEntryPoint: { renderedContent: `<div class="mock-search-entry">${query.replace(/[<>&]/g, '')}</div>` },
    groundingChunks: GROUNDING_SOURCES.map((web) => ({ web: { ...web } })),
    groundingSupports: supports,
    webSearchQueries: [query],
  };
}

/** URL context: every http(s) URL in the user text was retrieved. */
function urlContextFor(userText) {
  const urls = userText.match(/https?:\/\/[^\s"'<>]+/g) ?? [];
  return { urlMetadata: urls.map((retrievedUrl) => ({ retrievedUrl, urlRetrievalStatus: 'URL_RETRIEVAL_STATUS_SUCCESS' })) };
}

/**
 * The unscripted reply for one candidate. JSON mode answers with JSON (an
 * instance of the response schema when there is one) so clients that parse
 * the reply can; text/x.enum answers with the first enum value.
 */
function replyText(config, userText) {
  const { responseMimeType: mime, responseSchema, responseJsonSchema } = config;
  if (mime === 'text/x.enum') return String((responseJsonSchema ?? responseSchema).enum[0]);
  if (mime !== 'application/json') return `echo: ${userText}`;
  if (responseJsonSchema === undefined && responseSchema === undefined) return JSON.stringify({ echo: userText });
  const schema = responseJsonSchema ?? openApiToJsonSchema(responseSchema);
  return JSON.stringify(schemaInstance(schema, { echo: `echo: ${userText}` }));
}

/** stopSequences cut the reply (finishReason stays STOP); maxOutputTokens truncates with MAX_TOKENS. */
function applyStops(text, { stopSequences = [], maxOutputTokens }) {
  let out = text;
  for (const stop of stopSequences) {
    const at = stop ? out.indexOf(stop) : -1;
    if (at !== -1) out = out.slice(0, at);
  }
  if (maxOutputTokens > 0 && textTokens(out) > maxOutputTokens) {
    return { text: [...out].slice(0, maxOutputTokens * 4).join(''), finishReason: 'MAX_TOKENS' };
  }
  return { text: out, finishReason: 'STOP' };
}

function signature(responseId, index) {
  return createHash('sha256').update(`mock-thought-signature:${responseId}:${index}`).digest('base64');
}

// ---------------------------------------------------------------- thinking

/** How much a Gemini 3 thinking level scales the thought tokens (unset = MEDIUM's 1). */
const LEVEL_FACTORS = { MINIMAL: 0.25, LOW: 0.5, MEDIUM: 1, HIGH: 2 };

/**
 * Whether the model thinks for this request, and the thought it "had".
 * 2.5 models think by default (Flash-Lite only on request); a budget of 0
 * switches thinking off where the model allows it; a thinking level scales
 * the thought tokens; a positive budget caps them.
 */
function planThinking(request, modelId) {
  const traits = traitsOf(modelId);
  const config = request.generationConfig?.thinkingConfig ?? {};
  const budget = config.thinkingBudget;
  const thinks =
    traits.thinking &&
    (traits.alwaysThinks || (budget === undefined ? traits.thinksByDefault : budget !== 0));
  if (!thinks) return { tokens: 0, include: false, parts: [] };
  const text = `**Reading the request**\n\nThe user wrote: "${lastUserText(request)}". I will echo it back.`;
  const scaled = Math.ceil(textTokens(text) * (LEVEL_FACTORS[config.thinkingLevel] ?? 1));
  const tokens = budget > 0 ? Math.min(budget, scaled) : scaled;
  return { tokens, include: config.includeThoughts === true, parts: [{ text, thought: true }] };
}

// ---------------------------------------------------------------- scripted replies

/**
 * A scripted `reply` is `{ parts, finishReason?, usageMetadata? }`,
 * `{ text }` (shorthand for one text part), `{ candidates: [...] }` (raw),
 * or `{ promptFeedback }` without candidates (a blocked prompt).
 */
function normalizeScripted(reply) {
  if (!reply) return null;
  let candidates = [];
  if (Array.isArray(reply.candidates)) {
    candidates = reply.candidates.map((c, index) => ({
      ...c,
      parts: c.content?.parts ?? c.parts ?? [],
      finishReason: c.finishReason,
      index: c.index ?? index,
    }));
  } else if (reply.parts || typeof reply.text === 'string') {
    candidates = [{ parts: reply.parts ?? [{ text: reply.text }], finishReason: reply.finishReason ?? 'STOP', index: 0 }];
  }
  return { candidates, promptFeedback: reply.promptFeedback, usageMetadata: reply.usageMetadata };
}

// ---------------------------------------------------------------- wire shapes

/** Orders fields the way Google does: candidates, promptFeedback, usageMetadata, modelVersion, responseId. */
function response({ candidates, promptFeedback, usage, modelVersion, responseId }) {
  return {
    ...(candidates?.length ? { candidates } : {}),
    ...(promptFeedback ? { promptFeedback } : {}),
    usageMetadata: usage,
    modelVersion,
    responseId,
  };
}

/**
 * A Candidate; raw scripted candidates keep their extra fields (safetyRatings,
 * their own logprobsResult, ...). With `logprobs` (the number of top
 * candidates) the answer text of `parts` gets avgLogprobs and logprobsResult.
 */
function candidateJson({ parts, finishReason, index, content: _raw, ...extra }, leadingParts = [], logprobs = undefined) {
  const scored = logprobs === undefined || 'logprobsResult' in extra ? null : logprobsFor(answerText(parts), logprobs);
  return {
    content: { parts: [...leadingParts, ...parts], role: 'model' },
    ...(finishReason ? { finishReason } : {}),
    ...extra,
    ...scored,
    index,
  };
}

const answerText = (parts) => parts.filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text).join('');

/** The non-streamed GenerateContentResponse. */
export function fullResponse(plan, { modelVersion, responseId }) {
  return response({
    candidates: plan.candidates.map((c) => candidateJson(c, plan.thoughtParts, plan.logprobs)),
    promptFeedback: plan.promptFeedback,
    usage: plan.usage,
    modelVersion,
    responseId,
  });
}

/**
 * Stream chunks. Thoughts come first, text is split into at least three
 * pieces, other parts travel whole. Chunks before the last carry usage with
 * the prompt count only; the last carries finishReason and the full usage.
 */
export function streamChunks(plan, { modelVersion, responseId }) {
  const meta = { modelVersion, responseId };
  if (plan.candidates.length === 0) return [response({ promptFeedback: plan.promptFeedback, usage: plan.usage, ...meta })];
  const pieces = plan.candidates.map((c) => [...plan.thoughtParts, ...c.parts.flatMap(splitPart)]);
  const count = Math.max(...pieces.map((p) => p.length), 1);
  const { cachedContentTokenCount, promptTokensDetails, cacheTokensDetails } = plan.usage;
  const promptOnly = {
    promptTokenCount: plan.usage.promptTokenCount,
    totalTokenCount: plan.usage.promptTokenCount,
    ...(cachedContentTokenCount !== undefined ? { cachedContentTokenCount } : {}),
    ...(promptTokensDetails ? { promptTokensDetails } : {}),
    ...(cacheTokensDetails ? { cacheTokensDetails } : {}),
  };
  return Array.from({ length: count }, (_, k) => {
    const last = k === count - 1;
    const candidates = plan.candidates
      .map((c, i) => ({ c, part: pieces[i][k] }))
      .filter(({ part }) => part || last)
      .map(({ c: { groundingMetadata, urlContextMetadata, ...c }, part }) =>
        candidateJson(
          {
            ...c,
            parts: [part ?? { text: '' }],
            finishReason: last ? c.finishReason : undefined,
            // Grounding and URL context metadata come with the last event, as Google sends them.
            ...(last && groundingMetadata ? { groundingMetadata } : {}),
            ...(last && urlContextMetadata ? { urlContextMetadata } : {}),
          },
          [],
          plan.logprobs,
        ),
      );
    return response({ candidates, promptFeedback: last ? plan.promptFeedback : undefined, usage: last ? plan.usage : promptOnly, ...meta });
  });
}

/** Splits a text part into pieces (at least 3 when it has 3+ characters); the signature stays on the last piece. */
function splitPart(part) {
  if (typeof part.text !== 'string' || part.thought) return [part];
  const chars = [...part.text];
  const n = Math.min(chars.length, Math.max(3, Math.ceil(chars.length / 40)));
  if (n <= 1) return [part];
  const { thoughtSignature, ...rest } = part;
  const cut = (i) => Math.floor((i * chars.length) / n);
  const pieces = Array.from({ length: n }, (_, i) => ({ ...rest, text: chars.slice(cut(i), cut(i + 1)).join('') }));
  if (thoughtSignature) pieces[pieces.length - 1].thoughtSignature = thoughtSignature;
  return pieces;
}
