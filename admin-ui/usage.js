// The self-service usage page: a user pastes their key and sees what
// GET /v1/usage reports. The key is kept only in this page's memory.
'use strict';

const TEXT = {
  en: {
    title: 'Usage', keyLabel: 'API key', check: 'Check', quota: 'Quota', used: 'Used',
    remaining: 'Remaining', limits: 'Limits', model: 'Model', requests: 'Requests',
    credits: 'Credits', tokens: 'Tokens', unlimited: 'Unlimited', none: 'none',
    hint: 'Your key is sent only to this gateway and is not stored.',
    empty: 'Paste your API key first.', invalid: 'This key was not accepted', failed: 'The request failed',
    other: '中文', otherLabel: '切换到中文',
  },
  zh: {
    title: '用量查询', keyLabel: 'API 密钥', check: '查询', quota: '额度', used: '已用',
    remaining: '剩余', limits: '限制', model: '模型', requests: '请求数',
    credits: '消耗额度', tokens: 'Token', unlimited: '无限制', none: '无',
    hint: '密钥只发送给本网关，不会被保存。',
    empty: '请先粘贴 API 密钥。', invalid: '密钥无效或不可用', failed: '请求失败',
    other: 'English', otherLabel: 'Switch to English',
  },
};

let lang = (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
let last = null;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];
const num = (n) => (n === null || n === undefined ? t('unlimited') : Number(n).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-US'));

function applyLanguage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = t('other');
  $('lang').setAttribute('aria-label', t('otherLabel'));
  document.title = `gemgate · ${t('title')}`;
  if (last) render(last);
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('result').hidden = true;
}

function render(data) {
  $('error').hidden = true;
  $('quota').textContent = num(data.quota);
  $('used').textContent = num(data.used ?? 0);
  $('remaining').textContent = num(data.remaining);
  const limits = data.limits ?? {};
  const parts = [['RPM', limits.rpm], ['RPD', limits.rpd], ['TPM', limits.tpm]].filter(([, v]) => v !== null && v !== undefined);
  $('limits').textContent = parts.length ? parts.map(([k, v]) => `${k} ${num(v)}`).join(' · ') : t('none');
  const body = $('models').querySelector('tbody');
  body.replaceChildren(
    ...(data.models ?? []).map((m) => {
      const row = document.createElement('tr');
      const tokens = (m.prompt_tokens ?? 0) + (m.completion_tokens ?? 0) + (m.reasoning_tokens ?? 0);
      for (const value of [m.model, num(m.requests), num(m.credits), num(tokens)]) {
        const cell = document.createElement('td');
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }),
  );
  $('result').hidden = false;
}

async function check(event) {
  event.preventDefault();
  const key = $('key').value.trim();
  if (!key) return showError(t('empty'));
  $('check').disabled = true;
  try {
    const res = await fetch('/v1/usage', { headers: { authorization: `Bearer ${key}` }, cache: 'no-store' });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      last = null;
      return showError(`${res.status === 401 || res.status === 403 ? t('invalid') : t('failed')}: ${data?.error?.message ?? res.status}`);
    }
    last = data;
    render(data);
  } catch (e) {
    showError(`${t('failed')}: ${e.message}`);
  } finally {
    $('check').disabled = false;
  }
}

$('form').addEventListener('submit', check);
$('lang').addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  applyLanguage();
});
applyLanguage();
