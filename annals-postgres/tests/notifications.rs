//! Waiting for events: a waiter wakes on an append's notification, well before its timeout;
//! it times out when nothing comes; and it survives the listener's connection dropping.

use std::time::{Duration, Instant};

use annals::testing::conformance::test_event;
use annals::{Checkpoint, EventStore, EventStoreExt, ExpectedVersion, StreamId};
use annals_postgres::testing::{fresh_config, fresh_store_with, TestCluster};
use annals_postgres::{Notifications, PgEventStore};

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn last_checkpoint(store: &PgEventStore) -> Checkpoint {
    let mut reader = store.log_reader(Checkpoint::START);
    while reader.next_batch().await.expect("read_all").is_some() {}
    reader.checkpoint()
}

/// A waiter that polls once a minute: whatever wakes it sooner is a notification.
#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn stores() -> (PgEventStore, PgEventStore) {
    stores_with(Notifications::default()).await
}

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn stores_with(notifications: Notifications) -> (PgEventStore, PgEventStore) {
    let config = fresh_config()
        .with_poll_interval(Duration::from_secs(60))
        .with_notifications(notifications);
    let waiter = fresh_store_with(config.clone()).await;
    let writer = PgEventStore::connect_with(TestCluster::shared().url(), config)
        .await
        .expect("a second store");
    (waiter, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_wakes_a_waiter() {
    wakes_a_waiter(Notifications::AfterCommit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_notifying_in_its_transaction_wakes_a_waiter() {
    wakes_a_waiter(Notifications::InTransaction).await;
}

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn wakes_a_waiter(notifications: Notifications) {
    let (waiter, writer) = stores_with(notifications).await;
    let stream = StreamId::new("notified").expect("id");
    let after = last_checkpoint(&waiter).await;
    // Start the listener first, so the wait below is woken by the notification alone.
    assert!(!waiter
        .wait_for_events(after, Duration::from_millis(100))
        .await
        .expect("wait"));

    let waiting = tokio::spawn({
        let waiter = waiter.clone();
        async move {
            let started = Instant::now();
            let woken = waiter
                .wait_for_events(after, Duration::from_secs(30))
                .await
                .expect("wait");
            (woken, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .append(&stream, ExpectedVersion::Any, vec![test_event(1)])
        .await
        .expect("append");
    let (woken, took) = waiting.await.expect("waiter");
    assert!(woken);
    assert!(took < Duration::from_secs(5), "woken after {took:?}");
    assert_eq!(waiter.read_all(after, 10).await.expect("read_all").len(), 1);

    // Events already there: no wait at all.
    let started = Instant::now();
    assert!(waiter
        .wait_for_events(after, Duration::from_secs(30))
        .await
        .expect("wait"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_times_out_when_nothing_comes() {
    let (waiter, _writer) = stores().await;
    let after = last_checkpoint(&waiter).await;
    let started = Instant::now();
    let woken = waiter
        .wait_for_events(after, Duration::from_millis(700))
        .await
        .expect("wait");
    let took = started.elapsed();
    assert!(!woken);
    assert!(
        took >= Duration::from_millis(650),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "returned after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_and_wakes_waiters() {
    let (waiter, writer) = stores().await;
    let stream = StreamId::new("reconnect").expect("id");
    let after = last_checkpoint(&waiter).await;
    assert!(!waiter
        .wait_for_events(after, Duration::from_millis(100))
        .await
        .expect("wait"));

    let waiting = tokio::spawn({
        let waiter = waiter.clone();
        async move {
            let started = Instant::now();
            let woken = waiter
                .wait_for_events(after, Duration::from_secs(30))
                .await
                .expect("wait");
            (woken, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Drop the listener's connection from the server side.
    let client = writer.pool().get().await.expect("connection");
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE query = format('LISTEN \"%s\"', $1::text)",
            &[&format!("{}_events", writer.schema())],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "one listener connection");
    // The reconnected listener wakes the waiter: a notification may have been lost.
    let (woken, took) = waiting.await.expect("waiter");
    assert!(woken);
    assert!(took < Duration::from_secs(10), "woken after {took:?}");

    // And it listens again.
    let waiting = tokio::spawn({
        let waiter = waiter.clone();
        async move {
            let started = Instant::now();
            let woken = waiter
                .wait_for_events(after, Duration::from_secs(30))
                .await
                .expect("wait");
            (woken, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer
        .append(&stream, ExpectedVersion::Any, vec![test_event(2)])
        .await
        .expect("append");
    let (woken, took) = waiting.await.expect("waiter");
    assert!(woken);
    assert!(took < Duration::from_secs(5), "woken after {took:?}");
}
