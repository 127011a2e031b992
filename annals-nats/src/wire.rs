//! How a stored event travels as a NATS message: its subject, its headers, its body; and how a
//! message is read back into a [`RecordedEvent`], with a typed error naming what is wrong.
//!
//! The body is the stored JSON payload, byte for byte. The headers carry everything else:
//!
//! | header | value |
//! |---|---|
//! | `Nats-Msg-Id` | the event id (JetStream drops a repeat within the stream's duplicate window) |
//! | `Annals-Stream` | the stream id |
//! | `Annals-Version` | the event's version in its stream |
//! | `Annals-Position`, `Annals-Commit` | its place in the source store's log |
//! | `Annals-Event-Type`, `Annals-Schema-Version` | its stored type name and schema version |
//! | `Annals-Recorded-At` | when the source store recorded it, RFC 3339 in UTC |
//! | `Annals-Correlation-Id`, `Annals-Causation-Id`, `Annals-Actor` | its metadata, when set |
//! | `Annals-Metadata` | the whole metadata as JSON (free-form headers included), when it has any |

use std::time::SystemTime;

use annals::{Metadata, Payload, Position, RecordedEvent, StreamId, Version};
use async_nats::header::{HeaderMap, HeaderValue};
use bytes::Bytes;
use uuid::Uuid;

/// The names of the headers a relayed event carries.
pub mod header {
    /// The event id, JetStream's deduplication key.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The stream id.
    pub const STREAM: &str = "Annals-Stream";
    /// The event's version in its stream.
    pub const VERSION: &str = "Annals-Version";
    /// The event's position in the source store's log.
    pub const POSITION: &str = "Annals-Position";
    /// The commit the event was written in, in the source store.
    pub const COMMIT: &str = "Annals-Commit";
    /// The stored type name.
    pub const EVENT_TYPE: &str = "Annals-Event-Type";
    /// The stored schema version.
    pub const SCHEMA_VERSION: &str = "Annals-Schema-Version";
    /// When the source store recorded the event (RFC 3339, UTC).
    pub const RECORDED_AT: &str = "Annals-Recorded-At";
    /// The correlation id, when set.
    pub const CORRELATION_ID: &str = "Annals-Correlation-Id";
    /// The causation id, when set.
    pub const CAUSATION_ID: &str = "Annals-Causation-Id";
    /// The actor, when set (and free of control characters; `Annals-Metadata` always has it).
    pub const ACTOR: &str = "Annals-Actor";
    /// The whole metadata as JSON, when it holds anything.
    pub const METADATA: &str = "Annals-Metadata";
}

/// What is wrong with a message that should carry a relayed event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageProblem {
    /// A required header is missing.
    #[error("header `{0}` is missing")]
    MissingHeader(&'static str),
    /// A header does not hold what it should.
    #[error("header `{name}` holds `{value}`, which is not {expected}")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value (cut to 200 characters).
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    Body(String),
    /// The message is larger than the consumer accepts.
    #[error("the message is {size} bytes, more than the {limit} this consumer accepts")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// The headers of `event`, as the relay publishes them.
pub fn headers_of(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let event_id = event.event_id.to_string();
    headers.insert(header::MSG_ID, event_id.as_str());
    headers.insert(header::STREAM, event.stream_id.as_str());
    headers.insert(header::VERSION, event.version.0.to_string().as_str());
    headers.insert(header::POSITION, event.position.0.to_string().as_str());
    headers.insert(header::COMMIT, event.commit.to_string().as_str());
    headers.insert(header::EVENT_TYPE, header_text(&event.event_type).as_str());
    headers.insert(
        header::SCHEMA_VERSION,
        event.schema_version.to_string().as_str(),
    );
    headers.insert(
        header::RECORDED_AT,
        humantime::format_rfc3339_nanos(event.recorded_at)
            .to_string()
            .as_str(),
    );
    let metadata = &event.metadata;
    if let Some(id) = metadata.correlation_id {
        headers.insert(header::CORRELATION_ID, id.to_string().as_str());
    }
    if let Some(id) = metadata.causation_id {
        headers.insert(header::CAUSATION_ID, id.to_string().as_str());
    }
    if let Some(actor) = metadata.actor.as_deref().filter(|a| is_header_safe(a)) {
        headers.insert(header::ACTOR, actor);
    }
    if !metadata.is_empty() {
        if let Ok(json) = serde_json::to_string(metadata) {
            headers.insert(header::METADATA, json.as_str());
        }
    }
    headers
}

/// The body of `event`: its stored JSON, unchanged.
pub fn body_of(event: &RecordedEvent) -> Bytes {
    Bytes::copy_from_slice(event.payload.as_str().as_bytes())
}

/// Reads a message back into the event it carries.
pub fn event_of(headers: Option<&HeaderMap>, body: &[u8]) -> Result<RecordedEvent, MessageProblem> {
    let empty = HeaderMap::new();
    let headers = headers.unwrap_or(&empty);
    let text = |name: &'static str| -> Result<&str, MessageProblem> {
        headers
            .get(name)
            .map(HeaderValue::as_str)
            .ok_or(MessageProblem::MissingHeader(name))
    };
    let number = |name: &'static str| -> Result<u64, MessageProblem> {
        let value = text(name)?;
        value
            .parse()
            .map_err(|_| bad(name, value, "a whole number"))
    };
    let uuid = |name: &'static str| -> Result<Option<Uuid>, MessageProblem> {
        match headers.get(name).map(HeaderValue::as_str) {
            None => Ok(None),
            Some(value) => Uuid::parse_str(value)
                .map(Some)
                .map_err(|_| bad(name, value, "a UUID")),
        }
    };
    let event_id = uuid(header::MSG_ID)?.ok_or(MessageProblem::MissingHeader(header::MSG_ID))?;
    let stream = text(header::STREAM)?;
    let stream_id =
        StreamId::new(stream).map_err(|_| bad(header::STREAM, stream, "a stream id"))?;
    let schema_version = text(header::SCHEMA_VERSION)?;
    let schema_version = schema_version
        .parse::<u32>()
        .map_err(|_| bad(header::SCHEMA_VERSION, schema_version, "a schema version"))?;
    let recorded_at = text(header::RECORDED_AT)?;
    let recorded_at: SystemTime = humantime::parse_rfc3339(recorded_at)
        .map_err(|_| bad(header::RECORDED_AT, recorded_at, "an RFC 3339 time"))?;
    let metadata = match headers.get(header::METADATA).map(HeaderValue::as_str) {
        Some(json) => serde_json::from_str::<Metadata>(json)
            .map_err(|_| bad(header::METADATA, json, "metadata as JSON"))?,
        None => {
            let mut metadata = Metadata::new();
            metadata.correlation_id = uuid(header::CORRELATION_ID)?;
            metadata.causation_id = uuid(header::CAUSATION_ID)?;
            metadata.actor = headers
                .get(header::ACTOR)
                .map(|actor| actor.as_str().to_owned());
            metadata
        }
    };
    let body = std::str::from_utf8(body).map_err(|e| MessageProblem::Body(e.to_string()))?;
    let payload = Payload::from_json(body).map_err(|e| MessageProblem::Body(e.to_string()))?;
    Ok(RecordedEvent {
        event_id,
        stream_id,
        version: Version(number(header::VERSION)?),
        position: Position(number(header::POSITION)?),
        commit: number(header::COMMIT)?,
        event_type: text(header::EVENT_TYPE)?.to_owned(),
        schema_version,
        payload,
        metadata,
        recorded_at,
    })
}

/// The event id a message names, if it names a readable one: for errors about a message that
/// cannot be read as a whole.
pub fn event_id_of(headers: Option<&HeaderMap>) -> Option<Uuid> {
    let value = headers?.get(header::MSG_ID)?;
    Uuid::parse_str(value.as_str()).ok()
}

fn bad(name: &'static str, value: &str, expected: &'static str) -> MessageProblem {
    MessageProblem::BadHeader {
        name,
        value: value.chars().take(200).collect(),
        expected,
    }
}

/// Whether `text` can be a header value as it is (no control characters, which would end the
/// header line).
fn is_header_safe(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// `text` with its control characters replaced, for a header that must be there.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Maps an event to the subject it is published on.
///
/// The default is `<prefix>.<aggregate type>.<event type>`. The aggregate type is the longest
/// of the known types (see [`SubjectMapping::aggregate_type`]) that prefixes the stream id as
/// `<type>-`, or else the stream id up to its first `-`. Each part keeps ASCII letters, digits,
/// `-` and `_`; any other character becomes `_`, so a part is always one subject token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectMapping {
    prefix: String,
    aggregate_types: Vec<String>,
}

impl SubjectMapping {
    /// Subjects under `prefix` (for example `"orders"` gives `orders.order.Placed`).
    pub fn new(prefix: impl Into<String>) -> Self {
        SubjectMapping {
            prefix: prefix.into(),
            aggregate_types: Vec::new(),
        }
    }

    /// Declares an aggregate type, so that stream ids `<type>-...` map to it even when the
    /// type or the id holds `-` (`bank-account-42` is of type `bank-account`).
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.aggregate_types.push(aggregate_type.into());
        self
    }

    /// Declares aggregate `A`'s type; see [`aggregate_type`](SubjectMapping::aggregate_type).
    pub fn aggregate<A: annals::Aggregate>(self) -> Self {
        self.aggregate_type(A::TYPE)
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The subjects every event maps to: `<prefix>.>`.
    pub fn wildcard(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The subject of `event`.
    pub fn subject(&self, event: &RecordedEvent) -> String {
        let stream = event.stream_id.as_str();
        let aggregate = self
            .aggregate_types
            .iter()
            .filter(|t| event.stream_id.belongs_to(t))
            .max_by_key(|t| t.len())
            .map(String::as_str)
            .unwrap_or_else(|| stream.split('-').next().unwrap_or(stream));
        format!(
            "{}.{}.{}",
            self.prefix,
            token(aggregate),
            token(&event.event_type)
        )
    }
}

/// `text` as one subject token.
fn token(text: &str) -> String {
    let token: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "_".to_owned()
    } else {
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::new_v4(),
            stream_id: StreamId::new(stream).unwrap(),
            version: Version(3),
            position: Position(17),
            commit: 1_234,
            event_type: event_type.to_owned(),
            schema_version: 2,
            payload: Payload::from_json(r#"{"amount": 5, "note": "ünïcode"}"#).unwrap(),
            metadata: Metadata::new()
                .with_actor("ann")
                .with_correlation_id(Uuid::new_v4())
                .with_causation_id(Uuid::new_v4())
                .with_header("tenant", "t-1"),
            recorded_at: SystemTime::UNIX_EPOCH
                + std::time::Duration::from_nanos(1_764_000_000_123_456_789),
        }
    }

    #[test]
    fn an_event_travels_unchanged() {
        let sent = event("bank-account-42", "account.deposited");
        let headers = headers_of(&sent);
        let body = body_of(&sent);
        assert_eq!(
            &body[..],
            sent.payload.as_str().as_bytes(),
            "the body is the stored JSON"
        );
        assert_eq!(event_of(Some(&headers), &body).unwrap(), sent);
        assert_eq!(event_id_of(Some(&headers)), Some(sent.event_id));
    }

    #[test]
    fn subjects_name_the_aggregate_type_and_the_event_type() {
        let mapping = SubjectMapping::new("bank").aggregate_type("bank-account");
        assert_eq!(
            mapping.subject(&event("bank-account-42", "account.deposited")),
            "bank.bank-account.account_deposited"
        );
        assert_eq!(
            mapping.subject(&event("order-7-b", "Placed")),
            "bank.order.Placed"
        );
        assert_eq!(mapping.wildcard(), "bank.>");
    }

    #[test]
    fn a_message_that_is_not_an_event_is_named_by_what_it_lacks() {
        let sent = event("order-1", "Placed");
        let body = body_of(&sent);
        assert_eq!(
            event_of(None, &body),
            Err(MessageProblem::MissingHeader(header::MSG_ID))
        );
        let mut headers = headers_of(&sent);
        headers.insert(header::VERSION, "three");
        assert!(matches!(
            event_of(Some(&headers), &body),
            Err(MessageProblem::BadHeader {
                name: header::VERSION,
                ..
            })
        ));
        let headers = headers_of(&sent);
        assert!(matches!(
            event_of(Some(&headers), b"{not json"),
            Err(MessageProblem::Body(_))
        ));
    }
}
