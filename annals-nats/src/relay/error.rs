//! The relay's errors: the stream cannot be reached or differs from the configuration, a
//! publish failed, or the projection runner stopped.

use std::fmt;

use annals::{Position, RunError, StreamId, Version};
use async_nats::jetstream::context::PublishError;

/// What went wrong in a relay. [`Relay::run`](super::Relay::run) logs each one and carries on
/// after a backoff; [`Relay::catch_up`](super::Relay::catch_up) returns it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// JetStream did not answer about the stream, or refused to create it (NATS is down, the
    /// cluster has no leader yet, JetStream is not enabled, ...).
    #[error("relay `{relay}`: cannot set up JetStream stream `{stream}`: {source}")]
    StreamUnavailable {
        /// The relay.
        relay: String,
        /// The JetStream stream.
        stream: String,
        /// What the client or the server reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stream exists with a configuration other than the relay's.
    #[error("relay `{relay}`: {mismatch}")]
    StreamMismatch {
        /// The relay.
        relay: String,
        /// Each difference.
        mismatch: StreamMismatch,
    },
    /// An event was not published, or its publish was not acknowledged. The checkpoint stays
    /// before it.
    #[error("relay `{relay}`: event {version} of stream `{event_stream}` (position {position}) was not stored in JetStream stream `{stream}`: {source}")]
    Publish {
        /// The relay.
        relay: String,
        /// The JetStream stream.
        stream: String,
        /// The event's stream in the source store.
        event_stream: StreamId,
        /// The event's version.
        version: Version,
        /// The event's position in the source store's log.
        position: Position,
        /// What the client or the server reported.
        #[source]
        source: PublishError,
    },
    /// The projection runner under the relay stopped: the source store failed, or a publish
    /// kept failing through the runner's retries.
    #[error("relay `{relay}`: {source}")]
    Run {
        /// The relay.
        relay: String,
        /// What the runner reported.
        #[source]
        source: RunError,
    },
}

/// A stream that exists with a configuration other than the relay's: each difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMismatch {
    /// The stream.
    pub stream: String,
    /// What differs, in a fixed order (subjects, replicas, retention, storage, duplicate
    /// window, max age, max bytes).
    pub differences: Vec<StreamDifference>,
}

/// One setting of a stream that differs from the relay's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDifference {
    /// The setting (`subjects`, `replicas`, `retention`, `storage`, `duplicate window`,
    /// `max age`, `max bytes`).
    pub setting: &'static str,
    /// Its value in the relay's configuration.
    pub configured: String,
    /// Its value on the server.
    pub server: String,
}

impl fmt::Display for StreamMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream `{}`: ", self.stream)?;
        for (index, difference) in self.differences.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{difference}")?;
        }
        Ok(())
    }
}

impl fmt::Display for StreamDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: configured {}, server has {}",
            self.setting, self.configured, self.server
        )
    }
}

impl std::error::Error for StreamMismatch {}
