//! Support for the code `annals-derive` generates. Not a public API: anything here may
//! change in any release.

pub use serde;
pub use serde_json;

pub use crate::aggregate::{Aggregate, Handle};
pub use crate::event::{Apply, DecodeError, EncodeError, Event, Payload};

/// Encodes the body of one variant of the event enum `E`.
pub fn encode_body<E: serde::Serialize>(
    event: &E,
    event_type: &'static str,
    schema_version: u32,
) -> Result<Payload, EncodeError> {
    crate::codec::encode_body(event, event_type, schema_version)
}

/// Decodes a current-version `payload` as the body of the variant whose serde name is `variant`.
pub fn decode_body<E: serde::de::DeserializeOwned>(
    variant: &'static str,
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<E, DecodeError> {
    crate::codec::decode_body(variant, event_type, schema_version, payload)
}

/// Decodes an upcast JSON `value` as the body of the variant whose serde name is `variant`.
pub fn decode_value<E: serde::de::DeserializeOwned>(
    variant: &'static str,
    event_type: &str,
    schema_version: u32,
    value: serde_json::Value,
) -> Result<E, DecodeError> {
    crate::codec::decode_value(variant, event_type, schema_version, value)
}

/// The error for a stored type name no variant has.
pub fn unknown_type(event_type: &str, schema_version: u32) -> DecodeError {
    DecodeError::UnknownType {
        event_type: event_type.to_owned(),
        schema_version,
    }
}

/// The error for a stored schema version the code cannot decode: newer than `current`, or
/// older with no upcaster.
pub fn unsupported_version(event_type: &str, schema_version: u32, current: u32) -> DecodeError {
    if schema_version > current {
        DecodeError::FutureVersion {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        }
    } else {
        DecodeError::NoUpcaster {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn upcast_failed(event_type: &str, from: u32, source: BoxError) -> DecodeError {
    DecodeError::Upcast {
        event_type: event_type.to_owned(),
        from,
        source,
    }
}

/// Parses a stored body into a JSON value: the input of a JSON upcaster.
pub fn body_value(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<serde_json::Value, DecodeError> {
    serde_json::from_str(payload).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// The result of the JSON upcaster that starts from version `from`.
pub fn upcast_step<E: Into<BoxError>>(
    event_type: &str,
    from: u32,
    result: Result<serde_json::Value, E>,
) -> Result<serde_json::Value, DecodeError> {
    result.map_err(|e| upcast_failed(event_type, from, e.into()))
}

/// Deserializes the stored body of version `schema_version` into its typed form `T`.
pub fn typed_body<T: serde::de::DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(payload).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// Deserializes a JSON value (the output of a JSON upcaster) into the typed form `T` of
/// version `schema_version`.
pub fn typed_from_value<T: serde::de::DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    value: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(value).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// Serializes the typed form of version `schema_version` into a JSON value, the input of a
/// JSON upcaster that follows a typed one.
pub fn typed_to_value<T: serde::Serialize>(
    event_type: &str,
    schema_version: u32,
    value: &T,
) -> Result<serde_json::Value, DecodeError> {
    serde_json::to_value(value)
        .map_err(|source| upcast_failed(event_type, schema_version, source.into()))
}

/// The typed upcaster that starts from version `from`: `U::try_from(value)`.
pub fn typed_step<T, U>(event_type: &str, from: u32, value: T) -> Result<U, DecodeError>
where
    U: TryFrom<T>,
    U::Error: Into<BoxError>,
{
    U::try_from(value).map_err(|e| upcast_failed(event_type, from, e.into()))
}

/// Encodes an aggregate's state for a snapshot.
pub fn encode_snapshot<T: serde::Serialize>(
    state: &T,
) -> Option<Result<Payload, serde_json::Error>> {
    Some(Payload::from_value(state))
}

/// Decodes an aggregate's state from a snapshot.
pub fn decode_snapshot<T: serde::de::DeserializeOwned>(
    state: &Payload,
) -> Option<Result<T, serde_json::Error>> {
    Some(serde_json::from_str(state.as_str()))
}
