#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod aggregate;
pub mod backend;
mod codec;
mod command;
mod decode;
mod envelope;
mod error;
mod event;
mod metadata;
mod projection;
mod reader;
mod record;
mod repository;
mod store;
mod stream;
mod subscription;
pub mod telemetry;
mod turn;
pub mod verify;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::{Aggregate, Handle, Loaded};
pub use command::cache::DEFAULT_CACHE_CAPACITY;
pub use command::retry::{RetryPolicy, DEFAULT_MAX_ATTEMPTS};
pub use command::{idempotent_event_id, CommandContext, CommandOutcome};
pub use decode::{CorruptEvents, EventDecodeError, ReadError, UnknownEvents};
pub use envelope::Envelope;
pub use error::StoreError;
pub use event::{Apply, DecodeError, EncodeError, Event, Payload};
pub use metadata::Metadata;
pub use projection::{
    Batch, HandlerError, HandlerRetry, Projection, ProjectionRunner, ProjectionSink, RunError,
    SinkError, SinkItem, DEFAULT_PROJECTION_BATCH_SIZE,
};
pub use reader::{EventStoreExt, LogReader, StreamReader};
pub use record::{AppendResult, NewEvent, RecordedEvent, ReplayedEvent, Snapshot, StreamAppend};
pub use repository::{Repository, RepositoryError, DEFAULT_LOAD_BATCH_SIZE};
pub use store::{EventStore, HeldTurn, Lease, ReplayVisitor, DEFAULT_BATCH_SIZE};
pub use stream::{
    Checkpoint, ExpectedVersion, InvalidStreamId, Position, StreamId, Version, MAX_STREAM_ID_LEN,
};
pub use subscription::{
    stop_signal, Filter, StopSignal, Stopper, Subscription, DEFAULT_POLL_INTERVAL,
};

#[cfg(feature = "derive")]
pub use annals_derive::Event;

#[cfg(feature = "derive")]
pub use annals_derive::Command;

#[cfg(feature = "derive")]
pub use annals_derive::Aggregate;

/// The attribute an `impl` of one of this crate's async traits ([`Projection`], [`EventStore`],
/// [`Lease`], [`HeldTurn`]) needs, re-exported so that implementing one takes no dependency of
/// your own: write `#[annals::async_trait]` above the `impl`.
pub use async_trait::async_trait;

/// The types most programs need: `use annals::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "derive")]
    pub use crate::Command;

    pub use crate::{
        Aggregate, CommandContext, Event, EventStore, EventStoreExt, ExpectedVersion, Metadata,
        Repository, RepositoryError, StreamId, Version,
    };
}
