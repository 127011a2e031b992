//! The resolution of a refused append: when a statement wrote nothing (the expected version
//! did not match the version it read, or, for an exact expected version, is not stored), met
//! the `(stream_id, version)` key (the stream is further along than it looked: a concurrent
//! append committed while it waited for the stream's turn) or found an event id stored
//! already, its work is rolled back and the append is decided again here, under locks, by the
//! core's rules ([`backend::decide`]), exactly as the memory store decides it: an exact retry
//! returns the stored result, any other reuse of an event id is
//! [`StoreError::DuplicateEventId`], and a version that does not match is a conflict with the
//! stream's actual version.
//!
//! Each attempt runs in a transaction that takes the streams' turns first, so its statements
//! read the versions their predecessors committed; it starts over when a concurrent writer
//! stores one of the event ids meanwhile.

use std::collections::HashMap;
use std::future::Future;

use annals::backend::{self, Decision, StoredEvent};
use annals::{AppendResult, Position, StoreError, StreamId, Version};
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

use super::encode::EncodedAppend;
use super::general::{self, Outcome};
use super::{lock_order, read_committed, take_turns, AppendStatements};
use crate::error::{AppendFailure, PgError};
use crate::rows::{stream_id, unsigned};

/// How often the resolution starts over after a concurrent writer stored one of its event ids.
const MAX_ATTEMPTS: u32 = 8;

/// The stored events among `$1`'s ids, as far as the idempotency check needs them: rows of
/// [`Stored`].
pub(super) fn events_by_id_sql(s: &str) -> String {
    format!(
        "SELECT event_id, stream_id, version, position FROM {s}.events \
         WHERE event_id = ANY($1::uuid[])"
    )
}

/// The versions of the streams `$1`, one row each, in the order given.
pub(super) fn stream_versions_sql(s: &str) -> String {
    format!(
        "SELECT coalesce((SELECT version FROM {s}.events AS last \
         WHERE last.stream_id = s.stream_id ORDER BY last.version DESC LIMIT 1), 0) \
         FROM unnest($1::text[]) WITH ORDINALITY AS s(stream_id, n) ORDER BY n"
    )
}

/// Something that starts a transaction: a connection, or a transaction (a savepoint).
pub(crate) trait Begin: Send {
    /// Starts a transaction (or a savepoint inside this transaction).
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send;
}

impl Begin for tokio_postgres::Client {
    /// A READ COMMITTED transaction whatever the server's default: the resolution reads
    /// versions after taking the streams' turns, which only a statement's own snapshot sees.
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send
    {
        read_committed(self)
    }
}

impl Begin for tokio_postgres::Transaction<'_> {
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send
    {
        self.transaction()
    }
}

/// How one attempt to resolve a refusal ended.
enum Resolution {
    /// Everything is decided and written: commit.
    Written(Vec<AppendResult>),
    /// The append is refused: roll back and return the error.
    Refused(StoreError),
    /// A concurrent writer stored one of the event ids meanwhile: roll back and start over.
    StartOver,
}

/// Decides a refused append in a transaction begun on `begin`, starting over when a concurrent
/// writer interferes. `statement` is the general statement, prepared on `begin`'s connection.
pub(super) async fn resolve_refusal<B: Begin>(
    begin: &mut B,
    statement: &Statement,
    sql: &AppendStatements,
    channel: Option<&str>,
    encoded: &[EncodedAppend<'_>],
) -> Result<Vec<AppendResult>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let tx = begin.begin().await.map_err(PgError::from)?;
        match attempt(&tx, statement, sql, channel, encoded).await {
            Ok(Resolution::Written(results)) => {
                tx.commit().await.map_err(PgError::from)?;
                return Ok(results);
            }
            Ok(Resolution::Refused(error)) => {
                tx.rollback().await.map_err(PgError::from)?;
                return Err(error);
            }
            Ok(Resolution::StartOver) => tx.rollback().await.map_err(PgError::from)?,
            Err(error) => {
                // The error is what matters; a failed rollback adds nothing to it.
                let _ = tx.rollback().await;
                return Err(error);
            }
        }
    }
    Err(StoreError::backend(format!(
        "gave up appending after {MAX_ATTEMPTS} attempts: concurrent writers kept storing the same event ids"
    )))
}

/// A stored event, as far as the idempotency check needs it.
struct Stored {
    event_id: Uuid,
    stream_id: StreamId,
    version: Version,
    position: Position,
}

/// One attempt, in a transaction: takes the streams' turns, reads what the rules of
/// [`backend::decide`] need (the stored event ids of the call, each stream's version) with
/// statements that see what the turns' earlier holders committed, decides each stream in the
/// order given, and writes the streams to write.
async fn attempt<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    sql: &AppendStatements,
    channel: Option<&str>,
    encoded: &[EncodedAppend<'_>],
) -> Result<Resolution, StoreError> {
    take_turns(client, sql, encoded).await?;
    let ids: Vec<Uuid> = encoded.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let streams: Vec<&str> = encoded
        .iter()
        .map(|e| e.append.stream_id.as_str())
        .collect();
    // Sent together: one round trip.
    let (stored_rows, version_rows) = futures_util::future::try_join(
        client.query(sql.events_by_id.as_str(), &[&ids]),
        client.query(sql.stream_versions.as_str(), &[&streams]),
    )
    .await
    .map_err(PgError::from)?;
    let mut stored = HashMap::with_capacity(stored_rows.len());
    for row in stored_rows {
        let event = Stored {
            event_id: row.try_get(0).map_err(PgError::from)?,
            stream_id: stream_id(row.try_get(1).map_err(PgError::from)?)?,
            version: Version(unsigned(row.try_get(2).map_err(PgError::from)?, "version")?),
            position: Position(unsigned(
                row.try_get(3).map_err(PgError::from)?,
                "position",
            )?),
        };
        stored.insert(event.event_id, event);
    }
    if version_rows.len() != encoded.len() {
        return Err(StoreError::backend(format!(
            "internal error: read {} stream versions for {} streams",
            version_rows.len(),
            encoded.len()
        )));
    }

    let mut results = Vec::with_capacity(encoded.len());
    for (e, row) in encoded.iter().zip(&version_rows) {
        let current = Version(unsigned(row.try_get(0).map_err(PgError::from)?, "version")?);
        let decision = backend::decide(e.append, current, |id| {
            stored.get(id).map(|event| StoredEvent {
                event_id: event.event_id,
                stream_id: &event.stream_id,
                version: event.version,
                position: event.position,
            })
        });
        match decision {
            Ok(Decision::Retry(result)) => results.push(Some(result)),
            Ok(Decision::Write { .. }) => results.push(None),
            Err(error) => return Ok(Resolution::Refused(error)),
        }
    }

    for index in lock_order(encoded) {
        if results[index].is_some() {
            continue;
        }
        let e = &encoded[index];
        match general::run(client, statement, channel, e).await {
            Ok(Outcome::Written(result)) => results[index] = Some(result),
            // The turns are held, so the version cannot have moved since it was read.
            Ok(Outcome::Mismatch(actual)) => return Ok(Resolution::Refused(conflict(e, actual))),
            // The turn is held and the store's own transactions are READ COMMITTED, so only
            // the snapshot of a caller's REPEATABLE READ or SERIALIZABLE transaction, taken
            // before the turn, reads a stale version; it would read the same one again.
            Ok(Outcome::Stale) => return Ok(Resolution::Refused(stale_snapshot(e))),
            Err(AppendFailure::EventIdStored) => return Ok(Resolution::StartOver),
            Err(AppendFailure::Error(error)) => return Ok(Resolution::Refused(error)),
        }
    }
    Ok(Resolution::Written(results.into_iter().flatten().collect()))
}

/// The refusal of an append whose transaction's snapshot predates the stream's last append.
fn stale_snapshot(e: &EncodedAppend<'_>) -> StoreError {
    StoreError::backend(format!(
        "cannot append to stream {}: the transaction's snapshot predates the stream's last \
         append (REPEATABLE READ or SERIALIZABLE isolation); retry the whole transaction",
        e.append.stream_id
    ))
}

/// A version conflict: the stream is at `actual`, not where the append expected it.
fn conflict(e: &EncodedAppend<'_>, actual: Version) -> StoreError {
    StoreError::Conflict {
        stream: e.append.stream_id.clone(),
        expected: e.append.expected,
        actual,
    }
}
