//! Support for the code `eventsource-derive` generates. Not a public API: anything here may
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
    payload: &Payload,
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
