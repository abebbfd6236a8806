// The settings of the streaming modes and compatibility switches (issue 12):
//
// - through the admin API: every field round-trips; bad values (a negative or
//   too small interval, an empty marker, an unknown injection position, a bad
//   threshold, a prefix without its slash) get a 400 naming the field, and
//   nothing is saved, not even the valid fields of the same patch;
// - in the console's Settings page (headless Chromium): the two groups are
//   there with their explanations in both languages; a prompt-injection rule
//   and a safety threshold are edited with their own controls and saved; an
//   incomplete rule is explained beside the field and nothing is sent.
//
// Screenshots of the whole page at phone and desktop sizes, in both languages,
// are console.test.mjs's (its `settings` state).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, startStack } from '../lib/harness.mjs';
import { BROWSER, browserTest, launchBrowser, openPage } from '../lib/browser.mjs';
import { UI_TIMEOUT, dictionaries, keepLocal, logIn, untranslated, watchErrors } from '../lib/console.mjs';

let stack;
let browser;
let dicts;

before(async () => {
  dicts = await dictionaries();
  stack = await startStack();
  if (BROWSER.ready) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const settings = () => stack.admin('GET', '/settings');

/** PATCH /admin/api/settings without throwing: `{status, body}`. */
async function patch(body) {
  const res = await fetch(`${stack.url}/admin/api/settings`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const CONTRACT = {
  fake_stream_models: ['gemini-2.5-pro*'],
  fake_stream_prefix: 'fs/',
  fake_stream_interval_ms: 250,
  anti_truncation_models: ['gemini-2.5-flash'],
  anti_truncation_prefix: 'at/',
  anti_truncation_marker: '[END]',
  anti_truncation_max_attempts: 5,
  system_as_user_models: ['gemma-*', 'my-local-*'],
  prompt_injection: [
    { pattern: '*', position: 'system', text: 'Be brief.' },
    { pattern: 'gemini-2.5-*', position: 'suffix', text: '请用中文回答。' },
  ],
  default_safety_settings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }],
  thoughts_in_content: true,
  search_citations: 'annotations_and_list',
  code_execution_models: ['gemini-2.5-flash-code*'],
  url_context_models: ['gemini-3-*'],
  image_url_ttl_secs: 120,
  chat_image_output: 'parts',
};

test('settings: the contract fields have their documented defaults and round-trip through the admin API', async () => {
  const defaults = await stack.admin('GET', '/settings/defaults');
  assert.deepEqual(defaults.fake_stream_models, []);
  assert.equal(defaults.fake_stream_prefix, 'fake-stream/');
  assert.equal(defaults.anti_truncation_prefix, 'anti-trunc/');
  assert.equal(defaults.anti_truncation_marker, '[done]');
  assert.equal(defaults.anti_truncation_max_attempts, 3);
  assert.deepEqual(defaults.system_as_user_models, ['gemma-*']);
  assert.deepEqual(defaults.prompt_injection, []);
  assert.equal(defaults.thoughts_in_content, false);
  assert.equal(defaults.search_citations, 'annotations');
  assert.equal(defaults.image_url_ttl_secs, 3600);
  assert.equal(defaults.chat_image_output, 'markdown');
  assert.ok(defaults.default_safety_settings.length >= 4, JSON.stringify(defaults.default_safety_settings));
  assert.ok(defaults.fake_stream_interval_ms >= 100);
  try {
    await stack.admin('PATCH', '/settings', CONTRACT);
    const saved = await settings();
    for (const [name, value] of Object.entries(CONTRACT)) assert.deepEqual(saved[name], value, name);
  } finally {
    await stack.admin('PATCH', '/settings', Object.fromEntries(Object.keys(CONTRACT).map((k) => [k, null])));
  }
  const reset = await settings();
  for (const name of Object.keys(CONTRACT)) assert.deepEqual(reset[name], defaults[name], `${name} back to its default`);
});

test('settings: a bad value gets a 400 naming its field, and nothing of the patch is saved', async () => {
  const before = await settings();
  const cases = [
    [{ fake_stream_interval_ms: -1 }, 'fake_stream_interval_ms'],
    [{ fake_stream_interval_ms: 50 }, 'fake_stream_interval_ms'],
    [{ anti_truncation_marker: '' }, 'anti_truncation_marker'],
    [{ anti_truncation_max_attempts: 0 }, 'anti_truncation_max_attempts'],
    [{ prompt_injection: [{ pattern: '*', position: 'middle', text: 'x' }] }, 'prompt_injection'],
    [{ prompt_injection: [{ pattern: '*', position: 'prefix', text: '' }] }, 'prompt_injection'],
    [{ default_safety_settings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ALL' }] }, 'default_safety_settings'],
    [{ fake_stream_prefix: 'fake-stream' }, 'fake_stream_prefix'],
    [{ search_citations: 'footnotes' }, 'search_citations'],
    [{ thoughts_in_content: 'yes' }, 'thoughts_in_content'],
    [{ image_url_ttl_secs: 0 }, 'image_url_ttl_secs'],
    [{ image_url_ttl_secs: 604801 }, 'image_url_ttl_secs'],
    [{ chat_image_output: 'html' }, 'chat_image_output'],
  ];
  for (const [body, field] of cases) {
    // A valid change rides along: it must not be saved either.
    const res = await patch({ ...body, fake_stream_models: ['gemini-should-not-stick'] });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error?.param, field, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.error?.message ?? '', new RegExp(field), JSON.stringify(res.body));
  }
  assert.deepEqual(await settings(), before, 'a refused patch saved nothing');
});

/** A logged-in settings page in `lang`. */
async function openSettings(lang, viewport = { width: 1440, height: 900 }) {
  const context = await browser.newContext({ locale: lang === 'zh' ? 'zh-CN' : 'en-US', viewport });
  const external = await keepLocal(context);
  await logIn(context, stack.url);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const res = await openPage(page, `${stack.url}/admin/settings`);
  assert.equal(res.status(), 200);
  await page.waitForSelector('#group-compat', { timeout: UI_TIMEOUT });
  return {
    page,
    errors,
    async close() {
      await context.close();
      assert.deepEqual(external, [], 'the settings page requested more than the gateway');
    },
  };
}

browserTest('console: the streaming and compatibility groups explain every switch in both languages', { timeout: 120_000 }, async () => {
  for (const lang of ['en', 'zh']) {
    const { page, errors, close } = await openSettings(lang);
    try {
      for (const group of ['streaming', 'compat']) {
        const title = await page.locator(`#group-${group}`).innerText();
        assert.equal(title, dicts[lang][`settings.group.${group}`], `${lang} ${group} title`);
      }
      for (const name of Object.keys(CONTRACT)) {
        const label = await page.locator(`label[for="set-${name}"]`).innerText();
        assert.equal(label, dicts[lang][`set.${name}`], `${lang}: ${name}'s label`);
        const help = await page.locator(`#set-${name}-help`).innerText();
        assert.equal(help, dicts[lang][`set.${name}.help`], `${lang}: ${name}'s explanation`);
      }
      assert.deepEqual(await untranslated(page, dicts, lang), [], `${lang}: untranslated text`);
      assert.deepEqual(errors, [], `${lang}: page errors`);
    } finally {
      await close();
    }
  }
});

browserTest('console: a prompt-injection rule and a safety threshold are edited with their own controls and saved', { timeout: 120_000 }, async () => {
  await stack.admin('PATCH', '/settings', { prompt_injection: null, default_safety_settings: null });
  const { page, errors, close } = await openSettings('en', { width: 375, height: 812 });
  try {
    // An incomplete rule is explained beside the field and nothing is sent.
    await page.click('#set-prompt_injection .add-injection');
    let patches = 0;
    page.on('request', (r) => { if (r.method() === 'PATCH') patches += 1; });
    await page.click('#save-settings');
    await page.waitForSelector('#set-prompt_injection-err', { timeout: UI_TIMEOUT });
    assert.match(await page.locator('#set-prompt_injection-err').innerText(), /Rule 1/);
    assert.equal(patches, 0, 'an incomplete rule was sent');
    const rule = page.locator('#set-prompt_injection .injection-row').first();
    await rule.locator('input').fill('gemini-2.5-*');
    await rule.locator('select').selectOption('prefix');
    await rule.locator('textarea').fill('Answer in English.');
    await page.selectOption('select[data-category="HARM_CATEGORY_HATE_SPEECH"]', 'BLOCK_MEDIUM_AND_ABOVE');
    await page.selectOption('select[data-category="HARM_CATEGORY_CIVIC_INTEGRITY"]', '');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith('/admin/api/settings'), { timeout: UI_TIMEOUT }),
      page.click('#save-settings'),
    ]);
    assert.equal(res.status(), 200, await res.text());
    const saved = await settings();
    assert.deepEqual(saved.prompt_injection, [{ pattern: 'gemini-2.5-*', position: 'prefix', text: 'Answer in English.' }]);
    const safety = Object.fromEntries(saved.default_safety_settings.map((r) => [r.category, r.threshold]));
    assert.equal(safety.HARM_CATEGORY_HATE_SPEECH, 'BLOCK_MEDIUM_AND_ABOVE');
    assert.equal(safety.HARM_CATEGORY_CIVIC_INTEGRITY, undefined, 'a category set to "not sent" is left out');
    assert.equal(safety.HARM_CATEGORY_HARASSMENT, 'OFF', 'the untouched categories keep their thresholds');
    assert.deepEqual(errors, []);
  } finally {
    await close();
    await stack.admin('PATCH', '/settings', { prompt_injection: null, default_safety_settings: null });
  }
});
