-- Migration 5: the version read of an append keeps its index plan.
-- `__SCHEMA__` is replaced by the validated, quoted schema name; nothing else is substituted.
--
-- PL/pgSQL caches the plan of `stream_turn`'s version read per connection. A plan made while
-- the events table was small (a new store, or one analyzed while empty) scans the whole table,
-- and it is kept as the table grows until the table is analyzed again: appends to a new store
-- got slower with every event until autovacuum came by. With sequential and bitmap scans
-- ruled out for the function's own statements, the read is always a walk down the
-- `(stream_id, version)` index, whatever the table's size or statistics.
ALTER FUNCTION __SCHEMA__.stream_turn(text)
    SET enable_seqscan = off
    SET enable_bitmapscan = off;
