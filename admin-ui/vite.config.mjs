// The console's build: two pages (/admin/ and /usage) from admin-ui/, every
// script and stylesheet written with a content hash in its name under
// /admin/assets/, which the worker serves as immutable. No CDN, no web
// fonts, no inline script: the pages load only files from the gateway.
//
// GEMGATE_UI_OUT overrides the output folder and GEMGATE_UI_MARKER puts a
// marker into the bundle (the cache-busting test builds with both).
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

const root = resolve(import.meta.dirname);
const outDir = process.env.GEMGATE_UI_OUT
  ? resolve(process.env.GEMGATE_UI_OUT)
  : resolve(root, '../build/admin-ui');

export default defineConfig({
  root,
  base: '/',
  // Nothing is copied verbatim: every served file goes through the bundler.
  publicDir: false,
  logLevel: 'warn',
  define: {
    __BUILD_MARKER__: JSON.stringify(process.env.GEMGATE_UI_MARKER ?? ''),
  },
  build: {
    outDir,
    emptyOutDir: true,
    // Under /admin/ so the worker (run_worker_first = /admin/*) serves them
    // with their cache headers; /usage loads them from there too.
    assetsDir: 'admin/assets',
    // Small icons would otherwise become data: URLs; keep them files.
    assetsInlineLimit: 0,
    target: 'es2020',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    sourcemap: false,
    rolldownOptions: {
      input: {
        console: resolve(root, 'admin/index.html'),
        usage: resolve(root, 'usage.html'),
      },
    },
  },
});
