-- Upstream secrets are stored AES-GCM encrypted (`enc:v1:…`) when
-- ENCRYPTION_KEY is set. The masked form is kept beside them so listing keys
-- never needs to decrypt anything.
ALTER TABLE upstream_keys ADD COLUMN masked TEXT;
