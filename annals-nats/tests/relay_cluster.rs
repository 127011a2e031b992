//! A relay over a three-node JetStream cluster, stream replicated three times: one node is
//! killed while the relay publishes (the one its connection is on) and started again; the
//! relay carries on to the end and the stream holds each event exactly once, in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_common;

use std::time::{Duration, Instant};

use annals::stop_signal;
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::{self, jetstream};
use annals_nats::testing::NatsCluster;
use annals_nats::{Relay, RelayConfig, SubjectMapping};
use relay_common::{append, assert_exactly_once_in_order, log, read_back, wait_for_checkpoint};

async fn client(urls: Vec<String>) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(urls)
        .await
        .unwrap()
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
    let task = tokio::spawn(async move { relay.run(stop).await });

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
    stopper.stop();
    task.await.unwrap();
    let status = status.borrow().clone();
    eprintln!(
        "relayed {} ({} repeats) with {} errors, last: {:?}",
        status.relayed,
        status.duplicates,
        status.errors,
        status.last_error.map(|e| e.to_string())
    );

    let js = jetstream::new(client(cluster.urls()).await);
    assert_exactly_once_in_order(&read_back(&js, "REPLICATED").await, &log(&store).await);
    eprintln!("done in {:?}", started.elapsed());
}
