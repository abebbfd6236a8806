// The official SDK clients the end-to-end tests drive, pointed at a stack's
// worker (the object tests/lib/harness.mjs startStack returns). Kept apart
// from util.mjs so files that use neither SDK do not load them.
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { CLIENT_TOKEN } from './harness.mjs';

/**
 * The OpenAI SDK on the worker's /v1, with the client token unless `apiKey`
 * says otherwise, and no retries (a retry would hide what the worker
 * answered). Other `options` go to the SDK as they are.
 */
export function openaiClient(stack, { apiKey = CLIENT_TOKEN, ...options } = {}) {
  return new OpenAI({ apiKey, baseURL: `${stack.url}/v1`, maxRetries: 0, ...options });
}

/** The Google GenAI SDK on the worker, with the client token; `timeout` bounds every request (ms). */
export function genaiClient(stack, httpOptions = {}) {
  return new GoogleGenAI({ apiKey: CLIENT_TOKEN, httpOptions: { baseUrl: stack.url, timeout: 60_000, ...httpOptions } });
}
