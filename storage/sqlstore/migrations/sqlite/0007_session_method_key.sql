-- A login method's own key for an SSO session (a hash of a SAML identity
-- provider and NameID), so that the method can end the sessions it names
-- (identity-provider-initiated single logout).
ALTER TABLE sessions ADD COLUMN method_key TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_method_key ON sessions (method_key) WHERE method_key <> '';
