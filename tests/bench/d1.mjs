// D1 for the benchmarks: apply the project's migrations to a Miniflare D1
// database, statement by statement, as wrangler would.
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

/** Applies every migration in order to the D1 database `DB`; returns the file names. */
export async function migrate(mf) {
  const db = await mf.getD1Database('DB', 'gemgate');
  const files = readdirSync(join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).sort();
  for (const f of files) {
    const stmts = sqlStatements(readFileSync(join(ROOT, 'migrations', f), 'utf8'));
    if (stmts.length) await db.batch(stmts.map((s) => db.prepare(s)));
  }
  return files;
}

