-- PIN aggregates, SQLite dialect (times: INTEGER unix microseconds; booleans 0/1).

CREATE TABLE pin_accounts (
    fiscal_number     TEXT    NOT NULL PRIMARY KEY,
    given_name        TEXT    NOT NULL DEFAULT '',
    family_name       TEXT    NOT NULL DEFAULT '',
    gender            TEXT    NOT NULL DEFAULT '',
    birthdate         TEXT    NOT NULL DEFAULT '',
    birth_place       TEXT    NOT NULL DEFAULT '',
    residence_abroad  INTEGER NOT NULL DEFAULT 0 CHECK (residence_abroad IN (0, 1)),
    residence         TEXT    NOT NULL DEFAULT '{}',
    mobile            TEXT    NOT NULL DEFAULT '',
    phone             TEXT    NOT NULL DEFAULT '',
    email             TEXT    NOT NULL DEFAULT '',
    pec               TEXT    NOT NULL DEFAULT '',
    preferred_phone   TEXT    NOT NULL DEFAULT '',
    callback_slot     TEXT    NOT NULL DEFAULT '',
    hash              BLOB,
    previous_hash     BLOB,
    status            TEXT    NOT NULL,
    dispositivo       INTEGER NOT NULL DEFAULT 0 CHECK (dispositivo IN (0, 1)),
    must_change       INTEGER NOT NULL DEFAULT 0 CHECK (must_change IN (0, 1)),
    first_access_done INTEGER NOT NULL DEFAULT 0 CHECK (first_access_done IN (0, 1)),
    changed_at        INTEGER,
    activation_hash   BLOB,
    channel           TEXT    NOT NULL DEFAULT '',
    operator          TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER,
    updated_at        INTEGER
) STRICT;

CREATE TABLE pin_attempts (
    key     TEXT    NOT NULL PRIMARY KEY,
    count   INTEGER NOT NULL,
    last_at INTEGER
) STRICT;

CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    fiscal_number TEXT    NOT NULL DEFAULT '',
    event         TEXT    NOT NULL,
    channel       TEXT    NOT NULL DEFAULT '',
    operator      TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_events_fiscal_number ON audit_events (fiscal_number, at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

CREATE TABLE outbox_messages (
    id              TEXT    NOT NULL PRIMARY KEY,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL DEFAULT '',
    secret          BLOB,
    fiscal_number   TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    sent_at         INTEGER,
    created_at      INTEGER
) STRICT;

CREATE INDEX outbox_messages_due ON outbox_messages (channel, sent_at, next_attempt_at);
CREATE INDEX outbox_messages_created ON outbox_messages (created_at);

CREATE TABLE one_time_codes (
    hash          TEXT    NOT NULL PRIMARY KEY,
    purpose       TEXT    NOT NULL,
    fiscal_number TEXT    NOT NULL DEFAULT '',
    expires_at    INTEGER,
    created_at    INTEGER
) STRICT;

CREATE INDEX one_time_codes_expires_at ON one_time_codes (expires_at);

CREATE TABLE conversions (
    id            TEXT    NOT NULL PRIMARY KEY,
    fiscal_number TEXT    NOT NULL,
    form          BLOB,
    form_type     TEXT    NOT NULL DEFAULT '',
    document      BLOB,
    document_type TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    reviewed_by   TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER,
    reviewed_at   INTEGER
) STRICT;

CREATE INDEX conversions_status ON conversions (status, created_at);
