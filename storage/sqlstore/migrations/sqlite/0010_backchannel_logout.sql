-- OpenID Connect Back-Channel Logout 1.0: a client's logout URI, the relying
-- parties that took part in each SSO session (with the sub and sid each was
-- given), and the durable outbox of logout tokens owed to them.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0 CHECK (backchannel_logout_session_required IN (0, 1));

CREATE TABLE session_clients (
    session_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    sid        TEXT NOT NULL,
    created_at INTEGER,
    expires_at INTEGER,
    PRIMARY KEY (session_id, client_id)
) STRICT;

CREATE INDEX session_clients_expires_at ON session_clients (expires_at);

CREATE TABLE logout_outbox (
    id              TEXT NOT NULL PRIMARY KEY,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL DEFAULT '',
    sid             TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    parked_at       INTEGER,
    created_at      INTEGER
) STRICT;

CREATE INDEX logout_outbox_due ON logout_outbox (parked_at, next_attempt_at);
