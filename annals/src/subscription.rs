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
use crate::telemetry::WakeupMetrics;

/// How long a caught-up subscription waits for a notification before it reads the log again.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Which events a subscription delivers: by the streams' aggregate type (the stream id
/// prefix `<type>-`, also called the category) and by event type.
///
/// A filter starts from the streams it lets through, and may then keep only some event
/// types of those streams:
///
/// ```
/// # use annals::Filter;
/// let everything = Filter::all();
/// let carts = Filter::category("cart");                          // only `cart-...` streams
/// let shop = Filter::category("cart").or_category("order");      // `cart-...` or `order-...`
/// let checkouts = Filter::category("cart").event_types(["CheckedOut"]); // and only this type
/// let paid = Filter::all().event_types(["Paid", "Refunded"]);    // these types, any stream
/// # let _ = (everything, carts, shop, checkouts, paid);
/// ```
///
/// With an aggregate type at hand, [`Filter::aggregate`] and [`Filter::or_aggregate`] name it
/// by its [`Aggregate::TYPE`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The aggregate types let through; `None`: every stream.
    categories: Option<Vec<String>>,
    /// The event types let through; `None`: every type.
    event_types: Option<Vec<String>>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Only the events of aggregate `A`'s streams.
    pub fn aggregate<A: Aggregate>() -> Self {
        Filter::category(A::TYPE)
    }

    /// Only the events of streams of aggregate type `aggregate_type` (ids
    /// `<aggregate_type>-...`).
    pub fn category(aggregate_type: impl Into<String>) -> Self {
        Filter {
            categories: Some(vec![aggregate_type.into()]),
            event_types: None,
        }
    }

    /// Also the events of aggregate `A`'s streams.
    pub fn or_aggregate<A: Aggregate>(self) -> Self {
        self.or_category(A::TYPE)
    }

    /// Also the events of streams of aggregate type `aggregate_type`. A filter that lets every
    /// stream through already does.
    pub fn or_category(mut self, aggregate_type: impl Into<String>) -> Self {
        if let Some(categories) = &mut self.categories {
            categories.push(aggregate_type.into());
        }
        self
    }

    /// Of the streams let through, only the events of these types (as stored), replacing any
    /// list given before.
    pub fn event_types<T: Into<String>>(
        mut self,
        event_types: impl IntoIterator<Item = T>,
    ) -> Self {
        self.event_types = Some(event_types.into_iter().map(Into::into).collect());
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let category = self.categories.as_ref().is_none_or(|categories| {
            categories
                .iter()
                .any(|category| event.stream_id.belongs_to(category))
        });
        let event_type = self
            .event_types
            .as_ref()
            .is_none_or(|types| types.contains(&event.event_type));
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
    wakeups: WakeupMetrics,
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
            wakeups: WakeupMetrics::new(),
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
                woken = self.store.wait_for_events(self.after, self.poll_interval) => {
                    match woken? {
                        true => self.wakeups.notified.increment(1),
                        false => self.wakeups.polled.increment(1),
                    }
                }
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use uuid::Uuid;

    use super::Filter;
    use crate::{Metadata, Payload, Position, RecordedEvent, StreamId, Version};

    fn event(stream: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::new_v4(),
            stream_id: StreamId::new(stream).unwrap(),
            version: Version(1),
            position: Position(1),
            commit: 1,
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: Payload::from_value(&serde_json::json!({})).unwrap(),
            metadata: Metadata::default(),
            recorded_at: SystemTime::now(),
        }
    }

    fn passes(filter: &Filter, events: &[(&str, &str)]) -> Vec<bool> {
        events
            .iter()
            .map(|(stream, event_type)| filter.matches(&event(stream, event_type)))
            .collect()
    }

    const EVENTS: [(&str, &str); 5] = [
        ("cart-1", "Added"),
        ("cart-2", "CheckedOut"),
        ("order-1", "Placed"),
        ("cartel-1", "Added"),
        ("cart", "Added"),
    ];

    #[test]
    fn filters_say_what_they_let_through() {
        let cases = [
            (Filter::all(), [true, true, true, true, true]),
            (Filter::category("cart"), [true, true, false, false, false]),
            (
                Filter::category("cart").or_category("order"),
                [true, true, true, false, false],
            ),
            (
                Filter::category("cart").event_types(["CheckedOut"]),
                [false, true, false, false, false],
            ),
            (
                Filter::all().event_types(["Added", "Placed"]),
                [true, false, true, true, true],
            ),
            // Every stream, or carts: still every stream.
            (Filter::all().or_category("cart"), [true; 5]),
            // A later list of types replaces the earlier one.
            (
                Filter::all().event_types(["Placed"]).event_types(["Added"]),
                [true, false, false, true, true],
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(passes(&filter, &EVENTS), expected, "{filter:?}");
        }
    }
}
