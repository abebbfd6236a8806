// User keys: create one (its key is shown once, with a copy button), edit
// its limits, enable or disable it, rotate its secret, delete it, and chart
// its usage.
import { useMemo, useState } from 'preact/hooks';
import { api, confirmDone, seg } from '../../lib/api.js';
import { Chart } from '../../lib/chart.js';
import { date, limit, localInput, num, toMs } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { lang, t } from '../../lib/i18n.js';
import { useStore } from '../../lib/store.js';
import { Bar, Confirm, CopyButton, Dialog, Empty, Field, LoadError, Loading, Segmented, Switch, useAction, useLoad } from '../../lib/ui.js';

const LIMITS = ['credit_quota', 'rpm', 'rpd', 'tpm', 'max_concurrency'];
const FIELDS = ['name', 'note', 'expires_at', 'allowed_models', ...LIMITS];

function formOf(u) {
  const f = { name: u?.name ?? '', note: u?.note ?? '', allowed_models: (u?.allowed_models ?? []).join('\n'), expires_at: localInput(u?.expires_at ?? null) };
  for (const l of LIMITS) f[l] = u?.[l] === null || u?.[l] === undefined ? '' : String(u[l]);
  return f;
}

function bodyOf(f) {
  const body = { name: f.name.trim(), note: f.note };
  for (const l of LIMITS) body[l] = f[l].trim() === '' ? null : Number(f[l]);
  body.allowed_models = f.allowed_models.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
  body.expires_at = f.expires_at ? new Date(f.expires_at).getTime() : null;
  return body;
}

function UserForm({ user, onClose, onSaved }) {
  const [form, setForm] = useState(formOf(user));
  const [errors, setErrors] = useState({});
  const [save, busy] = useAction(async (e) => {
    e.preventDefault();
    setErrors({});
    try {
      const answer = user
        ? await api.patch(`/admin/api/users/${seg(user.id)}`, bodyOf(form), { fields: FIELDS })
        : await api.post('/admin/api/users', bodyOf(form), { fields: FIELDS });
      onSaved(answer);
    } catch (err) {
      if (err.param) setErrors({ [err.param]: err.message });
    }
  });
  const set = (f) => (e) => setForm({ ...form, [f]: e.currentTarget.value });
  const numberField = (name) => html`
    <${Field} id=${`user-${name}`} label=${t(`users.${name}`)} error=${errors[name]}>
      ${({ id }) => html`<input id=${id} type="number" min="0" step="1" inputmode="numeric" placeholder=${t('common.unlimited')}
        value=${form[name]} onInput=${set(name)} />`}
    <//>`;
  return html`
    <${Dialog} open=${true} wide title=${user ? t('users.editTitle') : t('users.createTitle')} onClose=${onClose} actions=${html`
      <button type="button" class="btn" onClick=${onClose}>${t('common.cancel')}</button>
      <button type="submit" form="user-form" class="btn btn-primary" id="save-user" disabled=${busy}>${user ? t('common.save') : t('users.create')}</button>`}>
      <form id="user-form" class="stack" onSubmit=${save}>
        <div class="form-grid">
          <${Field} id="user-name" label=${t('users.name')} error=${errors.name}>
            ${({ id }) => html`<input id=${id} required maxlength="200" value=${form.name} onInput=${set('name')} />`}
          <//>
          <${Field} id="user-expires_at" label=${t('users.expires_at')} error=${errors.expires_at} hint=${t('users.expiresHint')}>
            ${({ id, describedBy }) => html`<input id=${id} type="datetime-local" aria-describedby=${describedBy} value=${form.expires_at} onInput=${set('expires_at')} />`}
          <//>
          ${LIMITS.map((l) => numberField(l))}
        </div>
        <${Field} id="user-allowed_models" label=${t('users.allowed_models')} error=${errors.allowed_models} hint=${t('users.allowedHint')} wide>
          ${({ id, describedBy }) => html`<textarea id=${id} rows="3" class="mono" aria-describedby=${describedBy} value=${form.allowed_models} onInput=${set('allowed_models')}></textarea>`}
        <//>
        <${Field} id="user-note" label=${t('users.note')} error=${errors.note} wide>
          ${({ id }) => html`<textarea id=${id} rows="2" maxlength="2000" value=${form.note} onInput=${set('note')}></textarea>`}
        <//>
        <p class="hint">${t('users.limitsHint')}</p>
      </form>
    <//>`;
}

/** The new secret, shown this once. */
function KeyOnce({ shown, onClose }) {
  return html`
    <${Dialog} open=${true} title=${t('users.keyTitle', { name: shown.name })} onClose=${onClose} actions=${html`
      <${CopyButton} text=${shown.key} />
      <button type="button" class="btn" onClick=${onClose}>${t('common.done')}</button>`}>
      <p class="warn-text">${t('users.keyOnce')}</p>
      <label class="sr-only" for="new-key">${t('users.key')}</label>
      <input id="new-key" class="mono key-once" readonly value=${shown.key} onFocus=${(e) => e.currentTarget.select()} />
    <//>`;
}

function UsageChart({ user }) {
  const language = useStore(lang);
  const [range, setRange] = useState('7d');
  const { data, error, loading, reload } = useLoad(
    () => api.get('/admin/api/stats', { params: { range, user: user.id }, quiet: true }),
    [range, user.id],
  );
  const charts = useMemo(() => {
    if (!data) return null;
    const rows = data.series ?? [];
    return {
      x: rows.map((r) => Math.round((toMs(r.t) ?? 0) / 1000)),
      series: [
        { label: t('dash.requests'), values: rows.map((r) => r.requests ?? null), color: '--c1', kind: 'bars', fmt: num },
        { label: t('dash.credits'), values: rows.map((r) => r.credits ?? null), color: '--c2', fmt: num },
      ],
    };
  }, [data, language]);
  return html`
    <div class="usage-detail">
      <div class="row">
        <${Segmented} small label=${t('dash.range')} value=${range} onChange=${setRange}
          options=${['24h', '7d', '30d'].map((r) => ({ value: r, label: t(`range.${r}`) }))} />
      </div>
      ${error ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : loading && !data ? html`<${Loading} />`
        : charts && html`<${Chart} title=${t('users.usageOf', { name: user.name })} x=${charts.x} series=${charts.series} height=${180} />`}
    </div>`;
}

export function Users() {
  const { data, error, reload } = useLoad(() => api.get('/admin/api/users', { quiet: true }), []);
  const [editing, setEditing] = useState(null);
  const [shownKey, setShownKey] = useState(null);
  const [rotating, setRotating] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [open, setOpen] = useState(null);

  const [setEnabled] = useAction(async (u, enabled) => {
    await api.patch(`/admin/api/users/${seg(u.id)}`, { enabled });
    reload({ silent: true });
  });
  const [rotate, rotatingBusy] = useAction(async () => {
    const answer = await api.post(`/admin/api/users/${seg(rotating.id)}/rotate`);
    setShownKey({ name: rotating.name, key: answer.key });
    setRotating(null);
    reload({ silent: true });
  });
  const [remove, removing] = useAction(async () => {
    await api.del(`/admin/api/users/${seg(deleting.id)}`);
    confirmDone(t('users.deleted', { name: deleting.name }));
    setDeleting(null);
    reload({ silent: true });
  });
  const onSaved = (answer) => {
    const creating = editing === 'new';
    setEditing(null);
    if (creating && answer?.key) setShownKey({ name: answer.user?.name ?? '', key: answer.key });
    else confirmDone(t('common.saved'));
    reload({ silent: true });
  };

  const users = data?.users ?? [];
  const now = Date.now();
  return html`
    <section class="page">
      <div class="page-head">
        <h1 id="page-title" tabindex="-1">${t('nav.users')}</h1>
        <button type="button" class="btn btn-primary" id="new-user" onClick=${() => setEditing('new')}>${t('users.new')}</button>
      </div>
      ${error && !data ? html`<${LoadError} error=${error} onRetry=${() => reload()} />`
        : !data ? html`<${Loading} />`
        : !users.length ? html`<${Empty} text=${t('users.none')} />`
        : html`
        <div class="table-wrap">
          <table class="table table-cards users-table">
            <thead><tr>
              <th scope="col">${t('users.name')}</th>
              <th scope="col">${t('users.key')}</th>
              <th scope="col">${t('users.quota')}</th>
              <th scope="col">${t('users.limits')}</th>
              <th scope="col" class="num">${t('dash.requests')}</th>
              <th scope="col">${t('users.expires_at')}</th>
              <th scope="col">${t('keys.enabled')}</th>
              <th scope="col"><span class="sr-only">${t('common.actions')}</span></th>
            </tr></thead>
            <tbody>
              ${users.map((u) => {
                const expired = u.expires_at && u.expires_at < now;
                const used = u.credits_used ?? u.usage?.credits ?? 0;
                return html`
                  <tr key=${u.id}>
                    <th scope="row" data-label=${t('users.name')}>
                      <span translate=${false}>${u.name}</span>
                      ${u.note && html`<span class="sub" translate=${false}>${u.note}</span>`}
                    </th>
                    <td data-label=${t('users.key')}><code translate=${false}>${u.key ?? u.key_hint}</code></td>
                    <td data-label=${t('users.quota')}>
                      <span class="quota">${t('users.usedOf', { used: num(used), quota: limit(u.credit_quota) })}</span>
                      ${u.credit_quota !== null && u.credit_quota !== undefined && html`<${Bar} value=${used} max=${u.credit_quota} tone=${used >= u.credit_quota ? 'danger' : 'accent'} />`}
                    </td>
                    <td data-label=${t('users.limits')} class="limits">
                      <span>RPM ${limit(u.rpm)}</span> <span>RPD ${limit(u.rpd)}</span> <span>TPM ${limit(u.tpm)}</span>
                      <span>${t('users.concurrency', { n: limit(u.max_concurrency) })}</span>
                    </td>
                    <td class="num" data-label=${t('dash.requests')}>${num(u.usage?.requests ?? 0)}</td>
                    <td data-label=${t('users.expires_at')}>
                      ${u.expires_at ? html`<span class=${expired ? 'pill pill-danger' : ''}>${date(u.expires_at)}</span>` : t('users.never')}
                    </td>
                    <td data-label=${t('keys.enabled')}>
                      <${Switch} checked=${u.enabled} label=${t('users.enableUser', { name: u.name })} onChange=${(v) => setEnabled(u, v)} />
                    </td>
                    <td class="actions">
                      <button type="button" class="btn btn-small" aria-expanded=${open === u.id ? 'true' : 'false'} onClick=${() => setOpen(open === u.id ? null : u.id)}>${t('users.usage')}</button>
                      <button type="button" class="btn btn-small" onClick=${() => setEditing(u)}>${t('common.edit')}</button>
                      <button type="button" class="btn btn-small" onClick=${() => setRotating(u)}>${t('users.rotate')}</button>
                      <button type="button" class="btn btn-small btn-danger-ghost" onClick=${() => setDeleting(u)}>${t('common.delete')}</button>
                    </td>
                  </tr>
                  ${open === u.id && html`
                    <tr key=${`${u.id}-usage`} class="detail-row"><td colspan="8"><${UsageChart} user=${u} /></td></tr>`}`;
              })}
            </tbody>
          </table>
        </div>`}
      ${editing && html`<${UserForm} user=${editing === 'new' ? null : editing} onClose=${() => setEditing(null)} onSaved=${onSaved} />`}
      ${shownKey && html`<${KeyOnce} shown=${shownKey} onClose=${() => setShownKey(null)} />`}
      <${Confirm} open=${!!rotating} danger=${false} title=${t('users.rotateTitle')} text=${t('users.rotateText', { name: rotating?.name ?? '' })}
        confirmLabel=${t('users.rotate')} busy=${rotatingBusy} onConfirm=${rotate} onClose=${() => setRotating(null)} />
      <${Confirm} open=${!!deleting} title=${t('users.deleteTitle')} text=${t('users.deleteText', { name: deleting?.name ?? '' })}
        confirmLabel=${t('common.delete')} busy=${removing} onConfirm=${remove} onClose=${() => setDeleting(null)} />
    </section>`;
}
