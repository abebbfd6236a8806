// Admin sessions and admin security, over raw HTTP (the console's own API):
// login sets an HS256 JWT cookie with the documented flags; cookie-authenticated
// state changes need the CSRF token and the gateway's own Origin; every admin
// route without credentials is 401, before its body is read; password guesses
// (logins and wrong Bearer passwords alike) are throttled exactly, per client
// IP (IPv6 by /64) and globally, in a Durable Object; logout ends a session for
// good, and "everywhere" ends them all; admin answers never grant CORS.
//
// The client IP is CF-Connecting-IP, which wrangler dev fills only when the
// request has none, so each test sends its own addresses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, ADMIN_PASSWORD } from '../lib/harness.mjs';

let stack;

before(async () => {
  stack = await startStack({ keys: ['ok-session-1'] });
});
after(async () => stack?.stop());

/** Every admin API route with each method it takes (the route table's admin group). */
const ADMIN_ROUTES = [
  ['GET', '/admin/api/keys'], ['POST', '/admin/api/keys'], ['DELETE', '/admin/api/keys'],
  ['GET', '/admin/api/keys/k1'], ['PATCH', '/admin/api/keys/k1'], ['DELETE', '/admin/api/keys/k1'],
  ['GET', '/admin/api/settings'], ['PUT', '/admin/api/settings'], ['PATCH', '/admin/api/settings'],
  ['GET', '/admin/api/users'], ['POST', '/admin/api/users'],
  ['GET', '/admin/api/users/u_1'], ['PATCH', '/admin/api/users/u_1'], ['DELETE', '/admin/api/users/u_1'],
  ['POST', '/admin/api/users/u_1/rotate'],
  ['POST', '/admin/api/keys/test'], ['GET', '/admin/api/settings/defaults'],
  ['GET', '/admin/api/models'], ['PATCH', '/admin/api/models/gemini-2.5-flash'],
  ['GET', '/admin/api/stats'], ['GET', '/admin/api/logs'], ['GET', '/admin/api/logs?format=csv'],
  // Not a route: still 401 without credentials, so nobody learns which paths exist.
  ['GET', '/admin/api/nope'], ['POST', '/admin/api/keys/k1/explode'],
];

let ipSeq = 0;
/** A fresh documentation address (RFC 5737) per call, so tests never share a throttle bucket. */
const freshIp = () => `198.51.100.${(ipSeq += 1)}`;

/** Raw HTTP to the worker; `ip` sets CF-Connecting-IP. Resolves to { res, body }. */
async function call(method, path, { headers = {}, body, ip = freshIp() } = {}) {
  const h = { 'cf-connecting-ip': ip, ...headers };
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { res, body: json, text };
}

/** Logs in from `ip`; returns the cookie pair, the CSRF token and the Set-Cookie attributes. */
async function login({ ip = freshIp(), password = ADMIN_PASSWORD, origin } = {}) {
  const headers = origin ? { origin } : {};
  const { res, body } = await call('POST', '/admin/api/login', { body: { password }, ip, headers });
  assert.equal(res.status, 200, JSON.stringify(body));
  const setCookie = res.headers.get('set-cookie');
  assert.ok(setCookie, 'login sets a cookie');
  const [pair, ...attributes] = setCookie.split(';').map((s) => s.trim());
  assert.match(pair, /^gemgate_admin=[\w-]+\.[\w-]+\.[\w-]+$/);
  return { cookie: pair, csrf: body.csrf_token, expiresAt: body.expires_at, attributes, ip };
}

/** The JSON claims of a JWT cookie pair (not verified: the server does that). */
const claimsOf = (cookie) => JSON.parse(Buffer.from(cookie.split('=')[1].split('.')[1], 'base64url').toString());

test('every admin API route without credentials is 401, even with a body it would refuse', async () => {
  for (const [method, path] of ADMIN_ROUTES) {
    const body = method === 'GET' || method === 'DELETE' ? undefined : '{ not json';
    const { res, body: answer } = await call(method, path, { body });
    assert.equal(res.status, 401, `${method} ${path}: ${res.status} ${JSON.stringify(answer)}`);
    assert.equal(answer.error.type, 'authentication_error', `${method} ${path}`);
  }
  // A forged or foreign cookie is no better.
  const forged = 'gemgate_admin=eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiJ4IiwiaWF0IjoxLCJleHAiOjk5OTk5OTk5OTl9.c2ln';
  const { res } = await call('GET', '/admin/api/keys', { headers: { cookie: forged } });
  assert.equal(res.status, 401);
});

test('login sets an HS256 JWT cookie with every flag; the session answers with its CSRF token', async () => {
  const before = Date.now();
  const s = await login();
  assert.deepEqual(
    s.attributes.map((a) => a.split('=')[0].toLowerCase()).sort(),
    ['httponly', 'max-age', 'path', 'samesite', 'secure'],
  );
  assert.ok(s.attributes.includes('Path=/admin'));
  assert.ok(s.attributes.includes('SameSite=Strict'));
  assert.ok(s.attributes.includes('Max-Age=43200'), 'admin_session_hours defaults to 12');
  const header = JSON.parse(Buffer.from(s.cookie.split('=')[1].split('.')[0], 'base64url').toString());
  assert.equal(header.alg, 'HS256');
  const claims = claimsOf(s.cookie);
  assert.equal(claims.exp - claims.iat, 43_200);
  assert.ok(Math.abs(claims.iat * 1000 - before) < 60_000, 'iat is now');
  assert.match(s.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'RFC 3339 UTC');
  assert.equal(Date.parse(s.expiresAt), claims.exp * 1000);
  assert.match(s.csrf, /^[0-9a-f]{64}$/);

  const session = await call('GET', '/admin/api/session', { headers: { cookie: s.cookie } });
  assert.deepEqual(session.body, { authenticated: true, expires_at: s.expiresAt, csrf_token: s.csrf });
  const anonymous = await call('GET', '/admin/api/session');
  assert.equal(anonymous.res.status, 200);
  assert.deepEqual(anonymous.body, { authenticated: false, expires_at: null, csrf_token: null });

  const keys = await call('GET', '/admin/api/keys', { headers: { cookie: s.cookie } });
  assert.equal(keys.res.status, 200, JSON.stringify(keys.body));
  assert.equal(keys.body.total, 1);
});

test('a wrong password is 401; a foreign Origin cannot log in', async () => {
  const wrong = await call('POST', '/admin/api/login', { body: { password: 'nope' } });
  assert.equal(wrong.res.status, 401);
  assert.equal(wrong.res.headers.get('set-cookie'), null);
  const foreign = await call('POST', '/admin/api/login', {
    body: { password: ADMIN_PASSWORD }, headers: { origin: 'https://evil.example' },
  });
  assert.equal(foreign.res.status, 403);
  assert.equal(foreign.res.headers.get('set-cookie'), null);
  const bad = await call('POST', '/admin/api/login', { body: '{"pass": 1}' });
  assert.equal(bad.res.status, 400);
  assert.equal(bad.body.error.param, 'password');
});

test('a cookie-authenticated state change needs its CSRF token and the own Origin; Bearer needs neither', async () => {
  const s = await login();
  const add = (headers) => call('POST', '/admin/api/keys', { headers: { cookie: s.cookie, ...headers }, body: { keys: ['ok-csrf-key'] } });
  const missing = await add({});
  assert.equal(missing.res.status, 403, JSON.stringify(missing.body));
  assert.equal(missing.body.error.type, 'permission_error');
  assert.equal((await add({ 'x-csrf-token': '0'.repeat(64) })).res.status, 403, 'a wrong token');
  assert.equal((await add({ 'x-csrf-token': s.csrf, origin: 'https://evil.example' })).res.status, 403, 'a foreign Origin');
  const noOrigin = await add({ 'x-csrf-token': s.csrf });
  assert.equal(noOrigin.res.status, 200, 'a missing Origin passes with a valid token');
  const own = await add({ 'x-csrf-token': s.csrf, origin: stack.url });
  assert.equal(own.res.status, 200, JSON.stringify(own.body));
  assert.equal(own.body.existing, 1);
  // Reads need no token.
  assert.equal((await call('GET', '/admin/api/settings', { headers: { cookie: s.cookie } })).res.status, 200);
  // Bearer: no token, and no CORS for another origin either way.
  const bearer = await call('PATCH', '/admin/api/settings', {
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, origin: 'https://chat.example' }, body: { include_thoughts: false },
  });
  assert.equal(bearer.res.status, 200);
  assert.equal(bearer.res.headers.get('access-control-allow-origin'), null, 'admin answers grant no CORS');
  const preflight = await fetch(`${stack.url}/admin/api/keys`, {
    method: 'OPTIONS', headers: { origin: 'https://chat.example', 'access-control-request-method': 'POST' },
  });
  assert.equal(preflight.headers.get('access-control-allow-origin'), null);
});

test('10 concurrent wrong passwords from one IP: exactly 5 are checked, the rest wait', async () => {
  const ip = '203.0.113.7';
  const results = await Promise.all(
    Array.from({ length: 10 }, () => call('POST', '/admin/api/login', { body: { password: 'guess' }, ip })),
  );
  const statuses = results.map((r) => r.res.status).sort();
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
  for (const r of results.filter((r) => r.res.status === 429)) {
    const retry = Number(r.res.headers.get('retry-after'));
    assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry} s is until the oldest failure leaves the 15-minute window`);
    assert.equal(r.body.error.type, 'rate_limit_error');
  }
  // The right password from that IP waits too; another IP logs in.
  const right = await call('POST', '/admin/api/login', { body: { password: ADMIN_PASSWORD }, ip });
  assert.equal(right.res.status, 429);
  await login({ ip: '203.0.113.8' });
  // A throttled Bearer request is refused before its password is looked at.
  const bearer = await call('GET', '/admin/api/keys', { headers: { authorization: `Bearer ${ADMIN_PASSWORD}` }, ip });
  assert.equal(bearer.res.status, 429);
});

test('wrong Bearer passwords count the same, and IPv6 clients are grouped by their /64', async () => {
  const wrongBearer = (ip) => call('GET', '/admin/api/keys', { headers: { authorization: 'Bearer not-it' }, ip });
  for (let i = 0; i < 5; i += 1) {
    assert.equal((await wrongBearer(`2001:db8:7:7::${i + 1}`)).res.status, 401);
  }
  // Same /64, another address: throttled, even with the right password or through login.
  assert.equal((await wrongBearer('2001:db8:7:7:ffff::9')).res.status, 429);
  const right = await call('GET', '/admin/api/keys', {
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}` }, ip: '2001:db8:7:7::42',
  });
  assert.equal(right.res.status, 429);
  // The next /64 is someone else.
  const neighbour = await call('GET', '/admin/api/keys', {
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}` }, ip: '2001:db8:7:8::1',
  });
  assert.equal(neighbour.res.status, 200);
});

test('a success clears only its own IP\'s failures', async () => {
  const ip = '192.0.2.50';
  for (let i = 0; i < 4; i += 1) {
    assert.equal((await call('POST', '/admin/api/login', { body: { password: 'x' }, ip })).res.status, 401);
  }
  await login({ ip });
  // Four more failures fit again: the success cleared the first four.
  for (let i = 0; i < 4; i += 1) {
    assert.equal((await call('POST', '/admin/api/login', { body: { password: 'x' }, ip })).res.status, 401);
  }
  await login({ ip });
});

test('the global limit holds across IPs (admin_login_global_limit); a live session still acts', async () => {
  const keeper = await login();
  // Earlier tests left more than three failures in the window: the limit is past at once.
  await stack.admin('PATCH', '/settings', { admin_login_global_limit: 3 });
  const refused = await call('POST', '/admin/api/login', { body: { password: ADMIN_PASSWORD } });
  assert.equal(refused.res.status, 429, 'every client waits once the global limit is reached');
  assert.ok(Number(refused.res.headers.get('retry-after')) > 0);
  const bearer = await call('GET', '/admin/api/keys', { headers: { authorization: `Bearer ${ADMIN_PASSWORD}` } });
  assert.equal(bearer.res.status, 429, 'the right Bearer password waits too');
  // A session needs no password, so it is not held back.
  const lifted = await call('PATCH', '/admin/api/settings', {
    headers: { cookie: keeper.cookie, 'x-csrf-token': keeper.csrf }, body: { admin_login_global_limit: 50 },
  });
  assert.equal(lifted.res.status, 200, JSON.stringify(lifted.body));
  await login();
});

test('logout ends the session for good; everywhere ends them all; the lifetime setting applies to new sessions', async () => {
  const a = await login();
  const b = await login();
  // Logout needs the CSRF token like any state change.
  const noToken = await call('POST', '/admin/api/logout', { headers: { cookie: a.cookie } });
  assert.equal(noToken.res.status, 403);
  const out = await call('POST', '/admin/api/logout', { headers: { cookie: a.cookie, 'x-csrf-token': a.csrf } });
  assert.equal(out.res.status, 200);
  assert.match(out.res.headers.get('set-cookie'), /^gemgate_admin=;.*Max-Age=0/);
  // The old cookie, sent again, is refused: the session is revoked, not only forgotten.
  assert.equal((await call('GET', '/admin/api/keys', { headers: { cookie: a.cookie } })).res.status, 401);
  assert.equal((await call('GET', '/admin/api/session', { headers: { cookie: a.cookie } })).body.authenticated, false);
  // Idempotent: again, and with no session at all.
  assert.equal((await call('POST', '/admin/api/logout', { headers: { cookie: a.cookie } })).res.status, 200);
  assert.equal((await call('POST', '/admin/api/logout')).res.status, 200);
  // b is untouched by a's logout.
  assert.equal((await call('GET', '/admin/api/keys', { headers: { cookie: b.cookie } })).res.status, 200);

  // admin_session_hours applies to sessions started after the change.
  const set = await call('PATCH', '/admin/api/settings', {
    headers: { cookie: b.cookie, 'x-csrf-token': b.csrf }, body: { admin_session_hours: 1 },
  });
  assert.equal(set.res.status, 200, JSON.stringify(set.body));
  const c = await login();
  assert.ok(c.attributes.includes('Max-Age=3600'));
  const claims = claimsOf(c.cookie);
  assert.equal(claims.exp - claims.iat, 3600);
  assert.equal(claimsOf(b.cookie).exp - claimsOf(b.cookie).iat, 43_200, 'b keeps its own lifetime');

  // Everywhere: every session ends, c's and b's alike.
  const all = await call('POST', '/admin/api/logout', {
    headers: { cookie: c.cookie, 'x-csrf-token': c.csrf }, body: { everywhere: true },
  });
  assert.equal(all.res.status, 200);
  for (const s of [b, c]) {
    assert.equal((await call('GET', '/admin/api/keys', { headers: { cookie: s.cookie } })).res.status, 401);
  }
  // Everywhere without a session is an admin's act: it needs the password.
  assert.equal((await call('POST', '/admin/api/logout', { body: { everywhere: true } })).res.status, 401);
  // A new login works (signed with a new salt).
  const d = await login();
  assert.equal((await call('GET', '/admin/api/keys', { headers: { cookie: d.cookie } })).res.status, 200);
});
