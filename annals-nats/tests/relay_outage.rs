//! A relay outlives NATS outages: started while the server is down, it retries with backoff,
//! reports a typed error and saves no checkpoint; when the server goes away under it, its
//! checkpoint stays where the stream is. Once the server is back, it finishes, and the stream
//! holds every event exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_common;

use std::time::{Duration, Instant};

use annals::{stop_signal, EventStore};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::{self, jetstream};
use annals_nats::testing::NatsServer;
use annals_nats::{Relay, RelayConfig, RelayError, RelayStatus, SubjectMapping};
use relay_common::{append, assert_exactly_once_in_order, log, read_back, wait_for_checkpoint};
use tokio::sync::watch;

/// A client that starts while the server is down and reconnects quickly.
async fn client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(url)
        .await
        .unwrap()
}

fn config(stream: &str) -> RelayConfig {
    RelayConfig::new(stream, SubjectMapping::new(stream.to_lowercase()))
        .with_batch_size(250)
        .with_timeout(Duration::from_millis(500))
        .with_backoff(Duration::from_millis(50), Duration::from_millis(400))
}

/// Waits until the relay has reported more than `errors` errors; returns its status.
async fn wait_for_errors(status: &mut watch::Receiver<RelayStatus>, errors: u64) -> RelayStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = status.borrow_and_update().clone();
        if now.errors > errors {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the relay reported no error: {now:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_started_while_nats_is_down_retries_until_it_is_up() {
    let mut server = NatsServer::start().unwrap();
    server.kill().unwrap();
    let store = MemoryEventStore::new();
    for stream in ["order-1", "order-2", "order-3"] {
        append(&store, stream, "Placed", 1_000, 100).await;
    }
    let config = config("DOWN_AT_START");
    let mut relay = Relay::new(store.clone(), client(&server.url()).await, config.clone());
    let mut status = relay.status();
    let (stopper, stop) = stop_signal();
    let task = tokio::spawn(async move { relay.run(stop).await });

    // It retries: several errors, each a typed one naming the stream.
    let seen = wait_for_errors(&mut status, 2).await;
    let error = seen.last_error.unwrap();
    assert!(
        matches!(&*error, RelayError::StreamUnavailable { stream, .. } if stream == "DOWN_AT_START"),
        "{error}"
    );
    assert_eq!(
        store
            .load_checkpoint(&config.checkpoint_name())
            .await
            .unwrap(),
        None,
        "nothing is acknowledged, so nothing is checkpointed"
    );
    assert!(!task.is_finished(), "the relay gave up");

    server.start_again().unwrap();
    append(&store, "order-4", "Placed", 500, 50).await;
    wait_for_checkpoint(&store, &config, Duration::from_secs(30)).await;
    stopper.stop();
    task.await.unwrap();

    let js = jetstream::new(client(&server.url()).await);
    assert_exactly_once_in_order(&read_back(&js, "DOWN_AT_START").await, &log(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_carries_on_when_nats_goes_away_and_comes_back() {
    let mut server = NatsServer::start().unwrap();
    let store = MemoryEventStore::new();
    for stream in ["order-1", "order-2"] {
        append(&store, stream, "Placed", 1_000, 100).await;
    }
    let config = config("GONE_AWAY");
    let mut relay = Relay::new(store.clone(), client(&server.url()).await, config.clone());
    let mut status = relay.status();
    let (stopper, stop) = stop_signal();
    let task = tokio::spawn(async move { relay.run(stop).await });
    wait_for_checkpoint(&store, &config, Duration::from_secs(30)).await;
    let before = store
        .load_checkpoint(&config.checkpoint_name())
        .await
        .unwrap();
    let errors_before = status.borrow().errors;

    // A single server's file store acknowledges a message before its flusher writes it
    // (within milliseconds); killed outright, it loses what is not written. Give it the time
    // to write what it acknowledged: that loss would be the server's, not the relay's.
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.kill().unwrap();
    for stream in ["order-2", "order-3"] {
        append(&store, stream, "Shipped", 500, 25).await;
    }
    let seen = wait_for_errors(&mut status, errors_before).await;
    let error = seen.last_error.unwrap();
    assert!(
        matches!(
            &*error,
            RelayError::Publish { .. }
                | RelayError::Run { .. }
                | RelayError::StreamUnavailable { .. }
        ),
        "{error}"
    );
    eprintln!("while the server is down: {error}");
    assert_eq!(
        store
            .load_checkpoint(&config.checkpoint_name())
            .await
            .unwrap(),
        before,
        "the checkpoint moved while no publish could be acknowledged"
    );

    server.start_again().unwrap();
    wait_for_checkpoint(&store, &config, Duration::from_secs(30)).await;
    stopper.stop();
    task.await.unwrap();

    let js = jetstream::new(client(&server.url()).await);
    assert_exactly_once_in_order(&read_back(&js, "GONE_AWAY").await, &log(&store).await);
}
