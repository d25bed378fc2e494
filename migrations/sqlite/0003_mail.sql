-- Email confirmation and the durable outbox.
--   email_confirmed_at_ms: when the owner proved the address reaches them; NULL while
--     unconfirmed. Accounts made before confirmation existed count as confirmed (they
--     logged in without it until now), so an upgrade locks nobody out.
ALTER TABLE auth_users ADD COLUMN email_confirmed_at_ms INTEGER;
UPDATE auth_users SET email_confirmed_at_ms = created_at_ms;

-- Mail waiting to be delivered, written in the same transaction as the token it carries.
-- A worker claims due rows (next_attempt_ms <= now) by moving next_attempt_ms past its
-- lease, deletes a row once the mail server accepted it, and reschedules it on failure.
-- message holds the whole RFC 5322 message, link included: kept only until delivered or
-- expired (expires_at_ms, the link's own expiry), then swept.
CREATE TABLE auth_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sender          TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    message         BLOB    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    expires_at_ms   INTEGER NOT NULL
);

CREATE INDEX auth_outbox_due ON auth_outbox (next_attempt_ms);
CREATE INDEX auth_outbox_expires_at ON auth_outbox (expires_at_ms);
