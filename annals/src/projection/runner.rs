//! [`ProjectionRunner`]: the one loop every projection runs in, whatever its sink.

use std::time::{Duration, SystemTime};

use tracing::field::Empty;
use tracing::Instrument;

use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::{EventStore, Lease};
use crate::stream::Checkpoint;
use crate::subscription::{StopSignal, Subscription, DEFAULT_POLL_INTERVAL};
use crate::telemetry::ProjectionMetrics;

use super::{Batch, HandlerError, HandlerRetry, ProjectionSink, RunError, SinkError, SinkItem};

/// Runs a [`Projection`](super::Projection) (or any [`ProjectionSink`]) over a store: catch up from the
/// checkpoint, then follow live.
///
/// # One runner at a time
///
/// Any number of runners of one projection may be started, in one process or in many: each
/// call to [`catch_up`](ProjectionRunner::catch_up), [`run`](ProjectionRunner::run) or
/// [`rebuild`](ProjectionRunner::rebuild) first takes the projection's lease from the store
/// ([`EventStore::acquire_lease`]) and holds it until it returns, so one runner handles
/// events at a time and the others wait. A lease dies with its holder: when the runner
/// holding it stops, is dropped or its task is aborted, the next one waiting takes over at
/// once (on PostgreSQL, as soon as the server sees the holder's connection close: at once
/// when its process exits, within the TCP keepalive settings when its machine is lost).
///
/// A checkpoint is only saved over the checkpoint its batch started from
/// ([`EventStore::save_checkpoint_if`]): a runner that finds it moved (it lost its lease
/// while it worked) gives the lease up, takes it again and resumes from the stored
/// checkpoint, so the stored checkpoint never moves backwards.
#[derive(Debug)]
pub struct ProjectionRunner<S, P> {
    store: S,
    sink: P,
    batch_size: usize,
    poll_interval: Duration,
    retry: HandlerRetry,
    /// The checkpoint stored under the projection's name, as last read or saved.
    saved: Option<Checkpoint>,
    metrics: ProjectionMetrics,
}

/// The default number of events one batch of a projection runner holds at most: 500.
///
/// Smaller than the readers' [`DEFAULT_BATCH_SIZE`](crate::DEFAULT_BATCH_SIZE): a batch is
/// handled and checkpointed as one unit (on PostgreSQL, one transaction, which holds readers
/// of the global log back while it runs), so a batch of many slow handler calls would delay
/// everything after it. Raise it with `with_batch_size` for a projection whose handlers are
/// cheap and which catches up on a long log.
pub const DEFAULT_PROJECTION_BATCH_SIZE: usize = 500;
impl<S: EventStore + Clone, P: ProjectionSink<S>> ProjectionRunner<S, P> {
    /// A runner of `projection` over `store`, with batches of at most
    /// [`DEFAULT_PROJECTION_BATCH_SIZE`] events, [`DEFAULT_POLL_INTERVAL`] and the default
    /// [`HandlerRetry`].
    pub fn new(store: S, projection: P) -> Self {
        let metrics = ProjectionMetrics::new(projection.name());
        ProjectionRunner {
            store,
            sink: projection,
            batch_size: DEFAULT_PROJECTION_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: HandlerRetry::default(),
            saved: None,
            metrics,
        }
    }

    /// How many events one batch (and one checkpoint save) holds at most.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long a caught-up runner waits for a notification before reading the log again.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// How a failing handler is retried.
    pub fn with_retry(mut self, retry: HandlerRetry) -> Self {
        self.retry = HandlerRetry {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.sink
    }

    /// The projection, mutably.
    pub fn projection_mut(&mut self) -> &mut P {
        &mut self.sink
    }

    /// Gives the projection back.
    pub fn into_projection(self) -> P {
        self.sink
    }

    /// Where the projection resumes: its own checkpoint if it keeps one, else the one stored
    /// under its name, else the start of the log.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        let stored = self
            .store
            .load_checkpoint(self.sink.name())
            .await
            .map_err(|source| self.store_error(source))?;
        self.resume_from(stored).await
    }

    /// Handles every event committed before the call, then returns how many it handled.
    ///
    /// It aims at the head of the log as it stood when it started ([`EventStore::log_head`]),
    /// so it returns even while writers keep appending; it waits for events held back behind
    /// a transaction in flight before that head. It first waits for the projection's lease.
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
            self.check_lease(&*lease)?;
            let batch = subscription
                .poll_batch_until(head)
                .await
                .map_err(|source| self.store_error(source))?;
            match batch {
                Some(batch) => {
                    handled += self.handle_batch(batch).await?;
                    self.record_lag(subscription.checkpoint(), head);
                }
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
        // Events the filter left out still move the checkpoint.
        let reached = subscription.checkpoint();
        if self.saved != Some(reached) && reached != Checkpoint::START {
            self.commit(Vec::new(), reached).await?;
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
                        projection = self.sink.name(),
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
                let full = batch.len() >= self.batch_size;
                match self.handle_batch(batch).await {
                    Ok(_) if full && self.metrics.recording => {
                        // More may be waiting: how much is worth one look at the head, when
                        // somebody records it.
                        if let Ok(head) = self.store.log_head().await {
                            self.record_lag(subscription.checkpoint(), head);
                        }
                    }
                    Ok(_) if full => {}
                    Ok(_) => self.record_lag(subscription.checkpoint(), subscription.checkpoint()),
                    Err(RunError::Store {
                        source: StoreError::CheckpointMoved { .. },
                        ..
                    }) => {
                        tracing::warn!(
                            projection = self.sink.name(),
                            "another runner moved the checkpoint; resuming from it"
                        );
                        break;
                    }
                    Err(error) => return Err(error),
                }
            }
            drop(lease);
        }
    }

    /// Clears the read model and the checkpoint, so the next run replays the whole log. It
    /// first waits for the projection's lease.
    pub async fn rebuild(&mut self) -> Result<(), RunError> {
        let lease = self.lease().await?;
        self.sink
            .reset(&self.store)
            .await
            .map_err(|error| match error {
                SinkError::Store(source) => self.store_error(source),
                SinkError::State(source) | SinkError::Handler { source, .. } => self.state(source),
            })?;
        self.saved = Some(Checkpoint::START);
        drop(lease);
        Ok(())
    }

    /// Waits for the projection's lease.
    async fn lease(&self) -> Result<Box<dyn Lease>, RunError> {
        self.store
            .acquire_lease(self.sink.name())
            .await
            .map_err(|source| self.store_error(source))
    }

    fn check_lease(&self, lease: &dyn Lease) -> Result<(), RunError> {
        if lease.is_held() {
            return Ok(());
        }
        Err(self.store_error(StoreError::backend(format!(
            "lost the lease of projection `{}`",
            self.sink.name()
        ))))
    }

    /// Where the sink resumes, given the checkpoint stored under its name.
    async fn resume_from(&self, stored: Option<Checkpoint>) -> Result<Checkpoint, RunError> {
        self.sink
            .resume_from(stored)
            .await
            .map_err(|source| self.state(source))
    }

    /// A subscription from where the projection resumes; reads the stored checkpoint, which
    /// the next save must find unchanged.
    async fn subscription(&mut self) -> Result<Subscription<S>, RunError> {
        self.saved = self
            .store
            .load_checkpoint(self.sink.name())
            .await
            .map_err(|source| self.store_error(source))?;
        let from = self.resume_from(self.saved).await?;
        Ok(Subscription::new(self.store.clone(), from)
            .with_filter(self.sink.filter())
            .with_corrupt_events(self.sink.corrupt_events())
            .with_batch_size(self.batch_size)
            .with_poll_interval(self.poll_interval))
    }

    /// Decodes `batch` and commits it. An event that does not decode stops the batch: the
    /// events before it are committed, and the error names it.
    async fn handle_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<u64, RunError> {
        let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
            return Ok(0);
        };
        let unknown = self.sink.unknown_events();
        let mut events = Vec::with_capacity(batch.len());
        let mut decoded_to = None;
        for recorded in batch {
            let checkpoint = recorded.checkpoint();
            match P::Item::from_recorded(recorded, unknown) {
                Ok(decoded) => events.extend(decoded),
                Err(source) => {
                    if let Some(to) = decoded_to {
                        self.commit(events, to).await?;
                    }
                    return Err(RunError::Decode {
                        projection: self.sink.name().to_owned(),
                        source,
                    });
                }
            }
            decoded_to = Some(checkpoint);
        }
        self.commit(events, last).await
    }

    /// Hands `events` to the sink with the checkpoint `to`, retrying as the [`HandlerRetry`]
    /// says: a sink that committed the events before a failing one is retried from the one
    /// that failed, one that committed nothing with the whole batch. Each event is tried at
    /// most `max_attempts` times.
    async fn commit(&mut self, events: Vec<P::Item>, to: Checkpoint) -> Result<u64, RunError> {
        let span = tracing::info_span!(
            "annals.projection.batch",
            annals.projection = self.sink.name(),
            annals.events = events.len(),
            annals.checkpoint = %to,
            annals.lag_seconds = Empty,
        );
        let last_recorded = events.last().map(SinkItem::recorded_at);
        let committed = self
            .commit_with_retries(events, to)
            .instrument(span.clone())
            .await?;
        self.metrics.events.increment(committed);
        if let Some(recorded) = last_recorded {
            let lag = SystemTime::now()
                .duration_since(recorded)
                .unwrap_or_default()
                .as_secs_f64();
            self.metrics.lag_seconds.set(lag);
            span.record("annals.lag_seconds", lag);
        }
        Ok(committed)
    }

    /// [`commit`](ProjectionRunner::commit)'s attempts.
    async fn commit_with_retries(
        &mut self,
        events: Vec<P::Item>,
        to: Checkpoint,
    ) -> Result<u64, RunError> {
        let mut start = 0;
        let mut attempts = 0;
        let mut backoff = self.retry.initial_backoff;
        loop {
            attempts += 1;
            let batch = Batch {
                events: &events[start..],
                from: self.saved,
                to,
            };
            let (index, committed, source) = match self.sink.handle_batch(&self.store, batch).await
            {
                Ok(()) => {
                    self.saved = Some(to);
                    return Ok(events.len() as u64);
                }
                Err(SinkError::Store(source)) => return Err(self.store_error(source)),
                Err(SinkError::State(source)) => return Err(self.state(source)),
                Err(SinkError::Handler {
                    index,
                    committed,
                    source,
                }) => (index, committed.min(index), source),
            };
            self.metrics.errors.increment(1);
            if committed > 0 {
                // The events before the failing one are committed: it starts the retry, and
                // this was its first attempt.
                self.saved = events.get(start + committed - 1).map(SinkItem::checkpoint);
                start += committed;
                attempts = 1;
            }
            let Some(failed) = events.get(start + index - committed) else {
                return Err(self.state(HandlerError::from(format!(
                    "the sink reported a failure on event {index} of a batch of {}",
                    events.len() - start
                ))));
            };
            if attempts >= self.retry.max_attempts {
                tracing::error!(projection = self.sink.name(), stream = %failed.stream_id(),
                    version = %failed.version(), attempts, error = %source, "handler failed; stopping");
                return Err(RunError::Handler {
                    projection: self.sink.name().to_owned(),
                    stream: failed.stream_id().clone(),
                    version: failed.version(),
                    position: failed.position(),
                    attempts,
                    source,
                });
            }
            tracing::warn!(projection = self.sink.name(), stream = %failed.stream_id(),
                version = %failed.version(), attempts, error = %source, "handler failed; retrying");
            self.metrics.retries.increment(1);
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    /// Records how far the checkpoint `reached` is behind `head`, in positions.
    fn record_lag(&self, reached: Checkpoint, head: Checkpoint) {
        let behind = head.position.0.saturating_sub(reached.position.0);
        self.metrics.lag_events.set(behind as f64);
    }

    fn store_error(&self, source: StoreError) -> RunError {
        RunError::Store {
            projection: self.sink.name().to_owned(),
            source,
        }
    }

    fn state(&self, source: HandlerError) -> RunError {
        RunError::State {
            projection: self.sink.name().to_owned(),
            source,
        }
    }
}
