//! The records an [`EventStore`](crate::EventStore) takes and gives back: events to append,
//! stored events, the view a replay lends out, append requests and results, snapshots.

use std::borrow::Cow;
use std::time::SystemTime;

use uuid::Uuid;

use crate::decode::{EventDecodeError, UnknownEvents};
use crate::envelope::Envelope;
use crate::event::{DecodeError, EncodeError, Event, Payload};
use crate::metadata::Metadata;
use crate::stream::{Checkpoint, ExpectedVersion, Position, StreamId, Version};

/// An event to append: its id, type, schema version, encoded body and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event's unique id. Appending an id that is already stored is idempotent.
    pub event_id: Uuid,
    /// The type name.
    pub event_type: Cow<'static, str>,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body.
    pub payload: Payload,
    /// Audit metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event from its stored parts, with a new (UUID v7) event id and no metadata: for
    /// importing or seeding data written elsewhere.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: Payload,
    ) -> Self {
        NewEvent {
            event_id: new_event_id(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Metadata::default(),
        }
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Encodes `event` with a new event id.
    ///
    /// New ids are UUID v7: random, but ordered by time to the millisecond, so a store's
    /// unique index on event ids grows at its end like its other indexes instead of being
    /// written all over.
    pub fn encode<E: Event>(event: &E, metadata: Metadata) -> Result<Self, EncodeError> {
        Ok(NewEvent {
            event_id: new_event_id(),
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            payload: event.encode()?,
            metadata,
        })
    }

    /// Replaces the event id, for example with one derived from an idempotency key.
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// A new event id: a UUID v7 of the current time in milliseconds and 74 random bits.
///
/// Built here rather than with `Uuid::now_v7`, whose counter keeps ids made in one
/// millisecond in order through a context shared by every thread: that context and its
/// 128-bit time arithmetic cost as much as the rest of a command on the memory store. Ids of
/// one millisecond are in random order, which keeps an index on them growing at its end.
fn new_event_id() -> Uuid {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let millis = since
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(since.subsec_millis()));
    // The random bytes of a v4 id (uuid's thread-local generator): all but the two that hold
    // its version and variant.
    let random = Uuid::new_v4().into_bytes();
    let mut bits = [0; 10];
    bits[..6].copy_from_slice(&random[..6]);
    bits[6..].copy_from_slice(&random[10..14]);
    uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid()
}

/// An event as stored, with the place the store gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The event's unique id.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream (1 for the first event).
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
    /// The commit (transaction) it was written in; see [`Checkpoint`].
    pub commit: u64,
    /// The type name.
    pub event_type: String,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body.
    pub payload: Payload,
    /// Audit metadata.
    pub metadata: Metadata,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}

impl RecordedEvent {
    /// The reader's checkpoint just after this event.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            commit: self.commit,
            position: self.position,
        }
    }

    /// Decodes the payload into the event enum `E`.
    ///
    /// `Ok(None)` is an event of a type `E` declares as removed.
    pub fn decode<E: Event>(&self) -> Result<Option<E>, DecodeError> {
        ReplayedEvent::of(self).decode()
    }

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
                position: Some(self.position),
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

/// One event as [`EventStore::replay_stream`](crate::EventStore::replay_stream) lends it out: what decoding and applying it
/// needs, borrowed from the store for the duration of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedEvent<'a> {
    /// Its version in the stream.
    pub version: Version,
    /// The type name.
    pub event_type: &'a str,
    /// The schema version of `payload`.
    pub schema_version: u32,
    /// The JSON body, as stored.
    pub payload: &'a str,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
}

impl<'a> ReplayedEvent<'a> {
    /// The replay view of a recorded event.
    pub fn of(event: &'a RecordedEvent) -> Self {
        ReplayedEvent {
            version: event.version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: event.payload.as_str(),
            recorded_at: event.recorded_at,
        }
    }

    /// Decodes the payload into the event enum `E`.
    ///
    /// `Ok(None)` is an event of a type `E` declares as removed.
    pub fn decode<E: Event>(&self) -> Result<Option<E>, DecodeError> {
        E::decode(self.event_type, self.schema_version, self.payload)
    }
}

/// The events to append to one stream, as part of a multi-stream append.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream to append to.
    pub stream_id: StreamId,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// What an append wrote, or, for an exact retry, what an earlier append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The version of the first appended event (the stream's next version when none was).
    pub first_version: Version,
    /// The stream's version after the append (for an exact retry: the version of the last
    /// stored event it repeats).
    pub stream_version: Version,
    /// The global position of the last appended event, if any was appended.
    pub last_position: Option<Position>,
    /// Whether this call wrote the events. `false` for an exact retry of events stored
    /// before (the store answered with what it holds, which may not be what this call's
    /// caller decided), and for a call with no events.
    ///
    /// A cache of aggregate states must only apply a caller's own events when they were
    /// written; the [`Repository`](crate::Repository) reloads otherwise.
    pub written: bool,
}

/// A saved aggregate state: a cache that spares replaying the events up to `version`.
///
/// A store keeps the latest snapshot of each stream. The repository ignores a snapshot whose
/// `snapshot_version` is not the aggregate's current one, or that fails to decode, and
/// replays the stream from the start instead: a snapshot can always be thrown away.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The stream the state belongs to.
    pub stream_id: StreamId,
    /// The version of the last event the state includes.
    pub version: Version,
    /// The schema version of the state's encoding.
    pub snapshot_version: u32,
    /// The encoded state.
    pub state: Payload,
    /// When it was taken.
    pub taken_at: SystemTime,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime};

    use super::new_event_id;

    #[test]
    fn new_event_ids_are_v7_unique_and_ordered_by_millisecond() {
        let millis = |id: uuid::Uuid| {
            let (secs, nanos) = id.get_timestamp().map_or((0, 0), |t| t.to_unix());
            Duration::new(secs, nanos).as_millis()
        };
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let ids: Vec<_> = (0..10_000).map(|_| new_event_id()).collect();
        let after = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        assert!(ids
            .iter()
            .all(|id| id.get_version() == Some(uuid::Version::SortRand)));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert!(ids.windows(2).all(|w| millis(w[0]) <= millis(w[1])));
        assert!(millis(ids[0]) >= before && millis(ids[ids.len() - 1]) <= after);
    }
}
