//! Exactly-once projections: the read model is written through the batch's transaction, and
//! the checkpoint commits with it.
//!
//! The runner is the core's [`ProjectionRunner`]; this module supplies its sink, which
//! handles a batch and compares and sets its checkpoint in one transaction.

use std::time::Duration;

use annals::{
    Batch, Checkpoint, CorruptEvents, Envelope, Event, EventStore, Filter, HandlerError,
    HandlerRetry, ProjectionRunner, ProjectionSink, RunError, SinkError, StopSignal, StoreError,
    UnknownEvents,
};
use async_trait::async_trait;
use tokio_postgres::Transaction;

use crate::checkpoint::save_checkpoint_over;
use crate::error::PgError;
use crate::store::PgEventStore;

/// A projection whose read model lives in PostgreSQL, written through the transaction the
/// [`PgProjectionRunner`] hands it.
///
/// The runner handles a batch of events in one transaction and saves the checkpoint in it
/// too, so the read model and the checkpoint commit together: after a crash, a failure or a
/// restart, every event has been applied exactly once. The read model's tables may live in
/// any schema of the same database.
#[async_trait]
pub trait PgProjection: Send + Sync {
    /// The event enum the projection decodes; events of other types are skipped (see
    /// [`unknown_events`](PgProjection::unknown_events)).
    type Event: Event;

    /// The name its checkpoint is stored under.
    fn name(&self) -> &str;

    /// Which events it receives; all by default.
    fn filter(&self) -> Filter {
        Filter::all()
    }

    /// What to do with events of types the enum does not know; skip them by default.
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Skip
    }

    /// Applies one event to the read model, through `tx`. An error rolls back the whole
    /// batch, checkpoint included.
    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &Envelope<Self::Event>,
    ) -> Result<(), HandlerError>;

    /// Clears the read model, through `tx`, before a rebuild.
    async fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), HandlerError> {
        let _ = tx;
        Ok(())
    }

    /// What to do with a stored event the store cannot read back (see
    /// [`StoreError::CorruptEvent`]): stop with the error (the default, the checkpoint
    /// staying before it) or skip it with a warning.
    fn corrupt_events(&self) -> CorruptEvents {
        CorruptEvents::Fail
    }
}

/// Runs a [`PgProjection`]: catch up from its checkpoint, then follow the log live, each batch
/// in one transaction with its checkpoint.
///
/// # Exactly once, with any number of runners
///
/// Each call to [`catch_up`](PgProjectionRunner::catch_up), [`run`](PgProjectionRunner::run)
/// or [`rebuild`](PgProjectionRunner::rebuild) first takes the projection's lease, a
/// session-level advisory lock on a connection of its own, and holds it until it returns: one
/// runner handles batches at a time, in any number of processes, and the others wait. The
/// lease dies with its connection, so when the holder stops, is killed or loses its
/// connection, a waiting runner takes over as soon as the server sees the connection close (at
/// once when the holder's process exits; within the server's TCP keepalive settings when its
/// machine is lost).
///
/// The checkpoint is compared and set in the batch's transaction: the batch commits only if
/// the stored checkpoint is still the one the batch started from, so a runner that lost its
/// lease while it worked (or whose predecessor's last commit was still in flight) rolls its
/// batch back and resumes from the stored checkpoint instead of applying events twice.
#[derive(Debug)]
pub struct PgProjectionRunner<P> {
    runner: ProjectionRunner<PgEventStore, InTransaction<P>>,
}

impl<P: PgProjection> PgProjectionRunner<P> {
    /// A runner of `projection` over `store`.
    ///
    /// Batches hold at most [`DEFAULT_PROJECTION_BATCH_SIZE`](annals::DEFAULT_PROJECTION_BATCH_SIZE)
    /// events; the runner waits [`DEFAULT_POLL_INTERVAL`](annals::DEFAULT_POLL_INTERVAL) for a
    /// notification when caught up, and retries a failing batch as the default
    /// [`HandlerRetry`] says.
    pub fn new(store: PgEventStore, projection: P) -> Self {
        PgProjectionRunner {
            runner: ProjectionRunner::new(store, InTransaction(projection)),
        }
    }

    /// How many events one transaction holds at most.
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        PgProjectionRunner {
            runner: self.runner.with_batch_size(batch_size),
        }
    }

    /// How long a caught-up runner waits for a notification before reading the log again.
    pub fn with_poll_interval(self, poll_interval: Duration) -> Self {
        PgProjectionRunner {
            runner: self.runner.with_poll_interval(poll_interval),
        }
    }

    /// How a failing batch is retried (as a whole: its transaction rolled back) before the
    /// runner stops and reports it.
    pub fn with_retry(self, retry: HandlerRetry) -> Self {
        PgProjectionRunner {
            runner: self.runner.with_retry(retry),
        }
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.runner.projection().0
    }

    /// The projection, mutably.
    pub fn projection_mut(&mut self) -> &mut P {
        &mut self.runner.projection_mut().0
    }

    /// Gives the projection back.
    pub fn into_projection(self) -> P {
        self.runner.into_projection().0
    }

    /// Where the projection resumes: its committed checkpoint, or the start of the log.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        self.runner.checkpoint().await
    }

    /// Handles every event committed before the call; returns how many it handled.
    ///
    /// It aims at the head of the log as it stood when it started, so it returns even while
    /// writers keep appending. It first waits for the projection's lease.
    pub async fn catch_up(&mut self) -> Result<u64, RunError> {
        self.runner.catch_up().await
    }

    /// Waits for the projection's lease, catches up, then follows the log live until `stop`
    /// fires.
    pub async fn run(&mut self, stop: StopSignal) -> Result<(), RunError> {
        self.runner.run(stop).await
    }

    /// Clears the read model and resets the checkpoint in one transaction, so the next run
    /// replays the whole log. It first waits for the projection's lease.
    pub async fn rebuild(&mut self) -> Result<(), RunError> {
        self.runner.rebuild().await
    }
}

/// The sink of a [`PgProjection`]: each batch in one transaction, its checkpoint compared and
/// set first.
#[derive(Debug)]
struct InTransaction<P>(P);

#[async_trait]
impl<P: PgProjection> ProjectionSink<PgEventStore> for InTransaction<P> {
    type Item = Envelope<P::Event>;

    fn name(&self) -> &str {
        self.0.name()
    }

    fn filter(&self) -> Filter {
        self.0.filter()
    }

    fn unknown_events(&self) -> UnknownEvents {
        self.0.unknown_events()
    }

    fn corrupt_events(&self) -> CorruptEvents {
        self.0.corrupt_events()
    }

    async fn handle_batch(
        &mut self,
        store: &PgEventStore,
        batch: Batch<'_, Envelope<P::Event>>,
    ) -> Result<(), SinkError> {
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // The checkpoint first: its row stays locked to the end, so a second runner's batch
        // waits here, and then finds the checkpoint moved, before its handler writes anything.
        let saved = save_checkpoint_over(&tx, store.sql(), self.0.name(), batch.from, batch.to)
            .await
            .map_err(pg)?;
        if !saved {
            tx.rollback().await.map_err(pg)?;
            let actual = store.load_checkpoint(self.0.name()).await?;
            return Err(StoreError::CheckpointMoved {
                name: self.0.name().to_owned(),
                expected: batch.from,
                actual,
            }
            .into());
        }
        for (index, event) in batch.events.iter().enumerate() {
            // An error drops the transaction: the batch rolls back, checkpoint included.
            self.0
                .handle(&tx, event)
                .await
                .map_err(|source| SinkError::Handler {
                    index,
                    committed: 0,
                    source,
                })?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(())
    }

    async fn reset(&mut self, store: &PgEventStore) -> Result<(), SinkError> {
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        self.0.reset(&tx).await.map_err(SinkError::State)?;
        let statement = tx
            .prepare_cached(&store.sql().save_checkpoint)
            .await
            .map_err(pg)?;
        tx.execute(&statement, &[&self.0.name(), &0i64, &0i64])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(())
    }
}

/// A database error as the runner sees it.
fn pg(error: tokio_postgres::Error) -> SinkError {
    SinkError::Store(PgError::from(error).into())
}
