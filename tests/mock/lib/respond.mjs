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
