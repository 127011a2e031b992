//! The general statement: one stream's append of any number of events (none only checks the
//! expected version), reporting the version it read, and notifying inside its transaction
//! when asked. Appends of several streams, appends in a caller's transaction and the
//! resolution of a refusal run it. Its SQL text, its parameters and its row are all here.

use annals::backend;
use annals::{AppendResult, Position, StoreError, Version};
use tokio_postgres::{GenericClient, Statement};

use super::encode::{expected_matches, EncodedAppend};
use super::lock_order;
use crate::error::{classify, is_stale_version, AppendFailure};
use crate::rows::unsigned;

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
/// like a version that does not match, sends the append to the resolution of its refusal
/// ([`super::resolve`]).
///
/// The result row: the version read, whether it matched, and the last position written (NULL
/// when nothing was written).
pub(super) fn sql(s: &str) -> String {
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

/// What one run of the general statement did.
pub(super) enum Outcome {
    /// The events are written (or there were none and the expected version matched).
    Written(AppendResult),
    /// The expected version does not match the version read; nothing is written.
    Mismatch(Version),
    /// The version read was stale: an event at the next version is stored already (it
    /// committed after the statement's snapshot was taken). Nothing is written, and a
    /// transaction the statement ran in is aborted.
    Stale,
}

/// Runs the general statement for one stream; `channel` is the notification channel (`$9`)
/// when the append notifies inside its transaction.
pub(super) async fn run<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    channel: Option<&str>,
    e: &EncodedAppend<'_>,
) -> Result<Outcome, AppendFailure> {
    let stream = e.append.stream_id.as_str();
    let expected = e.expected.code();
    let row = client
        .query_one(
            statement,
            &[
                &stream,
                &expected,
                &e.expected_version,
                &e.ids,
                &e.types,
                &e.schema_versions,
                &e.payloads,
                &e.metadata,
                &channel,
            ],
        )
        .await;
    let row = match row {
        Ok(row) => row,
        Err(error) => {
            if is_stale_version(&error) {
                return Ok(Outcome::Stale);
            }
            return Err(classify(&e.append.stream_id, error));
        }
    };
    let current = Version(unsigned(row.try_get(0)?, "stream version")?);
    let matched: bool = row.try_get(1)?;
    let last_position: Option<i64> = row.try_get(2)?;
    if !matched {
        return Ok(Outcome::Mismatch(current));
    }
    let count = e.ids.len() as u64;
    let last_position = match last_position {
        Some(position) => Some(Position(unsigned(position, "position")?)),
        None if count == 0 => None,
        None => {
            return Err(AppendFailure::Error(StoreError::backend(
                "internal error: the append statement matched but wrote no event",
            )))
        }
    };
    Ok(Outcome::Written(backend::written(
        current,
        e.ids.len(),
        last_position,
    )))
}

/// Runs the general statement for every stream, in lock order. `None` when one of them wrote
/// nothing: the caller then rolls back and resolves the refusal.
pub(super) async fn run_each<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    channel: Option<&str>,
    encoded: &[EncodedAppend<'_>],
) -> Result<Option<Vec<AppendResult>>, AppendFailure> {
    let mut results = vec![None; encoded.len()];
    for index in lock_order(encoded) {
        match run(client, statement, channel, &encoded[index]).await? {
            Outcome::Written(result) => results[index] = Some(result),
            Outcome::Mismatch(_) | Outcome::Stale => return Ok(None),
        }
    }
    Ok(results.into_iter().collect())
}
