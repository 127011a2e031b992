//! What the relay and the consumers report, besides the core's metrics (the relay runs on the
//! core's projection runner, so its lag is `annals_projection_lag_events` and
//! `annals_projection_lag_seconds` with `projection="nats-relay:<name>"`).
//!
//! | name | kind | unit | labels | what |
//! |---|---|---|---|---|
//! | `annals_relay_events_total` | counter | events | `relay` | events JetStream acknowledged to the relay (repeats included) |
//! | `annals_relay_publish_duration_seconds` | histogram | seconds | `relay` | one batch, first publish to last acknowledgement |
//! | `annals_consumer_messages_total` | counter | messages | `consumer`, `outcome` | messages a consumer finished: `applied`, `duplicate` (the inbox had it), `skipped` (a type the handler skips), `parked` |
//! | `annals_consumer_handle_duration_seconds` | histogram | seconds | `consumer` | one message, read to acknowledgement, retries included |
//!
//! Spans: `annals.relay.batch` (`messaging.system` = `nats`, `messaging.operation.name` =
//! `publish`, `messaging.destination.name` = the stream, `messaging.batch.message_count`,
//! `annals.relay`) and `annals.consumer.message` (`messaging.system`, `messaging.operation.name`
//! = `process`, `messaging.destination.name` = the subject, `messaging.consumer.group.name` =
//! the consumer, `messaging.message.id` = the event id, `annals.outcome`).

use metrics::{Counter, Histogram};

/// The metrics' names.
pub mod names {
    /// Events JetStream acknowledged to a relay.
    pub const RELAY_EVENTS: &str = "annals_relay_events_total";
    /// One relay batch, first publish to last acknowledgement.
    pub const RELAY_PUBLISH_DURATION: &str = "annals_relay_publish_duration_seconds";
    /// Messages a consumer finished, by outcome.
    pub const CONSUMER_MESSAGES: &str = "annals_consumer_messages_total";
    /// One consumed message, read to acknowledgement.
    pub const CONSUMER_HANDLE_DURATION: &str = "annals_consumer_handle_duration_seconds";
}

/// A relay's handles.
pub(crate) struct RelayMetrics {
    pub(crate) events: Counter,
    pub(crate) publish_duration: Histogram,
}

impl RelayMetrics {
    pub(crate) fn new(relay: &str) -> Self {
        let labels = [("relay", relay.to_owned())];
        RelayMetrics {
            events: metrics::counter!(names::RELAY_EVENTS, &labels),
            publish_duration: metrics::histogram!(names::RELAY_PUBLISH_DURATION, &labels),
        }
    }
}

impl std::fmt::Debug for RelayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayMetrics").finish_non_exhaustive()
    }
}

/// How a consumer finished a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Processed {
    Applied,
    Duplicate,
    Skipped,
    Parked,
}

impl Processed {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Processed::Applied => "applied",
            Processed::Duplicate => "duplicate",
            Processed::Skipped => "skipped",
            Processed::Parked => "parked",
        }
    }
}

/// A consumer's handles.
pub(crate) struct ConsumerMetrics {
    messages: [Counter; 4],
    pub(crate) handle_duration: Histogram,
}

impl ConsumerMetrics {
    pub(crate) fn new(consumer: &str) -> Self {
        let outcomes = [
            Processed::Applied,
            Processed::Duplicate,
            Processed::Skipped,
            Processed::Parked,
        ];
        ConsumerMetrics {
            messages: outcomes.map(|outcome| {
                let labels = [
                    ("consumer", consumer.to_owned()),
                    ("outcome", outcome.label().to_owned()),
                ];
                metrics::counter!(names::CONSUMER_MESSAGES, &labels)
            }),
            handle_duration: metrics::histogram!(
                names::CONSUMER_HANDLE_DURATION,
                &[("consumer", consumer.to_owned())]
            ),
        }
    }

    pub(crate) fn processed(&self, outcome: Processed) {
        if let Some(counter) = self.messages.get(outcome as usize) {
            counter.increment(1);
        }
    }
}
