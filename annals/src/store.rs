//! The [`EventStore`] trait every backend implements, and the records it stores and returns.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use uuid::Uuid;

use crate::envelope::{decode_batch, CorruptEvents, Envelope, ReadError, UnknownEvents};
use crate::event::{EncodeError, Event, Payload};
use crate::metadata::Metadata;
use crate::stream::{Checkpoint, ExpectedVersion, Position, StreamId, Version};

/// An event to append: its id, type, schema version, encoded body and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event's unique id. Appending an id that is already stored is idempotent.
    pub event_id: Uuid,
    /// The type name.
    pub event_type: Cow<'static, str>,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body.
    pub payload: Payload,
    /// Audit metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event from its stored parts, with a new (UUID v7) event id and no metadata: for
    /// importing or seeding data written elsewhere.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: Payload,
    ) -> Self {
        NewEvent {
            event_id: new_event_id(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Encodes `event` with a new event id.
    ///
    /// New ids are UUID v7: random, but ordered by time to the millisecond, so a store's
    /// unique index on event ids grows at its end like its other indexes instead of being
    /// written all over.
    pub fn encode<E: Event>(event: &E, metadata: Metadata) -> Result<Self, EncodeError> {
        Ok(NewEvent {
            event_id: new_event_id(),
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            payload: event.encode()?,
            metadata,
        })
    }

    /// Replaces the event id, for example with one derived from an idempotency key.
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// A new event id: a UUID v7 of the current time in milliseconds and 74 random bits.
///
/// Built here rather than with `Uuid::now_v7`, whose counter keeps ids made in one
/// millisecond in order through a context shared by every thread: that context and its
/// 128-bit time arithmetic cost as much as the rest of a command on the memory store. Ids of
/// one millisecond are in random order, which keeps an index on them growing at its end.
fn new_event_id() -> Uuid {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let millis = since
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(since.subsec_millis()));
    // The random bytes of a v4 id (uuid's thread-local generator): all but the two that hold
    // its version and variant.
    let random = Uuid::new_v4().into_bytes();
    let mut bits = [0; 10];
    bits[..6].copy_from_slice(&random[..6]);
    bits[6..].copy_from_slice(&random[10..14]);
    uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

/// An event as stored, with the place the store gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The event's unique id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream (1 for the first event).
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
    /// The commit (transaction) it was written in; see [`Checkpoint`].
    pub commit: u64,
    /// The type name.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body.
    pub payload: Payload,
    /// Audit metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}

impl RecordedEvent {
    /// The reader's checkpoint just after this event.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            commit: self.commit,
            position: self.position,
        }
    }

    /// Decodes the payload into the event enum `E`.
    ///
    /// `Ok(None)` is an event of a type `E` declares as removed.
    pub fn decode<E: Event>(&self) -> Result<Option<E>, crate::event::DecodeError> {
        ReplayedEvent::of(self).decode()
    }
}

/// One event as [`EventStore::replay_stream`] lends it out: what decoding and applying it
/// needs, borrowed from the store for the duration of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedEvent<'a> {
    /// Its version in the stream.
    pub version: Version,
    /// The type name.
    pub event_type: &'a str,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body, as stored.
    pub payload: &'a str,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}

impl<'a> ReplayedEvent<'a> {
    /// The replay view of a recorded event.
    pub fn of(event: &'a RecordedEvent) -> Self {
        ReplayedEvent {
            version: event.version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: event.payload.as_str(),
            recorded_at: event.recorded_at,
        }
    }

    /// Decodes the payload into the event enum `E`.
    ///
    /// `Ok(None)` is an event of a type `E` declares as removed.
    pub fn decode<E: Event>(&self) -> Result<Option<E>, crate::event::DecodeError> {
        E::decode(self.event_type, self.schema_version, self.payload)
    }
}

/// The events to append to one stream, as part of a multi-stream append.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream to append to.
    pub stream_id: StreamId,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// What an append wrote, or, for an exact retry, what an earlier append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The version of the first appended event (the stream's next version when none was).
    pub first_version: Version,
    /// The stream's version after the append (for an exact retry: the version of the last
    /// stored event it repeats).
    pub stream_version: Version,
    /// The global position of the last appended event, if any was appended.
    pub last_position: Option<Position>,
    /// Whether this call wrote the events. `false` for an exact retry of events stored
    /// before (the store answered with what it holds, which may not be what this call's
    /// caller decided), and for a call with no events.
    ///
    /// A cache of aggregate states must only apply a caller's own events when they were
    /// written; the [`Repository`](crate::Repository) reloads otherwise.
    pub written: bool,
}

/// A saved aggregate state: a cache that spares replaying the events up to `version`.
///
/// A store keeps the latest snapshot of each stream. The repository ignores a snapshot whose
/// `snapshot_version` is not the aggregate's current one, or that fails to decode, and
/// replays the stream from the start instead: a snapshot can always be thrown away.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The stream the state belongs to.
    pub stream_id: StreamId,
    /// The version of the last event the state includes.
    pub version: Version,
    /// The schema version of the state's encoding.
    pub snapshot_version: u32,
    /// The encoded state.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: SystemTime,
}

/// An event store failed, or refused an append.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream's version did not match the expected version; nothing was written.
    #[error("version conflict on stream `{stream}`: expected {expected}, but the stream is at version {actual}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 when it holds no events).
        actual: Version,
    },
    /// An event id is already stored, and the append does not repeat the stored events in
    /// order; nothing was written.
    #[error("event id {event_id} is already stored as version {version} of stream `{stream}`, and this append does not repeat the stored events in order")]
    DuplicateEventId {
        /// The event id.
        event_id: Uuid,
        /// The stream it is stored in.
        stream: StreamId,
        /// Its version there.
        version: Version,
    },
    /// One multi-stream append names a stream twice; nothing was written.
    #[error("stream `{stream}` appears more than once in one multi-stream append")]
    DuplicateStream {
        /// The stream.
        stream: StreamId,
    },
    /// The backend refused the data, for example a value its storage cannot hold.
    #[error("the event store rejected the data for stream `{stream}`: {reason}")]
    Rejected {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: String,
    },
    /// A checkpoint was to be saved over `expected`, but the stored checkpoint is `actual`:
    /// another reader of the same name moved it. Nothing was saved.
    #[error(
        "checkpoint `{name}` moved: expected {}, but {} is stored",
        show(expected),
        show(actual)
    )]
    CheckpointMoved {
        /// The checkpoint's name.
        name: String,
        /// The checkpoint the save expected (`None`: none stored).
        expected: Option<Checkpoint>,
        /// The checkpoint stored (`None`: none).
        actual: Option<Checkpoint>,
    },
    /// A stored event cannot be read back: its metadata does not decode, or its stream id is
    /// not a valid one. Names the first such event after the reader's checkpoint; a reader
    /// may skip it by moving its checkpoint to [`corrupt_checkpoint`](StoreError::corrupt_checkpoint)
    /// (see [`CorruptEvents`]).
    #[error("stored event {version} of stream `{stream}` at position {position} cannot be read: {reason}")]
    CorruptEvent {
        /// The stream id as stored (not a [`StreamId`]: it may be the part that is invalid).
        stream: String,
        /// The event's version in the stream.
        version: Version,
        /// The event's global position.
        position: Position,
        /// The commit the event was written in.
        commit: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed (connection, I/O, database error). The append may not have
    /// committed; retrying with the same event ids is safe.
    #[error("event store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A checkpoint in an error message.
fn show(checkpoint: &Option<Checkpoint>) -> String {
    match checkpoint {
        Some(checkpoint) => checkpoint.to_string(),
        None => "none".to_owned(),
    }
}

impl StoreError {
    /// Wraps a backend's own error.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(error.into())
    }

    /// Whether this is a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// For a [`StoreError::CorruptEvent`], the reader's checkpoint just after the unreadable
    /// event: where a reader that skips it reads on from. `None` for any other error.
    pub fn corrupt_checkpoint(&self) -> Option<Checkpoint> {
        match self {
            StoreError::CorruptEvent {
                commit, position, ..
            } => Some(Checkpoint {
                commit: *commit,
                position: *position,
            }),
            _ => None,
        }
    }
}

/// Storage for event streams: append with optimistic concurrency, read a stream, read the
/// global log.
///
/// Implementations must pass the conformance suite in `annals::testing` (feature
/// `testing`). The trait is object safe, so `Arc<dyn EventStore>` works wherever a store does.
///
/// # Contract
///
/// - Appends are atomic: all events of a call (across all its streams) are written, or none.
/// - Versions of a stream are 1, 2, 3... with no gaps; global positions are unique and
///   increase in write order.
/// - Appending events whose ids are all stored already, in the same stream at consecutive
///   versions in the same order (as in an exact retry of an earlier append),
///   writes nothing and returns the result describing those stored events, whatever the
///   expected version says. Any other reuse of a stored id is [`StoreError::DuplicateEventId`].
/// - The rules of one append call (a stream named twice, an event id given twice, exact
///   retries, reused ids, expected versions) and the order in which they refuse a call are
///   [`backend`](crate::backend)'s: a store calls its functions.
/// - Reads return at most `limit` events, so a caller can page through any amount of data.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to one stream if its version matches `expected`.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut results = self
            .append_streams(vec![StreamAppend {
                stream_id: stream.clone(),
                expected,
                events,
            }])
            .await?;
        results.pop().ok_or_else(|| {
            StoreError::backend("the store returned no result for a one-stream append")
        })
    }

    /// Appends to several streams atomically: every expected version must match, or nothing is
    /// written. Returns one result per stream, in order.
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError>;

    /// Reads up to `limit` events of `stream` with version `from` or later, in version order.
    /// A stream that does not exist reads as empty.
    ///
    /// A stored event that cannot be read back ends the page early: the events before it are
    /// returned, and a read that starts at it fails with [`StoreError::CorruptEvent`]. So a
    /// page shorter than `limit` is not proof of the stream's end; an empty one is.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Hands up to `limit` events of `stream` with version `from` or later, in version order,
    /// to `visit`, one at a time, with only what replaying them needs. Returns how many it
    /// handed over. `visit` stops the read early by returning [`ControlFlow::Break`].
    ///
    /// This is how a [`Repository`](crate::Repository) loads an aggregate, so `limit` may be
    /// large: an implementation must not hold `limit` events in memory at once. The default
    /// pages through [`read_stream`](EventStore::read_stream) in batches of
    /// [`DEFAULT_BATCH_SIZE`] and lends out each event; a store overrides it to skip what a
    /// replay does not use (event ids, metadata, positions) and to lend events straight out of
    /// its buffers, without copying them.
    async fn replay_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
        visit: &mut (dyn for<'e> FnMut(ReplayedEvent<'e>) -> ControlFlow<()> + Send),
    ) -> Result<usize, StoreError> {
        let mut visited = 0;
        let mut next = from;
        while visited < limit {
            let page = (limit - visited).min(DEFAULT_BATCH_SIZE);
            let events = self.read_stream(stream, next, page).await?;
            for event in &events {
                visited += 1;
                if visit(ReplayedEvent::of(event)).is_break() {
                    return Ok(visited);
                }
            }
            match events.last() {
                Some(last) if events.len() == page => next = last.version.next(),
                _ => break,
            }
        }
        Ok(visited)
    }

    /// Reads up to `limit` events of the global log after `after`, in checkpoint order.
    ///
    /// Events are returned only once every event before them is visible, so a reader that
    /// resumes from the last checkpoint it saw never skips one.
    ///
    /// A stored event that cannot be read back ends the page early, as in
    /// [`read_stream`](EventStore::read_stream): a read whose first event it is fails with
    /// [`StoreError::CorruptEvent`], whose
    /// [`corrupt_checkpoint`](StoreError::corrupt_checkpoint) is where a reader that skips it
    /// reads on from ([`CorruptEvents`]).
    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The checkpoint of the last event of the global log committed now ([`Checkpoint::START`]
    /// for an empty log): where a catch-up that started now ends.
    ///
    /// Every event committed before the call sorts at or before it. Events still held back
    /// behind a transaction in flight may sort before it too: a reader gets there once they
    /// are visible.
    async fn log_head(&self) -> Result<Checkpoint, StoreError>;

    /// The current version of `stream` (0 when it holds no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError>;

    /// The event with id `event_id`, if it is stored.
    async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError>;

    /// Stores `snapshot` as the stream's latest, unless a snapshot of a later version is
    /// stored already. The default keeps nothing: a store without snapshots is still correct.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let _ = snapshot;
        Ok(())
    }

    /// The latest snapshot of `stream`, if any. The default has none.
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let _ = stream;
        Ok(None)
    }

    /// The checkpoint saved under `name` (a subscription or projection), if any.
    ///
    /// The default keeps none: a store that can run projections overrides both checkpoint
    /// methods.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let _ = name;
        Ok(None)
    }

    /// Saves `checkpoint` under `name`, replacing the previous one. The default refuses:
    /// a store without checkpoints cannot remember where a reader stopped.
    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let _ = checkpoint;
        Err(StoreError::backend(format!(
            "this event store keeps no checkpoints (saving `{name}`)"
        )))
    }

    /// Saves `checkpoint` under `name` only if the stored one is still `expected` (`None`:
    /// none is stored), as one atomic step; otherwise saves nothing and returns
    /// [`StoreError::CheckpointMoved`]. This is how a reader that lost its place (another
    /// runner of the same projection moved on) finds out instead of moving the checkpoint
    /// backwards.
    ///
    /// The default loads, compares and saves, which is only atomic for a store with a single
    /// writer of checkpoints: a store that runs projections overrides it.
    async fn save_checkpoint_if(
        &self,
        name: &str,
        expected: Option<Checkpoint>,
        checkpoint: Checkpoint,
    ) -> Result<(), StoreError> {
        let actual = self.load_checkpoint(name).await?;
        if actual != expected {
            return Err(StoreError::CheckpointMoved {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        self.save_checkpoint(name, checkpoint).await
    }

    /// Waits until the caller is the only holder of the lease `name` (a projection's name),
    /// and returns it. The lease is held until the returned value is dropped, or until the
    /// holder dies: a lease must not outlive its holder (the memory store's dies with the
    /// value, PostgreSQL's with the connection that holds it).
    ///
    /// Projection runners take their projection's lease, so at most one runner of a name
    /// handles events at a time. The default refuses: a store without leases cannot tell
    /// runners apart.
    async fn acquire_lease(&self, name: &str) -> Result<Box<dyn Lease>, StoreError> {
        Err(StoreError::backend(format!(
            "this event store keeps no leases (acquiring `{name}`)"
        )))
    }

    /// Takes the turn of `stream` across every writer of the store, processes included, and
    /// returns it held: until it is released or dropped, appends to the stream by anyone else
    /// wait (or, in a store that cannot make them wait, conflict) while the holder reads the
    /// stream, decides and appends through the [`HeldTurn`].
    ///
    /// A [`Repository`](crate::Repository) takes it after a conflict, so writers that lost a
    /// race on a hot stream are served in turn instead of losing again. `None` (the default)
    /// when the store has no such turns: the repository then backs off before it re-reads.
    async fn hold_turn(&self, stream: &StreamId) -> Result<Option<Box<dyn HeldTurn>>, StoreError> {
        let _ = stream;
        Ok(None)
    }

    /// Waits until events after `after` may be visible, or `timeout` passes. Returns whether
    /// it was woken early (a hint only: the caller reads the log either way).
    ///
    /// Stores that can notify (the memory store, PostgreSQL's LISTEN/NOTIFY) wake waiters on
    /// every append; the default just sleeps, which makes readers poll.
    async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let _ = after;
        tokio::time::sleep(timeout).await;
        Ok(false)
    }
}

/// The lease of one projection runner; see [`EventStore::acquire_lease`]. Dropping it
/// releases the lease.
pub trait Lease: Send + Sync + std::fmt::Debug {
    /// Whether the lease is still held. A store that can lose a lease behind its holder's back
    /// (PostgreSQL, when the connection holding it breaks) says `false` from then on, and the
    /// holder must take a new one before it goes on.
    fn is_held(&self) -> bool;
}

/// A visitor of replayed events, as [`EventStore::replay_stream`] takes it.
pub type ReplayVisitor<'v> = dyn for<'e> FnMut(ReplayedEvent<'e>) -> ControlFlow<()> + Send + 'v;

/// A stream's turn, held across the reads and the append of one decision; see
/// [`EventStore::hold_turn`].
///
/// It ends with [`append_and_release`](HeldTurn::append_and_release) or
/// [`release`](HeldTurn::release). Dropping it releases it too, at a higher cost in some
/// stores (PostgreSQL closes the connection that holds it).
#[async_trait]
pub trait HeldTurn: Send {
    /// The stream.
    fn stream(&self) -> &StreamId;

    /// [`EventStore::replay_stream`] of the stream, seeing every append made before the turn
    /// was taken.
    async fn replay(
        &mut self,
        from: Version,
        limit: usize,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<usize, StoreError>;

    /// [`EventStore::read_event`].
    async fn read_event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError>;

    /// [`EventStore::append`] to the stream, giving the turn back as it commits (in the same
    /// round trip where the store can).
    async fn append_and_release(
        self: Box<Self>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Gives the turn back without appending.
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

macro_rules! delegate_event_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: EventStore + ?Sized> EventStore for $ty {
            async fn append(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
                events: Vec<NewEvent>,
            ) -> Result<AppendResult, StoreError> {
                (**self).append(stream, expected, events).await
            }

            async fn append_streams(
                &self,
                appends: Vec<StreamAppend>,
            ) -> Result<Vec<AppendResult>, StoreError> {
                (**self).append_streams(appends).await
            }

            async fn read_stream(
                &self,
                stream: &StreamId,
                from: Version,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).read_stream(stream, from, limit).await
            }

            async fn replay_stream(
                &self,
                stream: &StreamId,
                from: Version,
                limit: usize,
                visit: &mut (dyn for<'e> FnMut(ReplayedEvent<'e>) -> ControlFlow<()> + Send),
            ) -> Result<usize, StoreError> {
                (**self).replay_stream(stream, from, limit, visit).await
            }

            async fn read_all(
                &self,
                after: Checkpoint,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>, StoreError> {
                (**self).read_all(after, limit).await
            }

            async fn log_head(&self) -> Result<Checkpoint, StoreError> {
                (**self).log_head().await
            }

            async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError> {
                (**self).stream_version(stream).await
            }

            async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
                (**self).read_event(event_id).await
            }

            async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
                (**self).save_snapshot(snapshot).await
            }

            async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
                (**self).load_snapshot(stream).await
            }

            async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
                (**self).load_checkpoint(name).await
            }

            async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
                (**self).save_checkpoint(name, checkpoint).await
            }

            async fn save_checkpoint_if(
                &self,
                name: &str,
                expected: Option<Checkpoint>,
                checkpoint: Checkpoint,
            ) -> Result<(), StoreError> {
                (**self).save_checkpoint_if(name, expected, checkpoint).await
            }

            async fn acquire_lease(&self, name: &str) -> Result<Box<dyn Lease>, StoreError> {
                (**self).acquire_lease(name).await
            }

            async fn hold_turn(&self, stream: &StreamId) -> Result<Option<Box<dyn HeldTurn>>, StoreError> {
                (**self).hold_turn(stream).await
            }

            async fn wait_for_events(&self, after: Checkpoint, timeout: Duration) -> Result<bool, StoreError> {
                (**self).wait_for_events(after, timeout).await
            }
        }
    )*};
}

delegate_event_store!(Arc<S>, Box<S>, &S);

/// The batch size readers ([`LogReader`], [`StreamReader`], [`Subscription`](crate::Subscription))
/// use unless told otherwise: 5,000 events.
///
/// Each read of the global log costs a round trip and a fixed share of the server's work
/// besides its events. Catching up on a PostgreSQL log of five million events ran at about
/// 340,000 events per second in batches of 500 or 1,000, and 590,000 to 650,000 in batches of
/// 5,000 or 10,000; 5,000 gets that speed with half the memory of 10,000 (a few MiB per batch
/// of small events). Projections commit one batch at a time and keep their own, smaller
/// default ([`DEFAULT_PROJECTION_BATCH_SIZE`](crate::DEFAULT_PROJECTION_BATCH_SIZE)).
pub const DEFAULT_BATCH_SIZE: usize = 5_000;

/// Pages through one stream in batches; see [`EventStoreExt::stream_reader`].
#[derive(Debug)]
pub struct StreamReader<'a, S: ?Sized> {
    store: &'a S,
    stream: StreamId,
    next: Version,
    batch_size: usize,
    done: bool,
}

impl<S: EventStore + ?Sized> StreamReader<'_, S> {
    /// Sets how many events one batch holds at most (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The next batch, or `None` once the stream is read to its end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let batch = self
            .store
            .read_stream(&self.stream, self.next, self.batch_size)
            .await?;
        match batch.last() {
            Some(last) => self.next = last.version.next(),
            None => {
                self.done = true;
                return Ok(None);
            }
        }
        // A short batch is not the end of the stream: a store ends a page before an event it
        // cannot read back, and names that event on the next read.
        Ok(Some(batch))
    }

    /// The next batch decoded into `E` (skipped events left out, so a batch may be empty), or
    /// `None` at the end of the stream.
    pub async fn next_decoded<E: Event>(
        &mut self,
        unknown: UnknownEvents,
    ) -> Result<Option<Vec<Envelope<E>>>, ReadError> {
        match self.next_batch().await? {
            Some(batch) => Ok(Some(decode_batch(batch, unknown)?)),
            None => Ok(None),
        }
    }
}

/// Pages through the global log in batches; see [`EventStoreExt::log_reader`].
#[derive(Debug)]
pub struct LogReader<'a, S: ?Sized> {
    store: &'a S,
    after: Checkpoint,
    batch_size: usize,
    corrupt: CorruptEvents,
}

impl<S: EventStore + ?Sized> LogReader<'_, S> {
    /// Sets how many events one batch holds at most (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets what to do with a stored event the store cannot read back (default
    /// [`CorruptEvents::Fail`]).
    pub fn corrupt_events(mut self, policy: CorruptEvents) -> Self {
        self.corrupt = policy;
        self
    }

    /// The checkpoint after the last event returned (or skipped as unreadable).
    pub fn checkpoint(&self) -> Checkpoint {
        self.after
    }

    /// The next page of the log after the checkpoint; unreadable events are skipped (moving
    /// the checkpoint past them) or fail, as the [`CorruptEvents`] policy says.
    async fn read_page(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            match self.store.read_all(self.after, self.batch_size).await {
                Ok(batch) => return Ok(batch),
                Err(error) => self.after = self.corrupt.skip(error)?,
            }
        }
    }

    /// The next batch, or `None` when nothing more is visible now. Calling again later
    /// returns events written since.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        let batch = self.read_page().await?;
        match batch.last() {
            Some(last) => {
                self.after = last.checkpoint();
                Ok(Some(batch))
            }
            None => Ok(None),
        }
    }

    /// The next batch decoded into `E` (skipped events left out, so a batch may be empty), or
    /// `None` when nothing more is visible now. The checkpoint moves past skipped events too.
    pub async fn next_decoded<E: Event>(
        &mut self,
        unknown: UnknownEvents,
    ) -> Result<Option<Vec<Envelope<E>>>, ReadError> {
        let batch = self.read_page().await?;
        let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
            return Ok(None);
        };
        let decoded = decode_batch(batch, unknown)?;
        // Only a fully decoded batch moves the checkpoint: a failed one is read again.
        self.after = last;
        Ok(Some(decoded))
    }
}

/// Batched readers over any [`EventStore`].
pub trait EventStoreExt: EventStore {
    /// Reads `stream` from version `from` on, in batches of [`DEFAULT_BATCH_SIZE`].
    fn stream_reader(&self, stream: &StreamId, from: Version) -> StreamReader<'_, Self> {
        StreamReader {
            store: self,
            stream: stream.clone(),
            next: from,
            batch_size: DEFAULT_BATCH_SIZE,
            done: false,
        }
    }

    /// Reads the global log after `after`, in batches of [`DEFAULT_BATCH_SIZE`].
    fn log_reader(&self, after: Checkpoint) -> LogReader<'_, Self> {
        LogReader {
            store: self,
            after,
            batch_size: DEFAULT_BATCH_SIZE,
            corrupt: CorruptEvents::default(),
        }
    }
}

impl<S: EventStore + ?Sized> EventStoreExt for S {}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime};

    use super::new_event_id;

    #[test]
    fn new_event_ids_are_v7_unique_and_ordered_by_millisecond() {
        let millis = |id: uuid::Uuid| {
            let (secs, nanos) = id.get_timestamp().map_or((0, 0), |t| t.to_unix());
            Duration::new(secs, nanos).as_millis()
        };
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let ids: Vec<_> = (0..10_000).map(|_| new_event_id()).collect();
        let after = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        assert!(ids
            .iter()
            .all(|id| id.get_version() == Some(uuid::Version::SortRand)));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert!(ids.windows(2).all(|w| millis(w[0]) <= millis(w[1])));
        assert!(millis(ids[0]) >= before && millis(ids[ids.len() - 1]) <= after);
    }
}
