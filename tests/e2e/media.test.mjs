// Images and speech through the official OpenAI SDK against the mock:
// /v1/images/generations on Imagen (:predict) and Gemini image models
// (generateContent with image output), b64_json and worker-served URLs that
// expire; /v1/audio/speech on Gemini TTS as WAV (header matching the rate the
// mock declares) and raw PCM; failover, a user key's charge, and bad input as
// OpenAI-shaped 400s. Native TTS requests pass through unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, CLIENT_TOKEN } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { json, pollUntil, upstreamCallsDuring, waitForSettlements, charged } from '../lib/util.mjs';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const KEYS = ['ok-media-alpha', 'ok-media-beta'];

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: KEYS });
  client = openaiClient(stack, { timeout: 60_000 });
});
after(async () => stack?.stop());

const isPng = (buf) => PNG_MAGIC.every((b, i) => buf[i] === b);

/** The upstream calls a request made, with their decoded bodies. */
async function traced(fn) {
  const { result, calls } = await upstreamCallsDuring(stack, fn);
  return { result, calls: calls.filter((c) => c.action !== 'models.list') };
}

test('images.generate on an Imagen model goes through :predict with n and size mapped', async () => {
  const model = 'imagen-4.0-generate-media1';
  const { result, calls } = await traced(() =>
    client.images.generate({ model, prompt: 'a red fox in snow', n: 2, size: '1792x1024', response_format: 'b64_json' }));
  assert.equal(result.data.length, 2);
  for (const item of result.data) assert.ok(isPng(Buffer.from(item.b64_json, 'base64')), 'not a PNG');
  assert.equal(typeof result.created, 'number');
  assert.equal(calls.length, 1, JSON.stringify(calls.map((c) => c.action)));
  assert.equal(calls[0].action, 'predict');
  assert.deepEqual(calls[0].body, {
    instances: [{ prompt: 'a red fox in snow' }],
    parameters: { sampleCount: 2, aspectRatio: '16:9' },
  });
});

test('images.generate on a Gemini image model calls generateContent once per image', async () => {
  const model = 'gemini-2.5-flash-image-media2';
  const { result, calls } = await traced(() =>
    client.images.generate({ model, prompt: 'a blue bird', n: 2, size: '1024x1792', response_format: 'b64_json' }));
  assert.equal(result.data.length, 2);
  for (const item of result.data) assert.ok(isPng(Buffer.from(item.b64_json, 'base64')), 'not a PNG');
  assert.equal(calls.length, 2);
  for (const call of calls) {
    assert.equal(call.action, 'generateContent');
    assert.deepEqual(call.body.generationConfig, { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '9:16' } });
    assert.equal(call.body.contents[0].parts[0].text, 'a blue bird');
  }
});

test('prompt tags {n:…} and {ratio:…} override n and size and leave the prompt', async () => {
  const model = 'imagen-4.0-generate-media3';
  const { result, calls } = await traced(() =>
    client.images.generate({ model, prompt: 'a cat {n:3} {ratio:4:3}', n: 1, response_format: 'b64_json' }));
  assert.equal(result.data.length, 3);
  assert.deepEqual(calls[0].body.parameters, { sampleCount: 3, aspectRatio: '4:3' });
  assert.equal(calls[0].body.instances[0].prompt, 'a cat');
});

test('response_format url: the worker serves the PNG, and the link expires', async () => {
  const model = 'imagen-4.0-generate-media4';
  const result = await client.images.generate({ model, prompt: 'a lighthouse', response_format: 'url' });
  const { url } = result.data[0];
  assert.ok(url.startsWith(`${stack.url}/v1/images/files/`), url);
  // No credentials: the link itself is the key.
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control'))?.[1]);
  assert.ok(maxAge > 3500 && maxAge <= 3600, `max-age ${maxAge}`);
  assert.ok(isPng(Buffer.from(await res.arrayBuffer())));
  // An id that was never handed out is a 404 in OpenAI's shape.
  const missing = await fetch(`${stack.url}/v1/images/files/${'0'.repeat(32)}`);
  assert.equal(missing.status, 404);
  assert.equal(typeof (await missing.json()).error.message, 'string');

  await stack.admin('PATCH', '/settings', { image_url_ttl_secs: 1 });
  try {
    const short = await client.images.generate({ model, prompt: 'a short-lived lighthouse', response_format: 'url' });
    const link = short.data[0].url;
    const status = await pollUntil(
      async () => (await fetch(link)).status,
      (s) => s === 404,
      Date.now() + 20_000,
      'the image link to expire',
      250,
    );
    assert.equal(status, 404);
  } finally {
    await stack.admin('PATCH', '/settings', { image_url_ttl_secs: null });
  }
});

test('a failing first key fails over: the client still gets its images', async () => {
  const model = 'imagen-4.0-generate-media5';
  await stack.mockApi.script({ model, fault: 'rate_limit_minute', times: 1 });
  const { result, calls } = await traced(() =>
    client.images.generate({ model, prompt: 'a storm', n: 1, response_format: 'b64_json' }));
  assert.equal(result.data.length, 1);
  assert.equal(calls.length, 2, 'one failed call, one on another key');
  assert.equal(calls[0].status, 429);
  assert.notEqual(calls[0].key, calls[1].key);

  const tts = 'gemini-2.5-flash-preview-tts-media5';
  await stack.mockApi.script({ model: tts, fault: 'server_503', times: 1 });
  const speech = await traced(() => client.audio.speech.create({ model: tts, input: 'hello', voice: 'alloy', response_format: 'wav' }));
  assert.equal(speech.result.status, 200);
  assert.equal(speech.calls.length, 2);
});

/** The RIFF/WAVE header fields of a WAV file. */
function wavHeader(buf) {
  return {
    riff: buf.toString('latin1', 0, 4),
    wave: buf.toString('latin1', 8, 12),
    format: buf.readUInt16LE(20),
    channels: buf.readUInt16LE(22),
    rate: buf.readUInt32LE(24),
    byteRate: buf.readUInt32LE(28),
    bits: buf.readUInt16LE(34),
    data: buf.toString('latin1', 36, 40),
    dataLen: buf.readUInt32LE(40),
    riffLen: buf.readUInt32LE(4),
  };
}

test('audio.speech.create returns a WAV whose header matches the rate the mock declares', async () => {
  const model = 'gemini-2.5-flash-preview-tts-media6';
  const { result, calls } = await traced(() =>
    client.audio.speech.create({ model, input: 'hello there world', voice: 'nova', response_format: 'wav' }));
  assert.equal(result.headers.get('content-type'), 'audio/wav');
  const buf = Buffer.from(await result.arrayBuffer());
  const h = wavHeader(buf);
  // The mock answers audio/L16;codec=pcm;rate=24000, 2400 samples per word.
  const pcmLen = 3 * 2400 * 2;
  assert.deepEqual(h, {
    riff: 'RIFF', wave: 'WAVE', format: 1, channels: 1, rate: 24000, byteRate: 48000, bits: 16,
    data: 'data', dataLen: pcmLen, riffLen: pcmLen + 36,
  });
  assert.equal(buf.length, 44 + pcmLen);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].body.generationConfig, {
    responseModalities: ['AUDIO'],
    speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: 'Kore' } } },
  });
});

test('speech: pcm is the raw samples, Gemini voice names work, tts-1 maps to Gemini TTS', async () => {
  const res = await client.audio.speech.create({ model: 'tts-1', input: 'one two', voice: 'Puck', response_format: 'pcm' });
  assert.equal(res.headers.get('content-type'), 'audio/pcm');
  const buf = Buffer.from(await res.arrayBuffer());
  assert.equal(buf.length, 2 * 2400 * 2);
  const call = (await stack.mockApi.calls({ model: 'gemini-2.5-flash-preview-tts' })).at(-1);
  assert.equal(call.body.generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName, 'Puck');
});

test('native TTS requests pass through to Google unchanged', async () => {
  const model = 'gemini-2.5-flash-preview-tts-media7';
  const body = {
    contents: [{ role: 'user', parts: [{ text: 'say hi' }] }],
    generationConfig: { responseModalities: ['AUDIO'], speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: 'Charon' } } } },
  };
  const res = await stack.call('POST', `/v1beta/models/${model}:generateContent`, { body, token: null, headers: { 'x-goog-api-key': CLIENT_TOKEN } });
  const out = await json(res);
  assert.equal(res.status, 200, JSON.stringify(out));
  assert.equal(out.candidates[0].content.parts[0].inlineData.mimeType, 'audio/L16;codec=pcm;rate=24000');
});

test('a user key is charged per image and per speech request, at the model price', async () => {
  const created = await stack.admin('POST', '/users', { name: 'media-user', credit_quota: 1_000 });
  const user = new OpenAI({ apiKey: created.key, baseURL: `${stack.url}/v1`, maxRetries: 0, timeout: 60_000 });
  // imagen-* is neither Pro- nor Flash-class: 1 credit per image, so n: 2 costs 2.
  await user.images.generate({ model: 'imagen-4.0-generate-media8', prompt: 'two moons', n: 2, response_format: 'b64_json' });
  let settled = await waitForSettlements(stack, created.user.id, 1, { where: charged });
  assert.equal(settled[0].charged, 2);
  // A Flash-class TTS model costs 2 per request.
  const speech = await user.audio.speech.create({ model: 'gemini-2.5-flash-preview-tts-media8', input: 'hi', voice: 'alloy', response_format: 'wav' });
  await speech.arrayBuffer();
  settled = await waitForSettlements(stack, created.user.id, 2, { where: charged });
  assert.equal(settled[1].charged, 2);
});

/** Sends a raw body and checks the 400 is in OpenAI's shape, naming `param`. */
async function refused(path, body, param) {
  const res = await stack.call('POST', path, { body });
  const out = await json(res);
  assert.equal(res.status, 400, `${JSON.stringify(body)} → ${res.status} ${JSON.stringify(out)}`);
  assert.equal(typeof out.error.message, 'string');
  assert.equal(out.error.type, 'invalid_request_error');
  assert.ok('code' in out.error && 'param' in out.error, JSON.stringify(out));
  assert.equal(out.error.param, param, JSON.stringify(out));
  return out.error.message;
}

test('bad input is a 400 in OpenAI shape, before any upstream call', async () => {
  const { calls } = await upstreamCallsDuring(stack, async () => {
    const img = '/v1/images/generations';
    await refused(img, { model: 'imagen-4.0-generate-001', n: 1 }, 'prompt');
    await refused(img, { prompt: '' }, 'prompt');
    await refused(img, { prompt: 'x', n: 0 }, 'n');
    await refused(img, { prompt: 'x', n: 5 }, 'n');
    await refused(img, { prompt: 'x', size: '333x333' }, 'size');
    await refused(img, { prompt: 'x {n:9}' }, 'prompt');
    const sp = '/v1/audio/speech';
    await refused(sp, { model: 'tts-1', input: 'x', voice: 'nobody' }, 'voice');
    await refused(sp, { model: 'tts-1', input: '', voice: 'alloy' }, 'input');
    await refused(sp, { model: 'tts-1', voice: 'alloy' }, 'input');
    for (const format of ['mp3', 'opus', 'aac', 'flac']) {
      const message = await refused(sp, { model: 'tts-1', input: 'x', voice: 'alloy', response_format: format }, 'response_format');
      assert.match(message, /wav/);
      assert.match(message, /pcm/);
    }
  });
  assert.equal(calls.filter((c) => c.action !== 'models.list').length, 0);
  // Through the SDK too.
  await assert.rejects(
    client.images.generate({ model: 'imagen-4.0-generate-001', prompt: 'x', n: 7 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n',
  );
  await assert.rejects(
    client.audio.speech.create({ model: 'tts-1', input: 'x', voice: 'alloy', response_format: 'mp3' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'response_format',
  );
});

test('chat with an image model: Markdown data URLs by default, image_url parts by setting', async () => {
  const model = 'gemini-2.5-flash-image-media9';
  const ask = () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'draw a kite' }] });
  const { result: markdown, calls } = await traced(ask);
  assert.deepEqual(calls[0].body.generationConfig.responseModalities, ['TEXT', 'IMAGE']);
  const content = markdown.choices[0].message.content;
  const m = /!\[image\]\(data:image\/png;base64,([A-Za-z0-9+/=]+)\)/.exec(content);
  assert.ok(m, content);
  assert.ok(isPng(Buffer.from(m[1], 'base64')));
  assert.equal(markdown.choices[0].message.images, undefined);

  await stack.admin('PATCH', '/settings', { chat_image_output: 'parts' });
  try {
    const parts = await ask();
    const message = parts.choices[0].message;
    assert.ok(!message.content.includes('![image]'), message.content);
    assert.equal(message.images.length, 1);
    assert.equal(message.images[0].type, 'image_url');
    assert.match(message.images[0].image_url.url, /^data:image\/png;base64,/);
    // Streams carry the parts in a delta.
    const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'draw a kite' }] });
    const images = [];
    let text = '';
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta ?? {};
      images.push(...(delta.images ?? []));
      text += delta.content ?? '';
    }
    assert.equal(images.length, 1);
    assert.match(images[0].image_url.url, /^data:image\/png;base64,/);
    assert.ok(!text.includes('![image]'));
  } finally {
    await stack.admin('PATCH', '/settings', { chat_image_output: null });
  }
});
