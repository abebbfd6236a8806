// Server-side image_url fetches (issue 3, acceptance 6): they work against the
// mock's media endpoint (the one private target the harness allows), use the
// real mime type, and are refused for private addresses and other schemes,
// limited in size and in time. Refusals never reach Gemini.
// The models are named -vision-: a model named -image- draws images in chat
// (the gateway then asks Gemini for IMAGE output), which is not what these test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';
import { mediaBytes } from '../mock/lib/media.mjs';

let stack;
let client;
const MAX_BYTES = 64 * 1024;
const TIMEOUT_MS = 1_500;

before(async () => {
  stack = await startStack({
    keys: ['ok-image-1'],
    settings: { image_fetch_max_bytes: MAX_BYTES, image_fetch_timeout_ms: TIMEOUT_MS },
  });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

const media = (name, query = '') => `${stack.mock.url}/media/${name}${query ? `?${query}` : ''}`;

async function withImage(model, url, extra = {}) {
  const res = await client.chat.completions.create({
    model,
    messages: [{
      role: 'user',
      content: [{ type: 'text', text: 'describe' }, { type: 'image_url', image_url: { url, detail: 'high' } }],
    }],
    ...extra,
  });
  assertMatchesSchema('CreateChatCompletionResponse', res, url);
  return res;
}

const mediaCalls = async (name) => (await stack.mockApi.calls({ action: 'media' })).filter((c) => c.path.startsWith(`/media/${name}`));

test('an http image is fetched and inlined with its real mime type', async () => {
  const model = 'gemini-2.5-flash-vision-ok';
  const res = await withImage(model, media('cat.jpg', 'type=image/jpeg&bytes=3000'));
  assert.equal(res.choices[0].message.content, 'echo: describe');
  const call = await lastCall(stack, model);
  const part = call.body.contents[0].parts[1].inlineData;
  assert.equal(part.mimeType, 'image/jpeg');
  assert.equal(part.data, mediaBytes({ type: 'image/jpeg', bytes: 3000 }).toString('base64'));
  assert.equal((await mediaCalls('cat.jpg')).length, 1);
});

test('without a Content-Type the bytes decide; a redirect to an allowed target is followed', async () => {
  const model = 'gemini-2.5-flash-vision-sniff';
  await withImage(model, media('sniff.webp', 'type=none&body=image/webp&bytes=500'));
  let part = (await lastCall(stack, model)).body.contents[0].parts[1].inlineData;
  assert.equal(part.mimeType, 'image/webp');
  assert.equal(part.data, mediaBytes({ type: 'image/webp', bytes: 500 }).toString('base64'));

  await withImage(model, media('hop', `redirect=${encodeURIComponent(media('target.gif', 'type=image/gif&bytes=100'))}`));
  part = (await lastCall(stack, model)).body.contents[0].parts[1].inlineData;
  assert.equal(part.mimeType, 'image/gif');
  assert.equal(part.data, mediaBytes({ type: 'image/gif', bytes: 100 }).toString('base64'));
});

test('private, loopback and non-http targets are refused before any fetch or upstream call', async () => {
  const model = 'gemini-2.5-flash-vision-refused';
  const mockPort = new URL(stack.mock.url).port;
  const refused = [
    [`http://127.0.0.1:${Number(mockPort) + 1}/media/x.png`, /private|loopback/],
    [`http://localhost:${mockPort}/media/x.png`, /private|loopback/],
    ['http://10.0.0.7/x.png', /private/],
    ['http://169.254.169.254/latest/meta-data/', /private/],
    ['http://[::1]/x.png', /private/],
    ['http://2130706433/x.png', /private/],
    ['http://0x7f.1/x.png', /private/],
    ['file:///etc/passwd', /http/],
    ['ftp://example.com/x.png', /http/],
    ['http://user:pw@example.com/x.png', /username/],
  ];
  const before = (await stack.mockApi.calls({ action: 'media' })).length;
  for (const [url, why] of refused) {
    await assert.rejects(withImage(model, url), (e) => {
      assert.equal(e.status, 400, url);
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.param, 'messages[0].content[1].image_url', url);
      assert.match(e.message, why, url);
      return true;
    });
  }
  // A redirect from the allowed mock to a private address is refused at the hop.
  await assert.rejects(withImage(model, media('hop-private', `redirect=${encodeURIComponent('http://192.168.1.1/x.png')}`)), (e) => e.status === 400 && /private/.test(e.message));
  const fetched = (await stack.mockApi.calls({ action: 'media' })).length - before;
  assert.equal(fetched, 1, 'only the allowed first hop was fetched');
  assert.equal((await stack.mockApi.calls({ model })).length, 0, 'nothing reached Gemini');
});

test('the size cap holds with and without Content-Length', async () => {
  const model = 'gemini-2.5-flash-vision-big';
  for (const query of [`bytes=${MAX_BYTES + 1}`, `bytes=${MAX_BYTES * 4}&chunked=1`]) {
    await assert.rejects(withImage(model, media('big.png', query)), (e) => e.status === 400 && /larger than/.test(e.message), query);
  }
  // Exactly at the cap is fine.
  await withImage(model, media('edge.png', `bytes=${MAX_BYTES}`));
  assert.equal((await stack.mockApi.calls({ model })).length, 1);
});

test('a slow image is cut off at the deadline, and non-images and HTTP errors are refused', async () => {
  const model = 'gemini-2.5-flash-vision-slow';
  await assert.rejects(withImage(model, media('slow.png', `delayMs=${TIMEOUT_MS * 4}`)), (e) => e.status === 400 && /timed out/.test(e.message));
  await assert.rejects(withImage(model, media('stall.png', `bytes=4000&stallMs=${TIMEOUT_MS * 4}`)), (e) => e.status === 400 && /timed out/.test(e.message));
  await assert.rejects(withImage(model, media('page.html', 'type=text/html')), (e) => e.status === 400 && /text\/html/.test(e.message));
  await assert.rejects(withImage(model, media('gone.png', 'status=404')), (e) => e.status === 400 && /404/.test(e.message));
  assert.equal((await stack.mockApi.calls({ model })).length, 0);
});

test('input_audio and PDF file parts become inlineData', async () => {
  const model = 'gemini-2.5-flash-vision-files';
  const pdf = mediaBytes({ type: 'application/pdf', bytes: 64 }).toString('base64');
  const wav = Buffer.from('RIFF0000WAVEfmt ').toString('base64');
  await client.chat.completions.create({
    model,
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'read' },
        { type: 'file', file: { filename: 'a.pdf', file_data: `data:application/pdf;base64,${pdf}` } },
        { type: 'input_audio', input_audio: { data: wav, format: 'wav' } },
      ],
    }],
  });
  const parts = (await lastCall(stack, model)).body.contents[0].parts;
  assert.deepEqual(parts[1].inlineData, { mimeType: 'application/pdf', data: pdf });
  assert.deepEqual(parts[2].inlineData, { mimeType: 'audio/wav', data: wav });
});
