//! [`StoreError`]: how an event store fails or refuses an append.

use uuid::Uuid;

use crate::stream::{Checkpoint, ExpectedVersion, Position, StreamId, Version};

/// An event store failed, or refused an append.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream's version did not match the expected version; nothing was written.
    #[error("version conflict on stream `{stream}`: expected {expected}, but the stream is at version {actual}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0 when it holds no events).
        actual: Version,
    },
    /// An event id is already stored, and the append does not repeat the stored events in
    /// order; nothing was written.
    #[error("event id {event_id} is already stored as version {version} of stream `{stream}`, and this append does not repeat the stored events in order")]
    DuplicateEventId {
        /// The event id.
        event_id: Uuid,
        /// The stream it is stored in.
        stream: StreamId,
        /// Its version there.
        version: Version,
    },
    /// One multi-stream append names a stream twice; nothing was written.
    #[error("stream `{stream}` appears more than once in one multi-stream append")]
    DuplicateStream {
        /// The stream.
        stream: StreamId,
    },
    /// The backend refused the data, for example a value its storage cannot hold.
    #[error("the event store rejected the data for stream `{stream}`: {reason}")]
    Rejected {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: String,
    },
    /// A checkpoint was to be saved over `expected`, but the stored checkpoint is `actual`:
    /// another reader of the same name moved it. Nothing was saved.
    #[error(
        "checkpoint `{name}` moved: expected {}, but {} is stored",
        show(expected),
        show(actual)
    )]
    CheckpointMoved {
        /// The checkpoint's name.
        name: String,
        /// The checkpoint the save expected (`None`: none stored).
        expected: Option<Checkpoint>,
        /// The checkpoint stored (`None`: none).
        actual: Option<Checkpoint>,
    },
    /// A stored event cannot be read back: its metadata does not decode, or its stream id is
    /// not a valid one. Names the first such event after the reader's checkpoint; a reader
    /// may skip it by moving its checkpoint to [`corrupt_checkpoint`](StoreError::corrupt_checkpoint)
    /// (see [`CorruptEvents`](crate::CorruptEvents)).
    #[error("stored event {version} of stream `{stream}` at position {position} cannot be read: {reason}")]
    CorruptEvent {
        /// The stream id as stored (not a [`StreamId`]: it may be the part that is invalid).
        stream: String,
        /// The event's version in the stream.
        version: Version,
        /// The event's global position.
        position: Position,
        /// The commit the event was written in.
        commit: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed (connection, I/O, database error). The append may not have
    /// committed; retrying with the same event ids is safe.
    #[error("event store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A checkpoint in an error message.
fn show(checkpoint: &Option<Checkpoint>) -> String {
    match checkpoint {
        Some(checkpoint) => checkpoint.to_string(),
        None => "none".to_owned(),
    }
}

impl StoreError {
    /// Wraps a backend's own error.
    pub fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(error.into())
    }

    /// Whether this is a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// For a [`StoreError::CorruptEvent`], the reader's checkpoint just after the unreadable
    /// event: where a reader that skips it reads on from. `None` for any other error.
    pub fn corrupt_checkpoint(&self) -> Option<Checkpoint> {
        match self {
            StoreError::CorruptEvent {
                commit, position, ..
            } => Some(Checkpoint {
                commit: *commit,
                position: *position,
            }),
            _ => None,
        }
    }
}
