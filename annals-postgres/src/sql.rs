//! The SQL text of the statements the store prepares, built once per store: reads,
//! snapshots, checkpoints and session locks here; the append's statements are in
//! [`crate::append`], each beside its parameters and its rows.
//!
//! The validated, quoted schema name is the only thing ever written into this text; every
//! value (stream ids, payloads, versions, checkpoints, the notification channel) is a bound
//! parameter.

use crate::append::AppendStatements;

/// The columns every event read selects, in the order [`crate::rows`] decodes them.
///
/// The converted transaction id gets a name of its own: unnamed, it would be called `tx_id`,
/// and an `ORDER BY tx_id` would sort by the converted value instead of using the index.
const EVENT_COLUMNS: &str =
    "event_id, stream_id, version, position, tx_id::text::int8 AS commit_id, \
     event_type, schema_version, payload, metadata, recorded_at";

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The append's statements.
    pub(crate) append: AppendStatements,
    pub(crate) stream_version: String,
    pub(crate) read_stream: String,
    pub(crate) replay_stream: String,
    pub(crate) read_all: String,
    pub(crate) visible_after: String,
    pub(crate) log_head: String,
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
    /// Releases the lock [`Statements::lock_session`] took.
    pub(crate) unlock_session: String,
}

impl Statements {
    /// The statements of `schema`, which must have been validated.
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        Statements {
            append: AppendStatements::new(&s),
            // A stream's version is its last event's; no row for a stream with no event.
            stream_version: format!(
                "SELECT version FROM {s}.events WHERE stream_id = $1::text \
                 ORDER BY version DESC LIMIT 1"
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
