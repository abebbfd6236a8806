// Upstream keys: paste thousands at once, filter by health and search,
// page on the server, test the selected ones now, edit, enable or disable,
// set or clear the project of many at once, delete in bulk, and read each
// key's per-model health with a live cooldown countdown. A second view
// lists the projects with their keys and capacity; a third the archive of
// keys invalid for too long, to restore or purge.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, confirmDone, seg } from '../../lib/api.js';
import { clock, dateTime, ms, num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Confirm, Dialog, Empty, Field, LoadError, Loading, Pager, Segmented, StackBar, Switch, useAction, useLoad, useNow } from '../../lib/ui.js';

const PAGE = 100;
/** POST /admin/api/keys/test takes at most this many ids. */
const TEST_BATCH = 50;
/** Keys sent per POST when adding, so thousands go in a few requests. */
const ADD_BATCH = 1000;
const AI_STUDIO_KEY = /^AIza[0-9A-Za-z_-]{35}$/;

/** The same split the server does: a JSON array, or commas and whitespace. */
export function parseKeys(text) {
  const trimmed = text.trim();
  let items = null;
  if (trimmed.startsWith('[')) {
    try {
      const parsed = JSON.parse(trimmed);
      if (Array.isArray(parsed)) items = parsed.filter((v) => typeof v === 'string');
    } catch {
      items = null;
    }
  }
  items ??= trimmed.split(/[\s,]+/).map((s) => s.replace(/^["']+|["']+$/g, ''));
  return [...new Set(items.map((s) => s.trim()).filter(Boolean))];
}

const OUTCOMES = ['ok', 'rate_limited', 'key_invalid', 'server_error', 'network', 'timeout', 'client_error'];

const statusOf = (k) => (!k.enabled ? 'disabled' : (k.health ?? []).some((h) => h.cooling) ? 'cooling' : 'healthy');

/** The page of keys: from the server's paging, or, before it has any, paged here. */
function pageOf(answer, { status, q, offset }) {
  if (typeof answer?.matched === 'number') {
    return { keys: answer.keys ?? [], matched: answer.matched, total: answer.total ?? answer.matched, counts: answer.counts ?? null };
  }
  const all = answer?.keys ?? [];
  const counts = { healthy: 0, cooling: 0, disabled: 0 };
  for (const k of all) counts[statusOf(k)] += 1;
  const needle = q.trim().toLowerCase();
  const matched = all.filter((k) => (!status || statusOf(k) === status)
    && (!needle || [k.masked, k.label, k.project, k.id].some((v) => String(v ?? '').toLowerCase().includes(needle))));
  return { keys: matched.slice(offset, offset + PAGE), matched: matched.length, total: all.length, counts };
}

function AddKeys({ onAdded }) {
  const [text, setText] = useState('');
  const [meta, setMeta] = useState({ label: '', project: '', weight: '', class: '' });
  const [errors, setErrors] = useState({});
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const parsed = useMemo(() => parseKeys(text), [text]);
  const odd = parsed.filter((k) => !AI_STUDIO_KEY.test(k));

  const [add, busy] = useAction(async (e) => {
    e.preventDefault();
    setErrors({});
    setResult(null);
    const body = {};
    if (meta.label.trim()) body.label = meta.label.trim();
    if (meta.project.trim()) body.project = meta.project.trim();
    if (meta.weight !== '') body.weight = Number(meta.weight);
    if (meta.class) body.class = meta.class;
    const sum = { added: 0, existing: 0, invalid: 0, received: 0 };
    try {
      for (let i = 0; i < parsed.length; i += ADD_BATCH) {
        setProgress({ done: i, total: parsed.length });
        const r = await api.post('/admin/api/keys', { ...body, keys: parsed.slice(i, i + ADD_BATCH) },
          { fields: ['keys', 'label', 'project', 'weight', 'class'] });
        for (const f of Object.keys(sum)) sum[f] += r?.[f] ?? 0;
      }
      setResult(sum);
      setText('');
      onAdded();
    } catch (err) {
      if (err.param) setErrors({ [err.param]: err.message });
      if (sum.received) {
        setResult(sum);
        onAdded();
      }
    } finally {
      setProgress(null);
    }
  });

  const set = (f) => (e) => setMeta({ ...meta, [f]: e.currentTarget.value });
  return html`
    <details class="card add-keys">
      <summary><span class="summary-title">${t('keys.add')}</span></summary>
      <form class="stack" onSubmit=${add}>
        <${Field} id="add-keys-text" label=${t('keys.pasteLabel')} error=${errors.keys} hint=${t('keys.pasteHint')} wide>
          ${({ id, describedBy }) => html`<textarea id=${id} rows="6" spellcheck="false" autocomplete="off" class="mono"
            aria-describedby=${describedBy} value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>`}
        <//>
        <p class="muted" aria-live="polite">
          ${parsed.length ? t('keys.parsed', { n: num(parsed.length) }) : ''}
          ${odd.length > 0 && html` <span class="warn-text" role="status">${t('keys.oddKeys', { n: num(odd.length) })}</span>`}
        </p>
        <div class="form-grid">
          <${Field} id="add-label" label=${t('keys.label')} error=${errors.label}>
            ${({ id }) => html`<input id=${id} value=${meta.label} onInput=${set('label')} />`}
          <//>
          <${Field} id="add-project" label=${t('keys.project')} error=${errors.project}>
            ${({ id }) => html`<input id=${id} value=${meta.project} onInput=${set('project')} />`}
          <//>
          <${Field} id="add-weight" label=${t('keys.weight')} error=${errors.weight}>
            ${({ id }) => html`<input id=${id} type="number" min="0" step="1" inputmode="numeric" value=${meta.weight} onInput=${set('weight')} />`}
          <//>
          <${Field} id="add-class" label=${t('keys.class')} error=${errors.class}>
            ${({ id }) => html`<select id=${id} value=${meta.class} onChange=${set('class')}>
              <option value="">${t('keys.classDefault')}</option>
              <option value="free">${t('keys.classFree')}</option>
              <option value="paid">${t('keys.classPaid')}</option>
            </select>`}
          <//>
        </div>
        <div class="row">
          <button type="submit" class="btn btn-primary" id="add-keys" disabled=${busy || parsed.length === 0}>
            ${progress ? t('keys.adding', { done: num(progress.done), total: num(progress.total) }) : t('keys.addButton', { n: num(parsed.length) })}
          </button>
          ${result && html`
            <p class="result" role="status" id="add-result">
              ${t('keys.addResult', { added: num(result.added), existing: num(result.existing), invalid: num(result.invalid), received: num(result.received) })}
            </p>`}
        </div>
      </form>
    </details>`;
}

function HealthDetail({ health, now }) {
  if (!health?.length) return html`<p class="muted">${t('keys.noHealth')}</p>`;
  return html`
    <table class="table table-inner">
      <thead><tr>
        <th scope="col">${t('common.model')}</th><th scope="col">${t('common.status')}</th>
        <th scope="col" class="num">${t('keys.failures')}</th><th scope="col">${t('keys.lastError')}</th><th scope="col">${t('common.updated')}</th>
      </tr></thead>
      <tbody>
        ${health.map((h) => html`
          <tr key=${h.model}>
            <th scope="row" data-label=${t('common.model')}><span translate=${false}>${h.model}</span></th>
            <td data-label=${t('common.status')}><${HealthState} h=${h} now=${now} /></td>
            <td class="num" data-label=${t('keys.failures')}>${num(h.consecutive_failures ?? 0)}</td>
            <td class="error-text" data-label=${t('keys.lastError')}><span translate=${false}>${h.last_error || '–'}</span></td>
            <td data-label=${t('common.updated')}>${dateTime(h.updated_at)}</td>
          </tr>`)}
      </tbody>
    </table>`;
}

function HealthState({ h, now }) {
  const left = h.cooldown_until ? (h.cooldown_until - now) / 1000 : 0;
  if (h.cooling && left > 0) return html`<span class="pill pill-warn">${t('keys.coolingFor', { time: clock(left) })}</span>`;
  if (h.cooling) return html`<span class="pill pill-warn">${t('keys.cooling')}</span>`;
  return html`<span class="pill pill-ok">${t('keys.healthy')}</span>`;
}

function KeyStatus({ k, now }) {
  if (!k.enabled) {
    return html`<span class="pill pill-muted">${t('keys.disabled')}</span>
      ${k.disabled_reason && html`<span class="reason error-text" translate=${false}>${k.disabled_reason}</span>`}`;
  }
  const cooling = (k.health ?? []).filter((h) => h.cooling);
  if (!cooling.length) return html`<span class="pill pill-ok">${t('keys.healthy')}</span>`;
  const soonest = Math.min(...cooling.map((h) => h.cooldown_until ?? Infinity));
  const left = Number.isFinite(soonest) ? (soonest - now) / 1000 : 0;
  return html`<span class="pill pill-warn">${left > 0 ? t('keys.coolingFor', { time: clock(left) }) : t('keys.cooling')}</span>
    <span class="reason muted">${t('keys.coolingModels', { n: cooling.length })}</span>`;
}

function TestResult({ r }) {
  if (!r) return html`<span class="muted">–</span>`;
  return html`
    <span class=${`pill ${r.ok ? 'pill-ok' : 'pill-danger'}`}>${t(OUTCOMES.includes(r.outcome) ? `outcome.${r.outcome}` : 'outcome.other')}</span>
    <span class="reason muted">${r.status ?? ''}${r.status ? ' · ' : ''}${ms(r.latency_ms)}</span>
    ${r.message && html`<span class="reason error-text" translate=${false}>${r.message}</span>`}`;
}

function EditKey({ k, onClose, onSaved }) {
  const [form, setForm] = useState({ label: k.label ?? '', project: k.project ?? '', weight: k.weight ?? '', enabled: k.enabled });
  const [errors, setErrors] = useState({});
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    setErrors({});
    const body = { label: form.label, project: form.project, enabled: form.enabled };
    if (form.weight !== '') body.weight = Number(form.weight);
    try {
      await api.patch(`/admin/api/keys/${seg(k.id)}`, body, { fields: ['label', 'project', 'weight', 'enabled'] });
      confirmDone(t('common.saved'));
      onSaved();
    } catch (err) {
      if (err.param) setErrors({ [err.param]: err.message });
    }
  });
  const set = (f) => (e) => setForm({ ...form, [f]: e.currentTarget.value });
  return html`
    <${Dialog} open=${true} title=${t('keys.editTitle')} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="submit" form="edit-key" class="btn btn-primary" disabled=${busy}>${t('common.save')}</button>`}>
      <form id="edit-key" class="stack" onSubmit=${save}>
        <p><code translate=${false}>${k.masked}</code> <span class="muted">${t('keys.classIs', { cls: t(k.class === 'paid' ? 'keys.classPaid' : 'keys.classFree') })}</span></p>
        <${Field} id="edit-label" label=${t('keys.label')} error=${errors.label}>
          ${({ id }) => html`<input id=${id} value=${form.label} onInput=${set('label')} />`}
        <//>
        <${Field} id="edit-project" label=${t('keys.project')} error=${errors.project}>
          ${({ id }) => html`<input id=${id} value=${form.project} onInput=${set('project')} />`}
        <//>
        <${Field} id="edit-weight" label=${t('keys.weight')} error=${errors.weight} hint=${t('keys.weightHint')}>
          ${({ id, describedBy }) => html`<input id=${id} type="number" min="0" step="1" aria-describedby=${describedBy} value=${form.weight} onInput=${set('weight')} />`}
        <//>
        <div class="field field-inline">
          <span id="edit-enabled-label">${t('keys.enabled')}</span>
          <${Switch} checked=${form.enabled} label=${t('keys.enabled')} onChange=${(v) => setForm({ ...form, enabled: v })} />
        </div>
      </form>
    <//>`;
}

/** Sets or clears the project of the selected keys (POST /admin/api/keys/project). */
function SetProject({ ids, onClose, onDone }) {
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const { data } = useLoad(() => api.get('/admin/api/projects', { quiet: true }), []);
  const known = (data?.projects ?? []).map((p) => p.project).filter(Boolean);
  const [send, busy] = useAction(async (project) => {
    setError(null);
    try {
      const r = await api.post('/admin/api/keys/project', { ids, project }, { fields: ['ids', 'project'] });
      confirmDone(t(project === null ? 'keys.projectClearedN' : 'keys.projectSetN', { n: r?.updated ?? 0 }));
      onDone();
    } catch (err) {
      if (err.param) setError(err.message);
    }
  });
  const submit = (e) => {
    e.preventDefault();
    if (!name.trim()) {
      setError(t('keys.projectNeedName'));
      return;
    }
    send(name.trim());
  };
  return html`
    <${Dialog} open=${true} title=${t('keys.setProjectTitle', { n: ids.length })} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="button" class="btn" id="clear-project" disabled=${busy} onClick=${() => send(null)}>${t('keys.clearProject')}</button>
      <button type="submit" form="set-project-form" class="btn btn-primary" id="apply-project" disabled=${busy}>${t('keys.applyProject')}</button>`}>
      <form id="set-project-form" class="stack" onSubmit=${submit}>
        <p class="hint">${t('keys.setProjectHint')}</p>
        <${Field} id="bulk-project" label=${t('keys.projectName')} error=${error}>
          ${({ id, describedBy, invalid }) => html`<input id=${id} list="known-projects" autocomplete="off" maxlength="100"
            aria-describedby=${describedBy} aria-invalid=${invalid ? 'true' : undefined} value=${name} onInput=${(e) => setName(e.currentTarget.value)} />`}
        <//>
        <datalist id="known-projects">${known.map((p) => html`<option key=${p} value=${p}></option>`)}</datalist>
      </form>
    <//>`;
}

/** Keys and capacity per project (GET /admin/api/projects). */
function Projects({ onShowKeys }) {
  const { data, error, reload } = useLoad(() => api.get('/admin/api/projects', { quiet: true }), []);
  const list = data?.projects ?? [];
  const name = (p) => p.project ?? t('projects.noProject');
  return html`
    <div class="stack projects-view">
      <p class="hint projects-intro">${t('projects.intro')}</p>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !list.length ? html`<${Empty} text=${t('projects.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards projects-table">
            <thead><tr>
              <th scope="col">${t('keys.project')}</th>
              <th scope="col" class="num">${t('projects.keys')}</th>
              <th scope="col" class="num">${t('keys.enabled')}</th>
              <th scope="col" class="num">${t('keys.cooling')}</th>
              <th scope="col" class="num">${t('keys.disabled')}</th>
              <th scope="col" class="bar-col">${t('projects.capacity')}</th>
              <th scope="col">${t('projects.models')}</th>
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${list.map((p) => html`
                <tr key=${p.project ?? ''} data-project=${p.project ?? ''}>
                  <th scope="row" data-label=${t('keys.project')}>
                    ${p.project === null ? html`<span class="muted">${name(p)}</span>` : html`<span translate=${false}>${p.project}</span>`}
                  </th>
                  <td class="num" data-label=${t('projects.keys')}>${num(p.keys)}</td>
                  <td class="num" data-label=${t('keys.enabled')}>${num(p.enabled)}</td>
                  <td class="num" data-label=${t('keys.cooling')}>${num(p.cooling)}</td>
                  <td class="num" data-label=${t('keys.disabled')}>${num(p.disabled)}</td>
                  <td class="bar-col" data-label=${t('projects.capacity')}>
                    <${StackBar} label=${t('projects.capacityOf', { project: name(p), ready: p.enabled - p.cooling, total: p.keys })}
                      parts=${[{ value: p.enabled - p.cooling, tone: 'ok' }, { value: p.cooling, tone: 'warn' }, { value: p.disabled, tone: 'muted' }]} />
                  </td>
                  <td data-label=${t('projects.models')}>
                    ${p.models?.length ? html`
                      <ul class="project-models">
                        ${p.models.map((m) => html`
                          <li key=${m.model}>
                            <code translate=${false}>${m.model}</code>
                            <span class="pill pill-warn">${t('projects.modelCooling', { n: num(m.cooling) })}</span>
                            ${m.parked > 0 && html`<span class="pill pill-muted">${t('projects.modelParked', { n: num(m.parked) })}</span>`}
                          </li>`)}
                      </ul>` : html`<span class="muted">${t('projects.noCooling')}</span>`}
                  </td>
                  <td class="actions">
                    ${p.project !== null && html`
                      <button type="button" class="btn btn-small" aria-label=${t('projects.showKeysOf', { project: p.project })}
                        onClick=${() => onShowKeys(p.project)}>${t('projects.showKeys')}</button>`}
                  </td>
                </tr>`)}
            </tbody>
          </table>
        </div>`}
    </div>`;
}

/** Keys invalid for too long (GET /admin/api/keys/archive): restore or purge. */
function Archive({ onRestored }) {
  const { data, error, reload } = useLoad(() => api.get('/admin/api/keys/archive', { quiet: true }), []);
  const [selected, setSelected] = useState(new Set());
  const [purging, setPurging] = useState(null);
  const list = data?.keys ?? [];
  const ids = list.map((k) => k.id);
  const chosen = ids.filter((id) => selected.has(id));
  const allChosen = ids.length > 0 && chosen.length === ids.length;
  const toggle = (id) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id); else next.add(id);
    setSelected(next);
  };
  const toggleAll = () => setSelected(allChosen ? new Set() : new Set(ids));
  const [restore, restoring] = useAction(async () => {
    const r = await api.post('/admin/api/keys/archive/restore', { ids: chosen });
    confirmDone(t('archive.restoredN', { n: r?.restored ?? 0 }));
    setSelected(new Set());
    reload({ silent: true });
    onRestored();
  });
  const [purge, busy] = useAction(async () => {
    const r = await api.post('/admin/api/keys/archive/purge', { ids: purging });
    confirmDone(t('archive.purgedN', { n: r?.purged ?? 0 }));
    setPurging(null);
    setSelected(new Set());
    reload({ silent: true });
  });
  return html`
    <div class="stack archive-view">
      <p class="hint archive-intro">${t('archive.intro')}</p>
      <div class="bulkbar" role="region" aria-label=${t('keys.bulk')}>
        <label class="check-label bulk-select">
          <input type="checkbox" id="archive-select-all" checked=${allChosen} disabled=${!ids.length} onChange=${toggleAll} />
          ${t('archive.selectAll')}
        </label>
        <span class="muted">${t('keys.selected', { n: chosen.length })}</span>
        <button type="button" class="btn" id="archive-restore" disabled=${!chosen.length || restoring} onClick=${restore}>${t('archive.restore')}</button>
        <button type="button" class="btn btn-danger" id="archive-purge" disabled=${!chosen.length} onClick=${() => setPurging(chosen)}>${t('archive.purge')}</button>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !list.length ? html`<${Empty} text=${t('archive.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards keys-table archive-table">
            <thead><tr>
              <th scope="col" class="check"><input type="checkbox" aria-label=${t('archive.selectAll')} checked=${allChosen} onChange=${toggleAll} /></th>
              <th scope="col">${t('common.key')}</th>
              <th scope="col">${t('keys.project')}</th>
              <th scope="col">${t('archive.reason')}</th>
              <th scope="col">${t('archive.disabledAt')}</th>
              <th scope="col">${t('archive.archivedAt')}</th>
            </tr></thead>
            <tbody>
              ${list.map((k) => html`
                <tr key=${k.id} data-id=${k.id} class=${selected.has(k.id) ? 'selected' : ''}>
                  <td class="check"><input type="checkbox" aria-label=${t('keys.select', { key: k.masked })} checked=${selected.has(k.id)} onChange=${() => toggle(k.id)} /></td>
                  <th scope="row" data-label=${t('common.key')}>
                    <code translate=${false}>${k.masked}</code>
                    ${k.label && html`<span class="sub" translate=${false}>${k.label}</span>`}
                  </th>
                  <td data-label=${t('keys.project')}><span translate=${false}>${k.project || '–'}</span></td>
                  <td class=${k.disabled_reason ? 'error-text' : 'muted'} data-label=${t('archive.reason')}>${k.disabled_reason ? html`<span translate=${false}>${k.disabled_reason}</span>` : '–'}</td>
                  <td data-label=${t('archive.disabledAt')}>${dateTime(k.disabled_at)}</td>
                  <td data-label=${t('archive.archivedAt')}>${dateTime(k.archived_at)}</td>
                </tr>`)}
            </tbody>
          </table>
        </div>`}
      <${Confirm} open=${!!purging} title=${t('archive.purgeTitle')} text=${t('archive.purgeText', { n: purging?.length ?? 0 })}
        confirmLabel=${t('archive.purge')} busy=${busy} onConfirm=${purge} onClose=${() => setPurging(null)} />
    </div>`;
}

export function Keys() {
  const [status, setStatus] = useState('');
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState(new Set());
  const [open, setOpen] = useState(new Set());
  const [tests, setTests] = useState({});
  const [editing, setEditing] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [view, setView] = useState('keys');
  const [projecting, setProjecting] = useState(null);

  useEffect(() => {
    const timer = setTimeout(() => { setQ(search); setOffset(0); }, 300);
    return () => clearTimeout(timer);
  }, [search]);

  const { data, error, loading, reload } = useLoad(async () => {
    const answer = await api.get('/admin/api/keys', { params: { status, q, offset, limit: PAGE }, quiet: true });
    return pageOf(answer, { status, q, offset });
  }, [status, q, offset]);

  const keys = data?.keys ?? [];
  const anyCooling = keys.some((k) => (k.health ?? []).some((h) => h.cooling));
  const now = useNow(1000, anyCooling);
  const ids = keys.map((k) => k.id);
  const chosen = ids.filter((id) => selected.has(id));
  const allChosen = ids.length > 0 && chosen.length === ids.length;

  const toggle = (id) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id); else next.add(id);
    setSelected(next);
  };
  const toggleAll = () => setSelected(allChosen ? new Set() : new Set(ids));
  const toggleOpen = (id) => {
    const next = new Set(open);
    if (next.has(id)) next.delete(id); else next.add(id);
    setOpen(next);
  };

  const [runTests, testing] = useAction(async () => {
    const results = { ...tests };
    for (let i = 0; i < chosen.length; i += TEST_BATCH) {
      const r = await api.post('/admin/api/keys/test', { ids: chosen.slice(i, i + TEST_BATCH) });
      for (const row of r?.results ?? []) results[row.id] = row;
      setTests({ ...results });
    }
    reload({ silent: true });
  });
  const [setEnabled, switching] = useAction(async (list, enabled) => {
    for (const id of list) await api.patch(`/admin/api/keys/${seg(id)}`, { enabled });
    confirmDone(t(enabled ? 'keys.enabledN' : 'keys.disabledN', { n: list.length }));
    reload({ silent: true });
  });
  const [remove, removing] = useAction(async () => {
    const list = deleting;
    if (list.length === 1) await api.del(`/admin/api/keys/${seg(list[0])}`);
    else await api.del('/admin/api/keys', { ids: list });
    confirmDone(t('keys.deletedN', { n: list.length }));
    setDeleting(null);
    setSelected(new Set());
    reload({ silent: true });
  });

  const counts = data?.counts;
  const filterOptions = [
    { value: '', label: t('keys.filterAll', { n: num(data?.total ?? 0) }) },
    ...['healthy', 'cooling', 'disabled'].map((s) => ({ value: s, label: t(`keys.${s}`), count: counts ? num(counts[s]) : undefined })),
  ];

  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.keys')}</h1>
        <p class="muted">${data ? t('keys.summary', { total: num(data.total), healthy: num(counts?.healthy ?? 0), cooling: num(counts?.cooling ?? 0), disabled: num(counts?.disabled ?? 0) }) : ''}</p>
      </div>
      <${Segmented} label=${t('keys.view')} value=${view} onChange=${setView}
        options=${[{ value: 'keys', label: t('keys.viewKeys') }, { value: 'projects', label: t('keys.viewProjects') }, { value: 'archive', label: t('keys.viewArchive') }]} />
      ${view === 'projects' ? html`<${Projects} onShowKeys=${(p) => { setSearch(p); setView('keys'); }} />`
        : view === 'archive' ? html`<${Archive} onRestored=${() => reload({ silent: true })} />` : html`
      <${AddKeys} onAdded=${() => reload({ silent: true })} />
      <div class="toolbar toolbar-wrap">
        <${Segmented} label=${t('keys.filter')} value=${status} options=${filterOptions}
          onChange=${(v) => { setStatus(v); setOffset(0); setSelected(new Set()); }} />
        <div class="search">
          <label for="key-search" class="sr-only">${t('keys.search')}</label>
          <input id="key-search" type="search" placeholder=${t('keys.searchPlaceholder')} value=${search}
            onInput=${(e) => setSearch(e.currentTarget.value)} />
        </div>
      </div>
      <div class="bulkbar" role="region" aria-label=${t('keys.bulk')}>
        <label class="check-label bulk-select">
          <input type="checkbox" id="select-page" checked=${allChosen} disabled=${!ids.length} onChange=${toggleAll} />
          ${t('keys.selectPage')}
        </label>
        <span class="muted">${t('keys.selected', { n: chosen.length })}</span>
        <button type="button" class="btn" id="test-keys" disabled=${!chosen.length || testing} onClick=${runTests}>
          ${testing ? t('keys.testing') : t('keys.testNow')}
        </button>
        <button type="button" class="btn" disabled=${!chosen.length || switching} onClick=${() => setEnabled(chosen, true)}>${t('keys.enable')}</button>
        <button type="button" class="btn" disabled=${!chosen.length || switching} onClick=${() => setEnabled(chosen, false)}>${t('keys.disable')}</button>
        <button type="button" class="btn" id="set-project" disabled=${!chosen.length} onClick=${() => setProjecting(chosen)}>${t('keys.setProject')}</button>
        <button type="button" class="btn btn-danger" id="delete-keys" disabled=${!chosen.length} onClick=${() => setDeleting(chosen)}>${t('keys.deleteSelected')}</button>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !keys.length ? html`<${Empty} text=${data.total ? t('keys.noMatch') : t('keys.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards keys-table" aria-busy=${loading ? 'true' : 'false'}>
            <thead><tr>
              <th scope="col" class="check"><input type="checkbox" aria-label=${t('keys.selectAll')} checked=${allChosen} onChange=${toggleAll} /></th>
              <th scope="col">${t('common.key')}</th>
              <th scope="col">${t('keys.project')}</th>
              <th scope="col">${t('keys.class')}</th>
              <th scope="col" class="num">${t('keys.weight')}</th>
              <th scope="col">${t('common.status')}</th>
              <th scope="col">${t('keys.lastTest')}</th>
              <th scope="col">${t('keys.enabled')}</th>
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${keys.map((k) => html`
                <tr key=${k.id} class=${selected.has(k.id) ? 'selected' : ''}>
                  <td class="check"><input type="checkbox" aria-label=${t('keys.select', { key: k.masked })} checked=${selected.has(k.id)} onChange=${() => toggle(k.id)} /></td>
                  <th scope="row" data-label=${t('common.key')}>
                    <code translate=${false}>${k.masked}</code>
                    ${k.label && html`<span class="sub" translate=${false}>${k.label}</span>`}
                  </th>
                  <td data-label=${t('keys.project')}><span translate=${false}>${k.project || '–'}</span></td>
                  <td data-label=${t('keys.class')}>${k.class === 'paid' ? t('keys.classPaid') : t('keys.classFree')}</td>
                  <td class="num" data-label=${t('keys.weight')}>${num(k.weight ?? 1)}</td>
                  <td data-label=${t('common.status')}>
                    <div class="status-cell"><${KeyStatus} k=${k} now=${now} /></div>
                    <button type="button" class="link" aria-expanded=${open.has(k.id) ? 'true' : 'false'} onClick=${() => toggleOpen(k.id)}>
                      ${t('keys.perModel', { n: (k.health ?? []).length })}
                    </button>
                  </td>
                  <td data-label=${t('keys.lastTest')}><div class="status-cell"><${TestResult} r=${tests[k.id]} /></div></td>
                  <td data-label=${t('keys.enabled')}>
                    <${Switch} checked=${k.enabled} label=${t('keys.enableKey', { key: k.masked })} disabled=${switching} onChange=${(v) => setEnabled([k.id], v)} />
                  </td>
                  <td class="actions">
                    <button type="button" class="btn btn-small" onClick=${() => setEditing(k)}>${t('common.edit')}</button>
                    <button type="button" class="btn btn-small btn-danger-ghost" onClick=${() => setDeleting([k.id])}>${t('common.delete')}</button>
                  </td>
                </tr>
                ${open.has(k.id) && html`
                  <tr key=${`${k.id}-health`} class="detail-row">
                    <td colspan="9"><${HealthDetail} health=${k.health} now=${now} /></td>
                  </tr>`}`)}
            </tbody>
          </table>
        </div>
        <${Pager} offset=${offset} limit=${PAGE} total=${data.matched} onChange=${(o) => { setOffset(o); setSelected(new Set()); }} />`}`}
      ${projecting && html`<${SetProject} ids=${projecting} onClose=${() => setProjecting(null)}
        onDone=${() => { setProjecting(null); reload({ silent: true }); }} />`}
      ${editing && html`<${EditKey} k=${editing} onClose=${() => setEditing(null)} onSaved=${() => { setEditing(null); reload({ silent: true }); }} />`}
      <${Confirm} open=${!!deleting} title=${t('keys.deleteTitle')} text=${t('keys.deleteText', { n: deleting?.length ?? 0 })}
        confirmLabel=${t('common.delete')} busy=${removing} onConfirm=${remove} onClose=${() => setDeleting(null)} />
    </section>`;
}
