-- API tokens that can be killed: an expiry, a revocation time, and a scope: `personal` (all
-- the user may do) or `widget:<workspace>` (the web chat widget of one workspace, nothing
-- else). Existing tokens stay personal and never expire.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'personal';
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
CREATE INDEX api_tokens_user ON api_tokens (user_name);
