-- gemgate schema, part 8: operations. Maintenance job history, the error
-- view's upstream failures, the archive of long-invalid keys, per-request
-- ids, and monotonic totals for /metrics.

-- One row per run of a scheduled job (src/edge/cron): when, how long, what
-- it did (a JSON object of counts) and its error, if it failed. Pruned to
-- the last runs of each job by the cron itself.
CREATE TABLE IF NOT EXISTS job_runs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  job         TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  ok          INTEGER NOT NULL,
  counts      TEXT NOT NULL DEFAULT '{}',
  error       TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs (job, started_at);

-- One row per failed upstream attempt (a key or an account), written off
-- the request's path: the error view groups them by upstream, model and
-- class. `message` is Google's, with secrets scrubbed.
CREATE TABLE IF NOT EXISTS upstream_errors (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  ts          INTEGER NOT NULL,
  request_id  TEXT NOT NULL DEFAULT '',
  upstream_id TEXT NOT NULL,
  model       TEXT NOT NULL,
  class       TEXT NOT NULL,
  status      INTEGER,
  message     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS upstream_errors_ts ON upstream_errors (ts);
CREATE INDEX IF NOT EXISTS upstream_errors_upstream ON upstream_errors (upstream_id, ts);

-- Keys invalid for longer than `archive_invalid_after_days` leave the pool
-- for the archive; `probed_at` paces the maintenance probes.
ALTER TABLE upstream_keys ADD COLUMN archived_at INTEGER;
ALTER TABLE upstream_keys ADD COLUMN probed_at INTEGER;

-- The `x-request-id` of each logged request, and the surface it came on.
ALTER TABLE request_log ADD COLUMN request_id TEXT;
ALTER TABLE request_log ADD COLUMN surface TEXT;

-- Monotonic totals since the database was made, for Prometheus counters:
-- never pruned (a row per surface, model and outcome).
CREATE TABLE IF NOT EXISTS metric_totals (
  surface    TEXT NOT NULL,
  model      TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  requests   INTEGER NOT NULL DEFAULT 0,
  latency_ms INTEGER NOT NULL DEFAULT 0,
  lat_0      INTEGER NOT NULL DEFAULT 0,
  lat_1      INTEGER NOT NULL DEFAULT 0,
  lat_2      INTEGER NOT NULL DEFAULT 0,
  lat_3      INTEGER NOT NULL DEFAULT 0,
  lat_4      INTEGER NOT NULL DEFAULT 0,
  lat_5      INTEGER NOT NULL DEFAULT 0,
  lat_6      INTEGER NOT NULL DEFAULT 0,
  lat_7      INTEGER NOT NULL DEFAULT 0,
  lat_8      INTEGER NOT NULL DEFAULT 0,
  lat_9      INTEGER NOT NULL DEFAULT 0,
  lat_10     INTEGER NOT NULL DEFAULT 0,
  lat_11     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (surface, model, outcome)
);
