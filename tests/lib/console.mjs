// What the console's browser tests share: the two dictionaries, the check
// that a page shows no text outside them, axe-core injected into a page,
// and browser contexts that are logged in and may reach nothing but the
// gateway.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ROOT } from './harness.mjs';

/** Bound for every page wait. */
export const UI_TIMEOUT = 15_000;

/** The console's dictionaries, `{ en, zh }`, as the pages import them. */
export async function dictionaries() {
  const load = async (lang) => (await import(join(ROOT, `admin-ui/src/i18n/${lang}.js`))).default;
  return { en: await load('en'), zh: await load('zh') };
}

/** The `{name}` placeholders of a dictionary text, sorted. */
export const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

/**
 * Words that are the same in every language: product and protocol names,
 * units and labels the console shows as they are.
 */
export const ALLOWED = new Set([
  'gemgate', 'Gemini', 'OpenAI', 'AI Studio', 'RPM', 'RPD', 'TPM', 'p50', 'p95',
  '2xx', '4xx', '5xx', 'MiB', 'KiB', 'B', 'sk-…', '×', '▾', '☀', '☾', '◐', '↑', '↓',
]);

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A matcher for one dictionary's texts, placeholders filled by anything. */
export function matcher(dict) {
  const exact = new Set(Object.values(dict));
  const templates = Object.values(dict)
    .filter((text) => /\{\w+\}/.test(text))
    .map((text) => new RegExp(`^${text.split(/\{\w+\}/).map(escapeRe).join('.+?')}$`, 's'));
  return (text) => exact.has(text) || templates.some((re) => re.test(text));
}

/** Numbers (1,234, 1.2k, 11M), dates, durations and punctuation need no translation. */
const NEUTRAL = /^(?:[\d\s.,:;%+\-–—/×()·…<>≤≥~|[\]'"]*|-?[\d.,]+[kMG])$/;

/**
 * Every visible-to-someone text of the page: text nodes and the attributes
 * people read (placeholder, aria-label, title, alt, data-label, the
 * document title), except inside [translate="no"] (data values: names,
 * model ids, masked keys, server messages) and what is never shown
 * (script, style, noscript). Returns `[{ text, where }]`.
 */
export function pageTexts(page) {
  return page.evaluate(() => {
    const out = [];
    const skip = (el) => !el || el.closest('[translate="no"], script, style, noscript, template');
    const where = (el) => {
      const parts = [];
      for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
        parts.unshift(`${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className && typeof e.className === 'string' ? `.${e.className.trim().split(/\s+/).join('.')}` : ''}`);
      }
      return parts.join(' > ');
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent.replace(/\s+/g, ' ').trim();
      if (text && !skip(node.parentElement)) out.push({ text, where: where(node.parentElement) });
    }
    for (const el of document.body.querySelectorAll('[placeholder], [aria-label], [title], [alt], [data-label]')) {
      if (skip(el)) continue;
      for (const attr of ['placeholder', 'aria-label', 'title', 'alt', 'data-label']) {
        const value = el.getAttribute(attr)?.trim();
        if (value) out.push({ text: value, where: `${where(el)} [${attr}]` });
      }
    }
    for (const part of document.title.split(' · ')) out.push({ text: part.trim(), where: 'title' });
    return out;
  });
}

/** Only allowed words, numbers and punctuation ("RPM 60 · TPM 1,000"). */
const allowedWords = (text) => text.split(/[\s·]+/).every((w) => !w || ALLOWED.has(w) || NEUTRAL.test(w));

/**
 * The page's texts that are neither in `lang`'s dictionary nor neutral:
 * raw keys (a key shown as itself) and untranslated strings.
 */
export async function untranslated(page, dicts, lang) {
  const inDict = matcher(dicts[lang]);
  const keys = new Set(Object.keys(dicts.en));
  const bad = [];
  for (const { text, where } of await pageTexts(page)) {
    if (keys.has(text)) bad.push(`raw key ${JSON.stringify(text)} at ${where}`);
    else if (!(inDict(text) || NEUTRAL.test(text) || allowedWords(text))) bad.push(`${JSON.stringify(text)} at ${where}`);
  }
  return bad;
}

let axeSource;
/** Runs axe-core in the page; returns its serious and critical violations. */
export async function axeViolations(page) {
  axeSource ??= readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary?.split('\n').slice(1, 3).join(' ')}`).join('\n    ')}`);
}

/**
 * Blocks and records every request not to the gateway: the pages must work
 * with the network cut (no CDN, no web font, nothing but the gateway's API).
 * Also bounds every wait in the context at UI_TIMEOUT.
 */
export async function keepLocal(context) {
  // Every wait and action in the context is bounded, so a page that never
  // shows what a test waits for fails that step instead of the whole test.
  context.setDefaultTimeout(UI_TIMEOUT);
  const external = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    external.push(url.href);
    return route.abort();
  });
  return external;
}

/** Logs `context` in through the login route (its cookie jar is the context's). */
export async function logIn(context, url, { ip } = {}) {
  const res = await context.request.post(`${url}/admin/api/login`, {
    data: { password: ADMIN_PASSWORD },
    headers: { origin: url, ...(ip ? { 'cf-connecting-ip': ip } : {}) },
    timeout: UI_TIMEOUT,
  });
  if (res.status() !== 200) throw new Error(`login: ${res.status()} ${await res.text()}`);
}

/** Records uncaught exceptions and CSP violations in `page`. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`exception: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // A failing API answer (the 404 of an endpoint not there) is the page's to show, not an error of the page.
    if (/^Failed to load resource/.test(m.text())) return;
    errors.push(`console: ${m.text()}`);
  });
  return errors;
}
