//! Locks held across statements: a projection runner's lease, and a stream's turn held while
//! a repository reads, decides and appends.
//!
//! Both are session-level advisory locks, which PostgreSQL releases when the session that
//! holds them ends: a holder that exits, is killed or loses its connection gives them up at
//! once. A session lock and the transaction-level lock every append takes on a stream's key
//! are the same lock, so while a turn is held, every other connection's appends to the stream
//! wait for it.

use std::fmt;
use std::ops::ControlFlow;
use std::pin::pin;

use annals::{
    AppendResult, EventStore, ExpectedVersion, HeldTurn, Lease, NewEvent, RecordedEvent,
    ReplayVisitor, StoreError, StreamAppend, StreamId, Version,
};
use async_trait::async_trait;
use deadpool_postgres::Object;
use futures_util::TryStreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;
use uuid::Uuid;

use crate::append;
use crate::error::{AppendFailure, PgError};
use crate::rows::{recorded_event, replayed_event, signed};
use crate::{prepared::Frequent, store::PgEventStore};

/// The hash seed of stream turns: the key `stream_turn` and every append take.
const TURN_SEED: i64 = 0;
/// The hash seed of projection leases.
const LEASE_SEED: i64 = 1;

/// How often a session waiting for a lease checks that its client is still there, so a
/// runner stopped while it waits does not leave a session behind that takes the lease when
/// it is free (PostgreSQL 14 and later; older servers ignore it).
const CONNECTION_CHECK: &str = "SET client_connection_check_interval = 1000";

/// A projection runner's lease: a session-level advisory lock on a connection of its own.
pub(crate) struct PgLease {
    name: String,
    /// The connection, taken out of the pool: dropping it closes the session, and with it the
    /// lock.
    client: deadpool_postgres::ClientWrapper,
}

impl fmt::Debug for PgLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLease")
            .field("name", &self.name)
            .field("held", &self.is_held())
            .finish()
    }
}

impl Lease for PgLease {
    fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

/// The key text of lease `name` of `store`: the schema and the name, which the schema's
/// characters (`[a-z0-9_]`) keep apart.
fn lease_key(store: &PgEventStore, name: &str) -> String {
    format!("{}:{name}", store.schema())
}

/// Waits for the lease `name` on a connection of its own.
pub(crate) async fn acquire(store: &PgEventStore, name: &str) -> Result<PgLease, StoreError> {
    let client = Object::take(store.client().await?);
    // Best effort: without it, a session left waiting by a stopped runner still gives the
    // lease up as soon as it gets it and finds its client gone.
    if let Err(error) = client.batch_execute(CONNECTION_CHECK).await {
        tracing::debug!(%error, "cannot set client_connection_check_interval");
    }
    client
        .execute(
            store.sql().lock_session.as_str(),
            &[&lease_key(store, name), &LEASE_SEED],
        )
        .await
        .map_err(PgError::from)?;
    Ok(PgLease {
        name: name.to_owned(),
        client,
    })
}

/// A stream's turn held on a pooled connection.
///
/// The lock is requested together with the turn's first statement (the replay, an event
/// lookup or the append), in one round trip: the server runs them in order, so that statement
/// starts once the lock is granted and sees what the previous holder committed.
pub(crate) struct PgTurn {
    store: PgEventStore,
    stream: StreamId,
    /// `None` once released.
    client: Option<Object>,
    /// Whether the lock has been granted.
    locked: bool,
}

/// The turn of `stream` on a pooled connection; the lock comes with its first statement.
pub(crate) async fn hold_turn(
    store: &PgEventStore,
    stream: &StreamId,
) -> Result<PgTurn, StoreError> {
    Ok(PgTurn {
        store: store.clone(),
        stream: stream.clone(),
        client: Some(store.client().await?),
        locked: false,
    })
}

impl PgTurn {
    /// Closes the connection instead of returning it to the pool with the lock still held.
    fn close(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }

    fn released(&self) -> StoreError {
        StoreError::backend(format!("the turn of stream `{}` was released", self.stream))
    }

    /// Gives the turn back; the connection then goes back to the pool.
    async fn unlock(&mut self) -> Result<(), StoreError> {
        if let Some(client) = self.client.take() {
            if self.locked {
                drop(unlock(&self.store, &self.stream, client).await?);
            }
        }
        Ok(())
    }
}

impl Drop for PgTurn {
    fn drop(&mut self) {
        self.close();
    }
}

/// The prepared lock and unlock statements of a turn, so that each is sent on its first poll
/// and the server runs the statements of a turn in the order they are joined (a statement
/// given as text is prepared first, in a round trip of its own, and would run after the
/// statements joined behind it).
async fn turn_statements(
    store: &PgEventStore,
    client: &Object,
) -> Result<(Statement, Statement), StoreError> {
    let lock = client
        .prepare_cached(&store.sql().lock_session)
        .await
        .map_err(PgError::from)?;
    let unlock = client
        .prepare_cached(&store.sql().unlock_session)
        .await
        .map_err(PgError::from)?;
    Ok((lock, unlock))
}

/// Requests the turn of `stream` on `client` with the prepared `lock` when `locked` is false.
async fn lock(
    lock: &Statement,
    stream: &StreamId,
    client: &Object,
    locked: bool,
) -> Result<(), tokio_postgres::Error> {
    if !locked {
        client
            .execute(lock, &[&stream.as_str(), &TURN_SEED])
            .await?;
    }
    Ok(())
}

#[async_trait]
impl HeldTurn for PgTurn {
    fn stream(&self) -> &StreamId {
        &self.stream
    }

    async fn replay(
        &mut self,
        from: Version,
        limit: usize,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<usize, StoreError> {
        let Some(client) = self.client.as_ref() else {
            return Err(self.released());
        };
        let statement = self.store.prepared(client, Frequent::Replay).await?;
        let (lock_statement, _) = turn_statements(&self.store, client).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let stream = self.stream.as_str();
        let params: [&(dyn ToSql + Sync); 3] = [&stream, &signed(from.0), &limit];
        let (locked, rows) = futures_util::future::join(
            lock(&lock_statement, &self.stream, client, self.locked),
            client.query_raw(&statement, params),
        )
        .await;
        if let Err(error) = locked {
            drop(rows);
            self.close();
            return Err(PgError::from(error).into());
        }
        self.locked = true;
        let rows = rows.map_err(PgError::from)?;
        let mut rows = pin!(rows);
        let mut visited = 0;
        while let Some(row) = rows.try_next().await.map_err(PgError::from)? {
            visited += 1;
            if let ControlFlow::Break(()) = visit(replayed_event(&row)?) {
                break;
            }
        }
        Ok(visited)
    }

    async fn read_event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let Some(client) = self.client.as_ref() else {
            return Err(self.released());
        };
        let statement = client
            .prepare_cached(&self.store.sql().read_event)
            .await
            .map_err(PgError::from)?;
        let (lock_statement, _) = turn_statements(&self.store, client).await?;
        let (locked, row) = futures_util::future::join(
            lock(&lock_statement, &self.stream, client, self.locked),
            client.query_opt(&statement, &[&event_id]),
        )
        .await;
        if let Err(error) = locked {
            self.close();
            return Err(PgError::from(error).into());
        }
        self.locked = true;
        let row = row.map_err(PgError::from)?;
        Ok(row.map(|row| recorded_event(&row, None)).transpose()?)
    }

    /// The common case in one round trip: the lean append and the unlock are sent together
    /// (after the lock, when no statement took it yet), and the server runs them in order, so
    /// the turn is given back as the append commits. Anything else (the append wrote nothing,
    /// or needs the transaction of a multi-statement append) goes the store's ordinary way
    /// after the turn is given back: every append takes the stream's turn itself.
    async fn append_and_release(
        mut self: Box<Self>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let store = self.store.clone();
        let appends = [StreamAppend {
            stream_id: self.stream.clone(),
            expected,
            events,
        }];
        let encoded = append::encode(&appends)?;
        let shape = append::AppendShape::of(&encoded, store.in_transaction_channel());
        let Some(mut client) = self.client.take() else {
            return Err(self.released());
        };
        let append::AppendShape::InsertOnly(insert) = shape else {
            if self.locked {
                client = unlock(&store, &self.stream, client).await?;
            }
            let mut results = store.append_on(&mut client, &appends).await?;
            return results.pop().ok_or_else(|| {
                StoreError::backend("the store returned no result for a one-stream append")
            });
        };
        let statement = store.prepared(&client, Frequent::Insert(insert)).await?;
        let (lock_statement, unlock_statement) = turn_statements(&store, &client).await?;
        let key = self.stream.as_str();
        let (locked, written, unlocked) = futures_util::future::join3(
            lock(&lock_statement, &self.stream, &client, self.locked),
            append::insert::run(&**client, &statement, &encoded[0]),
            client.query_one(&unlock_statement, &[&key, &TURN_SEED]),
        )
        .await;
        let released = matches!(unlocked.and_then(|row| row.try_get::<_, bool>(0)), Ok(true));
        if locked.is_err() || !released {
            // The connection may still hold the lock: it is closed, not pooled.
            drop(Object::take(client));
            if let Ok(Some(result)) = written {
                store.announce(&[result]);
                return Ok(result);
            }
            let [append] = appends;
            return store.append(&self.stream, expected, append.events).await;
        }
        match written {
            Ok(Some(result)) => {
                store.announce(&[result]);
                Ok(result)
            }
            Ok(None) | Err(AppendFailure::EventIdStored) => {
                let mut results = store.append_on(&mut client, &appends).await?;
                results.pop().ok_or_else(|| {
                    StoreError::backend("the store returned no result for a one-stream append")
                })
            }
            Err(AppendFailure::Error(error)) => Err(error),
        }
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
        self.unlock().await
    }
}

/// Gives the turn of `stream` held by `client` back, and returns the client; a client that
/// may still hold it is closed instead.
async fn unlock(
    store: &PgEventStore,
    stream: &StreamId,
    client: Object,
) -> Result<Object, StoreError> {
    let unlocked = client
        .query_one(
            store.sql().unlock_session.as_str(),
            &[&stream.as_str(), &TURN_SEED],
        )
        .await
        .and_then(|row| row.try_get::<_, bool>(0));
    match unlocked {
        Ok(true) => Ok(client),
        Ok(false) => {
            drop(Object::take(client));
            Err(StoreError::backend(format!(
                "the turn of stream `{stream}` was not held by its connection"
            )))
        }
        Err(error) => {
            drop(Object::take(client));
            Err(PgError::from(error).into())
        }
    }
}
