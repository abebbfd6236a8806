// Sending a handler's answer and noting it in the call record.

import { JSON_TYPE, sendGoogleJson, sendPlainJson, sendRaw } from './http.mjs';

/**
 * Sends `{ status, body }` as Google JSON (or `plain` compact JSON, for the
 * OAuth endpoints). A string body is sent verbatim with `contentType`
 * (default JSON), for raw scripted faults.
 */
export function send(ctx, { status, body, contentType }, { plain = false } = {}) {
  const { call, res } = ctx;
  call.status = status;
  if (status >= 400) call.error = body;
  else call.response = body;
  if (typeof body === 'string') sendRaw(res, status, contentType ?? JSON_TYPE, body);
  else if (plain) sendPlainJson(res, status, body, contentType ?? 'application/json; charset=utf-8');
  else sendGoogleJson(res, status, body);
}

/**
 * Notes what `MockState.resolve` decided on the call record: `rule` (the
 * matched rule's id or null), `flaky` (a flaky rule's draw) and `fault` (the
 * fault applied: its name, `raw` for a `{status, body}` fault, or `slow`).
 */
export function noteScripted(call, { behaviour, ruleId, flaky }) {
  call.rule = ruleId;
  if (flaky) call.flaky = flaky;
  const fault = behaviour.slow ? 'slow' : typeof behaviour.fault === 'object' && behaviour.fault ? 'raw' : behaviour.fault;
  if (fault) call.fault = fault;
}

/**
 * The `drop` fault: the connection is reset without a byte of response, as
 * a client sees a network failure. `call.status` stays null.
 */
export function dropConnection(ctx) {
  const { call, res } = ctx;
  call.droppedAt = Date.now();
  const socket = res.socket ?? ctx.req.socket;
  if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else res.destroy();
}
