// The `model_limits` editor of the Models page: ordered rows (the first
// pattern that matches a model applies), each with a concurrency cap and
// its wait, and per-key budgets; Google's free-tier preset merged in after a
// confirmation; and `health_refresh_ms`. Saved with PATCH /admin/api/settings;
// a row the server refuses (400) is explained beside the editor.
import { useState } from 'preact/hooks';
import { api, confirmDone, report } from '../../lib/api.js';
import { num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Dialog, LoadError, Loading, useAction, useLoad } from '../../lib/ui.js';

/** The numeric fields of a row, in column order. */
export const FIELDS = ['max_concurrency', 'max_wait_ms', 'key_rpm', 'key_rpd', 'key_tpm'];
const BUDGETS = ['key_rpm', 'key_rpd', 'key_tpm'];

let rowId = 0;
const str = (v) => (v === null || v === undefined ? '' : String(v));
/** A row as the form holds it: strings, '' for no limit. */
const formRow = (row = {}) => ({ id: ++rowId, pattern: row.pattern ?? '', ...Object.fromEntries(FIELDS.map((f) => [f, str(row[f])])) });

/** The form's rows as the setting takes them, or `{ error }` naming the first bad cell. */
export function toSetting(rows) {
  const out = [];
  for (const [i, r] of rows.entries()) {
    const pattern = r.pattern.trim();
    if (!pattern) return { error: t('limits.needPattern', { n: i + 1 }) };
    const row = { pattern };
    for (const f of FIELDS) {
      const text = r[f].trim();
      if (text === '') continue;
      if (!/^\d+$/.test(text)) return { error: t('limits.needWhole', { n: i + 1, field: t(`limits.${f}`) }) };
      row[f] = Number(text);
    }
    out.push(row);
  }
  return { value: out };
}

/** Whether glob `a` matches every model name glob `b` does (checked for the common shapes only). */
function covers(a, b) {
  const [x, y] = [a.trim(), b.trim()];
  if (!x || !y) return false;
  if (x === y || x === '*') return true;
  const prefix = x.slice(0, -1);
  return x.endsWith('*') && !/[*?]/.test(prefix) && y.split(/[*?]/)[0].startsWith(prefix);
}

/** For each row, the 1-based number of an earlier row that leaves it nothing to match, or 0. */
function shadowedBy(rows) {
  return rows.map((r, i) => {
    const j = rows.slice(0, i).findIndex((earlier) => covers(earlier.pattern, r.pattern));
    return j + 1;
  });
}

/**
 * Merges preset rows into the form's: a row with the same pattern takes the
 * preset's budgets and keeps its concurrency; new patterns go at the end.
 * Returns the rows and, per preset row, what happens to it.
 */
export function mergePreset(rows, presetRows) {
  const out = rows.map((r) => ({ ...r }));
  const plan = presetRows.map((p) => {
    const budget = Object.fromEntries(BUDGETS.map((f) => [f, str(p[f])]));
    const i = out.findIndex((r) => r.pattern.trim() === p.pattern);
    if (i < 0) {
      out.push(formRow({ pattern: p.pattern, ...p, max_concurrency: null, max_wait_ms: null }));
      return { ...p, action: 'add' };
    }
    const same = BUDGETS.every((f) => out[i][f].trim() === budget[f]);
    out[i] = { ...out[i], ...budget };
    return { ...p, action: same ? 'same' : 'replace' };
  });
  return { rows: out, plan };
}

const ACTION_PILL = { add: 'pill-ok', replace: 'pill-warn', same: 'pill-muted' };

function PresetDialog({ preset, plan, busy, onApply, onClose }) {
  return html`
    <${Dialog} open=${true} wide title=${t('limits.presetTitle')} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="button" class="btn btn-primary" id="apply-preset-confirm" disabled=${busy} onClick=${onApply}>${t('limits.presetConfirm')}</button>`}>
      <div class="stack">
        <p>${t('limits.presetIntro')}</p>
        <p class="small"><span translate=${false}>${preset.name}</span> · <a href=${preset.source} target="_blank" rel="noopener noreferrer" class="ext" translate=${false}>${preset.source}</a></p>
        <div class="table-wrap">
          <table class="table table-cards preset-table">
            <thead><tr>
              <th scope="col">${t('limits.pattern')}</th>
              ${BUDGETS.map((f) => html`<th scope="col" class="num" key=${f}>${t(`limits.${f}`)}</th>`)}
              <th scope="col">${t('limits.change')}</th>
            </tr></thead>
            <tbody>
              ${plan.map((p) => html`
                <tr key=${p.pattern} data-action=${p.action}>
                  <th scope="row" data-label=${t('limits.pattern')}><code translate=${false}>${p.pattern}</code></th>
                  ${BUDGETS.map((f) => html`<td class="num" key=${f} data-label=${t(`limits.${f}`)}>${num(p[f])}</td>`)}
                  <td data-label=${t('limits.change')}><span class=${`pill ${ACTION_PILL[p.action]}`}>${t(`limits.action_${p.action}`)}</span></td>
                </tr>`)}
            </tbody>
          </table>
        </div>
      </div>
    <//>`;
}

function LimitsForm({ current, onSaved }) {
  const [rows, setRows] = useState(() => (current.model_limits ?? []).map(formRow));
  const [refresh, setRefresh] = useState(str(current.health_refresh_ms));
  const [error, setError] = useState(null);
  const [preset, setPreset] = useState(null);

  const parsed = toSetting(rows);
  const rowsChanged = parsed.error || JSON.stringify(parsed.value) !== JSON.stringify(current.model_limits ?? []);
  const refreshChanged = refresh.trim() !== str(current.health_refresh_ms);
  const changed = rowsChanged || refreshChanged;
  const shadows = shadowedBy(rows);

  /** Sends the changed settings; a 400 is shown beside the editor. */
  const send = async (patch) => {
    try {
      await api.patch('/admin/api/settings', patch, { quiet: true });
      setError(null);
      return true;
    } catch (err) {
      if (err.status === 400) setError(err.message);
      else report(err);
      return false;
    }
  };

  const [save, saving] = useAction(async (e) => {
    e?.preventDefault();
    const patch = {};
    if (rowsChanged) {
      if (parsed.error) {
        setError(parsed.error);
        return;
      }
      patch.model_limits = parsed.value;
    }
    if (refreshChanged) {
      if (!/^\d+$/.test(refresh.trim())) {
        setError(t('limits.refreshNumber'));
        return;
      }
      patch.health_refresh_ms = Number(refresh.trim());
    }
    if (await send(patch)) {
      confirmDone(t('limits.saved'));
      // Saving lasts until the saved settings are back, so the form never
      // shows the old ones as unsaved changes in between.
      await onSaved();
    }
  });

  const [openPreset, loadingPreset] = useAction(async () => {
    const answer = await api.get('/admin/api/model-limits/presets');
    const first = answer?.presets?.[0];
    if (!first) {
      setError(t('limits.presetNone'));
      return;
    }
    setPreset({ preset: first, ...mergePreset(rows, first.limits ?? []) });
  });

  const [applyPreset, applying] = useAction(async () => {
    const merged = toSetting(preset.rows);
    if (merged.error) {
      setError(merged.error);
      setPreset(null);
      return;
    }
    const plan = preset.plan;
    setRows(preset.rows);
    setPreset(null);
    if (await send({ model_limits: merged.value })) {
      confirmDone(t('limits.presetApplied', {
        added: plan.filter((p) => p.action === 'add').length,
        replaced: plan.filter((p) => p.action === 'replace').length,
      }));
      await onSaved();
    }
  });

  const setCell = (i, f) => (e) => {
    const value = e.currentTarget.value;
    setRows(rows.map((r, j) => (j === i ? { ...r, [f]: value } : r)));
  };
  const move = (i, by) => {
    const next = [...rows];
    [next[i], next[i + by]] = [next[i + by], next[i]];
    setRows(next);
  };
  const remove = (i) => setRows(rows.filter((_, j) => j !== i));
  const cellLabel = (f, i) => t('limits.rowField', { field: t(`limits.${f}`), n: i + 1 });

  return html`
    <form class="stack" id="limits-form" novalidate onSubmit=${save} aria-describedby=${error ? 'limits-error' : undefined}>
      ${rows.length ? html`
        <div class="table-wrap">
          <table class="table table-cards limits-table">
            <thead><tr>
              <th scope="col" class="order">${t('limits.order')}</th>
              <th scope="col">${t('limits.pattern')}</th>
              ${FIELDS.map((f) => html`<th scope="col" key=${f}>${t(`limits.${f}`)}</th>`)}
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${rows.map((r, i) => html`
                <tr key=${r.id}>
                  <th scope="row" class="order">${i + 1}</th>
                  <td class="pattern" data-label=${t('limits.pattern')}>
                    <input class="mono" data-field="pattern" spellcheck="false" autocomplete="off" aria-label=${cellLabel('pattern', i)}
                      value=${r.pattern} onInput=${setCell(i, 'pattern')} />
                    ${shadows[i] > 0 && html`<span class="shadowed" role="status">${t('limits.shadowed', { n: shadows[i] })}</span>`}
                  </td>
                  ${FIELDS.map((f) => html`
                    <td key=${f} data-label=${t(`limits.${f}`)}>
                      <input type="number" data-field=${f} min=${f === 'max_wait_ms' ? 0 : 1} step="1" inputmode="numeric" aria-label=${cellLabel(f, i)}
                        placeholder=${t('limits.noLimit')} value=${r[f]} onInput=${setCell(i, f)} />
                    </td>`)}
                  <td class="actions">
                    <button type="button" class="btn btn-small btn-ghost move-up" aria-label=${t('limits.moveUp', { n: i + 1 })} title=${t('limits.moveUp', { n: i + 1 })}
                      disabled=${i === 0} onClick=${() => move(i, -1)}>↑</button>
                    <button type="button" class="btn btn-small btn-ghost move-down" aria-label=${t('limits.moveDown', { n: i + 1 })} title=${t('limits.moveDown', { n: i + 1 })}
                      disabled=${i === rows.length - 1} onClick=${() => move(i, 1)}>↓</button>
                    <button type="button" class="btn btn-small btn-danger-ghost remove-row" aria-label=${t('limits.remove', { n: i + 1 })} title=${t('limits.remove', { n: i + 1 })}
                      onClick=${() => remove(i)}>×</button>
                  </td>
                </tr>`)}
            </tbody>
          </table>
        </div>` : html`<p class="empty limits-empty">${t('limits.empty')}</p>`}
      <div class="row">
        <button type="button" class="btn" id="add-limit" onClick=${() => setRows([...rows, formRow()])}>${t('limits.addRow')}</button>
        <button type="button" class="btn" id="apply-preset" disabled=${loadingPreset} onClick=${openPreset}>${t('limits.applyPreset')}</button>
      </div>
      <div class="field limits-refresh">
        <label for="health-refresh">${t('limits.refresh')}</label>
        <input id="health-refresh" type="number" min="100" max="60000" step="100" inputmode="numeric" class="input-num"
          aria-describedby="health-refresh-hint" value=${refresh} onInput=${(e) => setRefresh(e.currentTarget.value)} />
        <p class="hint" id="health-refresh-hint">${t('limits.refreshHelp')}</p>
      </div>
      ${error && html`<p class="field-error" id="limits-error" role="alert" translate=${false}>${error}</p>`}
      <div class="savebar">
        <span class="muted" aria-live="polite">${changed ? t('limits.unsaved') : t('settings.noChanges')}</span>
        <button type="button" class="btn" disabled=${!changed || saving}
          onClick=${() => { setRows((current.model_limits ?? []).map(formRow)); setRefresh(str(current.health_refresh_ms)); setError(null); }}>${t('settings.discard')}</button>
        <button type="submit" class="btn btn-primary" id="save-limits" disabled=${!changed || saving}>${t('common.save')}</button>
      </div>
      ${preset && html`<${PresetDialog} preset=${preset.preset} plan=${preset.plan} busy=${applying}
        onApply=${applyPreset} onClose=${() => setPreset(null)} />`}
    </form>`;
}

/** The card on the Models page. */
export function LimitsEditor() {
  const { data, error, reload } = useLoad(async () => ({ current: await api.get('/admin/api/settings', { quiet: true }), at: Date.now() }), []);
  return html`
    <section class="card limits-card" aria-labelledby="limits-title">
      <h2 id="limits-title">${t('limits.title')}</h2>
      <div class="limits-intro">
        <p>${t('limits.intro')}</p>
        <p>${t('limits.budgetsHelp')}</p>
        <p>${t('limits.concurrencyHelp')}</p>
      </div>
      <dl class="limits-help">
        ${['pattern', ...FIELDS].map((f) => html`
          <div key=${f}><dt>${t(`limits.${f}`)}</dt><dd>${t(`limits.${f}.help`)}</dd></div>`)}
      </dl>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : html`<${LimitsForm} key=${data.at} current=${data.current} onSaved=${() => reload({ silent: true })} />`}
    </section>`;
}
