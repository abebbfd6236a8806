// The dashboard: requests, success rate, latency, tokens and credits over
// a range, filterable by model, key and user; the split by each; the keys
// failing most; the pool's capacity per model; the queue of each model with
// a concurrency limit. Refreshes every 30 s while the tab is visible.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { Chart } from '../../lib/chart.js';
import { clock, dateTime, ms, num, pct, short, toMs } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { lang, t } from '../../lib/i18n.js';
import { useStore } from '../../lib/store.js';
import { Bar, Empty, FilterSelect, LoadError, Loading, Segmented, StackBar, useLoad, useNow, useOptions, useVisibleInterval } from '../../lib/ui.js';

const RANGES = ['1h', '24h', '7d', '30d'];
const REFRESH_MS = 30_000;

function Kpi({ label, value, sub }) {
  return html`
    <div class="kpi">
      <p class="kpi-label">${label}</p>
      <p class="kpi-value">${value}</p>
      ${sub && html`<p class="kpi-sub">${sub}</p>`}
    </div>`;
}

function Capacity({ rows }) {
  const now = useNow(1000, rows.some((r) => r.next_back_at));
  if (!rows.length) return html`<${Empty} text=${t('dash.noModels')} />`;
  return html`
    <div class="table-wrap">
      <table class="table table-cards">
        <thead><tr>
          <th scope="col">${t('common.model')}</th>
          <th scope="col" class="num">${t('keys.healthy')}</th>
          <th scope="col" class="num">${t('keys.cooling')}</th>
          <th scope="col" class="num">${t('keys.disabled')}</th>
          <th scope="col" class="bar-col">${t('dash.share')}</th>
          <th scope="col">${t('dash.nextBack')}</th>
        </tr></thead>
        <tbody>
          ${rows.map((r) => {
            const back = toMs(r.next_back_at);
            return html`
              <tr key=${r.model}>
                <th scope="row" data-label=${t('common.model')}><span translate=${false}>${r.model}</span></th>
                <td class="num" data-label=${t('keys.healthy')}>${num(r.healthy)}</td>
                <td class="num" data-label=${t('keys.cooling')}>${num(r.cooling)}</td>
                <td class="num" data-label=${t('keys.disabled')}>${num(r.disabled)}</td>
                <td class="bar-col" data-label=${t('dash.share')}>
                  <${StackBar} label=${t('dash.capacityOf', { model: r.model, healthy: r.healthy, total: r.healthy + r.cooling + r.disabled })}
                    parts=${[{ value: r.healthy, tone: 'ok' }, { value: r.cooling, tone: 'warn' }, { value: r.disabled, tone: 'muted' }]} />
                </td>
                <td data-label=${t('dash.nextBack')}>${back && back > now ? t('dash.inTime', { time: clock((back - now) / 1000) }) : '–'}</td>
              </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
}

function Breakdown({ title, head, rows }) {
  return html`
    <section class="card">
      <h2>${title}</h2>
      ${rows.length ? html`
        <div class="table-wrap">
          <table class="table table-cards table-compact">
            <thead><tr>${head.map((h, i) => html`<th scope="col" key=${i} class=${h.cls}>${h.label}</th>`)}</tr></thead>
            <tbody>
              ${rows.map(({ name, share, cells }, i) => html`
                <tr key=${i}>
                  <th scope="row" data-label=${head[0].label}>${name}<${Bar} value=${share[0]} max=${share[1]} /></th>
                  ${cells.map((c, j) => html`<td key=${j} class="num" data-label=${head[j + 1].label}>${c}</td>`)}
                </tr>`)}
            </tbody>
          </table>
        </div>` : html`<${Empty} text=${t('chart.empty')} />`}
    </section>`;
}

/**
 * The queue of each concurrency-limited model (GET /admin/api/models/queues).
 * An answer that fails or lists nothing reads as "no limited models": the
 * card never shows an error of its own.
 */
function Queues({ answer, loading }) {
  const rows = Array.isArray(answer?.models) ? answer.models : [];
  if (loading) {
    return html`<section class="card queues-card" aria-labelledby="queues-title"><h2 id="queues-title">${t('dash.queues')}</h2><${Loading} /></section>`;
  }
  return html`
    <section class="card queues-card" aria-labelledby="queues-title">
      <h2 id="queues-title">${t('dash.queues')}</h2>
      ${!rows.length ? html`<${Empty} text=${t('dash.queuesNone')} />` : html`
        <p class="hint">${t('dash.queuesHelp')}</p>
        <div class="table-wrap">
          <table class="table table-cards queues-table">
            <thead><tr>
              <th scope="col">${t('common.model')}</th>
              <th scope="col" class="num">${t('dash.inFlight')}</th>
              <th scope="col" class="num">${t('dash.queued')}</th>
              <th scope="col" class="num">${t('dash.waitP50')}</th>
              <th scope="col" class="num">${t('dash.waitP95')}</th>
              <th scope="col" class="num">${t('dash.waitMax')}</th>
              <th scope="col" class="num">${t('dash.rejected')}</th>
            </tr></thead>
            <tbody>
              ${rows.map((q) => html`
                <tr key=${q.model}>
                  <th scope="row" data-label=${t('common.model')}>
                    <span translate=${false}>${q.model}</span>
                    <span class="sub">${t('dash.queueLimits', { max: num(q.max_concurrency), wait: ms(q.max_wait_ms ?? 0) })}</span>
                  </th>
                  <td class="num" data-label=${t('dash.inFlight')}>
                    ${num(q.in_flight)} / ${num(q.max_concurrency)}
                    <${Bar} value=${q.in_flight ?? 0} max=${q.max_concurrency ?? 0} tone=${(q.in_flight ?? 0) >= (q.max_concurrency ?? 1) ? 'danger' : 'accent'} />
                  </td>
                  <td class="num" data-label=${t('dash.queued')}>${num(q.queued)}</td>
                  <td class="num" data-label=${t('dash.waitP50')}>${ms(q.wait_p50_ms)}</td>
                  <td class="num" data-label=${t('dash.waitP95')}>${ms(q.wait_p95_ms)}</td>
                  <td class="num" data-label=${t('dash.waitMax')}>${ms(q.wait_max_ms)}</td>
                  <td class="num" data-label=${t('dash.rejected')}>${num(q.rejected)}</td>
                </tr>`)}
            </tbody>
          </table>
        </div>`}
    </section>`;
}

export function Dashboard() {
  const language = useStore(lang);
  const [range, setRange] = useState('24h');
  const [model, setModel] = useState('');
  const [key, setKey] = useState('');
  const [user, setUser] = useState('');
  const { data, error, loading, reload } = useLoad(
    () => api.get('/admin/api/stats', { params: { range, model, key, user }, quiet: true }),
    [range, model, key, user],
  );
  const [updated, setUpdated] = useState(null);
  useEffect(() => {
    if (data) setUpdated(Date.now());
  }, [data]);
  const queues = useLoad(() => api.get('/admin/api/models/queues', { quiet: true }), []);
  useVisibleInterval(() => {
    reload({ silent: true });
    queues.reload({ silent: true });
  }, REFRESH_MS);

  const models = useOptions(data?.by_model, (m) => ({ value: m.model, label: m.model }));
  const keys = useOptions(data?.by_key, (k) => ({ value: k.key_id, label: k.masked ?? k.key_id }));
  const users = useOptions(data?.by_user, (u) => ({ value: u.user_id, label: u.name ?? u.user_id }));

  const charts = useMemo(() => {
    if (!data) return null;
    const rows = data.series ?? [];
    const x = rows.map((r) => Math.round((toMs(r.t) ?? 0) / 1000));
    const col = (f) => rows.map((r) => (r[f] === undefined ? null : r[f]));
    return {
      x,
      requests: [
        { label: t('dash.requests'), values: col('requests'), color: '--c1', kind: 'bars', fmt: num },
        { label: t('dash.errors'), values: col('errors'), color: '--c-danger', kind: 'bars', fmt: num },
      ],
      latency: [
        { label: 'p50', values: col('p50_ms'), color: '--c1', fmt: ms },
        { label: 'p95', values: col('p95_ms'), color: '--c3', fmt: ms },
      ],
      tokens: [
        { label: t('dash.promptTokens'), values: col('prompt_tokens'), color: '--c1', fmt: num },
        { label: t('dash.completionTokens'), values: col('completion_tokens'), color: '--c2', fmt: num },
        { label: t('dash.reasoningTokens'), values: col('reasoning_tokens'), color: '--c4', fmt: num },
      ],
      credits: [{ label: t('dash.credits'), values: col('credits'), color: '--c2', kind: 'bars', fmt: num }],
    };
  }, [data, language]);

  const totals = data?.totals ?? {};
  const tokens = (totals.prompt_tokens ?? 0) + (totals.completion_tokens ?? 0) + (totals.reasoning_tokens ?? 0);
  const successRate = totals.success_rate ?? (totals.requests ? 1 - (totals.errors ?? 0) / totals.requests : null);
  const maxModel = Math.max(1, ...(data?.by_model ?? []).map((m) => m.requests ?? 0));
  const maxKey = Math.max(1, ...(data?.by_key ?? []).map((k) => k.requests ?? 0));
  const maxUser = Math.max(1, ...(data?.by_user ?? []).map((u) => u.requests ?? 0));

  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.dashboard')}</h1>
        <div class="toolbar">
          <${Segmented} label=${t('dash.range')} value=${range} onChange=${setRange}
            options=${RANGES.map((r) => ({ value: r, label: t(`range.${r}`) }))} />
          <button type="button" class="btn" onClick=${() => { reload(); queues.reload({ silent: true }); }} disabled=${loading}>${t('common.refresh')}</button>
        </div>
      </div>
      <div class="filters">
        <${FilterSelect} id="f-model" label=${t('common.model')} value=${model} options=${models} onChange=${setModel} />
        <${FilterSelect} id="f-key" label=${t('common.key')} value=${key} options=${keys} onChange=${setKey} />
        <${FilterSelect} id="f-user" label=${t('common.user')} value=${user} options=${users} onChange=${setUser} />
        <p class="muted small updated" aria-live="off">
          ${updated ? t('dash.updated', { time: dateTime(updated).slice(11) }) : ''}
        </p>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : html`
        ${error && html`<p class="form-error" role="alert"><span translate=${false}>${error.message}</span></p>`}
        <div class="kpis">
          <${Kpi} label=${t('dash.requests')} value=${num(totals.requests)} sub=${t('dash.errorsCount', { n: num(totals.errors ?? 0) })} />
          <${Kpi} label=${t('dash.successRate')} value=${pct(successRate)} />
          <${Kpi} label=${t('dash.p50')} value=${ms(totals.p50_ms)} />
          <${Kpi} label=${t('dash.p95')} value=${ms(totals.p95_ms)} />
          <${Kpi} label=${t('dash.tokens')} value=${short(tokens)} sub=${t('dash.tokensSplit', { p: short(totals.prompt_tokens ?? 0), c: short(totals.completion_tokens ?? 0), r: short(totals.reasoning_tokens ?? 0) })} />
          <${Kpi} label=${t('dash.credits')} value=${num(totals.credits)} />
        </div>
        <div class="charts">
          <${Chart} title=${t('dash.chartRequests')} x=${charts.x} series=${charts.requests} />
          <${Chart} title=${t('dash.chartLatency')} x=${charts.x} series=${charts.latency} yFmt=${(v) => short(v)} />
          <${Chart} title=${t('dash.chartTokens')} x=${charts.x} series=${charts.tokens} />
          <${Chart} title=${t('dash.chartCredits')} x=${charts.x} series=${charts.credits} />
        </div>
        <div class="grid-2">
          <${Breakdown} title=${t('dash.byModel')}
            head=${[{ label: t('common.model') }, { label: t('dash.requests'), cls: 'num' }, { label: t('dash.errors'), cls: 'num' }, { label: t('dash.credits'), cls: 'num' }]}
            rows=${(data.by_model ?? []).map((m) => ({ name: html`<span translate=${false}>${m.model}</span>`, share: [m.requests, maxModel], cells: [num(m.requests), num(m.errors), num(m.credits)] }))} />
          <${Breakdown} title=${t('dash.byKey')}
            head=${[{ label: t('common.key') }, { label: t('dash.requests'), cls: 'num' }, { label: t('dash.errors'), cls: 'num' }]}
            rows=${(data.by_key ?? []).map((k) => ({ name: html`<code translate=${false}>${k.masked ?? k.key_id}</code>`, share: [k.requests, maxKey], cells: [num(k.requests), num(k.errors)] }))} />
        </div>
        <div class="grid-2">
          <${Breakdown} title=${t('dash.byUser')}
            head=${[{ label: t('common.user') }, { label: t('dash.requests'), cls: 'num' }, { label: t('dash.credits'), cls: 'num' }]}
            rows=${(data.by_user ?? []).map((u) => ({ name: html`<span translate=${false}>${u.name ?? u.user_id}</span>`, share: [u.requests, maxUser], cells: [num(u.requests), num(u.credits)] }))} />
          <section class="card">
            <h2>${t('dash.topFailing')}</h2>
            ${(data.top_failing_keys ?? []).length ? html`
              <div class="table-wrap">
                <table class="table table-cards">
                  <thead><tr><th scope="col">${t('common.key')}</th><th scope="col" class="num">${t('dash.failures')}</th><th scope="col">${t('keys.lastError')}</th></tr></thead>
                  <tbody>
                    ${data.top_failing_keys.map((k) => html`
                      <tr key=${k.key_id}>
                        <th scope="row" data-label=${t('common.key')}><code translate=${false}>${k.masked ?? k.key_id}</code></th>
                        <td class="num" data-label=${t('dash.failures')}>${num(k.failures)}</td>
                        <td class="error-text" data-label=${t('keys.lastError')}><span translate=${false}>${k.last_error ?? '–'}</span></td>
                      </tr>`)}
                  </tbody>
                </table>
              </div>` : html`<${Empty} text=${t('dash.noFailures')} />`}
          </section>
        </div>
        <${Queues} answer=${queues.error ? null : queues.data} loading=${queues.loading && !queues.data && !queues.error} />
        <section class="card">
          <h2>${t('dash.capacity')}</h2>
          <${Capacity} rows=${data.capacity ?? []} />
          ${data.accounts?.total ? html`
            <p class="muted" data-accounts>${t('dash.accounts', {
              total: num(data.accounts.total), active: num(data.accounts.active),
              attention: num(data.accounts.needs_attention), disabled: num(data.accounts.disabled),
            })}</p>` : ''}
        </section>
        `}
    </section>`;
}
