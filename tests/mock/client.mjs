// A tiny client for the mock's /__mock control endpoints.
//
//   const mock = mockClient(process.env.MOCK_URL);
//   await mock.script({ key: 'k1', fault: 'server_503', times: 1 });
//   const calls = await mock.calls({ model: 'gemini-2.5-flash-t17' });

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
    /** Clears calls, rules and gates (held streams are released). */
    reset: () => control('POST', 'reset'),
    /** Recorded calls, optionally filtered: `{ key, model, action, since }`. */
    calls: async (filter = {}) => {
      const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined && v !== null));
      const { calls } = await control('GET', `calls${query.size ? `?${query}` : ''}`);
      return calls;
    },
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
  };
}
