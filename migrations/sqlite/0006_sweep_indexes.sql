-- The sweep of expired sessions reads them by index, in batches: by absolute expiry, and
-- by last use for each kind of idle timeout (remembered sessions have their own).
CREATE INDEX auth_sessions_expires_at ON auth_sessions (expires_at_ms);
CREATE INDEX auth_sessions_idle ON auth_sessions (remembered, last_seen_ms);
