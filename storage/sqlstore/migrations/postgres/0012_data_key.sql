-- The data key: the root of everything sealed and derived, kept wrapped
-- (sealed) under each master key in use. data_key holds the one data key's
-- ID (a single row, so that of two nodes starting at once one wins);
-- data_key_wraps one row per wrapping master key, named by its fingerprint.
CREATE TABLE data_key (
    id         INTEGER     NOT NULL PRIMARY KEY CHECK (id = 1),
    key_id     TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE data_key_wraps (
    fingerprint TEXT        NOT NULL PRIMARY KEY,
    key_id      TEXT        NOT NULL REFERENCES data_key (key_id),
    wrapped     BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
