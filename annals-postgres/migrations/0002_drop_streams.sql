-- Migration 2: stream versions come from the events themselves.
-- `__SCHEMA__` is replaced by the validated, quoted schema name; nothing else is substituted.
--
-- An append now takes its stream's turn and reads the stream's version from the last event
-- through `stream_turn` below; the (stream_id, version) key stays the final arbiter of a
-- version. The `streams` table, one more row written and locked by every append, is no longer
-- read or written. Dropping it makes an older eventsource-postgres that still uses it fail
-- loudly instead of appending against a stale version.
DROP TABLE __SCHEMA__.streams;

-- Waits for the stream's turn (a transaction-level advisory lock, which costs no transaction
-- id), then returns the stream's version: its last event's, 0 for none.
--
-- VOLATILE and in PL/pgSQL so the version is read by a statement of its own: under READ
-- COMMITTED that statement takes a new snapshot after the lock is granted, so a writer that
-- waited for another one reads the version it committed. Read inside the append statement
-- itself, the version would come from the statement's snapshot, taken before the wait.
CREATE FUNCTION __SCHEMA__.stream_turn(stream text) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT AS $body$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(stream, 0));
    RETURN coalesce(
        (SELECT last.version FROM __SCHEMA__.events AS last
         WHERE last.stream_id = stream ORDER BY last.version DESC LIMIT 1),
        0);
END
$body$;
