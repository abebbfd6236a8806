// The console's header: the sections, the language and theme switches,
// and logging out (this browser, or every session).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, session } from '../lib/api.js';
import { html } from '../lib/html.js';
import { lang, setLang, t } from '../lib/i18n.js';
import { useStore } from '../lib/store.js';
import { nextTheme, theme } from '../lib/theme.js';
import { Confirm } from '../lib/ui.js';

/** The language switch: names the other language, in that language. */
export function LangSwitch() {
  const l = useStore(lang);
  const other = l === 'zh' ? 'en' : 'zh';
  return html`
    <button id="lang" type="button" class="btn btn-ghost" lang=${other === 'zh' ? 'zh-CN' : 'en'}
      aria-label=${t('header.switchLang')} title=${t('header.switchLang')} onClick=${() => setLang(other)}>
      ${t('header.otherLang')}
    </button>`;
}

/** The theme switch: system → light → dark. */
export function ThemeSwitch() {
  const choice = useStore(theme);
  const label = t(`theme.${choice}`);
  return html`
    <button id="theme" type="button" class="btn btn-ghost" aria-label=${t('theme.switch', { current: label })}
      title=${t('theme.switch', { current: label })} onClick=${nextTheme}>
      <span class="theme-icon" aria-hidden="true">${choice === 'dark' ? '☾' : choice === 'light' ? '☀' : '◐'}</span>
      <span class="theme-label">${label}</span>
    </button>`;
}

function Account() {
  const ref = useRef(null);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const close = (e) => {
      if (ref.current?.open && !ref.current.contains(e.target)) ref.current.open = false;
    };
    document.addEventListener('click', close);
    return () => document.removeEventListener('click', close);
  }, []);
  const logout = async (everywhere) => {
    setBusy(true);
    try {
      await api.post('/admin/api/logout', everywhere ? { everywhere: true } : {});
      session.set({ authenticated: false, csrf: null, expiresAt: null, checked: true, lost: false });
    } catch {
      /* shown in the banner */
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  };
  return html`
    <details class="menu" ref=${ref} onKeyDown=${(e) => {
      if (e.key !== 'Escape' || !ref.current.open) return;
      ref.current.open = false;
      ref.current.querySelector('summary')?.focus();
    }}>
      <summary class="btn btn-ghost">${t('header.account')}</summary>
      <div class="menu-items">
        <button type="button" class="menu-item" id="logout" disabled=${busy} onClick=${() => logout(false)}>${t('header.logout')}</button>
        <button type="button" class="menu-item" id="logout-all" disabled=${busy} onClick=${() => { ref.current.open = false; setConfirming(true); }}>${t('header.logoutAll')}</button>
      </div>
    </details>
    <${Confirm} open=${confirming} title=${t('header.logoutAll')} text=${t('header.logoutAllText')}
      confirmLabel=${t('header.logoutAll')} busy=${busy} onConfirm=${() => logout(true)} onClose=${() => setConfirming(false)} />`;
}

export function Header({ sections, path, navigate }) {
  return html`
    <header class="topbar">
      <div class="topbar-row">
        <a class="brand" href="/admin/" translate=${false} onClick=${(e) => { e.preventDefault(); navigate(''); }}>
          <span class="brand-mark" aria-hidden="true"></span>gemgate
        </a>
        <nav class="nav" aria-label=${t('nav.label')}>
          ${sections.map((s) => html`
            <a key=${s.path} href=${`/admin/${s.path}`} aria-current=${s.path === path ? 'page' : undefined}
              onClick=${(e) => {
                if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                e.preventDefault();
                navigate(s.path);
              }}>${t(s.title)}</a>`)}
        </nav>
        <div class="topbar-tools">
          <${LangSwitch} />
          <${ThemeSwitch} />
          <${Account} />
        </div>
      </div>
    </header>`;
}
