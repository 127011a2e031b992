-- Migration 2: stream versions come from the events themselves.
-- `__SCHEMA__` is replaced by the validated, quoted schema name; nothing else is substituted.
--
-- An append now reads its stream's version from the last event, through the
-- (stream_id, version) key, under the stream's advisory lock; that key is the final arbiter
-- of a version. The `streams` table, one more row written and locked by every append, is no
-- longer read or written. Dropping it makes an older eventsource-postgres that still uses it
-- fail loudly instead of appending against a stale version.
DROP TABLE __SCHEMA__.streams;
