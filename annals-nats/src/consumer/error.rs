//! What a consumer reports: where a message sits ([`MessageRef`]), why a message cannot be
//! handled ([`Unreadable`], [`ParkReason`], [`Parked`]), and why the consumer itself stopped
//! ([`ConsumerError`]).

use std::fmt;

use annals::{DecodeError, HandlerError};
use uuid::Uuid;

use crate::wire::MessageProblem;

/// Where a message sits in JetStream: what every error about one message names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// The subject it was published on.
    pub subject: String,
    /// The JetStream stream that stores it.
    pub stream: String,
    /// Its sequence number in that stream.
    pub sequence: u64,
    /// The event id its `Nats-Msg-Id` header names, when that header holds a UUID.
    pub event_id: Option<Uuid>,
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message {} of stream `{}` on subject `{}`",
            self.sequence, self.stream, self.subject
        )?;
        match self.event_id {
            Some(id) => write!(f, " (event {id})"),
            None => f.write_str(" (no readable event id)"),
        }
    }
}

/// Why a message is not an event this consumer can hand to its handler. Such a message is
/// parked at once, without retries: reading it again would fail the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unreadable {
    /// It is not a relayed event: a header is missing or wrong, the body is not JSON, or it
    /// is larger than the consumer accepts.
    #[error(transparent)]
    Message(#[from] MessageProblem),
    /// It is a relayed event, but the event enum cannot decode it: an unknown type (under
    /// [`UnknownEvents::Fail`](annals::UnknownEvents::Fail)), a schema version newer than
    /// the code's, one no upcaster covers, or a body that does not match the variant.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Why a consumer parked a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParkReason {
    /// The message is not one the consumer can read (see [`Unreadable`]).
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    /// The handler failed on the event every time it was tried.
    #[error("the handler failed {attempts} times, last with: {source}")]
    Handler {
        /// How many times the event was handled.
        attempts: u32,
        /// The last error.
        #[source]
        source: HandlerError,
    },
}

/// A message a consumer moved to its dead-letter subject: the typed error it logs (at `error`
/// level) and writes, as text, in the dead letter's `Annals-Dead-Error` header.
#[derive(Debug, thiserror::Error)]
#[error("consumer `{consumer}` parked {message}: {reason}")]
pub struct Parked {
    /// The consumer.
    pub consumer: String,
    /// The message.
    pub message: MessageRef,
    /// Why.
    #[source]
    pub reason: ParkReason,
}

/// A consumer stopped: it could not be set up, JetStream failed, or a message could be
/// neither handled nor parked. No message is acknowledged that was not handled or parked, so
/// a consumer started again picks up where this one stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The configuration is not usable.
    #[error("consumer `{consumer}`: {reason}")]
    Config {
        /// The consumer.
        consumer: String,
        /// What is wrong.
        reason: String,
    },
    /// The durable consumer, or the dead-letter stream, could not be created or read (NATS
    /// unreachable, no stream leader yet, the stream missing): a run starts again.
    #[error("consumer `{consumer}` on stream `{stream}`: cannot set it up: {source}")]
    Setup {
        /// The consumer.
        consumer: String,
        /// The stream it reads.
        stream: String,
        /// What JetStream reported.
        #[source]
        source: async_nats::Error,
    },
    /// The dead-letter stream cannot store the consumer's dead-letter subject: it exists with
    /// other subjects, another stream has them, or JetStream refuses its name.
    #[error(
        "consumer `{consumer}`: dead-letter stream `{stream}` for subject `{subject}`: {reason}"
    )]
    DeadLetterStream {
        /// The consumer.
        consumer: String,
        /// The dead-letter stream.
        stream: String,
        /// The dead-letter subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// Pulling messages failed in a way that does not pass (the consumer was deleted, for
    /// example).
    #[error("consumer `{consumer}`: cannot pull messages: {source}")]
    Pull {
        /// The consumer.
        consumer: String,
        /// What JetStream reported.
        #[source]
        source: async_nats::Error,
    },
    /// A message had to be parked and could not be: it stays unacknowledged, and is
    /// delivered again once its acknowledgement wait is over.
    #[error("consumer `{consumer}` cannot park {message}: {source}")]
    Park {
        /// The consumer.
        consumer: String,
        /// The message.
        message: MessageRef,
        /// Why publishing the dead letter failed.
        #[source]
        source: async_nats::Error,
    },
    /// The inbox (or the transaction around the handler) failed for reasons of the database,
    /// not of the handler: the message stays unacknowledged, and is delivered again once its
    /// acknowledgement wait is over.
    #[error("consumer `{consumer}`: the inbox failed on {message}: {source}")]
    Inbox {
        /// The consumer.
        consumer: String,
        /// The message.
        message: MessageRef,
        /// What the database reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ConsumerError {
    /// Whether starting the consumer again may get past it: NATS or a stream leader away for a
    /// while, a broken pull, a dead letter not stored yet. Not a configuration that cannot
    /// work, and not the inbox's database, which the consumer already retried.
    pub fn passes(&self) -> bool {
        matches!(
            self,
            ConsumerError::Setup { .. } | ConsumerError::Pull { .. } | ConsumerError::Park { .. }
        )
    }
}
