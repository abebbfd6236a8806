-- Stored Responses API responses (`POST /v1/responses` with `store` true, the default):
-- the response object as returned, and the conversation it ends (input and output items),
-- which a later request continues with `previous_response_id`. `scope` is the SHA-256 of
-- the caller's scope (one per user key, one for all static ACCESS_TOKENS): another scope
-- never reads a row. Rows past `expires_at` (`responses_ttl_days` after creation) are
-- deleted by the cron's retention job.
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY,
  scope TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  conversation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expires_at ON responses (expires_at);
