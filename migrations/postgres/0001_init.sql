-- Accounts. The seed's session_id column becomes the sessions table below, so a user may
-- hold several sessions; reset tokens are stored as SHA-256 hashes with an expiry.
CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    email               TEXT      NOT NULL UNIQUE,
    hashed_password     TEXT      NOT NULL,
    reset_token_hash    BYTEA     UNIQUE,
    reset_expires_at_ms BIGINT,
    created_at_ms       BIGINT    NOT NULL
);

CREATE TABLE sessions (
    token_hash    BYTEA  PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE INDEX sessions_user_id ON sessions (user_id);

-- Fixed-window counters for login and reset-request throttling.
CREATE TABLE counters (
    key            TEXT   PRIMARY KEY,
    count          BIGINT NOT NULL,
    window_ends_ms BIGINT NOT NULL
);
