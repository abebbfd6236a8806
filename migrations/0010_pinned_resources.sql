-- Files API files and context caches, pinned to the upstream key that holds them
-- (Google keeps each in the project of the key that made it; no other key can use it).
-- `name` is Google's resource name (`files/abc`, `cachedContents/xyz`); `scope` is the
-- SHA-256 of the caller's scope (one per user key, one for all static ACCESS_TOKENS),
-- so another user never sees or uses a row; `resource` is the last resource JSON
-- Google returned (what a list answers with). Rows past `expires_at` (Google's own
-- expiry) are deleted by the cron's `files` job.
CREATE TABLE IF NOT EXISTS pinned_resources (
  name TEXT PRIMARY KEY,
  scope TEXT NOT NULL,
  key_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pinned_resources_scope ON pinned_resources (scope, name);
CREATE INDEX IF NOT EXISTS pinned_resources_expires_at ON pinned_resources (expires_at);

-- Resumable upload sessions the gateway handed out: its own session id (the
-- `upload_id` of the upload URL it gave the client), the caller's scope, the key that
-- started the upload and Google's upload URL (sealed under ENCRYPTION_KEY when set).
CREATE TABLE IF NOT EXISTS upload_sessions (
  id TEXT PRIMARY KEY,
  scope TEXT NOT NULL,
  key_id TEXT NOT NULL,
  target TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS upload_sessions_expires_at ON upload_sessions (expires_at);
