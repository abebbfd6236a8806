// Scripted long answers that get cut off and continued (anti-truncation).
//
// A rule's `answer` is the whole text the "model" means to write. It is split
// into `events` pieces; the answer is cut after the pieces listed in `cuts`.
// A call answers from where the text so far ends, up to the next cut (or the
// end). A continuation is recognised by its contents: a model turn whose text
// is a non-empty prefix of the answer, then a user turn. At the end of the
// answer the mock writes the marker the request's system instruction names
// between backticks, as a model following the instruction would.

import { promptTokens, textTokens } from './tokens.mjs';

const ANSWER_FIELDS = ['text', 'events', 'cuts', 'cutWith', 'splitMarker'];
const CUT_WITH = ['end', 'MAX_TOKENS'];

/** Validates a rule's `answer`; returns an error string or null. */
export function answerProblem(answer) {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return 'answer must be a JSON object';
  const unknown = Object.keys(answer).filter((k) => !ANSWER_FIELDS.includes(k));
  if (unknown.length) return `unknown answer field(s): ${unknown.join(', ')}`;
  if (typeof answer.text !== 'string' || answer.text.length === 0) return 'answer.text must be a non-empty string';
  const events = eventCount(answer);
  if (!(Number.isInteger(events) && events >= 1 && events <= [...answer.text].length)) {
    return 'answer.events must be an integer from 1 to the number of characters of answer.text';
  }
  const cuts = answer.cuts ?? [];
  const increasing =
    Array.isArray(cuts) && cuts.every((c, i) => Number.isInteger(c) && c >= 1 && c < events && (i === 0 || c > cuts[i - 1]));
  if (!increasing) return 'answer.cuts must be increasing piece counts between 1 and events - 1';
  if (answer.cutWith !== undefined && !CUT_WITH.includes(answer.cutWith)) return `answer.cutWith must be one of ${CUT_WITH.join(', ')}`;
  if (answer.splitMarker !== undefined && typeof answer.splitMarker !== 'boolean') return 'answer.splitMarker must be a boolean';
  return null;
}

const eventCount = (answer) => answer.events ?? Math.max(3, Math.ceil([...answer.text].length / 40));

/** The marker the system instruction asks for: the last text between backticks, or null. */
export function markerOf(request) {
  const text = (request.systemInstruction?.parts ?? []).map((p) => p.text ?? '').join('\n');
  const found = [...text.matchAll(/`([^`]+)`/g)];
  return found.length ? found.at(-1)[1] : null;
}

/** Where this call starts in the answer (code points), and the text so far it was sent. */
export function answerStart(request, answerText) {
  const contents = request.contents ?? [];
  const [model, user] = contents.slice(-2);
  if (contents.length < 2 || model?.role !== 'model' || user?.role === 'model') return { from: 0, textSoFar: null };
  const textSoFar = (model.parts ?? []).filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text).join('');
  if (textSoFar.length === 0 || !answerText.startsWith(textSoFar)) return { from: 0, textSoFar: null };
  return { from: [...textSoFar].length, textSoFar };
}

/**
 * Plans one call of a scripted answer: `{ texts, finishReason, continuation }`.
 * `texts` are the event texts (at least one), `finishReason` is `STOP`,
 * `MAX_TOKENS` or undefined (the stream just ends).
 */
export function planAnswer(request, answer) {
  const chars = [...answer.text];
  const events = eventCount(answer);
  const boundary = (i) => Math.floor((i * chars.length) / events);
  const { from, textSoFar } = answerStart(request, answer.text);
  const cut = (answer.cuts ?? []).map(boundary).find((b) => b > from);
  const to = cut ?? chars.length;
  const inner = Array.from({ length: events + 1 }, (_, i) => boundary(i)).filter((b) => b > from && b < to);
  const edges = [from, ...inner, to];
  const texts = edges.slice(0, -1).map((start, i) => chars.slice(start, edges[i + 1]).join('')).filter((t) => t.length);
  const marker = markerOf(request);
  let finishReason;
  if (cut !== undefined) {
    finishReason = answer.cutWith === 'MAX_TOKENS' ? 'MAX_TOKENS' : undefined;
  } else {
    finishReason = 'STOP';
    if (marker) {
      const tail = `\n${marker}`;
      if (answer.splitMarker && [...marker].length >= 2) {
        const half = Math.floor([...marker].length / 2);
        const head = `\n${[...marker].slice(0, half).join('')}`;
        if (texts.length) texts[texts.length - 1] += head;
        else texts.push(head);
        texts.push([...marker].slice(half).join(''));
      } else if (texts.length) {
        texts[texts.length - 1] += tail;
      } else {
        texts.push(tail);
      }
    }
  }
  if (texts.length === 0) texts.push('');
  return { texts, finishReason, continuation: textSoFar === null ? null : { from, textSoFar }, served: { from, to } };
}

/**
 * The GenerateContentResponses of one call: one per event text when streaming
 * (each with cumulative usage, the last with the finish reason), or a single
 * one. Returns `{ objects, tokens }`.
 */
export function answerObjects(request, answer, { stream, modelVersion, responseId }) {
  const plan = planAnswer(request, answer);
  const prompt = promptTokens(request).total;
  const usageAfter = (text) => {
    const candidates = textTokens(text);
    return { promptTokenCount: prompt, candidatesTokenCount: candidates, totalTokenCount: prompt + candidates };
  };
  const candidate = (text, finishReason) => ({
    content: { parts: [{ text }], role: 'model' },
    ...(finishReason ? { finishReason } : {}),
    index: 0,
  });
  const response = (text, finishReason, usage) => ({
    candidates: [candidate(text, finishReason)],
    usageMetadata: usage,
    modelVersion,
    responseId,
  });
  const whole = plan.texts.join('');
  const objects = stream
    ? plan.texts.map((text, i) => {
        const last = i === plan.texts.length - 1;
        return response(text, last ? plan.finishReason : undefined, usageAfter(plan.texts.slice(0, i + 1).join('')));
      })
    : [response(whole, plan.finishReason ?? undefined, usageAfter(whole))];
  const final = objects.at(-1).usageMetadata;
  return {
    objects,
    plan,
    tokens: { prompt: final.promptTokenCount, candidates: final.candidatesTokenCount, thoughts: 0, total: final.totalTokenCount },
  };
}
