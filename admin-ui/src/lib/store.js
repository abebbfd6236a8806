// A tiny observable value and the hook that re-renders a component when it
// changes. Enough for the few things every page shares (language, theme,
// session, the message banner) without a state library.
import { useEffect, useState } from 'preact/hooks';

export function store(initial) {
  let value = initial;
  const listeners = new Set();
  return {
    get: () => value,
    set(next) {
      if (Object.is(next, value)) return;
      value = next;
      for (const fn of [...listeners]) fn(value);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** The store's current value; the component re-renders on every change. */
export function useStore(s) {
  const [value, setValue] = useState(s.get());
  useEffect(() => {
    setValue(s.get());
    return s.subscribe(setValue);
  }, [s]);
  return value;
}

/** localStorage that never throws (private mode, storage disabled). */
export const saved = {
  get(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch { /* not remembered, still applied */ }
  },
};
