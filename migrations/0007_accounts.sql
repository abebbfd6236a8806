-- gemgate schema, part 7: Gemini CLI (Code Assist) accounts, a second kind
-- of upstream beside the API keys.
--
-- An account is known by the Google account's email (one row per email;
-- its id is derived from it, so a re-import keeps the id and the pool's
-- health). The refresh token and a non-public client secret are sealed with
-- ENCRYPTION_KEY like API keys; access tokens are never stored here.
-- `enabled` is the operator's switch; `attention` (with `attention_url` and
-- `attention_message`) is set when Google refused the account in a way only
-- the operator can fix, and the account is not used until onboarding passes
-- again.
CREATE TABLE IF NOT EXISTS accounts (
  id                TEXT PRIMARY KEY,
  email             TEXT NOT NULL UNIQUE,
  refresh_token     TEXT NOT NULL,
  client_id         TEXT NOT NULL,
  client_secret     TEXT NOT NULL,
  project_id        TEXT,
  -- The project the operator set (kept apart from the one Google gave).
  project_pinned    INTEGER NOT NULL DEFAULT 0,
  tier              TEXT,
  tier_name         TEXT,
  enabled           INTEGER NOT NULL DEFAULT 1,
  attention         TEXT,
  attention_url     TEXT,
  attention_message TEXT,
  last_error        TEXT,
  last_used_at      INTEGER,
  onboarded_at      INTEGER,
  source            TEXT NOT NULL DEFAULT 'import',
  -- SHA-256 of the credential as imported from a GCLI_CREDS_* secret, so a
  -- restart does not import it again.
  source_digest     TEXT,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_usable ON accounts (enabled, attention);

-- The mirror of an account's health per model (as key_model_health is for
-- keys), for the admin views.
CREATE TABLE IF NOT EXISTS account_model_health (
  account_id           TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  model                TEXT NOT NULL,
  cooldown_until       INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_error           TEXT,
  updated_at           INTEGER NOT NULL,
  PRIMARY KEY (account_id, model)
);

-- The OAuth wizard: one row per started sign-in, holding the PKCE verifier
-- (sealed) until the pasted address comes back. `used_at` makes the state
-- single-use; rows older than a day are deleted by cron.
CREATE TABLE IF NOT EXISTS oauth_states (
  id         TEXT PRIMARY KEY,
  verifier   TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  used_at    INTEGER
);
