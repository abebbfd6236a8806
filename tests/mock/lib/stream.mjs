// Writes a list of response objects as a stream, with the scripted timing
// faults: delays between events, a mid-event cut, and a hold before the last.

import { JSON_TYPE, pause, startStream } from './http.mjs';
import { pretty, sseCompact } from './json.mjs';

/**
 * `?alt=sse`: one `data: {json}` line per event, events separated by CRLF
 * CRLF, and no `[DONE]` sentinel: the stream just ends.
 */
export const SSE = {
  contentType: 'text/event-stream',
  frame: (object) => `data: ${sseCompact(object)}\r\n\r\n`,
  trailer: () => '',
};

/**
 * Without alt=sse Google streams one JSON array, written piece by piece:
 * `[{...}\n` then `,\r\n{...}\n` per further element, then `]`.
 */
export const JSON_ARRAY = {
  contentType: JSON_TYPE,
  frame: (object, index) => `${index === 0 ? '[' : ',\r\n'}${pretty(object)}\n`,
  trailer: (count) => (count === 0 ? '[]' : ']'),
};

/**
 * Streams `objects` on `res`. Behaviour fields used: eventDelayMs,
 * cutAfterEvents, holdBeforeLast. Fills `call.eventTimes`,
 * `call.lastEventSentAt`, and `call.heldAt` / `call.releasedAt` / `call.cut`.
 */
export async function writeStream({ res, framing, objects, behaviour, call, state, signal }) {
  const { eventDelayMs = 0, cutAfterEvents, holdBeforeLast } = behaviour;
  startStream(res, framing.contentType);
  call.status = 200;
  call.eventTimes = [];
  for (let i = 0; i < objects.length; i += 1) {
    if (i > 0 && !(await pause(eventDelayMs, signal))) return;
    const bytes = Buffer.from(framing.frame(objects[i], i));
    if (cutAfterEvents === i) {
      await cutMidEvent(res, bytes, call, i);
      return;
    }
    if (holdBeforeLast && i === objects.length - 1 && !(await hold(holdBeforeLast, call, state, signal))) return;
    if (!(await write(res, bytes, signal))) return;
    call.eventTimes.push(Date.now());
    state.emit('event', { call, index: i });
  }
  call.lastEventSentAt = call.eventTimes.at(-1);
  res.end(framing.trailer(objects.length));
}

/**
 * Waits at `gate` (see `holdBeforeLast`), filling `call.heldAt`,
 * `call.releasedAt` and `call.gateOutcome`; false when the client went away.
 * A non-stream answer is its own last event: it waits here before anything is sent.
 */
export async function hold(gate, call, state, signal) {
  call.heldAt = Date.now();
  const outcome = await state.waitGate(gate, call, signal);
  call.releasedAt = Date.now();
  call.gateOutcome = outcome;
  return outcome !== 'aborted';
}

/** Writes the first half of an event's bytes, then destroys the socket. */
async function cutMidEvent(res, bytes, call, afterEvents) {
  const half = bytes.subarray(0, Math.floor(bytes.length / 2));
  await new Promise((resolve) => res.write(half, resolve));
  call.cut = { afterEvents, bytesWritten: half.length, at: Date.now() };
  res.destroy();
}

/** Resolves true once `bytes` are handed to the socket, false if the request ended first. */
function write(res, bytes, signal) {
  if (signal.aborted || res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    res.write(bytes, (err) => {
      signal.removeEventListener('abort', onAbort);
      resolve(!err);
    });
  });
}
