//! The handlers a consumer runs, one per guarantee:
//!
//! - [`NatsHandler`]: async, no inbox: effects at least once. For handlers whose effects are
//!   idempotent, such as process managers that issue commands with
//!   [`CommandContext::caused_by`](annals::CommandContext::caused_by).
//! - [`MemoryNatsHandler`]: synchronous, with a [`MemoryInbox`]: effects exactly once, in
//!   memory.
//! - `PgNatsHandler` (feature `postgres`): async, through a PostgreSQL transaction that
//!   records the event in the store's inbox too: effects exactly once, in the database.
//!
//! Each is adapted to [`Delivery`], the one step the consumer's loop calls.

use annals::{Envelope, Event, HandlerError, UnknownEvents};
use async_trait::async_trait;

use super::inbox::MemoryInbox;

/// A handler of the events a [`NatsConsumer`](super::NatsConsumer) receives, whose effects
/// happen **at least once**: after a crash between its effect and the acknowledgement, or
/// after its acknowledgement was lost, it is handed the same event again.
///
/// Use it for effects that are idempotent: a process manager that issues commands with
/// [`CommandContext::caused_by`](annals::CommandContext::caused_by) (a command issued again
/// appends nothing), an upsert keyed by the event id, a call to a service that
/// deduplicates. For effects that must happen once, use [`MemoryNatsHandler`] or
/// `PgNatsHandler`.
#[async_trait]
pub trait NatsHandler: Send {
    /// The event enum it decodes, through its upcasters.
    type Event: Event;

    /// What to do with an event of a type the enum does not know: park it (the default:
    /// the subjects a consumer reads should carry only its types) or skip it, acknowledged,
    /// with a log line at `info` level.
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Fail
    }

    /// Handles one event. An error is retried as the consumer's
    /// [`HandlerRetry`](annals::HandlerRetry) says, then the message is parked.
    async fn handle(&mut self, event: &Envelope<Self::Event>) -> Result<(), HandlerError>;
}

/// A handler whose effects live in this process's memory, applied **exactly once** with a
/// [`MemoryInbox`]: the consumer checks the inbox, calls `handle` and records the event in
/// the inbox under one lock, with no `.await` in between, so an aborted consumer task either
/// did both or neither.
///
/// `handle` is synchronous for that reason: an effect that needs an `.await` could be cut in
/// two by an abort. Keep the read model where it outlives the consumer's task (behind an
/// `Arc`), as the inbox does: the consumer owns the handler and drops it when it stops.
pub trait MemoryNatsHandler: Send {
    /// The event enum it decodes, through its upcasters.
    type Event: Event;

    /// What to do with an event of a type the enum does not know; see
    /// [`NatsHandler::unknown_events`].
    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Fail
    }

    /// Applies one event. On an error nothing may have changed: the event is not recorded,
    /// and is retried, then parked.
    fn handle(&mut self, event: &Envelope<Self::Event>) -> Result<(), HandlerError>;
}

/// What one delivery of an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The handler applied it.
    Applied,
    /// The inbox shows it applied before: the handler was not called.
    Duplicate,
}

/// Why one delivery of an event failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The handler failed: retried, then the message is parked.
    Handler(HandlerError),
    /// The inbox's store failed: retried, then the consumer stops (the message is not the
    /// problem, so it is not parked). Only the PostgreSQL inbox has a store that can fail.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Inbox(Box<dyn std::error::Error + Send + Sync>),
}

/// One way of delivering an event to a handler: the step the consumer's loop repeats.
#[async_trait]
pub(crate) trait Delivery: Send {
    type Event: Event;

    fn unknown_events(&self) -> UnknownEvents;

    async fn deliver(
        &mut self,
        consumer: &str,
        event: &Envelope<Self::Event>,
    ) -> Result<Delivered, Failure>;
}

/// A [`NatsHandler`], called every time.
pub(crate) struct AtLeastOnce<H>(pub(crate) H);

#[async_trait]
impl<H: NatsHandler> Delivery for AtLeastOnce<H> {
    type Event = H::Event;

    fn unknown_events(&self) -> UnknownEvents {
        self.0.unknown_events()
    }

    async fn deliver(
        &mut self,
        _consumer: &str,
        event: &Envelope<H::Event>,
    ) -> Result<Delivered, Failure> {
        self.0.handle(event).await.map_err(Failure::Handler)?;
        Ok(Delivered::Applied)
    }
}

/// A [`MemoryNatsHandler`] behind a [`MemoryInbox`].
pub(crate) struct InMemoryInbox<H> {
    pub(crate) inbox: MemoryInbox,
    pub(crate) handler: H,
}

#[async_trait]
impl<H: MemoryNatsHandler> Delivery for InMemoryInbox<H> {
    type Event = H::Event;

    fn unknown_events(&self) -> UnknownEvents {
        self.handler.unknown_events()
    }

    async fn deliver(
        &mut self,
        consumer: &str,
        event: &Envelope<H::Event>,
    ) -> Result<Delivered, Failure> {
        let handler = &mut self.handler;
        self.inbox
            .apply_once(consumer, event.event_id, || handler.handle(event))
            .map_err(Failure::Handler)
    }
}
