-- gemgate schema, part 4: user keys, the request log and hourly usage rollups.
-- The live balance of a user is serialized in its UserLedger Durable Object;
-- D1 keeps the record (limits, the settled total) and the ledger rows.

-- A user key. Only the SHA-256 of the secret is stored; `key_hint` is the
-- masked form shown in listings.
CREATE TABLE IF NOT EXISTS users (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  note            TEXT NOT NULL DEFAULT '',
  key_hash        TEXT NOT NULL UNIQUE,
  key_hint        TEXT NOT NULL,
  enabled         INTEGER NOT NULL DEFAULT 1,
  expires_at      INTEGER,
  allowed_models  TEXT NOT NULL DEFAULT '[]',
  credit_quota    INTEGER,
  rpm             INTEGER,
  rpd             INTEGER,
  tpm             INTEGER,
  max_concurrency INTEGER,
  credits_used    INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);

-- One row per request that reached admission, written off the hot path.
-- `user_id` is NULL for ACCESS_TOKENS clients; `key_id` is the upstream
-- key's non-secret id.
CREATE TABLE IF NOT EXISTS request_log (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  ts                INTEGER NOT NULL,
  user_id           TEXT,
  model             TEXT NOT NULL,
  key_id            TEXT NOT NULL DEFAULT '',
  status            INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  credits           INTEGER NOT NULL DEFAULT 0,
  latency_ms        INTEGER NOT NULL DEFAULT 0,
  stream            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS request_log_ts ON request_log (ts);
CREATE INDEX IF NOT EXISTS request_log_user_ts ON request_log (user_id, ts);

-- Hourly totals per user × model × upstream key, upserted with each log row.
-- `user_id` is '' for ACCESS_TOKENS clients (part of the primary key).
CREATE TABLE IF NOT EXISTS usage_hourly (
  hour              INTEGER NOT NULL,
  user_id           TEXT NOT NULL,
  model             TEXT NOT NULL,
  key_id            TEXT NOT NULL,
  requests          INTEGER NOT NULL DEFAULT 0,
  prompt_tokens     INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  credits           INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, user_id, model, key_id)
);
CREATE INDEX IF NOT EXISTS usage_hourly_user ON usage_hourly (user_id, hour);
