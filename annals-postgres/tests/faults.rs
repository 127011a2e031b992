//! The server restarts in the middle of a run of appends: every append either committed whole
//! or returned an error, the pool recovers, and the log holds no partial append.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use annals::{
    Checkpoint, EventStore, EventStoreExt, ExpectedVersion, Metadata, NewEvent, Payload,
    StreamAppend, StreamId, Version,
};
use annals_postgres::testing::{fresh_config, TestCluster};
use uuid::Uuid;

const WRITERS: usize = 4;
const BATCH: usize = 20;

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
fn batch(writer: usize, call: usize) -> Vec<NewEvent> {
    (0..BATCH)
        .map(|n| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "test.fault".into(),
            schema_version: 1,
            payload: Payload::from_value(&serde_json::json!({ "w": writer, "c": call, "n": n }))
                .expect("json"),
            metadata: Metadata::default(),
        })
        .collect()
}

/// What one append call sent and got back.
struct Call {
    ids: Vec<Uuid>,
    ok: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_across_a_server_restart() {
    // A cluster of this test's own: restarting it must not disturb other tests.
    let cluster = Arc::new(TestCluster::start().expect("a throwaway cluster"));
    let store = cluster.store(fresh_config()).await.expect("store");
    let ids: Vec<StreamId> = (0..WRITERS)
        .map(|w| StreamId::new(format!("fault-{w}")).expect("id"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));

    let mut writers = Vec::new();
    for (writer, id) in ids.iter().cloned().enumerate() {
        let (store, stop, other) = (
            store.clone(),
            Arc::clone(&stop),
            ids[(writer + 1) % WRITERS].clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut call = 0;
            while !stop.load(Ordering::Relaxed) {
                call += 1;
                // Every third call appends to two streams at once.
                let (events, result) = if call % 3 == 0 {
                    let (first, second) = (batch(writer, call), batch(writer, call));
                    let events: Vec<NewEvent> = first.iter().chain(&second).cloned().collect();
                    let result = store
                        .append_streams(vec![
                            StreamAppend {
                                stream_id: id.clone(),
                                expected: ExpectedVersion::Any,
                                events: first,
                            },
                            StreamAppend {
                                stream_id: other.clone(),
                                expected: ExpectedVersion::Any,
                                events: second,
                            },
                        ])
                        .await
                        .map(|_| ());
                    (events, result)
                } else {
                    let events = batch(writer, call);
                    let result = store
                        .append(&id, ExpectedVersion::Any, events.clone())
                        .await
                        .map(|_| ());
                    (events, result)
                };
                let ok = match result {
                    Ok(()) => true,
                    Err(error) => {
                        assert!(
                            matches!(error, annals::StoreError::Backend(_)),
                            "a fault is a backend error, got {error}"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        false
                    }
                };
                calls.push(Call {
                    ids: events.iter().map(|e| e.event_id).collect(),
                    ok,
                });
            }
            calls
        }));
    }

    tokio::time::sleep(Duration::from_millis(700)).await;
    let restarter = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || restarter.restart())
        .await
        .expect("restart task")
        .expect("pg_ctl restart");
    // Let the writers run on the restarted server for a while.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = Vec::new();
    for writer in writers {
        calls.extend(writer.await.expect("writer"));
    }
    let failed = calls.iter().filter(|c| !c.ok).count();
    let succeeded = calls.len() - failed;
    eprintln!("{succeeded} appends succeeded, {failed} failed across the restart");
    assert!(failed > 0, "the restart interrupted some appends");
    assert!(succeeded > 0);

    // The pool recovers: a new append succeeds.
    let after = store
        .append(&ids[0], ExpectedVersion::Any, batch(99, 0))
        .await
        .expect("an append after the restart");
    assert!(after.stream_version > Version(0));

    // Every call committed whole or not at all; a successful one always committed.
    let mut stored = HashSet::new();
    let mut reader = store.log_reader(Checkpoint::START);
    while let Some(events) = reader.next_batch().await.expect("read_all") {
        for event in events {
            assert!(
                stored.insert(event.event_id),
                "the log holds each event once"
            );
        }
    }
    for call in &calls {
        let found = call.ids.iter().filter(|id| stored.contains(*id)).count();
        if call.ok {
            assert_eq!(found, call.ids.len(), "a successful append is stored whole");
        } else {
            assert!(
                found == 0 || found == call.ids.len(),
                "a failed append is stored whole or not at all, found {found} of {}",
                call.ids.len()
            );
        }
    }

    // Each stream's versions are contiguous and the log holds each event once.
    let mut total = 0;
    for id in &ids {
        let mut reader = store.stream_reader(id, Version(1));
        let mut next = 1;
        while let Some(events) = reader.next_batch().await.expect("read_stream") {
            for event in events {
                assert_eq!(event.version, Version(next));
                next += 1;
                total += 1;
            }
        }
        assert_eq!(
            store.stream_version(id).await.expect("version"),
            Version(next - 1)
        );
    }
    assert_eq!(stored.len(), total);
}
