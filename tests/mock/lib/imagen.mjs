// Image and speech generation: Imagen's `:predict` and the image / audio parts
// `generateContent` returns when `generationConfig.responseModalities` asks for
// IMAGE or AUDIO. Wire formats as Google documents them:
//   POST /v1beta/models/{imagen-*}:predict
//     {instances: [{prompt}], parameters: {sampleCount, aspectRatio, ...}}
//     → {predictions: [{bytesBase64Encoded, mimeType}]}
//   generateContent, responseModalities ["TEXT", "IMAGE"] → an inlineData image/png part
//   generateContent on a *-tts model, responseModalities ["AUDIO"] and
//   speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName
//     → one inlineData part, mimeType "audio/L16;codec=pcm;rate=24000" (16-bit little-endian mono)

import { deflateSync } from 'node:zlib';

export const ASPECT_RATIOS = ['1:1', '3:4', '4:3', '9:16', '16:9'];
export const MAX_SAMPLES = 4;
export const TTS_RATE = 24000;
export const TTS_MIME = `audio/L16;codec=pcm;rate=${TTS_RATE}`;
/** Samples of speech per word of input (0.1 s at 24 kHz). */
export const SAMPLES_PER_WORD = 2400;

/** Gemini's prebuilt TTS voices. */
export const VOICES = [
  'Zephyr', 'Puck', 'Charon', 'Kore', 'Fenrir', 'Leda', 'Orus', 'Aoede', 'Callirrhoe', 'Autonoe',
  'Enceladus', 'Iapetus', 'Umbriel', 'Algieba', 'Despina', 'Erinome', 'Algenib', 'Rasalgethi',
  'Laomedeia', 'Achernar', 'Alnilam', 'Schedar', 'Gacrux', 'Pulcherrima', 'Achird', 'Zubenelgenubi',
  'Vindemiatrix', 'Sadachbia', 'Sadaltager', 'Sulafat',
];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid 2x2 RGB PNG whose colour is derived from `seed` (so samples differ). */
export function pngBase64(seed = 0) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const pixel = [seed & 0xff, (seed * 7) & 0xff, (seed * 13) & 0xff];
  const row = Buffer.from([0, ...pixel, ...pixel]);
  const raw = Buffer.concat([row, row]);
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return png.toString('base64');
}

/** The text a request asks to speak or draw: its last user turn's text parts. */
function promptText(request) {
  const last = (request.contents ?? []).findLast((c) => c.role !== 'model');
  return (last?.parts ?? []).map((p) => p.text ?? '').join('');
}

/** 16-bit little-endian PCM for `text`: a 440 Hz tone, SAMPLES_PER_WORD samples per word. */
export function speechPcm(text) {
  const words = Math.max(1, String(text).trim().split(/\s+/).filter(Boolean).length);
  const samples = words * SAMPLES_PER_WORD;
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i += 1) {
    pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / TTS_RATE)), i * 2);
  }
  return pcm;
}

export const isTtsModel = (id) => /-tts(-|$)/.test(id);
export const isImageModel = (id) => /-image(-|$)/.test(id);

const modalitiesOf = (request) => (request.generationConfig?.responseModalities ?? []).map((m) => String(m).toUpperCase());

/**
 * Google's refusals for output modalities: a TTS model takes only AUDIO, with a known
 * prebuilt voice when one is named; AUDIO needs a TTS model, IMAGE an image model.
 */
export function modalityProblem(request, modelId) {
  const modalities = modalitiesOf(request);
  if (isTtsModel(modelId)) {
    if (modalities.length !== 1 || modalities[0] !== 'AUDIO') {
      return 'The requested combination of response modalities (TEXT) is not supported by the model. models/' + modelId + ' accepts the following combination of response modalities:\n* AUDIO\n';
    }
    const voice = request.generationConfig?.speechConfig?.voiceConfig?.prebuiltVoiceConfig?.voiceName;
    if (voice !== undefined && !VOICES.includes(voice)) return `Voice name ${voice} is not supported.`;
    return null;
  }
  if (modalities.includes('AUDIO')) return 'Multi-modal output is not supported.';
  if (modalities.includes('IMAGE') && !isImageModel(modelId)) {
    return 'Model does not support the requested response modalities: image';
  }
  return null;
}

/**
 * The candidates for a request with media output, or null for a text-only one:
 * TTS → one audio part; IMAGE → a short text and one image part.
 */
export function mediaCandidates(request, modelId) {
  const modalities = modalitiesOf(request);
  if (isTtsModel(modelId) && modalities.includes('AUDIO')) {
    const data = speechPcm(promptText(request)).toString('base64');
    return [{ parts: [{ inlineData: { mimeType: TTS_MIME, data } }], finishReason: 'STOP', index: 0 }];
  }
  if (modalities.includes('IMAGE') && isImageModel(modelId)) {
    const text = promptText(request);
    return [{
      parts: [{ text: `Here is ${text}` }, { inlineData: { mimeType: 'image/png', data: pngBase64(text.length) } }],
      finishReason: 'STOP',
      index: 0,
    }];
  }
  return null;
}

/** Checks a `:predict` body; returns Google's INVALID_ARGUMENT message, or null. */
export function predictProblem(request) {
  const { instances, parameters = {} } = request;
  if (!Array.isArray(instances) || instances.length === 0) return 'instances: field is required';
  if (instances.length > 1) return 'Only one instance is supported.';
  const prompt = instances[0]?.prompt;
  if (typeof prompt !== 'string' || prompt.trim() === '') return 'instances[0].prompt: a prompt is required.';
  if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) return 'parameters: must be an object';
  const count = parameters.sampleCount ?? 4;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SAMPLES) {
    return `Number of images must be in the range [1, ${MAX_SAMPLES}], got ${count}.`;
  }
  const ratio = parameters.aspectRatio ?? '1:1';
  if (!ASPECT_RATIOS.includes(ratio)) return `Unsupported aspect ratio: ${ratio}. Supported: ${ASPECT_RATIOS.join(', ')}.`;
  return null;
}

/** The `:predict` answer: `sampleCount` (default 4) PNGs. */
export function predictResponse(request) {
  const count = request.parameters?.sampleCount ?? 4;
  const prompt = request.instances[0].prompt;
  return {
    predictions: Array.from({ length: count }, (_, i) => ({
      mimeType: 'image/png',
      bytesBase64Encoded: pngBase64(prompt.length + i),
    })),
  };
}
