// Two languages, one dictionary each with the same keys (a test checks
// that). The first visit follows navigator.language; the switch is
// remembered in localStorage and sets <html lang>.
import en from '../i18n/en.js';
import zh from '../i18n/zh.js';
import { saved, store, useStore } from './store.js';

export const DICTIONARIES = { en, zh };
const STORAGE_KEY = 'gemgate.lang';

function initial() {
  const remembered = saved.get(STORAGE_KEY);
  if (remembered === 'en' || remembered === 'zh') return remembered;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const l = String(tag).toLowerCase();
    if (l.startsWith('zh')) return 'zh';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

export const lang = store(initial());

function apply(l) {
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
}
apply(lang.get());

export function setLang(l) {
  saved.set(STORAGE_KEY, l);
  lang.set(l);
  apply(l);
}

/** Intl locale of the current language. */
export const locale = () => (lang.get() === 'zh' ? 'zh-CN' : 'en-US');

/**
 * The text for `key` in the current language, `{name}` placeholders filled
 * from `params`. A missing key comes back as itself, which the
 * untranslated-string test looks for.
 */
export function t(key, params) {
  const text = DICTIONARIES[lang.get()][key];
  if (typeof text !== 'string') return key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** Re-renders the calling component when the language changes. */
export function useLang() {
  return useStore(lang);
}
