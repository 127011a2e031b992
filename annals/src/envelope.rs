//! [`Envelope`]: a decoded event with its place in the store.

use std::time::SystemTime;

use uuid::Uuid;

use crate::metadata::Metadata;
use crate::stream::{Checkpoint, Position, StreamId, Version};

/// A decoded event with its place in the store and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E> {
    /// The event.
    pub event: E,
    /// Its unique id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
    /// The commit it was written in.
    pub commit: u64,
    /// The type name it was stored under (an alias, for an event stored before a rename).
    pub event_type: String,
    /// The schema version it was stored with (older than the current one if upcast).
    pub schema_version: u32,
    /// Audit metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}

impl<E> Envelope<E> {
    /// The reader's checkpoint just after this event.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            commit: self.commit,
            position: self.position,
        }
    }
}
