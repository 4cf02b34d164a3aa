-- Login seam v2 (issue 8): what methods that leave the site need.

-- The identity a method proved by a cross-site return, kept on the challenge
-- until the resume checks the browser binding and starts the session.
ALTER TABLE challenges ADD COLUMN returned BLOB;

-- A method's own data about a login (a SAML NameID and SessionIndex), handed
-- back to it at logout.
ALTER TABLE sessions ADD COLUMN method_data BLOB;

-- Per-login state a method keeps while the user is away (an AuthnRequest ID),
-- taken once on return.
CREATE TABLE login_states (
    key        TEXT NOT NULL PRIMARY KEY,
    challenge  TEXT NOT NULL DEFAULT '',
    data       BLOB,
    expires_at INTEGER
) STRICT;

CREATE INDEX login_states_expires_at ON login_states (expires_at);

-- One replay store for every single-use ID (client-assertion JTIs, SAML
-- assertion IDs), shared by every node.
ALTER TABLE assertion_jtis RENAME TO used_ids;
ALTER TABLE used_ids RENAME COLUMN jti TO id;
