//! The [`Repository`]: load an aggregate, decide on a command, append with optimistic
//! concurrency, retry on conflict.
//!
//! This module holds the type, its settings and its error; [`execute`](Repository::execute)'s
//! steps are in `execute.rs`, loading and time travel in `load.rs`.

use std::fmt;

use crate::aggregate::Aggregate;
use crate::command::cache::{StateCache, DEFAULT_CACHE_CAPACITY};
use crate::command::retry::{HotStreams, RetryPolicy};
use crate::decode::{EventDecodeError, UnknownEvents};
use crate::error::StoreError;
use crate::event::EncodeError;
use crate::store::EventStore;
use crate::stream::{StreamId, Version};
use crate::telemetry::RepositoryMetrics;
use crate::turn::StreamTurns;

mod execute;
mod load;

/// A repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E> {
    /// The aggregate rejected the command.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The store failed or refused the append (a conflict with an expected version given in
    /// the [`CommandContext`](crate::CommandContext) arrives here as [`StoreError::Conflict`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// An event the command produced could not be encoded; nothing was written.
    #[error("cannot encode an event for stream `{stream}`: {source}")]
    Encode {
        /// The stream.
        stream: StreamId,
        /// What went wrong.
        #[source]
        source: EncodeError,
    },
    /// Every attempt met a concurrent write; nothing was written by this command.
    #[error("gave up on stream `{stream}` after {attempts} attempts: each append met a concurrent write (the stream is at version {actual})")]
    TooManyConflicts {
        /// The stream.
        stream: StreamId,
        /// How many times the command was decided.
        attempts: u32,
        /// The stream's version at the last conflict.
        actual: Version,
    },
    /// A time-travel query asked for a version the stream does not have.
    #[error("stream `{stream}` has no version {requested}: it is at version {current}")]
    VersionNotFound {
        /// The stream.
        stream: StreamId,
        /// The version asked for.
        requested: Version,
        /// The stream's current version.
        current: Version,
    },
}

impl<E> RepositoryError<E> {
    /// The aggregate's error, if the command was rejected.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            RepositoryError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// Loads aggregates of type `A` from the store `S`, runs commands on them and appends the
/// resulting events.
///
/// Each [`execute`](Repository::execute) loads the stream, decides on the command and appends
/// with the loaded version as the expected version. When another writer appended first, the
/// repository takes the stream's turn in the store where it can ([`EventStore::hold_turn`]),
/// catches up with the new events and decides again, up to [`RetryPolicy::max_attempts`]
/// times; the next commands on that stream take the turn before they decide. A `Repository`
/// is cheap to share: put it in an `Arc`.
///
/// Its cache of states only ever holds events the store wrote: when the store answers an
/// append as an exact retry of events stored before ([`AppendResult::written`] is `false`),
/// the repository reads what is stored instead of keeping its own decision.
///
/// [`AppendResult::written`]: crate::AppendResult::written
pub struct Repository<A: Aggregate, S> {
    store: S,
    services: A::Services,
    retry: RetryPolicy,
    batch_size: usize,
    unknown: UnknownEvents,
    cache: StateCache<A>,
    writers: StreamTurns,
    hot: HotStreams,
    metrics: RepositoryMetrics,
}

/// How many events one [`EventStore::replay_stream`] call hands over when a repository loads
/// a stream, by default. Stores stream, lend or page through the events of a replay, so this
/// bounds round trips, not memory: one round trip for any stream up to this long.
pub const DEFAULT_LOAD_BATCH_SIZE: usize = 100_000;

impl<A: Aggregate, S> fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::TYPE)
            .field("retry", &self.retry)
            .field("batch_size", &self.batch_size)
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S>
where
    A::Services: Default,
{
    /// A repository over `store` with default services.
    pub fn new(store: S) -> Self {
        Self::with_services(store, A::Services::default())
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store` whose handlers receive `services`.
    pub fn with_services(store: S, services: A::Services) -> Self {
        Repository {
            store,
            services,
            retry: RetryPolicy::default(),
            batch_size: DEFAULT_LOAD_BATCH_SIZE,
            unknown: UnknownEvents::Fail,
            cache: StateCache::with_capacity(DEFAULT_CACHE_CAPACITY),
            writers: StreamTurns::default(),
            hot: HotStreams::default(),
            metrics: RepositoryMetrics::new(A::TYPE),
        }
    }

    /// Sets how many aggregate states the repository keeps between commands (0 keeps none).
    ///
    /// With a cached state, a command reads only the events appended since, instead of the
    /// whole stream (or the snapshot and the events after it).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = StateCache::with_capacity(capacity);
        self
    }

    /// Sets what loading does with stored events of types the event enum does not know:
    /// fail with [`RepositoryError::Decode`] (the default) or skip them.
    pub fn with_unknown_events(mut self, unknown: UnknownEvents) -> Self {
        self.unknown = unknown;
        self
    }

    /// Sets the retry policy for conflicts.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// Sets how many events one [`EventStore::replay_stream`] call hands over when loading.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The services handlers receive.
    pub fn services(&self) -> &A::Services {
        &self.services
    }
}
