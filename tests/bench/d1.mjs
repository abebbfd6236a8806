// What the benchmarks share: gemgate as a Miniflare worker (the built bundle,
// its bindings as wrangler.toml declares them), and the project's D1
// migrations applied statement by statement, as wrangler would.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

/** Splits a migration into statements (quotes, comments and trigger bodies aware). */
function sqlStatements(sql) {
  const out = [];
  let cur = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < sql.length && !(sql[j] === c && sql[j + 1] !== c)) j += sql[j] === c ? 2 : 1;
      cur += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === ';') {
      const inTrigger = /\bCREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(cur) && !/\bEND\s*$/i.test(cur.trim());
      if (!inTrigger) {
        if (cur.trim()) out.push(cur.trim());
        cur = '';
        i++;
        continue;
      }
    }
    cur += c;
    i++;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Applies every migration in order to the D1 database `DB` of `worker`; returns the file names. */
export async function migrate(mf, worker = 'gemgate') {
  const db = await mf.getD1Database('DB', worker);
  const files = readdirSync(join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).sort();
  for (const f of files) {
    const stmts = sqlStatements(readFileSync(join(ROOT, 'migrations', f), 'utf8'));
    if (stmts.length) await db.batch(stmts.map((s) => db.prepare(s)));
  }
  return files;
}


/** The compatibility date of wrangler.toml, after checking the bindings the benches rely on. */
export function compatibilityDate() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const m = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml);
  if (!m) throw new Error('compatibility_date not found in wrangler.toml');
  for (const name of ['"DB"', '"CACHE"', '"MODEL_GATE"', '"ModelGate"', 'GEMINI_API_BASE']) {
    if (!toml.includes(name)) throw new Error(`wrangler.toml no longer declares ${name}; update tests/bench/d1.mjs`);
  }
  return m[1];
}

/**
 * gemgate as a Miniflare worker: build/index.js with its wasm, answering `route`, with D1,
 * KV and every Durable Object of wrangler.toml (`storage` names the D1 and KV stores).
 * A second copy under another `name` gets its own Durable Object namespaces, since
 * Miniflare keys them by worker and class. `build` is the directory of the bundle (another
 * build, for an A/B comparison).
 */
export function gemgateWorker({ compatDate, route, storage, bindings, name = 'gemgate', build = join(ROOT, 'build') }) {
  return {
    name,
    rootPath: build,
    scriptPath: join(build, 'index.js'),
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: compatDate,
    routes: [route],
    d1Databases: { DB: `${storage}-db` },
    kvNamespaces: { CACHE: `${storage}-cache` },
    durableObjects: {
      MODEL_GATE: { className: 'ModelGate', useSQLite: true },
      USER_LEDGER: { className: 'UserLedger', useSQLite: true },
      LOGIN_THROTTLE: { className: 'LoginThrottle', useSQLite: true },
      ACCOUNT_TOKEN: { className: 'AccountToken', useSQLite: true },
    },
    bindings,
  };
}
