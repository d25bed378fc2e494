-- tower-auth's tables. Every name starts with auth_, so they sit beside the host
-- application's own tables (its users, its sqlx migrations) without either side noticing.
-- Applied by tower-auth's own runner, recorded in auth_schema_migrations.

-- Accounts.
CREATE TABLE auth_users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL
);

-- Sessions: looked up by token hash on every authenticated request.
CREATE TABLE auth_sessions (
    token_hash    BYTEA   PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    created_at_ms BIGINT  NOT NULL,
    last_seen_ms  BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);

CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

-- Every secret sent to a person (reset, confirmation, magic link, email change): valid
-- until expires_at_ms, while the account's email is still account_email.
CREATE TABLE auth_tokens (
    token_hash    BYTEA   PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    purpose       TEXT    NOT NULL,
    sent_to       TEXT    NOT NULL,
    account_email TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);

CREATE INDEX auth_tokens_user_purpose ON auth_tokens (user_id, purpose);
CREATE INDEX auth_tokens_expires_at ON auth_tokens (expires_at_ms);

-- Fixed-window throttling counters; keys have a bounded size whatever the input.
CREATE TABLE auth_counters (
    key            TEXT    PRIMARY KEY,
    count          BIGINT  NOT NULL,
    window_ends_ms BIGINT  NOT NULL
);

CREATE INDEX auth_counters_window_ends ON auth_counters (window_ends_ms);
