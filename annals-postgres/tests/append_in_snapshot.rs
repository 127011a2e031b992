//! Appends under REPEATABLE READ, where a transaction's snapshot is taken once.
//!
//! - `append_in` inside a caller's REPEATABLE READ transaction whose snapshot predates another
//!   writer's append to the same stream cannot see the stream's version: it is refused with an
//!   error that says to retry the whole transaction, and writes nothing.
//! - A store whose connections default to REPEATABLE READ still appends correctly under
//!   contention: a writer that waited for a stream's turn with an old snapshot starts over in a
//!   new transaction.

use annals::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StoreError, StreamAppend, StreamId,
    Version,
};
use annals_postgres::testing::{fresh_config, fresh_store, TestCluster};
use annals_postgres::PgEventStore;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

#[allow(
    clippy::expect_used,
    reason = "a test helper fails the test that calls it"
)]
fn event(label: &str) -> NewEvent {
    NewEvent::new(
        "test.labelled",
        1,
        Payload::from_value(&serde_json::json!({ "label": label })).expect("json"),
    )
    .with_metadata(Metadata::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]
async fn append_in_a_stale_repeatable_read_snapshot_is_refused_and_writes_nothing() {
    let store = fresh_store().await;
    for expected in [ExpectedVersion::Any, ExpectedVersion::Exact(Version(1))] {
        let stream = StreamId::new(format!("rr-{}", Uuid::new_v4())).expect("id");
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event("first")])
            .await
            .expect("first append");

        let mut client = store.pool().get().await.expect("connection");
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await
            .expect("begin");
        // The transaction's snapshot is taken by its first statement, before the next append.
        tx.query_one("SELECT 1", &[]).await.expect("snapshot");
        store
            .append(
                &stream,
                ExpectedVersion::Exact(Version(1)),
                vec![event("second")],
            )
            .await
            .expect("second append");

        let result = store
            .append_in(
                &mut tx,
                vec![StreamAppend {
                    stream_id: stream.clone(),
                    expected,
                    events: vec![event("third")],
                }],
            )
            .await;
        match &result {
            Err(StoreError::Backend(error)) => {
                let message = error.to_string();
                assert!(
                    message.contains(stream.as_str())
                        && message.contains("retry the whole transaction"),
                    "{message}"
                );
            }
            other => panic!("expected {expected:?} to be refused, got {other:?}"),
        }
        // The refused append left the transaction usable: it can still read, then roll back.
        tx.query_one("SELECT 1", &[])
            .await
            .expect("usable after a refused append");
        tx.rollback().await.expect("rollback");
        let stored = store
            .read_stream(&stream, Version(1), 10)
            .await
            .expect("read");
        assert_eq!(stored.len(), 2, "{stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
async fn a_repeatable_read_default_still_appends_under_contention() {
    let url = format!(
        "{}?options=-c%20default_transaction_isolation%3Drepeatable%5C%20read",
        TestCluster::shared().url()
    );
    let store = PgEventStore::connect_with(&url, fresh_config())
        .await
        .expect("store");
    let client = store.pool().get().await.expect("connection");
    let isolation: String = client
        .query_one("SHOW default_transaction_isolation", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(isolation, "repeatable read");
    drop(client);

    // Writers that expect any version: one that waited for the stream's turn behind another
    // reads, in its old snapshot, a version the other has moved past.
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let stream = StreamId::new(format!("rr-any-{}", Uuid::new_v4())).expect("id");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, stream) = (store.clone(), stream.clone());
            tokio::spawn(async move {
                for n in 0..EACH {
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Any,
                            vec![event(&format!("{writer}-{n}"))],
                        )
                        .await
                        .expect("an append expecting any version");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let stored = store
        .read_stream(&stream, Version(1), WRITERS * EACH + 1)
        .await
        .expect("read");
    let versions: Vec<u64> = stored.iter().map(|e| e.version.0).collect();
    let expected: Vec<u64> = (1..=(WRITERS * EACH) as u64).collect();
    assert_eq!(versions, expected);

    annals::testing::conformance::concurrent_writers_one_stream(store).await;
}
