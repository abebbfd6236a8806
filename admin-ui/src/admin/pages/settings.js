// Every runtime setting, grouped, with its current value, its default and a
// one-line explanation. Saving sends only the changed fields; a field the
// server refuses (400, `error.param`) shows the server's reason beside it.
import { useMemo, useState } from 'preact/hooks';
import { api, confirmDone } from '../../lib/api.js';
import { bytes, ms, num } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { t } from '../../lib/i18n.js';
import { LoadError, Loading, Switch, useAction, useLoad } from '../../lib/ui.js';

/** Known settings: group, unit (for showing values) and choices. */
const META = {
  max_retries: { group: 'pool' },
  strategy: { group: 'pool', choices: ['round_robin', 'least_used', 'weighted', 'adaptive'] },
  rate_limit_default_cooldown_ms: { group: 'pool', unit: 'ms' },
  server_error_demote_ms: { group: 'pool', unit: 'ms' },
  network_demote_ms: { group: 'pool', unit: 'ms' },
  circuit_breaker_failures: { group: 'pool' },
  circuit_open_ms: { group: 'pool', unit: 'ms' },
  upstream_routing: { group: 'pool' },
  code_assist_models: { group: 'pool', list: true },
  archive_invalid_after_days: { group: 'pool', unit: 'days' },
  model_limits: { group: 'limits' },
  health_refresh_ms: { group: 'limits', unit: 'ms' },
  upstream_timeout_ms: { group: 'upstream', unit: 'ms' },
  max_body_bytes: { group: 'upstream', unit: 'bytes' },
  include_thoughts: { group: 'upstream' },
  models_cache_ttl_secs: { group: 'upstream', unit: 's' },
  image_fetch_max_bytes: { group: 'upstream', unit: 'bytes' },
  image_fetch_timeout_ms: { group: 'upstream', unit: 'ms' },
  image_url_ttl_secs: { group: 'upstream', unit: 's' },
  chat_image_output: { group: 'compat', choices: ['markdown', 'parts'] },
  default_model: { group: 'catalog', nullable: true },
  model_aliases: { group: 'catalog' },
  disabled_models: { group: 'catalog', list: true },
  thinking_defaults: { group: 'catalog' },
  model_variants: { group: 'catalog', list: true },
  charging_mode: { group: 'billing', choices: ['request', 'token'] },
  model_costs: { group: 'billing' },
  quota_timezone: { group: 'billing' },
  default_max_output_tokens: { group: 'billing' },
  log_retention_days: { group: 'retention', unit: 'days' },
  rollup_retention_days: { group: 'retention', unit: 'days' },
  responses_ttl_days: { group: 'retention', unit: 'days' },
  fake_stream_models: { group: 'streaming', list: true },
  fake_stream_prefix: { group: 'streaming' },
  fake_stream_interval_ms: { group: 'streaming', unit: 'ms' },
  anti_truncation_models: { group: 'streaming', list: true },
  anti_truncation_prefix: { group: 'streaming' },
  anti_truncation_marker: { group: 'streaming' },
  anti_truncation_max_attempts: { group: 'streaming' },
  system_as_user_models: { group: 'compat', list: true },
  prompt_injection: { group: 'compat', kind: 'injections' },
  default_safety_settings: { group: 'compat', kind: 'safety' },
  thoughts_in_content: { group: 'compat' },
  search_citations: { group: 'compat', choices: ['annotations', 'annotations_and_list'] },
  code_execution_models: { group: 'compat', list: true },
  url_context_models: { group: 'compat', list: true },
  admin_session_hours: { group: 'admin', unit: 'hours' },
  admin_login_global_limit: { group: 'admin' },
};
const GROUPS = ['pool', 'limits', 'upstream', 'streaming', 'compat', 'catalog', 'billing', 'retention', 'admin', 'other'];

/** Google's harm categories, in the order the safety editor lists them. */
const HARM_CATEGORIES = [
  'HARM_CATEGORY_HARASSMENT',
  'HARM_CATEGORY_HATE_SPEECH',
  'HARM_CATEGORY_SEXUALLY_EXPLICIT',
  'HARM_CATEGORY_DANGEROUS_CONTENT',
  'HARM_CATEGORY_CIVIC_INTEGRITY',
];
const THRESHOLDS = ['OFF', 'BLOCK_NONE', 'BLOCK_ONLY_HIGH', 'BLOCK_MEDIUM_AND_ABOVE', 'BLOCK_LOW_AND_ABOVE'];
const POSITIONS = ['system', 'prefix', 'suffix'];

function kindOf(name, value, def) {
  const m = META[name] ?? {};
  if (m.kind) return m.kind;
  if (m.choices) return 'choice';
  if (m.list) return 'list';
  const sample = value ?? def;
  if (typeof sample === 'boolean') return 'bool';
  if (typeof sample === 'number') return 'number';
  if (sample !== null && typeof sample === 'object') return 'json';
  return 'text';
}

/** The value as the form holds it. */
function toForm(kind, value) {
  if (kind === 'bool') return !!value;
  if (kind === 'injections') return (value ?? []).map((r) => ({ pattern: r.pattern ?? '', position: r.position ?? 'system', text: r.text ?? '' }));
  if (kind === 'safety') return (value ?? []).map((r) => ({ category: r.category, threshold: r.threshold }));
  if (kind === 'list') return (value ?? []).join(', ');
  if (kind === 'json') return JSON.stringify(value ?? null, null, 2);
  if (value === null || value === undefined) return '';
  return String(value);
}

/** The form's value as JSON, or `{ error }`. */
function fromForm(kind, text, meta) {
  if (kind === 'bool' || kind === 'safety') return { value: text };
  if (kind === 'injections') {
    const bad = text.findIndex((r) => !r.pattern.trim() || !r.text.trim());
    if (bad >= 0) return { error: t('compat.injectionIncomplete', { n: bad + 1 }) };
    return { value: text.map((r) => ({ pattern: r.pattern.trim(), position: r.position, text: r.text })) };
  }
  if (kind === 'list') return { value: text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean) };
  if (kind === 'json') {
    try {
      return { value: JSON.parse(text) };
    } catch {
      return { error: t('settings.badJson') };
    }
  }
  if (kind === 'number') {
    if (text.trim() === '') return { error: t('settings.needNumber') };
    const n = Number(text);
    return Number.isFinite(n) ? { value: n } : { error: t('settings.needNumber') };
  }
  if (meta?.nullable && text.trim() === '') return { value: null };
  return { value: text };
}

function shown(name, value) {
  const unit = META[name]?.unit;
  if (value === null || value === undefined) return t('settings.none');
  if (typeof value === 'boolean') return value ? t('common.on') : t('common.off');
  if (META[name]?.kind === 'injections') return value.length ? t('compat.injectionsShown', { n: value.length }) : '[]';
  if (META[name]?.kind === 'safety') {
    return value.length ? value.map((r) => `${t(`harm.${r.category}`) === `harm.${r.category}` ? r.category : t(`harm.${r.category}`)}: ${r.threshold}`).join(', ') : '[]';
  }
  if (typeof value === 'object') return Array.isArray(value) && !value.length ? '[]' : JSON.stringify(value);
  if (META[name]?.choices) return t(`choice.${value}`);
  if (typeof value === 'number') {
    if (unit === 'ms') return value >= 1000 ? `${num(value)} ms (${ms(value)})` : `${num(value)} ms`;
    if (unit === 'bytes') return bytes(value);
    if (unit) return t(`unit.${unit}`, { n: num(value) });
    return num(value);
  }
  return String(value);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** `prompt_injection`: ordered rows of pattern, position and text. */
function InjectionsEditor({ id, rows, describedBy, onChange }) {
  const set = (i, field, v) => onChange(rows.map((r, j) => (j === i ? { ...r, [field]: v } : r)));
  return html`
    <div class="rows-editor" id=${id} role="group" aria-describedby=${describedBy}>
      ${!rows.length && html`<p class="muted small">${t('compat.noInjections')}</p>`}
      ${rows.map((r, i) => html`
        <fieldset class="row-card injection-row" key=${i}>
          <legend class="small muted">${t('compat.injectionRow', { n: i + 1 })}</legend>
          <div class="row-card-line">
            <label class="small">${t('compat.pattern')}
              <input type="text" class="mono" spellcheck="false" value=${r.pattern} placeholder="gemini-2.5-*"
                onInput=${(e) => set(i, 'pattern', e.currentTarget.value)} /></label>
            <label class="small">${t('compat.position')}
              <select value=${r.position} onChange=${(e) => set(i, 'position', e.currentTarget.value)}>
                ${POSITIONS.map((p) => html`<option key=${p} value=${p}>${t(`compat.position_${p}`)}</option>`)}
              </select></label>
            <button type="button" class="btn btn-small" aria-label=${t('compat.removeRow', { n: i + 1 })}
              onClick=${() => onChange(rows.filter((_, j) => j !== i))}>${t('compat.remove')}</button>
          </div>
          <label class="small row-card-text">${t('compat.text')}
            <textarea rows="3" value=${r.text} onInput=${(e) => set(i, 'text', e.currentTarget.value)}></textarea></label>
        </fieldset>`)}
      <button type="button" class="btn btn-small add-injection" onClick=${() => onChange([...rows, { pattern: '*', position: 'system', text: '' }])}>
        ${t('compat.addInjection')}</button>
    </div>`;
}

/** `default_safety_settings`: one threshold per harm category, or none sent for it. */
function SafetyEditor({ id, rows, describedBy, onChange }) {
  const categories = [...HARM_CATEGORIES, ...rows.map((r) => r.category).filter((c) => !HARM_CATEGORIES.includes(c))];
  const pick = (category, threshold) => {
    const next = categories
      .map((c) => (c === category ? (threshold ? { category: c, threshold } : null) : rows.find((r) => r.category === c) ?? null))
      .filter(Boolean);
    onChange(next);
  };
  return html`
    <div class="safety-editor" id=${id} role="group" aria-describedby=${describedBy}>
      ${categories.map((c) => {
        const current = rows.find((r) => r.category === c)?.threshold ?? '';
        const sid = `${id}-${c}`;
        return html`
          <div class="safety-line" key=${c}>
            <label for=${sid} class="small">${t(`harm.${c}`) === `harm.${c}` ? c : t(`harm.${c}`)}</label>
            <select id=${sid} data-category=${c} value=${current} onChange=${(e) => pick(c, e.currentTarget.value)}>
              <option value="">${t('compat.notSent')}</option>
              ${THRESHOLDS.map((th) => html`<option key=${th} value=${th} translate=${false}>${th}</option>`)}
            </select>
          </div>`;
      })}
    </div>`;
}

function Setting({ name, kind, form, current, def, error, onChange, onReset }) {
  const id = `set-${name}`;
  const known = name in META;
  const helpId = `${id}-help`;
  const errId = `${id}-err`;
  const describedBy = `${helpId}${error ? ` ${errId}` : ''}`;
  let control;
  if (kind === 'bool') {
    control = html`<${Switch} id=${id} checked=${form} label=${known ? t(`set.${name}`) : name} onChange=${onChange} />`;
  } else if (kind === 'choice') {
    control = html`<select id=${id} aria-describedby=${describedBy} value=${form} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${META[name].choices.map((c) => html`<option key=${c} value=${c}>${t(`choice.${c}`)}</option>`)}
    </select>`;
  } else if (kind === 'injections') {
    control = html`<${InjectionsEditor} id=${id} rows=${form} describedBy=${describedBy} onChange=${onChange} />`;
  } else if (kind === 'safety') {
    control = html`<${SafetyEditor} id=${id} rows=${form} describedBy=${describedBy} onChange=${onChange} />`;
  } else if (kind === 'json') {
    control = html`<textarea id=${id} class="mono" rows=${Math.min(10, Math.max(3, form.split('\n').length))} spellcheck="false"
      aria-describedby=${describedBy} aria-invalid=${error ? 'true' : undefined} value=${form} onInput=${(e) => onChange(e.currentTarget.value)}></textarea>`;
  } else {
    control = html`<input id=${id} type=${kind === 'number' ? 'number' : 'text'} class=${kind === 'number' ? 'input-num' : ''}
      inputmode=${kind === 'number' ? 'numeric' : undefined} spellcheck="false" aria-describedby=${describedBy}
      aria-invalid=${error ? 'true' : undefined} placeholder=${META[name]?.nullable ? t('settings.none') : undefined}
      value=${form} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
  const isDefault = def !== undefined && same(current, def);
  return html`
    <div class=${`setting${error ? ' field-invalid' : ''}`}>
      <div class="setting-text">
        <label for=${id} class="setting-label">${known ? t(`set.${name}`) : html`<span translate=${false}>${name}</span>`}</label>
        <code class="setting-name" translate=${false}>${name}</code>
        <p class="hint" id=${helpId}>${known ? t(`set.${name}.help`) : t('settings.unknownHelp')}</p>
      </div>
      <div class="setting-control">
        ${control}
        <p class="setting-default">
          <span>${t('settings.default')}</span> <span translate=${false}>${def === undefined ? '–' : shown(name, def)}</span>
          ${isDefault ? html` <span class="pill pill-muted">${t('settings.isDefault')}</span>`
            : def !== undefined && html` <button type="button" class="link" onClick=${onReset}>${t('settings.reset')}</button>`}
        </p>
        ${error && html`<p class="field-error" id=${errId} role="alert" translate=${false}>${error}</p>`}
      </div>
    </div>`;
}

function SettingsForm({ current, defaults, defaultsError, onSaved }) {
  const names = useMemo(() => [...new Set([...Object.keys(current), ...Object.keys(defaults ?? {})])], [current, defaults]);
  const kinds = useMemo(() => Object.fromEntries(names.map((n) => [n, kindOf(n, current[n], defaults?.[n])])), [names]);
  const [form, setForm] = useState(() => Object.fromEntries(names.map((n) => [n, toForm(kinds[n], current[n])])));
  const [errors, setErrors] = useState({});

  const changed = names.filter((n) => {
    const parsed = fromForm(kinds[n], form[n], META[n]);
    return parsed.error || !same(parsed.value, current[n] ?? null);
  });

  const send = async (patch) => {
    try {
      await api.patch('/admin/api/settings', patch, { fields: names });
      setErrors({});
      confirmDone(t('settings.saved', { n: Object.keys(patch).length }));
      onSaved();
    } catch (err) {
      if (err.param) setErrors({ [err.param]: err.message });
    }
  };
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    const patch = {};
    const local = {};
    for (const n of changed) {
      const parsed = fromForm(kinds[n], form[n], META[n]);
      if (parsed.error) local[n] = parsed.error;
      else patch[n] = parsed.value;
    }
    if (Object.keys(local).length) {
      setErrors(local);
      document.getElementById(`set-${Object.keys(local)[0]}`)?.focus();
      return;
    }
    if (Object.keys(patch).length) await send(patch);
  });
  const [reset] = useAction((n) => send({ [n]: null }));

  const order = Object.keys(META);
  const rank = (n) => (order.includes(n) ? order.indexOf(n) : order.length);
  const grouped = GROUPS.map((g) => ({ g, list: names.filter((n) => (META[n]?.group ?? 'other') === g).sort((a, b) => rank(a) - rank(b)) }))
    .filter((x) => x.list.length);
  return html`
    <form onSubmit=${save} class="settings-form">
      ${defaultsError && html`<p class="notice-info" role="status">${t('settings.noDefaults')} <span translate=${false}>${defaultsError.message}</span></p>`}
      ${grouped.map(({ g, list }) => html`
        <section class="card settings-group" key=${g} aria-labelledby=${`group-${g}`}>
          <h2 id=${`group-${g}`}>${t(`settings.group.${g}`)}</h2>
          ${list.map((n) => html`
            <${Setting} key=${n} name=${n} kind=${kinds[n]} form=${form[n]} current=${current[n]} def=${defaults?.[n]} error=${errors[n]}
              onChange=${(v) => setForm({ ...form, [n]: v })} onReset=${() => reset(n)} />`)}
        </section>`)}
      <div class=${changed.length ? 'savebar savebar-sticky' : 'savebar'}>
        <span class="muted" aria-live="polite">${changed.length ? t('settings.changed', { n: changed.length }) : t('settings.noChanges')}</span>
        <button type="button" class="btn" disabled=${!changed.length || busy}
          onClick=${() => { setForm(Object.fromEntries(names.map((n) => [n, toForm(kinds[n], current[n])]))); setErrors({}); }}>${t('settings.discard')}</button>
        <button type="submit" class="btn btn-primary" id="save-settings" disabled=${!changed.length || busy}>${t('common.save')}</button>
      </div>
    </form>`;
}

const sum = (counts) => Object.values(counts ?? {}).reduce((s, n) => s + (Number(n) || 0), 0);

/**
 * Secrets at rest (`GET /admin/api/secrets`): the plaintext fallback's
 * warning when ENCRYPTION_KEY is unset, else the key's fingerprint and a
 * rotation's progress (rows not yet under the current key).
 */
function SecretsCard() {
  const { data, error } = useLoad(() => api.get('/admin/api/secrets', { quiet: true }), []);
  if (!data && !error) return null;
  const breakdown = (c) => t('secrets.breakdown', { keys: num(c?.keys ?? 0), accounts: num(c?.accounts ?? 0), signIns: num(c?.sign_ins ?? 0) });
  let body;
  if (!data) {
    body = html`<p class="notice-info" role="status">${t('secrets.loadFailed')} <span translate=${false}>${error.message}</span></p>`;
  } else if (data.encryption === 'off') {
    const plain = sum(data.plaintext);
    body = html`
      <p class="notice-warn" id="secrets-plaintext" role="alert">${t('secrets.plaintextWarning')}</p>
      ${plain > 0 && html`<p class="hint">${t('secrets.plaintextCount', { n: num(plain) })} ${breakdown(data.plaintext)}</p>`}`;
  } else {
    const remaining = sum(data.remaining);
    const unknown = sum(data.unknown_key);
    body = html`
      <dl class="detail-list secrets-list">
        <div><dt>${t('secrets.current')}</dt><dd><code translate=${false}>${data.current_fingerprint}</code></dd></div>
        <div><dt>${t('secrets.previous')}</dt><dd>${data.previous_fingerprint
          ? html`<code translate=${false}>${data.previous_fingerprint}</code>` : t('secrets.previousUnset')}</dd></div>
        <div><dt>${t('secrets.remaining')}</dt><dd id="secrets-remaining">${num(remaining)}</dd></div>
        <div><dt>${t('secrets.plaintext')}</dt><dd>${num(sum(data.plaintext))}</dd></div>
      </dl>
      ${remaining > 0
        ? html`<p class="notice-info" id="secrets-progress" role="status">
            ${t('secrets.rotating', { n: num(remaining), batch: num(data.batch_size ?? 50) })} ${breakdown(data.remaining)}</p>`
        : html`<p class="hint" id="secrets-done">${data.previous_set ? t('secrets.donePrevious') : t('secrets.done')}</p>`}
      ${unknown > 0 && html`<p class="notice-warn" role="alert">${t('secrets.unknownKey', { n: num(unknown) })}</p>`}`;
  }
  return html`
    <section class="card secrets-card" aria-labelledby="secrets-title">
      <h2 id="secrets-title">${t('secrets.title')}</h2>
      ${body}
    </section>`;
}

export function Settings() {
  const { data, error, reload } = useLoad(async () => {
    const [current, defaults] = await Promise.allSettled([
      api.get('/admin/api/settings', { quiet: true }),
      api.get('/admin/api/settings/defaults', { quiet: true }),
    ]);
    if (current.status === 'rejected') throw current.reason;
    return {
      current: current.value,
      defaults: defaults.status === 'fulfilled' ? defaults.value : null,
      defaultsError: defaults.status === 'rejected' ? defaults.reason : null,
      at: Date.now(),
    };
  }, []);
  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.settings')}</h1>
        <p class="muted">${t('settings.intro')}</p>
      </div>
      <${SecretsCard} />
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : html`<${SettingsForm} key=${data.at} current=${data.current} defaults=${data.defaults} defaultsError=${data.defaultsError}
            onSaved=${() => reload({ silent: true })} />`}
    </section>`;
}
