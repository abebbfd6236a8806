// The login form, shown at any /admin/ path without a session. A wrong
// password says so; a throttled one (429) shows how long to wait, counting
// down, and the form waits too.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, session } from '../../lib/api.js';
import { clock } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { useNow } from '../../lib/ui.js';
import { LangSwitch, ThemeSwitch } from '../header.js';

export function Login({ lost }) {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [waitUntil, setWaitUntil] = useState(0);
  const input = useRef(null);
  const now = useNow(500, waitUntil > 0);
  const waiting = waitUntil > now;

  useEffect(() => input.current?.focus(), []);
  useEffect(() => {
    if (waitUntil && !waiting) {
      setWaitUntil(0);
      setError(null);
    }
  }, [waiting, waitUntil]);

  const submit = async (e) => {
    e.preventDefault();
    if (!password || waiting) return;
    setBusy(true);
    setError(null);
    try {
      const s = await api.post('/admin/api/login', { password }, { quiet: true });
      setPassword('');
      session.set({ authenticated: true, csrf: s.csrf_token, expiresAt: s.expires_at, checked: true, lost: false });
    } catch (err) {
      if (err.status === 429) {
        setWaitUntil(Date.now() + (err.retryAfter ?? 60) * 1000);
        setError({ kind: 'throttled' });
      } else if (err.status === 401) {
        setError({ kind: 'wrong' });
      } else {
        setError({ kind: 'server', message: err.message });
      }
      setBusy(false);
      input.current?.select();
      return;
    }
    setBusy(false);
  };

  let message = null;
  if (error?.kind === 'wrong') message = html`<p id="login-error" class="form-error" role="alert">${t('login.wrong')}</p>`;
  else if (error?.kind === 'throttled') {
    message = html`
      <p id="login-error" class="form-error" role="alert">
        ${waiting ? t('login.throttled', { time: clock((waitUntil - now) / 1000) }) : t('login.tryAgain')}
      </p>`;
  } else if (error?.kind === 'server') {
    message = html`<p id="login-error" class="form-error" role="alert"><strong>${t('error.prefix')}</strong> <span translate=${false}>${error.message}</span></p>`;
  }

  return html`
    <div class="login-page">
      <div class="login-tools"><${LangSwitch} /><${ThemeSwitch} /></div>
      <main class="login-card" id="main">
        <p class="brand brand-large" translate=${false}><span class="brand-mark" aria-hidden="true"></span>gemgate</p>
        <h1 id="page-title">${t('login.title')}</h1>
        ${lost && !error && html`<p class="notice-info" role="status">${t('login.expired')}</p>`}
        <form onSubmit=${submit} class="stack">
          <div class="field">
            <label for="password">${t('login.password')}</label>
            <input id="password" ref=${input} type="password" autocomplete="current-password" required
              value=${password} onInput=${(e) => setPassword(e.currentTarget.value)}
              aria-invalid=${error ? 'true' : undefined} aria-describedby=${message ? 'login-error' : undefined} />
          </div>
          ${message}
          <button type="submit" id="login" class="btn btn-primary btn-block" disabled=${busy || waiting}>
            ${busy ? t('login.signingIn') : t('login.submit')}
          </button>
        </form>
        <p class="hint">${t('login.hint')}</p>
      </main>
    </div>`;
}
