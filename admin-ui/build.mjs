// Builds the console (vite build with admin-ui/vite.config.mjs), then prints
// the size of every script and stylesheet it wrote, raw and gzipped, and
// fails when they add up to more than the budget.
//
//   node admin-ui/build.mjs            build into build/admin-ui/
//   GEMGATE_UI_OUT=dir node admin-ui/build.mjs
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

/** All JS + CSS of the console, gzipped. */
const BUDGET_BYTES = 150 * 1024;

const here = resolve(import.meta.dirname);
const outDir = process.env.GEMGATE_UI_OUT
  ? resolve(process.env.GEMGATE_UI_OUT)
  : resolve(here, '../build/admin-ui');

await build({ configFile: join(here, 'vite.config.mjs') });

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

const rows = [...files(outDir)]
  .filter((path) => /\.(js|css)$/.test(path))
  .map((path) => {
    const bytes = readFileSync(path);
    return { file: relative(outDir, path), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  })
  .sort((a, b) => b.gzip - a.gzip);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
for (const row of rows) {
  console.log(`  ${row.file.padEnd(48)} ${kb(row.raw).padStart(10)} ${kb(row.gzip).padStart(10)} gzip`);
}
const total = rows.reduce((sum, row) => sum + row.gzip, 0);
console.log(`console JS + CSS: ${kb(total)} gzipped (budget ${kb(BUDGET_BYTES)}), ${rows.length} files in ${relative(process.cwd(), outDir) || '.'}`);
if (total > BUDGET_BYTES) {
  console.error(`over budget by ${kb(total - BUDGET_BYTES)}`);
  process.exit(1);
}
