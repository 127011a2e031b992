#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod aggregate;
pub mod backend;
mod codec;
mod envelope;
mod event;
mod metadata;
mod projection;
mod repository;
mod store;
mod stream;
mod subscription;
mod turn;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::{Aggregate, Handle};
pub use envelope::{CorruptEvents, Envelope, EventDecodeError, ReadError, UnknownEvents};
pub use event::{Apply, DecodeError, EncodeError, Event, Payload};
pub use metadata::Metadata;
pub use projection::{
    HandlerError, HandlerRetry, Projection, ProjectionRunner, RunError,
    DEFAULT_PROJECTION_BATCH_SIZE,
};
pub use repository::{
    idempotent_event_id, CommandContext, CommandOutcome, Loaded, Repository, RepositoryError,
    RetryPolicy, DEFAULT_CACHE_CAPACITY, DEFAULT_LOAD_BATCH_SIZE, DEFAULT_MAX_ATTEMPTS,
};
pub use store::{
    AppendResult, EventStore, EventStoreExt, HeldTurn, Lease, LogReader, NewEvent, RecordedEvent,
    ReplayVisitor, ReplayedEvent, Snapshot, StoreError, StreamAppend, StreamReader,
    DEFAULT_BATCH_SIZE,
};
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
