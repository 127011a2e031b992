//! Projections (read models) and process managers: handlers of decoded events, run from a
//! stored checkpoint, first catching up and then following the log live.
//!
//! One runner ([`ProjectionRunner`]) owns the loop: batches, retries, checkpoints, stopping,
//! and the rule that one runner of a name is active at a time. What it runs is a
//! [`ProjectionSink`]: how a batch is handled and its checkpoint saved. A [`Projection`] is
//! the sink that keeps its checkpoint in the event store; a backend supplies others (on
//! PostgreSQL, a read model written in the batch's transaction, checkpoint included).

use std::time::Duration;

use async_trait::async_trait;

use crate::decode::{CorruptEvents, EventDecodeError, UnknownEvents};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::event::Event;
use crate::store::EventStore;
use crate::stream::{Checkpoint, Position, StreamId, Version};
use crate::subscription::Filter;

mod runner;
mod sink;

pub use runner::{ProjectionRunner, DEFAULT_PROJECTION_BATCH_SIZE};
pub use sink::{Batch, ProjectionSink, SinkError, SinkItem};

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

/// A [`Projection`] is the sink that keeps its checkpoint in the event store: it handles the
/// batch's events one by one, then saves the checkpoint after them (compared and set). When
/// the handler fails on an event, the checkpoint is saved after the events before it, so a
/// retry starts with the one that failed.
#[async_trait]
impl<S: EventStore + ?Sized, P: Projection> ProjectionSink<S> for P {
    type Item = Envelope<P::Event>;

    fn name(&self) -> &str {
        Projection::name(self)
    }

    fn filter(&self) -> Filter {
        Projection::filter(self)
    }

    fn unknown_events(&self) -> UnknownEvents {
        Projection::unknown_events(self)
    }

    fn corrupt_events(&self) -> CorruptEvents {
        Projection::corrupt_events(self)
    }

    async fn resume_from(&self, stored: Option<Checkpoint>) -> Result<Checkpoint, HandlerError> {
        Ok(Projection::checkpoint(self)
            .await?
            .or(stored)
            .unwrap_or(Checkpoint::START))
    }

    async fn handle_batch(
        &mut self,
        store: &S,
        batch: Batch<'_, Self::Item>,
    ) -> Result<(), SinkError> {
        for (index, event) in batch.events.iter().enumerate() {
            if let Err(source) = self.handle(event).await {
                let committed = match index.checked_sub(1).map(|i| &batch.events[i]) {
                    Some(before) => {
                        store
                            .save_checkpoint_if(
                                Projection::name(self),
                                batch.from,
                                before.checkpoint(),
                            )
                            .await?;
                        index
                    }
                    None => 0,
                };
                return Err(SinkError::Handler {
                    index,
                    committed,
                    source,
                });
            }
        }
        store
            .save_checkpoint_if(Projection::name(self), batch.from, batch.to)
            .await?;
        Ok(())
    }

    async fn reset(&mut self, store: &S) -> Result<(), SinkError> {
        Projection::reset(self).await.map_err(SinkError::State)?;
        store
            .save_checkpoint(Projection::name(self), Checkpoint::START)
            .await?;
        Ok(())
    }
}
