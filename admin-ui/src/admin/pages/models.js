// Models: which are offered, their aliases, their cost, their default
// thinking (a budget or a level, and whether thoughts are returned), the
// gateway's default model, and the scheduling limits per model (limits.js).
import { useState } from 'preact/hooks';
import { api, confirmDone, seg } from '../../lib/api.js';
import { num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { Dialog, Empty, Field, LoadError, Loading, Switch, useAction, useLoad } from '../../lib/ui.js';
import { LimitsEditor } from './limits.js';

const LEVELS = ['minimal', 'low', 'medium', 'high'];
const COSTS = ['request_cost', 'prompt_price', 'completion_price'];

function thinkingText(d) {
  if (!d) return t('models.thinkingNone');
  const thoughts = d.include_thoughts ? t('models.withThoughts') : '';
  if (d.thinking_level) return `${t('models.levelIs', { level: t(`level.${d.thinking_level}`) })}${thoughts}`;
  if (d.thinking_budget !== undefined && d.thinking_budget !== null) return `${t('models.budgetIs', { n: num(d.thinking_budget) })}${thoughts}`;
  return t('models.thinkingNone');
}

function costText(c) {
  if (!c) return t('models.costDefault');
  return t('models.costIs', { req: num(c.request_cost), p: num(c.prompt_price), c: num(c.completion_price) });
}

function EditModel({ m, onClose, onSaved }) {
  const td = m.thinking_default;
  const [form, setForm] = useState({
    aliases: (m.aliases ?? []).join(', '),
    costMode: m.cost ? 'custom' : 'default',
    request_cost: m.cost?.request_cost ?? '',
    prompt_price: m.cost?.prompt_price ?? '',
    completion_price: m.cost?.completion_price ?? '',
    thinking: !td ? 'none' : td.thinking_level ? 'level' : 'budget',
    budget: td?.thinking_budget ?? '',
    level: td?.thinking_level ?? 'low',
    include: !!td?.include_thoughts,
  });
  const [errors, setErrors] = useState({});
  const [initial] = useState(form);
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    setErrors({});
    // Only what was changed: an untouched cost must not become a custom row.
    const body = {};
    if (form.aliases !== initial.aliases) body.aliases = form.aliases.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    if (form.costMode === 'default') body.cost = null;
    else if (form.costMode !== initial.costMode || COSTS.some((c) => String(form[c]) !== String(initial[c]))) {
      body.cost = Object.fromEntries(COSTS.map((c) => [c, Number(form[c] || 0)]));
    }
    if (['thinking', 'budget', 'level', 'include'].some((k) => form[k] !== initial[k])) {
      body.thinking_default = form.thinking === 'none' ? null
        : form.thinking === 'level' ? { thinking_level: form.level, include_thoughts: form.include }
        : { thinking_budget: Number(form.budget || 0), include_thoughts: form.include };
    }
    if (!Object.keys(body).length) {
      onClose();
      return;
    }
    try {
      await api.patch(`/admin/api/models/${seg(m.id)}`, body, { fields: ['aliases', 'cost', 'thinking_default', 'enabled'] });
      confirmDone(t('common.saved'));
      onSaved();
    } catch (err) {
      if (err.param) setErrors({ [err.param]: err.message });
    }
  });
  const set = (f) => (e) => setForm({ ...form, [f]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  return html`
    <${Dialog} open=${true} wide title=${t('models.editTitle', { model: m.id })} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="submit" form="model-form" class="btn btn-primary" disabled=${busy}>${t('common.save')}</button>`}>
      <form id="model-form" class="stack" onSubmit=${save}>
        <${Field} id="model-aliases" label=${t('models.aliases')} error=${errors.aliases} hint=${t('models.aliasesHint')} wide>
          ${({ id, describedBy }) => html`<input id=${id} class="mono" aria-describedby=${describedBy} value=${form.aliases} onInput=${set('aliases')} />`}
        <//>
        <fieldset class="fieldset">
          <legend>${t('models.cost')}</legend>
          <div class="radio-row">
            <label><input type="radio" name="cost-mode" value="default" checked=${form.costMode === 'default'} onChange=${set('costMode')} /> ${t('models.costUseDefault')}</label>
            <label><input type="radio" name="cost-mode" value="custom" checked=${form.costMode === 'custom'} onChange=${set('costMode')} /> ${t('models.costCustom')}</label>
          </div>
          ${form.costMode === 'custom' && html`
            <div class="form-grid">
              ${COSTS.map((c) => html`
                <${Field} key=${c} id=${`model-${c}`} label=${t(`models.${c}`)}>
                  ${({ id }) => html`<input id=${id} type="number" min="0" step="any" value=${form[c]} onInput=${set(c)} />`}
                <//>`)}
            </div>`}
          ${errors.cost && html`<p class="field-error" role="alert" translate=${false}>${errors.cost}</p>`}
        </fieldset>
        <fieldset class="fieldset" disabled=${!m.thinking}>
          <legend>${t('models.thinkingDefault')}</legend>
          ${!m.thinking && html`<p class="hint">${t('models.noThinking')}</p>`}
          <div class="radio-row">
            ${['none', 'budget', 'level'].map((k) => html`
              <label key=${k}><input type="radio" name="thinking-mode" value=${k} checked=${form.thinking === k} onChange=${set('thinking')} /> ${t(`models.mode_${k}`)}</label>`)}
          </div>
          ${form.thinking === 'budget' && html`
            <${Field} id="model-budget" label=${t('models.budget')} hint=${t('models.budgetHint')}>
              ${({ id, describedBy }) => html`<input id=${id} type="number" min="-1" step="1" aria-describedby=${describedBy} value=${form.budget} onInput=${set('budget')} />`}
            <//>`}
          ${form.thinking === 'level' && html`
            <${Field} id="model-level" label=${t('models.level')}>
              ${({ id }) => html`<select id=${id} value=${form.level} onChange=${set('level')}>
                ${LEVELS.map((l) => html`<option key=${l} value=${l}>${t(`level.${l}`)}</option>`)}
              </select>`}
            <//>`}
          ${form.thinking !== 'none' && html`
            <label class="check-label"><input type="checkbox" checked=${form.include} onChange=${set('include')} /> ${t('models.includeThoughts')}</label>`}
          ${errors.thinking_default && html`<p class="field-error" role="alert" translate=${false}>${errors.thinking_default}</p>`}
        </fieldset>
      </form>
    <//>`;
}

function DefaultModel({ models, current, onSaved }) {
  const [value, setValue] = useState(current ?? '');
  const [error, setError] = useState(null);
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api.patch('/admin/api/settings', { default_model: value || null }, { fields: ['default_model'] });
      confirmDone(t('common.saved'));
      onSaved();
    } catch (err) {
      if (err.param) setError(err.message);
    }
  });
  return html`
    <form class="card default-model" onSubmit=${save}>
      <${Field} id="default-model" label=${t('models.defaultModel')} error=${error} hint=${t('models.defaultModelHint')} inline>
        ${({ id, describedBy }) => html`<select id=${id} aria-describedby=${describedBy} value=${value} onChange=${(e) => setValue(e.currentTarget.value)}>
          <option value="">${t('models.noDefault')}</option>
          ${models.map((m) => html`<option key=${m.id} value=${m.id} translate=${false}>${m.id}</option>`)}
        </select>`}
      <//>
      <button type="submit" class="btn btn-primary" disabled=${busy || value === (current ?? '')}>${t('common.save')}</button>
    </form>`;
}

export function Models() {
  const { data, error, reload } = useLoad(() => api.get('/admin/api/models', { quiet: true }), []);
  const [editing, setEditing] = useState(null);
  const [filter, setFilter] = useState('');
  const [toggle] = useAction(async (m, enabled) => {
    await api.patch(`/admin/api/models/${seg(m.id)}`, { enabled });
    reload({ silent: true });
  });
  const models = data?.models ?? [];
  const needle = filter.trim().toLowerCase();
  const shown = needle ? models.filter((m) => [m.id, m.display_name, ...(m.aliases ?? [])].some((v) => String(v ?? '').toLowerCase().includes(needle))) : models;
  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.models')}</h1>
        ${data && html`<p class="muted">${t('models.summary', { n: num(models.length), enabled: num(models.filter((m) => m.enabled).length) })}</p>`}
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : html`
        <${DefaultModel} key=${data.default_model ?? ''} models=${models} current=${data.default_model} onSaved=${() => reload({ silent: true })} />
        <${LimitsEditor} />
        <div class="toolbar">
          <div class="search">
            <label for="model-search" class="sr-only">${t('models.search')}</label>
            <input id="model-search" type="search" placeholder=${t('models.search')} value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
          </div>
        </div>
        ${!shown.length ? html`<${Empty} text=${t('models.none')} />` : html`
        <div class="table-wrap">
          <table class="table table-cards models-table">
            <thead><tr>
              <th scope="col">${t('common.model')}</th>
              <th scope="col">${t('models.aliases')}</th>
              <th scope="col">${t('models.limits')}</th>
              <th scope="col">${t('models.cost')}</th>
              <th scope="col">${t('models.thinkingDefault')}</th>
              <th scope="col">${t('keys.enabled')}</th>
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${shown.map((m) => html`
                <tr key=${m.id}>
                  <th scope="row" data-label=${t('common.model')}>
                    <code translate=${false}>${m.id}</code>
                    ${m.display_name && m.display_name !== m.id && html`<span class="sub" translate=${false}>${m.display_name}</span>`}
                  </th>
                  <td data-label=${t('models.aliases')}>
                    ${(m.aliases ?? []).length ? m.aliases.map((a) => html`<code key=${a} class="tag" translate=${false}>${a}</code>`) : html`<span class="muted">–</span>`}
                  </td>
                  <td data-label=${t('models.limits')} class="small">
                    ${t('models.tokenLimits', { input: num(m.input_token_limit), output: num(m.output_token_limit) })}
                  </td>
                  <td data-label=${t('models.cost')} class="small">${costText(m.cost)}</td>
                  <td data-label=${t('models.thinkingDefault')} class="small">${m.thinking ? thinkingText(m.thinking_default) : t('models.noThinkingShort')}</td>
                  <td data-label=${t('keys.enabled')}>
                    <${Switch} checked=${m.enabled} label=${t('models.enableModel', { model: m.id })} onChange=${(v) => toggle(m, v)} />
                  </td>
                  <td class="actions"><button type="button" class="btn btn-small" onClick=${() => setEditing(m)}>${t('common.edit')}</button></td>
                </tr>`)}
            </tbody>
          </table>
        </div>`}`}
      ${editing && html`<${EditModel} m=${editing} onClose=${() => setEditing(null)} onSaved=${() => { setEditing(null); reload({ silent: true }); }} />`}
    </section>`;
}
