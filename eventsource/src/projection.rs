//! Projections (read models) and process managers: handlers of decoded events, run from a
//! stored checkpoint, first catching up and then following the log live.

use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::{Envelope, EventDecodeError, UnknownEvents};
use crate::event::Event;
use crate::metadata::Metadata;
use crate::repository::CommandContext;
use crate::store::{EventStore, RecordedEvent, StoreError};
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
/// commands with [`CommandContext::caused_by`] is: the repeated command appends nothing), or
/// keeps its own checkpoint atomically with its read model and returns it from
/// [`checkpoint`](Projection::checkpoint): the runner then resumes from there, which is
/// **exactly once**. On PostgreSQL, `eventsource-postgres` runs projections that write through
/// the runner's transaction, checkpoint included.
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
}

/// How a runner retries a failing handler before it stops and reports the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerRetry {
    /// How many times an event is handled at most, the first time included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles after each one.
    pub initial_backoff: Duration,
}

impl Default for HandlerRetry {
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
#[derive(Debug)]
pub struct ProjectionRunner<S, P> {
    store: S,
    projection: P,
    batch_size: usize,
    poll_interval: Duration,
    retry: HandlerRetry,
}

impl<S: EventStore + Clone, P: Projection> ProjectionRunner<S, P> {
    /// A runner of `projection` over `store`.
    pub fn new(store: S, projection: P) -> Self {
        ProjectionRunner {
            store,
            projection,
            batch_size: 500,
            poll_interval: DEFAULT_POLL_INTERVAL,
            retry: HandlerRetry::default(),
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
        if let Some(own) = self
            .projection
            .checkpoint()
            .await
            .map_err(|source| self.state(source))?
        {
            return Ok(own);
        }
        let stored = self.store.load_checkpoint(self.projection.name()).await;
        Ok(stored
            .map_err(|source| self.store_error(source))?
            .unwrap_or(Checkpoint::START))
    }

    /// Handles every event visible now, then returns how many it handled.
    pub async fn catch_up(&mut self) -> Result<u64, RunError> {
        let mut subscription = self.subscription().await?;
        let mut handled = 0;
        while let Some(batch) = subscription
            .poll_batch()
            .await
            .map_err(|source| self.store_error(source))?
        {
            handled += self.handle_batch(batch).await?;
        }
        self.save(subscription.checkpoint()).await?;
        Ok(handled)
    }

    /// Catches up, then follows the log live until `stop` fires.
    pub async fn run(&mut self, stop: StopSignal) -> Result<(), RunError> {
        let mut subscription = self.subscription().await?.with_stop(stop);
        loop {
            let batch = subscription
                .next_batch()
                .await
                .map_err(|source| self.store_error(source))?;
            let Some(batch) = batch else {
                return Ok(());
            };
            self.handle_batch(batch).await?;
        }
    }

    /// Clears the read model and the checkpoint, so the next run replays the whole log.
    pub async fn rebuild(&mut self) -> Result<(), RunError> {
        self.projection
            .reset()
            .await
            .map_err(|source| self.state(source))?;
        self.save(Checkpoint::START).await
    }

    async fn subscription(&self) -> Result<Subscription<S>, RunError> {
        Ok(
            Subscription::new(self.store.clone(), self.checkpoint().await?)
                .with_filter(self.projection.filter())
                .with_batch_size(self.batch_size)
                .with_poll_interval(self.poll_interval),
        )
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

    async fn save_after(&self, done: Option<Checkpoint>) -> Result<(), RunError> {
        match done {
            Some(checkpoint) => self.save(checkpoint).await,
            None => Ok(()),
        }
    }

    async fn save(&self, checkpoint: Checkpoint) -> Result<(), RunError> {
        self.store
            .save_checkpoint(self.projection.name(), checkpoint)
            .await
            .map_err(|source| self.store_error(source))
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

impl CommandContext {
    /// The context for a command a process manager named `process` issues in reaction to
    /// `event`: the event's id as causation, its correlation id carried over (or the event's
    /// own id, starting a new flow), the process as actor, and an idempotency key made of the
    /// process, the event and `index` (the command's number among those issued for this
    /// event), so that handling the event again never issues the command twice.
    pub fn caused_by<E>(process: &str, event: &Envelope<E>, index: usize) -> Self {
        let metadata = Metadata {
            correlation_id: Some(event.metadata.correlation_id.unwrap_or(event.event_id)),
            causation_id: Some(event.event_id),
            actor: Some(process.to_owned()),
            headers: Default::default(),
        };
        CommandContext::new()
            .with_metadata(metadata)
            .with_idempotency_key(format!("{process}/{}/{index}", event.event_id))
    }
}
