//! Support for the code `annals-derive` generates. Not a public API: anything here may
//! change in any release.

pub use serde;
pub use serde_json;

pub use crate::aggregate::{Aggregate, Handle};
pub use crate::codec::{
    body_value, decode_body, decode_snapshot, decode_value, encode_body, encode_snapshot,
    typed_body, typed_from_value, typed_step, unknown_type, unsupported_version, upcast_step,
};
pub use crate::event::{Apply, DecodeError, EncodeError, Event, Payload};
