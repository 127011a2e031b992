//! NATS JetStream for [annals]: services that talk through their event logs.
//!
//! A **relay** follows a store's global log and publishes each event to a JetStream stream; a
//! **consumer** in another service reads that stream and applies each event exactly once.
//!
//! The crate works with `nats-server` 2.9 and newer (it enables none of `async-nats`'s
//! features for newer servers).

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod consumer;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use async_nats;
#[cfg(feature = "postgres")]
pub use consumer::PgNatsHandler;
pub use consumer::{MemoryInbox, MemoryNatsHandler, NatsConsumer, NatsHandler};
pub use wire::{MessageProblem, SubjectMapping};
