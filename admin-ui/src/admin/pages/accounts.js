// Gemini CLI (Code Assist) accounts: the Google sign-ins the gateway pools
// beside its API keys. Import gemini-cli's credential files (pasted or
// picked, several at once) or sign in with Google through a paste-back
// wizard; read each account's state, with a plain explanation of what
// Google wants when it needs attention; test it, re-check its onboarding,
// set its project, read its quota, enable, disable or delete it; export
// the pool.
import { useState } from 'preact/hooks';
import { api, confirmDone, report, seg } from '../../lib/api.js';
import { clock, dateTime, ms, num, pct, toMs } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Bar, Confirm, CopyButton, Dialog, Empty, Field, LoadError, Loading, Segmented, Switch, useAction, useLoad, useNow } from '../../lib/ui.js';

const STATUSES = ['active', 'needs_attention', 'disabled'];
/** The reason codes the admin API gives; anything else is explained generically. */
const REASONS = ['ineligible_tier', 'project_required', 'validation_required', 'subscription_required', 'client_unsupported', 'revoked', 'forbidden'];
/** Reasons whose `url` is where the account holder acts. */
const LINKS = ['validation_required', 'subscription_required', 'ineligible_tier'];
const OUTCOMES = ['ok', 'rate_limited', 'key_invalid', 'server_error', 'network', 'timeout', 'client_error'];
const SOURCES = ['import', 'oauth', 'env'];
/** How long a sign-in link from /oauth/start can be finished (the server's limit). */
const OAUTH_TTL_MS = 10 * 60 * 1000;

/**
 * The credentials in one parsed JSON value: an array of them, a
 * `{credentials: [..], project_id}` batch, or one credential.
 */
export function credentialsOf(value) {
  if (Array.isArray(value)) return { items: value, project: null };
  if (value && typeof value === 'object' && Array.isArray(value.credentials)) {
    return { items: value.credentials, project: typeof value.project_id === 'string' ? value.project_id : null };
  }
  return { items: [value], project: null };
}

/** The pasted text's credentials, or `{ error }` when it is not JSON. */
function parsePaste(text) {
  if (!text.trim()) return { items: [], project: null };
  try {
    return credentialsOf(JSON.parse(text));
  } catch {
    return { items: [], project: null, error: true };
  }
}

/** Each picked file read and parsed: `{ name, items, error }`. */
function readFiles(files) {
  return Promise.all([...files].map(async (file) => {
    try {
      return { name: file.name, items: credentialsOf(JSON.parse(await file.text())).items };
    } catch {
      return { name: file.name, items: [], error: true };
    }
  }));
}

/** An address that may break after its @ rather than mid-word. */
function Email({ email }) {
  const at = String(email ?? '').lastIndexOf('@');
  if (at <= 0) return html`<span class="email" translate=${false}>${email}</span>`;
  return html`<span class="email" translate=${false}>${email.slice(0, at)}<wbr />${email.slice(at)}</span>`;
}

const statusPill = { active: 'pill-ok', needs_attention: 'pill-warn', disabled: 'pill-muted' };

function StatusPill({ status }) {
  const known = STATUSES.includes(status);
  return html`<span class=${`pill ${statusPill[status] ?? 'pill-muted'}`}>${known ? t(`accounts.status.${status}`) : t('accounts.status.other')}</span>`;
}

/** What Google wants, in the console's words, with its own words and link under them. */
function Attention({ a }) {
  if (!a.reason) return null;
  const known = REASONS.includes(a.reason);
  const linkKey = LINKS.includes(a.reason) ? `accounts.link.${a.reason}` : 'accounts.link.other';
  return html`
    <div class="attention">
      <p class="attention-text">${known ? t(`accounts.reason.${a.reason}`) : t('accounts.reason.other', { reason: a.reason })}</p>
      ${a.message && html`<p class="attention-message muted" translate=${false}>${a.message}</p>`}
      ${a.url && html`
        <a class="attention-link ext" href=${a.url} target="_blank" rel="noopener noreferrer">
          ${t(linkKey)}<span class="sr-only"> ${t('accounts.newTab')}</span>
        </a>`}
    </div>`;
}

/** Per-model cooldowns still running, each with its countdown. */
function Cooldowns({ cooldowns, now }) {
  const live = (cooldowns ?? []).filter((c) => (toMs(c.until_ms) ?? 0) > now);
  if (!live.length) return null;
  return html`
    <ul class="cooldowns" aria-label=${t('accounts.cooldowns')}>
      ${live.map((c) => html`
        <li key=${c.model}>
          <span class="pill pill-warn">${t('accounts.coolingFor', { time: clock((toMs(c.until_ms) - now) / 1000) })}</span>
          <code translate=${false}>${c.model}</code>
          ${c.reason && html`<span class="reason muted" translate=${false}>${c.reason}</span>`}
        </li>`)}
    </ul>`;
}

function TestResult({ r }) {
  if (!r) return null;
  if (r.pending) return html`<p class="test-result muted" role="status">${t('accounts.testing')}</p>`;
  // An account's "key" is its sign-in: say so rather than "key invalid".
  const outcome = r.outcome === 'key_invalid' ? t('accounts.signInRefused')
    : OUTCOMES.includes(r.outcome) ? t(`outcome.${r.outcome}`) : null;
  return html`
    <p class="test-result" role="status">
      <span class="muted">${t('accounts.lastTest')}</span>
      <span class=${`pill ${r.ok ? 'pill-ok' : 'pill-danger'}`}>${outcome ?? (r.ok ? t('outcome.ok') : t('outcome.other'))}</span>
      ${!outcome && r.outcome && html`<code translate=${false}>${r.outcome}</code>`}
      <span class="muted">${r.status ? `${r.status} · ` : ''}${ms(r.latency_ms)}</span>
      ${r.message && html`<span class="reason error-text" translate=${false}>${r.message}</span>`}
    </p>`;
}

/** The account's quota buckets, fetched when opened. */
function Quota({ account }) {
  const { data, error, loading, reload } = useLoad(
    () => api.get(`/admin/api/accounts/${seg(account.id)}/quota`, { quiet: true }),
    [account.id],
  );
  const buckets = data?.buckets ?? [];
  return html`
    <div class="quota-detail">
      <div class="row">
        <h3>${t('accounts.quotaOf', { email: account.email })}</h3>
        <button type="button" class="btn btn-small" disabled=${loading} onClick=${() => reload()}>${t('common.refresh')}</button>
      </div>
      ${error ? html`<div class="load-error" role="alert">
          <p><strong>${t('accounts.quotaFailed')}</strong></p>
          <p translate=${false}>${error.message}</p>
        </div>`
        : !data ? html`<${Loading} />`
        : !buckets.length ? html`<p class="muted">${t('accounts.noBuckets')}</p>`
        : html`
        <table class="table table-inner quota-table">
          <thead><tr>
            <th scope="col">${t('common.model')}</th>
            <th scope="col" class="bar-col">${t('accounts.remaining')}</th>
            <th scope="col">${t('accounts.resets')}</th>
            <th scope="col">${t('accounts.tokenType')}</th>
          </tr></thead>
          <tbody>
            ${buckets.map((b, i) => {
              const left = Number(b.remaining_fraction);
              const known = Number.isFinite(left);
              return html`
                <tr key=${`${b.model_id}-${b.token_type}-${i}`}>
                  <th scope="row" data-label=${t('common.model')}><code translate=${false}>${b.model_id ?? '–'}</code></th>
                  <td class="bar-col" data-label=${t('accounts.remaining')}>
                    <span class="quota-left">${known ? pct(left) : '–'}${b.remaining_amount !== null && b.remaining_amount !== undefined ? ` · ${num(b.remaining_amount)}` : ''}</span>
                    ${known && html`<${Bar} value=${left} max=${1} tone=${left <= 0.1 ? 'danger' : 'accent'} />`}
                  </td>
                  <td data-label=${t('accounts.resets')}>${dateTime(b.reset_time)}</td>
                  <td data-label=${t('accounts.tokenType')}><span translate=${false}>${b.token_type || '–'}</span></td>
                </tr>`;
            })}
          </tbody>
        </table>`}
    </div>`;
}

/** What an import or a finished sign-in did: counts, the refused entries, the accounts. */
function ImportResult({ result, sources = [], id }) {
  if (!result) return null;
  const invalid = result.invalid ?? [];
  return html`
    <div class="import-result" id=${id} role="status">
      <p class="result">${t('accounts.importResult', { added: num(result.added ?? 0), existing: num(result.existing ?? 0), invalid: num(invalid.length) })}</p>
      ${invalid.length > 0 && html`
        <ul class="invalid-list">
          ${invalid.map((v) => html`
            <li key=${v.index}>
              <span class="invalid-where">${sources[v.index]?.file
                ? html`<span translate=${false}>${sources[v.index].file}${sources[v.index].of > 1 ? ` #${sources[v.index].n}` : ''}</span>`
                : t('accounts.entry', { n: num((v.index ?? 0) + 1) })}</span>
              <span class="error-text" translate=${false}>${v.reason}</span>
            </li>`)}
        </ul>`}
      ${(result.accounts ?? []).length > 0 && html`
        <ul class="batch-list">
          ${result.accounts.map((a) => html`
            <li key=${a.id}><span translate=${false}>${a.email}</span> <${StatusPill} status=${a.status} /></li>`)}
        </ul>`}
    </div>`;
}

function ImportBox({ open, onAdded }) {
  const [text, setText] = useState('');
  const [files, setFiles] = useState([]);
  const [project, setProject] = useState('');
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [picker, setPicker] = useState(0);
  const paste = parsePaste(text);
  const badFiles = files.filter((f) => f.error);
  const count = paste.items.length + files.reduce((n, f) => n + f.items.length, 0);

  const [submit, busy] = useAction(async (e) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    const credentials = [];
    const sources = [];
    for (const item of paste.items) {
      credentials.push(item);
      sources.push({});
    }
    for (const f of files) {
      f.items.forEach((item, i) => {
        credentials.push(item);
        sources.push({ file: f.name, n: i + 1, of: f.items.length });
      });
    }
    const body = { credentials };
    const projectId = project.trim() || paste.project;
    if (projectId) body.project_id = projectId;
    try {
      const result = await api.post('/admin/api/accounts', body, { quiet: true });
      setDone({ result, sources });
      setText('');
      setFiles([]);
      setPicker((n) => n + 1);
      onAdded();
    } catch (err) {
      setError(err.message);
    }
  });

  const pick = async (e) => {
    const picked = e.currentTarget.files;
    setFiles(picked?.length ? await readFiles(picked) : []);
  };

  return html`
    <details class="card add-box import-box" open=${open}>
      <summary><span class="summary-title">${t('accounts.import')}</span></summary>
      <form class="stack" onSubmit=${submit}>
        <p class="hint">${t('accounts.importIntro')}</p>
        <${Field} id="import-text" label=${t('accounts.pasteLabel')} hint=${t('accounts.pasteHint')}
          error=${paste.error ? t('accounts.notJson') : null}>
          ${({ id, describedBy }) => html`<textarea id=${id} rows="5" spellcheck="false" autocomplete="off" class="mono"
            aria-describedby=${describedBy} aria-invalid=${paste.error ? 'true' : undefined}
            value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>`}
        <//>
        <${Field} id="import-files" label=${t('accounts.filesLabel')} hint=${t('accounts.filesHint')}
          error=${badFiles.length ? t('accounts.filesNotJson', { files: badFiles.map((f) => f.name).join(', ') }) : null}>
          ${({ id, describedBy }) => html`<input id=${id} key=${picker} type="file" multiple accept=".json,application/json"
            aria-describedby=${describedBy} onChange=${pick} />`}
        <//>
        <${Field} id="import-project" label=${t('accounts.projectOptional')} hint=${t('accounts.projectHint')}>
          ${({ id, describedBy }) => html`<input id=${id} autocomplete="off" spellcheck="false" aria-describedby=${describedBy}
            value=${project} onInput=${(e) => setProject(e.currentTarget.value)} />`}
        <//>
        <div class="row">
          <button type="submit" class="btn btn-primary" id="import-accounts" disabled=${busy || count === 0 || paste.error || badFiles.length > 0}>
            ${busy ? t('accounts.importing') : t('accounts.importButton', { n: num(count) })}
          </button>
        </div>
        ${error && html`<p class="form-error" role="alert" id="import-error" translate=${false}>${error}</p>`}
        <${ImportResult} id="import-result" result=${done?.result} sources=${done?.sources} />
      </form>
    </details>`;
}

function OAuthBox({ open, onAdded }) {
  const [started, setStarted] = useState(null);
  const [callback, setCallback] = useState('');
  const [project, setProject] = useState('');
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const now = useNow(1000, !!started);
  const left = started ? Math.min(OAUTH_TTL_MS, started.at + OAUTH_TTL_MS - Math.max(now, started.at)) / 1000 : 0;

  const [start, starting] = useAction(async () => {
    setError(null);
    setResult(null);
    const answer = await api.post('/admin/api/accounts/oauth/start', {});
    setStarted({ url: answer.auth_url, at: Date.now() });
  });
  const [finish, finishing] = useAction(async (e) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    const body = { callback_url: callback.trim() };
    if (project.trim()) body.project_id = project.trim();
    try {
      const answer = await api.post('/admin/api/accounts/oauth/finish', body, { quiet: true });
      setResult(answer);
      setCallback('');
      setStarted(null);
      onAdded();
    } catch (err) {
      setError(err.message);
    }
  });

  return html`
    <details class="card add-box oauth-box" open=${open}>
      <summary><span class="summary-title">${t('accounts.signIn')}</span></summary>
      <div class="stack">
        <p class="hint">${t('accounts.signInIntro')}</p>
        <ol class="steps">
          <li>
            <p class="step-title">${t('accounts.step1')}</p>
            <div class="row">
              <button type="button" class=${started ? 'btn' : 'btn btn-primary'} id="oauth-start" disabled=${starting} onClick=${start}>
                ${started ? t('accounts.startAgain') : t('accounts.signInButton')}
              </button>
            </div>
            ${started && html`
              <div class="auth-link">
                <a id="oauth-link" class="ext" href=${started.url} target="_blank" rel="noopener noreferrer">
                  ${t('accounts.openSignIn')}<span class="sr-only"> ${t('accounts.newTab')}</span>
                </a>
                <${CopyButton} text=${started.url} label=${t('accounts.copyLink')} />
              </div>
              <p class=${left > 0 ? 'hint' : 'hint warn-text'} id="oauth-expiry">
                ${left > 0 ? t('accounts.linkExpires', { time: clock(left) }) : t('accounts.linkExpired')}
              </p>`}
            <p class="hint">${t('accounts.expiryHint')}</p>
          </li>
          <li>
            <p class="step-title">${t('accounts.step2')}</p>
            <p class="hint">${t('accounts.callbackHint')}</p>
            <form class="stack" onSubmit=${finish}>
              <${Field} id="oauth-callback" label=${t('accounts.callbackLabel')} error=${error}>
                ${({ id, describedBy }) => html`<input id=${id} type="url" inputmode="url" autocomplete="off" spellcheck="false" class="mono"
                  placeholder=${t('accounts.callbackPlaceholder')} aria-describedby=${describedBy} aria-invalid=${error ? 'true' : undefined}
                  value=${callback} onInput=${(e) => setCallback(e.currentTarget.value)} />`}
              <//>
              <${Field} id="oauth-project" label=${t('accounts.projectOptional')} hint=${t('accounts.projectHint')}>
                ${({ id, describedBy }) => html`<input id=${id} autocomplete="off" spellcheck="false" aria-describedby=${describedBy}
                  value=${project} onInput=${(e) => setProject(e.currentTarget.value)} />`}
              <//>
              <div class="row">
                <button type="submit" class="btn btn-primary" id="oauth-finish" disabled=${finishing || !callback.trim()}>
                  ${finishing ? t('accounts.adding') : t('accounts.finishButton')}
                </button>
              </div>
            </form>
          </li>
        </ol>
        <${ImportResult} id="oauth-result" result=${result} />
      </div>
    </details>`;
}

function ProjectDialog({ account, onClose, onSaved }) {
  const [value, setValue] = useState(account.project_id ?? '');
  const [error, setError] = useState(null);
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const updated = await api.patch(`/admin/api/accounts/${seg(account.id)}`, { project_id: value.trim() || null }, { quiet: true });
      onSaved(updated);
    } catch (err) {
      setError(err.message);
    }
  });
  return html`
    <${Dialog} open=${true} title=${t('accounts.projectTitle')} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="submit" form="project-form" class="btn btn-primary" id="save-project" disabled=${busy}>${t('common.save')}</button>`}>
      <form id="project-form" class="stack" onSubmit=${save}>
        <p><span translate=${false}>${account.email}</span></p>
        <${Field} id="account-project" label=${t('accounts.project')} hint=${t('accounts.projectClearHint')} error=${error}>
          ${({ id, describedBy }) => html`<input id=${id} autocomplete="off" spellcheck="false" aria-describedby=${describedBy}
            value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />`}
        <//>
      </form>
    <//>`;
}

/** Saves `data` as a JSON file through a temporary link. */
function download(data, name) {
  const url = URL.createObjectURL(new Blob([`${JSON.stringify(data, null, 2)}\n`], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const today = () => new Date().toISOString().slice(0, 10);

export function Accounts() {
  const [status, setStatus] = useState('');
  const [tests, setTests] = useState({});
  const [busyRows, setBusyRows] = useState({});
  const [openQuota, setOpenQuota] = useState(new Set());
  const [projectOf, setProjectOf] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [exporting, setExporting] = useState(false);

  const { data, error, loading, reload } = useLoad(() => api.get('/admin/api/accounts', { quiet: true }), []);
  const all = data?.accounts ?? [];
  const counts = data?.counts ?? { total: all.length, active: 0, needs_attention: 0, disabled: 0 };
  const shown = status ? all.filter((a) => a.status === status) : all;
  const anyCooling = all.some((a) => (a.cooldowns ?? []).length > 0);
  const now = useNow(1000, anyCooling);

  /** Runs `fn` for one account with its row marked busy for `what`. */
  const onRow = async (id, what, fn) => {
    setBusyRows((b) => ({ ...b, [id]: what }));
    try {
      await fn();
    } catch (err) {
      if (!(err && 'status' in err)) report(err);
    } finally {
      setBusyRows((b) => {
        const next = { ...b };
        delete next[id];
        return next;
      });
    }
  };
  const test = (a) => onRow(a.id, 'test', async () => {
    setTests((r) => ({ ...r, [a.id]: { pending: true } }));
    try {
      const r = await api.post(`/admin/api/accounts/${seg(a.id)}/test`, {});
      setTests((done) => ({ ...done, [a.id]: r }));
    } catch (err) {
      setTests((done) => ({ ...done, [a.id]: undefined }));
      throw err;
    }
    reload({ silent: true });
  });
  const recheck = (a) => onRow(a.id, 'onboard', async () => {
    const updated = await api.post(`/admin/api/accounts/${seg(a.id)}/onboard`, {});
    const state = STATUSES.includes(updated?.status) ? t(`accounts.status.${updated.status}`) : t('accounts.status.other');
    confirmDone(t('accounts.rechecked', { email: updated?.email ?? a.email, status: state }));
    reload({ silent: true });
  });
  const setEnabled = (a, enabled) => onRow(a.id, 'enable', async () => {
    await api.patch(`/admin/api/accounts/${seg(a.id)}`, { enabled });
    confirmDone(t(enabled ? 'accounts.enabledOne' : 'accounts.disabledOne', { email: a.email }));
    reload({ silent: true });
  });
  const toggleQuota = (id) => {
    const next = new Set(openQuota);
    if (next.has(id)) next.delete(id); else next.add(id);
    setOpenQuota(next);
  };
  const [remove, removing] = useAction(async () => {
    await api.del(`/admin/api/accounts/${seg(deleting.id)}`);
    confirmDone(t('accounts.deleted', { email: deleting.email }));
    setDeleting(null);
    reload({ silent: true });
  });
  const [exportPlain, exportingPlain] = useAction(async () => {
    download(await api.get('/admin/api/accounts/export'), `gemgate-accounts-${today()}.json`);
  });
  const [exportSecrets, exportingSecrets] = useAction(async () => {
    try {
      download(await api.get('/admin/api/accounts/export', { params: { secrets: 1 } }), `gemgate-accounts-secrets-${today()}.json`);
    } finally {
      // On a failure too: the banner behind the dialog says why.
      setExporting(false);
    }
  });

  const filterOptions = [
    { value: '', label: t('accounts.filterAll'), count: num(counts.total ?? all.length) },
    ...STATUSES.map((s) => ({ value: s, label: t(`accounts.status.${s}`), count: num(counts[s] ?? 0) })),
  ];
  const empty = data && !all.length;

  return html`
    <section class="page">
      <div class="page-head">
        <div>
          <h1 id="page-title" tabindex="-1">${t('nav.accounts')}</h1>
          <p class="muted">${data ? t('accounts.summary', { total: num(counts.total ?? all.length), active: num(counts.active ?? 0), attention: num(counts.needs_attention ?? 0), disabled: num(counts.disabled ?? 0) }) : ''}</p>
          <p class="hint">${t('accounts.intro')}</p>
        </div>
        <div class="row">
          <button type="button" class="btn" id="export" disabled=${exportingPlain || !all.length} onClick=${exportPlain}>${t('accounts.export')}</button>
          <button type="button" class="btn" id="export-secrets" disabled=${!all.length} onClick=${() => setExporting(true)}>${t('accounts.exportSecrets')}</button>
        </div>
      </div>
      <div class="add-grid">
        <${ImportBox} open=${empty} onAdded=${() => reload({ silent: true })} />
        <${OAuthBox} open=${empty} onAdded=${() => reload({ silent: true })} />
      </div>
      <div class="toolbar toolbar-wrap">
        <${Segmented} label=${t('accounts.filter')} value=${status} options=${filterOptions} onChange=${setStatus} />
        <button type="button" class="btn" id="refresh-accounts" disabled=${loading} onClick=${() => reload()}>${t('common.refresh')}</button>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !shown.length ? html`<${Empty} text=${all.length ? t('accounts.noMatch') : t('accounts.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards accounts-table" aria-busy=${loading ? 'true' : 'false'}>
            <thead><tr>
              <th scope="col">${t('accounts.account')}</th>
              <th scope="col">${t('common.status')}</th>
              <th scope="col">${t('accounts.tier')}</th>
              <th scope="col">${t('accounts.project')}</th>
              <th scope="col">${t('accounts.lastUsed')}</th>
              <th scope="col">${t('keys.enabled')}</th>
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${shown.map((a) => {
                const busy = busyRows[a.id];
                return html`
                <tr key=${a.id} data-id=${a.id} class=${`status-${a.status}`}>
                  <th scope="row" data-label=${t('accounts.account')}>
                    <${Email} email=${a.email} />
                    <span class="sub">${SOURCES.includes(a.source) ? t(`accounts.source.${a.source}`) : ''}</span>
                  </th>
                  <td class="status-col" data-label=${t('common.status')}>
                    <div class="status-cell"><${StatusPill} status=${a.status} /></div>
                    <${Attention} a=${a} />
                    <${Cooldowns} cooldowns=${a.cooldowns} now=${now} />
                    <${TestResult} r=${tests[a.id]} />
                  </td>
                  <td class="tier" data-label=${t('accounts.tier')}><span class="tier-name" translate=${false}>${a.tier_name || a.tier || '–'}</span></td>
                  <td data-label=${t('accounts.project')}>
                    ${a.project_id ? html`<code translate=${false}>${a.project_id}</code>` : html`<span class="muted">${t('accounts.noProject')}</span>`}
                    <button type="button" class="link project-edit" aria-label=${t(a.project_id ? 'accounts.changeProjectOf' : 'accounts.setProjectOf', { email: a.email })}
                      onClick=${() => setProjectOf(a)}>${a.project_id ? t('accounts.changeProject') : t('accounts.setProject')}</button>
                  </td>
                  <td class="last-used" data-label=${t('accounts.lastUsed')}>
                    ${a.last_used_ms ? html`<span class="when">${dateTime(a.last_used_ms)}</span>` : html`<span class="muted">${t('accounts.never')}</span>`}
                    ${a.last_error && html`<span class="reason last-error"><span class="muted">${t('accounts.lastError')}</span>: <span class="error-text" translate=${false}>${a.last_error}</span></span>`}
                  </td>
                  <td data-label=${t('keys.enabled')}>
                    <${Switch} checked=${a.enabled} label=${t('accounts.enableOne', { email: a.email })} disabled=${!!busy} onChange=${(v) => setEnabled(a, v)} />
                  </td>
                  <td class="actions">
                    <button type="button" class="btn btn-small" disabled=${!!busy} onClick=${() => test(a)}>${busy === 'test' ? t('accounts.testing') : t('accounts.test')}</button>
                    <button type="button" class="btn btn-small" aria-expanded=${openQuota.has(a.id) ? 'true' : 'false'} onClick=${() => toggleQuota(a.id)}>${t('accounts.quota')}</button>
                    <button type="button" class="btn btn-small" disabled=${!!busy} onClick=${() => recheck(a)}>${busy === 'onboard' ? t('accounts.rechecking') : t('accounts.recheck')}</button>
                    <button type="button" class="btn btn-small btn-danger-ghost" disabled=${!!busy} onClick=${() => setDeleting(a)}>${t('common.delete')}</button>
                  </td>
                </tr>
                ${openQuota.has(a.id) && html`
                  <tr key=${`${a.id}-quota`} class="detail-row">
                    <td colspan="7"><${Quota} account=${a} /></td>
                  </tr>`}`;
              })}
            </tbody>
          </table>
        </div>`}
      ${projectOf && html`<${ProjectDialog} account=${projectOf} onClose=${() => setProjectOf(null)}
        onSaved=${(updated) => { setProjectOf(null); confirmDone(t('accounts.projectSaved', { email: updated?.email ?? projectOf.email })); reload({ silent: true }); }} />`}
      <${Confirm} open=${!!deleting} title=${t('accounts.deleteTitle')} text=${t('accounts.deleteText', { email: deleting?.email ?? '' })}
        confirmLabel=${t('common.delete')} busy=${removing} onConfirm=${remove} onClose=${() => setDeleting(null)} />
      <${Confirm} open=${exporting} title=${t('accounts.exportSecretsTitle')} text=${t('accounts.exportSecretsText')}
        confirmLabel=${t('accounts.exportSecretsConfirm')} busy=${exportingSecrets} onConfirm=${exportSecrets} onClose=${() => setExporting(false)} />
    </section>`;
}
