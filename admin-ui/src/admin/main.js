// The admin console: one page per section under /admin/, a header with the
// navigation and the language, theme and log-out controls, and the login
// form whenever there is no session. The worker serves index.html for
// every /admin/... path; the sections are switched here with the History
// API.
import '../styles/base.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, session } from '../lib/api.js';
import { html } from '../lib/html.js';
import { t, useLang } from '../lib/i18n.js';
import { store, useStore } from '../lib/store.js';
import { Banner, Loading } from '../lib/ui.js';
import { Header } from './header.js';
import { Login } from './pages/login.js';
import { Dashboard } from './pages/dashboard.js';
import { Keys } from './pages/keys.js';
import { Accounts } from './pages/accounts.js';
import { Users } from './pages/users.js';
import { Models } from './pages/models.js';
import { Settings } from './pages/settings.js';
import { Logs } from './pages/logs.js';
import { Ops } from './pages/ops.js';

// Set by the cache-busting test's build; empty (and dropped) otherwise.
// eslint-disable-next-line no-undef
if (__BUILD_MARKER__) document.documentElement.dataset.build = __BUILD_MARKER__;

/** The sections, in navigation order: path under /admin/, title key, page. */
export const SECTIONS = [
  { path: '', title: 'nav.dashboard', Page: Dashboard },
  { path: 'keys', title: 'nav.keys', Page: Keys },
  { path: 'accounts', title: 'nav.accounts', Page: Accounts },
  { path: 'users', title: 'nav.users', Page: Users },
  { path: 'models', title: 'nav.models', Page: Models },
  { path: 'settings', title: 'nav.settings', Page: Settings },
  { path: 'logs', title: 'nav.logs', Page: Logs },
  { path: 'ops', title: 'nav.ops', Page: Ops },
];

const current = () => location.pathname.replace(/^\/admin\/?/, '').replace(/\/+$/, '').replace(/^index\.html$/, '');
export const route = store(current());

/** Moves to another section without reloading. */
export function navigate(path) {
  const url = `/admin/${path}`;
  if (location.pathname !== url) history.pushState(null, '', url);
  route.set(path);
  window.scrollTo(0, 0);
}
window.addEventListener('popstate', () => route.set(current()));

async function checkSession() {
  try {
    const s = await api.get('/admin/api/session', { quiet: true });
    session.set({ authenticated: !!s?.authenticated, csrf: s?.csrf_token ?? null, expiresAt: s?.expires_at ?? null, checked: true, lost: false });
  } catch (err) {
    session.set({ authenticated: false, csrf: null, expiresAt: null, checked: true, lost: false, error: err });
  }
}

function NotFound() {
  return html`
    <section class="page">
      <h1 id="page-title">${t('nav.notFound')}</h1>
      <p><a href="/admin/" onClick=${(e) => { e.preventDefault(); navigate(''); }}>${t('nav.backHome')}</a></p>
    </section>`;
}

function App() {
  useLang();
  const s = useStore(session);
  const path = useStore(route);
  const section = SECTIONS.find((x) => x.path === path);
  const [focusMain, setFocusMain] = useState(false);

  useEffect(() => {
    checkSession();
  }, []);
  useEffect(() => {
    document.title = s.authenticated ? `${t(section?.title ?? 'nav.notFound')} · gemgate` : `${t('login.title')} · gemgate`;
  });
  useEffect(() => {
    // Move focus to the new section's heading, as a page load would.
    if (focusMain) document.getElementById('page-title')?.focus({ preventScroll: true });
    setFocusMain(true);
  }, [path]);

  if (!s.checked) return html`<main class="main"><${Loading} /></main>`;
  if (!s.authenticated) return html`<${Login} lost=${s.lost} />`;
  const Page = section?.Page ?? NotFound;
  return html`
    <a class="skip" href="#main">${t('nav.skip')}</a>
    <${Header} sections=${SECTIONS} path=${path} navigate=${navigate} />
    <main id="main" class="main" tabindex="-1">
      <${Banner} />
      <${Page} key=${path} navigate=${navigate} />
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
