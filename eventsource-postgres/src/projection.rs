//! Exactly-once projections: the read model is written through the runner's transaction, and
//! the checkpoint commits with it.

use std::time::Duration;

use async_trait::async_trait;
use eventsource::{
    Checkpoint, Envelope, Event, EventStore, Filter, HandlerError, HandlerRetry, RecordedEvent,
    RunError, StopSignal, StoreError, Subscription, UnknownEvents, DEFAULT_POLL_INTERVAL,
};
use tokio_postgres::Transaction;

use crate::config::PgError;
use crate::rows::signed;
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
}

/// Runs a [`PgProjection`]: catch up from its checkpoint, then follow the log live, each batch
/// in one transaction with its checkpoint.
#[derive(Debug)]
pub struct PgProjectionRunner<P> {
    store: PgEventStore,
    projection: P,
    batch_size: usize,
    poll_interval: Duration,
    retry: HandlerRetry,
}

impl<P: PgProjection> PgProjectionRunner<P> {
    /// A runner of `projection` over `store`.
    pub fn new(store: PgEventStore, projection: P) -> Self {
        PgProjectionRunner {
            store,
            projection,
            batch_size: 500,
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: HandlerRetry::default(),
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

    /// Handles every event visible now; returns how many it handled.
    pub async fn catch_up(&mut self) -> Result<u64, RunError> {
        let mut subscription = self.subscription().await?;
        let mut handled = 0;
        while let Some(batch) = subscription
            .poll_batch()
            .await
            .map_err(|source| self.store_error(source))?
        {
            handled += self.commit_batch(batch).await?;
        }
        Ok(handled)
    }

    /// Catches up, then follows the log live until `stop` fires.
    pub async fn run(&mut self, stop: StopSignal) -> Result<(), RunError> {
        let mut subscription = self.subscription().await?.with_stop(stop);
        while let Some(batch) = subscription
            .next_batch()
            .await
            .map_err(|source| self.store_error(source))?
        {
            self.commit_batch(batch).await?;
        }
        Ok(())
    }

    /// Clears the read model and resets the checkpoint in one transaction, so the next run
    /// replays the whole log.
    pub async fn rebuild(&mut self) -> Result<(), RunError> {
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
        self.save_checkpoint(&tx, Checkpoint::START)
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))?;
        tx.commit()
            .await
            .map_err(|e| self.store_error(PgError::from(e).into()))
    }

    async fn subscription(&self) -> Result<Subscription<PgEventStore>, RunError> {
        Ok(
            Subscription::new(self.store.clone(), self.checkpoint().await?)
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
                Ok(()) => return Ok(envelopes.len() as u64),
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

    async fn try_commit(
        &mut self,
        envelopes: &[Envelope<P::Event>],
        checkpoint: Checkpoint,
    ) -> Result<(), Failure> {
        let mut client = self.store.client().await.map_err(Failure::Store)?;
        let tx = client.transaction().await.map_err(Failure::pg)?;
        for (index, envelope) in envelopes.iter().enumerate() {
            self.projection
                .handle(&tx, envelope)
                .await
                .map_err(|e| Failure::Handler(index, e))?;
        }
        self.save_checkpoint(&tx, checkpoint)
            .await
            .map_err(Failure::pg)?;
        tx.commit().await.map_err(Failure::pg)
    }

    /// Saves the projection's checkpoint through `tx`, so it commits with the read model.
    async fn save_checkpoint(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        checkpoint: Checkpoint,
    ) -> Result<(), tokio_postgres::Error> {
        let statement = tx.prepare_cached(&self.store.sql().save_checkpoint).await?;
        tx.execute(
            &statement,
            &[
                &self.projection.name(),
                &signed(checkpoint.commit),
                &signed(checkpoint.position.0),
            ],
        )
        .await?;
        Ok(())
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
