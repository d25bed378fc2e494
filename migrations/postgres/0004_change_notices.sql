-- Change notices for the session caches of other instances: in the transaction of every
-- change that could make a cached session lookup wrong, a NOTIFY on tower_auth_changes
-- whose payload is the user's id. Triggers rather than application code, so a change made
-- any way at all (an admin's SQL included) is announced, atomically with the change.
--   auth_sessions: a deleted session (logout, "end all others", cascades from a deleted
--     user) or a changed authentication time (reauthentication); not the last-seen time.
--   auth_users: a deleted user, a changed email or email confirmation; the password hash
--     is not in any cached lookup, and a password change ends sessions itself.
-- The sweep of expired sessions sets tower_auth.quiet for its transaction: every instance
-- refuses an expired session on its own, and a sweep would otherwise announce thousands.
-- NOTIFY folds identical payloads within a transaction, so ending many sessions of one
-- user announces that user once.
CREATE FUNCTION auth_announce_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('tower_auth.quiet', true), '') <> 'on' THEN
        PERFORM pg_notify('tower_auth_changes', OLD.user_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION auth_announce_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tower_auth_changes', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER auth_sessions_deleted AFTER DELETE ON auth_sessions
    FOR EACH ROW EXECUTE FUNCTION auth_announce_session_change();

CREATE TRIGGER auth_sessions_changed AFTER UPDATE ON auth_sessions
    FOR EACH ROW
    WHEN (OLD.authenticated_at_ms IS DISTINCT FROM NEW.authenticated_at_ms
          OR OLD.expires_at_ms IS DISTINCT FROM NEW.expires_at_ms
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION auth_announce_session_change();

CREATE TRIGGER auth_users_deleted AFTER DELETE ON auth_users
    FOR EACH ROW EXECUTE FUNCTION auth_announce_user_change();

CREATE TRIGGER auth_users_changed AFTER UPDATE ON auth_users
    FOR EACH ROW
    WHEN (OLD.email IS DISTINCT FROM NEW.email
          OR OLD.email_confirmed_at_ms IS DISTINCT FROM NEW.email_confirmed_at_ms
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION auth_announce_user_change();
