-- Ponte schema, PostgreSQL dialect.
-- Times are TIMESTAMPTZ (microsecond precision), NULL for "none"; durations
-- are BIGINT nanoseconds; lists are JSON text.

CREATE TABLE clients (
    id                         TEXT        NOT NULL PRIMARY KEY,
    secret_hash                BYTEA,
    name                       TEXT        NOT NULL DEFAULT '',
    redirect_uris              TEXT        NOT NULL DEFAULT '[]',
    post_logout_redirect_uris  TEXT        NOT NULL DEFAULT '[]',
    grant_types                TEXT        NOT NULL DEFAULT '[]',
    response_types             TEXT        NOT NULL DEFAULT '[]',
    scopes                     TEXT        NOT NULL DEFAULT '[]',
    public                     BOOLEAN     NOT NULL DEFAULT FALSE,
    token_endpoint_auth_method TEXT        NOT NULL DEFAULT '',
    jwks                       BYTEA,
    jwks_uri                   TEXT        NOT NULL DEFAULT '',
    id_token_signing_alg       TEXT        NOT NULL DEFAULT '',
    sector_identifier          TEXT        NOT NULL DEFAULT '',
    access_token_ttl_ns        BIGINT      NOT NULL DEFAULT 0,
    refresh_token_ttl_ns       BIGINT      NOT NULL DEFAULT 0,
    id_token_ttl_ns            BIGINT      NOT NULL DEFAULT 0,
    created_at                 TIMESTAMPTZ,
    updated_at                 TIMESTAMPTZ
);

CREATE TABLE tokens (
    kind         TEXT        NOT NULL,
    signature    TEXT        NOT NULL,
    request_id   TEXT        NOT NULL DEFAULT '',
    client_id    TEXT        NOT NULL DEFAULT '',
    subject      TEXT        NOT NULL DEFAULT '',
    active       BOOLEAN     NOT NULL,
    requested_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    data         BYTEA,
    PRIMARY KEY (kind, signature)
);

CREATE INDEX tokens_kind_request_id ON tokens (kind, request_id);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE sessions (
    id         TEXT        NOT NULL PRIMARY KEY,
    subject    TEXT        NOT NULL,
    auth_time  TIMESTAMPTZ,
    method     TEXT        NOT NULL DEFAULT '',
    level      TEXT        NOT NULL DEFAULT '',
    amr        TEXT        NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);

CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE challenges (
    id         TEXT        NOT NULL PRIMARY KEY,
    client_id  TEXT        NOT NULL DEFAULT '',
    data       BYTEA,
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);

CREATE INDEX challenges_expires_at ON challenges (expires_at);

CREATE TABLE subjects (
    id            TEXT        NOT NULL PRIMARY KEY,
    fiscal_number TEXT        NOT NULL UNIQUE CHECK (fiscal_number <> ''),
    given_name    TEXT        NOT NULL DEFAULT '',
    family_name   TEXT        NOT NULL DEFAULT '',
    birthdate     TEXT        NOT NULL DEFAULT '',
    gender        TEXT        NOT NULL DEFAULT '',
    email         TEXT        NOT NULL DEFAULT '',
    phone_number  TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ
);

CREATE TABLE signing_keys (
    id         TEXT        NOT NULL PRIMARY KEY,
    algorithm  TEXT        NOT NULL,
    state      TEXT        NOT NULL,
    sealed     BYTEA,
    not_before TIMESTAMPTZ,
    not_after  TIMESTAMPTZ,
    created_at TIMESTAMPTZ
);

CREATE TABLE assertion_jtis (
    jti        TEXT        NOT NULL PRIMARY KEY,
    expires_at TIMESTAMPTZ
);

CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);
