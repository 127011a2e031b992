//! NATS JetStream for [annals]: services that talk through their event logs.
//!
//! Each service keeps its own event store. A [`Relay`] follows that store's global log and
//! publishes the events its filter lets out to a JetStream stream; a [`NatsConsumer`] in
//! another service reads the stream and hands each event to a handler, decoded through the
//! event enum's upcaster chain. Nothing else connects the services: they need not share a
//! database, a process or a machine.
//!
//! # What holds
//!
//! - **From the relay: at least once, in log order.** Every event the filter lets through is
//!   published until JetStream acknowledges it, and the relay's checkpoint (kept in the source
//!   store) only moves past acknowledged events. One relay of a name publishes at a time.
//! - **In the stream: exactly once within the duplicate window.** A message's `Nats-Msg-Id`
//!   is its event id, so JetStream drops a republished event within the stream's duplicate
//!   window (2 minutes by default). An event republished after its window (a relay restored
//!   from an old checkpoint, say) is stored again: beyond the window, consumers see it at least
//!   once.
//! - **To a consumer: at least once.** JetStream redelivers what a consumer did not
//!   acknowledge; the consumer acknowledges after its handler succeeds.
//! - **Effects exactly once only with an inbox.** A `PgNatsHandler` (feature `postgres`)
//!   writes through the transaction that also records the event id in the store's inbox, and a
//!   [`MemoryNatsHandler`] runs under a [`MemoryInbox`]: a redelivered event is recognised and
//!   skipped. A plain [`NatsHandler`] sees repeats, which suits idempotent work (a process
//!   manager's commands under [`CommandContext::caused_by`](annals::CommandContext::caused_by)
//!   append once).
//! - **Nothing dropped silently.** A message that is not a relayed event, or that the code
//!   cannot decode, is parked at once on a dead-letter stream with headers naming the
//!   subject, the stream sequence, the event id and the error; a handler that keeps failing
//!   has its message parked after its retries.
//!
//! The [`relay`] and [`consumer`] modules give the details; [`wire`] the message format.
//!
//! The crate works with `nats-server` 2.9 and newer (async-nats 0.51 without the features for
//! newer servers).

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod consumer;
pub mod relay;
pub mod telemetry;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use async_nats;
#[cfg(feature = "postgres")]
pub use consumer::PgNatsHandler;
pub use consumer::{MemoryInbox, MemoryNatsHandler, NatsConsumer, NatsHandler};
pub use relay::{Relay, RelayConfig, RelayError, RelaySink, RelayStatus, DEFAULT_PUBLISH_WINDOW};
pub use wire::{MessageProblem, SubjectMapping};
