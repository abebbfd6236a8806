-- Small facts the worker keeps about itself, e.g. the digest of the
-- GEMINI_API_KEYS it last imported, so a cold isolate does not re-import
-- (and re-encrypt) hundreds of keys that are already stored.
CREATE TABLE IF NOT EXISTS meta (
  name       TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
