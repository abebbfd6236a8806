// Deterministic log probabilities for `generationConfig.responseLogprobs`.
//
// The reply text is cut into tokens of 4 code points (the last may be
// shorter), so the chosen tokens joined give the text back. Each chosen
// token gets a negative logProbability derived from its text and position;
// with `logprobs: N` > 0 each position also lists N top candidates, the
// first being the chosen token, the others strictly less likely.

import { fnv1a } from './tokens.mjs';

const TOKEN_CODE_POINTS = 4;
const VOCABULARY_SIZE = 256000;
/** Stand-in alternatives for top candidates: more than the 20 Google allows, so N-1 distinct ones always exist. */
const ALTERNATIVES = [
  ' the', ',', '.', ' a', ' and', ' of', ' to', ' in', ' is', '\n', ' it', ' for',
  ' on', ' that', ' with', ' as', ' was', ' be', ' by', ' at', ' or', ' an', ' this', ' from',
];

const round4 = (n) => Math.round(n * 1e4) / 1e4;

/** The text in tokens of 4 code points. */
export function splitTokens(text) {
  const chars = [...String(text ?? '')];
  const tokens = [];
  for (let i = 0; i < chars.length; i += TOKEN_CODE_POINTS) tokens.push(chars.slice(i, i + TOKEN_CODE_POINTS).join(''));
  return tokens;
}

const candidate = (token, logProbability) => ({ token, tokenId: fnv1a(token) % VOCABULARY_SIZE, logProbability });

/** In (-0.5, 0): likely, never certain. */
const chosenLogProbability = (token, position) => -round4(0.0001 + (fnv1a(`${position}:${token}`) % 5000) / 10000);

function topCandidates(chosen, position, n) {
  const others = ALTERNATIVES.filter((t) => t !== chosen.token);
  const start = fnv1a(`top:${position}:${chosen.token}`) % others.length;
  const alternatives = Array.from({ length: n - 1 }, (_, k) =>
    candidate(others[(start + k) % others.length], round4(chosen.logProbability - 0.75 * (k + 1))),
  );
  return { candidates: [chosen, ...alternatives] };
}

/**
 * `{ avgLogprobs, logprobsResult }` for a reply text, with `topN` top
 * candidates per position (none when 0). Null for an empty text.
 */
export function logprobsFor(text, topN) {
  const tokens = splitTokens(text);
  if (tokens.length === 0) return null;
  const chosen = tokens.map((token, i) => candidate(token, chosenLogProbability(token, i)));
  const avgLogprobs = chosen.reduce((sum, c) => sum + c.logProbability, 0) / chosen.length;
  return {
    avgLogprobs,
    logprobsResult: {
      ...(topN > 0 ? { topCandidates: chosen.map((c, i) => topCandidates(c, i, topN)) } : {}),
      chosenCandidates: chosen,
    },
  };
}
