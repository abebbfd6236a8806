// The admin console's queries at scale: seeds 500,000 request-log rows (30
// days, 50 users, 100 keys, 5 models, some failures) and their rollups into
// local D1, then measures the p50 of `GET /admin/api/stats` (every range) and
// `GET /admin/api/logs` (filters, search, a second page, a CSV export) in
// workerd through Miniflare, and prints SQLite's query plan for each log query
// shape: none may scan `request_log` whole.
//
//   node tests/bench/console.mjs      (`make bench` runs it after run.mjs)
//
// Env knobs: BENCH_LOG_ROWS (500000), BENCH_CONSOLE_REQUESTS (20 per query).
// Writes tests/bench/last-console.json. Exits non-zero if a request fails or
// a plan scans the log.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startMock } from '../mock/google.mjs';
import { compatibilityDate, gemgateWorker, migrate } from './d1.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const { Miniflare, Log, LogLevel } = await import(join(ROOT, 'node_modules/miniflare/dist/src/index.js'));

const intEnv = (name, def, min, max) => {
  const v = Number(process.env[name] ?? def);
  return Number.isInteger(v) && v >= min && v <= max ? v : def;
};
const ROWS = intEnv('BENCH_LOG_ROWS', 500_000, 1_000, 5_000_000);
const REQUESTS = intEnv('BENCH_CONSOLE_REQUESTS', 20, 3, 500);
const DEADLINE_MS = 300_000;
const GOAL_MS = 150;
const ADMIN_PASSWORD = 'bench-admin-password';
const DAY = 86_400_000;


/** A GET to the worker with the admin bearer; resolves to { status, ms, body }. */
function get(port, path) {
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, host: 'gemgate.bench' }, timeout: 30_000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode, ms: performance.now() - t0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout on ${path}`)));
    req.on('error', fail);
    req.end();
  });
}

const latencyColumns = [50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200]
  .map((bound, i, all) => `SUM(CASE WHEN latency_ms ${i === 0 ? '' : `>= ${all[i - 1]} AND latency_ms `}< ${bound} THEN 1 ELSE 0 END)`)
  .concat(['SUM(CASE WHEN latency_ms >= 51200 THEN 1 ELSE 0 END)']);

/** Seeds the log, its rollups, users and keys with SQL that generates them in D1. */
async function seed(db, now) {
  const span = 30 * DAY;
  await db.batch([
    db.prepare(`INSERT INTO users (id, name, key_hash, key_hint, created_at, updated_at)
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49)
      SELECT 'u_' || i, 'user ' || i, 'hash' || i, 'sk-…' || i, ${now}, ${now} FROM n`),
    db.prepare(`INSERT INTO upstream_keys (id, secret, masked, created_at, updated_at)
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
      SELECT 'k' || i, 'plain-secret-' || i, 'AIza…' || i, ${now}, ${now} FROM n`),
  ]);
  await db.prepare(`INSERT INTO request_log (ts, user_id, model, key_id, status, prompt_tokens,
      completion_tokens, reasoning_tokens, credits, latency_ms, stream, error)
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS - 1})
    SELECT ${now} - (i * ${span} / ${ROWS}), 'u_' || (i % 50),
      CASE i % 5 WHEN 0 THEN 'gemini-2.5-flash' WHEN 1 THEN 'gemini-2.5-pro' WHEN 2 THEN 'gemini-2.0-flash'
        WHEN 3 THEN 'gemini-3-pro-preview' ELSE 'gemini-2.5-flash-lite' END,
      'k' || (i % 100),
      CASE WHEN i % 101 = 0 THEN 502 WHEN i % 37 = 0 THEN 429 ELSE 200 END,
      100 + i % 900, 50 + i % 400, i % 200, 2, (i * 37) % 3000 + (i % 997 = 0) * 20000, i % 3 = 0,
      CASE WHEN i % 101 = 0 THEN 'Upstream error number ' || i WHEN i % 37 = 0 THEN 'Rate limit reached for requests' END
    FROM n`).run();
  const rollup = (table, bucket, width, since) => db.prepare(`INSERT INTO ${table} (${bucket}, user_id, model, key_id,
      requests, errors, prompt_tokens, completion_tokens, reasoning_tokens, credits,
      lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11)
    SELECT (ts / ${width}) * ${width}, COALESCE(user_id, ''), model, key_id, COUNT(*),
      SUM(status NOT BETWEEN 200 AND 299), SUM(prompt_tokens), SUM(completion_tokens),
      SUM(reasoning_tokens), SUM(credits), ${latencyColumns.join(', ')}
    FROM request_log WHERE ts >= ${since} GROUP BY 1, 2, 3, 4`).run();
  await rollup('usage_hourly', 'hour', 3_600_000, 0);
  await rollup('usage_minute', 'minute', 60_000, now - 2 * DAY);
  const dims = [['all', "''"], ['model', 'model'], ['key', 'key_id'], ['user', "COALESCE(user_id, '')"]];
  for (const [table, bucket, width] of [['usage_dims', 'hour', 3_600_000], ['usage_dims_daily', 'day', DAY]]) {
    for (const [dim, column] of dims) {
      await db.prepare(`INSERT INTO ${table} (${bucket}, dim, name, requests, errors, prompt_tokens,
          completion_tokens, reasoning_tokens, credits,
          lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11)
        SELECT (ts / ${width}) * ${width}, '${dim}', ${column}, COUNT(*), SUM(status NOT BETWEEN 200 AND 299),
          SUM(prompt_tokens), SUM(completion_tokens), SUM(reasoning_tokens), SUM(credits), ${latencyColumns.join(', ')}
        FROM request_log GROUP BY 1, 3`).run();
    }
  }
}

/** The log query shapes the worker runs (src/edge/store/stats.rs `logs`). */
function logQueryPlans(now) {
  const select = `SELECT l.id FROM request_log l LEFT JOIN users u ON u.id = l.user_id
    LEFT JOIN upstream_keys k ON k.id = l.key_id WHERE l.ts >= ${now - DAY} AND l.ts < ${now}`;
  const order = ' ORDER BY l.ts DESC, l.id DESC LIMIT 50';
  return {
    'logs, last 24 h': select + order,
    'logs, status 5xx': `${select} AND l.status BETWEEN 500 AND 599${order}`,
    'logs, one model': `${select} AND l.model = 'gemini-2.5-pro'${order}`,
    'logs, one key': `${select} AND l.key_id = 'k7'${order}`,
    'logs, one user': `${select} AND l.user_id = 'u_7'${order}`,
    'logs, search in errors': `${select} AND l.error LIKE '%number 1%' ESCAPE '\\'${order}`,
    'logs, next page': `${select} AND (l.ts < ${now - 3_600_000} OR (l.ts = ${now - 3_600_000} AND l.id < 999999))${order}`,
  };
}

const ENDPOINTS = [
  ['stats 1h', '/admin/api/stats?range=1h'],
  ['stats 24h', '/admin/api/stats?range=24h'],
  ['stats 7d', '/admin/api/stats?range=7d'],
  ['stats 30d', '/admin/api/stats?range=30d'],
  ['stats 24h, one user', '/admin/api/stats?range=24h&user=u_7'],
  ['logs, last 24 h', '/admin/api/logs'],
  ['logs, status 5xx', '/admin/api/logs?status=5xx'],
  ['logs, one model', '/admin/api/logs?model=gemini-2.5-pro'],
  ['logs, one user', '/admin/api/logs?user=u_7'],
  ['logs, search in errors', '/admin/api/logs?q=number%201'],
  ['logs, 7 days, one key', `/admin/api/logs?key=k7&from=${encodeURIComponent(new Date(Date.now() - 7 * DAY).toISOString())}`],
];

async function main() {
  const mock = await startMock();
  let mf;
  const watchdog = setTimeout(() => {
    console.error(`console bench: exceeded ${DEADLINE_MS / 1000} s`);
    process.exit(2);
  }, DEADLINE_MS);
  watchdog.unref();
  try {
    mf = new Miniflare({
      host: '127.0.0.1',
      port: 0,
      log: new Log(LogLevel.WARN),
      cf: false,
      workers: [gemgateWorker({
        compatDate: compatibilityDate(),
        route: 'gemgate.bench/*',
        storage: 'gemgate-console-bench',
        bindings: { GEMINI_API_BASE: mock.url, ADMIN_PASSWORD, ACCESS_TOKENS: 'sk-console-bench' },
      })],
    });
    const url = await mf.ready;
    const port = Number(url.port);
    await migrate(mf);
    const db = await mf.getD1Database('DB', 'gemgate');
    const now = Date.now();
    const t0 = performance.now();
    await seed(db, now);
    const counted = await db.prepare('SELECT COUNT(*) AS n FROM request_log').first();
    console.log(`seeded ${counted.n} log rows and their rollups in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const results = [];
    for (const [name, path] of ENDPOINTS) {
      const times = [];
      for (let i = 0; i < REQUESTS; i += 1) {
        const res = await get(port, path);
        if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
        times.push(res.ms);
      }
      times.sort((a, b) => a - b);
      const p50 = times[Math.floor((times.length - 1) / 2)];
      results.push({ name, path, p50_ms: p50, max_ms: times.at(-1) });
    }
    // One full CSV export of a day's failures.
    const csvStart = performance.now();
    const csv = await get(port, '/admin/api/logs?format=csv&status=error');
    if (csv.status !== 200) throw new Error(`CSV export: HTTP ${csv.status}`);
    const csvRows = csv.body.trim().split('\r\n').length - 1;
    const csvMs = performance.now() - csvStart;

    const plans = [];
    let scans = 0;
    for (const [name, sql] of Object.entries(logQueryPlans(now))) {
      const { results: rows } = await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all();
      const detail = rows.map((r) => r.detail);
      const scan = detail.some((d) => /^SCAN l\b/.test(d) || /^SCAN request_log\b/.test(d));
      scans += scan ? 1 : 0;
      plans.push({ name, plan: detail, full_scan: scan });
    }

    console.log(`\ngemgate console bench (${new Date().toISOString()}), ${counted.n} log rows, ${REQUESTS} requests per query, goal p50 < ${GOAL_MS} ms\n`);
    console.log(`${'query'.padEnd(26)} ${'p50 ms'.padStart(8)} ${'max ms'.padStart(8)}`);
    for (const r of results) {
      console.log(`${r.name.padEnd(26)} ${r.p50_ms.toFixed(1).padStart(8)} ${r.max_ms.toFixed(1).padStart(8)}${r.p50_ms > GOAL_MS ? '  over the goal' : ''}`);
    }
    console.log(`CSV export: ${csvRows} rows in ${csvMs.toFixed(0)} ms`);
    console.log('\nquery plans (request_log must be searched through an index, never scanned):');
    for (const p of plans) console.log(`  ${p.name}: ${p.plan.join(' | ')}${p.full_scan ? '   <-- FULL SCAN' : ''}`);
    writeFileSync(join(ROOT, 'tests/bench/last-console.json'), `${JSON.stringify({ date: new Date().toISOString(), rows: counted.n, requests: REQUESTS, results, csv: { rows: csvRows, ms: csvMs }, plans }, null, 2)}\n`);
    if (scans > 0) {
      console.error(`\n${scans} log query shape(s) scan request_log whole`);
      process.exitCode = 1;
    }
  } finally {
    clearTimeout(watchdog);
    await mf?.dispose().catch(() => {});
    await mock.close().catch(() => {});
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
