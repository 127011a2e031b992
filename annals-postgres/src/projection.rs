//! Exactly-once projections: the read model is written through the runner's transaction, and
//! the checkpoint commits with it.

use std::time::Duration;

use annals::{
    Checkpoint, CorruptEvents, Envelope, Event, EventStore, Filter, HandlerError, HandlerRetry,
    Lease, RecordedEvent, RunError, StopSignal, StoreError, Subscription, UnknownEvents,
    DEFAULT_POLL_INTERVAL, DEFAULT_PROJECTION_BATCH_SIZE,
};
use async_trait::async_trait;
use tokio_postgres::Transaction;

use crate::error::PgError;
use crate::store::{save_checkpoint_over, PgEventStore};

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
    store: PgEventStore,
    projection: P,
    batch_size: usize,
    poll_interval: Duration,
    retry: HandlerRetry,
    /// The stored checkpoint, as last read or committed.
    saved: Option<Checkpoint>,
}

impl<P: PgProjection> PgProjectionRunner<P> {
    /// A runner of `projection` over `store`.
    ///
    /// Batches hold at most [`DEFAULT_PROJECTION_BATCH_SIZE`] events; the runner waits
    /// [`DEFAULT_POLL_INTERVAL`] for a notification when caught up, and retries a failing batch
    /// as the default [`HandlerRetry`] says.
    pub fn new(store: PgEventStore, projection: P) -> Self {
        PgProjectionRunner {
            store,
            projection,
            batch_size: DEFAULT_PROJECTION_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: HandlerRetry::default(),
            saved: None,
        }
    }

    /// How many events one transaction holds at most.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long a caught-up runner waits for a notification before reading the log again.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// How a failing batch is retried before the runner stops and reports it.
    pub fn with_retry(mut self, retry: HandlerRetry) -> Self {
        self.retry = HandlerRetry {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Gives the projection back.
    pub fn into_projection(self) -> P {
        self.projection
    }

    /// Where the projection resumes: its committed checkpoint, or the start of the log.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        let stored = self.store.load_checkpoint(self.projection.name()).await;
        Ok(stored
            .map_err(|source| self.store_error(source))?
            .unwrap_or(Checkpoint::START))
    }

    /// Handles every event committed before the call; returns how many it handled.
    ///
    /// It aims at the head of the log as it stood when it started, so it returns even while
    /// writers keep appending. It first waits for the projection's lease.
    pub async fn catch_up(&mut self) -> Result<u64, RunError> {
        let lease = self.lease().await?;
        let head = self
            .store
            .log_head()
            .await
            .map_err(|source| self.store_error(source))?;
        let mut subscription = self.subscription().await?;
        let mut handled = 0;
        while subscription.checkpoint() < head {
            if !lease.is_held() {
                return Err(self.store_error(StoreError::backend(format!(
                    "lost the lease of projection `{}`",
                    self.projection.name()
                ))));
            }
            let batch = subscription
                .poll_batch_until(head)
                .await
                .map_err(|source| self.store_error(source))?;
            match batch {
                Some(batch) => handled += self.commit_batch(batch).await?,
                None if subscription.checkpoint() >= head => {}
                None => {
                    // Committed events before the head wait behind a transaction in flight.
                    self.store
                        .wait_for_events(subscription.checkpoint(), self.poll_interval)
                        .await
                        .map_err(|source| self.store_error(source))?;
                }
            }
        }
        drop(lease);
        Ok(handled)
    }

    /// Waits for the projection's lease, catches up, then follows the log live until `stop`
    /// fires.
    pub async fn run(&mut self, mut stop: StopSignal) -> Result<(), RunError> {
        loop {
            let lease = tokio::select! {
                lease = self.lease() => lease?,
                () = stop.stopped() => return Ok(()),
            };
            let mut subscription = self.subscription().await?.with_stop(stop.clone());
            loop {
                if !lease.is_held() {
                    tracing::warn!(
                        projection = self.projection.name(),
                        "lost the lease; taking it again"
                    );
                    break;
                }
                let batch = subscription
                    .next_batch()
                    .await
                    .map_err(|source| self.store_error(source))?;
                let Some(batch) = batch else {
                    return Ok(());
                };
                match self.commit_batch(batch).await {
                    Ok(_) => {}
                    Err(RunError::Store {
                        source: StoreError::CheckpointMoved { .. },
                        ..
                    }) => {
                        tracing::warn!(
                            projection = self.projection.name(),
                            "the checkpoint moved under this runner; resuming from it"
                        );
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
            drop(lease);
        }
    }

    /// Clears the read model and resets the checkpoint in one transaction, so the next run
    /// replays the whole log. It first waits for the projection's lease.
    pub async fn rebuild(&mut self) -> Result<(), RunError> {
        let lease = self.lease().await?;
        let mut client = self.store.client().await.map_err(|e| self.store_error(e))?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))?;
        self.projection
            .reset(&tx)
            .await
            .map_err(|source| RunError::State {
                projection: self.projection.name().to_owned(),
                source,
            })?;
        let statement = tx
            .prepare_cached(&self.store.sql().save_checkpoint)
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))?;
        tx.execute(&statement, &[&self.projection.name(), &0i64, &0i64])
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))?;
        tx.commit()
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))?;
        self.saved = Some(Checkpoint::START);
        drop(lease);
        Ok(())
    }

    /// Waits for the projection's lease.
    async fn lease(&self) -> Result<Box<dyn Lease>, RunError> {
        self.store
            .acquire_lease(self.projection.name())
            .await
            .map_err(|source| self.store_error(source))
    }

    /// A subscription from the stored checkpoint, which the next batch must find unchanged.
    async fn subscription(&mut self) -> Result<Subscription<PgEventStore>, RunError> {
        self.saved = self
            .store
            .load_checkpoint(self.projection.name())
            .await
            .map_err(|source| self.store_error(source))?;
        Ok(
            Subscription::new(self.store.clone(), self.saved.unwrap_or(Checkpoint::START))
                .with_filter(self.projection.filter())
                .with_batch_size(self.batch_size)
                .with_poll_interval(self.poll_interval),
        )
    }

    /// Applies `batch` and its checkpoint in one transaction, retrying the whole batch on a
    /// failure.
    async fn commit_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<u64, RunError> {
        let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
            return Ok(0);
        };
        let unknown = self.projection.unknown_events();
        let mut envelopes = Vec::with_capacity(batch.len());
        for recorded in batch {
            let decoded = recorded
                .into_envelope::<P::Event>(unknown)
                .map_err(|source| RunError::Decode {
                    projection: self.projection.name().to_owned(),
                    source,
                })?;
            envelopes.extend(decoded);
        }
        let mut backoff = self.retry.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_commit(&envelopes, last).await {
                Ok(true) => {
                    self.saved = Some(last);
                    return Ok(envelopes.len() as u64);
                }
                Ok(false) => {
                    let actual = self
                        .store
                        .load_checkpoint(self.projection.name())
                        .await
                        .map_err(|source| self.store_error(source))?;
                    return Err(self.store_error(StoreError::CheckpointMoved {
                        name: self.projection.name().to_owned(),
                        expected: self.saved,
                        actual,
                    }));
                }
                Err(Failure::Store(source)) => return Err(self.store_error(source)),
                Err(Failure::Handler(index, source)) if attempts >= self.retry.max_attempts => {
                    let event = &envelopes[index];
                    tracing::error!(projection = self.projection.name(), stream = %event.stream_id,
                        version = %event.version, attempts, error = %source, "handler failed; stopping");
                    return Err(RunError::Handler {
                        projection: self.projection.name().to_owned(),
                        stream: event.stream_id.clone(),
                        version: event.version,
                        position: event.position,
                        attempts,
                        source,
                    });
                }
                Err(Failure::Handler(index, error)) => {
                    tracing::warn!(projection = self.projection.name(),
                        stream = %envelopes[index].stream_id, version = %envelopes[index].version,
                        attempts, %error, "handler failed; retrying the batch");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    /// Applies `envelopes` and saves `checkpoint` over the one the batch started from, in one
    /// transaction; `false` (rolled back) when the stored checkpoint is another.
    async fn try_commit(
        &mut self,
        envelopes: &[Envelope<P::Event>],
        checkpoint: Checkpoint,
    ) -> Result<bool, Failure> {
        let mut client = self.store.client().await.map_err(Failure::Store)?;
        let tx = client.transaction().await.map_err(Failure::pg)?;
        // The checkpoint first: its row stays locked to the end, so a second runner's batch
        // waits here, and then finds the checkpoint moved, before its handler writes anything.
        let saved = save_checkpoint_over(
            &tx,
            self.store.sql(),
            self.projection.name(),
            self.saved,
            checkpoint,
        )
        .await
        .map_err(Failure::pg)?;
        if !saved {
            tx.rollback().await.map_err(Failure::pg)?;
            return Ok(false);
        }
        for (index, envelope) in envelopes.iter().enumerate() {
            self.projection
                .handle(&tx, envelope)
                .await
                .map_err(|e| Failure::Handler(index, e))?;
        }
        tx.commit().await.map_err(Failure::pg)?;
        Ok(true)
    }

    fn store_error(&self, source: StoreError) -> RunError {
        RunError::Store {
            projection: self.projection.name().to_owned(),
            source,
        }
    }
}

/// Why a batch did not commit.
enum Failure {
    /// The database failed (the batch may be retried by running again).
    Store(StoreError),
    /// The handler failed on the event at this index.
    Handler(usize, HandlerError),
}

impl Failure {
    fn pg(error: tokio_postgres::Error) -> Self {
        Failure::Store(PgError::from(error).into())
    }
}
