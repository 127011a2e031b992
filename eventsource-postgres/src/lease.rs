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

use async_trait::async_trait;
use deadpool_postgres::Object;
use eventsource::{
    AppendResult, ExpectedVersion, HeldTurn, Lease, NewEvent, RecordedEvent, ReplayVisitor,
    StoreError, StreamAppend, StreamId, Version,
};
use futures_util::TryStreamExt;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::config::PgError;
use crate::rows::{recorded_event, replayed_event, signed};
use crate::store::{Hot, PgEventStore};

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
pub(crate) struct PgTurn {
    store: PgEventStore,
    stream: StreamId,
    /// `None` once released.
    client: Option<Object>,
}

/// Takes the turn of `stream` at session level on a pooled connection.
pub(crate) async fn hold_turn(store: &PgEventStore, stream: &StreamId) -> Result<PgTurn, StoreError> {
    let client = store.client().await?;
    let mut turn = PgTurn {
        store: store.clone(),
        stream: stream.clone(),
        client: None,
    };
    // Should the wait fail or be cancelled, the connection may hold the lock or be about to:
    // it is closed rather than returned to the pool.
    let locked = client
        .execute(
            store.sql().lock_session.as_str(),
            &[&stream.as_str(), &TURN_SEED],
        )
        .await;
    turn.client = Some(client);
    if let Err(error) = locked {
        turn.close();
        return Err(PgError::from(error).into());
    }
    Ok(turn)
}

impl PgTurn {
    fn client(&mut self) -> Result<&mut Object, StoreError> {
        self.client.as_mut().ok_or_else(|| {
            StoreError::backend(format!("the turn of stream `{}` was released", self.stream))
        })
    }

    /// Closes the connection instead of returning it to the pool with the lock still held.
    fn close(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

impl Drop for PgTurn {
    fn drop(&mut self) {
        self.close();
    }
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
        if limit == 0 {
            return Ok(0);
        }
        let store = self.store.clone();
        let stream = self.stream.clone();
        let client = self.client()?;
        let statement = store.hot_statement(client, Hot::Replay).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let params: [&(dyn ToSql + Sync); 3] = [&stream.as_str(), &signed(from.0), &limit];
        let rows = client
            .query_raw(&statement, params)
            .await
            .map_err(PgError::from)?;
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
        let store = self.store.clone();
        let client = self.client()?;
        let statement = client
            .prepare_cached(&store.sql().read_event)
            .await
            .map_err(PgError::from)?;
        let row = client
            .query_opt(&statement, &[&event_id])
            .await
            .map_err(PgError::from)?;
        Ok(row.map(|row| recorded_event(&row, None)).transpose()?)
    }

    async fn append(
        &mut self,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let store = self.store.clone();
        let append = StreamAppend {
            stream_id: self.stream.clone(),
            expected,
            events,
        };
        let client = self.client()?;
        let mut results = store
            .append_on(client, std::slice::from_ref(&append))
            .await?;
        results.pop().ok_or_else(|| {
            StoreError::backend("the store returned no result for a one-stream append")
        })
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
        let Some(client) = self.client.take() else {
            return Ok(());
        };
        let unlocked = client
            .query_one(
                self.store.sql().unlock_session.as_str(),
                &[&self.stream.as_str(), &TURN_SEED],
            )
            .await
            .and_then(|row| row.try_get::<_, bool>(0));
        match unlocked {
            // Released: the connection goes back to the pool.
            Ok(true) => Ok(()),
            Ok(false) => {
                drop(Object::take(client));
                Err(StoreError::backend(format!(
                    "the turn of stream `{}` was not held by its connection",
                    self.stream
                )))
            }
            Err(error) => {
                drop(Object::take(client));
                Err(PgError::from(error).into())
            }
        }
    }
}
