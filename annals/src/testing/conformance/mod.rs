//! The conformance suite: the behaviour every [`EventStore`] must show, as async functions
//! generic over the store, and [`conformance_tests!`](crate::conformance_tests) to run them
//! all as `#[test]`s with one macro call:
//!
//! ```
//! // tests/conformance.rs of a backend crate: one #[test] per check
//! annals::conformance_tests!(annals_memory::MemoryEventStore::new());
//! ```
//!
//! The expression is evaluated once per test, inside the test's Tokio runtime, so it may
//! `.await`; it must return a new, empty store each time.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::event::Payload;
use crate::metadata::Metadata;
use crate::stream::{Checkpoint, ExpectedVersion, StreamId, Version};
use crate::subscription::{Filter, Subscription};
use crate::{
    AppendResult, EventStore, EventStoreExt, NewEvent, RecordedEvent, Snapshot, StoreError,
    StreamAppend,
};

mod append;
mod idempotency;
mod live;
mod log;
mod multi_stream;
mod replay;
mod snapshots;

pub use append::*;
pub use idempotency::*;
pub use live::*;
pub use log::*;
pub use multi_stream::*;
pub use replay::*;
pub use snapshots::*;

/// Defines one `#[test]` per conformance check, each running on a store made by `$store`.
///
/// `$store` is an expression evaluated inside each test's Tokio runtime (so it may `.await`)
/// that returns a new, empty store.
#[macro_export]
macro_rules! conformance_tests {
    ($store:expr) => {
        $crate::__conformance_tests! {
            $store;
            append_and_read_stream,
            expected_version_any,
            expected_version_no_stream,
            expected_version_stream_exists,
            expected_version_exact,
            empty_append_checks_version,
            atomic_multi_event_append,
            atomic_multi_stream_append,
            event_id_twice_in_one_call,
            refusal_order,
            global_order_and_positions,
            log_head_is_the_last_event,
            idempotent_reappend,
            metadata_round_trip,
            recorded_at_is_monotonic,
            concurrent_writers_one_stream,
            batched_reads_large_stream,
            replay_matches_read_stream,
            snapshots_keep_the_latest,
            checkpoints_round_trip,
            checkpoints_compare_and_set,
            leases_exclude_each_other,
            held_turns_take_turns,
            waiters_wake_on_append,
            subscription_sees_every_event_once,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($store:expr; $($check:ident),* $(,)?) => {$(
        #[test]
        fn $check() {
            $crate::testing::conformance::run(async {
                let store = $store;
                $crate::testing::conformance::$check(store).await;
            });
        }
    )*};
}

/// Runs `test` on a new multi-threaded Tokio runtime with two workers.
pub fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start a Tokio runtime for the conformance test")
        .block_on(test)
}

fn stream(name: &str) -> StreamId {
    // Unique per call, so a store shared between tests (a database) never mixes their data.
    StreamId::new(format!("{name}-{}", Uuid::new_v4().simple())).expect("valid test stream id")
}

/// A test event: type `test.happened`, body `{"n": n}`.
pub fn test_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "test.happened".into(),
        schema_version: 1,
        payload: Payload::from_value(&serde_json::json!({ "n": n })).expect("json"),
        metadata: Metadata::default(),
    }
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(test_event).collect()
}

fn n_of(event: &RecordedEvent) -> u64 {
    event.payload.to_value().expect("stored payload is JSON")["n"]
        .as_u64()
        .expect("test payload has n")
}

async fn read_whole<S: EventStore + ?Sized>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut reader = store.stream_reader(stream, Version(1));
    while let Some(batch) = reader.next_batch().await.expect("read_stream") {
        all.extend(batch);
    }
    all
}

#[track_caller]
fn assert_conflict(
    result: Result<impl std::fmt::Debug, StoreError>,
    on: &StreamId,
    expected: ExpectedVersion,
    actual: Version,
) {
    match result {
        Err(StoreError::Conflict {
            stream,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(&stream, on, "conflict names the stream");
            assert_eq!(e, expected, "conflict names the expected version");
            assert_eq!(a, actual, "conflict names the actual version");
        }
        other => panic!(
            "expected a conflict on {on} (expected {expected}, actual {actual}), got {other:?}"
        ),
    }
}

async fn count_all<S: EventStore + ?Sized>(store: &S) -> usize {
    let mut reader = store.log_reader(Checkpoint::START);
    let mut count = 0;
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        count += batch.len();
    }
    count
}

async fn last_checkpoint<S: EventStore + ?Sized>(store: &S) -> Checkpoint {
    let mut reader = store.log_reader(Checkpoint::START);
    while reader.next_batch().await.expect("read_all").is_some() {}
    reader.checkpoint()
}
