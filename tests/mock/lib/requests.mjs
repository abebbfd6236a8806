// Request message descriptions (v1beta) and the checks Google runs after parsing.
//
// The descriptions list the real field names so that unknown names are
// rejected exactly where Google rejects them: at the top level, in
// generationConfig, thinkingConfig, Content, Part, Tool, FunctionDeclaration
// and Schema (OpenAPI subset: no additionalProperties, $schema, $ref, ...).
// Sub-trees the mock does not model are typed ANY and accepted as they are.

import {
  ANY,
  BOOL,
  BYTES,
  DOUBLE,
  DURATION,
  FLOAT,
  INT32,
  INT64,
  STRING,
  TIMESTAMP,
  camelToSnake,
  decode,
  enumeration,
  mapOf,
  message,
  repeated,
} from './proto.mjs';
import { modalityProblem } from './imagen.mjs';
import { thinkingBudgetRange, thinkingLevelsOf, traitsOf } from './models.mjs';
import { isStringEnum, jsonSchemaProblems, openApiSchemaProblems } from './schema.mjs';

const Blob = message('Blob', { mimeType: STRING, data: BYTES });
const FileData = message('FileData', { mimeType: STRING, fileUri: STRING });
const FunctionCall = message('FunctionCall', { id: STRING, name: STRING, args: ANY });
const FunctionResponse = message('FunctionResponse', {
  id: STRING,
  name: STRING,
  response: ANY,
  parts: repeated(ANY),
  willContinue: BOOL,
  scheduling: ANY,
});
const VideoMetadata = message('VideoMetadata', { startOffset: STRING, endOffset: STRING, fps: DOUBLE });

const PART_DATA = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'];

const Part = message(
  'Part',
  {
    text: STRING,
    inlineData: Blob,
    fileData: FileData,
    functionCall: FunctionCall,
    functionResponse: FunctionResponse,
    executableCode: message('ExecutableCode', { language: ANY, code: STRING }),
    codeExecutionResult: message('CodeExecutionResult', { outcome: ANY, output: STRING }),
    videoMetadata: VideoMetadata,
    thought: BOOL,
    thoughtSignature: BYTES,
    partMetadata: ANY,
    mediaResolution: ANY,
  },
  { oneofs: { data: PART_DATA } },
);

const Content = message('Content', { role: STRING, parts: repeated(Part) });

const Type = enumeration('Type', ['TYPE_UNSPECIFIED', 'STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL']);

/** The OpenAPI subset Google accepts in `parameters` / `responseSchema`. */
const Schema = message('Schema', () => ({
  type: Type,
  format: STRING,
  title: STRING,
  description: STRING,
  nullable: BOOL,
  enum: repeated(STRING),
  maxItems: INT64,
  minItems: INT64,
  properties: mapOf(Schema),
  required: repeated(STRING),
  minProperties: INT64,
  maxProperties: INT64,
  minLength: INT64,
  maxLength: INT64,
  pattern: STRING,
  example: ANY,
  anyOf: repeated(Schema),
  propertyOrdering: repeated(STRING),
  default: ANY,
  items: Schema,
  minimum: DOUBLE,
  maximum: DOUBLE,
}));

const FunctionDeclaration = message('FunctionDeclaration', {
  name: STRING,
  description: STRING,
  behavior: ANY,
  parameters: Schema,
  parametersJsonSchema: ANY,
  response: Schema,
  responseJsonSchema: ANY,
});

const Tool = message('Tool', {
  functionDeclarations: repeated(FunctionDeclaration),
  googleSearchRetrieval: ANY,
  codeExecution: ANY,
  googleSearch: ANY,
  computerUse: ANY,
  urlContext: ANY,
  fileSearch: ANY,
  googleMaps: ANY,
});

const ToolConfig = message('ToolConfig', {
  functionCallingConfig: message('FunctionCallingConfig', {
    mode: enumeration('FunctionCallingConfig.Mode', ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']),
    allowedFunctionNames: repeated(STRING),
  }),
  retrievalConfig: ANY,
});

const SafetySetting = message('SafetySetting', {
  category: enumeration('HarmCategory', [
    'HARM_CATEGORY_UNSPECIFIED',
    'HARM_CATEGORY_DEROGATORY',
    'HARM_CATEGORY_TOXICITY',
    'HARM_CATEGORY_VIOLENCE',
    'HARM_CATEGORY_SEXUAL',
    'HARM_CATEGORY_MEDICAL',
    'HARM_CATEGORY_DANGEROUS',
    'HARM_CATEGORY_HARASSMENT',
    'HARM_CATEGORY_HATE_SPEECH',
    'HARM_CATEGORY_SEXUALLY_EXPLICIT',
    'HARM_CATEGORY_DANGEROUS_CONTENT',
    'HARM_CATEGORY_CIVIC_INTEGRITY',
  ]),
  threshold: enumeration('SafetySetting.HarmBlockThreshold', [
    'HARM_BLOCK_THRESHOLD_UNSPECIFIED',
    'BLOCK_LOW_AND_ABOVE',
    'BLOCK_MEDIUM_AND_ABOVE',
    'BLOCK_ONLY_HIGH',
    'BLOCK_NONE',
    'OFF',
  ]),
});

const ThinkingConfig = message('ThinkingConfig', {
  thinkingBudget: INT32,
  includeThoughts: BOOL,
  thinkingLevel: enumeration('ThinkingConfig.ThinkingLevel', ['THINKING_LEVEL_UNSPECIFIED', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH']),
});

const GenerationConfig = message('GenerationConfig', {
  stopSequences: repeated(STRING),
  responseMimeType: STRING,
  responseSchema: Schema,
  responseJsonSchema: ANY,
  responseModalities: repeated(
    enumeration('GenerationConfig.Modality', ['MODALITY_UNSPECIFIED', 'TEXT', 'IMAGE', 'AUDIO']),
  ),
  candidateCount: INT32,
  maxOutputTokens: INT32,
  temperature: FLOAT,
  topP: FLOAT,
  topK: INT32,
  seed: INT32,
  presencePenalty: FLOAT,
  frequencyPenalty: FLOAT,
  responseLogprobs: BOOL,
  logprobs: INT32,
  enableEnhancedCivicAnswers: BOOL,
  speechConfig: ANY,
  thinkingConfig: ThinkingConfig,
  mediaResolution: enumeration('GenerationConfig.MediaResolution', [
    'MEDIA_RESOLUTION_UNSPECIFIED',
    'MEDIA_RESOLUTION_LOW',
    'MEDIA_RESOLUTION_MEDIUM',
    'MEDIA_RESOLUTION_HIGH',
  ]),
  imageConfig: ANY,
});

const GENERATE_FIELDS = {
  // `model` is part of the request message (bound to the URL), so a body may carry it.
  model: STRING,
  contents: repeated(Content),
  tools: repeated(Tool),
  toolConfig: ToolConfig,
  safetySettings: repeated(SafetySetting),
  systemInstruction: Content,
  generationConfig: GenerationConfig,
  cachedContent: STRING,
  labels: mapOf(STRING),
};

export const GenerateContentRequest = message('GenerateContentRequest', GENERATE_FIELDS);

export const CountTokensRequest = message('CountTokensRequest', {
  model: STRING,
  contents: repeated(Content),
  generateContentRequest: GenerateContentRequest,
});

const EmbedContentRequest = message('EmbedContentRequest', {
  model: STRING,
  content: Content,
  taskType: enumeration('TaskType', [
    'TASK_TYPE_UNSPECIFIED',
    'RETRIEVAL_QUERY',
    'RETRIEVAL_DOCUMENT',
    'SEMANTIC_SIMILARITY',
    'CLASSIFICATION',
    'CLUSTERING',
    'QUESTION_ANSWERING',
    'FACT_VERIFICATION',
    'CODE_RETRIEVAL_QUERY',
  ]),
  title: STRING,
  outputDimensionality: INT32,
});

const BatchEmbedContentsRequest = message('BatchEmbedContentsRequest', {
  model: STRING,
  requests: repeated(EmbedContentRequest),
});

// Code Assist wraps a Vertex-style GenerateContentRequest that also carries a session id.
const CODE_ASSIST_PKG = { pkg: 'google.internal.cloud.code.v1internal' };
const CodeAssistInnerRequest = message('VertexGenerateContentRequest', { ...GENERATE_FIELDS, sessionId: STRING }, CODE_ASSIST_PKG);
const CodeAssistGenerateRequest = message(
  'GenerateContentRequest',
  { model: STRING, project: STRING, userPromptId: STRING, request: CodeAssistInnerRequest, enabledCreditTypes: repeated(STRING) },
  CODE_ASSIST_PKG,
);
const CodeAssistCountTokensRequest = message(
  'CountTokensRequest',
  { request: message('CountTokensInnerRequest', { model: STRING, contents: repeated(Content) }, CODE_ASSIST_PKG) },
  CODE_ASSIST_PKG,
);

// The setup methods (gemini-cli's code_assist/types.ts). Enum-typed metadata
// fields are taken as plain strings, since their value lists keep growing.
const ClientMetadata = message(
  'ClientMetadata',
  {
    ideType: STRING,
    ideVersion: STRING,
    pluginVersion: STRING,
    platform: STRING,
    updateChannel: STRING,
    duetProject: STRING,
    pluginType: STRING,
    ideName: STRING,
  },
  CODE_ASSIST_PKG,
);
const LoadCodeAssistRequest = message(
  'LoadCodeAssistRequest',
  { cloudaicompanionProject: STRING, metadata: ClientMetadata, mode: STRING },
  CODE_ASSIST_PKG,
);
const OnboardUserRequest = message(
  'OnboardUserRequest',
  { tierId: STRING, cloudaicompanionProject: STRING, metadata: ClientMetadata },
  CODE_ASSIST_PKG,
);
const RetrieveUserQuotaRequest = message('RetrieveUserQuotaRequest', { project: STRING, userAgent: STRING }, CODE_ASSIST_PKG);

// The Files API (upload start) and cachedContents. Output-only fields are
// part of the messages, so Google's parser accepts (and ignores) them.
const File = message('File', {
  name: STRING,
  displayName: STRING,
  mimeType: STRING,
  sizeBytes: INT64,
  createTime: TIMESTAMP,
  updateTime: TIMESTAMP,
  expirationTime: TIMESTAMP,
  sha256Hash: BYTES,
  uri: STRING,
  downloadUri: STRING,
  state: enumeration('File.State', ['STATE_UNSPECIFIED', 'PROCESSING', 'ACTIVE', 'FAILED']),
  source: enumeration('File.Source', ['SOURCE_UNSPECIFIED', 'UPLOADED', 'GENERATED', 'REGISTERED']),
  error: ANY,
  videoMetadata: ANY,
});
const CreateFileRequest = message('CreateFileRequest', { file: File });

const CachedContent = message(
  'CachedContent',
  {
    expireTime: TIMESTAMP,
    ttl: DURATION,
    name: STRING,
    displayName: STRING,
    model: STRING,
    systemInstruction: Content,
    contents: repeated(Content),
    tools: repeated(Tool),
    toolConfig: ToolConfig,
    createTime: TIMESTAMP,
    updateTime: TIMESTAMP,
    usageMetadata: ANY,
  },
  { oneofs: { expiration: ['expireTime', 'ttl'] } },
);
// The HTTP body of create and patch is the `cached_content` field of these
// requests, so Google's messages name paths `cached_content.<field>`.
const CreateCachedContentRequest = message('CreateCachedContentRequest', { cachedContent: CachedContent });
const UpdateCachedContentRequest = message('UpdateCachedContentRequest', { cachedContent: CachedContent });

// Imagen's `:predict` takes google.protobuf.Value instances and parameters.
const PredictRequest = message('PredictRequest', { instances: repeated(ANY), parameters: ANY });

export const REQUEST_TYPES = {
  predict: PredictRequest,
  generateContent: GenerateContentRequest,
  streamGenerateContent: GenerateContentRequest,
  countTokens: CountTokensRequest,
  embedContent: EmbedContentRequest,
  batchEmbedContents: BatchEmbedContentsRequest,
  'v1internal.generateContent': CodeAssistGenerateRequest,
  'v1internal.streamGenerateContent': CodeAssistGenerateRequest,
  'v1internal.countTokens': CodeAssistCountTokensRequest,
  'v1internal.loadCodeAssist': LoadCodeAssistRequest,
  'v1internal.onboardUser': OnboardUserRequest,
  'v1internal.retrieveUserQuota': RetrieveUserQuotaRequest,
  'files.start': CreateFileRequest,
  'cachedContents.create': CreateCachedContentRequest,
  'cachedContents.patch': UpdateCachedContentRequest,
};

/** Requests whose HTTP body is one field of the request message (`body: "<field>"` in Google's HTTP rules). */
export const BODY_FIELDS = {
  'cachedContents.create': 'cachedContent',
  'cachedContents.patch': 'cachedContent',
};

/**
 * Parses a body string as `type`. Returns `{ value }` or `{ violations }`.
 * An empty body is an empty message, as for Google. With `bodyField`, the
 * body is that field of the message (paths in messages start with it) and
 * `value` is the field's value.
 */
export function parseRequest(type, text, { bodyField } = {}) {
  let json;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    return { violations: [{ description: jsonSyntaxMessage(text, err) }] };
  }
  const wrapped = bodyField && json !== null && typeof json === 'object' && !Array.isArray(json);
  const { value, violations } = decode(type, wrapped ? { [bodyField]: json } : json);
  if (violations.length) return { violations };
  return { value: wrapped ? value[bodyField] ?? {} : value };
}

/** Google's wording for malformed JSON, with the offending line and a caret. */
function jsonSyntaxMessage(text, err) {
  const position = Number(/position (\d+)/.exec(err.message)?.[1] ?? 0);
  const lineStart = text.lastIndexOf('\n', position - 1) + 1;
  const lineEnd = text.indexOf('\n', position);
  const line = text.slice(lineStart, lineEnd === -1 ? undefined : lineEnd);
  return `Invalid JSON payload received. Unexpected token.\n${line}\n${' '.repeat(position - lineStart)}^`;
}

// ---------------------------------------------------------------- checks after parsing

/**
 * Google's field-requirement failures: one "* Message.path: problem" line
 * each, every line ending in a newline, all in one message.
 */
function requirementLines(prefix, contents, where = 'contents') {
  const lines = [];
  contents.forEach((content, i) => {
    const parts = content.parts ?? [];
    if (parts.length === 0) lines.push(`* ${prefix}.${where}[${i}].parts: contents.parts must not be empty.\n`);
    parts.forEach((part, j) => {
      if (!PART_DATA.some((name) => name in part)) {
        lines.push(`* ${prefix}.${where}[${i}].parts[${j}].data: required oneof field 'data' must have one initialized field\n`);
      }
    });
  });
  return lines;
}

/**
 * Checks contents (and a system instruction) the way every method taking
 * contents does. Returns the 400 message, or null.
 */
export function checkContents({ contents = [], systemInstruction }, prefix) {
  if (contents.length === 0) return `* ${prefix}.contents: contents is not specified\n`;
  const lines = contentLines(prefix, contents, systemInstruction);
  if (lines.length) return lines.join('');
  return checkRoles(contents);
}

function contentLines(prefix, contents, systemInstruction) {
  const lines = requirementLines(prefix, contents);
  if (systemInstruction) {
    const si = requirementLines(prefix, [systemInstruction], 'system_instruction');
    lines.push(...si.map((line) => line.replace('system_instruction[0]', 'system_instruction')));
  }
  return lines;
}

/**
 * Checks a parsed GenerateContentRequest for model `modelId`. Returns the
 * 400 message, or null when Google would accept the request. Field problems
 * (contents, schemas, function names, generation config) are reported
 * together, one line each; the model-dependent checks come after them and
 * report the first problem only.
 */
export function checkGenerateContent(request, modelId, prefix = 'GenerateContentRequest') {
  const { contents = [], systemInstruction } = request;
  if (contents.length === 0) return `* ${prefix}.contents: contents is not specified\n`;
  const lines = [
    ...contentLines(prefix, contents, systemInstruction),
    ...[...toolProblems(request.tools), ...generationConfigProblems(request.generationConfig)].map(
      ({ path, problem }) => `* ${prefix}.${path}: ${problem}\n`,
    ),
  ];
  if (lines.length) return lines.join('');
  return (
    checkRoles(contents) ??
    modalityProblem(request, modelId) ??
    checkModelSpecific(request, modelId) ??
    checkThinking(request.generationConfig?.thinkingConfig, modelId) ??
    checkJsonSchemaSupport(request, modelId) ??
    checkLogprobsSupport(request.generationConfig, modelId) ??
    checkFunctionTurns(contents) ??
    checkThoughtSignatures(contents, modelId)
  );
}

function checkRoles(contents) {
  const valid = (role) => role === undefined || role === '' || role === 'user' || role === 'model';
  return contents.every((c) => valid(c.role)) ? null : 'Please use a valid role: user, model.';
}

function checkModelSpecific(request, modelId) {
  const traits = traitsOf(modelId);
  // Gemma has no system-instruction support on the Gemini API.
  if (traits.gemma && request.systemInstruction) {
    return `Developer instruction is not enabled for models/${modelId}`;
  }
  // Before Gemini 3, function calling and JSON mode could not be combined.
  const hasFunctions = request.tools?.some((tool) => tool.functionDeclarations?.length);
  if (hasFunctions && request.generationConfig?.responseMimeType === 'application/json' && !traits.thoughtSignatures) {
    return "Function calling with a response mime type: 'application/json' is unsupported";
  }
  return null;
}

// ---------------------------------------------------------------- tools and schemas

const FUNCTION_NAME = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;
const INVALID_FUNCTION_NAME =
  'Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), ' +
  'underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.';

/** Problems `{ path, problem }` in every function declaration of every tool. */
function toolProblems(tools = []) {
  return tools.flatMap((tool, i) =>
    (tool.functionDeclarations ?? []).flatMap((declaration, j) =>
      declarationProblems(declaration, `tools[${i}].function_declarations[${j}]`),
    ),
  );
}

function declarationProblems(declaration, path) {
  return [
    ...(FUNCTION_NAME.test(declaration.name ?? '') ? [] : [{ path: `${path}.name`, problem: INVALID_FUNCTION_NAME }]),
    ...schemaPairProblems(declaration, path, { openApi: 'parameters', json: 'parametersJsonSchema', objectRoot: true }),
    ...schemaPairProblems(declaration, path, { openApi: 'response', json: 'responseJsonSchema' }),
  ];
}

/**
 * A schema can be given in the OpenAPI subset or as JSON Schema, never both.
 * Each one present is checked by its own rules.
 */
function schemaPairProblems(owner, path, { openApi, json, objectRoot = false }) {
  const out = [];
  const [openApiName, jsonName] = [camelToSnake(openApi), camelToSnake(json)];
  if (owner[openApi] && owner[json] !== undefined) {
    out.push({ path, problem: `only one of ${openApiName} and ${jsonName} may be set` });
  }
  if (owner[openApi]) openApiSchemaProblems(owner[openApi], `${path}.${openApiName}`, out);
  if (owner[json] !== undefined) out.push(...jsonSchemaProblems(owner[json], `${path}.${jsonName}`, { objectRoot }));
  return out;
}

// ---------------------------------------------------------------- generation config

const MIME_TYPES = ['text/plain', 'application/json', 'application/xml', 'application/yaml', 'text/x.enum'];
const MAX_LOGPROBS = 20;

/** Problems `{ path, problem }` in generationConfig: schemas, the response MIME type, logprobs. */
function generationConfigProblems(config) {
  if (!config) return [];
  const path = 'generation_config';
  const out = schemaPairProblems(config, path, { openApi: 'responseSchema', json: 'responseJsonSchema' });
  const mime = config.responseMimeType ?? '';
  const schema = config.responseSchema ?? config.responseJsonSchema;
  const mimePath = `${path}.response_mime_type`;
  if (mime !== '' && !MIME_TYPES.includes(mime)) {
    out.push({ path: mimePath, problem: 'allowed mimetypes are text/plain, application/json, application/xml, application/yaml and text/x.enum.' });
  } else if (schema !== undefined && mime !== 'application/json' && mime !== 'text/x.enum') {
    out.push({ path: mimePath, problem: 'must be application/json or text/x.enum when a response schema is set' });
  } else if (mime === 'text/x.enum' && !isStringEnum(schema)) {
    out.push({ path: mimePath, problem: 'text/x.enum requires a response schema of type STRING with enum values' });
  }
  if (config.logprobs !== undefined) {
    if (config.responseLogprobs !== true) {
      out.push({ path: `${path}.logprobs`, problem: 'can only be set when response_logprobs is true' });
    } else if (config.logprobs < 0 || config.logprobs > MAX_LOGPROBS) {
      out.push({ path: `${path}.logprobs`, problem: `must be between 0 and ${MAX_LOGPROBS}` });
    }
  }
  return out;
}

// ---------------------------------------------------------------- model-dependent checks

/**
 * Thinking settings the model cannot honour. Budgets belong to 2.5, levels
 * to Gemini 3, and Google refuses both at once.
 */
function checkThinking(config, modelId) {
  if (!config) return null;
  const traits = traitsOf(modelId);
  if (!traits.thinking) return `Thinking is not enabled for models/${modelId}`;
  const level = config.thinkingLevel === 'THINKING_LEVEL_UNSPECIFIED' ? undefined : config.thinkingLevel;
  const budget = config.thinkingBudget;
  if (level && budget !== undefined) return 'You can only set only one of thinking budget and thinking level.';
  if (level && !traits.gemini3) return 'Thinking level is not supported for this model.';
  if (level && !thinkingLevelsOf(modelId).includes(level)) {
    return `Thinking level ${level} is not supported for this model. Please retry with other thinking level.`;
  }
  if (budget === 0 && traits.alwaysThinks && !traits.gemini3) {
    return 'Budget 0 is invalid. This model only works in thinking mode.';
  }
  const range = thinkingBudgetRange(modelId);
  const allowed = (b) => b === -1 || (b === 0 && range.zero) || (b >= range.min && b <= range.max);
  if (range && budget !== undefined && !allowed(budget)) {
    return `The thinking budget ${budget} is invalid. Please choose a value between ${range.min} and ${range.max}.`;
  }
  return null;
}

/** JSON Schema fields need a model that understands them (Gemini 2.5 and later). */
function checkJsonSchemaSupport(request, modelId) {
  if (traitsOf(modelId).jsonSchema) return null;
  const unsupported = (field, instead) => `${field} is not supported for models/${modelId}. Use ${instead} instead.`;
  for (const tool of request.tools ?? []) {
    for (const declaration of tool.functionDeclarations ?? []) {
      if (declaration.parametersJsonSchema !== undefined) return unsupported('parameters_json_schema', 'parameters');
      if (declaration.responseJsonSchema !== undefined) return unsupported('response_json_schema', 'response');
    }
  }
  if (request.generationConfig?.responseJsonSchema !== undefined) return unsupported('response_json_schema', 'response_schema');
  return null;
}

function checkLogprobsSupport(config, modelId) {
  if (config?.responseLogprobs !== true || traitsOf(modelId).logprobs) return null;
  return `Logprobs is not enabled for models/${modelId}`;
}

/**
 * A user turn answering a model turn's function calls must answer all of
 * them, in the same turn.
 */
function checkFunctionTurns(contents) {
  const count = (content, kind) => (content.parts ?? []).filter((p) => p[kind]).length;
  for (let i = 1; i < contents.length; i += 1) {
    if (contents[i - 1].role !== 'model' || contents[i].role === 'model') continue;
    const calls = count(contents[i - 1], 'functionCall');
    const responses = count(contents[i], 'functionResponse');
    if (calls && responses && calls !== responses) {
      return (
        'Please ensure that the number of function response parts is equal to the number of function call ' +
        'parts of the function call turn.'
      );
    }
  }
  return null;
}

/**
 * Gemini 3 requires the thought signature it returned on the first
 * functionCall part of each model step of the current turn (everything after
 * the last user message that carries text) to be sent back.
 */
function checkThoughtSignatures(contents, modelId) {
  if (!traitsOf(modelId).thoughtSignatures) return null;
  const isUserText = (c) => c.role !== 'model' && (c.parts ?? []).some((p) => typeof p.text === 'string');
  const turnStart = contents.findLastIndex(isUserText) + 1;
  for (let i = turnStart; i < contents.length; i += 1) {
    if (contents[i].role !== 'model') continue;
    const firstCall = (contents[i].parts ?? []).find((p) => p.functionCall);
    if (firstCall && !firstCall.thoughtSignature) {
      return (
        'Function call is missing a thought_signature in functionCall parts. This is required for tools to work ' +
        'correctly, and missing thought_signature may lead to degraded model performance. Additional data, function ' +
        `call \`default_api:${firstCall.functionCall.name}\` , position ${i + 1}. Please refer to ` +
        'https://ai.google.dev/gemini-api/docs/thought-signatures for more details.'
      );
    }
  }
  return null;
}

/** Checks a batchEmbedContents request against the model named in the URL. */
export function checkBatchEmbed(request, modelId) {
  const requests = request.requests ?? [];
  if (requests.length === 0) return '* BatchEmbedContentsRequest.requests: requests is not specified\n';
  if (requests.length > 100) return '* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n';
  const lines = [];
  requests.forEach((r, i) => {
    const field = `* BatchEmbedContentsRequest.requests[${i}].model`;
    if (!r.model) lines.push(`${field}: model is not specified\n`);
    else if (!r.model.startsWith('models/')) lines.push(`${field}: unexpected model name format\n`);
    else if (r.model !== `models/${modelId}`) {
      lines.push(`${field}: model name in request must match the model name in the URL (models/${modelId})\n`);
    }
    if (!r.content) lines.push(`* BatchEmbedContentsRequest.requests[${i}].content: content is not specified\n`);
  });
  return lines.length ? lines.join('') : null;
}

export function checkEmbed(request) {
  return request.content ? null : '* EmbedContentRequest.content: content is not specified\n';
}
