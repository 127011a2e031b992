//! Projections (read models) and process managers: handlers of decoded events, run from a
//! stored checkpoint, first catching up and then following the log live.

use std::time::Duration;

use async_trait::async_trait;

use crate::decode::{CorruptEvents, EventDecodeError, UnknownEvents};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::event::Event;
use crate::record::RecordedEvent;
use crate::store::{EventStore, Lease};
use crate::stream::{Checkpoint, Position, StreamId, Version};
use crate::subscription::{Filter, StopSignal, Subscription, DEFAULT_POLL_INTERVAL};

/// What a handler returns when it cannot handle an event.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// A handler of decoded events: a read model, or a process manager that turns events into
/// commands on other aggregates.
///
/// A [`ProjectionRunner`] feeds it every event of its [`filter`](Projection::filter) in log
/// order and stores its checkpoint in the event store under its [`name`](Projection::name).
///
/// # Delivery
///
/// By default delivery is **at least once**: the runner saves the checkpoint after each
/// batch, so after a crash the events handled since the last save are handled again. A
/// handler that must not see an event twice either is idempotent (a process manager issuing
/// commands with [`CommandContext::caused_by`](crate::CommandContext::caused_by) is: the
/// repeated command appends nothing), or keeps its own checkpoint atomically with its read
/// model and returns it from
/// [`checkpoint`](Projection::checkpoint): the runner then resumes from there, which is
/// **exactly once**. On PostgreSQL, `annals-postgres` runs projections that write through
/// the runner's transaction, checkpoint included.
///
/// # Example
///
/// A read model of balances, caught up over a store. The trait's methods are `async`:
/// implement it under [`#[annals::async_trait]`](crate::async_trait), which needs no
/// dependency of your own.
///
/// ```
/// use std::collections::HashMap;
///
/// use annals::{Envelope, Event, HandlerError, Projection, ProjectionRunner};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// enum AccountEvent {
///     Deposited { amount: u64 },
/// }
///
/// #[derive(Default)]
/// struct Balances(HashMap<String, u64>);
///
/// #[annals::async_trait]
/// impl Projection for Balances {
///     type Event = AccountEvent;
///
///     fn name(&self) -> &str {
///         "balances"
///     }
///
///     async fn handle(&mut self, event: &Envelope<AccountEvent>) -> Result<(), HandlerError> {
///         let AccountEvent::Deposited { amount } = &event.event;
///         *self.0.entry(event.stream_id.to_string()).or_default() += amount;
///         Ok(())
///     }
/// }
///
/// # async fn demo(store: annals_memory::MemoryEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// let mut runner = ProjectionRunner::new(store, Balances::default());
/// runner.catch_up().await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Projection: Send + Sync {
    /// The event enum the projection decodes. Events of other types are skipped (see
    /// [`unknown_events`](Projection::unknown_events)).
    type Event: Event;

    /// The name its checkpoint is stored under. Renaming a projection rebuilds it.
    fn name(&self) -> &str;

    /// Which events it receives; all by default.
    fn filter(&self) -> Filter {
        Filter::all()
    }

    /// What to do with events of types the event enum does not know: skip them (the default,
    /// since the log holds every aggregate's events) or fail.
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Skip
    }

    /// Handles one event.
    async fn handle(&mut self, event: &Envelope<Self::Event>) -> Result<(), HandlerError>;

    /// The checkpoint the projection keeps itself, if it does (exactly-once delivery); `None`
    /// (the default) lets the runner keep it in the event store.
    async fn checkpoint(&self) -> Result<Option<Checkpoint>, HandlerError> {
        Ok(None)
    }

    /// Clears the read model before a rebuild from the start of the log.
    async fn reset(&mut self) -> Result<(), HandlerError> {
        Ok(())
    }

    /// What to do with a stored event the store cannot read back (see
    /// [`StoreError::CorruptEvent`]): stop with the error (the default, the checkpoint
    /// staying before it) or skip it with a warning.
    fn corrupt_events(&self) -> CorruptEvents {
        CorruptEvents::Fail
    }
}

/// How a runner retries a failing handler before it stops and reports the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerRetry {
    /// How many times an event is handled at most, the first time included (at least 1;
    /// default 5).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles after each one (default 50 ms, so the
    /// default waits 50, 100, 200 and 400 ms before it gives up).
    pub initial_backoff: Duration,
}

impl Default for HandlerRetry {
    /// 5 attempts, waiting 50 ms before the first retry and twice as long before each next.
    fn default() -> Self {
        HandlerRetry {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
        }
    }
}

/// A projection runner stopped on an error. Nothing is skipped: the checkpoint stays before
/// the event that failed, so running again starts with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The store failed.
    #[error("projection `{projection}`: {source}")]
    Store {
        /// The projection.
        projection: String,
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// An event could not be decoded.
    #[error("projection `{projection}`: {source}")]
    Decode {
        /// The projection.
        projection: String,
        /// What went wrong.
        #[source]
        source: EventDecodeError,
    },
    /// The handler failed on an event, every attempt.
    #[error("projection `{projection}` failed on event {version} of stream `{stream}` (position {position}) after {attempts} attempts: {source}")]
    Handler {
        /// The projection.
        projection: String,
        /// The event's stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// The event's global position.
        position: Position,
        /// How many times it was tried.
        attempts: u32,
        /// The last error.
        #[source]
        source: HandlerError,
    },
    /// The projection could not report or reset its own state.
    #[error("projection `{projection}`: {source}")]
    State {
        /// The projection.
        projection: String,
        /// What it reported.
        #[source]
        source: HandlerError,
    },
}

/// Runs a [`Projection`] over a store: catch up from the checkpoint, then follow live.
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
    projection: P,
    batch_size: usize,
    poll_interval: Duration,
    retry: HandlerRetry,
    /// The checkpoint stored under the projection's name, as last read or saved.
    saved: Option<Checkpoint>,
}

/// The default number of events one batch of a projection runner holds at most: 500.
///
/// Smaller than the readers' [`DEFAULT_BATCH_SIZE`](crate::DEFAULT_BATCH_SIZE): a batch is
/// handled and checkpointed as one unit (on PostgreSQL, one transaction, which holds readers
/// of the global log back while it runs), so a batch of many slow handler calls would delay
/// everything after it. Raise it with `with_batch_size` for a projection whose handlers are
/// cheap and which catches up on a long log.
pub const DEFAULT_PROJECTION_BATCH_SIZE: usize = 500;

impl<S: EventStore + Clone, P: Projection> ProjectionRunner<S, P> {
    /// A runner of `projection` over `store`, with batches of at most
    /// [`DEFAULT_PROJECTION_BATCH_SIZE`] events, [`DEFAULT_POLL_INTERVAL`] and the default
    /// [`HandlerRetry`].
    pub fn new(store: S, projection: P) -> Self {
        ProjectionRunner {
            store,
            projection,
            batch_size: DEFAULT_PROJECTION_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: HandlerRetry::default(),
            saved: None,
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
        &self.projection
    }

    /// The projection, mutably.
    pub fn projection_mut(&mut self) -> &mut P {
        &mut self.projection
    }

    /// Gives the projection back.
    pub fn into_projection(self) -> P {
        self.projection
    }

    /// Where the projection resumes: its own checkpoint if it keeps one, else the one stored
    /// under its name, else the start of the log.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RunError> {
        let stored = self
            .store
            .load_checkpoint(self.projection.name())
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
                Some(batch) => handled += self.handle_batch(batch).await?,
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
        if self.saved != Some(subscription.checkpoint())
            && subscription.checkpoint() != Checkpoint::START
        {
            self.save(subscription.checkpoint()).await?;
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
                match self.handle_batch(batch).await {
                    Ok(_) => {}
                    Err(RunError::Store {
                        source: StoreError::CheckpointMoved { .. },
                        ..
                    }) => {
                        tracing::warn!(
                            projection = self.projection.name(),
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
        self.projection
            .reset()
            .await
            .map_err(|source| self.state(source))?;
        self.store
            .save_checkpoint(self.projection.name(), Checkpoint::START)
            .await
            .map_err(|source| self.store_error(source))?;
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

    fn check_lease(&self, lease: &dyn Lease) -> Result<(), RunError> {
        if lease.is_held() {
            return Ok(());
        }
        Err(self.store_error(StoreError::backend(format!(
            "lost the lease of projection `{}`",
            self.projection.name()
        ))))
    }

    /// The projection's own checkpoint if it keeps one, else `stored`.
    async fn resume_from(&self, stored: Option<Checkpoint>) -> Result<Checkpoint, RunError> {
        if let Some(own) = self
            .projection
            .checkpoint()
            .await
            .map_err(|source| self.state(source))?
        {
            return Ok(own);
        }
        Ok(stored.unwrap_or(Checkpoint::START))
    }

    /// A subscription from where the projection resumes; reads the stored checkpoint, which
    /// the next save must find unchanged.
    async fn subscription(&mut self) -> Result<Subscription<S>, RunError> {
        self.saved = self
            .store
            .load_checkpoint(self.projection.name())
            .await
            .map_err(|source| self.store_error(source))?;
        let from = self.resume_from(self.saved).await?;
        Ok(Subscription::new(self.store.clone(), from)
            .with_filter(self.projection.filter())
            .with_corrupt_events(self.projection.corrupt_events())
            .with_batch_size(self.batch_size)
            .with_poll_interval(self.poll_interval))
    }

    /// Handles one batch and saves the checkpoint after it; on a failure, saves the
    /// checkpoint of the last event handled and reports the one that failed.
    async fn handle_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<u64, RunError> {
        let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
            return Ok(0);
        };
        let mut handled = 0;
        let mut done = None;
        for recorded in batch {
            let checkpoint = recorded.checkpoint();
            let decoded = recorded.into_envelope::<P::Event>(self.projection.unknown_events());
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(source) => {
                    self.save_after(done).await?;
                    return Err(RunError::Decode {
                        projection: self.projection.name().to_owned(),
                        source,
                    });
                }
            };
            if let Some(envelope) = decoded {
                if let Err(error) = self.handle_with_retry(&envelope).await {
                    self.save_after(done).await?;
                    return Err(error);
                }
                handled += 1;
            }
            done = Some(checkpoint);
        }
        self.save(last).await?;
        Ok(handled)
    }

    async fn handle_with_retry(&mut self, envelope: &Envelope<P::Event>) -> Result<(), RunError> {
        let mut backoff = self.retry.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.projection.handle(envelope).await {
                Ok(()) => return Ok(()),
                Err(source) if attempts >= self.retry.max_attempts => {
                    tracing::error!(projection = self.projection.name(), stream = %envelope.stream_id,
                        version = %envelope.version, attempts, error = %source, "handler failed; stopping");
                    return Err(RunError::Handler {
                        projection: self.projection.name().to_owned(),
                        stream: envelope.stream_id.clone(),
                        version: envelope.version,
                        position: envelope.position,
                        attempts,
                        source,
                    });
                }
                Err(error) => {
                    tracing::warn!(projection = self.projection.name(), stream = %envelope.stream_id,
                        version = %envelope.version, attempts, %error, "handler failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    async fn save_after(&mut self, done: Option<Checkpoint>) -> Result<(), RunError> {
        match done {
            Some(checkpoint) => self.save(checkpoint).await,
            None => Ok(()),
        }
    }

    /// Saves `checkpoint` over the one the runner read or saved last.
    async fn save(&mut self, checkpoint: Checkpoint) -> Result<(), RunError> {
        self.store
            .save_checkpoint_if(self.projection.name(), self.saved, checkpoint)
            .await
            .map_err(|source| self.store_error(source))?;
        self.saved = Some(checkpoint);
        Ok(())
    }

    fn store_error(&self, source: StoreError) -> RunError {
        RunError::Store {
            projection: self.projection.name().to_owned(),
            source,
        }
    }

    fn state(&self, source: HandlerError) -> RunError {
        RunError::State {
            projection: self.projection.name().to_owned(),
            source,
        }
    }
}
