// A tiny client for the mock's /__mock control endpoints.
//
//   const mock = mockClient(process.env.MOCK_URL);
//   await mock.script({ key: 'k1', fault: 'server_503', times: 1 });
//   const calls = await mock.calls({ model: 'gemini-2.5-flash-t17' });

const prefixed = (prefix, name) => (String(name).startsWith(prefix) ? String(name) : `${prefix}${name}`);

export function mockClient(url) {
  const base = String(url).replace(/\/$/, '');

  async function control(method, path, body) {
    const res = await fetch(`${base}/__mock/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const payload = await res.json();
    if (!res.ok) throw new Error(`mock ${method} /__mock/${path} failed (${res.status}): ${payload.error}`);
    return payload;
  }

  return {
    /** Clears calls, rules, gates (held streams are released), files, uploads and cached contents, among others. */
    reset: () => control('POST', 'reset'),
    /** Recorded calls, optionally filtered: `{ key, model, action, since }`. */
    calls: async (filter = {}) => {
      const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined && v !== null));
      const { calls } = await control('GET', `calls${query.size ? `?${query}` : ''}`);
      return calls;
    },
    /**
     * Waits (at most `timeoutMs`, 60 s at most) until the call numbered `seq` has finished:
     * its connection closed, by the mock or by the gateway. Resolves to `{ finished, call }`.
     */
    waitFinished: (seq, timeoutMs = 10_000) => control('POST', 'wait', { seq, timeoutMs }),
    /** Adds a rule; resolves to the stored rule (with its `id`). */
    script: async (spec) => (await control('POST', 'script', spec)).rule,
    clearScripts: () => control('DELETE', 'scripts'),
    /** Opens a holdBeforeLast gate; resolves to `{ gate, released, waiting }`. */
    release: (gate) => control('POST', 'release', { gate }),
    /** Code Assist onboarding operations: `[{ name, account, needed, polls, project, done }]`. */
    operations: async () => (await control('GET', 'operations')).operations,
    /** Makes an access token, every token of a refresh token, or an authorization code expire now. */
    expire: async (token) => {
      const field = token.startsWith('1//') ? 'refresh_token' : token.startsWith('ya29.') ? 'access_token' : 'code';
      return (await control('POST', 'oauth/expire', { [field]: token })).expired;
    },
    /** The model catalogue (what models.list pages through). */
    models: async () => (await control('GET', 'models')).models,
    /**
     * Stored files, cached contents and pending uploads, oldest first:
     * `{ files: [{ name, key, sizeBytes, mimeType, sha256Hash, displayName? }],
     *    cachedContents: [{ name, key, model }], uploads: [{ id, key, declared, received }] }`.
     */
    files: () => control('GET', 'files'),
    /** The bytes of a stored file (`files/<id>` or `<id>`), as a Buffer. */
    fileBytes: async (name) => {
      const id = prefixed('files/', name).slice('files/'.length);
      const res = await fetch(`${base}/__mock/files/${encodeURIComponent(id)}/content`);
      if (!res.ok) throw new Error(`mock GET /__mock/files/${id}/content failed (${res.status}): ${(await res.json()).error}`);
      return Buffer.from(await res.arrayBuffer());
    },
    /** Makes a file expire now, as Google forgets it after 48 hours; resolves to how many were live (0 or 1). */
    expireFile: async (name) => (await control('POST', 'files/expire', { name: prefixed('files/', name) })).expired,
    /** Makes a cached content (`cachedContents/<id>` or `<id>`) expire now, as if its ttl ran out. */
    expireCachedContent: async (name) =>
      (await control('POST', 'files/expire', { name: prefixed('cachedContents/', name) })).expired,
  };
}
