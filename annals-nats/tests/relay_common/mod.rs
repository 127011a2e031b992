//! What the relay tests share: appending events, reading a JetStream stream back with a raw
//! consumer, and checking that it holds each relayed event once, in version order.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use annals::{EventStore, ExpectedVersion, NewEvent, Payload, RecordedEvent, StreamId, Version};
use annals_nats::async_nats::jetstream::{self, consumer, stream};
use annals_nats::async_nats::HeaderMap;
use annals_nats::wire::header;
use annals_nats::RelayConfig;
use bytes::Bytes;
use futures_util::StreamExt;

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Stored {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.as_str())
            .unwrap_or_else(|| panic!("message {} has no header {name}", self.sequence))
    }
}

/// Appends `count` events of `event_type` to `stream`, `per_call` at a time.
pub async fn append<S: EventStore>(
    store: &S,
    stream: &str,
    event_type: &'static str,
    count: usize,
    per_call: usize,
) {
    let stream_id = StreamId::new(stream).unwrap();
    let mut appended = 0;
    while appended < count {
        let n = per_call.min(count - appended);
        let events = (0..n)
            .map(|i| {
                let payload = Payload::from_json(format!(
                    r#"{{"n": {}, "stream": "{stream}"}}"#,
                    appended + i
                ))
                .unwrap();
                NewEvent::new(event_type, 1, payload)
            })
            .collect();
        store
            .append(&stream_id, ExpectedVersion::Any, events)
            .await
            .unwrap();
        appended += n;
    }
}

/// Every event of the store's log, in log order.
pub async fn log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = annals::Checkpoint::START;
    loop {
        let page = store.read_all(after, 5_000).await.unwrap();
        let Some(last) = page.last() else {
            return events;
        };
        after = last.checkpoint();
        events.extend(page);
    }
}

/// Waits until the relay's checkpoint reaches the head of the store's log.
pub async fn wait_for_checkpoint<S: EventStore>(store: &S, config: &RelayConfig, within: Duration) {
    let deadline = Instant::now() + within;
    let head = store.log_head().await.unwrap();
    loop {
        let saved = store
            .load_checkpoint(&config.checkpoint_name())
            .await
            .unwrap();
        if saved == Some(head) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the relay's checkpoint is {saved:?} after {within:?}, the log's head {head:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until stream `name` has a leader and every replica of it is current: a node started
/// again catches up first, and a consumer created before may wait for it.
pub async fn wait_for_replicas(js: &jetstream::Context, name: &str) -> jetstream::stream::Stream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = match js.get_stream(name).await {
            Ok(stream) => {
                let cluster = stream.cached_info().cluster.clone();
                let ready = cluster.as_ref().is_none_or(|cluster| {
                    cluster.leader.is_some()
                        && cluster
                            .replicas
                            .iter()
                            .all(|peer| peer.current && !peer.offline)
                });
                if ready {
                    return stream;
                }
                format!("{cluster:?}")
            }
            Err(error) => error.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "stream {name} has no leader or lagging replicas after 30 s: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message of stream `name`, in stream order, read with a raw pull consumer.
pub async fn read_back(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    let mut stream = wait_for_replicas(js, name).await;
    let expected = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut stored = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored.len() < expected {
        assert!(
            Instant::now() < deadline,
            "read {} of the {expected} messages of {name}",
            stored.len()
        );
        let mut batch = consumer
            .fetch()
            .max_messages(1_000)
            .messages()
            .await
            .unwrap();
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let sequence = message.info().unwrap().stream_sequence;
            stored.push(Stored {
                sequence,
                subject: message.subject.to_string(),
                headers: message.headers.clone().unwrap_or_default(),
                body: message.payload.clone(),
            });
        }
    }
    stored
}

/// Checks that `stored` holds each of `expected` exactly once (unique `Nats-Msg-Id`s, the
/// same set), in version order within each aggregate stream.
pub fn assert_exactly_once_in_order(stored: &[Stored], expected: &[RecordedEvent]) {
    let ids: Vec<&str> = stored.iter().map(|m| m.header(header::MSG_ID)).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{} messages carry the same Nats-Msg-Id as another",
        ids.len() - unique.len()
    );
    let wanted: HashSet<String> = expected.iter().map(|e| e.event_id.to_string()).collect();
    let missing = wanted
        .iter()
        .filter(|id| !unique.contains(id.as_str()))
        .count();
    let extra = unique.iter().filter(|id| !wanted.contains(**id)).count();
    assert_eq!(
        (stored.len(), missing, extra),
        (expected.len(), 0, 0),
        "(messages, events missing, messages of no relayed event)"
    );
    assert!(
        stored.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "messages were read back out of stream order"
    );
    let mut last: HashMap<&str, u64> = HashMap::new();
    for message in stored {
        let stream = message.header(header::STREAM);
        let version: u64 = message.header(header::VERSION).parse().unwrap();
        let previous = last.insert(stream, version).unwrap_or(0);
        assert_eq!(
            version,
            previous + 1,
            "stream `{stream}`: version {version} stored (sequence {}) right after version {previous}",
            message.sequence
        );
    }
}

/// The versions expected for `stream` in `events`.
pub fn versions(events: &[RecordedEvent], stream: &str) -> Vec<Version> {
    events
        .iter()
        .filter(|e| e.stream_id.as_str() == stream)
        .map(|e| e.version)
        .collect()
}

/// A JetStream context on `client` that retries nothing: for reading back.
pub fn context(client: annals_nats::async_nats::Client) -> jetstream::Context {
    jetstream::new(client)
}

/// Keeps `stream` config's settings as read from the server.
pub async fn server_config(js: &jetstream::Context, name: &str) -> stream::Config {
    js.get_stream(name)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone()
}
