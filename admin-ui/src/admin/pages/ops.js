// Operations: the gateway's health per model (GET /health), the upstream
// failures grouped by key or account and model with Google's own message
// (GET /admin/api/errors, refreshed every 30 s while the tab is visible),
// the latest failures one by one, and the maintenance jobs with their last
// runs (GET /admin/api/jobs).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { ago, dateTime, ms, num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Empty, FilterSelect, LoadError, Loading, Segmented, useLoad, useNow, useOptions, useVisibleInterval } from '../../lib/ui.js';

const REFRESH_MS = 30_000;
/** The error view's windows, in minutes. */
const WINDOWS = [15, 60, 1440, 10080];
const CLASSES = ['rate_limited', 'key_invalid', 'server_error', 'network', 'timeout'];
const CLASS_TONE = { rate_limited: 'pill-warn', key_invalid: 'pill-danger', server_error: 'pill-danger', network: 'pill-muted', timeout: 'pill-warn' };
const JOB_NAMES = ['import', 'probe', 'archive', 'tokens', 'retention', 'reseal', 'files'];
const COUNT_NAMES = ['changed', 'due', 'probed', 'recovered', 'still_failing', 'archived', 'refreshed', 'fresh', 'refused', 'failed',
  'log_rows', 'rollups', 'minute_rollups', 'health_rows', 'responses', 'resealed', 'remaining', 'pins', 'upload_sessions'];
const HEALTH_TONE = { ok: 'pill-ok', degraded: 'pill-warn', down: 'pill-danger' };

/** A failure class as a coloured badge (an unknown one as it is). */
function ClassBadge({ value }) {
  if (!CLASSES.includes(value)) return html`<span class="pill pill-muted" translate=${false}>${value ?? '–'}</span>`;
  return html`<span class=${`pill ${CLASS_TONE[value]}`}>${t(`ops.class.${value}`)}</span>`;
}

/** An account's e-mail may wrap; a masked key stays on one line. */
const nameClass = (name) => (String(name ?? '').includes('@') ? 'ops-name ops-email' : 'ops-name');

/** GET /health answers 503 when down, with the same body: read it either way. */
async function loadHealth() {
  const res = await fetch('/health', { headers: { accept: 'application/json' }, cache: 'no-store' });
  const body = await res.json().catch(() => null);
  if (!body || typeof body.status !== 'string') throw new Error(t('error.status', { status: res.status }));
  return body;
}

function Health({ state }) {
  const { data, error } = state;
  return html`
    <section class="card ops-health" aria-labelledby="health-title">
      <div class="ops-card-head">
        <h2 id="health-title">${t('ops.health')}</h2>
        ${data && html`<span class=${`pill ${HEALTH_TONE[data.status] ?? 'pill-muted'}`} id="health-status">
          ${HEALTH_TONE[data.status] ? t(`ops.health.${data.status}`) : data.status}</span>`}
      </div>
      ${error && !data ? html`<p class="form-error" role="alert"><span translate=${false}>${error.message}</span></p>`
        : !data ? html`<${Loading} />`
        : html`
        <p class="hint">${t('ops.healthIntro')}</p>
        <p class="muted small">
          ${t('ops.healthKeys', { healthy: num(data.keys?.healthy), total: num(data.keys?.total) })}
          ${data.accounts?.total ? html` · ${t('ops.healthAccounts', { active: num(data.accounts.active), total: num(data.accounts.total) })}` : ''}
        </p>
        ${(data.models ?? []).length ? html`
          <ul class="health-models">
            ${data.models.map((m) => html`
              <li key=${m.model} class=${m.total > 0 ? '' : 'health-none'}>
                <code translate=${false}>${m.model}</code>
                <span class="small">${t('ops.healthModel', { keys: num(m.keys), accounts: num(m.accounts), total: num(m.total) })}</span>
              </li>`)}
          </ul>` : html`<p class="muted">${t('ops.healthNoModels')}</p>`}`}
    </section>`;
}

function Errors() {
  const [minutes, setMinutes] = useState(60);
  const [upstream, setUpstream] = useState('');
  const [model, setModel] = useState('');
  const [cls, setCls] = useState('');
  const { data, error, loading, reload } = useLoad(
    () => api.get('/admin/api/errors', { params: { minutes, upstream, model, class: cls }, quiet: true }),
    [minutes, upstream, model, cls],
  );
  const [updated, setUpdated] = useState(null);
  useEffect(() => {
    if (data) setUpdated(Date.now());
  }, [data]);
  useVisibleInterval(() => reload({ silent: true }), REFRESH_MS);
  const now = useNow(REFRESH_MS);

  const groups = data?.groups ?? [];
  const events = data?.events ?? [];
  const upstreams = useOptions(groups, (g) => ({ value: g.upstream_id, label: g.name ?? g.upstream_id }));
  const models = useOptions(groups, (g) => ({ value: g.model, label: g.model }));
  const names = Object.fromEntries(upstreams.map((o) => [o.value, o.label]));

  return html`
    <section class="card ops-errors" aria-labelledby="errors-title">
      <div class="ops-card-head">
        <h2 id="errors-title">${t('ops.errors')}</h2>
        <${Segmented} small label=${t('ops.window')} value=${minutes} onChange=${setMinutes}
          options=${WINDOWS.map((w) => ({ value: w, label: t(`ops.window.${w}`) }))} />
      </div>
      <p class="hint">${t('ops.errorsIntro')}</p>
      <div class="filters">
        <${FilterSelect} id="f-upstream" label=${t('ops.upstream')} value=${upstream} options=${upstreams} onChange=${setUpstream} />
        <${FilterSelect} id="f-model" label=${t('common.model')} value=${model} options=${models} onChange=${setModel} />
        <${FilterSelect} id="f-class" label=${t('ops.class')} value=${cls} data=${false}
          options=${CLASSES.map((c) => ({ value: c, label: t(`ops.class.${c}`) }))} onChange=${setCls} />
        <button type="button" class="btn ops-refresh" id="refresh-errors" onClick=${() => reload()} disabled=${loading}>${t('common.refresh')}</button>
        <p class="muted small updated" aria-live="off">${updated ? t('dash.updated', { time: dateTime(updated).slice(11) }) : ''}</p>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : html`
        ${error && html`<p class="form-error" role="alert"><span translate=${false}>${error.message}</span></p>`}
        ${!groups.length ? html`<${Empty} text=${t('ops.noErrors')} />` : html`
          <div class="table-wrap" tabindex="0" role="region" aria-labelledby="errors-title">
            <table class="table table-cards errors-table">
              <thead><tr>
                <th scope="col">${t('ops.upstream')}</th>
                <th scope="col">${t('common.model')}</th>
                <th scope="col">${t('ops.class')}</th>
                <th scope="col" class="num">${t('common.status')}</th>
                <th scope="col">${t('ops.message')}</th>
                <th scope="col" class="num">${t('ops.failures')}</th>
                <th scope="col" class="num">${t('ops.requests')}</th>
                <th scope="col">${t('ops.lastSeen')}</th>
                <th scope="col">${t('ops.coolsUntil')}</th>
              </tr></thead>
              <tbody>
                ${groups.map((g) => html`
                  <tr key=${`${g.upstream_id}|${g.model}|${g.class}`} data-upstream=${g.upstream_id}>
                    <th scope="row" data-label=${t('ops.upstream')}>
                      <span class="pill pill-muted ops-kind">${t(g.kind === 'account' ? 'ops.kind.account' : 'ops.kind.key')}</span>
                      ${' '}<code translate=${false} class=${nameClass(g.name)}>${g.name ?? g.upstream_id}</code>
                      ${g.label && html`<span class="sub" translate=${false}>${g.label}</span>`}
                      ${g.disabled && html`<span class="pill pill-danger">${t('keys.disabled')}</span>`}
                    </th>
                    <td data-label=${t('common.model')}><span translate=${false}>${g.model ?? '–'}</span></td>
                    <td data-label=${t('ops.class')}><${ClassBadge} value=${g.class} /></td>
                    <td class="num" data-label=${t('common.status')}>${g.status ?? '–'}</td>
                    <td class="ops-message" data-label=${t('ops.message')}>${g.message ? html`<span translate=${false}>${g.message}</span>` : '–'}</td>
                    <td class="num" data-label=${t('ops.failures')}>${num(g.failures)}</td>
                    <td class="num" data-label=${t('ops.requests')}>${num(g.requests)}</td>
                    <td class="when" data-label=${t('ops.lastSeen')}><span title=${dateTime(g.last_at)}>${ago(g.last_at, now)}</span></td>
                    <td data-label=${t('ops.coolsUntil')}>${g.cooldown_until > now ? dateTime(g.cooldown_until) : '—'}</td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}
        <h3 class="ops-subtitle" id="events-title">${t('ops.events')}</h3>
        ${!events.length ? html`<${Empty} text=${t('ops.noEvents')} />` : html`
          <div class="table-wrap" tabindex="0" role="region" aria-labelledby="events-title">
            <table class="table table-cards events-table">
              <thead><tr>
                <th scope="col">${t('logs.time')}</th>
                <th scope="col">${t('ops.requestId')}</th>
                <th scope="col">${t('ops.upstream')}</th>
                <th scope="col">${t('common.model')}</th>
                <th scope="col">${t('ops.class')}</th>
                <th scope="col">${t('ops.message')}</th>
              </tr></thead>
              <tbody>
                ${events.map((e, i) => html`
                  <tr key=${`${e.ts}-${e.request_id}-${i}`}>
                    <th scope="row" data-label=${t('logs.time')}>${dateTime(e.ts)}</th>
                    <td class="req-id" data-label=${t('ops.requestId')}><code translate=${false}>${e.request_id ?? '–'}</code></td>
                    <td data-label=${t('ops.upstream')}><code translate=${false} class=${nameClass(names[e.upstream_id])}>${names[e.upstream_id] ?? e.upstream_id}</code></td>
                    <td data-label=${t('common.model')}><span translate=${false}>${e.model ?? '–'}</span></td>
                    <td data-label=${t('ops.class')}><${ClassBadge} value=${e.class} />${e.status ? html` <span class="muted small">${e.status}</span>` : ''}</td>
                    <td class="ops-message" data-label=${t('ops.message')}>${e.message ? html`<span translate=${false}>${e.message}</span>` : '–'}</td>
                  </tr>`)}
              </tbody>
            </table>
          </div>`}`}
    </section>`;
}

/** A run's counts as "name: n" chips, the names translated where known. */
function Counts({ counts }) {
  const entries = Object.entries(counts ?? {});
  if (!entries.length) return null;
  return html`
    <ul class="chips">
      ${entries.map(([name, n]) => html`
        <li key=${name} class="chip">
          ${COUNT_NAMES.includes(name) ? t(`ops.count.${name}`) : html`<span translate=${false}>${name}</span>`}: ${num(n)}
        </li>`)}
    </ul>`;
}

function RunLine({ run, now }) {
  return html`
    <span class="status-cell">
      <span class=${`pill ${run.ok ? 'pill-ok' : 'pill-danger'}`}>${t(run.ok ? 'ops.ok' : 'ops.failed')}</span>
      <span title=${dateTime(run.started_at)}>${ago(run.started_at, now)}</span>
      <span class="muted small">${ms(run.duration_ms)}</span>
    </span>`;
}

function Job({ job, now }) {
  const known = JOB_NAMES.includes(job.name);
  const last = job.last;
  const older = (job.runs ?? []).slice(last ? 1 : 0);
  return html`
    <article class="card job-card" data-job=${job.name}>
      <h3>${known ? t(`ops.job.${job.name}`) : html`<span translate=${false}>${job.name}</span>`}</h3>
      ${known && html`<p class="hint">${t(`ops.job.${job.name}.help`)}</p>`}
      ${!last ? html`<p class="muted job-never">${t('ops.neverRan')}</p>` : html`
        <div class="job-last">
          <span class="muted small">${t('ops.lastRun')}</span>
          <${RunLine} run=${last} now=${now} />
          <${Counts} counts=${last.counts} />
          ${last.error && html`<pre class="error-block" translate=${false}>${last.error}</pre>`}
        </div>`}
      ${older.length > 0 && html`
        <details class="job-runs">
          <summary>${t('ops.earlierRuns', { n: older.length })}</summary>
          <ol>
            ${older.map((r, i) => html`
              <li key=${`${r.started_at}-${i}`}>
                <${RunLine} run=${r} now=${now} />
                <${Counts} counts=${r.counts} />
                ${r.error && html`<span class="error-text small" translate=${false}>${r.error}</span>`}
              </li>`)}
          </ol>
        </details>`}
    </article>`;
}

function Jobs() {
  const { data, error, reload } = useLoad(() => api.get('/admin/api/jobs', { quiet: true }), []);
  useVisibleInterval(() => reload({ silent: true }), REFRESH_MS);
  const now = useNow(REFRESH_MS);
  const jobs = data?.jobs ?? [];
  return html`
    <section class="ops-jobs" aria-labelledby="jobs-title">
      <div class="ops-card-head">
        <h2 id="jobs-title">${t('ops.jobs')}</h2>
        ${jobs[0]?.schedule && html`<span class="muted small">${t('ops.schedule')} <code translate=${false}>${jobs[0].schedule}</code></span>`}
      </div>
      <p class="hint">${t('ops.jobsIntro')}</p>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !jobs.length ? html`<${Empty} text=${t('ops.noJobs')} />`
        : html`<div class="jobs-grid">${jobs.map((j) => html`<${Job} key=${j.name} job=${j} now=${now} />`)}</div>`}
    </section>`;
}

export function Ops() {
  const health = useLoad(loadHealth, []);
  useVisibleInterval(() => health.reload({ silent: true }), REFRESH_MS);
  return html`
    <section class="page ops-page">
      <div class="page-head">
        <div>
          <h1 id="page-title" tabindex="-1">${t('nav.ops')}</h1>
          <p class="hint">${t('ops.intro')}</p>
        </div>
      </div>
      <${Health} state=${health} />
      <${Errors} />
      <${Jobs} />
    </section>`;
}
