//! Appends: a fast path of one statement per stream, and a slow path that tells an exact
//! retry, a reused event id and a version conflict apart, exactly as the memory store does.
//!
//! The fast path runs the append statement ([`crate::sql`]) for each stream: in the common
//! case that is the whole append, one round trip for one stream. When a statement writes
//! nothing (the expected version does not match the version it read, or, for an exact expected
//! version, is not stored), fails on the `(stream_id, version)` key (the stream is further
//! along than it looked: a concurrent append committed while it waited for the stream's turn)
//! or finds an event id stored already, the work is rolled back
//! and the slow path decides, in a transaction: it takes the streams' turns first, so its
//! statements read the versions their predecessors committed, looks the event ids up (an
//! exact retry returns the stored result, any other reuse is
//! [`StoreError::DuplicateEventId`]), then runs the statements again and reports a conflict
//! with the stream's actual version.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;

use annals::backend::{self, Decision, StoredEvent};
use annals::{AppendResult, Position, StoreError, StreamAppend, StreamId, Version};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

use crate::error::PgError;
use crate::rows::{signed, stream_id, unsigned};
use crate::sql::{self, Numbering, Sql};

/// How often the slow path starts over after a concurrent writer stored one of its event ids.
const MAX_ATTEMPTS: u32 = 8;

/// One stream's append, encoded as the statement's parameters.
pub(crate) struct Encoded<'a> {
    append: &'a StreamAppend,
    kind: i32,
    exact: i64,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    payloads: Vec<&'a str>,
    /// Empty metadata, nearly all of it, is the same `{}` for every event.
    metadata: Vec<Cow<'static, str>>,
}

impl Encoded<'_> {
    /// Whether the append has events to write.
    pub(crate) fn writes(&self) -> bool {
        !self.ids.is_empty()
    }

    /// Whether the append writes exactly one event.
    pub(crate) fn is_one(&self) -> bool {
        self.ids.len() == 1
    }

    /// Which lean statement serves the append, by its expected version. An expected version
    /// too large to number the events from (no stream gets there) goes to the statement that
    /// reads the version, and so to a conflict, instead of an integer overflow.
    pub(crate) fn numbering(&self) -> Numbering {
        let count = i64::try_from(self.ids.len()).unwrap_or(i64::MAX);
        if self.exact.checked_add(count).is_none() {
            return Numbering::Read;
        }
        Numbering::of(self.kind)
    }
}

/// Checks a call by the rules that need nothing stored ([`backend::check_call`]: a stream
/// named twice, an event id given twice) and encodes each stream's events.
pub(crate) fn encode(appends: &[StreamAppend]) -> Result<Vec<Encoded<'_>>, StoreError> {
    backend::check_call(appends)?;
    appends
        .iter()
        .map(|append| {
            let rejected = |reason: String| StoreError::Rejected {
                stream: append.stream_id.clone(),
                reason,
            };
            let (kind, exact) = match append.expected {
                annals::ExpectedVersion::Any => (sql::EXPECT_ANY, 0),
                annals::ExpectedVersion::NoStream => (sql::EXPECT_NO_STREAM, 0),
                annals::ExpectedVersion::StreamExists => (sql::EXPECT_STREAM_EXISTS, 0),
                annals::ExpectedVersion::Exact(v) => (sql::EXPECT_EXACT, signed(v.0)),
            };
            let count = append.events.len();
            let mut encoded = Encoded {
                append,
                kind,
                exact,
                ids: Vec::with_capacity(count),
                types: Vec::with_capacity(count),
                schema_versions: Vec::with_capacity(count),
                payloads: Vec::with_capacity(count),
                metadata: Vec::with_capacity(count),
            };
            for event in &append.events {
                let schema_version = i32::try_from(event.schema_version).map_err(|_| {
                    rejected(format!(
                        "schema version {} of event {} is larger than PostgreSQL's integer",
                        event.schema_version, event.event_id
                    ))
                })?;
                let metadata = if event.metadata.is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    Cow::Owned(serde_json::to_string(&event.metadata).map_err(|e| {
                        rejected(format!(
                            "cannot encode the metadata of event {}: {e}",
                            event.event_id
                        ))
                    })?)
                };
                encoded.ids.push(event.event_id);
                encoded.types.push(&event.event_type);
                encoded.schema_versions.push(schema_version);
                encoded.payloads.push(event.payload.as_str());
                encoded.metadata.push(metadata);
            }
            Ok(encoded)
        })
        .collect()
}

/// What one run of the append statement did.
enum Ran {
    /// The events are written (or there were none and the expected version matched).
    Written(AppendResult),
    /// The expected version does not match the version read; nothing is written.
    Mismatch(Version),
    /// The version read was stale: an event at the next version is stored already (it
    /// committed after the statement's snapshot was taken). Nothing is written, and a
    /// transaction the statement ran in is aborted.
    Stale,
}

/// The `(stream_id, version)` key of the events table.
const STREAM_VERSION_KEY: &str = "events_stream_version_key";

/// Why the append statement failed.
pub(crate) enum Failed {
    /// An event id is stored already. A transaction the statement ran in is aborted.
    DuplicateId,
    /// Anything else: the append is refused or the backend failed.
    Store(StoreError),
}

impl From<PgError> for Failed {
    fn from(error: PgError) -> Self {
        Failed::Store(error.into())
    }
}

impl From<tokio_postgres::Error> for Failed {
    fn from(error: tokio_postgres::Error) -> Self {
        Failed::Store(PgError::from(error).into())
    }
}

/// Maps a failed append statement: a stored event id, a value PostgreSQL cannot hold (a
/// NUL character in an event type, an over-long value...), or a backend failure.
pub(crate) fn classify(stream: &StreamId, error: tokio_postgres::Error) -> Failed {
    if let Some(db) = error.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some("events_event_id_key")
        {
            return Failed::DuplicateId;
        }
        if let Some(reason) = rejection(db) {
            return Failed::Store(StoreError::Rejected {
                stream: stream.clone(),
                reason,
            });
        }
    }
    Failed::Store(PgError::from(error).into())
}

/// Why PostgreSQL refused a value, if the error is about the data rather than the backend:
/// SQLSTATE class 22 (data exception, e.g. 22P05 untranslatable character, 22021 invalid byte
/// sequence) or 54 (program limit exceeded, e.g. a JSON value too large).
pub(crate) fn rejection(db: &tokio_postgres::error::DbError) -> Option<String> {
    let code = db.code().code();
    (code.starts_with("22") || code.starts_with("54")).then(|| {
        format!(
            "PostgreSQL cannot store it: {} (SQLSTATE {code})",
            db.message()
        )
    })
}

/// Runs the append statement for one stream.
async fn run<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    channel: Option<&str>,
    e: &Encoded<'_>,
) -> Result<Ran, Failed> {
    let stream = e.append.stream_id.as_str();
    let row = client
        .query_one(
            statement,
            &[
                &stream,
                &e.kind,
                &e.exact,
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
            if is_stale(&error) {
                return Ok(Ran::Stale);
            }
            return Err(classify(&e.append.stream_id, error));
        }
    };
    let current = Version(unsigned(row.try_get(0)?, "stream version")?);
    let matched: bool = row.try_get(1)?;
    let last_position: Option<i64> = row.try_get(2)?;
    if !matched {
        return Ok(Ran::Mismatch(current));
    }
    let count = e.ids.len() as u64;
    let last_position = match last_position {
        Some(position) => Some(Position(unsigned(position, "position")?)),
        None if count == 0 => None,
        None => {
            return Err(Failed::Store(StoreError::backend(
                "internal error: the append statement matched but wrote no event",
            )))
        }
    };
    Ok(Ran::Written(backend::written(
        current,
        e.ids.len(),
        last_position,
    )))
}

/// The fast path of one stream's append of at least one event, in its own transaction, with
/// notifications after commit: runs the lean statement ([`crate::sql`]'s `lean_append`) that
/// [`Encoded::numbering`] and [`Encoded::is_one`] pick. `None` when it wrote nothing
/// (the caller then takes the slow path, which finds out why).
pub(crate) async fn fast_written<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    e: &Encoded<'_>,
) -> Result<Option<AppendResult>, Failed> {
    let stream = e.append.stream_id.as_str();
    type Param<'p> = &'p (dyn ToSql + Sync);
    // One event binds plain values, more bind arrays.
    let events: [Param<'_>; 5] = match (
        e.ids.first(),
        e.types.first(),
        e.schema_versions.first(),
        e.payloads.first(),
        e.metadata.first(),
    ) {
        (Some(id), Some(event_type), Some(schema_version), Some(payload), Some(metadata))
            if e.is_one() =>
        {
            [id, event_type, schema_version, payload, metadata]
        }
        _ => [
            &e.ids,
            &e.types,
            &e.schema_versions,
            &e.payloads,
            &e.metadata,
        ],
    };
    let [ids, types, schema_versions, payloads, metadata] = events;
    let rows = client
        .query(
            statement,
            &[
                &stream,
                &e.kind,
                &e.exact,
                ids,
                types,
                schema_versions,
                payloads,
                metadata,
            ],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            if is_stale(&error) {
                return Ok(None);
            }
            return Err(classify(&e.append.stream_id, error));
        }
    };
    let written = |count: i64, first: i64, last: i64, position: i64| {
        let expected = e.ids.len() as u64;
        let (count, first, last) = (
            unsigned(count, "count")?,
            Version(unsigned(first, "version")?),
            Version(unsigned(last, "version")?),
        );
        if count != expected || last.0.checked_sub(first.0) != Some(expected.saturating_sub(1)) {
            return Err(Failed::Store(StoreError::backend(format!(
                "internal error: the append statement wrote {count} of {expected} events, \
                 versions {} to {}",
                first.0, last.0
            ))));
        }
        Ok(Some(AppendResult {
            first_version: first,
            stream_version: last,
            last_position: Some(Position(unsigned(position, "position")?)),
            written: true,
        }))
    };
    match rows.as_slice() {
        // One event: its row, or none when the expected version does not match.
        [] => Ok(None),
        [row] if e.is_one() => {
            let version = row.try_get(0)?;
            written(1, version, version, row.try_get(1)?)
        }
        // More: one summary row, counting 0 when the expected version does not match.
        [row] => match row.try_get::<_, i64>(0)? {
            0 => Ok(None),
            count => written(count, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?),
        },
        _ => Err(Failed::Store(StoreError::backend(format!(
            "internal error: the append statement returned {} rows",
            rows.len()
        )))),
    }
}

/// Whether `error` is the `(stream_id, version)` key refusing an event: the version read was
/// stale (an append committed after the statement's snapshot was taken).
fn is_stale(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(STREAM_VERSION_KEY)
    })
}

/// The indexes of `encoded` in stream id order: every multi-stream append locks its streams in
/// the same order, so two of them never deadlock.
fn lock_order(encoded: &[Encoded<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by(|&a, &b| {
        encoded[a]
            .append
            .stream_id
            .cmp(&encoded[b].append.stream_id)
    });
    order
}

/// Takes the advisory locks of every stream of a multi-stream append, in lock order, before
/// the transaction writes anything: a transaction id taken while waiting for a later stream's
/// turn could be older than the one of the writer it waits for (see [`crate::sql`]).
pub(crate) async fn lock_streams<C: GenericClient + Sync>(
    client: &C,
    sql: &Sql,
    encoded: &[Encoded<'_>],
) -> Result<(), StoreError> {
    if encoded.len() < 2 {
        return Ok(());
    }
    take_turns(client, sql, encoded).await
}

/// Takes the advisory locks of every stream of an append, in lock order, even of one stream.
async fn take_turns<C: GenericClient + Sync>(
    client: &C,
    sql: &Sql,
    encoded: &[Encoded<'_>],
) -> Result<(), StoreError> {
    let streams: Vec<&str> = lock_order(encoded)
        .into_iter()
        .map(|index| encoded[index].append.stream_id.as_str())
        .collect();
    client
        .execute(sql.lock_streams.as_str(), &[&streams])
        .await
        .map_err(PgError::from)?;
    Ok(())
}

/// The fast path: runs every stream's statement. `None` when one of them wrote nothing (the
/// caller then rolls back and takes the slow path).
pub(crate) async fn fast<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    channel: Option<&str>,
    encoded: &[Encoded<'_>],
) -> Result<Option<Vec<AppendResult>>, Failed> {
    let mut results = vec![None; encoded.len()];
    for index in lock_order(encoded) {
        match run(client, statement, channel, &encoded[index]).await? {
            Ran::Written(result) => results[index] = Some(result),
            Ran::Mismatch(_) | Ran::Stale => return Ok(None),
        }
    }
    Ok(results.into_iter().collect())
}

/// Something that starts a transaction: a connection, or a transaction (a savepoint).
pub(crate) trait Begin: Send {
    /// Starts a transaction (or a savepoint inside this transaction).
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send;
}

impl Begin for tokio_postgres::Client {
    /// A READ COMMITTED transaction whatever the server's default: the slow path reads
    /// versions after taking the streams' turns, which only a statement's own snapshot sees.
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send
    {
        read_committed(self)
    }
}

/// Starts a READ COMMITTED transaction on `client`, in one round trip like `BEGIN`.
pub(crate) fn read_committed(
    client: &mut tokio_postgres::Client,
) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
}

impl Begin for tokio_postgres::Transaction<'_> {
    fn begin(
        &mut self,
    ) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send
    {
        self.transaction()
    }
}

/// How one attempt of the slow path ended.
enum Attempt {
    /// Everything is decided and written: commit.
    Done(Vec<AppendResult>),
    /// The append is refused: roll back and return the error.
    Refused(StoreError),
    /// A concurrent writer stored one of the event ids meanwhile: roll back and start over.
    Again,
}

/// The slow path: decides the append in a transaction begun on `begin`, starting over when a
/// concurrent writer interferes.
pub(crate) async fn slow<B: Begin>(
    begin: &mut B,
    statement: &Statement,
    sql: &Sql,
    channel: Option<&str>,
    encoded: &[Encoded<'_>],
) -> Result<Vec<AppendResult>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let tx = begin.begin().await.map_err(PgError::from)?;
        match attempt(&tx, statement, sql, channel, encoded).await {
            Ok(Attempt::Done(results)) => {
                tx.commit().await.map_err(PgError::from)?;
                return Ok(results);
            }
            Ok(Attempt::Refused(error)) => {
                tx.rollback().await.map_err(PgError::from)?;
                return Err(error);
            }
            Ok(Attempt::Again) => tx.rollback().await.map_err(PgError::from)?,
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

/// One attempt of the slow path, in a transaction: takes the streams' turns, reads what the
/// rules of [`backend::decide`] need (the stored event ids of the call, each stream's
/// version) with statements that see what the turns' earlier holders committed, decides each
/// stream in the order given, and writes the streams to write.
async fn attempt<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    sql: &Sql,
    channel: Option<&str>,
    encoded: &[Encoded<'_>],
) -> Result<Attempt, StoreError> {
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
            Err(error) => return Ok(Attempt::Refused(error)),
        }
    }

    for index in lock_order(encoded) {
        if results[index].is_some() {
            continue;
        }
        let e = &encoded[index];
        match run(client, statement, channel, e).await {
            Ok(Ran::Written(result)) => results[index] = Some(result),
            // The turns are held, so the version cannot have moved since it was read.
            Ok(Ran::Mismatch(actual)) => return Ok(Attempt::Refused(conflict(e, actual))),
            // The turn is held and the store's own transactions are READ COMMITTED, so only
            // the snapshot of a caller's REPEATABLE READ or SERIALIZABLE transaction, taken
            // before the turn, reads a stale version; it would read the same one again.
            Ok(Ran::Stale) => return Ok(Attempt::Refused(stale_snapshot(e))),
            Err(Failed::DuplicateId) => return Ok(Attempt::Again),
            Err(Failed::Store(error)) => return Ok(Attempt::Refused(error)),
        }
    }
    Ok(Attempt::Done(results.into_iter().flatten().collect()))
}

/// The refusal of an append whose transaction's snapshot predates the stream's last append.
fn stale_snapshot(e: &Encoded<'_>) -> StoreError {
    StoreError::backend(format!(
        "cannot append to stream {}: the transaction's snapshot predates the stream's last \
         append (REPEATABLE READ or SERIALIZABLE isolation); retry the whole transaction",
        e.append.stream_id
    ))
}

fn conflict(e: &Encoded<'_>, actual: Version) -> StoreError {
    StoreError::Conflict {
        stream: e.append.stream_id.clone(),
        expected: e.append.expected,
        actual,
    }
}
