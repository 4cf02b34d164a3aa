-- PIN aggregates, PostgreSQL dialect.

CREATE TABLE pin_accounts (
    fiscal_number     TEXT        NOT NULL PRIMARY KEY,
    given_name        TEXT        NOT NULL DEFAULT '',
    family_name       TEXT        NOT NULL DEFAULT '',
    gender            TEXT        NOT NULL DEFAULT '',
    birthdate         TEXT        NOT NULL DEFAULT '',
    birth_place       TEXT        NOT NULL DEFAULT '',
    residence_abroad  BOOLEAN     NOT NULL DEFAULT FALSE,
    residence         TEXT        NOT NULL DEFAULT '{}',
    mobile            TEXT        NOT NULL DEFAULT '',
    phone             TEXT        NOT NULL DEFAULT '',
    email             TEXT        NOT NULL DEFAULT '',
    pec               TEXT        NOT NULL DEFAULT '',
    preferred_phone   TEXT        NOT NULL DEFAULT '',
    callback_slot     TEXT        NOT NULL DEFAULT '',
    hash              BYTEA,
    previous_hash     BYTEA,
    status            TEXT        NOT NULL,
    dispositivo       BOOLEAN     NOT NULL DEFAULT FALSE,
    must_change       BOOLEAN     NOT NULL DEFAULT FALSE,
    first_access_done BOOLEAN     NOT NULL DEFAULT FALSE,
    changed_at        TIMESTAMPTZ,
    activation_hash   BYTEA,
    channel           TEXT        NOT NULL DEFAULT '',
    operator          TEXT        NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ
);

CREATE TABLE pin_attempts (
    key     TEXT        NOT NULL PRIMARY KEY,
    count   INTEGER     NOT NULL,
    last_at TIMESTAMPTZ
);

CREATE TABLE audit_events (
    id            BIGSERIAL   PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    fiscal_number TEXT        NOT NULL DEFAULT '',
    event         TEXT        NOT NULL,
    channel       TEXT        NOT NULL DEFAULT '',
    operator      TEXT        NOT NULL DEFAULT '',
    detail        TEXT        NOT NULL DEFAULT ''
);

CREATE INDEX audit_events_fiscal_number ON audit_events (fiscal_number, at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE outbox_messages (
    id              TEXT        NOT NULL PRIMARY KEY,
    channel         TEXT        NOT NULL,
    recipient       TEXT        NOT NULL,
    subject         TEXT        NOT NULL DEFAULT '',
    body            TEXT        NOT NULL DEFAULT '',
    secret          BYTEA,
    fiscal_number   TEXT        NOT NULL DEFAULT '',
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT        NOT NULL DEFAULT '',
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ
);

CREATE INDEX outbox_messages_due ON outbox_messages (channel, sent_at, next_attempt_at);
CREATE INDEX outbox_messages_created ON outbox_messages (created_at);

CREATE TABLE one_time_codes (
    hash          TEXT        NOT NULL PRIMARY KEY,
    purpose       TEXT        NOT NULL,
    fiscal_number TEXT        NOT NULL DEFAULT '',
    expires_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ
);

CREATE INDEX one_time_codes_expires_at ON one_time_codes (expires_at);

CREATE TABLE conversions (
    id            TEXT        NOT NULL PRIMARY KEY,
    fiscal_number TEXT        NOT NULL,
    form          BYTEA,
    form_type     TEXT        NOT NULL DEFAULT '',
    document      BYTEA,
    document_type TEXT        NOT NULL DEFAULT '',
    status        TEXT        NOT NULL,
    reason        TEXT        NOT NULL DEFAULT '',
    reviewed_by   TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ,
    reviewed_at   TIMESTAMPTZ
);

CREATE INDEX conversions_status ON conversions (status, created_at);
