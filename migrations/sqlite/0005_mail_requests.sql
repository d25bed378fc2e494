-- "Mail me a link" requests (password reset, magic link, another confirmation link) wait
-- in the outbox beside messages, from before the request is acknowledged until the
-- delivery worker answers it: request names the link asked for (a token purpose) and
-- recipient the address it was asked for; sender and message are empty. NULL on a
-- message. The worker queues the link and deletes the request in one transaction.
ALTER TABLE auth_outbox ADD COLUMN request TEXT;
