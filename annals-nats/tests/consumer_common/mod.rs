//! What the consumer tests share: a server with a stream of relayed events, events to
//! publish (raw async-nats with the wire's headers and body, as the relay would), the event
//! enum they decode to, and ways to look at the consumer and its dead letters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use annals::{Metadata, Payload, Position, RecordedEvent, StreamId, Version};
use annals_nats::async_nats::header::HeaderMap;
use annals_nats::async_nats::jetstream::{self, stream};
use annals_nats::testing::NatsServer;
use annals_nats::wire::{body_of, headers_of};
use annals_nats::SubjectMapping;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The JetStream stream the tests publish to.
pub const STREAM: &str = "SHOP";

/// Upcasters of [`ShopEvent`]'s older schema versions.
pub mod upcast {
    use serde_json::Value;

    /// `Placed` v1 stored the total in whole euros, as `total`.
    pub fn placed_v1(mut body: Value) -> Result<Value, String> {
        let object = body
            .as_object_mut()
            .ok_or("a Placed v1 body is an object")?;
        let euros = object
            .remove("total")
            .and_then(|total| total.as_u64())
            .ok_or("a Placed v1 body has a whole `total`")?;
        object.insert("total_cents".into(), (euros * 100).into());
        Ok(body)
    }
}

/// The events the consuming service knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, annals::Event)]
pub enum ShopEvent {
    #[event(version = 2, upcast(1 => upcast::placed_v1))]
    Placed {
        order: String,
        total_cents: u64,
    },
    Cancelled {
        order: String,
    },
}

/// A server with the stream [`STREAM`] on subjects `shop.>`.
pub struct Bus {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub mapping: SubjectMapping,
}

impl Bus {
    pub async fn start() -> Bus {
        let server = NatsServer::start().unwrap();
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = jetstream::new(client);
        js.create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["shop.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        Bus {
            server,
            js,
            mapping: SubjectMapping::new("shop"),
        }
    }

    /// Publishes `event` as the relay would; returns its stream sequence.
    pub async fn publish(&self, event: &RecordedEvent) -> u64 {
        let ack = self
            .js
            .publish_with_headers(
                self.mapping.subject(event),
                headers_of(event),
                body_of(event),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(!ack.duplicate, "each test event is new");
        ack.sequence
    }

    /// Publishes anything on `subject`; returns its stream sequence.
    pub async fn publish_raw(
        &self,
        subject: &str,
        headers: Option<HeaderMap>,
        body: Vec<u8>,
    ) -> u64 {
        let published = match headers {
            Some(headers) => {
                self.js
                    .publish_with_headers(subject.to_owned(), headers, body.into())
                    .await
            }
            None => self.js.publish(subject.to_owned(), body.into()).await,
        };
        published.unwrap().await.unwrap().sequence
    }

    /// The durable consumer `name`'s state on the server, once the consumer created it.
    pub async fn consumer_info(&self, name: &str) -> Option<jetstream::consumer::Info> {
        let stream = self.js.get_stream(STREAM).await.unwrap();
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer(name).await.ok()?;
        Some(consumer.info().await.unwrap().clone())
    }

    /// Waits until consumer `name` has acknowledged everything up to `last`, the stream's
    /// last sequence, and holds nothing unacknowledged.
    pub async fn wait_all_acknowledged(&self, name: &str, last: u64) {
        wait_until("every message acknowledged", || async {
            let Some(info) = self.consumer_info(name).await else {
                return false;
            };
            info.ack_floor.stream_sequence >= last
                && info.num_ack_pending == 0
                && info.num_pending == 0
        })
        .await;
    }

    /// Every message of the dead-letter stream, in order; none when it does not exist yet.
    pub async fn dead_letters_or_none(&self) -> Vec<jetstream::message::StreamMessage> {
        let exists = self
            .js
            .get_stream(annals_nats::consumer::DEFAULT_DEAD_LETTER_STREAM)
            .await
            .is_ok();
        if exists {
            self.dead_letters().await
        } else {
            Vec::new()
        }
    }

    /// Every message of the dead-letter stream, in order.
    pub async fn dead_letters(&self) -> Vec<jetstream::message::StreamMessage> {
        let mut stream = self
            .js
            .get_stream(annals_nats::consumer::DEFAULT_DEAD_LETTER_STREAM)
            .await
            .unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut letters = Vec::new();
        for sequence in 1..=last {
            letters.push(stream.get_raw_message(sequence).await.unwrap());
        }
        letters
    }
}

/// An event of stream `order-<order>` as a source store would have recorded it.
pub fn recorded(order: &str, event_type: &str, schema_version: u32, body: Value) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::new_v4(),
        stream_id: StreamId::new(format!("order-{order}")).unwrap(),
        version: Version(1),
        position: Position(1),
        commit: 1,
        event_type: event_type.to_owned(),
        schema_version,
        payload: Payload::from_value(&body).unwrap(),
        metadata: Metadata::new()
            .with_actor("checkout")
            .with_correlation_id(Uuid::new_v4()),
        recorded_at: SystemTime::now(),
    }
}

/// A current `Placed` event of order `order`.
pub fn placed(order: &str, total_cents: u64) -> RecordedEvent {
    recorded(
        order,
        "Placed",
        2,
        serde_json::json!({ "order": order, "total_cents": total_cents }),
    )
}

/// Waits until `check` holds, failing the test after a minute: a guard against a hang, not
/// a timing the test relies on.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
