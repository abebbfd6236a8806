// Numbers, times and sizes as the console shows them. Dates are written
// YYYY-MM-DD HH:MM:SS in the browser's time zone, the same in both
// languages; words (units, "unlimited") come from the dictionaries.
import { locale, t } from './i18n.js';

const numberFormats = new Map();
function nf(opts = {}) {
  const key = `${locale()}|${JSON.stringify(opts)}`;
  if (!numberFormats.has(key)) numberFormats.set(key, new Intl.NumberFormat(locale(), opts));
  return numberFormats.get(key);
}

const isNum = (n) => n !== null && n !== undefined && n !== '' && Number.isFinite(Number(n));

/** 1,234,567 (or "–" for nothing). */
export const num = (n) => (isNum(n) ? nf().format(Number(n)) : '–');

/** A limit: the number, or "unlimited" for null. */
export const limit = (n) => (n === null || n === undefined ? t('common.unlimited') : num(n));

/** 97.3 % from 0.973. */
export const pct = (x) => (isNum(x) ? `${nf({ maximumFractionDigits: 1 }).format(Number(x) * 100)}%` : '–');

/** 1.2k-style short numbers for chart axes (digits and k/M/G only). */
export function short(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '';
  const abs = Math.abs(v);
  for (const [size, unit] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (abs >= size) return `${+(v / size).toFixed(abs >= size * 10 ? 0 : 1)}${unit}`;
  }
  return `${+v.toFixed(abs < 10 && abs % 1 ? 1 : 0)}`;
}

/** 850 ms, 1.25 s. */
export function ms(n) {
  if (!isNum(n)) return '–';
  const v = Number(n);
  if (v < 1000) return t('unit.ms', { n: nf({ maximumFractionDigits: 0 }).format(v) });
  return t('unit.s', { n: nf({ maximumFractionDigits: 2 }).format(v / 1000) });
}

/** 10 MiB, 512 KiB, 300 B. */
export function bytes(n) {
  if (!isNum(n)) return '–';
  const v = Number(n);
  if (v >= 1024 * 1024 && v % (1024 * 1024 / 4) === 0) return `${nf({ maximumFractionDigits: 2 }).format(v / 1048576)} MiB`;
  if (v >= 1024 && v % 256 === 0) return `${nf({ maximumFractionDigits: 2 }).format(v / 1024)} KiB`;
  return `${nf().format(v)} B`;
}

const pad = (n) => String(n).padStart(2, '0');

/** Milliseconds, seconds or an RFC 3339 string → ms since the epoch (or null). */
export function toMs(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return value < 1e11 ? value * 1000 : value;
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? parsed : null;
}

/** 2026-05-01 14:03:09, local time. */
export function dateTime(value, { seconds = true } = {}) {
  const at = toMs(value);
  if (at === null) return '–';
  const d = new Date(at);
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? `:${pad(d.getSeconds())}` : ''}`;
  return `${day} ${time}`;
}

/** 2026-05-01, local time. */
export function date(value) {
  const at = toMs(value);
  if (at === null) return '–';
  const d = new Date(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A countdown: 0:42, 12:05, 3:04:05. */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}:${pad(m)}:${pad(rest)}` : `${m}:${pad(rest)}`;
}

/** A value for an <input type="datetime-local"> from ms. */
export function localInput(at) {
  if (at === null || at === undefined) return '';
  const d = new Date(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** How long ago `value` was, from `now`: just now, 5 min ago, 3 h ago, 2 d ago. */
export function ago(value, now = Date.now()) {
  const at = toMs(value);
  if (at === null) return '–';
  const s = Math.max(0, (now - at) / 1000);
  if (s < 60) return t('time.justNow');
  if (s < 3600) return t('time.minutesAgo', { n: Math.floor(s / 60) });
  if (s < 86400) return t('time.hoursAgo', { n: Math.floor(s / 3600) });
  return t('time.daysAgo', { n: Math.floor(s / 86400) });
}
