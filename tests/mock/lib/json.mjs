// JSON the way Google's front end writes it.

/**
 * Google's JSON writer escapes `<`, `>`, `&` and `=` inside strings as
 * \u003c, \u003e, \u0026 and \u003d (HTML-safe output). They can only occur
 * inside strings in serialized JSON, so a plain replace is safe. Clients that
 * decode JSON properly never notice; clients that grep raw bytes do.
 */
function htmlSafe(json) {
  return json.replace(/[<>&=]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Non-streamed bodies: pretty-printed with two-space indentation, as Google sends them. */
export function pretty(value) {
  return htmlSafe(JSON.stringify(value, null, 2));
}

/**
 * SSE payloads are one line, but not `JSON.stringify` compact: Google puts a
 * space after every colon and none after commas:
 * `{"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"}}]}`.
 */
export function sseCompact(value) {
  return htmlSafe(compact(value));
}

function compact(value) {
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? 'null' : compact(item))).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}: ${compact(v)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}
