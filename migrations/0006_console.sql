-- gemgate schema, part 6: what the admin console reads.
--
-- The request log keeps the error a failed request answered with (already
-- free of secrets), for the console's log search and detail view, and gains
-- indexes for its filters (each one leads with the filtered column, then ts).
ALTER TABLE request_log ADD COLUMN error TEXT;
CREATE INDEX IF NOT EXISTS request_log_model_ts ON request_log (model, ts);
CREATE INDEX IF NOT EXISTS request_log_key_ts ON request_log (key_id, ts);
CREATE INDEX IF NOT EXISTS request_log_status_ts ON request_log (status, ts);

-- Rollups count failed requests and a latency histogram (lat_0 … lat_11,
-- doubling buckets from < 50 ms to >= 51.2 s; see domain::usage), so the
-- dashboard's success rate and p50/p95 come from rollups, never from
-- scanning the log.
ALTER TABLE usage_hourly ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_0 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_1 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_2 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_3 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_4 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_6 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_7 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_9 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN lat_11 INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS usage_hourly_model ON usage_hourly (model, hour);
CREATE INDEX IF NOT EXISTS usage_hourly_key ON usage_hourly (key_id, hour);

-- The same totals per minute, for the dashboard's one-hour view. Kept two
-- days (cron deletes older rows).
CREATE TABLE IF NOT EXISTS usage_minute (
  minute            INTEGER NOT NULL,
  user_id           TEXT NOT NULL,
  model             TEXT NOT NULL,
  key_id            TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  errors            INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  credits           INTEGER NOT NULL DEFAULT 0,
  lat_0             INTEGER NOT NULL DEFAULT 0,
  lat_1             INTEGER NOT NULL DEFAULT 0,
  lat_2             INTEGER NOT NULL DEFAULT 0,
  lat_3             INTEGER NOT NULL DEFAULT 0,
  lat_4             INTEGER NOT NULL DEFAULT 0,
  lat_5             INTEGER NOT NULL DEFAULT 0,
  lat_6             INTEGER NOT NULL DEFAULT 0,
  lat_7             INTEGER NOT NULL DEFAULT 0,
  lat_8             INTEGER NOT NULL DEFAULT 0,
  lat_9             INTEGER NOT NULL DEFAULT 0,
  lat_10             INTEGER NOT NULL DEFAULT 0,
  lat_11             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, user_id, model, key_id)
);
CREATE INDEX IF NOT EXISTS usage_minute_user ON usage_minute (user_id, minute);
CREATE INDEX IF NOT EXISTS usage_minute_model ON usage_minute (model, minute);
CREATE INDEX IF NOT EXISTS usage_minute_key ON usage_minute (key_id, minute);

-- Hourly totals per single dimension (dim 'all' with name '', 'model', 'key'
-- or 'user' with its value): what the dashboard's series and splits read for
-- 24 h to 30 days without filters. Each request counts once per dimension, so
-- this stays small however many user × model × key combinations traffic
-- makes, which usage_hourly cannot.
CREATE TABLE IF NOT EXISTS usage_dims (
  hour              INTEGER NOT NULL,
  dim               TEXT NOT NULL,
  name              TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  errors            INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  credits           INTEGER NOT NULL DEFAULT 0,
  lat_0             INTEGER NOT NULL DEFAULT 0,
  lat_1             INTEGER NOT NULL DEFAULT 0,
  lat_2             INTEGER NOT NULL DEFAULT 0,
  lat_3             INTEGER NOT NULL DEFAULT 0,
  lat_4             INTEGER NOT NULL DEFAULT 0,
  lat_5             INTEGER NOT NULL DEFAULT 0,
  lat_6             INTEGER NOT NULL DEFAULT 0,
  lat_7             INTEGER NOT NULL DEFAULT 0,
  lat_8             INTEGER NOT NULL DEFAULT 0,
  lat_9             INTEGER NOT NULL DEFAULT 0,
  lat_10             INTEGER NOT NULL DEFAULT 0,
  lat_11             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (dim, hour, name)
);

-- The same per day, for the 30-day view (whose window is whole UTC days).
CREATE TABLE IF NOT EXISTS usage_dims_daily (
  day               INTEGER NOT NULL,
  dim               TEXT NOT NULL,
  name              TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  errors            INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  credits           INTEGER NOT NULL DEFAULT 0,
  lat_0             INTEGER NOT NULL DEFAULT 0,
  lat_1             INTEGER NOT NULL DEFAULT 0,
  lat_2             INTEGER NOT NULL DEFAULT 0,
  lat_3             INTEGER NOT NULL DEFAULT 0,
  lat_4             INTEGER NOT NULL DEFAULT 0,
  lat_5             INTEGER NOT NULL DEFAULT 0,
  lat_6             INTEGER NOT NULL DEFAULT 0,
  lat_7             INTEGER NOT NULL DEFAULT 0,
  lat_8             INTEGER NOT NULL DEFAULT 0,
  lat_9             INTEGER NOT NULL DEFAULT 0,
  lat_10             INTEGER NOT NULL DEFAULT 0,
  lat_11             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (dim, day, name)
);
