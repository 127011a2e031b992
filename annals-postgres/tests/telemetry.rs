//! The PostgreSQL store's own metric, the wait for a pooled connection, and its append span's
//! `db.system`, read back from a recording recorder. One test: the recorder is global to this
//! test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
use annals_postgres::testing::fresh_store;
use annals_postgres::POOL_WAIT_SECONDS;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checkout_of_a_pooled_connection_is_timed() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let store = fresh_store().await;
    let stream = StreamId::new("account-1").unwrap();
    for _ in 0..3 {
        let event = NewEvent::new("Deposited", 1, Payload::from_json("{}").unwrap());
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    let waits = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, _, _, _)| key.key().name() == POOL_WAIT_SECONDS)
        .map(|(_, _, _, value)| value);
    match waits {
        // Migrating the new store's schema and the three appends each took a connection.
        Some(DebugValue::Histogram(samples)) => assert!(samples.len() >= 4, "{samples:?}"),
        other => panic!("expected the pool waits, got {other:?}"),
    }
}
