//! The [`EventStore`] trait every backend implements, with the leases and stream turns it
//! hands out.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;
use crate::record::{AppendResult, NewEvent, RecordedEvent, ReplayedEvent, Snapshot, StreamAppend};
use crate::stream::{Checkpoint, ExpectedVersion, StreamId, Version};

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
    /// reads on from ([`CorruptEvents`](crate::CorruptEvents)).
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

/// The batch size readers ([`LogReader`](crate::LogReader), [`StreamReader`](crate::StreamReader), [`Subscription`](crate::Subscription))
/// use unless told otherwise: 5,000 events.
///
/// Each read of the global log costs a round trip and a fixed share of the server's work
/// besides its events. Catching up on a PostgreSQL log of five million events ran at about
/// 340,000 events per second in batches of 500 or 1,000, and 590,000 to 650,000 in batches of
/// 5,000 or 10,000; 5,000 gets that speed with half the memory of 10,000 (a few MiB per batch
/// of small events). Projections commit one batch at a time and keep their own, smaller
/// default ([`DEFAULT_PROJECTION_BATCH_SIZE`](crate::DEFAULT_PROJECTION_BATCH_SIZE)).
pub const DEFAULT_BATCH_SIZE: usize = 5_000;

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
