//! The relay's and the consumer's metrics, read back from a recording recorder after a relay
//! published three events and a consumer handled them and parked a foreign message. One test:
//! the recorder is global to this test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{
    stop_signal, Envelope, EventStore, ExpectedVersion, HandlerError, NewEvent, StreamId,
};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::jetstream;
use annals_nats::telemetry::names;
use annals_nats::testing::NatsServer;
use annals_nats::{NatsConsumer, NatsHandler, Relay, RelayConfig, SubjectMapping};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, annals::Event)]
enum OrderEvent {
    Placed { n: u64 },
}

struct Count(Arc<AtomicUsize>);

#[annals::async_trait]
impl NatsHandler for Count {
    type Event = OrderEvent;

    async fn handle(&mut self, _event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_and_the_consumer_record_their_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let store = MemoryEventStore::new();
    let events = (0..3)
        .map(|n| NewEvent::encode(&OrderEvent::Placed { n }, Default::default()).unwrap())
        .collect();
    store
        .append(
            &StreamId::new("order-1").unwrap(),
            ExpectedVersion::NoStream,
            events,
        )
        .await
        .unwrap();
    let config = RelayConfig::new("ORDERS", SubjectMapping::new("orders"));
    let mut relay = Relay::new(store.clone(), client.clone(), config);
    assert_eq!(relay.catch_up().await.unwrap(), 3);
    // A message that is not a relayed event: parked.
    let js = jetstream::new(client);
    js.publish("orders.order.Foreign", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let handled = Arc::new(AtomicUsize::new(0));
    let consumer =
        NatsConsumer::new(js.clone(), "counter", "ORDERS").with_filter_subject("orders.>");
    let (stopper, stop) = stop_signal();
    let task = tokio::spawn({
        let handler = Count(handled.clone());
        async move { consumer.run(handler, stop).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    // Watched without a snapshot of the recorder, which would drain what it recorded.
    let parked = || async {
        match js.get_stream("ANNALS_DEAD_LETTERS").await {
            Ok(mut stream) => stream.info().await.is_ok_and(|i| i.state.messages == 1),
            Err(_) => false,
        }
    };
    while handled.load(Ordering::SeqCst) < 3 || !parked().await {
        assert!(Instant::now() < deadline, "the consumer did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stopper.stop();
    task.await.unwrap().unwrap();

    let values = snapshotter.snapshot().into_vec();
    let find = |name: &str, labels: &[(&str, &str)]| {
        values
            .iter()
            .find(|(key, _, _, _)| {
                let key = key.key();
                key.name() == name
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(_, _, _, value)| value)
            .unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(
        find(names::RELAY_EVENTS, &[("relay", "ORDERS")]),
        &DebugValue::Counter(3)
    );
    assert!(matches!(
        find(names::RELAY_PUBLISH_DURATION, &[("relay", "ORDERS")]),
        DebugValue::Histogram(samples) if !samples.is_empty()
    ));
    let outcome = |o: &str| {
        find(
            names::CONSUMER_MESSAGES,
            &[("consumer", "counter"), ("outcome", o)],
        )
    };
    assert_eq!(outcome("applied"), &DebugValue::Counter(3));
    assert_eq!(outcome("parked"), &DebugValue::Counter(1));
    assert_eq!(outcome("duplicate"), &DebugValue::Counter(0));
    assert!(matches!(
        find(names::CONSUMER_HANDLE_DURATION, &[("consumer", "counter")]),
        DebugValue::Histogram(samples) if samples.len() == 4
    ));
    // The relay's lag is the projection runner's, under the relay's checkpoint name.
    assert!(matches!(
        find(annals::telemetry::names::PROJECTION_LAG_EVENTS, &[("projection", "nats-relay:ORDERS")]),
        DebugValue::Gauge(lag) if lag.into_inner() == 0.0
    ));
}
