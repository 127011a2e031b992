//! A relay and a consumer over a three-node JetStream cluster, stream replicated three times:
//! one node is killed while the relay publishes (the one its connection is on) and started
//! again; the relay carries on to the end and the stream holds each event exactly once, in
//! order, and the consumer, which ran all along, applied each event exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::{stop_signal, Envelope, HandlerError};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::{self, jetstream};
use annals_nats::testing::NatsCluster;
use annals_nats::{
    MemoryInbox, MemoryNatsHandler, NatsConsumer, Relay, RelayConfig, SubjectMapping,
};
use relay_common::{append, assert_exactly_once_in_order, log, read_back, wait_for_checkpoint};
use serde::{Deserialize, Serialize};

async fn client(urls: Vec<String>) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(urls)
        .await
        .unwrap()
}

/// The relayed events, as the consumer decodes them.
#[derive(Debug, Serialize, Deserialize, annals::Event)]
enum OrderEvent {
    Placed { n: u64, stream: String },
    Updated { n: u64, stream: String },
}

/// How often each event was applied, by event id.
#[derive(Clone, Default)]
struct Applied(Arc<Mutex<HashMap<uuid::Uuid, u32>>>);

impl MemoryNatsHandler for Applied {
    type Event = OrderEvent;

    fn handle(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
        *self.0.lock().unwrap().entry(event.event_id).or_default() += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_carries_on_through_the_loss_of_a_cluster_node() {
    let started = Instant::now();
    let mut cluster = NatsCluster::start(3).unwrap();
    let store = MemoryEventStore::new();
    for stream in ["order-1", "order-2", "order-3", "order-4"] {
        append(&store, stream, "Placed", 1_000, 100).await;
    }
    let config = RelayConfig::new("REPLICATED", SubjectMapping::new("replicated"))
        .with_replicas(3)
        .with_batch_size(500)
        .with_timeout(Duration::from_secs(1))
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1));
    let relay_client = client(cluster.urls()).await;
    let mut relay = Relay::new(store.clone(), relay_client.clone(), config.clone());
    let mut status = relay.status();
    let (stopper, stop) = stop_signal();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop).await }
    });

    // Writers go on appending while the relay runs, through the loss of the node.
    let writers: Vec<_> = ["order-2", "order-5"]
        .into_iter()
        .map(|stream| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    append(&store, stream, "Updated", 20, 20).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    // Kill the node the relay is connected to while it publishes (the cluster first elects
    // its leaders and the relay creates the stream: the relay retries until then).
    let deadline = Instant::now() + Duration::from_secs(60);
    while status.borrow_and_update().relayed < 1_000 {
        assert!(
            Instant::now() < deadline,
            "the relay did not start: {:?}",
            *status.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
    // The consumer runs from here on, through the loss of the node, on a connection of its own.
    let applied = Applied::default();
    let inbox = MemoryInbox::new();
    let consumer = NatsConsumer::new(
        jetstream::new(client(cluster.urls()).await),
        "cluster-reader",
        "REPLICATED",
    )
    .with_filter_subject("replicated.>");
    let consumer_task = tokio::spawn({
        let (applied, inbox, stop) = (applied.clone(), inbox.clone(), stop.clone());
        async move { consumer.run_with_inbox(&inbox, applied, stop).await }
    });
    let connected = relay_client.server_info().server_name;
    let index = cluster
        .nodes()
        .iter()
        .position(|node| node.name() == connected)
        .unwrap_or(0);
    let relayed_at_kill = status.borrow().relayed;
    cluster.node_mut(index).unwrap().kill().unwrap();
    eprintln!("killed {connected} after {relayed_at_kill} events acknowledged");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.node_mut(index).unwrap().start_again().unwrap();

    for writer in writers {
        writer.await.unwrap();
    }
    wait_for_checkpoint(&store, &config, Duration::from_secs(60)).await;
    let events = log(&store).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied.0.lock().unwrap().len() < events.len() {
        assert!(
            Instant::now() < deadline,
            "the consumer applied {} of {} events",
            applied.0.lock().unwrap().len(),
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stopper.stop();
    task.await.unwrap();
    consumer_task.await.unwrap().unwrap();
    let applied = applied.0.lock().unwrap().clone();
    assert_eq!(applied.len(), events.len());
    for event in &events {
        assert_eq!(applied.get(&event.event_id), Some(&1), "{event:?}");
    }
    let status = status.borrow().clone();
    eprintln!(
        "relayed {} ({} repeats) with {} errors, last: {:?}",
        status.relayed,
        status.duplicates,
        status.errors,
        status.last_error.map(|e| e.to_string())
    );

    let js = jetstream::new(client(cluster.urls()).await);
    assert_exactly_once_in_order(&read_back(&js, "REPLICATED").await, &events);
    eprintln!("done in {:?}", started.elapsed());
}
