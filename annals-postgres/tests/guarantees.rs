//! The concurrency guarantees on PostgreSQL, each hammered by many tasks over several stores
//! with connection pools of their own ("processes"; the scenarios are shared with the memory
//! store's tests), plus what only PostgreSQL has: a consistent global log while transactions
//! start and end around a reader, and transactions that write no events holding no reader
//! back. `HAMMER_ROUNDS=N` repeats their rounds N times.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../annals/tests/support/guarantees.rs"]
mod guarantees;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Checkpoint, EventStore, ExpectedVersion, NewEvent, Payload, StreamId, Subscription};
use annals_postgres::testing::{fresh_config, TestCluster};
use annals_postgres::PgEventStore;
use guarantees::rounds;
use uuid::Uuid;

/// `n` stores ("processes") on one new schema of the shared cluster.
async fn processes(n: usize) -> Vec<PgEventStore> {
    let config = fresh_config().with_pool_size(4);
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(TestCluster::shared().store(config.clone()).await.unwrap());
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_never_hold_what_the_store_did_not_store() {
    let [a, b]: [PgEventStore; 2] = processes(2).await.try_into().unwrap();
    guarantees::cache_race([a, b], rounds(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_of_a_command_are_one_command() {
    guarantees::concurrent_repeats(processes(4).await, 2, rounds(25)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_stream_converges_across_processes() {
    for _ in 0..rounds(1) {
        guarantees::hot_stream(processes(8).await, 1_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_number_of_runners_apply_each_event_once() {
    for _ in 0..rounds(1) {
        guarantees::runners_exactly_once(processes(4).await, 4, 10_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_ends_while_writers_keep_appending() {
    let store = processes(1).await.remove(0);
    guarantees::catch_ups_end(store, 3, rounds(9)).await;
}

fn marker(label: &str) -> NewEvent {
    NewEvent::new(
        "Marked",
        1,
        Payload::from_value(&serde_json::json!({ "label": label })).unwrap(),
    )
}

/// Transactions that write events start and end around a reader all the time: an event
/// committed before a read of the log starts is in that read, 1,000 times out of 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_sees_every_event_committed_before_it() {
    let store = processes(1).await.remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    // Writers in transactions of varying length, some ending in a rollback.
    let churn: Vec<_> = (0..2)
        .map(|n| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut client = store.pool().get().await.unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let mut tx = client.transaction().await.unwrap();
                    let id = StreamId::new(format!("churn-{n}")).unwrap();
                    store
                        .append_in(
                            &mut tx,
                            vec![annals::StreamAppend {
                                stream_id: id,
                                expected: ExpectedVersion::Any,
                                events: vec![marker("churn")],
                            }],
                        )
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_micros(200 * (i % 7))).await;
                    if i % 5 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                    }
                }
            })
        })
        .collect();
    let tries = rounds(1_000);
    for attempt in 0..tries {
        let before = store.log_head().await.unwrap();
        let label = format!("try-{attempt}");
        let id = StreamId::new(format!("marked-{}", Uuid::new_v4().simple())).unwrap();
        store
            .append(&id, ExpectedVersion::NoStream, vec![marker(&label)])
            .await
            .unwrap();
        let mut after = before;
        let mut found = false;
        loop {
            let page = store.read_all(after, 1_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.checkpoint();
            if page.iter().any(|e| e.stream_id == id) {
                found = true;
                break;
            }
        }
        assert!(
            found,
            "try {attempt}: an event committed before the read was missing"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for task in churn {
        task.await.unwrap();
    }
}

/// Long transactions that write no events (in another database, and on another table of the
/// same database) hold no reader back: a live subscriber gets each event appended meanwhile
/// within a second of its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_without_events_hold_no_reader_back() {
    let cluster = TestCluster::shared();
    let store = processes(1).await.remove(0);
    let admin = store.pool().get().await.unwrap();
    let other_db = format!("other_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {other_db}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TABLE {}.unrelated (n int)",
            store.schema()
        ))
        .await
        .unwrap();
    let (server, _database) = cluster.url().rsplit_once('/').unwrap();
    let other_url = format!("{server}/{other_db}");
    let (other, connection) = annals_postgres::tokio_postgres::connect(
        &other_url,
        annals_postgres::tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // Both hold a transaction id from now until they end.
    other
        .batch_execute("BEGIN; CREATE TABLE held (n int); INSERT INTO held VALUES (1)")
        .await
        .unwrap();
    let same_db = store.pool().get().await.unwrap();
    same_db
        .batch_execute(&format!(
            "BEGIN; INSERT INTO {}.unrelated VALUES (1)",
            store.schema()
        ))
        .await
        .unwrap();

    let mut subscription = Subscription::new(store.clone(), Checkpoint::START)
        .with_poll_interval(Duration::from_millis(100));
    let held_for = Duration::from_secs(30);
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut events = 0;
    let id = StreamId::new("live").unwrap();
    while started.elapsed() < held_for {
        store
            .append(&id, ExpectedVersion::Any, vec![marker("live")])
            .await
            .unwrap();
        let committed = Instant::now();
        let batch = tokio::time::timeout(Duration::from_secs(60), subscription.next_batch())
            .await
            .expect("the subscriber gets the event")
            .unwrap()
            .unwrap();
        worst = worst.max(committed.elapsed());
        events += batch.len();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("{events} events while two transactions without events ran for {held_for:?}: slowest delivery {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "a transaction that writes no events held a reader back for {worst:?}"
    );
    other.batch_execute("COMMIT").await.unwrap();
    same_db.batch_execute("COMMIT").await.unwrap();
    drop(same_db);
    admin
        .batch_execute(&format!("DROP DATABASE {other_db} WITH (FORCE)"))
        .await
        .unwrap();
}
