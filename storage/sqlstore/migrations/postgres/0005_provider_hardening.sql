-- OIDC provider hardening (security review).

-- A legacy confidential client an administrator exempted from PKCE
-- (RFC 9700 §2.1.1 wants PKCE of every client; the exemption is explicit).
ALTER TABLE clients ADD COLUMN pkce_exempt BOOLEAN NOT NULL DEFAULT FALSE;

-- Who made a login challenge, as keyed hashes: the browser-binding cookie and
-- the client address. Live challenges are capped per browser and per address.
ALTER TABLE challenges ADD COLUMN browser TEXT NOT NULL DEFAULT '';
ALTER TABLE challenges ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';

CREATE INDEX challenges_browser ON challenges (browser, expires_at);
CREATE INDEX challenges_client_ip ON challenges (client_ip, expires_at);
