-- Identities at sign-in providers (OpenID Connect, OAuth2) linked to accounts: one
-- (provider, subject) links to at most one account. email is what the provider said when
-- the link was made, for the account's owner to recognise it.
CREATE TABLE auth_identities (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    email         TEXT,
    created_at_ms BIGINT  NOT NULL,
    UNIQUE (provider, subject)
);

CREATE INDEX auth_identities_user ON auth_identities (user_id);
