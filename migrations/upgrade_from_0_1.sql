-- Moves a tower-auth 0.1 database (tables users, sessions, counters, recorded in
-- _sqlx_migrations) into the auth_ tables, right after they are created, in the same
-- transaction. One text for SQLite and PostgreSQL.
INSERT INTO auth_users (id, email, password_hash, created_at_ms)
    SELECT id, email, hashed_password, created_at_ms FROM users;

INSERT INTO auth_sessions (token_hash, user_id, created_at_ms, last_seen_ms, expires_at_ms)
    SELECT token_hash, user_id, created_at_ms, last_seen_ms, expires_at_ms FROM sessions;

-- 0.1 kept one pending reset token per user, on the user's row. It did not record when the
-- token was issued: the account's creation time stands in.
INSERT INTO auth_tokens
        (token_hash, user_id, purpose, sent_to, account_email, created_at_ms, expires_at_ms)
    SELECT reset_token_hash, id, 'reset_password', email, email, created_at_ms,
           reset_expires_at_ms
    FROM users
    WHERE reset_token_hash IS NOT NULL AND reset_expires_at_ms IS NOT NULL;

-- Per-client login counters keep their keys; per-account ones are now keyed by a hash of
-- the email, so those windows start over.
INSERT INTO auth_counters (key, count, window_ends_ms)
    SELECT key, count, window_ends_ms FROM counters WHERE key LIKE 'login:ip:%';

DROP TABLE sessions;
DROP TABLE counters;
DROP TABLE users;
