//! The [`Event`] trait: how an event enum names, versions, encodes and decodes its variants.

use std::cell::RefCell;
use std::fmt;

use serde::Serialize;

/// An event enum: every variant is one event type with a name and a schema version.
///
/// Usually derived with `#[derive(Event)]`, which takes the names and versions from
/// `#[event(...)]` attributes. An event is stored as its type name, its schema version and the
/// JSON body of the variant alone (without the enum tag), so renaming a Rust variant never
/// changes stored data, and field-level `serde` attributes shape the body as usual.
pub trait Event: Sized + Send + Sync + 'static {
    /// The type name of this event, as stored.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for this event's type.
    fn schema_version(&self) -> u32;

    /// Encodes the variant's body as JSON.
    fn encode(&self) -> Result<Payload, EncodeError>;

    /// Decodes a stored event from its type name, schema version and JSON body (`payload`,
    /// the JSON text as stored, for example [`Payload::as_str`]).
    ///
    /// Returns `Ok(None)` for a type the enum declares as removed: such events are skipped.
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Result<Option<Self>, DecodeError>;
}

thread_local! {
    /// The buffer [`Payload::from_value`] serializes into.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The largest [`SCRATCH`] buffer kept between payloads: a rare huge one is not held forever.
const MAX_SCRATCH: usize = 64 * 1024;

/// A JSON document: the stored body of an event.
///
/// Kept as JSON text, so a store hands it to the decoder as it was written and an event of
/// the current schema version is deserialized straight into the enum.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Box<str>);

impl Payload {
    /// Checks that `json` is one JSON value and wraps it.
    pub fn from_json(json: impl Into<String>) -> Result<Self, serde_json::Error> {
        let json = json.into();
        serde_json::from_str::<serde::de::IgnoredAny>(&json)?;
        Ok(Payload(json.into_boxed_str()))
    }

    /// Wraps JSON text read back from storage that only ever holds valid JSON (PostgreSQL's
    /// `json` and `jsonb` columns, for example), without checking it again. Text that is not JSON is not unsafe:
    /// it fails to decode later, with [`DecodeError::Body`].
    pub fn from_stored_json(json: String) -> Self {
        Payload(json.into_boxed_str())
    }

    /// Serializes `value` as JSON.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        // Serializing into a buffer kept per thread and copying the text out allocates once,
        // at the exact size: `to_string` grows a fresh buffer, then shrinks it into the box.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let written = serde_json::to_writer(&mut *buffer, value).and_then(|()| {
                    std::str::from_utf8(&buffer)
                        .map(|json| Payload(json.into()))
                        .map_err(serde::ser::Error::custom)
                });
                if buffer.capacity() > MAX_SCRATCH {
                    *buffer = Vec::new();
                }
                written
            }
            // Only a `Serialize` impl that encodes a payload itself gets here.
            Err(_) => serde_json::to_string(value).map(|json| Payload(json.into_boxed_str())),
        })
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the JSON into a [`serde_json::Value`].
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event could not be encoded as JSON.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event `{event_type}` (schema version {schema_version}) as JSON: {source}")]
pub struct EncodeError {
    /// The event's type name.
    pub event_type: &'static str,
    /// The event's schema version.
    pub schema_version: u32,
    /// What serde_json reported.
    #[source]
    pub source: serde_json::Error,
}

/// A stored event could not be decoded into the event enum.
///
/// Every variant names the stored type and schema version; the layer that read the event adds
/// the stream and the event's version (see [`RepositoryError::Decode`](crate::RepositoryError)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No variant has this type name (nor an alias of it).
    #[error("unknown event type `{event_type}` (schema version {schema_version})")]
    UnknownType {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
    },
    /// The stored schema version is newer than the one this code knows.
    #[error(
        "event type `{event_type}` has schema version {schema_version}, newer than the current version {current}"
    )]
    FutureVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The version this code writes.
        current: u32,
    },
    /// The stored schema version is older than the current one and no upcaster covers it.
    #[error(
        "event type `{event_type}` has schema version {schema_version}, and no upcaster brings it to the current version {current}"
    )]
    NoUpcaster {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The version this code writes.
        current: u32,
    },
    /// The body does not match the variant's shape.
    #[error("event type `{event_type}` schema version {schema_version}: the body does not match: {source}")]
    Body {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster failed on the stored body.
    #[error("event type `{event_type}`: upcasting from schema version {from} failed: {source}")]
    Upcast {
        /// The stored type name.
        event_type: String,
        /// The version the failing step started from.
        from: u32,
        /// What the upcaster reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DecodeError {
    /// The stored type name of the event that failed to decode.
    pub fn event_type(&self) -> &str {
        match self {
            DecodeError::UnknownType { event_type, .. }
            | DecodeError::FutureVersion { event_type, .. }
            | DecodeError::NoUpcaster { event_type, .. }
            | DecodeError::Body { event_type, .. }
            | DecodeError::Upcast { event_type, .. } => event_type,
        }
    }
}

/// Dispatches an event onto a state: `#[derive(Event)]` with `#[event(apply = State)]`
/// implements it by calling one method of `State` per variant.
pub trait Apply<E> {
    /// Changes the state by one event.
    fn apply(&mut self, event: &E);
}

#[cfg(test)]
mod tests {
    use serde::{Serialize, Serializer};

    use super::Payload;

    /// Encodes a payload of its own while it is being encoded.
    struct Nested;

    impl Serialize for Nested {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let inner = Payload::from_value(&[1, 2]).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(inner.as_str())
        }
    }

    #[test]
    fn from_value_writes_what_serde_json_writes() -> Result<(), serde_json::Error> {
        let big = "x".repeat(100_000);
        for value in [
            serde_json::json!({"a": 1, "b": "é"}),
            serde_json::json!(big),
        ] {
            assert_eq!(
                Payload::from_value(&value)?.as_str(),
                serde_json::to_string(&value)?
            );
        }
        Ok(())
    }

    #[test]
    fn from_value_encodes_a_payload_inside_a_payload() -> Result<(), serde_json::Error> {
        assert_eq!(Payload::from_value(&Nested)?.as_str(), r#""[1,2]""#);
        Ok(())
    }
}
