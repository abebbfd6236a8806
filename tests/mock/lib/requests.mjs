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
  FLOAT,
  INT32,
  INT64,
  STRING,
  decode,
  enumeration,
  mapOf,
  message,
  repeated,
} from './proto.mjs';
import { traitsOf } from './models.mjs';

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

export const REQUEST_TYPES = {
  generateContent: GenerateContentRequest,
  streamGenerateContent: GenerateContentRequest,
  countTokens: CountTokensRequest,
  embedContent: EmbedContentRequest,
  batchEmbedContents: BatchEmbedContentsRequest,
  'v1internal.generateContent': CodeAssistGenerateRequest,
  'v1internal.streamGenerateContent': CodeAssistGenerateRequest,
  'v1internal.countTokens': CodeAssistCountTokensRequest,
};

/**
 * Parses a body string as `type`. Returns `{ value }` or `{ violations }`.
 * An empty body is an empty message, as for Google.
 */
export function parseRequest(type, text) {
  let json;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    return { violations: [{ description: jsonSyntaxMessage(text, err) }] };
  }
  const { value, violations } = decode(type, json);
  return violations.length ? { violations } : { value };
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
  const lines = requirementLines(prefix, contents);
  if (systemInstruction) {
    const si = requirementLines(prefix, [systemInstruction], 'system_instruction');
    lines.push(...si.map((line) => line.replace('system_instruction[0]', 'system_instruction')));
  }
  if (lines.length) return lines.join('');
  return checkRoles(contents);
}

/**
 * Checks a parsed GenerateContentRequest for model `modelId`. Returns the
 * 400 message, or null when Google would accept the request.
 */
export function checkGenerateContent(request, modelId, prefix = 'GenerateContentRequest') {
  return (
    checkContents(request, prefix) ??
    checkModelSpecific(request, modelId) ??
    checkThoughtSignatures(request.contents, modelId)
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
  const budget = request.generationConfig?.thinkingConfig?.thinkingBudget;
  if (budget === 0 && traits.alwaysThinks && !traits.thoughtSignatures) {
    return 'Budget 0 is invalid. This model only works in thinking mode.';
  }
  // Before Gemini 3, function calling and JSON mode could not be combined.
  const hasFunctions = request.tools?.some((tool) => tool.functionDeclarations?.length);
  if (hasFunctions && request.generationConfig?.responseMimeType === 'application/json' && !traits.thoughtSignatures) {
    return "Function calling with a response mime type: 'application/json' is unsupported";
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
