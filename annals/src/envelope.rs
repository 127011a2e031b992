//! Decoded events with their place in the store, and what to do with events of unknown types.

use std::time::SystemTime;

use uuid::Uuid;

use crate::event::{DecodeError, Event};
use crate::metadata::Metadata;
use crate::store::{RecordedEvent, StoreError};
use crate::stream::{Checkpoint, Position, StreamId, Version};

/// What a reader does with a stored event whose type the event enum does not know.
///
/// Failing is the default: an unknown type usually means code older than the data. Skipping
/// suits readers that see other aggregates' events too, or data written by newer code that
/// added types this reader does not care about. Types an enum declares as removed are always
/// skipped; an unknown schema version or a malformed body always fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum UnknownEvents {
    /// Return [`DecodeError::UnknownType`].
    #[default]
    Fail,
    /// Skip the event, as if it were not there.
    Skip,
}

impl UnknownEvents {
    /// `decoded` under this policy: an event of an unknown type becomes one to skip
    /// (`Ok(None)`) when the policy is [`UnknownEvents::Skip`]; anything else stays as it is.
    pub(crate) fn apply<E>(
        self,
        decoded: Result<Option<E>, DecodeError>,
    ) -> Result<Option<E>, DecodeError> {
        match decoded {
            Err(DecodeError::UnknownType { .. }) if self == UnknownEvents::Skip => Ok(None),
            other => other,
        }
    }
}

/// What a reader of the global log does with a stored event the store cannot read back
/// ([`StoreError::CorruptEvent`]: its metadata does not decode, or its stream id is invalid).
///
/// Failing is the default: such a row was written by something other than this library (or
/// damaged), and a reader that silently passed over it could miss an event its read model
/// needs. The error names the event, so it can be repaired; a reader whose read model can do
/// without it skips it instead, with a warning in the log naming the stream, the version and
/// the position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CorruptEvents {
    /// Return the [`StoreError::CorruptEvent`]; the reader's checkpoint stays before the
    /// event, so the next read meets it again.
    #[default]
    Fail,
    /// Log a warning, move the checkpoint past the event and read on.
    Skip,
}

impl CorruptEvents {
    /// What a reader at any checkpoint does with `error` from
    /// [`read_all`](crate::EventStore::read_all) under this policy: `Ok` with the checkpoint
    /// after the unreadable event to read on from when the policy skips it, `Err` with the
    /// error otherwise.
    pub(crate) fn skip(self, error: StoreError) -> Result<Checkpoint, StoreError> {
        match (self, error) {
            (
                CorruptEvents::Skip,
                StoreError::CorruptEvent {
                    stream,
                    version,
                    position,
                    commit,
                    reason,
                },
            ) => {
                tracing::warn!(
                    stream = %stream,
                    version = version.0,
                    position = position.0,
                    reason = %reason,
                    "skipping a stored event that cannot be read"
                );
                Ok(Checkpoint { commit, position })
            }
            (_, error) => Err(error),
        }
    }
}

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

/// A stored event could not be decoded; names the stream and the event's version besides the
/// type and schema version the inner [`DecodeError`] names.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode event {version} of stream `{stream}`: {source}")]
pub struct EventDecodeError {
    /// The stream.
    pub stream: StreamId,
    /// The event's version in the stream.
    pub version: Version,
    /// The event's global position.
    pub position: Position,
    /// What went wrong.
    #[source]
    pub source: DecodeError,
}

/// Reading decoded events failed: the store failed, or an event did not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event did not decode.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
}

impl RecordedEvent {
    /// Decodes the payload into `E` through its upcaster chain, naming the stream and version
    /// on failure. `Ok(None)` is an event to skip: a removed type, or an unknown one when
    /// `unknown` is [`UnknownEvents::Skip`].
    pub fn decode_as<E: Event>(
        &self,
        unknown: UnknownEvents,
    ) -> Result<Option<E>, EventDecodeError> {
        unknown
            .apply(self.decode::<E>())
            .map_err(|source| EventDecodeError {
                stream: self.stream_id.clone(),
                version: self.version,
                position: self.position,
                source,
            })
    }

    /// Decodes the payload into an [`Envelope`]; see [`decode_as`](RecordedEvent::decode_as).
    pub fn into_envelope<E: Event>(
        self,
        unknown: UnknownEvents,
    ) -> Result<Option<Envelope<E>>, EventDecodeError> {
        Ok(self.decode_as::<E>(unknown)?.map(|event| Envelope {
            event,
            event_id: self.event_id,
            stream_id: self.stream_id,
            version: self.version,
            position: self.position,
            commit: self.commit,
            event_type: self.event_type,
            schema_version: self.schema_version,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
        }))
    }
}

/// Decodes a batch, dropping skipped events.
pub(crate) fn decode_batch<E: Event>(
    batch: Vec<RecordedEvent>,
    unknown: UnknownEvents,
) -> Result<Vec<Envelope<E>>, EventDecodeError> {
    let mut decoded = Vec::with_capacity(batch.len());
    for recorded in batch {
        decoded.extend(recorded.into_envelope(unknown)?);
    }
    Ok(decoded)
}
