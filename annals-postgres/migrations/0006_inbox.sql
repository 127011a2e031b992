-- Migration 6: the inbox of consumers that apply events from elsewhere (a message bus) exactly
-- once. `__SCHEMA__` is replaced by the validated, quoted schema name; nothing else is
-- substituted.
--
-- A consumer inserts `(consumer, event_id)` in the transaction that applies the event: the
-- row commits with the event's effects or not at all, so a redelivered event finds it and is
-- not applied again.
CREATE TABLE __SCHEMA__.inbox (
    consumer   text NOT NULL,
    event_id   uuid NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
