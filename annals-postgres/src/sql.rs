//! The SQL text of every statement the store prepares.
//!
//! The validated, quoted schema name is the only thing ever written into this text; every
//! value (stream ids, payloads, versions, checkpoints, the notification channel) is a bound
//! parameter.

/// The columns every event read selects, in the order [`crate::rows`] decodes them.
///
/// The converted transaction id gets a name of its own: unnamed, it would be called `tx_id`,
/// and an `ORDER BY tx_id` would sort by the converted value instead of using the index.
const EVENT_COLUMNS: &str =
    "event_id, stream_id, version, position, tx_id::text::int8 AS commit_id, \
     event_type, schema_version, payload, metadata, recorded_at";

/// The codes of [`annals::ExpectedVersion`]'s forms, as the append statement takes them.
pub(crate) const EXPECT_ANY: i32 = 0;
pub(crate) const EXPECT_NO_STREAM: i32 = 1;
pub(crate) const EXPECT_STREAM_EXISTS: i32 = 2;
pub(crate) const EXPECT_EXACT: i32 = 3;

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) append: String,
    /// The lean appends ([`lean_append`]) of one stream in its own transaction, at least one
    /// event, notifications after commit: the common case. Indexed by [`Numbering`], then by
    /// whether the append has exactly one event.
    pub(crate) lean: [[String; 2]; 2],
    pub(crate) stream_version: String,
    /// The versions of several streams, in the order given.
    pub(crate) stream_versions: String,
    pub(crate) events_by_id: String,
    pub(crate) read_stream: String,
    pub(crate) replay_stream: String,
    pub(crate) read_all: String,
    pub(crate) visible_after: String,
    pub(crate) log_head: String,
    /// Whether the current transaction may append without a reader skipping its events: it
    /// has no transaction id yet, or it already holds readers back ([`horizon`]).
    pub(crate) may_append_in: String,
    pub(crate) read_event: String,
    pub(crate) save_snapshot: String,
    pub(crate) load_snapshot: String,
    pub(crate) save_checkpoint: String,
    /// Saves a checkpoint where none is stored; no row when one is.
    pub(crate) save_first_checkpoint: String,
    /// Saves a checkpoint over the one given; no row when another is stored.
    pub(crate) save_checkpoint_over: String,
    pub(crate) load_checkpoint: String,
    /// Waits for a session-level advisory lock keyed by the hash of `$1` with seed `$2`:
    /// a stream's turn held across statements (seed 0, the key `stream_turn` takes), or a
    /// projection's lease (seed 1).
    pub(crate) lock_session: String,
    /// Releases the lock [`Sql::lock_session`] took.
    pub(crate) unlock_session: String,
    /// The advisory locks of several streams, taken in the given order before a multi-stream
    /// append writes anything.
    pub(crate) lock_streams: String,
}

impl Sql {
    /// The statements of `schema`, which must have been validated.
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        Sql {
            append: append(&s),
            lean: [Numbering::Read, Numbering::Expected]
                .map(|numbering| [false, true].map(|one| lean_append(&s, numbering, one))),
            // A stream's version is its last event's; no row for a stream with no event.
            stream_version: format!(
                "SELECT version FROM {s}.events WHERE stream_id = $1::text \
                 ORDER BY version DESC LIMIT 1"
            ),
            stream_versions: format!(
                "SELECT coalesce((SELECT version FROM {s}.events AS last \
                 WHERE last.stream_id = s.stream_id ORDER BY last.version DESC LIMIT 1), 0) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS s(stream_id, n) ORDER BY n"
            ),
            events_by_id: format!(
                "SELECT event_id, stream_id, version, position FROM {s}.events \
                 WHERE event_id = ANY($1::uuid[])"
            ),
            read_stream: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events \
                 WHERE stream_id = $1::text AND version >= $2::int8 \
                 ORDER BY version LIMIT $3::int8"
            ),
            // What a replay needs, in the order [`crate::rows::replayed_event`] decodes it.
            replay_stream: format!(
                "SELECT version, event_type, schema_version, payload, recorded_at \
                 FROM {s}.events WHERE stream_id = $1::text AND version >= $2::int8 \
                 ORDER BY version LIMIT $3::int8"
            ),
            // The page and whether committed events wait behind it, from one snapshot. The
            // horizon is a scalar subquery, so it bounds the index scan; each part walks the
            // `(tx_id, position)` key in order from where it starts and stops at its limit.
            // The held-back probe starts at the later of the checkpoint and the horizon, in
            // one row comparison: with two lower bounds the index scan would start at the
            // checkpoint and walk every visible event after it. (`EXISTS` would drop the
            // `ORDER BY ... LIMIT 1` and let a generic plan scan the whole table.)
            read_all: format!(
                "WITH {horizon}, \
                 page AS (SELECT {EVENT_COLUMNS} FROM {s}.events \
                   WHERE events.tx_id < (SELECT tx FROM horizon) \
                     AND (events.tx_id, events.position) > ($1::text::xid8, $2::int8) \
                   ORDER BY events.tx_id, events.position LIMIT $3::int8), \
                 held AS (SELECT coalesce((SELECT true FROM {s}.events \
                   WHERE (events.tx_id, events.position) > \
                     (greatest($1::text::xid8, (SELECT tx FROM horizon)), \
                      CASE WHEN (SELECT tx FROM horizon) > $1::text::xid8 THEN 0 ELSE $2::int8 END) \
                   ORDER BY events.tx_id, events.position LIMIT 1), false) AS back) \
                 SELECT page.*, held.back FROM held LEFT JOIN page ON true \
                 ORDER BY page.commit_id, page.position",
                horizon = horizon(&s),
            ),
            // Whether the first event after the checkpoint is below the horizon: events
            // after that one sort after it, so none is visible when it is not.
            visible_after: format!(
                "WITH {horizon} SELECT coalesce((SELECT first.tx_id < horizon.tx FROM \
                   (SELECT tx_id FROM {s}.events \
                    WHERE (tx_id, position) > ($1::text::xid8, $2::int8) \
                    ORDER BY tx_id, position LIMIT 1) AS first), false) \
                 FROM horizon",
                horizon = horizon(&s),
            ),
            may_append_in: format!(
                "SELECT pg_current_xact_id_if_assigned() IS NULL OR EXISTS (SELECT 1 FROM pg_locks \
                 WHERE pid = pg_backend_pid() AND locktype = 'relation' \
                   AND relation IN ('{s}.events'::regclass, '{s}.checkpoints'::regclass) \
                   AND mode NOT IN ('AccessShareLock', 'RowShareLock'))"
            ),
            log_head: format!(
                "SELECT tx_id::text::int8 AS commit_id, position FROM {s}.events \
                 ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
            ),
            read_event: format!("SELECT {EVENT_COLUMNS} FROM {s}.events WHERE event_id = $1::uuid"),
            // An older snapshot never replaces a newer one.
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots AS old (stream_id, version, snapshot_version, state, taken_at) \
                 VALUES ($1::text, $2::int8, $3::int4, $4::text::json, $5::timestamptz) \
                 ON CONFLICT (stream_id) DO UPDATE \
                 SET version = excluded.version, snapshot_version = excluded.snapshot_version, \
                     state = excluded.state, taken_at = excluded.taken_at \
                 WHERE old.version <= excluded.version"
            ),
            load_snapshot: format!(
                "SELECT version, snapshot_version, state, taken_at FROM {s}.snapshots \
                 WHERE stream_id = $1::text"
            ),
            save_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (name, commit, position) VALUES ($1::text, $2::int8, $3::int8) \
                 ON CONFLICT (name) DO UPDATE \
                 SET commit = excluded.commit, position = excluded.position, updated_at = now()"
            ),
            save_first_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (name, commit, position) VALUES ($1::text, $2::int8, $3::int8) \
                 ON CONFLICT (name) DO NOTHING RETURNING 1"
            ),
            save_checkpoint_over: format!(
                "UPDATE {s}.checkpoints SET commit = $2::int8, position = $3::int8, updated_at = now() \
                 WHERE name = $1::text AND commit = $4::int8 AND position = $5::int8 RETURNING 1"
            ),
            lock_session: "SELECT pg_advisory_lock(hashtextextended($1::text, $2::int8))".to_owned(),
            unlock_session: "SELECT pg_advisory_unlock(hashtextextended($1::text, $2::int8))"
                .to_owned(),
            lock_streams: format!(
                "SELECT {} FROM unnest($1::text[]) WITH ORDINALITY AS s(stream_id, n) ORDER BY n",
                take_turn("stream_id")
            ),
            load_checkpoint: format!(
                "SELECT commit, position FROM {s}.checkpoints WHERE name = $1::text"
            ),
        }
    }
}

/// The CTE `horizon(tx)`: the transaction id below which every event is visible and no
/// event can still commit, for the statement's snapshot.
///
/// Only transactions that may write events hold it back. Those are the ones the snapshot
/// sees running (`pg_snapshot_xip`) that hold a lock on this events table stronger than a
/// reader's (an `INSERT` takes `RowExclusiveLock` before the transaction gets its id, and
/// keeps it to the end) or on the checkpoints table (a projection batch, which saves its
/// checkpoint first and may then append events through its transaction), and those that
/// ended after the snapshot was taken, whose events the snapshot cannot see. Any other running transaction (a write to another table or another
/// database, however long) is passed over. With none, the horizon is the snapshot's `xmax`,
/// the next transaction id: a writer that gets its id later sorts after every visible event.
///
/// The locks are read before any running transaction's status. A writer releases its locks
/// only when it ends, so one the lock table no longer shows has ended by the time its status
/// is read, and counts as ended. (Read the other way round, a writer could be seen running,
/// then commit before the locks were read, and be passed over while its events stayed
/// invisible to the snapshot: a reader would skip them.) A transaction that had its id at the
/// snapshot and no writer's lock when the locks were read never writes events: `append_in`
/// refuses such a transaction.
///
/// `pg_locks` reports 32-bit transaction ids, compared with the low 32 bits of the snapshot's
/// 64-bit ones; it is only read when some transaction is running (the `CASE`).
fn horizon(s: &str) -> String {
    format!(
        "snapshot AS MATERIALIZED (SELECT pg_current_snapshot() AS snap), \
         writers AS MATERIALIZED ( \
           SELECT held.transactionid::text::int8 AS xid32 \
           FROM pg_locks AS l JOIN pg_locks AS held ON held.virtualtransaction = l.virtualtransaction \
           WHERE l.locktype = 'relation' \
             AND l.relation IN ('{s}.events'::regclass, '{s}.checkpoints'::regclass) \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.mode NOT IN ('AccessShareLock', 'RowShareLock') \
             AND held.locktype = 'transactionid' AND held.mode = 'ExclusiveLock' AND held.granted), \
         writer_ids AS MATERIALIZED ( \
           SELECT coalesce(array_agg(xid32), '{{}}'::int8[]) AS ids FROM writers), \
         horizon AS MATERIALIZED ( \
           SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(snapshot.snap)) \
             THEN pg_snapshot_xmax(snapshot.snap) \
             ELSE coalesce( \
               (SELECT x FROM pg_snapshot_xip(snapshot.snap) AS x, writer_ids \
                WHERE (x::text::int8 % 4294967296) = ANY (writer_ids.ids) \
                   OR pg_xact_status(x) IS DISTINCT FROM 'in progress' \
                ORDER BY x LIMIT 1), \
               pg_snapshot_xmax(snapshot.snap)) \
           END AS tx \
           FROM snapshot)"
    )
}

/// Where a lean append numbers its events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Numbering {
    /// From the version the stream's turn reads (`stream_turn`, migration 2): any expected
    /// version.
    Read = 0,
    /// From the expected version itself (`$3`): an exact expected version or no stream. The
    /// statement reads no version; it only checks that the expected one is stored.
    Expected = 1,
}

impl Numbering {
    /// The lean statement that serves an append expecting `kind` (one of the `EXPECT_` codes).
    pub(crate) fn of(kind: i32) -> Self {
        match kind {
            EXPECT_EXACT | EXPECT_NO_STREAM => Numbering::Expected,
            _ => Numbering::Read,
        }
    }
}

/// The common append, leaner than [`append`]: one `INSERT` of the events, numbered as
/// `numbering` says, after the stream's turn is taken. With `one`, it returns the event's row
/// (version, position), or none when the expected version does not match; with more events,
/// one summary row (the count written, the first and last version, the last position), with
/// a count of 0 when the expected version does not match. On no match the caller takes the
/// slow path, which runs [`append`] to learn why. It needs at least one event (no
/// rows would be ambiguous) and sends no notification. The parameters are [`append`]'s first
/// eight; with `one`, each event column is a plain value instead of a one-element array, so
/// neither side builds or takes apart an array.
///
/// [`Numbering::Read`] numbers from the version `stream_turn` reads after the wait, and keeps
/// the rows only when it matches the expected version.
///
/// [`Numbering::Expected`] takes the turn (the same advisory lock, so transaction ids still
/// follow each stream's version order) and numbers from the expected version `$3` (0 for no
/// stream), with no version read: it writes only when an event at version `$3` is stored (or
/// `$3` is 0), and the `(stream_id, version)` key refuses the first event when the stream is
/// further along. The check and the key together admit exactly the appends whose expected
/// version is the stream's. Under a conflict it falls to the slow path more often than
/// [`Numbering::Read`] (a writer that waited for the turn checks with a snapshot from before
/// the wait), but an uncontended append, nearly every one, costs an index probe instead of a
/// PL/pgSQL call and a version read: 18% more appends per second with pgbench (one client).
fn lean_append(s: &str, numbering: Numbering, one: bool) -> String {
    let (turn, base, check) = match numbering {
        Numbering::Read => (
            format!("current AS MATERIALIZED (SELECT {s}.stream_turn($1::text) AS version)"),
            "current.version",
            expected_matches("current.version"),
        ),
        Numbering::Expected => (
            format!("current AS MATERIALIZED (SELECT {})", take_turn("$1::text")),
            "$3::int8",
            format!(
                "$2::int4 IN ({EXPECT_EXACT}, {EXPECT_NO_STREAM}) AND ($3::int8 = 0 OR EXISTS \
                 (SELECT 1 FROM {s}.events AS at WHERE at.stream_id = $1::text \
                  AND at.version = $3::int8))"
            ),
        ),
    };
    let (columns, events, order) = if one {
        (
            format!("{base} + 1, $4::uuid, $5::text, $6::int4, $7::text::json, $8::text::json"),
            "",
            "",
        )
    } else {
        (
            format!(
                "{base} + e.ord, e.event_id, e.event_type, e.schema_version, \
                 e.payload::json, e.metadata::json"
            ),
            ", unnest($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) \
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)",
            "ORDER BY e.ord",
        )
    };
    let insert = format!(
        "INSERT INTO {s}.events \
             (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
         SELECT $1::text, {columns} FROM current{events} WHERE {check} {order} \
         RETURNING version, position"
    );
    if one {
        format!("WITH {turn} {insert}")
    } else {
        // One summary row instead of a row per event: a hundred rows cost the server more
        // to send, and the client more to take apart, than the rest of its side of the append.
        format!(
            "WITH {turn}, written AS ({insert}) \
             SELECT count(*), min(version), max(version), max(position) FROM written"
        )
    }
}

/// Takes the turn of the stream whose id is the SQL expression `stream`: the transaction-level
/// advisory lock keyed by the id's hash, the one migration 2's `stream_turn` takes too.
fn take_turn(stream: &str) -> String {
    format!("pg_advisory_xact_lock(hashtextextended({stream}, 0))")
}

/// Whether `version` matches the expected version: `$2` is the form's code, `$3` the exact
/// version.
fn expected_matches(version: &str) -> String {
    format!(
        "CASE $2::int4 \
             WHEN {EXPECT_NO_STREAM} THEN {version} = 0 \
             WHEN {EXPECT_STREAM_EXISTS} THEN {version} > 0 \
             WHEN {EXPECT_EXACT} THEN {version} = $3::int8 \
             ELSE true \
         END"
    )
}

/// The append of one stream, in one statement (one round trip):
///
/// 1. `current` calls the schema's `stream_turn` function (migration 2), which waits for the
///    stream's advisory lock and then reads the stream's version (its last event's, 0 for none)
///    in a statement of its own, so with a snapshot taken after the wait: a writer that queued
///    behind another one reads the version that one committed. Taking the lock costs no
///    transaction id, so a writer that waited for another gets its id only after that one
///    committed: transaction ids, and so the global log's `(tx_id, position)` order, follow
///    each stream's version order. Every append of a stream takes this lock, so appends to one
///    stream queue, and appends to different streams never wait for each other.
/// 2. `ok` holds that version only if it matches the expected version (`$2` is the form's
///    code, `$3` the exact version);
/// 3. `inserted` writes the events from the parameter arrays, numbered after the version read;
/// 4. `notified` sends a notification on the schema's channel, delivered at commit, when `$9`
///    names the channel ([`Notifications::InTransaction`](crate::Notifications)); with `NULL`
///    the append takes no notification lock.
///
/// The `(stream_id, version)` key stays the final arbiter: should the version read ever be
/// stale (in a caller's REPEATABLE READ transaction, whose snapshot predates the wait), the
/// first event collides with a stored one and the statement fails with nothing written; that,
/// like a version that does not match, sends the append to the slow path ([`crate::append`]).
///
/// The result row: the version read, whether it matched, and the last position written (NULL
/// when nothing was written).
fn append(s: &str) -> String {
    let matches = expected_matches("version");
    format!(
        "WITH current AS MATERIALIZED (
    SELECT {s}.stream_turn($1::text) AS version
), ok AS MATERIALIZED (
    SELECT version FROM current WHERE {matches}
), inserted AS (
    INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
    SELECT $1::text, ok.version + e.ord,
           e.event_id, e.event_type, e.schema_version, e.payload::json, e.metadata::json
    FROM ok,
         unnest($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[])
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)
    ORDER BY e.ord
    RETURNING position
), notified AS (
    SELECT pg_notify($9::text, $1::text) FROM (SELECT 1 FROM inserted LIMIT 1) AS written
    WHERE $9::text IS NOT NULL
)
SELECT current.version AS current_version,
       EXISTS (SELECT 1 FROM ok) AS matched,
       (SELECT max(position) FROM inserted) AS last_position,
       EXISTS (SELECT 1 FROM notified) AS notified
FROM current"
    )
}
