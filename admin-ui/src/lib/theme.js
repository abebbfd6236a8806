// Light or dark: follows the system until the switch is used, then the
// choice is remembered. `dark` tells charts which palette is in effect.
import { saved, store } from './store.js';

const STORAGE_KEY = 'gemgate.theme';
const query = matchMedia('(prefers-color-scheme: dark)');

function initial() {
  const remembered = saved.get(STORAGE_KEY);
  return remembered === 'light' || remembered === 'dark' ? remembered : 'system';
}

/** 'system', 'light' or 'dark': what the switch says. */
export const theme = store(initial());
/** Whether the dark palette is in effect now. */
export const dark = store(false);

function apply() {
  const choice = theme.get();
  const root = document.documentElement;
  if (choice === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', choice);
  dark.set(choice === 'dark' || (choice === 'system' && query.matches));
}
apply();
query.addEventListener('change', apply);

const ORDER = ['system', 'light', 'dark'];

/** The switch: system → light → dark → system. */
export function nextTheme() {
  const next = ORDER[(ORDER.indexOf(theme.get()) + 1) % ORDER.length];
  saved.set(STORAGE_KEY, next === 'system' ? null : next);
  theme.set(next);
  apply();
}
