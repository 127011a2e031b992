//! The global log keeps each stream's version order, even when many writers append to one
//! stream at once: a writer that waited for another's turn commits after it and gets a later
//! transaction id, so `(tx_id, position)` order never puts a later version first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use annals::testing::conformance::test_event;
use annals::{Checkpoint, EventStore, EventStoreExt, ExpectedVersion, StreamAppend, StreamId};
use annals_postgres::testing::fresh_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_of_one_stream_keep_its_order_in_the_log() {
    let store = fresh_store().await;
    let hot = StreamId::new("hot-1").unwrap();
    let other = StreamId::new("hot-2").unwrap();
    let start = {
        let mut reader = store.log_reader(Checkpoint::START);
        while reader.next_batch().await.unwrap().is_some() {}
        reader.checkpoint()
    };
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (store, hot, other) = (store.clone(), hot.clone(), other.clone());
            tokio::spawn(async move {
                for i in 0..150u64 {
                    if i % 10 == 0 {
                        // Multi-stream appends take both streams' turns.
                        store
                            .append_streams(vec![
                                StreamAppend {
                                    stream_id: other.clone(),
                                    expected: ExpectedVersion::Any,
                                    events: vec![test_event(w)],
                                },
                                StreamAppend {
                                    stream_id: hot.clone(),
                                    expected: ExpectedVersion::Any,
                                    events: vec![test_event(w)],
                                },
                            ])
                            .await
                            .unwrap();
                    } else {
                        store
                            .append(&hot, ExpectedVersion::Any, vec![test_event(w * 1_000 + i)])
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut reader = store.log_reader(start).batch_size(97);
    let (mut hot_versions, mut other_versions) = (Vec::new(), Vec::new());
    while let Some(batch) = reader.next_batch().await.unwrap() {
        for event in batch {
            if event.stream_id == hot {
                hot_versions.push(event.version.0);
            } else if event.stream_id == other {
                other_versions.push(event.version.0);
            }
        }
    }
    assert_eq!(
        hot_versions,
        (1..=1_200).collect::<Vec<_>>(),
        "the hot stream, in version order"
    );
    assert_eq!(
        other_versions,
        (1..=120).collect::<Vec<_>>(),
        "the other stream, in version order"
    );
}
