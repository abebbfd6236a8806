// Small shared pieces: the message banner, dialogs, fields, switches,
// segmented choices, paging, copy, bars, and the hooks the pages use to
// load data and to tick.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { clearNotice, notice, report } from './api.js';
import { html } from './html.js';
import { t } from './i18n.js';
import { useStore } from './store.js';

let uid = 0;
/** A stable id for label/aria wiring. */
export function useId(prefix = 'f') {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++uid}`;
  return ref.current;
}

/** The one place errors and confirmations are shown. */
export function Banner() {
  const n = useStore(notice);
  useEffect(() => {
    if (n?.kind !== 'ok') return undefined;
    const timer = setTimeout(() => notice.get()?.id === n.id && clearNotice(), 5000);
    return () => clearTimeout(timer);
  }, [n]);
  return html`
    <div class="banner-slot" aria-live="polite">
      ${n && html`
        <div class=${`banner banner-${n.kind}`} role=${n.kind === 'error' ? 'alert' : 'status'} key=${n.id}>
          <span class="banner-text">
            ${n.kind === 'error' && html`<strong>${t('error.prefix')}</strong> `}
            ${n.server ? html`<span translate=${false}>${n.text}</span>` : html`<span>${n.text}</span>`}
          </span>
          <button type="button" class="btn-icon" aria-label=${t('common.dismiss')} title=${t('common.dismiss')} onClick=${clearNotice}>×</button>
        </div>`}
    </div>`;
}

/**
 * A modal <dialog>: Escape and the close button call onClose; focus moves
 * into it and back. `actions` go in its footer.
 */
export function Dialog({ open, title, onClose, children, actions, wide = false }) {
  const ref = useRef(null);
  const titleId = useId('dlg');
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  const onCancel = (e) => {
    e.preventDefault();
    onClose?.();
  };
  return html`
    <dialog ref=${ref} class=${wide ? 'dialog dialog-wide' : 'dialog'} aria-labelledby=${titleId} onCancel=${onCancel}>
      ${open && html`
        <div class="dialog-head">
          <h2 id=${titleId}>${title}</h2>
          <button type="button" class="btn-icon" aria-label=${t('common.close')} title=${t('common.close')} onClick=${() => onClose?.()}>×</button>
        </div>
        <div class="dialog-body">${children}</div>
        ${actions && html`<div class="dialog-actions">${actions}</div>`}`}
    </dialog>`;
}

/** Asks before something that cannot be undone. */
export function Confirm({ open, title, text, confirmLabel, danger = true, busy = false, onConfirm, onClose }) {
  return html`
    <${Dialog} open=${open} title=${title} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="button" class=${danger ? 'btn btn-danger' : 'btn btn-primary'} disabled=${busy} onClick=${onConfirm}>${confirmLabel}</button>`}>
      <p>${text}</p>
    <//>`;
}

/** A labelled control with its hint and its error (aria-wired). */
export function Field({ label, error, hint, children, id, wide = false, inline = false }) {
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errId : null, hint ? hintId : null].filter(Boolean).join(' ') || undefined;
  const control = typeof children === 'function' ? children({ id, describedBy, invalid: !!error }) : children;
  return html`
    <div class=${`field${wide ? ' field-wide' : ''}${inline ? ' field-inline' : ''}${error ? ' field-invalid' : ''}`}>
      <label for=${id}>${label}</label>
      ${control}
      ${hint && html`<p class="hint" id=${hintId}>${hint}</p>`}
      ${error && html`<p class="field-error" id=${errId} role="alert" translate=${false}>${error}</p>`}
    </div>`;
}

/** An on/off switch (a button with role="switch"). */
export function Switch({ checked, onChange, label, disabled = false, id }) {
  return html`
    <button type="button" id=${id} role="switch" class="switch" aria-checked=${checked ? 'true' : 'false'}
      aria-label=${label} title=${label} disabled=${disabled} onClick=${() => onChange(!checked)}>
      <span class="switch-track" aria-hidden="true"><span class="switch-thumb"></span></span>
    </button>`;
}

/** A row of mutually exclusive buttons. */
/** `options`: `[{ value, label, count? }]`; a count is shown after its label. */
export function Segmented({ label, value, options, onChange, small = false }) {
  return html`
    <div class=${small ? 'segmented segmented-small' : 'segmented'} role="group" aria-label=${label}>
      ${options.map((o) => html`
        <button type="button" key=${o.value} aria-pressed=${o.value === value ? 'true' : 'false'}
          onClick=${() => onChange(o.value)}>${o.label}${o.count !== undefined && html` <span class="count">${o.count}</span>`}</button>`)}
    </div>`;
}

/** Previous / next over server-side pages. */
export function Pager({ offset, limit, total, onChange }) {
  if (!total) return null;
  const from = Math.min(offset + 1, total);
  const to = Math.min(offset + limit, total);
  return html`
    <nav class="pager" aria-label=${t('common.pages')}>
      <span>${t('common.range', { from: from.toLocaleString(), to: to.toLocaleString(), total: total.toLocaleString() })}</span>
      <button type="button" class="btn" disabled=${offset <= 0} onClick=${() => onChange(Math.max(0, offset - limit))}>${t('common.prev')}</button>
      <button type="button" class="btn" disabled=${to >= total} onClick=${() => onChange(offset + limit)}>${t('common.next')}</button>
    </nav>`;
}

export const Loading = () => html`<p class="muted loading" role="status">${t('common.loading')}</p>`;
export const Empty = ({ text }) => html`<p class="empty">${text}</p>`;

/** A page's load failure, in place of its content, with a retry. */
export function LoadError({ error, onRetry }) {
  return html`
    <div class="load-error" role="alert">
      <p><strong>${t('error.loadFailed')}</strong></p>
      <p translate=${false}>${error.message}</p>
      ${onRetry && html`<button type="button" class="btn" onClick=${onRetry}>${t('common.retry')}</button>`}
    </div>`;
}

/** Copies `text` with the Clipboard API and says so. */
export function CopyButton({ text, label }) {
  const [state, setState] = useState('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('done');
    } catch {
      setState('failed');
    }
  };
  const shown = state === 'done' ? t('common.copied') : state === 'failed' ? t('common.copyFailed') : (label ?? t('common.copy'));
  return html`<button type="button" class="btn btn-primary" onClick=${copy} aria-live="polite">${shown}</button>`;
}

/** A horizontal share bar (SVG, so no inline style). */
export function Bar({ value, max, tone = 'accent', label }) {
  const w = max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
  return html`
    <svg class=${`bar bar-${tone}`} viewBox="0 0 100 8" preserveAspectRatio="none" role=${label ? 'img' : undefined}
      aria-label=${label} aria-hidden=${label ? undefined : 'true'}>
      <rect class="bar-bg" x="0" y="0" width="100" height="8" rx="2"></rect>
      <rect class="bar-fg" x="0" y="0" width=${w} height="8" rx="2"></rect>
    </svg>`;
}

/** A stacked bar of parts `[{ value, tone }]`. */
export function StackBar({ parts, label }) {
  const total = parts.reduce((s, p) => s + p.value, 0);
  let x = 0;
  return html`
    <svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label=${label}>
      <rect class="bar-bg" x="0" y="0" width="100" height="8" rx="2"></rect>
      ${total > 0 && parts.map((p, i) => {
        const w = (p.value / total) * 100;
        const rect = html`<rect key=${i} class=${`bar-${p.tone}`} x=${x} y="0" width=${w} height="8"></rect>`;
        x += w;
        return rect;
      })}
    </svg>`;
}

/**
 * Loads with `loader()` whenever `deps` change. Errors are shown in place
 * (the caller renders LoadError), not in the banner.
 */
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const run = useCallback(async ({ silent = false } = {}) => {
    const mine = ++seq.current;
    if (!silent) setState((s) => ({ ...s, loading: true }));
    try {
      const data = await loader();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: silent ? s.data : null, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    run();
  }, [run]);
  return { ...state, reload: run };
}

/** Calls `fn` every `ms` while the tab is visible, and once when it comes back. */
export function useVisibleInterval(fn, ms) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    let timer = null;
    const start = () => {
      if (timer === null) timer = setInterval(() => saved.current(), ms);
    };
    const stop = () => {
      clearInterval(timer);
      timer = null;
    };
    const onVisibility = () => {
      if (document.hidden) stop();
      else {
        saved.current();
        start();
      }
    };
    if (!document.hidden) start();
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      stop();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [ms]);
}

/** The current time, updated every `ms` (for countdowns). */
export function useNow(ms = 1000, active = true) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms, active]);
  return now;
}

/** Runs an async action, reporting failures; returns [run, busy]. */
export function useAction(fn) {
  const [busy, setBusy] = useState(false);
  const run = async (...args) => {
    setBusy(true);
    try {
      return await fn(...args);
    } catch (err) {
      if (!(err && 'status' in err)) report(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return [run, busy];
}

/**
 * A filter <select> with "All" first; `options`: `[{ value, label }]`,
 * data values (not translated) unless `data` is false.
 */
export function FilterSelect({ id, label, value, options, onChange, data = true }) {
  return html`
    <div class="field field-compact">
      <label for=${id}>${label}</label>
      <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
        <option value="">${t('dash.all')}</option>
        ${options.map((o) => html`<option key=${o.value} value=${o.value} translate=${data ? false : undefined}>${o.label}</option>`)}
      </select>
    </div>`;
}

/** Remembers the options seen so far, so a filtered answer does not shrink the list. */
export function useOptions(list, toOption) {
  const seen = useRef(new Map());
  for (const item of list ?? []) {
    const o = toOption(item);
    if (o.value) seen.current.set(o.value, o);
  }
  return [...seen.current.values()].sort((a, b) => a.label.localeCompare(b.label));
}
