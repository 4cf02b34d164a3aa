-- A citizen's recent logins, for their own pages: method, level, relying
-- party, address and browser, bounded per citizen and swept after their
-- retention (expires_at).
CREATE TABLE login_history (
    id         TEXT NOT NULL PRIMARY KEY,
    subject    TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '',
    method     TEXT NOT NULL DEFAULT '',
    level      TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    created_at INTEGER,
    expires_at INTEGER
) STRICT;

CREATE INDEX login_history_subject ON login_history (subject, created_at);
CREATE INDEX login_history_session ON login_history (session_id);
CREATE INDEX login_history_expires_at ON login_history (expires_at);
