-- What a user sees of their sessions, and what sensitive actions check.
--   authenticated_at_ms: when the user last proved who they are in this session (login or
--     reauthentication); "sudo mode" needs it recent. Existing sessions: their creation.
--   remembered: started with "remember me" (persistent cookie, longer lifetime).
--   user_agent: a short description of the client ("Firefox 133 on Linux").
--   client_ip: the client's address at login, when the configuration records it.
ALTER TABLE auth_sessions ADD COLUMN authenticated_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE auth_sessions ADD COLUMN remembered BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE auth_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE auth_sessions ADD COLUMN client_ip TEXT;
UPDATE auth_sessions SET authenticated_at_ms = created_at_ms;
