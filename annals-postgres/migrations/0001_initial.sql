-- Migration 1: the event log, stream versions, snapshots, checkpoints and the append-only rule.
-- `__SCHEMA__` is replaced by the validated, quoted schema name; nothing else is substituted.

-- One row per event. `position` orders events in write order; `tx_id` is the writing
-- transaction, and readers of the global log order by (tx_id, position) and only read
-- rows whose transaction is older than every transaction still running, so no reader
-- skips an event that commits late.
CREATE TABLE __SCHEMA__.events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text NOT NULL,
    version        bigint NOT NULL CHECK (version > 0),
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    schema_version integer NOT NULL CHECK (schema_version >= 0),
    payload        jsonb NOT NULL,
    metadata       jsonb NOT NULL DEFAULT '{}',
    -- clock_timestamp(), not now(): taken after the stream's row lock is held, so it never
    -- decreases along a stream.
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_tx_id_position_idx ON __SCHEMA__.events (tx_id, position);

-- The current version of each stream: the row an append locks to check its expected version.
CREATE TABLE __SCHEMA__.streams (
    stream_id text PRIMARY KEY,
    version   bigint NOT NULL CHECK (version >= 0)
);

-- The latest snapshot of each stream.
CREATE TABLE __SCHEMA__.snapshots (
    stream_id        text PRIMARY KEY,
    version          bigint NOT NULL CHECK (version >= 0),
    snapshot_version integer NOT NULL CHECK (snapshot_version >= 0),
    state            jsonb NOT NULL,
    taken_at         timestamptz NOT NULL
);

-- Where each named projection or subscription is in the global log.
CREATE TABLE __SCHEMA__.checkpoints (
    name       text PRIMARY KEY,
    commit     bigint NOT NULL,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The events table is append-only. A statement-level trigger fires even when no row matches,
-- so every UPDATE, DELETE and TRUNCATE of the table fails.
CREATE FUNCTION __SCHEMA__.events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'eventsource: the events table %.% is append-only: % is not allowed',
        TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$body$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON __SCHEMA__.events
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.events_are_append_only();
