// The model catalogue served by models.list / models.get, and what each model can do.

const GENERATIVE = ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'];
const GEMINI_EMBEDDING = ['embedContent', 'countTextTokens', 'countTokens', 'asyncBatchEmbedContent'];

const gemini = (id, version, displayName, description, extra = {}) => ({
  name: `models/${id}`,
  version,
  displayName,
  description,
  inputTokenLimit: 1048576,
  outputTokenLimit: 65536,
  supportedGenerationMethods: GENERATIVE,
  temperature: 1,
  topP: 0.95,
  topK: 64,
  maxTemperature: 2,
  thinking: true,
  ...extra,
});

/** Gemini 2.0 models predate thinking: no `thinking` field, smaller output limit, topK 40. */
const gemini20 = (id, displayName, description) => {
  const { thinking: _none, ...model } = gemini(id, '2.0', displayName, description, {
    outputTokenLimit: 8192,
    topK: 40,
  });
  return model;
};

/** Order matters: models.list pages through this array. */
export const CATALOG = [
  gemini('gemini-2.5-flash', '001', 'Gemini 2.5 Flash',
    'Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up to 1 million tokens, released in June of 2025.'),
  gemini('gemini-2.5-pro', '2.5', 'Gemini 2.5 Pro', 'Stable release (June 17th, 2025) of Gemini 2.5 Pro'),
  gemini20('gemini-2.0-flash', 'Gemini 2.0 Flash', 'Gemini 2.0 Flash'),
  gemini20('gemini-2.0-flash-001', 'Gemini 2.0 Flash 001',
    'Stable version of Gemini 2.0 Flash, our fast and versatile multimodal model for scaling across diverse tasks, released in January of 2025.'),
  gemini20('gemini-2.0-flash-lite', 'Gemini 2.0 Flash-Lite', 'Gemini 2.0 Flash-Lite'),
  gemini('gemini-2.5-flash-lite', '001', 'Gemini 2.5 Flash-Lite', 'Stable version of Gemini 2.5 Flash-Lite, released in July of 2025'),
  gemini('gemini-2.5-flash-preview-09-2025', 'Gemini 2.5 Flash Preview Sep 2025', 'Gemini 2.5 Flash Preview Sep 2025',
    'Gemini 2.5 Flash Preview Sep 2025'),
  gemini('gemini-flash-latest', 'Gemini Flash Latest', 'Gemini Flash Latest', 'Latest release of Gemini Flash',
    { modelVersion: 'gemini-2.5-flash-preview-09-2025' }),
  gemini('gemini-flash-lite-latest', 'Gemini Flash-Lite Latest', 'Gemini Flash-Lite Latest',
    'Latest release of Gemini Flash-Lite', { modelVersion: 'gemini-2.5-flash-lite-preview-09-2025' }),
  gemini('gemini-pro-latest', 'Gemini Pro Latest', 'Gemini Pro Latest', 'Latest release of Gemini Pro',
    { modelVersion: 'gemini-2.5-pro' }),
  gemini('gemini-3-pro-preview', '3-pro-preview-11-2025', 'Gemini 3 Pro Preview', 'Gemini 3 Pro Preview'),
  gemini('gemini-3-flash-preview', '3-flash-preview-12-2025', 'Gemini 3 Flash Preview', 'Gemini 3 Flash Preview'),
  {
    name: 'models/gemma-3-27b-it',
    version: '001',
    displayName: 'Gemma 3 27B',
    inputTokenLimit: 131072,
    outputTokenLimit: 8192,
    supportedGenerationMethods: ['generateContent', 'countTokens'],
    temperature: 1,
    topP: 0.95,
    topK: 64,
  },
  {
    name: 'models/gemini-embedding-001',
    version: '001',
    displayName: 'Gemini Embedding 001',
    description: 'Obtain a distributed representation of a text.',
    inputTokenLimit: 2048,
    outputTokenLimit: 1,
    supportedGenerationMethods: GEMINI_EMBEDDING,
  },
  {
    name: 'models/text-embedding-004',
    version: '004',
    displayName: 'Text Embedding 004',
    description: 'Obtain a distributed representation of a text.',
    inputTokenLimit: 2048,
    outputTokenLimit: 1,
    supportedGenerationMethods: ['embedContent'],
  },
  {
    name: 'models/imagen-4.0-generate-001',
    version: '001',
    displayName: 'Imagen 4',
    description: 'Vertex served Imagen 4.0 model',
    inputTokenLimit: 480,
    outputTokenLimit: 8192,
    supportedGenerationMethods: ['predict'],
  },
  {
    name: 'models/gemini-2.5-flash-image',
    version: '2.0',
    displayName: 'Nano Banana',
    description: 'Gemini 2.5 Flash Image',
    inputTokenLimit: 32768,
    outputTokenLimit: 32768,
    supportedGenerationMethods: ['generateContent', 'countTokens', 'batchGenerateContent'],
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
  },
  {
    name: 'models/gemini-2.5-flash-preview-tts',
    version: 'gemini-2.5-flash-exp-tts-2025-05-19',
    displayName: 'Gemini 2.5 Flash Preview TTS',
    description: 'Gemini 2.5 Flash Preview TTS',
    inputTokenLimit: 8192,
    outputTokenLimit: 16384,
    supportedGenerationMethods: ['countTokens', 'generateContent'],
    temperature: 1,
    topP: 0.95,
    topK: 64,
    maxTemperature: 2,
  },
  {
    name: 'models/veo-3.0-generate-001',
    version: '3.0',
    displayName: 'Veo 3',
    description: 'Veo 3',
    inputTokenLimit: 480,
    outputTokenLimit: 8192,
    supportedGenerationMethods: ['predictLongRunning'],
  },
];

/** Default embedding sizes (values per vector) when outputDimensionality is absent. */
const EMBEDDING_DIMENSIONS = { 'gemini-embedding-001': 3072, 'text-embedding-004': 768 };

/**
 * Names matching this are accepted even if not listed, so tests can isolate
 * their state with fresh names such as `gemini-2.5-flash-t17`.
 */
const FRESH_GEMINI = /^gemini-[a-z0-9.-]+$/;
/** Likewise `gemma-*` names (`gemma-3-t4`), with Gemma's traits. */
const FRESH_GEMMA = /^gemma-[a-z0-9.-]+$/;
/** Likewise `imagen-*` names (`imagen-4.0-t2`), served by `:predict` only. */
const FRESH_IMAGEN = /^imagen-[a-z0-9.-]+$/;

export const stripModelsPrefix = (name) => String(name ?? '').replace(/^models\//, '');

/** The catalogue entry for an id, a synthesized one for a fresh gemini-* name, or null. */
export function findModel(id, catalog = CATALOG) {
  const listed = catalog.find((m) => m.name === `models/${id}`);
  if (listed) return listed;
  if (FRESH_IMAGEN.test(id)) {
    return { name: `models/${id}`, version: '001', displayName: id, description: 'Imagen model synthesized by the gemgate test mock.',
      inputTokenLimit: 480, outputTokenLimit: 8192, supportedGenerationMethods: ['predict'] };
  }
  return FRESH_GEMINI.test(id) || FRESH_GEMMA.test(id) ? synthesize(id) : null;
}

function synthesize(id) {
  const embedding = id.includes('embedding');
  const traits = traitsOf(id);
  return {
    name: `models/${id}`,
    version: '001',
    displayName: id,
    description: 'Model synthesized by the gemgate test mock.',
    inputTokenLimit: embedding ? 2048 : 1048576,
    outputTokenLimit: embedding ? 1 : 65536,
    supportedGenerationMethods: embedding ? GEMINI_EMBEDDING : GENERATIVE,
    ...(embedding ? {} : { temperature: 1, topP: 0.95, topK: 64, maxTemperature: 2 }),
    ...(traits.thinking ? { thinking: true } : {}),
  };
}

/**
 * Whether `model` accepts `method`. streamGenerateContent rides on
 * generateContent; batchEmbedContents on embedContent.
 */
export function supports(model, method) {
  const base = { streamGenerateContent: 'generateContent', batchEmbedContents: 'embedContent' }[method] ?? method;
  return model.supportedGenerationMethods.includes(base);
}

/** What the model id implies about thinking, signatures and other quirks. */
export function traitsOf(id) {
  const gemini3 = /^gemini-3/.test(id);
  // Image and TTS models do not think.
  const media = /-(image|tts)(-|$)/.test(id);
  const thinking = !media && (gemini3 || /^gemini-2\.5/.test(id) || /^gemini-(flash|flash-lite|pro)-latest$/.test(id));
  return {
    gemini3,
    thinking,
    // The JSON Schema fields (parametersJsonSchema, responseJsonSchema) came with Gemini 2.5.
    jsonSchema: thinking,
    // Logprobs are served only by the 2.0 Flash family and 2.5 Flash (not 2.5 Flash-Lite).
    logprobs: /^gemini-2\.0-flash/.test(id) || (/^gemini-2\.5-flash/.test(id) && !id.includes('flash-lite')),
    // Flash-Lite thinks only when asked to (default budget 0).
    thinksByDefault: thinking && !id.includes('flash-lite'),
    // 2.5 Pro and Gemini 3 cannot switch thinking off.
    alwaysThinks: gemini3 || /^gemini-2\.5-pro/.test(id) || id === 'gemini-pro-latest',
    thoughtSignatures: gemini3,
    gemma: id.startsWith('gemma-'),
    embeddingDimensions: EMBEDDING_DIMENSIONS[id] ?? (id.includes('embedding') ? 3072 : 0),
  };
}

/**
 * The `thinkingLevel`s a Gemini 3 model accepts (none for other models):
 * 3 Pro only LOW and HIGH, 3.1 Pro adds MEDIUM, 3 / 3.1 Flash (and
 * Flash-Lite) also MINIMAL, any other 3.x LOW, MEDIUM and HIGH.
 */
export function thinkingLevelsOf(modelId) {
  const id = String(modelId);
  if (!/^gemini-3/.test(id)) return [];
  if (/^gemini-3-pro/.test(id)) return ['LOW', 'HIGH'];
  if (/^gemini-3(\.1)?-flash/.test(id)) return ['MINIMAL', 'LOW', 'MEDIUM', 'HIGH'];
  return ['LOW', 'MEDIUM', 'HIGH'];
}

/**
 * The `thinkingBudget` range of a Gemini 2.5 model (and the -latest aliases,
 * which point at 2.5): `{ min, max, zero }`, `zero` telling whether 0
 * (thinking off) is accepted outside the range. -1 (dynamic) is always
 * accepted. Null for models whose budget is not range-checked (Gemini 3,
 * models that do not think).
 */
export function thinkingBudgetRange(modelId) {
  const id = String(modelId);
  const traits = traitsOf(id);
  if (!traits.thinking || traits.gemini3) return null;
  if (id.includes('pro')) return { min: 128, max: 32768, zero: false };
  if (id.includes('flash-lite')) return { min: 512, max: 24576, zero: true };
  return { min: 0, max: 24576, zero: true };
}

/** The `modelVersion` a response reports (aliases resolve to a concrete model). */
export function modelVersionOf(model) {
  return model.modelVersion ?? stripModelsPrefix(model.name);
}

/** The public Model resource, without mock-only fields. */
export function publicModel(model) {
  const { modelVersion: _internal, ...rest } = model;
  return rest;
}
