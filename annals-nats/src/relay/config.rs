//! [`RelayConfig`]: what a relay reads, where it publishes, how the JetStream stream is set
//! up, and how hard it pushes and retries. Each default is stated where it is set.

use std::time::Duration;

use annals::{Filter, DEFAULT_POLL_INTERVAL};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use crate::wire::SubjectMapping;

/// The default number of replicas of the stream: 1 (a single server keeps it; a cluster of
/// three with 3 replicas survives the loss of one node).
pub const DEFAULT_REPLICAS: usize = 1;

/// The default duplicate window of the stream: 2 minutes, nats-server's own default.
///
/// Within it, JetStream drops a message whose `Nats-Msg-Id` (the event id) it already
/// stored, so a relay that publishes an event again after a crash stores it once. Beyond it,
/// the relay's guarantee is at least once: a repeat of an event stored longer ago than the
/// window is stored again, and consumers must recognise it by its event id.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The default number of publishes a relay keeps unacknowledged at a time: 256.
pub const DEFAULT_PUBLISH_WINDOW: usize = 256;

/// The default number of events in one batch, and so between two checkpoint saves: 1,000.
///
/// The publish window drains at the end of each batch (its checkpoint waits for every
/// acknowledgement), so a batch holds several windows.
pub const DEFAULT_RELAY_BATCH_SIZE: usize = 1_000;

/// The default time a relay waits for JetStream to answer a request or acknowledge a
/// publish: 5 seconds (async-nats's own default for acknowledgements).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default wait before a relay tries again after an error: 100 ms, doubling after each
/// failed attempt up to [`DEFAULT_MAX_BACKOFF`].
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// The default longest wait between two attempts of a relay: 30 seconds.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a [`Relay`](super::Relay) runs: the JetStream stream it publishes to and how that stream
/// is made, which events leave the service, and how it batches, pipelines and retries.
///
/// ```
/// use std::time::Duration;
///
/// use annals::Filter;
/// use annals_nats::{RelayConfig, SubjectMapping};
///
/// let config = RelayConfig::new("ORDERS", SubjectMapping::new("orders"))
///     .with_filter(Filter::category("order"))
///     .with_replicas(3)
///     .with_max_age(Duration::from_secs(30 * 24 * 3600));
/// assert_eq!(config.checkpoint_name(), "nats-relay:ORDERS");
/// ```
#[derive(Debug, Clone)]
pub struct RelayConfig {
    name: String,
    stream: String,
    subjects: SubjectMapping,
    filter: Filter,
    replicas: usize,
    duplicate_window: Duration,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
    publish_window: usize,
    batch_size: usize,
    poll_interval: Duration,
    timeout: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl RelayConfig {
    /// A relay publishing to the JetStream stream `stream` on the subjects of `subjects`.
    ///
    /// Defaults: the relay's name is the stream's name; every event is relayed
    /// ([`Filter::all`]); the stream has [`DEFAULT_REPLICAS`] replica, a
    /// [`DEFAULT_DUPLICATE_WINDOW`] and keeps everything (no age or size limit); at most
    /// [`DEFAULT_PUBLISH_WINDOW`] publishes are unacknowledged, batches hold at most
    /// [`DEFAULT_RELAY_BATCH_SIZE`] events, a caught-up relay reads the log again every
    /// [`DEFAULT_POLL_INTERVAL`] when no notification came, requests and acknowledgements time
    /// out after [`DEFAULT_TIMEOUT`], and retries wait from [`DEFAULT_INITIAL_BACKOFF`] up to
    /// [`DEFAULT_MAX_BACKOFF`].
    pub fn new(stream: impl Into<String>, subjects: SubjectMapping) -> Self {
        let stream = stream.into();
        RelayConfig {
            name: stream.clone(),
            stream,
            subjects,
            filter: Filter::all(),
            replicas: DEFAULT_REPLICAS,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_age: None,
            max_bytes: None,
            publish_window: DEFAULT_PUBLISH_WINDOW,
            batch_size: DEFAULT_RELAY_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }

    /// Names the relay (default: the stream's name). Its checkpoint and its lease are stored
    /// in the source store under [`checkpoint_name`](RelayConfig::checkpoint_name); renaming a
    /// relay makes it start again from the beginning of the log.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Which events leave the service (default: all). The others are never published: only
    /// the aggregates and event types let through here reach the stream.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The number of replicas of the stream when the relay creates it (default
    /// [`DEFAULT_REPLICAS`]; at least 1).
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    /// The stream's duplicate window (default [`DEFAULT_DUPLICATE_WINDOW`], which says what
    /// holds beyond it). It is never longer than the [maximum age](RelayConfig::with_max_age):
    /// nats-server refuses that, so a shorter age shortens it.
    pub fn with_duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Removes messages from the stream once they are older than `max_age` (default: kept
    /// forever).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Removes the oldest messages once the stream holds more than `max_bytes` (default: no
    /// limit).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// How many publishes may wait for their acknowledgement at a time (default
    /// [`DEFAULT_PUBLISH_WINDOW`]; at least 1, which publishes one event at a time).
    pub fn with_publish_window(mut self, window: usize) -> Self {
        self.publish_window = window.max(1);
        self
    }

    /// How many events one batch, and so one checkpoint save, holds at most (default
    /// [`DEFAULT_RELAY_BATCH_SIZE`]; at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long a caught-up relay waits for the store's notification of new events before it
    /// reads the log again (default [`DEFAULT_POLL_INTERVAL`]).
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// How long a JetStream request or a publish's acknowledgement may take (default
    /// [`DEFAULT_TIMEOUT`]). Used when the relay makes its JetStream context from a client
    /// ([`Relay::new`](super::Relay::new)).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wait before the first retry after an error and the longest wait between two
    /// attempts (defaults [`DEFAULT_INITIAL_BACKOFF`] and [`DEFAULT_MAX_BACKOFF`]); the wait
    /// doubles after each failed attempt and starts again from `initial` once the relay has
    /// made progress.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The relay's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the relay's checkpoint and lease in the source store:
    /// `nats-relay:<name>`.
    pub fn checkpoint_name(&self) -> String {
        format!("nats-relay:{}", self.name)
    }

    /// The JetStream stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// How events map to subjects.
    pub fn subjects(&self) -> &SubjectMapping {
        &self.subjects
    }

    /// Which events leave the service.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The publish window.
    pub fn publish_window(&self) -> usize {
        self.publish_window
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The timeout of requests and acknowledgements.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The first and the longest wait between attempts.
    pub fn backoff(&self) -> (Duration, Duration) {
        (self.initial_backoff, self.max_backoff)
    }

    /// The configuration of the JetStream stream the relay creates when it is missing, and
    /// compares with the server's when it exists: subjects `<prefix>.>`, limits retention,
    /// file storage, the configured replicas, duplicate window, age and size limits.
    pub fn stream_config(&self) -> stream::Config {
        let max_age = self.max_age.unwrap_or(Duration::ZERO);
        let duplicate_window = match self.max_age {
            Some(age) if age < self.duplicate_window => age,
            _ => self.duplicate_window,
        };
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.subjects.wildcard()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            num_replicas: self.replicas,
            duplicate_window,
            max_age,
            max_bytes: self
                .max_bytes
                .map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            description: Some(format!(
                "events of annals relay `{}` (published by annals-nats)",
                self.name
            )),
            ..Default::default()
        }
    }
}
