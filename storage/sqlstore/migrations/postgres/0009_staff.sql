-- The back office: staff roles by codice fiscale, API tokens (keyed hashes
-- only), the target of a back-office action in the audit trail, and a client
-- secret's predecessor kept for the overlap of a rotation.
CREATE TABLE staff_roles (
    fiscal_number TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    granted_by    TEXT        NOT NULL DEFAULT '',
    granted_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (fiscal_number, role)
);

CREATE INDEX staff_roles_role ON staff_roles (role);

CREATE TABLE api_tokens (
    id         TEXT        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL DEFAULT '',
    hash       BYTEA       NOT NULL,
    roles      TEXT        NOT NULL,
    created_by TEXT        NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

ALTER TABLE audit_events ADD COLUMN target TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_operator ON audit_events (operator, at);
CREATE INDEX audit_events_target ON audit_events (target, at);

ALTER TABLE clients ADD COLUMN previous_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at TIMESTAMPTZ;
