-- PIN: nothing pending changes what is on record (issue 7).

-- The time of the attempt before the last, so that a reserved attempt that was
-- never checked can be given back without moving the delay window.
ALTER TABLE pin_attempts ADD COLUMN prev_at TIMESTAMPTZ;

-- A replacement started by an online revoca: the old PIN keeps working until
-- the replacement is first used.
ALTER TABLE pin_accounts ADD COLUMN replacement_hash BYTEA;
ALTER TABLE pin_accounts ADD COLUMN replacement_at TIMESTAMPTZ;

-- Requests that would change the residence or contacts on record wait here for
-- an operator's callback; the account is untouched until it is confirmed.
CREATE TABLE pin_requests (
    id            TEXT        NOT NULL PRIMARY KEY,
    fiscal_number TEXT        NOT NULL,
    data          TEXT        NOT NULL,
    channel       TEXT        NOT NULL DEFAULT '',
    operator      TEXT        NOT NULL DEFAULT '',
    status        TEXT        NOT NULL,
    decided_by    TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ,
    decided_at    TIMESTAMPTZ
);

CREATE INDEX pin_requests_status ON pin_requests (status, created_at);
CREATE INDEX pin_requests_fiscal_number ON pin_requests (fiscal_number, created_at);

-- Accounts that an earlier version parked for a callback hold the unverified
-- data of the request that parked them: they open nothing.
UPDATE pin_accounts SET status = 'revoked', hash = NULL, activation_hash = NULL WHERE status = 'callback';
