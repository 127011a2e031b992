//! Catch-up subscriptions: read the global log from a checkpoint, then follow it live.

use std::time::Duration;

use tokio::sync::watch;

use crate::aggregate::Aggregate;
use crate::decode::{CorruptEvents, ReadError, UnknownEvents};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::event::Event;
use crate::reader::decode_batch;
use crate::record::RecordedEvent;
use crate::store::{EventStore, DEFAULT_BATCH_SIZE};
use crate::stream::Checkpoint;

/// How long a caught-up subscription waits for a notification before it reads the log again.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Which events a subscription delivers: by aggregate type (the stream id prefix
/// `<type>-`) and by event type. An empty list lets everything through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    categories: Vec<String>,
    event_types: Vec<String>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Also deliver events of streams of aggregate type `aggregate_type` (ids
    /// `<aggregate_type>-...`).
    pub fn category(mut self, aggregate_type: impl Into<String>) -> Self {
        self.categories.push(aggregate_type.into());
        self
    }

    /// Also deliver events of aggregate `A`'s streams.
    pub fn aggregate<A: Aggregate>(self) -> Self {
        self.category(A::TYPE)
    }

    /// Also deliver events of type `event_type` (as stored).
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let stream = event.stream_id.as_str();
        let category = self.categories.is_empty()
            || self.categories.iter().any(|category| {
                stream.len() > category.len()
                    && stream.starts_with(category.as_str())
                    && stream.as_bytes()[category.len()] == b'-'
            });
        let event_type =
            self.event_types.is_empty() || self.event_types.contains(&event.event_type);
        category && event_type
    }
}

/// Tells running subscriptions and runners to stop; see [`stop_signal`].
#[derive(Debug)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    /// Stops every subscription holding a [`StopSignal`] of this stopper, at its next wait.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Held by subscriptions and runners: they return once it fires.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// A signal that never fires.
    pub fn never() -> Self {
        let (sender, receiver) = watch::channel(false);
        // Keep the sender alive for the life of the process, so `changed` never errors.
        std::mem::forget(sender);
        StopSignal(receiver)
    }

    /// Whether the stopper has fired.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the stopper fires (or is dropped).
    pub async fn stopped(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A stopper and the signal its holders watch.
pub fn stop_signal() -> (Stopper, StopSignal) {
    let (sender, receiver) = watch::channel(false);
    (Stopper(sender), StopSignal(receiver))
}

/// Reads the global log after a checkpoint, in order, then follows it live: once caught up it
/// waits for the store's notification of new events, and reads the log again every poll
/// interval in case a notification was lost.
///
/// Each event is delivered once, in checkpoint order; a subscription resumed from the
/// checkpoint of the last event it handled continues right after it.
#[derive(Debug)]
pub struct Subscription<S> {
    store: S,
    after: Checkpoint,
    filter: Filter,
    batch_size: usize,
    poll_interval: Duration,
    stop: StopSignal,
    corrupt: CorruptEvents,
}

impl<S: EventStore> Subscription<S> {
    /// A subscription to the events of `store` after `after` ([`Checkpoint::START`] for all).
    pub fn new(store: S, after: Checkpoint) -> Self {
        Subscription {
            store,
            after,
            filter: Filter::all(),
            batch_size: DEFAULT_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            stop: StopSignal::never(),
            corrupt: CorruptEvents::default(),
        }
    }

    /// Delivers only events that pass `filter` (the checkpoint moves past the others).
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// How many events one read fetches at most.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long to wait for a notification before reading the log again.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Stops following when `stop` fires.
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// What to do with a stored event the store cannot read back (default
    /// [`CorruptEvents::Fail`]): fail with [`StoreError::CorruptEvent`], the checkpoint
    /// staying before it, or log a warning and read on after it.
    pub fn with_corrupt_events(mut self, policy: CorruptEvents) -> Self {
        self.corrupt = policy;
        self
    }

    /// The checkpoint after the last event read (delivered, filtered out or skipped as
    /// unreadable).
    pub fn checkpoint(&self) -> Checkpoint {
        self.after
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The next matching events, waiting for new ones once caught up; `None` once stopped.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        loop {
            if let Some(batch) = self.poll_batch().await? {
                return Ok(Some(batch));
            }
            if self.stop.is_stopped() {
                return Ok(None);
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                woken = self.store.wait_for_events(self.after, self.poll_interval) => { woken?; }
                () = stop.stopped() => return Ok(None),
            }
        }
    }

    /// The next matching events that are visible now, without waiting; `None` when caught up.
    pub async fn poll_batch(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        self.poll(None).await
    }

    /// Like [`poll_batch`](Subscription::poll_batch), but reads no further once the checkpoint
    /// is at or past `head` (for example [`EventStore::log_head`] when a catch-up started):
    /// `None` then, or when nothing more is visible now. A batch may still hold events past
    /// `head`, read in the same page. However many events the filter leaves out, and however
    /// fast writers append, it ends.
    pub async fn poll_batch_until(
        &mut self,
        head: Checkpoint,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        self.poll(Some(head)).await
    }

    async fn poll(
        &mut self,
        head: Option<Checkpoint>,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        while head.is_none_or(|head| self.after < head) {
            let batch = match self.store.read_all(self.after, self.batch_size).await {
                Ok(batch) => batch,
                Err(error) => {
                    self.after = self.corrupt.skip(error)?;
                    continue;
                }
            };
            let Some(last) = batch.last().map(RecordedEvent::checkpoint) else {
                return Ok(None);
            };
            self.after = last;
            let matching: Vec<RecordedEvent> = batch
                .into_iter()
                .filter(|e| self.filter.matches(e))
                .collect();
            if !matching.is_empty() {
                return Ok(Some(matching));
            }
        }
        Ok(None)
    }

    /// [`next_batch`](Subscription::next_batch) decoded into `E` through its upcaster chain.
    /// A batch that fails to decode is read again by the next call.
    pub async fn next_decoded<E: Event>(
        &mut self,
        unknown: UnknownEvents,
    ) -> Result<Option<Vec<Envelope<E>>>, ReadError> {
        loop {
            let before = self.after;
            let Some(batch) = self.next_batch().await? else {
                return Ok(None);
            };
            match decode_batch::<E>(batch, unknown) {
                Ok(decoded) if decoded.is_empty() => continue,
                Ok(decoded) => return Ok(Some(decoded)),
                Err(error) => {
                    self.after = before;
                    return Err(error.into());
                }
            }
        }
    }
}
