// Deterministic stand-ins for token counting and embeddings.
//
// Token rule (documented in README): every text is ceil(code points / 4)
// tokens, counted per text and summed; every inlineData/fileData part is 258
// tokens (Google's per-image figure) under the modality of its MIME type;
// functionCall / functionResponse / executableCode / codeExecutionResult
// parts count as the text of their JSON; tools count as the text of their
// JSON.

export const MEDIA_PART_TOKENS = 258;

export const textTokens = (text) => Math.ceil([...String(text ?? '')].length / 4);

function modalityOf(mimeType = '') {
  if (mimeType.startsWith('image/')) return 'IMAGE';
  if (mimeType.startsWith('audio/')) return 'AUDIO';
  if (mimeType.startsWith('video/')) return 'VIDEO';
  if (mimeType === 'application/pdf') return 'DOCUMENT';
  return 'TEXT';
}

/** `{ modality, tokens }` for one Part. */
export function partTokens(part) {
  if (typeof part.text === 'string') return { modality: 'TEXT', tokens: textTokens(part.text) };
  const media = part.inlineData ?? part.fileData;
  if (media) return { modality: modalityOf(media.mimeType), tokens: MEDIA_PART_TOKENS };
  const structured =
    part.functionCall ?? part.functionResponse ?? part.executableCode ?? part.codeExecutionResult;
  return { modality: 'TEXT', tokens: structured ? textTokens(JSON.stringify(structured)) : 0 };
}

/** Sums tokens over parts, keeping a per-modality breakdown (TEXT first). */
class Tally {
  byModality = new Map([['TEXT', 0]]);

  addParts(parts = []) {
    for (const part of parts) {
      const { modality, tokens } = partTokens(part);
      this.add(modality, tokens);
    }
  }

  add(modality, tokens) {
    this.byModality.set(modality, (this.byModality.get(modality) ?? 0) + tokens);
  }

  get total() {
    let sum = 0;
    for (const n of this.byModality.values()) sum += n;
    return sum;
  }

  get details() {
    return [...this.byModality]
      .filter(([, tokenCount]) => tokenCount > 0)
      .map(([modality, tokenCount]) => ({ modality, tokenCount }));
  }
}

/**
 * Prompt tokens of a (normalized) request: contents, plus systemInstruction
 * and tools when present. Returns `{ total, details }`.
 */
export function promptTokens({ contents = [], systemInstruction, tools }) {
  const tally = new Tally();
  for (const content of contents) tally.addParts(content.parts);
  if (systemInstruction) tally.addParts(systemInstruction.parts);
  if (tools?.length) tally.add('TEXT', textTokens(JSON.stringify(tools)));
  return { total: tally.total, details: tally.details };
}

/** Per-modality breakdowns added together (TEXT first), e.g. a request's and its cached content's. */
export function mergeDetails(...lists) {
  const tally = new Tally();
  for (const list of lists) for (const { modality, tokenCount } of list) tally.add(modality, tokenCount);
  return tally.details;
}

/** Tokens of response parts (thought parts included: callers filter first). */
export function partsTokens(parts = []) {
  return parts.reduce((sum, part) => sum + partTokens(part).tokens, 0);
}

// ---------------------------------------------------------------- embeddings

/** 32-bit FNV-1a of the UTF-8 bytes: a cheap deterministic seed. */
export function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function mulberry32(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A deterministic vector for `text`. Google normalizes only full-size
 * gemini-embedding-001 vectors; truncated ones (outputDimensionality below
 * the default) come back unnormalized, and so they do here.
 */
export function embeddingValues(text, dimensions, normalize) {
  const next = mulberry32(fnv1a(text));
  const values = Array.from({ length: dimensions }, () => next() * 0.2 - 0.1);
  const scale = normalize ? 1 / Math.hypot(...values) : 1;
  return values.map((v) => Math.round(v * scale * 1e8) / 1e8);
}
