//! Appends, from a call's [`StreamAppend`]s to its [`AppendResult`]s: every append of the
//! store, on a pooled connection ([`EventStore::append_streams`], a held turn's fallback) or
//! in a caller's transaction ([`PgEventStore::append_in`]), enters through [`append`], which
//! encodes the events ([`encode()`]), decides once which statements serve them
//! ([`AppendShape`]), runs them, and resolves a refusal ([`resolve`]).
//!
//! Each statement's SQL text sits beside its parameters and its rows: [`insert`] for the
//! common case (one stream, one round trip), [`general`] for every other, and the turns and
//! the checks of a caller's transaction here. When a statement writes nothing (the expected
//! version does not match), meets a stale version or a stored event id, its work is rolled
//! back and [`resolve::resolve_refusal`] decides the append again under the streams' turns,
//! telling an exact retry, a reused event id and a conflict apart.
//!
//! [`EventStore::append_streams`]: annals::EventStore::append_streams

mod encode;
mod general;
pub(crate) mod insert;
mod resolve;

use std::future::Future;
use tracing::Instrument;

use annals::{AppendResult, StoreError, StreamAppend};
use deadpool_postgres::Object;
use tokio_postgres::GenericClient;

pub(crate) use encode::{encode, EncodedAppend};
use insert::InsertStatement;
use resolve::resolve_refusal;

use crate::error::{AppendFailure, PgError};
use crate::prepared::Frequent;
use crate::store::PgEventStore;

/// The append's statements of one schema, built once per store.
#[derive(Debug)]
pub(crate) struct AppendStatements {
    /// The general statement ([`general`]).
    general: String,
    /// The insert statements ([`insert`]), indexed by [`insert::Numbering`], then by
    /// [`InsertStatement::single_event`].
    insert: [[String; 2]; 2],
    /// The advisory locks of several streams, taken in the given order.
    lock_streams: String,
    /// The stored events among some ids ([`resolve`]).
    events_by_id: String,
    /// The versions of several streams, in the order given ([`resolve`]).
    stream_versions: String,
    /// Whether the current transaction may append without a reader skipping its events: it
    /// has no transaction id yet, or it already holds readers back (the horizon of
    /// [`crate::sql`]).
    may_append_in: String,
}

impl AppendStatements {
    /// The statements of the quoted schema `s`, which must have been validated.
    pub(crate) fn new(s: &str) -> Self {
        AppendStatements {
            general: general::sql(s),
            insert: insert::statements(s),
            lock_streams: format!(
                "SELECT {} FROM unnest($1::text[]) WITH ORDINALITY AS s(stream_id, n) ORDER BY n",
                take_turn("stream_id")
            ),
            events_by_id: resolve::events_by_id_sql(s),
            stream_versions: resolve::stream_versions_sql(s),
            may_append_in: format!(
                "SELECT pg_current_xact_id_if_assigned() IS NULL OR EXISTS (SELECT 1 FROM pg_locks \
                 WHERE pid = pg_backend_pid() AND locktype = 'relation' \
                   AND relation IN ('{s}.events'::regclass, '{s}.checkpoints'::regclass) \
                   AND mode NOT IN ('AccessShareLock', 'RowShareLock'))"
            ),
        }
    }

    /// The general statement's text.
    pub(crate) fn general(&self) -> &str {
        &self.general
    }

    /// The text of the insert statement `statement`.
    pub(crate) fn insert(&self, statement: InsertStatement) -> &str {
        &self.insert[statement.numbering as usize][usize::from(statement.single_event)]
    }
}

/// Takes the turn of the stream whose id is the SQL expression `stream`: the
/// transaction-level advisory lock keyed by the id's hash, the one migration 2's
/// `stream_turn` takes too.
fn take_turn(stream: &str) -> String {
    format!("pg_advisory_xact_lock(hashtextextended({stream}, 0))")
}

/// Which statements serve an append, decided once, by [`AppendShape::of`] (also for an
/// append under a held stream turn, which sends its statement between the turn's lock and
/// unlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendShape {
    /// One stream, at least one event, in its own transaction, readers notified after it
    /// commits: the common case, one insert statement, one round trip.
    InsertOnly(InsertStatement),
    /// Any other append of one stream (no events, which only checks the expected version, or
    /// a notification inside the transaction): one general statement.
    OneStream,
    /// Several streams, in one transaction that takes their turns first: a general statement
    /// for each.
    SeveralStreams,
}

impl AppendShape {
    /// The shape of an append of `encoded`; `channel` names the notification channel when the
    /// append notifies inside its transaction.
    pub(crate) fn of(encoded: &[EncodedAppend<'_>], channel: Option<&str>) -> Self {
        match encoded {
            [one] if channel.is_none() && one.writes() => {
                AppendShape::InsertOnly(one.insert_statement())
            }
            [_] => AppendShape::OneStream,
            _ => AppendShape::SeveralStreams,
        }
    }
}

/// Where an append runs.
pub(crate) enum Session<'a, 't> {
    /// A pooled connection of the store: the append runs in transactions of its own, and
    /// readers are woken once it commits.
    Pooled(&'a mut Object),
    /// A caller's transaction: the append runs in savepoints and notifies inside the
    /// transaction, which the caller commits.
    CallersTransaction(&'a mut tokio_postgres::Transaction<'t>),
}

/// Appends `appends` in `session`: the one way in to the append path, in an `annals.append`
/// span.
pub(crate) async fn append(
    store: &PgEventStore,
    session: Session<'_, '_>,
    appends: &[StreamAppend],
) -> Result<Vec<AppendResult>, StoreError> {
    let span = annals::telemetry::append_span("postgresql", appends);
    let result = append_in(store, session, appends)
        .instrument(span.clone())
        .await;
    annals::telemetry::record_append(&span, &result);
    result
}

async fn append_in(
    store: &PgEventStore,
    session: Session<'_, '_>,
    appends: &[StreamAppend],
) -> Result<Vec<AppendResult>, StoreError> {
    let encoded = encode(appends)?;
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    match session {
        Session::Pooled(client) => {
            let channel = store.in_transaction_channel();
            let shape = AppendShape::of(&encoded, channel);
            let results = on_pooled(store, client, shape, channel, &encoded).await?;
            store.announce(&results);
            Ok(results)
        }
        Session::CallersTransaction(tx) => {
            // The caller commits: only a notification inside its transaction is sent then.
            let channel = Some(store.inner.channel.as_str());
            let shape = AppendShape::of(&encoded, channel);
            in_callers_transaction(store, tx, shape, channel, &encoded).await
        }
    }
}

/// An append on a pooled connection: the statements `shape` names, and the resolution when
/// they wrote nothing.
async fn on_pooled(
    store: &PgEventStore,
    client: &mut Object,
    shape: AppendShape,
    channel: Option<&str>,
    encoded: &[EncodedAppend<'_>],
) -> Result<Vec<AppendResult>, StoreError> {
    let sql = &store.inner.sql.append;
    let written = match shape {
        AppendShape::InsertOnly(insert) => {
            let statement = store.prepared(client, Frequent::Insert(insert)).await?;
            insert::run(&***client, &statement, &encoded[0])
                .await
                .map(|written| written.map(|result| vec![result]))
        }
        AppendShape::OneStream => {
            // Its own transaction: one round trip.
            let statement = store.prepared(client, Frequent::General).await?;
            general::run_each(&***client, &statement, channel, encoded).await
        }
        AppendShape::SeveralStreams => {
            let statement = store.prepared(client, Frequent::General).await?;
            let tx = read_committed(client).await.map_err(PgError::from)?;
            take_turns(&tx, sql, encoded).await?;
            match general::run_each(&tx, &statement, channel, encoded).await {
                Ok(Some(results)) => {
                    tx.commit().await.map_err(PgError::from)?;
                    Ok(Some(results))
                }
                other => {
                    tx.rollback().await.map_err(PgError::from)?;
                    other
                }
            }
        }
    };
    match written {
        Ok(Some(results)) => Ok(results),
        Ok(None) | Err(AppendFailure::EventIdStored) => {
            let statement = store.prepared(client, Frequent::General).await?;
            let pg: &mut tokio_postgres::Client = client;
            resolve_refusal(pg, &statement, sql, channel, encoded).await
        }
        Err(AppendFailure::Error(error)) => Err(error),
    }
}

/// An append in a caller's transaction `tx`, in a savepoint, then in the resolution's
/// savepoints when it wrote nothing.
async fn in_callers_transaction(
    store: &PgEventStore,
    tx: &mut tokio_postgres::Transaction<'_>,
    shape: AppendShape,
    channel: Option<&str>,
    encoded: &[EncodedAppend<'_>],
) -> Result<Vec<AppendResult>, StoreError> {
    let sql = &store.inner.sql.append;
    // Checked before the general statement is prepared: preparing an INSERT locks the
    // events table already.
    let may_append: bool = tx
        .query_one(sql.may_append_in.as_str(), &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(PgError::from)?;
    if !may_append {
        return Err(StoreError::Rejected {
            stream: encoded[0].append.stream_id.clone(),
            reason: "append_in must come before the transaction writes anything else: a \
                     transaction that already has a transaction id when it starts writing \
                     events could commit them behind a reader that passed it"
                .to_owned(),
        });
    }
    let statement = tx.prepare(&sql.general).await.map_err(PgError::from)?;
    {
        let savepoint = tx.transaction().await.map_err(PgError::from)?;
        if shape == AppendShape::SeveralStreams {
            take_turns(&savepoint, sql, encoded).await?;
        }
        match general::run_each(&savepoint, &statement, channel, encoded).await {
            Ok(Some(results)) => {
                savepoint.commit().await.map_err(PgError::from)?;
                return Ok(results);
            }
            Ok(None) | Err(AppendFailure::EventIdStored) => {
                savepoint.rollback().await.map_err(PgError::from)?
            }
            Err(AppendFailure::Error(error)) => {
                savepoint.rollback().await.map_err(PgError::from)?;
                return Err(error);
            }
        }
    }
    resolve_refusal(tx, &statement, sql, channel, encoded).await
}

/// The indexes of `encoded` in stream id order: every multi-stream append locks its streams in
/// the same order, so two of them never deadlock.
fn lock_order(encoded: &[EncodedAppend<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by(|&a, &b| {
        encoded[a]
            .append
            .stream_id
            .cmp(&encoded[b].append.stream_id)
    });
    order
}

/// Takes the advisory locks of every stream of an append, in lock order, before the
/// transaction writes anything: a transaction id taken while waiting for a later stream's turn
/// could be older than the one of the writer it waits for, and the global log's order would no
/// longer follow each stream's versions (see [`general`]).
async fn take_turns<C: GenericClient + Sync>(
    client: &C,
    sql: &AppendStatements,
    encoded: &[EncodedAppend<'_>],
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

/// Starts a READ COMMITTED transaction on `client`, in one round trip like `BEGIN`: an append
/// of the store's own reads versions after taking the streams' turns, which only a
/// statement's own snapshot sees, whatever the server's default isolation.
fn read_committed(
    client: &mut tokio_postgres::Client,
) -> impl Future<Output = Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error>> + Send {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
}

impl PgEventStore {
    /// Appends inside the caller's transaction `tx`, with the same checks and results as
    /// [`EventStore::append_streams`](annals::EventStore::append_streams): the events commit
    /// (and their notification goes out) when `tx` commits, together with whatever else `tx`
    /// wrote.
    ///
    /// Call it before `tx` writes anything else. A transaction that already has a transaction
    /// id (it wrote to another table) when it starts writing events is refused with
    /// [`StoreError::Rejected`]: readers pass over transactions that write no events, so its
    /// events could commit behind a reader that already went past it. (A
    /// [`PgProjectionRunner`](crate::PgProjectionRunner)'s transaction may append in its
    /// handlers: it holds readers back from its start.)
    ///
    /// In a REPEATABLE READ or SERIALIZABLE transaction whose snapshot predates the stream's
    /// last append, the append cannot see the stream's version: it is refused with
    /// [`StoreError::Backend`], and only a new transaction can append.
    ///
    /// The append runs in a savepoint, so a refused append leaves `tx` usable. Until `tx`
    /// ends, readers of the global log see none of the events written after it started
    /// (see [`EventStore::read_all`](annals::EventStore::read_all)): keep such transactions
    /// short.
    pub async fn append_in(
        &self,
        tx: &mut tokio_postgres::Transaction<'_>,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        append(self, Session::CallersTransaction(tx), &appends).await
    }

    /// Appends on `client`, a pooled connection: the body of
    /// [`append_streams`](annals::EventStore::append_streams), and of a
    /// [`HeldTurn`](annals::HeldTurn)'s appends.
    pub(crate) async fn append_on(
        &self,
        client: &mut Object,
        appends: &[StreamAppend],
    ) -> Result<Vec<AppendResult>, StoreError> {
        append(self, Session::Pooled(client), appends).await
    }
}
