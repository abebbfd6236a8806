// Hostile requests generated systematically for tests/e2e/hostile.test.mjs:
// every field of a surface with every wrong JSON type, bodies that are not
// the JSON a route takes, oversize bodies, every route with methods it does
// not take and with credentials that are not its own, paths that name
// nothing, and query parameters out of range. Each row names its expected
// status and the surface whose error shape the answer must have.
//
// A row: { name, method, path, headers, body, status, surface, upstream? }.
// `headers` may be a function (the fixture users' keys exist only once the
// stack runs). `upstream: true` marks a request the gateway passes on and
// Google refuses; every other row must not reach the upstream at all.

export const OPENAI = 'openai';
export const GEMINI = 'gemini';
/** Anthropic's `{"type": "error", "error": {"type", "message"}}`. */
export const ANTHROPIC = 'anthropic';
/** The admin API answers in OpenAI's shape. */
export const ADMIN = OPENAI;

/** A JSON value in a row name. */
const show = (v) => (v === undefined ? 'absent' : JSON.stringify(v).slice(0, 24));

/** Values of every JSON type that a field of `kind` does not take. */
export const WRONG = {
  string: [42, true, [], {}],
  number: ['0.5', true, [], {}],
  uint: ['7', 1.5, -1, true, [], {}],
  int: ['7', 1.5, true, [], {}],
  bool: ['yes', 1, [], {}],
  array: ['x', 5, true, {}],
  object: ['x', 5, true, []],
  stringOrArray: [42, true, {}],
  stringOrObject: [42, true, []],
};

/**
 * The bodies a JSON route must refuse before reading any field: JSON cut
 * short, JSON with trailing bytes, a JSON value that is not an object, a
 * form-encoded body, a byte-order mark, bytes that are not UTF-8.
 */
export function syntaxBodies(valid, { arrayIsABody = false } = {}) {
  const text = JSON.stringify(valid);
  const bodies = [
    ['JSON cut short', text.slice(0, Math.max(1, Math.floor(text.length / 2)))],
    ['JSON with trailing bytes', `${text} }`],
    ['two JSON objects', `${text}${text}`],
    ['a JSON array', `[${text}]`],
    ['an empty JSON array', '[]'],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['JSON true', 'true'],
    ['a form-encoded body', 'model=gemini-2.5-flash&messages=hi', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['a UTF-8 byte-order mark before the JSON', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
    ['a NUL byte before the JSON', `\u0000${text}`],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
  ];
  // Where a list is a body of its own (a batch of credentials), it is not a hostile one.
  return arrayIsABody ? bodies.filter(([what]) => what !== 'a JSON array') : bodies;
}

/**
 * Generates the rows. `ctx` holds the request pieces the table shares:
 * `{ bearer, goog, admin, json, model, bodyCap, adminCap, users }`, where
 * `users` is `{ active, disabled, rotated }` (functions giving each fixture
 * user's key once it exists).
 */
export function generatedRows(ctx) {
  const rows = [];
  const add = (row) => rows.push(row);
  const { bearer, goog, admin, json, model } = ctx;

  // ---- OpenAI chat: every field with every wrong type --------------------------------
  const chatBase = { model, messages: [{ role: 'user', content: 'hi' }] };
  const chat = (name, body, status = 400, more = {}) => add({
    name: `gen chat: ${name}`, method: 'POST', path: '/v1/chat/completions', headers: { ...bearer(), ...json },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status, surface: OPENAI, ...more,
  });
  const CHAT_FIELDS = {
    model: 'string', messages: 'array', stream: 'bool', stream_options: 'object', temperature: 'number',
    top_p: 'number', max_tokens: 'uint', max_completion_tokens: 'uint', n: 'uint', seed: 'int',
    stop: 'stringOrArray', presence_penalty: 'number', frequency_penalty: 'number', user: 'string',
    logprobs: 'bool', top_logprobs: 'uint', reasoning_effort: 'string', tools: 'array',
    tool_choice: 'stringOrObject', response_format: 'object', parallel_tool_calls: 'bool',
  };
  for (const [field, kind] of Object.entries(CHAT_FIELDS)) {
    for (const value of WRONG[kind]) chat(`${field} = ${show(value)}`, { ...chatBase, [field]: value });
  }
  // Out of range, though of the right type.
  for (const [field, value] of [
    ['temperature', 3], ['temperature', -0.5], ['top_p', 1.5], ['n', 0], ['n', 9], ['top_logprobs', 21],
    ['presence_penalty', 2.5], ['frequency_penalty', -2.5], ['reasoning_effort', 'extreme'],
    ['stop', ['a', 'b', 'c', 'd', 'e', 'f']], ['seed', 2 ** 40], ['max_tokens', 2 ** 33],
  ]) chat(`${field} out of range (${show(value)})`, { ...chatBase, [field]: value });
  // One message, each of its fields with every wrong type.
  const MESSAGE_FIELDS = { role: 'string', content: 'string', name: 'string', tool_calls: 'array' };
  for (const [field, kind] of Object.entries(MESSAGE_FIELDS)) {
    const wrong = field === 'content' ? [42, true, {}] : WRONG[kind];
    for (const value of wrong) {
      const message = { role: field === 'tool_calls' ? 'assistant' : 'user', content: 'hi', [field]: value };
      chat(`messages[0].${field} = ${show(value)}`, { model, messages: [message, { role: 'user', content: 'next' }] });
    }
  }
  for (const [what, message] of [
    ['a tool result without tool_call_id', { role: 'tool', content: 'r' }],
    ['a tool result for a call never made', { role: 'tool', tool_call_id: 'call_nope', content: 'r' }],
    ['a tool call whose arguments are not JSON', { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{nope' } }] }],
    ['a tool call without a function', { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function' }] }],
    ['a content part without a type', { role: 'user', content: [{ text: 'x' }] }],
    ['a text part whose text is a number', { role: 'user', content: [{ type: 'text', text: 5 }] }],
    ['an image_url part without a url', { role: 'user', content: [{ type: 'image_url', image_url: {} }] }],
    ['an input_audio part of an unknown format', { role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'midi' } }] }],
  ]) chat(`messages: ${what}`, { model, messages: [message, { role: 'user', content: 'next' }] });
  for (const [what, tools] of [
    ['a tool without a function', [{ type: 'function' }]],
    ['a function without a name', [{ type: 'function', function: { parameters: { type: 'object' } } }]],
    ['parameters that are a string', [{ type: 'function', function: { name: 'f', parameters: 'object' } }]],
    ['parameters whose $ref goes nowhere', [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { $ref: '#/$defs/none' } } } } }]],
  ]) chat(`tools: ${what}`, { ...chatBase, tools });
  chat('response_format json_schema without its json_schema', { ...chatBase, response_format: { type: 'json_schema' } });
  chat('response_format json_schema whose schema is a string', { ...chatBase, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: 'object' } } });
  chat('response_format of an unknown type', { ...chatBase, response_format: { type: 'yaml' } });
  chat('tool_choice naming a function that is not a tool', { ...chatBase, tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } });
  // Bodies that are not the JSON object the route takes.
  for (const [what, body, headers] of syntaxBodies(chatBase)) {
    add({ name: `gen chat: body is ${what}`, method: 'POST', path: '/v1/chat/completions',
      headers: { ...bearer(), ...json, ...headers }, body, status: 400, surface: OPENAI });
  }

  // ---- OpenAI embeddings --------------------------------------------------------------
  const embedBase = { model: 'gemini-embedding-001', input: 'x' };
  const embed = (name, body) => add({
    name: `gen embeddings: ${name}`, method: 'POST', path: '/v1/embeddings', headers: { ...bearer(), ...json },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status: 400, surface: OPENAI,
  });
  const EMBED_FIELDS = { model: 'string', input: 'stringOrArray', encoding_format: 'string', dimensions: 'uint', user: 'string' };
  for (const [field, kind] of Object.entries(EMBED_FIELDS)) {
    for (const value of WRONG[kind]) embed(`${field} = ${show(value)}`, { ...embedBase, [field]: value });
  }
  embed('input holds a number among strings', { ...embedBase, input: ['a', 5] });
  embed('input holds an empty string', { ...embedBase, input: ['a', ''] });
  for (const [what, body, headers] of syntaxBodies(embedBase)) {
    add({ name: `gen embeddings: body is ${what}`, method: 'POST', path: '/v1/embeddings',
      headers: { ...bearer(), ...json, ...headers }, body, status: 400, surface: OPENAI });
  }

  // ---- OpenAI images and speech ------------------------------------------------------
  const imageBase = { model: 'imagen-4.0-generate-001', prompt: 'x' };
  const speechBase = { model: 'tts-1', input: 'x', voice: 'alloy' };
  for (const [route, path, base, fields, outOfRange] of [
    ['images', '/v1/images/generations', imageBase,
      { model: 'string', prompt: 'string', n: 'uint', size: 'string', response_format: 'string' },
      [['n', 0], ['n', 5], ['size', '333x333'], ['response_format', 'png'], ['prompt', ''], ['prompt', 'x {n:9}'],
        ['prompt', 'x {ratio:2:1}']]],
    ['speech', '/v1/audio/speech', speechBase,
      { model: 'string', input: 'string', voice: 'string', response_format: 'string', instructions: 'string' },
      [['voice', 'nobody'], ['input', ''], ['input', 'i'.repeat(4097)], ['response_format', 'mp3'],
        ['response_format', 'opus'], ['response_format', 'aac'], ['response_format', 'flac'], ['speed', 2]]],
  ]) {
    const refuse = (name, body) => add({
      name: `gen ${route}: ${name}`, method: 'POST', path, headers: { ...bearer(), ...json },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status: 400, surface: OPENAI,
    });
    for (const [field, kind] of Object.entries(fields)) {
      for (const value of WRONG[kind]) refuse(`${field} = ${show(value)}`, { ...base, [field]: value });
    }
    for (const [field, value] of outOfRange) refuse(`${field} out of range (${show(value)})`, { ...base, [field]: value });
    for (const required of route === 'images' ? ['prompt'] : ['model', 'input', 'voice']) {
      const { [required]: _gone, ...rest } = base;
      refuse(`without ${required}`, rest);
    }
    for (const [what, body, headers] of syntaxBodies(base)) {
      add({ name: `gen ${route}: body is ${what}`, method: 'POST', path,
        headers: { ...bearer(), ...json, ...headers }, body, status: 400, surface: OPENAI });
    }
  }
  // Image links: public, but only well-formed ids that were handed out and have not expired.
  for (const [what, path] of [
    ['an id never handed out', `/v1/images/files/${'0'.repeat(32)}`],
    ['a malformed id', '/v1/images/files/nope'],
    ['a path trick', '/v1/images/files/..%2F..%2Fadmin'],
  ]) {
    add({ name: `gen images: link with ${what}`, method: 'GET', path, headers: {}, status: 404, surface: OPENAI });
  }
  add({ name: 'gen images: a link with a wrong method', method: 'POST', path: `/v1/images/files/${'0'.repeat(32)}`,
    headers: { ...bearer(), ...json }, body: '{}', status: 405, surface: OPENAI, check: (_b, res) => if405(res, 'GET') });

  // ---- Gemini native: every prefix, every action --------------------------------------
  const PREFIXES = [
    ['/v1beta', goog],
    ['/gemini/v1beta', goog],
    // Under /v1 a Google client (x-goog-api-key) gets the native surface.
    ['/v1', goog],
  ];
  const ACTIONS = [
    ['generateContent', model],
    ['streamGenerateContent', model],
    ['countTokens', model],
    ['embedContent', 'gemini-embedding-001'],
    ['batchEmbedContents', 'gemini-embedding-001'],
  ];
  const genBody = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
  for (const [prefix, auth] of PREFIXES) {
    for (const [action, actionModel] of ACTIONS) {
      const path = `${prefix}/models/${actionModel}:${action}`;
      const native = (name, body, status, headers = { ...auth(), ...json }, method = 'POST') => add({
        name: `gen native ${prefix} ${action}: ${name}`, method, path, headers, body, status, surface: GEMINI,
      });
      native('JSON cut short', '{"contents": [', 400);
      native('a JSON array', `[${JSON.stringify(genBody)}]`, 400);
      native('a JSON number', '7', 400);
      native('bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 400);
      native('no key', JSON.stringify(genBody), 401, json);
      native('an unknown key', JSON.stringify(genBody), 401, { 'x-goog-api-key': 'AIza-not-a-client-token', ...json });
      native('wrong method (GET)', undefined, 405, auth(), 'GET');
      native('wrong method (PUT)', JSON.stringify(genBody), 405, { ...auth(), ...json }, 'PUT');
    }
    // Model names no upstream URL may carry.
    for (const [what, segment, status] of [
      ['a traversal', '..', 400],
      ['an encoded traversal', '%2e%2e%2fadmin', 400],
      ['an encoded slash', 'gemini%2F2.5', 400],
      ['a space', 'gemini%202.5', 400],
      ['a quote', 'gemini%22x', 400],
      ['a name of 200 characters', 'g'.repeat(200), 400],
      ['a leading dash', '-gemini', 400],
      ['an unknown action', `${model}:explode`, 404],
    ]) {
      const path = segment.includes(':') ? `${prefix}/models/${segment}` : `${prefix}/models/${segment}:generateContent`;
      add({ name: `gen native ${prefix}: model with ${what}`, method: 'POST', path, headers: { ...auth(), ...json },
        body: JSON.stringify(genBody), status, surface: GEMINI });
    }
    add({ name: `gen native ${prefix}: body over the cap`, method: 'POST', path: `${prefix}/models/${model}:generateContent`,
      headers: { ...auth(), ...json }, body: JSON.stringify({ contents: [{ parts: [{ text: 'o'.repeat(ctx.bodyCap + 4096) }] }] }),
      status: 413, surface: GEMINI });
  }

  // ---- OpenAI routes and the user usage API: credentials and methods --------------------
  const OPENAI_ROUTES = [
    ['POST', '/v1/chat/completions', JSON.stringify(chatBase)],
    ['POST', '/chat/completions', JSON.stringify(chatBase)],
    ['POST', '/v1/embeddings', JSON.stringify(embedBase)],
    ['POST', '/v1/images/generations', JSON.stringify(imageBase)],
    ['POST', '/v1/audio/speech', JSON.stringify(speechBase)],
    ['GET', '/v1/models'],
    ['GET', `/v1/models/${model}`],
    ['GET', '/v1/usage'],
    ['GET', '/v1/dashboard/billing/subscription'],
    ['GET', '/v1/dashboard/billing/usage'],
    // gemini-balance's prefixes answer exactly like /v1.
    ['POST', '/openai/v1/chat/completions', JSON.stringify(chatBase)],
    ['POST', '/hf/v1/embeddings', JSON.stringify(embedBase)],
    ['GET', '/hf/v1/models'],
  ];
  const BAD_CLIENT_AUTH = [
    ['no credentials', () => ({})],
    ['an unknown bearer token', () => ({ authorization: 'Bearer sk-not-a-real-token' })],
    ['an unknown user key', () => ({ authorization: `Bearer sk-${'A'.repeat(43)}` })],
    ['a rotated user key', () => ({ authorization: `Bearer ${ctx.users.rotated()}` })],
    ['a Basic scheme', () => ({ authorization: `Basic ${Buffer.from(`x:${ctx.token}`).toString('base64')}` })],
  ];
  for (const [method, path, body] of OPENAI_ROUTES) {
    for (const [what, auth] of BAD_CLIENT_AUTH) {
      add({ name: `gen openai ${method} ${path}: ${what}`, method, path, headers: () => ({ ...auth(), ...(body ? json : {}) }),
        body, status: 401, surface: OPENAI });
    }
    for (const wrong of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => m !== method)) {
      add({ name: `gen openai ${path}: wrong method ${wrong}`, method: wrong, path, headers: { ...bearer(), ...json },
        body: wrong === 'GET' ? undefined : '{}', status: 405, surface: OPENAI,
        check: (_b, res) => if405(res, method) });
    }
  }
  // A disabled user is refused on what it would spend, in the shape of its surface.
  add({ name: 'gen openai: a disabled user\'s chat', method: 'POST', path: '/v1/chat/completions',
    headers: () => ({ authorization: `Bearer ${ctx.users.disabled()}`, ...json }), body: JSON.stringify(chatBase),
    status: 403, surface: OPENAI });
  add({ name: 'gen native: a disabled user\'s generate', method: 'POST', path: `/v1beta/models/${model}:generateContent`,
    headers: () => ({ 'x-goog-api-key': ctx.users.disabled(), ...json }), body: JSON.stringify(genBody),
    status: 403, surface: GEMINI });
  // The usage API's dates.
  for (const [param, value] of [
    ['start_date', 'yesterday'], ['start_date', '2024-02-31'], ['start_date', '1969-12-31'], ['start_date', '2024-13-01'],
    ['end_date', '2024-1-1x'], ['end_date', '10000-01-01'], ['end_date', ''], ['start_date', '2024/01/01'],
  ]) {
    add({ name: `gen usage: billing usage with ${param}=${value || '(empty)'}`, method: 'GET',
      path: `/v1/dashboard/billing/usage?${param}=${encodeURIComponent(value)}`,
      headers: () => ({ authorization: `Bearer ${ctx.users.active()}` }), status: 400, surface: OPENAI });
  }
  for (const [what, path] of [
    ['an unknown route', '/v1/completions'], ['an unknown route', '/v1/images/edits'],
    ['a route under usage', '/v1/usage/extra'],
    ['an unknown billing route', '/v1/dashboard/billing/invoices'], ['the assistants API', '/v1/assistants'],
    ['an unknown route under an OpenAI prefix', '/openai/v1/completions'],
    ['an unknown route under an OpenAI prefix', '/hf/v1/nothing'],
    ['a prefix that is not a whole segment', '/openaiv1/chat/completions'],
  ]) {
    add({ name: `gen openai: ${what} (${path})`, method: 'GET', path, headers: bearer(), status: 404, surface: OPENAI });
  }
  // Google's native actions are not served under an OpenAI prefix, even to a Google client.
  for (const prefix of ['/openai/v1', '/hf/v1']) {
    add({ name: `gen openai: a native action under ${prefix}`, method: 'POST',
      path: `${prefix}/models/${model}:generateContent`, headers: { ...goog(), ...json }, body: JSON.stringify(genBody),
      status: 404, surface: OPENAI });
    // Nor are Anthropic's Messages, with any method.
    for (const [method, path] of [['POST', '/messages'], ['GET', '/messages'], ['POST', '/messages/count_tokens']]) {
      add({ name: `gen openai: Anthropic's ${method} ${path} under ${prefix}`, method, path: `${prefix}${path}`,
        headers: { 'x-api-key': ctx.token, ...json }, body: method === 'GET' ? undefined : '{}', status: 404, surface: OPENAI });
    }
  }
  add({ name: 'gen openai: a model id with a slash (/v1/models/a/b)', method: 'GET', path: '/v1/models/a/b',
    headers: bearer(), status: 400, surface: OPENAI, check: (b) => paramIs(b, 'model') });
  for (const [path, body] of [['/v1/chat/completions', chatBase], ['/v1/embeddings', { ...embedBase, input: 'e'.repeat(ctx.bodyCap + 4096) }]]) {
    const big = path === '/v1/embeddings' ? body : { ...body, messages: [{ role: 'user', content: 'c'.repeat(ctx.bodyCap + 4096) }] };
    add({ name: `gen openai ${path}: body over the cap`, method: 'POST', path, headers: { ...bearer(), ...json },
      body: JSON.stringify(big), status: 413, surface: OPENAI });
  }

  // ---- Anthropic Messages: every field with every wrong type, credentials, methods ------
  const messagesBase = { model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };
  const xApi = (token = ctx.token) => ({ 'x-api-key': token });
  const messages = (name, body, path = '/v1/messages', status = 400, more = {}) => add({
    name: `gen anthropic: ${name}`, method: 'POST', path, headers: { ...xApi(), ...json },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status, surface: ANTHROPIC, ...more,
  });
  const MESSAGES_FIELDS = {
    model: 'string', messages: 'array', max_tokens: 'uint', stream: 'bool', temperature: 'number', top_p: 'number',
    top_k: 'number', stop_sequences: 'array', system: 'stringOrArray', tools: 'array', tool_choice: 'object', thinking: 'object',
  };
  for (const [field, kind] of Object.entries(MESSAGES_FIELDS)) {
    for (const value of WRONG[kind]) messages(`${field} = ${show(value)}`, { ...messagesBase, [field]: value });
  }
  for (const [what, turn] of [
    ['a turn without a role', { content: 'x' }],
    ['a turn of an unknown role', { role: 'system', content: 'x' }],
    ['a turn without content', { role: 'user' }],
    ['a block of an unknown type', { role: 'user', content: [{ type: 'video', source: {} }] }],
    ['an image without a source', { role: 'user', content: [{ type: 'image' }] }],
    ['an image whose source is of an unknown type', { role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }],
    ['an image URL that is not http(s)', { role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'file:///etc/passwd' } }] }],
    ['a tool result without tool_use_id', { role: 'user', content: [{ type: 'tool_result', content: 'r' }] }],
    ['a tool result for a call never made', { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_nope', content: 'r' }] }],
    ['a tool_use without a name', { role: 'assistant', content: [{ type: 'tool_use', id: 't', input: {} }] }],
  ]) messages(`messages: ${what}`, { ...messagesBase, messages: [turn, { role: 'user', content: 'next' }] });
  for (const [what, extra] of [
    ['thinking enabled without budget_tokens', { thinking: { type: 'enabled' } }],
    ['thinking of an unknown type', { thinking: { type: 'maybe' } }],
    ['tool_choice of an unknown type', { tool_choice: { type: 'some' } }],
    ['tool_choice tool without a name', { tool_choice: { type: 'tool' } }],
    ['a server tool', { tools: [{ type: 'web_search_20250305', name: 'web_search' }] }],
    ['a tool without a name', { tools: [{ input_schema: { type: 'object' } }] }],
    ['a system block that is not text', { system: [{ type: 'image' }] }],
    ['max_tokens of zero', { max_tokens: 0 }],
  ]) messages(what, { ...messagesBase, ...extra });
  for (const [what, body, headers] of syntaxBodies(messagesBase)) {
    add({ name: `gen anthropic: body is ${what}`, method: 'POST', path: '/v1/messages',
      headers: { ...xApi(), ...json, ...headers }, body, status: 400, surface: ANTHROPIC });
  }
  messages('count_tokens: body is not JSON', '{"model":', '/v1/messages/count_tokens');
  messages('count_tokens: messages missing', { model }, '/v1/messages/count_tokens');
  messages('count_tokens under /anthropic: model is a number', { model: 5, messages: [] }, '/anthropic/v1/messages/count_tokens');
  messages('body over the cap', { ...messagesBase, messages: [{ role: 'user', content: 'c'.repeat(ctx.bodyCap + 4096) }] },
    '/v1/messages', 413);
  const ANTHROPIC_ROUTES = ['/v1/messages', '/anthropic/v1/messages', '/v1/messages/count_tokens', '/anthropic/v1/messages/count_tokens'];
  const BAD_ANTHROPIC_AUTH = [
    ['no credentials', () => ({})],
    ['an unknown x-api-key', () => xApi('sk-not-a-real-token')],
    ['an unknown bearer token', () => ({ authorization: 'Bearer sk-not-a-real-token' })],
    ['an unknown anthropic-auth-token', () => ({ 'anthropic-auth-token': 'sk-not-a-real-token' })],
    ['a rotated user key', () => xApi(ctx.users.rotated())],
  ];
  for (const path of ANTHROPIC_ROUTES) {
    for (const [what, auth] of BAD_ANTHROPIC_AUTH) {
      add({ name: `gen anthropic POST ${path}: ${what}`, method: 'POST', path, headers: () => ({ ...auth(), ...json }),
        body: JSON.stringify(messagesBase), status: 401, surface: ANTHROPIC });
    }
    for (const wrong of ['GET', 'PUT', 'PATCH', 'DELETE']) {
      add({ name: `gen anthropic ${path}: wrong method ${wrong}`, method: wrong, path, headers: { ...xApi(), ...json },
        body: wrong === 'GET' ? undefined : '{}', status: 405, surface: ANTHROPIC, check: (_b, res) => if405(res, 'POST') });
    }
  }
  add({ name: 'gen anthropic: a disabled user\'s message', method: 'POST', path: '/v1/messages',
    headers: () => ({ ...xApi(ctx.users.disabled()), ...json }), body: JSON.stringify(messagesBase),
    status: 403, surface: ANTHROPIC });
  for (const path of ['/anthropic/v1/complete', '/anthropic/v1/messages/batches', '/v1/messages/extra', '/anthropic/']) {
    add({ name: `gen anthropic: an unknown route (${path})`, method: 'POST', path, headers: { ...xApi(), ...json },
      body: '{}', status: 404, surface: ANTHROPIC });
  }

  // ---- Admin API: every route with credentials that are not the admin's, and wrong methods
  const ADMIN_ROUTES = [
    ['/admin/api/keys', ['GET', 'POST', 'DELETE']],
    ['/admin/api/keys/test', ['POST']],
    ['/admin/api/keys/project', ['POST']],
    ['/admin/api/keys/k_missing', ['GET', 'PATCH', 'DELETE']],
    ['/admin/api/settings', ['GET', 'PUT', 'PATCH']],
    ['/admin/api/settings/defaults', ['GET']],
    ['/admin/api/users', ['GET', 'POST']],
    ['/admin/api/users/u_0000000000000000', ['GET', 'PATCH', 'DELETE']],
    ['/admin/api/users/u_0000000000000000/rotate', ['POST']],
    ['/admin/api/models', ['GET']],
    [`/admin/api/models/${model}`, ['PATCH']],
    ['/admin/api/models/queues', ['GET']],
    [`/admin/api/models/${model}/gate`, ['GET']],
    ['/admin/api/model-limits/presets', ['GET']],
    ['/admin/api/projects', ['GET']],
    ['/admin/api/stats', ['GET']],
    ['/admin/api/logs', ['GET']],
    ['/admin/api/accounts', ['GET', 'POST']],
    ['/admin/api/accounts/export', ['GET']],
    ['/admin/api/accounts/oauth/start', ['POST']],
    ['/admin/api/accounts/oauth/finish', ['POST']],
    ['/admin/api/accounts/a_missing', ['GET', 'PATCH', 'DELETE']],
    ['/admin/api/accounts/a_missing/test', ['POST']],
    ['/admin/api/accounts/a_missing/onboard', ['POST']],
    ['/admin/api/accounts/a_missing/quota', ['GET']],
    ['/admin/api/keys/archive', ['GET']],
    ['/admin/api/keys/archive/restore', ['POST']],
    ['/admin/api/keys/archive/purge', ['POST']],
    ['/admin/api/jobs', ['GET']],
    ['/admin/api/errors', ['GET']],
    ['/admin/api/secrets', ['GET']],
  ];
  // None of these is a password guess (only a Bearer is), so none counts
  // against the login throttle.
  const BAD_ADMIN_AUTH = [
    ['no credentials', () => ({})],
    ['the password as Basic auth', () => ({ authorization: `Basic ${Buffer.from(`admin:${ctx.adminPassword}`).toString('base64')}` })],
    ['the password in x-goog-api-key', () => ({ 'x-goog-api-key': ctx.adminPassword })],
    ['the password in x-api-key', () => ({ 'x-api-key': ctx.adminPassword })],
    ['a forged session cookie', () => ({ cookie: 'gemgate_admin=eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJ4In0.c2ln' })],
  ];
  for (const [path, methods] of ADMIN_ROUTES) {
    const [first] = methods;
    for (const [what, auth] of BAD_ADMIN_AUTH) {
      add({ name: `gen admin ${first} ${path}: ${what}`, method: first, path, headers: () => ({ ...auth(), ...json }),
        body: first === 'GET' ? undefined : '{}', status: 401, surface: ADMIN });
    }
    add({ name: `gen admin ${first} ${path}: the password in ?key=`, method: first,
      path: `${path}?key=${encodeURIComponent(ctx.adminPassword)}`, headers: json,
      body: first === 'GET' ? undefined : '{}', status: 401, surface: ADMIN });
    for (const wrong of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !methods.includes(m))) {
      add({ name: `gen admin ${path}: wrong method ${wrong}`, method: wrong, path, headers: { ...admin(), ...json },
        body: wrong === 'GET' ? undefined : '{}', status: 405, surface: ADMIN, check: (_b, res) => if405(res, methods[0]) });
    }
  }
  // Paths that name nothing.
  for (const path of [
    '/admin/api/keys/a%2Fb', '/admin/api/keys/k/extra', '/admin/api/users/u_1/rotate/again',
    '/admin/api/users/u%2F..%2Fkeys', '/admin/api/settings/extra', '/admin/api/accounts/oauth/abort',
    '/admin/api/accounts/a_missing/refresh', '/admin/api/models/..%2Fsettings', '/admin/api/models/%2e%2e/gate',
    '/admin/api/model-limits', '/admin/api/model-limits/presets/free', '/admin/api/', '/admin/api/stats/extra',
    '/admin/api/jobs/probe', '/admin/api/errors/extra', '/admin/api/secrets/reseal', '/admin/api/keys/archive/restore/all',
  ]) {
    add({ name: `gen admin: no route at ${path}`, method: 'GET', path, headers: admin(), status: 404, surface: ADMIN });
  }
  for (const [method, path] of [
    ['GET', '/admin/api/keys/k_missing'], ['DELETE', '/admin/api/keys/k_missing'], ['GET', '/admin/api/users/u_missing'],
    ['DELETE', '/admin/api/users/u_missing'], ['GET', '/admin/api/accounts/a_missing'], ['DELETE', '/admin/api/accounts/a_missing'],
    ['POST', '/admin/api/accounts/a_missing/test'], ['POST', '/admin/api/accounts/a_missing/onboard'],
    ['GET', '/admin/api/accounts/a_missing/quota'],
  ]) {
    add({ name: `gen admin: ${method} of nothing at ${path}`, method, path, headers: admin(), status: 404, surface: ADMIN });
  }

  // ---- Admin API: bodies --------------------------------------------------------------
  const adminBody = (route, name, body, status = 400) => add({
    name: `gen admin ${route[0]} ${route[1]}: ${name}`, method: route[0], path: route[1], headers: { ...admin(), ...json },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status, surface: ADMIN,
  });
  const BODY_ROUTES = [
    [['POST', '/admin/api/keys'], { keys: ['ok-hostile-never'] }],
    [['DELETE', '/admin/api/keys'], { ids: ['k_missing'] }],
    [['PATCH', '/admin/api/keys/k_missing'], { enabled: true }],
    [['POST', '/admin/api/keys/test'], { ids: ['k_missing'] }],
    [['POST', '/admin/api/keys/project'], { ids: ['k_missing'], project: 'p' }],
    [['PUT', '/admin/api/settings'], { max_retries: 3 }],
    [['PATCH', '/admin/api/settings'], { max_retries: 3 }],
    [['POST', '/admin/api/users'], { name: 'never' }],
    [['PATCH', '/admin/api/users/u_missing'], { rpm: 5 }],
    [[`PATCH`, `/admin/api/models/${model}`], { enabled: true }],
    [['POST', '/admin/api/accounts'], { credentials: [] }],
    [['PATCH', '/admin/api/accounts/a_missing'], { enabled: true }],
    [['POST', '/admin/api/accounts/oauth/finish'], { callback_url: 'http://localhost:8085/' }],
    [['POST', '/admin/api/login'], { password: 'x' }],
    [['POST', '/admin/api/keys/archive/restore'], { ids: ['k_missing'] }],
    [['POST', '/admin/api/keys/archive/purge'], { ids: ['k_missing'] }],
  ];
  for (const [route, valid] of BODY_ROUTES) {
    // Login is only taken from the gateway's own origin.
    const origin = () => (route[1].endsWith('/login') ? { origin: ctx.origin() } : {});
    for (const [what, body, headers] of syntaxBodies(valid, { arrayIsABody: route[1] === '/admin/api/accounts' })) {
      add({ name: `gen admin ${route[0]} ${route[1]}: body is ${what}`, method: route[0], path: route[1],
        headers: () => ({ ...admin(), ...json, ...headers, ...origin() }), body, status: 400, surface: ADMIN });
    }
    add({ name: `gen admin ${route[0]} ${route[1]}: body over the cap`, method: route[0], path: route[1],
      headers: () => ({ ...admin(), ...json, ...origin() }), body: JSON.stringify({ ...valid, padding: 'p'.repeat(ctx.adminCap + 4096) }),
      status: 413, surface: ADMIN });
  }
  // Keys.
  const keys = ['POST', '/admin/api/keys'];
  for (const value of [42, true, {}, [42], [['k']], null]) adminBody(keys, `keys = ${show(value)}`, { keys: value });
  adminBody(keys, 'no keys field', { label: 'x' });
  for (const [field, value] of [['class', 'gold'], ['class', 5], ['weight', 'x'], ['weight', -1], ['weight', 1.5], ['label', 5], ['project', []]]) {
    adminBody(keys, `${field} = ${show(value)}`, { keys: ['ok-hostile-never'], [field]: value });
  }
  const keyPatch = ['PATCH', '/admin/api/keys/k_missing'];
  for (const [field, value] of [['enabled', 'yes'], ['enabled', 1], ['weight', -1], ['weight', 'x'], ['label', 5], ['project', {}], ['secret', 'x']]) {
    adminBody(keyPatch, `${field} = ${show(value)}`, { [field]: value });
  }
  const keyDelete = ['DELETE', '/admin/api/keys'];
  for (const [what, body] of [['no ids', {}], ['ids = "x"', { ids: 'x' }], ['ids = [1]', { ids: [1] }], ['all = "yes"', { all: 'yes' }], ['an unknown field', { every: true }]]) {
    adminBody(keyDelete, what, body);
  }
  const keyTest = ['POST', '/admin/api/keys/test'];
  for (const [what, body] of [['no ids', {}], ['ids empty', { ids: [] }], ['ids = "k"', { ids: 'k' }], ['ids = [1]', { ids: [1] }],
    ['51 ids', { ids: Array.from({ length: 51 }, (_, i) => `k_${i}`) }], ['an unknown field', { ids: ['k'], all: true }]]) {
    adminBody(keyTest, what, body);
  }
  adminBody(keyTest, 'an id that is no key', { ids: ['k_missing'] }, 404);
  const keyProject = ['POST', '/admin/api/keys/project'];
  for (const [what, body] of [['no ids', { project: 'p' }], ['ids empty', { ids: [], project: 'p' }], ['ids = "k"', { ids: 'k' }],
    ['ids = [1]', { ids: [1], project: 'p' }], ['project = 5', { ids: ['k'], project: 5 }], ['an unknown field', { ids: ['k'], team: 'x' }]]) {
    adminBody(keyProject, what, body);
  }
  // The key archive: restore and purge take 1–500 ids of archived keys.
  for (const route of [['POST', '/admin/api/keys/archive/restore'], ['POST', '/admin/api/keys/archive/purge']]) {
    for (const [what, body] of [['no ids', {}], ['ids empty', { ids: [] }], ['ids = "k"', { ids: 'k' }], ['ids = [1]', { ids: [1] }],
      ['501 ids', { ids: Array.from({ length: 501 }, (_, i) => `k_${i}`) }], ['an unknown field', { ids: ['k'], all: true }],
      ['an id that is not archived', { ids: ['k_missing'] }]]) {
      adminBody(route, what, body);
    }
  }
  // Metrics: the admin password or nothing, never a client's token.
  for (const [what, headers] of [['the client token', bearer], ...BAD_ADMIN_AUTH]) {
    add({ name: `gen /metrics: ${what}`, method: 'GET', path: '/metrics', headers, status: 401, surface: ADMIN });
  }
  add({ name: 'gen /metrics: the password in ?key=', method: 'GET', path: `/metrics?key=${encodeURIComponent(ctx.adminPassword)}`,
    headers: {}, status: 401, surface: ADMIN });
  for (const wrong of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    add({ name: `gen /metrics: wrong method ${wrong}`, method: wrong, path: '/metrics', headers: { ...admin(), ...json },
      body: '{}', status: 405, surface: ADMIN, check: (_b, res) => if405(res, 'GET') });
  }
  // Users: every field with every wrong type.
  const USER_FIELDS = {
    name: 'string', note: 'string', enabled: 'bool', expires_at: 'uint', allowed_models: 'array', credit_quota: 'uint',
    rpm: 'uint', rpd: 'uint', tpm: 'uint', max_concurrency: 'uint',
  };
  for (const [field, kind] of Object.entries(USER_FIELDS)) {
    for (const value of WRONG[kind]) {
      if (field === 'note' && value === null) continue;
      adminBody(['POST', '/admin/api/users'], `${field} = ${show(value)}`, { name: 'x', [field]: value });
      adminBody(['PATCH', '/admin/api/users/u_missing'], `${field} = ${show(value)}`, { [field]: value });
    }
  }
  adminBody(['POST', '/admin/api/users'], 'a limit over 2^53', { name: 'x', rpm: 2 ** 54 });
  adminBody(['POST', '/admin/api/users'], 'a name of 201 characters', { name: 'n'.repeat(201) });
  adminBody(['POST', '/admin/api/users'], '101 model globs', { name: 'x', allowed_models: Array(101).fill('gemini-*') });
  adminBody(['PATCH', '/admin/api/users/u_missing'], 'a valid edit of a user that does not exist', { rpm: 5 }, 404);
  // Models.
  const modelPatch = ['PATCH', `/admin/api/models/${model}`];
  for (const [field, kind] of Object.entries({ enabled: 'bool', aliases: 'array', cost: 'object', thinking_default: 'object' })) {
    for (const value of WRONG[kind]) adminBody(modelPatch, `${field} = ${show(value)}`, { [field]: value });
  }
  adminBody(modelPatch, 'an alias with a traversal', { aliases: ['../x'] });
  adminBody(modelPatch, 'an unknown field', { hidden: true });
  // Accounts.
  const accounts = ['POST', '/admin/api/accounts'];
  for (const [what, body] of [['an empty list', []], ['credentials = 5', { credentials: 5 }], ['credentials = "x"', { credentials: 'x' }],
    ['an empty credentials list', { credentials: [] }], ['project_id = 5', { credentials: [{}], project_id: 5 }],
    ['project_id with spaces', { credentials: [{}], project_id: 'not a project' }],
    ['101 credentials', Array.from({ length: 101 }, () => ({ refresh_token: '1//x' }))]]) {
    adminBody(accounts, what, body);
  }
  const accountPatch = ['PATCH', '/admin/api/accounts/a_missing'];
  for (const [what, body] of [['enabled = "yes"', { enabled: 'yes' }], ['project_id = 5', { project_id: 5 }],
    ['project_id with spaces', { project_id: 'not a project' }], ['an unknown field', { email: 'x@example.com' }]]) {
    adminBody(accountPatch, what, body);
  }
  const finish = ['POST', '/admin/api/accounts/oauth/finish'];
  for (const [what, body] of [['no callback_url', {}], ['callback_url = 5', { callback_url: 5 }],
    ['a callback_url that is no URL', { callback_url: 'not a url' }], ['a callback_url without a code', { callback_url: 'http://localhost:8085/?state=x' }],
    ['a forged state', { callback_url: 'http://localhost:8085/?state=forged&code=4%2Fx' }],
    ['project_id = 5', { callback_url: 'http://localhost:8085/?state=x&code=y', project_id: 5 }],
    ['an unknown field', { callback_url: 'http://localhost:8085/?state=x&code=y', scope: 'all' }]]) {
    adminBody(finish, what, body);
  }
  // Login and logout (no wrong password: that would be a guess the throttle counts).
  const login = (name, body, status, headers = {}) => add({
    name: `gen admin login: ${name}`, method: 'POST', path: '/admin/api/login',
    headers: () => ({ ...json, origin: ctx.origin(), ...headers }), body: JSON.stringify(body), status, surface: ADMIN,
  });
  for (const value of [42, true, [], {}, null]) login(`password = ${show(value)}`, { password: value }, 400);
  login('no password field', { user: 'admin' }, 400);
  login('from another origin', { password: 'x' }, 403, { origin: 'https://evil.example' });
  login('the password as a one-element array', ['not-the-password'], 400);
  for (const value of ['yes', 1, [], {}]) {
    add({ name: `gen admin logout: everywhere = ${show(value)}`, method: 'POST', path: '/admin/api/logout',
      headers: json, body: JSON.stringify({ everywhere: value }), status: 400, surface: ADMIN });
  }
  add({ name: 'gen admin logout: everywhere without a session or the password', method: 'POST', path: '/admin/api/logout',
    headers: json, body: JSON.stringify({ everywhere: true }), status: 401, surface: ADMIN });

  // ---- Admin API: settings, every field with every wrong type --------------------------
  const SETTINGS = {
    uint: ['max_retries', 'server_error_demote_ms', 'circuit_breaker_failures', 'circuit_open_ms', 'rate_limit_default_cooldown_ms',
      'network_demote_ms', 'upstream_timeout_ms', 'max_body_bytes', 'models_cache_ttl_secs', 'log_retention_days',
      'image_fetch_max_bytes', 'image_fetch_timeout_ms', 'image_url_ttl_secs', 'default_max_output_tokens', 'rollup_retention_days', 'responses_ttl_days',
      'admin_session_hours', 'admin_login_global_limit', 'health_refresh_ms', 'fake_stream_interval_ms',
      'anti_truncation_max_attempts'],
    bool: ['include_thoughts', 'thoughts_in_content'],
    enum: ['strategy', 'charging_mode', 'search_citations', 'quota_timezone', 'chat_image_output'],
    string: ['fake_stream_prefix', 'anti_truncation_prefix', 'anti_truncation_marker', 'default_model'],
    globs: ['disabled_models', 'code_assist_models', 'fake_stream_models', 'anti_truncation_models', 'system_as_user_models',
      'code_execution_models', 'url_context_models'],
    rows: ['model_costs', 'model_variants', 'thinking_defaults', 'upstream_routing', 'model_limits', 'prompt_injection',
      'default_safety_settings'],
    map: ['model_aliases'],
  };
  const SETTING_WRONG = {
    uint: WRONG.uint,
    bool: WRONG.bool,
    enum: [...WRONG.string, 'no-such-choice'],
    string: WRONG.string,
    globs: [...WRONG.array, [5]],
    rows: [...WRONG.array, [5], ['x']],
    map: [...WRONG.object, { alias: 5 }],
  };
  for (const [kind, names] of Object.entries(SETTINGS)) {
    for (const name of names) {
      for (const value of SETTING_WRONG[kind]) {
        add({ name: `gen admin settings: ${name} = ${show(value)}`, method: 'PUT', path: '/admin/api/settings',
          headers: { ...admin(), ...json }, body: JSON.stringify({ [name]: value }), status: 400, surface: ADMIN,
          check: (b) => namesParam(b, name) });
      }
    }
  }
  // A row written as an array: serde would fill its fields by position.
  for (const name of ['model_costs', 'thinking_defaults', 'upstream_routing', 'model_limits', 'prompt_injection', 'default_safety_settings']) {
    add({ name: `gen admin settings: ${name} with a row written as an array`, method: 'PATCH', path: '/admin/api/settings',
      headers: { ...admin(), ...json }, body: JSON.stringify({ [name]: [['gemini-x*', 5, 'system']] }), status: 400,
      surface: ADMIN, check: (b) => namesParam(b, name) });
  }
  // Model limits: every field of a row with every wrong type.
  const LIMIT_FIELDS = { pattern: 'string', max_concurrency: 'uint', max_wait_ms: 'uint', key_rpm: 'uint', key_rpd: 'uint', key_tpm: 'uint' };
  for (const [field, kind] of Object.entries(LIMIT_FIELDS)) {
    for (const value of WRONG[kind]) {
      add({ name: `gen admin model_limits: ${field} = ${show(value)}`, method: 'PUT', path: '/admin/api/settings',
        headers: { ...admin(), ...json }, body: JSON.stringify({ model_limits: [{ pattern: 'gemini-x*', key_rpm: 5, [field]: value }] }),
        status: 400, surface: ADMIN });
    }
  }
  for (const [what, limits] of [
    ['a row without a pattern', [{ key_rpm: 5 }]], ['an empty pattern', [{ pattern: '', key_rpm: 5 }]],
    ['an unknown field', [{ pattern: 'gemini-x*', key_rps: 5 }]],
  ]) {
    add({ name: `gen admin model_limits: ${what}`, method: 'PUT', path: '/admin/api/settings',
      headers: { ...admin(), ...json }, body: JSON.stringify({ model_limits: limits }), status: 400, surface: ADMIN });
  }

  // ---- Admin API: query parameters ------------------------------------------------------
  for (const query of [
    'limit=0', 'limit=501', 'limit=ten', 'limit=-1', 'status=3xx', 'stream=maybe', 'from=yesterday', 'to=2024-13-01',
    'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'cursor=not-a-cursor', 'format=xml', 'sort=asc',
    `q=${'q'.repeat(201)}`,
  ]) {
    add({ name: `gen admin logs: ?${query.slice(0, 60)}`, method: 'GET', path: `/admin/api/logs?${query}`,
      headers: admin(), status: 400, surface: ADMIN });
  }
  for (const query of ['minutes=0', 'minutes=10081', 'minutes=hour', 'limit=0', 'limit=501', 'class=gold', 'since=0', 'minutes=-5']) {
    add({ name: `gen admin errors: ?${query}`, method: 'GET', path: `/admin/api/errors?${query}`,
      headers: admin(), status: 400, surface: ADMIN });
  }
  for (const query of ['range=2h', 'range=24H', 'range=1y', 'period=24h', 'user=u&from=x']) {
    add({ name: `gen admin stats: ?${query}`, method: 'GET', path: `/admin/api/stats?${query}`,
      headers: admin(), status: 400, surface: ADMIN });
  }
  rows.push(...responsesRows(ctx));
  rows.push(...filesRows(ctx));
  return rows;
}

/**
 * Google's Files API and context caches (pinned to their key): bodies, upload commands and
 * protocols, ids, credentials and methods. None of these reaches Google: an unknown
 * file or session is the caller's 404 before any upstream call.
 */
function filesRows(ctx) {
  const rows = [];
  const add = (row) => rows.push({ surface: GEMINI, ...row });
  const { goog, json, model } = ctx;
  const start = { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start' };
  const upload = '/upload/v1beta/files';
  for (const [what, body] of syntaxBodies({ file: { displayName: 'x' } })) {
    add({ name: `gen files: upload start with ${what}`, method: 'POST', path: upload,
      headers: { ...goog(), ...start, ...json }, body, status: 400 });
  }
  for (const [what, headers] of [
    ['the multipart protocol', { 'x-goog-upload-protocol': 'multipart', 'x-goog-upload-command': 'start' }],
    ['the raw protocol', { 'x-goog-upload-protocol': 'raw', 'x-goog-upload-command': 'start' }],
    ['no protocol', { 'x-goog-upload-command': 'start' }],
    ['no command', { 'x-goog-upload-protocol': 'resumable' }],
    ['an unknown command', { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'rewind' }],
    ['start with upload', { 'x-goog-upload-protocol': 'resumable', 'x-goog-upload-command': 'start, upload' }],
    ['bytes without a session', { 'x-goog-upload-command': 'upload, finalize', 'x-goog-upload-offset': '0' }],
  ]) {
    add({ name: `gen files: upload with ${what}`, method: 'POST', path: upload, headers: { ...goog(), ...headers, ...json },
      body: '{}', status: 400 });
  }
  for (const [what, id] of [
    ['an unknown session', '0'.repeat(32)], ['a short session', 'abc'], ['a session with a slash', 'a%2Fb'],
    ['an empty session', ''], ['a session of 300 characters', 'f'.repeat(300)],
  ]) {
    add({ name: `gen files: bytes for ${what}`, method: 'POST', path: `${upload}?upload_id=${id}&upload_protocol=resumable`,
      headers: { ...goog(), 'x-goog-upload-command': 'upload, finalize', 'x-goog-upload-offset': '0' }, body: 'bytes', status: 404 });
  }
  add({ name: 'gen files: a start that names a session', method: 'POST', path: `${upload}?upload_id=${'0'.repeat(32)}`,
    headers: { ...goog(), ...start, ...json }, body: '{}', status: 400 });
  for (const [what, body] of syntaxBodies({ model: `models/${model}`, ttl: '60s' })) {
    add({ name: `gen caches: create with ${what}`, method: 'POST', path: '/v1beta/cachedContents',
      headers: { ...goog(), ...json }, body, status: 400 });
  }
  add({ name: 'gen caches: create naming a file of no one\'s', method: 'POST', path: '/v1beta/cachedContents',
    headers: { ...goog(), ...json }, status: 404,
    body: JSON.stringify({ model: `models/${model}`, contents: [{ role: 'user', parts: [{ fileData: { fileUri: 'files/nobodys' } }] }] }) });
  add({ name: 'gen native: generate naming a file of no one\'s', method: 'POST', path: `/v1beta/models/${model}:generateContent`,
    headers: { ...goog(), ...json }, status: 404,
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ fileData: { fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/nobodys' } }] }] }) });
  add({ name: 'gen native: generate with a cache of no one\'s', method: 'POST', path: `/v1beta/models/${model}:generateContent`,
    headers: { ...goog(), ...json }, status: 404,
    body: JSON.stringify({ cachedContent: 'cachedContents/nobodys', contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }) });
  add({ name: 'gen caches: a new TTL that is not JSON', method: 'PATCH', path: '/v1beta/cachedContents/nobodys',
    headers: { ...goog(), ...json }, body: '{"ttl":', status: 404 });
  for (const path of ['/v1beta/files/nobodys', '/v1beta/cachedContents/nobodys', '/gemini/v1beta/files/nobodys']) {
    for (const method of ['GET', 'DELETE']) {
      add({ name: `gen files: ${method} ${path}`, method, path, headers: goog(), status: 404 });
    }
  }
  for (const [what, path] of [
    ['a traversal', '/v1beta/files/..'], ['an encoded slash', '/v1beta/files/a%2Fb'], ['a nested path', '/v1beta/files/a/b'],
    ['an id of 200 characters', `/v1beta/files/${'f'.repeat(200)}`],
    ['uploads under /v1', '/upload/v1/files'], ['an unknown upload path', '/upload/v1beta/models'],
  ]) add({ name: `gen files: ${what}`, method: 'GET', path, headers: goog(), status: 404 });
  // `/v1/files` is OpenAI's Files API, which the gateway does not serve: OpenAI's 404.
  add({ name: 'gen files: files under /v1', method: 'GET', path: '/v1/files', headers: goog(), status: 404, surface: OPENAI });
  for (const [what, query] of [['pageSize=ten', 'pageSize=ten'], ['pageSize=-1', 'pageSize=-1'], ['a foreign pageToken', 'pageToken=models/x']]) {
    add({ name: `gen files: list with ${what}`, method: 'GET', path: `/v1beta/files?${query}`, headers: goog(), status: 400 });
  }
  const ROUTES = [
    ['POST', upload, start, '{}'],
    ['GET', '/v1beta/files'],
    ['GET', '/v1beta/files/abc'],
    ['DELETE', '/v1beta/files/abc'],
    ['GET', '/v1beta/cachedContents'],
    ['POST', '/v1beta/cachedContents', {}, JSON.stringify({ model: `models/${model}` })],
    ['PATCH', '/v1beta/cachedContents/abc', {}, '{"ttl":"60s"}'],
  ];
  for (const [method, path, extra = {}, body] of ROUTES) {
    for (const [what, auth] of [
      ['no credentials', () => ({})],
      ['an unknown key', () => ({ 'x-goog-api-key': 'AIza-not-a-client-token' })],
      ['a rotated user key', () => ({ 'x-goog-api-key': ctx.users.rotated() })],
    ]) {
      add({ name: `gen files ${method} ${path}: ${what}`, method, path, headers: () => ({ ...auth(), ...extra, ...(body ? json : {}) }),
        body, status: 401 });
    }
  }
  for (const [path, allowed, wrong] of [
    [upload, 'POST', ['GET', 'PUT', 'DELETE']],
    ['/v1beta/files', 'GET', ['POST', 'PUT', 'DELETE']],
    ['/v1beta/files/abc', 'DELETE', ['POST', 'PUT', 'PATCH']],
    ['/v1beta/cachedContents', 'POST', ['PUT', 'DELETE']],
    ['/v1beta/cachedContents/abc', 'PATCH', ['POST', 'PUT']],
  ]) {
    for (const method of wrong) {
      add({ name: `gen files ${path}: wrong method ${method}`, method, path, headers: { ...goog(), ...json },
        body: method === 'GET' ? undefined : '{}', status: 405, check: (_b, res) => if405(res, allowed) });
    }
  }
  return rows;
}

/** The Responses API: every field with every wrong type, items the gateway cannot take, credentials, methods, paths. */
function responsesRows(ctx) {
  const rows = [];
  const add = (row) => rows.push(row);
  const { bearer, json, model } = ctx;
  const base = { model, input: 'hi' };
  const post = (name, body, status = 400, more = {}) => add({
    name: `gen responses: ${name}`, method: 'POST', path: '/v1/responses', headers: { ...bearer(), ...json },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body), status, surface: OPENAI, ...more,
  });
  const FIELDS = {
    model: 'string', input: 'stringOrArray', instructions: 'string', tools: 'array', text: 'object', reasoning: 'object',
    previous_response_id: 'string', store: 'bool', stream: 'bool', temperature: 'number', top_p: 'number',
    max_output_tokens: 'uint', parallel_tool_calls: 'bool', user: 'string', metadata: 'object',
  };
  for (const [field, kind] of Object.entries(FIELDS)) {
    for (const value of WRONG[kind]) post(`${field} = ${show(value)}`, { ...base, [field]: value });
  }
  post('no model', { input: 'hi' }, 400, { check: (b) => paramIs(b, 'model') });
  for (const [what, item, param] of [
    ['an unknown item type', { type: 'computer_call_output', call_id: 'c' }, 'input[0].type'],
    ['an item_reference', { type: 'item_reference', id: 'msg_1' }, 'input[0].type'],
    ['an item that is a string', 'hi', 'input[0]'],
    ['a message with an unknown role', { role: 'robot', content: 'x' }, null],
    ['a message part of an unknown type', { role: 'user', content: [{ type: 'input_audio' }] }, 'input[0].content[0].type'],
    ['a function_call whose arguments are not JSON', { type: 'function_call', call_id: 'c', name: 'f', arguments: '{nope' }, 'input[0].arguments'],
    ['a function_call without a name', { type: 'function_call', call_id: 'c', arguments: '{}' }, 'input[0].name'],
    ['a function_call_output for a call never made', { type: 'function_call_output', call_id: 'nope', output: 'r' }, 'input[0].call_id'],
    ['an input_image by file id', { role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }, 'input[0].content[0]'],
  ]) post(`input: ${what}`, { model, input: [item] }, 400, param ? { check: (b) => paramIs(b, param) } : {});
  for (const tool of ['web_search', 'web_search_preview', 'file_search', 'code_interpreter', 'computer_use_preview', 'image_generation', 'mcp']) {
    post(`a built-in ${tool} tool`, { ...base, tools: [{ type: tool }] }, 400, { check: (b) => paramIs(b, 'tools[0].type') });
  }
  post('a function tool without a name', { ...base, tools: [{ type: 'function', parameters: { type: 'object' } }] });
  post('tool_choice of a built-in tool', { ...base, tool_choice: { type: 'web_search' } });
  post('tool_choice that is a number', { ...base, tool_choice: 3 });
  post('text.format of an unknown type', { ...base, text: { format: { type: 'yaml' } } });
  post('text.format json_schema without a name', { ...base, text: { format: { type: 'json_schema', schema: { type: 'object' } } } });
  post('reasoning.effort out of range', { ...base, reasoning: { effort: 'extreme' } });
  post('background mode', { ...base, background: true }, 400, { check: (b) => paramIs(b, 'background') });
  post('an unknown previous_response_id', { ...base, previous_response_id: 'resp_nope' }, 400, { check: (b) => paramIs(b, 'previous_response_id') });
  post('no input and nothing to continue', { model }, 400, { check: (b) => paramIs(b, 'input') });
  for (const [what, body, headers] of syntaxBodies(base)) post(`body is ${what}`, body, 400, { headers: { ...bearer(), ...json, ...headers } });
  post('body over the cap', { model, input: 'r'.repeat(ctx.bodyCap + 4096) }, 413);

  const BAD_AUTH = [
    ['no credentials', () => ({})],
    ['an unknown bearer token', () => ({ authorization: 'Bearer sk-not-a-real-token' })],
    ['a rotated user key', () => ({ authorization: `Bearer ${ctx.users.rotated()}` })],
  ];
  for (const [method, path, body] of [
    ['POST', '/v1/responses', JSON.stringify(base)],
    ['GET', '/v1/responses/resp_missing'],
    ['DELETE', '/v1/responses/resp_missing'],
  ]) {
    for (const [what, auth] of BAD_AUTH) {
      add({ name: `gen responses ${method} ${path}: ${what}`, method, path, headers: () => ({ ...auth(), ...(body ? json : {}) }),
        body, status: 401, surface: OPENAI });
    }
  }
  add({ name: 'gen responses: a disabled user\'s create', method: 'POST', path: '/v1/responses',
    headers: () => ({ authorization: `Bearer ${ctx.users.disabled()}`, ...json }), body: JSON.stringify(base), status: 403, surface: OPENAI });
  for (const wrong of ['GET', 'PUT', 'PATCH', 'DELETE']) {
    add({ name: `gen responses /v1/responses: wrong method ${wrong}`, method: wrong, path: '/v1/responses', headers: { ...bearer(), ...json },
      body: wrong === 'GET' ? undefined : '{}', status: 405, surface: OPENAI, check: (_b, res) => if405(res, 'POST') });
  }
  for (const wrong of ['POST', 'PUT', 'PATCH']) {
    add({ name: `gen responses /v1/responses/{id}: wrong method ${wrong}`, method: wrong, path: '/v1/responses/resp_missing',
      headers: { ...bearer(), ...json }, body: '{}', status: 405, surface: OPENAI, check: (_b, res) => if405(res, 'DELETE') });
  }
  for (const [what, path, method] of [
    ['an unknown id', '/v1/responses/resp_missing', 'GET'],
    ['an unknown id', '/v1/responses/resp_missing', 'DELETE'],
    ['a nested path', '/v1/responses/resp_x/input_items', 'GET'],
    ['a traversal', '/v1/responses/..', 'GET'],
    ['an encoded slash', '/v1/responses/resp%2Fx', 'GET'],
    ['an id of 200 characters', `/v1/responses/${'r'.repeat(200)}`, 'GET'],
  ]) add({ name: `gen responses: ${method} ${what} (${path.slice(0, 40)})`, method, path, headers: bearer(), status: 404, surface: OPENAI });
  return rows;
}

/** A 405's `Allow` header names the method the route does take. */
function if405(res, allowed) {
  if (!new RegExp(`\\b${allowed}\\b`).test(res.headers.allow ?? '')) {
    throw new Error(`405 without ${allowed} in Allow: ${res.headers.allow}`);
  }
}

/** A refusal names `param`. */
function paramIs(body, param) {
  if (body.error.param !== param) throw new Error(`param ${body.error.param}, not ${param}: ${body.error.message}`);
}

/** A settings refusal names the setting as its `param`. */
function namesParam(body, name) {
  if (body.error.param !== name) throw new Error(`param ${body.error.param}, not ${name}: ${body.error.message}`);
}
