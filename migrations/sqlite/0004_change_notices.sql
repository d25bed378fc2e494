-- Change notices for the session caches of other instances (PostgreSQL's migration 4
-- adds triggers that NOTIFY them). A SQLite file belongs to one process, whose own writes
-- reach its caches directly: nothing to add here. Kept so that both backends count their
-- migrations alike.
SELECT 1;
