// Runs the end-to-end suite (tests/e2e and the mock's own tests) one file at
// a time, prints each result, and closes with `N passed, N failed`.
// Exits non-zero on any failure.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(new URL('.', import.meta.url).pathname);
const only = process.argv.slice(2);
const files = ['mock', 'e2e']
  .flatMap((dir) =>
    readdirSync(join(root, dir))
      .filter((f) => f.endsWith('.test.mjs'))
      .map((f) => join(root, dir, f)),
  )
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

let passed = 0;
let failed = 0;
const stream = run({ files, concurrency: 1, timeout: 15 * 60_000 });
stream.on('test:pass', (ev) => {
  if (ev.details?.type !== 'suite') passed += 1;
});
stream.on('test:fail', (ev) => {
  if (ev.details?.type !== 'suite') failed += 1;
});
stream.compose(spec).pipe(process.stdout);
stream.on('end', () => {
  // Let the reporter flush before the closing line.
  setImmediate(() => {
    process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
    process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
  });
});
