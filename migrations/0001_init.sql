-- gemgate schema, part 1: upstream keys, their per-model health mirror, and
-- global settings. D1 is the source of truth; the ModelGate Durable Objects
-- hold the live per-model health and mirror failures here for the admin API.

-- Upstream AI Studio keys. `id` is a stable, non-secret id (first 16 hex of
-- the key's SHA-256), so importing the same key twice is a no-op.
CREATE TABLE IF NOT EXISTS upstream_keys (
  id              TEXT PRIMARY KEY,
  secret          TEXT NOT NULL,
  label           TEXT,
  project         TEXT,
  weight          INTEGER NOT NULL DEFAULT 1,
  class           TEXT NOT NULL DEFAULT 'free' CHECK (class IN ('free', 'paid')),
  enabled         INTEGER NOT NULL DEFAULT 1,
  disabled_reason TEXT,
  disabled_at     INTEGER,
  source          TEXT NOT NULL DEFAULT 'admin',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);

-- Last known health per key and model, written off the hot path whenever a
-- ModelGate records a failure. The live state is in the DO; this feeds
-- `GET /admin/api/keys` without fanning out to every model's DO.
CREATE TABLE IF NOT EXISTS key_model_health (
  key_id               TEXT NOT NULL REFERENCES upstream_keys(id) ON DELETE CASCADE,
  model                TEXT NOT NULL,
  cooldown_until       INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_error           TEXT,
  updated_at           INTEGER NOT NULL,
  PRIMARY KEY (key_id, model)
);

-- Runtime settings as one JSON document per scope ('global' for now).
CREATE TABLE IF NOT EXISTS settings (
  scope      TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
