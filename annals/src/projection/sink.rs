//! [`ProjectionSink`]: what a [`ProjectionRunner`](crate::ProjectionRunner) runs. The runner
//! owns the loop; a sink says how one batch is handled and its checkpoint saved.

use std::time::SystemTime;

use async_trait::async_trait;

use crate::decode::{CorruptEvents, EventDecodeError, UnknownEvents};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::event::Event;
use crate::record::RecordedEvent;
use crate::stream::{Checkpoint, Position, StreamId, Version};
use crate::subscription::Filter;

use super::HandlerError;

/// How a [`ProjectionRunner`](crate::ProjectionRunner) hands over a batch of decoded events
/// and saves the checkpoint after it.
///
/// Every [`Projection`](super::Projection) is a sink that keeps its checkpoint in the event
/// store. A backend implements this trait for sinks that commit a batch their own way: on
/// PostgreSQL, a read model written in one transaction with its checkpoint. The runner does
/// the rest, the same for every sink: it takes the lease, reads the log from where the sink
/// resumes, decodes, batches, retries a failing batch and stops.
///
/// The store is the runner's, `S`; a sink for one backend implements `ProjectionSink<ThatStore>`.
#[async_trait]
pub trait ProjectionSink<S: ?Sized>: Send + Sync {
    /// What the sink receives of each event: an [`Envelope`] of the event enum it decodes, or
    /// the [`RecordedEvent`] as stored (for a sink that passes stored events on unchanged).
    type Item: SinkItem;

    /// The name its checkpoint and its lease are stored under.
    fn name(&self) -> &str;

    /// Which events it receives; all by default.
    fn filter(&self) -> Filter {
        Filter::all()
    }

    /// What to do with events of types the event enum does not know; skip them by default
    /// (the log holds every aggregate's events).
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Skip
    }

    /// What to do with a stored event the store cannot read back; stop with the error by
    /// default, the checkpoint staying before it.
    fn corrupt_events(&self) -> CorruptEvents {
        CorruptEvents::Fail
    }

    /// Where the sink resumes, given the checkpoint stored under its name: that checkpoint
    /// (or the start of the log) unless the sink keeps its own.
    async fn resume_from(&self, stored: Option<Checkpoint>) -> Result<Checkpoint, HandlerError> {
        Ok(stored.unwrap_or(Checkpoint::START))
    }

    /// Handles `batch.events` and saves `batch.to` as the checkpoint stored under the sink's
    /// name, provided that it still is `batch.from` (compare and set: otherwise
    /// [`StoreError::CheckpointMoved`], with nothing of the batch committed).
    ///
    /// The batch may hold no events (the log's events there were filtered out or skipped):
    /// the checkpoint still moves.
    async fn handle_batch(
        &mut self,
        store: &S,
        batch: Batch<'_, Self::Item>,
    ) -> Result<(), SinkError>;

    /// Clears the read model and stores the start of the log as the checkpoint, so the next
    /// run replays the whole log.
    async fn reset(&mut self, store: &S) -> Result<(), SinkError>;
}

/// One batch for a [`ProjectionSink`]: events in log order and the checkpoint to move.
#[derive(Debug)]
#[non_exhaustive]
pub struct Batch<'a, I> {
    /// The events, in log order.
    pub events: &'a [I],
    /// The checkpoint the batch starts from, as stored (`None`: none is stored yet).
    pub from: Option<Checkpoint>,
    /// The checkpoint to store once the batch is handled: after its last event, or further
    /// when events after it were filtered out.
    pub to: Checkpoint,
}

/// An event as a [`ProjectionSink`] receives it: made from the stored event (the events a sink
/// skips give `Ok(None)`), and naming its place in the log.
pub trait SinkItem: Sized + Send + Sync + 'static {
    /// The item of `recorded`: `Ok(None)` for an event to skip (see [`UnknownEvents`]).
    fn from_recorded(
        recorded: RecordedEvent,
        unknown: UnknownEvents,
    ) -> Result<Option<Self>, EventDecodeError>;

    /// The stream the event belongs to.
    fn stream_id(&self) -> &StreamId;

    /// Its version in the stream.
    fn version(&self) -> Version;

    /// Its position in the global log.
    fn position(&self) -> Position;

    /// The reader's checkpoint just after it.
    fn checkpoint(&self) -> Checkpoint;

    /// When the store recorded it.
    fn recorded_at(&self) -> SystemTime;
}

/// Decoded through the event enum's upcaster chain.
impl<E: Event> SinkItem for Envelope<E> {
    fn from_recorded(
        recorded: RecordedEvent,
        unknown: UnknownEvents,
    ) -> Result<Option<Self>, EventDecodeError> {
        recorded.into_envelope(unknown)
    }

    fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    fn version(&self) -> Version {
        self.version
    }

    fn position(&self) -> Position {
        self.position
    }

    fn checkpoint(&self) -> Checkpoint {
        Envelope::checkpoint(self)
    }

    fn recorded_at(&self) -> SystemTime {
        self.recorded_at
    }
}

/// As stored, body and metadata untouched; nothing is skipped.
impl SinkItem for RecordedEvent {
    fn from_recorded(
        recorded: RecordedEvent,
        _unknown: UnknownEvents,
    ) -> Result<Option<Self>, EventDecodeError> {
        Ok(Some(recorded))
    }

    fn stream_id(&self) -> &StreamId {
        &self.stream_id
    }

    fn version(&self) -> Version {
        self.version
    }

    fn position(&self) -> Position {
        self.position
    }

    fn checkpoint(&self) -> Checkpoint {
        RecordedEvent::checkpoint(self)
    }

    fn recorded_at(&self) -> SystemTime {
        self.recorded_at
    }
}

/// Why a [`ProjectionSink`] did not commit a whole batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The handler failed on `events[index]`. The first `committed` events (at most `index`)
    /// are handled and the checkpoint after them saved; the runner retries from there.
    #[error("the handler failed on event {index} of the batch: {source}")]
    Handler {
        /// The index of the event that failed, in the batch.
        index: usize,
        /// How many events of the batch are committed, checkpoint included.
        committed: usize,
        /// What the handler reported.
        #[source]
        source: HandlerError,
    },
    /// The sink could not reset its read model.
    #[error("cannot reset the read model: {0}")]
    State(#[source] HandlerError),
    /// The store failed, or the checkpoint moved ([`StoreError::CheckpointMoved`]); nothing of
    /// the batch that was not already reported committed is.
    #[error(transparent)]
    Store(#[from] StoreError),
}
