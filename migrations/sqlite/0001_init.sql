-- Accounts. The seed's session_id column becomes the sessions table below, so a user may
-- hold several sessions; reset tokens are stored as SHA-256 hashes with an expiry.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    email               TEXT    NOT NULL UNIQUE,
    hashed_password     TEXT    NOT NULL,
    reset_token_hash    BLOB    UNIQUE,
    reset_expires_at_ms INTEGER,
    created_at_ms       INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash    BLOB    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_user_id ON sessions (user_id);

-- Fixed-window counters for login and reset-request throttling.
CREATE TABLE counters (
    key            TEXT    PRIMARY KEY,
    count          INTEGER NOT NULL,
    window_ends_ms INTEGER NOT NULL
) WITHOUT ROWID;
