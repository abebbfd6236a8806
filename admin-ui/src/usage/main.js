// The self-service usage page (/usage): a user pastes their key and sees
// what GET /v1/usage reports. The key stays in this page's memory only.
// Hooks the tests use: #key, #check, #quota, #used, #remaining, #models,
// #lang, #title and #error.
import '../styles/base.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, limit, num } from '../lib/format.js';
import { html } from '../lib/html.js';
import { t, useLang } from '../lib/i18n.js';
import { Bar } from '../lib/ui.js';
import { LangSwitch, ThemeSwitch } from '../admin/header.js';

// eslint-disable-next-line no-undef
if (__BUILD_MARKER__) document.documentElement.dataset.build = __BUILD_MARKER__;

function Usage() {
  useLang();
  const [key, setKey] = useState('');
  const [data, setData] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    document.title = `${t('usage.title')} · gemgate`;
  });

  const check = async (e) => {
    e.preventDefault();
    const k = key.trim();
    if (!k) {
      setError(t('usage.empty'));
      return;
    }
    setBusy(true);
    try {
      const answer = await api.get('/v1/usage', { headers: { authorization: `Bearer ${k}` }, quiet: true });
      setData(answer);
      setError('');
    } catch (err) {
      setData(null);
      const what = err.status === 401 || err.status === 403 ? t('usage.invalid') : t('usage.failed');
      setError(`${what}: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };

  const limits = data?.limits ?? {};
  const limitParts = [['RPM', limits.rpm], ['RPD', limits.rpd], ['TPM', limits.tpm]].filter(([, v]) => v !== null && v !== undefined);
  return html`
    <div class="usage-page">
      <header class="topbar topbar-simple">
        <div class="topbar-row">
          <span class="brand" translate=${false}><span class="brand-mark" aria-hidden="true"></span>gemgate</span>
          <div class="topbar-tools"><${LangSwitch} /><${ThemeSwitch} /></div>
        </div>
      </header>
      <main class="main main-narrow" id="main">
        <h1 id="title">${t('usage.title')}</h1>
        <p class="muted">${t('usage.intro')}</p>
        <form class="card usage-form" onSubmit=${check} autocomplete="off">
          <label for="key">${t('usage.keyLabel')}</label>
          <div class="usage-row">
            <input id="key" name="key" type="password" placeholder="sk-…" spellcheck="false" autocomplete="off"
              aria-describedby="key-hint${error ? ' error' : ''}" value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
            <button id="check" type="submit" class="btn btn-primary" disabled=${busy}>${t('usage.check')}</button>
          </div>
          <p class="hint" id="key-hint">${t('usage.hint')}</p>
        </form>
        <p id="error" class="form-error" role="alert" hidden=${!error}>${error}</p>
        ${data && html`
          <section id="result" aria-labelledby="result-title">
            <h2 id="result-title" class="sr-only">${t('usage.result')}</h2>
            ${data.user && html`<p class="muted">${t('usage.for')} <strong translate=${false}>${data.user.name}</strong></p>`}
            <dl class="kpis">
              <div class="kpi"><dt class="kpi-label">${t('usage.quota')}</dt><dd class="kpi-value" id="quota">${limit(data.quota)}</dd></div>
              <div class="kpi"><dt class="kpi-label">${t('usage.used')}</dt><dd class="kpi-value" id="used">${num(data.used ?? 0)}</dd></div>
              <div class="kpi"><dt class="kpi-label">${t('usage.remaining')}</dt><dd class="kpi-value" id="remaining">${limit(data.remaining)}</dd></div>
              <div class="kpi"><dt class="kpi-label">${t('usage.limits')}</dt>
                <dd class="kpi-value kpi-small" id="limits">${limitParts.length ? limitParts.map(([k, v]) => `${k} ${num(v)}`).join(' · ') : t('usage.noLimits')}</dd></div>
            </dl>
            ${data.quota !== null && data.quota !== undefined && html`
              <${Bar} value=${(data.used ?? 0) + (data.reserved ?? 0)} max=${data.quota} tone=${data.remaining === 0 ? 'danger' : 'accent'}
                label=${t('usage.usedShare', { used: num(data.used ?? 0), quota: num(data.quota) })} />`}
            ${data.expires_at && html`<p class="muted">${t('usage.expires', { time: dateTime(data.expires_at) })}</p>`}
            <h2>${t('usage.byModel')}</h2>
            <div class="table-wrap">
              <table id="models" class="table">
                <thead><tr>
                  <th scope="col">${t('common.model')}</th>
                  <th scope="col" class="num">${t('dash.requests')}</th>
                  <th scope="col" class="num">${t('dash.credits')}</th>
                  <th scope="col" class="num">${t('dash.tokens')}</th>
                </tr></thead>
                <tbody>
                  ${(data.models ?? []).map((m) => html`
                    <tr key=${m.model}>
                      <td translate=${false}>${m.model}</td>
                      <td class="num">${num(m.requests)}</td>
                      <td class="num">${num(m.credits)}</td>
                      <td class="num">${num((m.prompt_tokens ?? 0) + (m.completion_tokens ?? 0) + (m.reasoning_tokens ?? 0))}</td>
                    </tr>`)}
                </tbody>
              </table>
              ${!(data.models ?? []).length && html`<p class="empty">${t('usage.noModels')}</p>`}
            </div>
          </section>`}
      </main>
    </div>`;
}

render(html`<${Usage} />`, document.getElementById('app'));
