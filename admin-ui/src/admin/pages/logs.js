// The request log: filter by time, status class, model, key, user and
// stream, search the error messages, open a row, load more with the
// cursor, and export every filtered row as CSV.
import { useEffect, useState } from 'preact/hooks';
import { api, withQuery } from '../../lib/api.js';
import { dateTime, localInput, ms, num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Dialog, Empty, LoadError, Loading, useAction } from '../../lib/ui.js';

const PAGE = 100;
const PRESETS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

function initialFilters() {
  return { preset: '24h', from: '', to: '', status: '', model: '', key: '', user: '', stream: '', q: '' };
}

/** The query the API and the CSV link get. */
function queryOf(f) {
  let from = null;
  let to = null;
  if (f.preset === 'custom') {
    from = f.from ? new Date(f.from).toISOString() : null;
    to = f.to ? new Date(f.to).toISOString() : null;
  } else if (PRESETS[f.preset]) {
    from = new Date(Date.now() - PRESETS[f.preset]).toISOString();
  }
  return { from, to, status: f.status, model: f.model.trim(), key: f.key.trim(), user: f.user.trim(), stream: f.stream, q: f.q.trim() };
}

function statusTone(s) {
  if (!s) return 'pill-muted';
  if (s < 300) return 'pill-ok';
  if (s < 500) return 'pill-warn';
  return 'pill-danger';
}

function Detail({ row, onClose }) {
  const fields = [
    ['logs.time', dateTime(row.ts)],
    ['common.status', row.status ?? '–'],
    ['common.model', row.model ?? '–'],
    ['common.user', row.user_name ? `${row.user_name} (${row.user_id})` : row.user_id ?? '–'],
    ['common.key', row.key_masked ?? row.key_id ?? '–'],
    ['logs.latency', ms(row.latency_ms)],
    ['logs.stream', row.stream ? t('common.yes') : t('common.no')],
    ['dash.promptTokens', num(row.prompt_tokens)],
    ['dash.completionTokens', num(row.completion_tokens)],
    ['dash.reasoningTokens', num(row.reasoning_tokens)],
    ['dash.credits', num(row.credits)],
    ['logs.id', row.id],
  ];
  return html`
    <${Dialog} open=${true} title=${t('logs.detail')} onClose=${onClose}
      actions=${html`<button type="button" class="btn" onClick=${onClose}>${t('common.close')}</button>`}>
      <dl class="detail-list">
        ${fields.map(([k, v]) => html`<div key=${k}><dt>${t(k)}</dt><dd translate=${false}>${v}</dd></div>`)}
      </dl>
      <h3>${t('logs.error')}</h3>
      ${row.error ? html`<pre class="error-block" translate=${false}>${row.error}</pre>` : html`<p class="muted">${t('logs.noError')}</p>`}
    <//>`;
}

export function Logs() {
  const [filters, setFilters] = useState(initialFilters);
  const [applied, setApplied] = useState(() => queryOf(initialFilters()));
  const [rows, setRows] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [error, setError] = useState(null);
  const [detail, setDetail] = useState(null);

  const [load, loading] = useAction(async (query, after) => {
    try {
      const answer = await api.get('/admin/api/logs', { params: { ...query, cursor: after, limit: PAGE }, quiet: true });
      setRows((prev) => (after ? [...(prev ?? []), ...(answer?.logs ?? [])] : answer?.logs ?? []));
      setCursor(answer?.next_cursor ?? null);
      setError(null);
    } catch (err) {
      setError(err);
      if (!after) setRows(null);
    }
  });
  useEffect(() => {
    load(applied, null);
  }, [applied]);

  const set = (f) => (e) => setFilters({ ...filters, [f]: e.currentTarget.value });
  const apply = (e) => {
    e.preventDefault();
    setApplied(queryOf(filters));
  };
  const clear = () => {
    setFilters(initialFilters());
    setApplied(queryOf(initialFilters()));
  };
  const csv = withQuery('/admin/api/logs', { ...applied, format: 'csv' });

  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.logs')}</h1>
        <a class="btn" href=${csv} download="gemgate-logs.csv" id="export-csv">${t('logs.export')}</a>
      </div>
      <form class="card filters-form" onSubmit=${apply} aria-label=${t('logs.filters')}>
        <div class="form-grid form-grid-tight">
          <div class="field field-compact">
            <label for="log-range">${t('logs.range')}</label>
            <select id="log-range" value=${filters.preset} onChange=${set('preset')}>
              ${Object.keys(PRESETS).map((p) => html`<option key=${p} value=${p}>${t(`range.${p}`)}</option>`)}
              <option value="all">${t('logs.allTime')}</option>
              <option value="custom">${t('logs.custom')}</option>
            </select>
          </div>
          ${filters.preset === 'custom' && html`
            <div class="field field-compact">
              <label for="log-from">${t('logs.from')}</label>
              <input id="log-from" type="datetime-local" value=${filters.from} max=${localInput(Date.now())} onInput=${set('from')} />
            </div>
            <div class="field field-compact">
              <label for="log-to">${t('logs.to')}</label>
              <input id="log-to" type="datetime-local" value=${filters.to} onInput=${set('to')} />
            </div>`}
          <div class="field field-compact">
            <label for="log-status">${t('common.status')}</label>
            <select id="log-status" value=${filters.status} onChange=${set('status')}>
              <option value="">${t('dash.all')}</option>
              <option value="2xx">2xx</option>
              <option value="4xx">4xx</option>
              <option value="5xx">5xx</option>
              <option value="error">${t('logs.errorsOnly')}</option>
            </select>
          </div>
          <div class="field field-compact">
            <label for="log-stream">${t('logs.stream')}</label>
            <select id="log-stream" value=${filters.stream} onChange=${set('stream')}>
              <option value="">${t('dash.all')}</option>
              <option value="true">${t('logs.streamOnly')}</option>
              <option value="false">${t('logs.nonStream')}</option>
            </select>
          </div>
          <div class="field field-compact">
            <label for="log-model">${t('common.model')}</label>
            <input id="log-model" value=${filters.model} onInput=${set('model')} spellcheck="false" />
          </div>
          <div class="field field-compact">
            <label for="log-key">${t('logs.keyId')}</label>
            <input id="log-key" value=${filters.key} onInput=${set('key')} spellcheck="false" />
          </div>
          <div class="field field-compact">
            <label for="log-user">${t('logs.userId')}</label>
            <input id="log-user" value=${filters.user} onInput=${set('user')} spellcheck="false" />
          </div>
          <div class="field field-compact field-grow">
            <label for="log-q">${t('logs.search')}</label>
            <input id="log-q" type="search" value=${filters.q} onInput=${set('q')} placeholder=${t('logs.searchPlaceholder')} />
          </div>
        </div>
        <div class="row">
          <button type="submit" class="btn btn-primary" id="apply-filters">${t('logs.apply')}</button>
          <button type="button" class="btn" onClick=${clear}>${t('logs.clear')}</button>
        </div>
      </form>
      ${error && !rows ? html`<${LoadError} error=${error} onRetry=${() => load(applied, null)} />`
        : rows === null ? html`<${Loading} />`
        : !rows.length ? html`<${Empty} text=${t('logs.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards logs-table">
            <thead><tr>
              <th scope="col">${t('logs.time')}</th>
              <th scope="col">${t('common.status')}</th>
              <th scope="col">${t('common.model')}</th>
              <th scope="col">${t('common.user')}</th>
              <th scope="col">${t('common.key')}</th>
              <th scope="col" class="num">${t('dash.tokens')}</th>
              <th scope="col" class="num">${t('dash.credits')}</th>
              <th scope="col" class="num">${t('logs.latency')}</th>
              <th scope="col">${t('logs.error')}</th>
            </tr></thead>
            <tbody>
              ${rows.map((r) => html`
                <tr key=${r.id}>
                  <th scope="row" data-label=${t('logs.time')}>
                    <button type="button" class="link" onClick=${() => setDetail(r)} aria-label=${t('logs.open', { time: dateTime(r.ts) })}>${dateTime(r.ts)}</button>
                  </th>
                  <td data-label=${t('common.status')}>
                    <span class=${`pill ${statusTone(r.status)}`}>${r.status ?? '–'}</span>
                    ${r.stream && html` <span class="pill pill-muted">${t('logs.streamShort')}</span>`}
                  </td>
                  <td data-label=${t('common.model')}><span translate=${false}>${r.model ?? '–'}</span></td>
                  <td data-label=${t('common.user')}><span translate=${false}>${r.user_name ?? r.user_id ?? '–'}</span></td>
                  <td data-label=${t('common.key')}><code translate=${false}>${r.key_masked ?? r.key_id ?? '–'}</code></td>
                  <td class="num" data-label=${t('dash.tokens')}>${num((r.prompt_tokens ?? 0) + (r.completion_tokens ?? 0) + (r.reasoning_tokens ?? 0))}</td>
                  <td class="num" data-label=${t('dash.credits')}>${num(r.credits)}</td>
                  <td class="num" data-label=${t('logs.latency')}>${ms(r.latency_ms)}</td>
                  <td class="error-text clip" data-label=${t('logs.error')}>${r.error ? html`<span translate=${false}>${r.error}</span>` : null}</td>
                </tr>`)}
            </tbody>
          </table>
        </div>
        <div class="row load-more">
          ${cursor ? html`<button type="button" class="btn" id="load-more" disabled=${loading} onClick=${() => load(applied, cursor)}>${loading ? t('common.loading') : t('logs.loadMore')}</button>`
            : html`<p class="muted">${t('logs.end', { n: num(rows.length) })}</p>`}
        </div>`}
      ${error && rows && html`<p class="form-error" role="alert"><span translate=${false}>${error.message}</span></p>`}
      ${detail && html`<${Detail} row=${detail} onClose=${() => setDetail(null)} />`}
    </section>`;
}
