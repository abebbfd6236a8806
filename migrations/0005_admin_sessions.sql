-- Admin console sessions. The cookie holds a signed JWT naming a session id;
-- this table is what makes a logout final: a session whose row is revoked, or
-- missing, is refused even while its token is still within its expiry.
-- The signing salt lives in meta (name 'admin_session_salt').
CREATE TABLE IF NOT EXISTS admin_sessions (
  id          TEXT PRIMARY KEY,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE INDEX IF NOT EXISTS admin_sessions_expires ON admin_sessions (expires_at);
