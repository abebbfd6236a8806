// Usage-log retention (issue 4): the cron job deletes request-log rows older
// than `log_retention_days` and hourly rollups older than
// `rollup_retention_days`, and keeps everything newer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { runCron } from '../lib/util.mjs';

let stack;

before(async () => {
  stack = await startStack({ keys: ['ok-retention-1'], settings: { log_retention_days: 2, rollup_retention_days: 10 } });
});
after(async () => stack?.stop());

const DAY = 24 * 3600 * 1000;

test('cron deletes log rows and rollups past their retention, and only those', async () => {
  const now = Date.now();
  const hour = (ms) => ms - (ms % 3_600_000);
  await stack.d1(
    `INSERT INTO request_log (ts, user_id, model, key_id, status) VALUES
       (${now - 3 * DAY}, 'u_old', 'gemini-2.5-flash', 'k', 200),
       (${now - 1 * DAY}, 'u_new', 'gemini-2.5-flash', 'k', 200)`,
  );
  await stack.d1(
    `INSERT INTO usage_hourly (hour, user_id, model, key_id, requests) VALUES
       (${hour(now - 11 * DAY)}, 'u_old', 'gemini-2.5-flash', 'k', 1),
       (${hour(now - 3 * DAY)}, 'u_mid', 'gemini-2.5-flash', 'k', 1)`,
  );
  await runCron(stack);

  const logs = await stack.d1('SELECT user_id FROM request_log ORDER BY ts');
  assert.deepEqual(logs.map((r) => r.user_id), ['u_new'], 'the 3-day-old row is past 2 days of retention');
  const rollups = await stack.d1('SELECT user_id FROM usage_hourly ORDER BY hour');
  assert.deepEqual(rollups.map((r) => r.user_id), ['u_mid'], 'rollups keep 10 days, so only the 11-day-old one goes');
});
