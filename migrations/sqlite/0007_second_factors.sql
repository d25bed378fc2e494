-- Second factors.
--   auth_sessions.methods: how the session's user proved who they are (a bit set:
--     1 password, 2 magic link, 4 authenticator code, 8 recovery code, 16 passkey,
--     32 identity provider, 64 the application's own check). Existing sessions: password.
--   auth_factors: an account's authenticator app (secret sealed with the configured key),
--     recovery codes (SHA-256 of each) and passkeys (credential id unique across accounts).
--     counter is the replay guard: a code's time step, a recovery code's use, a passkey's
--     signature counter.
ALTER TABLE auth_sessions ADD COLUMN methods INTEGER NOT NULL DEFAULT 1;

CREATE TABLE auth_factors (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    credential_id TEXT    UNIQUE,
    name          TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    counter       INTEGER NOT NULL,
    confirmed     BOOLEAN NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_used_ms  INTEGER
);

CREATE INDEX auth_factors_user_kind ON auth_factors (user_id, kind);
