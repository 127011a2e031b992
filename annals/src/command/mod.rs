//! The vocabulary of a command run through a [`Repository`](crate::Repository): the options
//! a caller gives ([`CommandContext`]), what it reports back ([`CommandOutcome`]), the event
//! ids an idempotency key derives, and the machinery the repository decides with: the retry
//! policy for conflicts and the cache of recent states.
//!
//! The steps of one command are [`Repository::execute_with`](crate::Repository::execute_with)'s.

use uuid::Uuid;

use crate::envelope::Envelope;
use crate::metadata::Metadata;
use crate::stream::{ExpectedVersion, Position, StreamId, Version};

pub(crate) mod cache;
pub(crate) mod retry;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandOutcome {
    /// The stream's version after the command.
    pub version: Version,
    /// How many events the command appended (0 when it decided nothing should change, or when
    /// it is a repeat of a command already executed with the same idempotency key).
    pub appended: usize,
    /// The global position of the last appended event.
    pub last_position: Option<Position>,
    /// Whether the command was a repeat of one already executed with the same idempotency
    /// key, so nothing was run or written.
    pub duplicate: bool,
    /// How many times the command was decided (more than 1 after conflicts).
    pub attempts: u32,
}

/// Options for one command: metadata to stamp, a version to expect, an idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandContext {
    /// Stamped on every event the command produces.
    pub metadata: Metadata,
    /// When set, the command is decided only if the stream is at this version, and is not
    /// retried on conflict: the caller decided on a state it saw.
    pub expected_version: Option<ExpectedVersion>,
    /// When set, the command's event ids derive from this key (see [`idempotent_event_id`]), so
    /// executing the same command twice with the same key appends once.
    pub idempotency_key: Option<String>,
}

impl CommandContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the metadata stamped on every event.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Requires the stream to be at `expected` (and disables retry on conflict).
    pub fn with_expected_version(mut self, expected: ExpectedVersion) -> Self {
        self.expected_version = Some(expected);
        self
    }

    /// Makes the command idempotent under `key`.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The context for a command a process manager named `process` issues in reaction to
    /// `event`: the event's id as causation, its correlation id carried over (or the event's
    /// own id, starting a new flow), the process as actor, and an idempotency key made of the
    /// process, the event and `index` (the command's number among those issued for this
    /// event), so that handling the event again never issues the command twice.
    pub fn caused_by<E>(process: &str, event: &Envelope<E>, index: usize) -> Self {
        let metadata = Metadata {
            correlation_id: Some(event.metadata.correlation_id.unwrap_or(event.event_id)),
            causation_id: Some(event.event_id),
            actor: Some(process.to_owned()),
            headers: Default::default(),
        };
        CommandContext::new()
            .with_metadata(metadata)
            .with_idempotency_key(format!("{process}/{}/{index}", event.event_id))
    }
}

impl CommandOutcome {
    /// The outcome of a command that appended nothing, on a stream at `version`.
    pub(crate) fn unchanged(version: Version, attempts: u32) -> Self {
        CommandOutcome {
            version,
            appended: 0,
            last_position: None,
            duplicate: false,
            attempts,
        }
    }
}

/// The namespace of idempotency-derived event ids (a UUID v5 namespace).
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x4c6f_bd1e_8a5f_4e0b_9d1c_e7a2_6b35_90f4);

/// The id of the `index`-th event (from 0) produced by a command run on `stream` under an
/// idempotency `key`: a UUID v5, the same on every run.
pub fn idempotent_event_id(stream: &StreamId, key: &str, index: usize) -> Uuid {
    let name = format!("{}\u{0}{}\u{0}{}", stream.as_str(), key, index);
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
}
