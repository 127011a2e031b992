//! `append_in` inside a caller's REPEATABLE READ transaction whose snapshot predates another
//! writer's append to the same stream: the append cannot see the stream's version, so it is
//! refused with an error that says to retry the whole transaction, and writes nothing.

use eventsource::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StoreError, StreamAppend, StreamId,
    Version,
};
use eventsource_postgres::testing::fresh_store;
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
