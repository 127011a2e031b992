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
use crate::store::{
    AppendResult, EventStore, EventStoreExt, NewEvent, RecordedEvent, Snapshot, StoreError,
    StreamAppend,
};
use crate::stream::{Checkpoint, ExpectedVersion, StreamId, Version};
use crate::subscription::{Filter, Subscription};

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

/// Appended events read back whole and in order, from any version.
pub async fn append_and_read_stream<S: EventStore>(store: S) {
    let id = stream("read");
    let new = events(0..3);
    let result = store
        .append(&id, ExpectedVersion::NoStream, new.clone())
        .await
        .expect("append");
    assert_eq!(result.first_version, Version(1));
    assert_eq!(result.stream_version, Version(3));
    assert!(result.last_position.is_some());

    let read = store.read_stream(&id, Version(1), 100).await.expect("read");
    assert_eq!(read.len(), 3);
    for (i, (recorded, sent)) in read.iter().zip(&new).enumerate() {
        assert_eq!(recorded.event_id, sent.event_id);
        assert_eq!(recorded.stream_id, id);
        assert_eq!(recorded.version, Version(i as u64 + 1));
        assert_eq!(recorded.event_type, "test.happened");
        assert_eq!(recorded.schema_version, 1);
        assert_eq!(n_of(recorded), i as u64);
    }
    assert_eq!(read[2].position, result.last_position.expect("position"));

    let from_two = store.read_stream(&id, Version(2), 100).await.expect("read");
    assert_eq!(
        from_two.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        [2, 3]
    );
    let limited = store.read_stream(&id, Version(1), 2).await.expect("read");
    assert_eq!(limited.len(), 2);
    assert!(store
        .read_stream(&id, Version(4), 100)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(3)
    );

    let missing = stream("missing");
    assert!(store
        .read_stream(&missing, Version(1), 100)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store.stream_version(&missing).await.expect("version"),
        Version(0)
    );

    let by_id = store
        .read_event(new[1].event_id)
        .await
        .expect("read_event")
        .expect("stored");
    assert_eq!(by_id, read[1]);
    assert!(store
        .read_event(Uuid::new_v4())
        .await
        .expect("read_event")
        .is_none());
}

/// `ExpectedVersion::Any` appends to new and existing streams.
pub async fn expected_version_any<S: EventStore>(store: S) {
    let id = stream("any");
    store
        .append(&id, ExpectedVersion::Any, events(0..1))
        .await
        .expect("any on a new stream");
    let result = store
        .append(&id, ExpectedVersion::Any, events(1..3))
        .await
        .expect("any on an existing stream");
    assert_eq!(result.first_version, Version(2));
    assert_eq!(result.stream_version, Version(3));
}

/// `ExpectedVersion::NoStream` appends only to a stream with no events.
pub async fn expected_version_no_stream<S: EventStore>(store: S) {
    let id = stream("no-stream");
    store
        .append(&id, ExpectedVersion::NoStream, events(0..1))
        .await
        .expect("no stream on a new stream");
    let again = store
        .append(&id, ExpectedVersion::NoStream, events(1..2))
        .await;
    assert_conflict(again, &id, ExpectedVersion::NoStream, Version(1));
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(1),
        "a conflict writes nothing"
    );
}

/// `ExpectedVersion::StreamExists` appends only to a stream with events.
pub async fn expected_version_stream_exists<S: EventStore>(store: S) {
    let id = stream("exists");
    let missing = store
        .append(&id, ExpectedVersion::StreamExists, events(0..1))
        .await;
    assert_conflict(missing, &id, ExpectedVersion::StreamExists, Version(0));
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(0)
    );
    store
        .append(&id, ExpectedVersion::Any, events(0..1))
        .await
        .expect("any");
    store
        .append(&id, ExpectedVersion::StreamExists, events(1..2))
        .await
        .expect("stream exists");
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(2)
    );
}

/// `ExpectedVersion::Exact` appends only at exactly that version.
pub async fn expected_version_exact<S: EventStore>(store: S) {
    let id = stream("exact");
    let first = store
        .append(&id, ExpectedVersion::Exact(Version(0)), events(0..2))
        .await
        .expect("exact 0 on a new stream");
    assert_eq!(
        (first.first_version, first.stream_version),
        (Version(1), Version(2))
    );
    assert!(first.last_position.is_some(), "got {first:?}");
    // One event and several: stores may write either through different statements.
    for batch in [2..3, 2..4] {
        let behind = store
            .append(
                &id,
                ExpectedVersion::Exact(Version(1)),
                events(batch.clone()),
            )
            .await;
        assert_conflict(behind, &id, ExpectedVersion::Exact(Version(1)), Version(2));
        let ahead = store
            .append(&id, ExpectedVersion::Exact(Version(5)), events(batch))
            .await;
        assert_conflict(ahead, &id, ExpectedVersion::Exact(Version(5)), Version(2));
    }
    let result = store
        .append(&id, ExpectedVersion::Exact(Version(2)), events(2..3))
        .await
        .expect("exact 2");
    assert_eq!(result.stream_version, Version(3));
    let read = read_whole(&store, &id).await;
    assert_eq!(
        read.iter().map(n_of).collect::<Vec<_>>(),
        [0, 1, 2],
        "conflicting appends wrote nothing"
    );
}

/// An append of no events checks the expected version and writes nothing.
pub async fn empty_append_checks_version<S: EventStore>(store: S) {
    let id = stream("empty");
    let result = store
        .append(&id, ExpectedVersion::NoStream, Vec::new())
        .await
        .expect("empty append");
    assert_eq!(result.stream_version, Version(0));
    assert_eq!(result.last_position, None);
    store
        .append(&id, ExpectedVersion::Any, events(0..1))
        .await
        .expect("append");
    let wrong = store
        .append(&id, ExpectedVersion::NoStream, Vec::new())
        .await;
    assert_conflict(wrong, &id, ExpectedVersion::NoStream, Version(1));
    assert_eq!(read_whole(&store, &id).await.len(), 1);
}

/// A refused append of many events writes none of them.
pub async fn atomic_multi_event_append<S: EventStore>(store: S) {
    let id = stream("atomic");
    store
        .append(&id, ExpectedVersion::NoStream, events(0..2))
        .await
        .expect("append");
    let before = count_all(&store).await;
    let refused = store
        .append(&id, ExpectedVersion::Exact(Version(1)), events(10..15))
        .await;
    assert_conflict(refused, &id, ExpectedVersion::Exact(Version(1)), Version(2));
    assert_eq!(read_whole(&store, &id).await.len(), 2);
    assert_eq!(
        count_all(&store).await,
        before,
        "nothing reached the global log"
    );

    // Two events with one id in one append are refused whole too.
    let twin = test_event(20);
    let refused = store
        .append(
            &id,
            ExpectedVersion::Any,
            vec![test_event(21), twin.clone(), twin],
        )
        .await;
    assert!(
        refused.is_err(),
        "an append that repeats an event id is refused"
    );
    assert_eq!(read_whole(&store, &id).await.len(), 2);
}

async fn count_all<S: EventStore + ?Sized>(store: &S) -> usize {
    let mut reader = store.log_reader(Checkpoint::START);
    let mut count = 0;
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        count += batch.len();
    }
    count
}

/// An append across streams writes all of them or none.
pub async fn atomic_multi_stream_append<S: EventStore>(store: S) {
    let (a, b) = (stream("multi-a"), stream("multi-b"));
    let results = store
        .append_streams(vec![
            StreamAppend {
                stream_id: a.clone(),
                expected: ExpectedVersion::NoStream,
                events: events(0..2),
            },
            StreamAppend {
                stream_id: b.clone(),
                expected: ExpectedVersion::NoStream,
                events: events(0..3),
            },
        ])
        .await
        .expect("multi-stream append");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].stream_version, Version(2));
    assert_eq!(results[1].stream_version, Version(3));

    let refused = store
        .append_streams(vec![
            StreamAppend {
                stream_id: a.clone(),
                expected: ExpectedVersion::Exact(Version(2)),
                events: events(2..3),
            },
            StreamAppend {
                stream_id: b.clone(),
                expected: ExpectedVersion::Exact(Version(1)),
                events: events(3..4),
            },
        ])
        .await;
    assert_conflict(refused, &b, ExpectedVersion::Exact(Version(1)), Version(3));
    assert_eq!(
        store.stream_version(&a).await.expect("version"),
        Version(2),
        "the matching stream was not written either"
    );
    assert_eq!(store.stream_version(&b).await.expect("version"), Version(3));

    let twice = store
        .append_streams(vec![
            StreamAppend {
                stream_id: a.clone(),
                expected: ExpectedVersion::Any,
                events: events(5..6),
            },
            StreamAppend {
                stream_id: a.clone(),
                expected: ExpectedVersion::Any,
                events: events(6..7),
            },
        ])
        .await;
    assert!(
        matches!(twice, Err(StoreError::DuplicateStream { ref stream }) if *stream == a),
        "got {twice:?}"
    );
    assert_eq!(store.stream_version(&a).await.expect("version"), Version(2));
}

/// An event id given twice in one call is refused, naming the stream of its second
/// occurrence and the id, and nothing of the call is written.
pub async fn event_id_twice_in_one_call<S: EventStore>(store: S) {
    let a = stream("twice-a");
    let b = stream("twice-b");
    let rejected = |error: Option<&StoreError>, on: &StreamId, id: Uuid| {
        matches!(error, Some(StoreError::Rejected { stream, reason })
            if stream == on && reason.contains(&id.to_string()))
    };

    let mut batch = events(0..4);
    batch[3].event_id = batch[1].event_id;
    let repeated = batch[1].event_id;
    let once = store.append(&a, ExpectedVersion::NoStream, batch).await;
    assert!(rejected(once.as_ref().err(), &a, repeated), "got {once:?}");
    assert_eq!(store.stream_version(&a).await.expect("version"), Version(0));

    // Across streams: the first repeat met in order is `b`'s second event, which repeats
    // `a`'s first; `b`'s third repeats `a`'s third, and comes later.
    let mut first = events(10..13);
    let mut second = events(13..16);
    second[1].event_id = first[0].event_id;
    first[2].event_id = second[2].event_id;
    let repeated = first[0].event_id;
    let across = store
        .append_streams(vec![
            StreamAppend {
                stream_id: a.clone(),
                expected: ExpectedVersion::NoStream,
                events: first,
            },
            StreamAppend {
                stream_id: b.clone(),
                expected: ExpectedVersion::NoStream,
                events: second,
            },
        ])
        .await;
    assert!(
        rejected(across.as_ref().err(), &b, repeated),
        "got {across:?}"
    );
    assert_eq!(store.stream_version(&a).await.expect("version"), Version(0));
    assert_eq!(store.stream_version(&b).await.expect("version"), Version(0));
}

/// One call's refusals come in the order `annals::backend` documents: a stream named
/// twice, then an event id given twice, then each stream in the order given (stored ids,
/// then the expected version). Nothing of a refused call is written.
pub async fn refusal_order<S: EventStore>(store: S) {
    let a = stream("order-a");
    let b = stream("order-b");
    let stored = test_event(100);
    store
        .append(&a, ExpectedVersion::NoStream, vec![stored.clone()])
        .await
        .expect("append");
    let one = |stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>| StreamAppend {
        stream_id: stream.clone(),
        expected,
        events,
    };
    let twice = |n: u64| {
        let event = test_event(n);
        vec![event.clone(), event]
    };
    let shared = test_event(6);
    type Expect<'e> = Box<dyn Fn(&StoreError) -> bool + 'e>;
    let cases: Vec<(&str, Vec<StreamAppend>, Expect<'_>)> = vec![
        (
            "a stream named twice, the first with an id twice",
            vec![
                one(&a, ExpectedVersion::Any, twice(1)),
                one(&a, ExpectedVersion::Any, vec![test_event(2)]),
            ],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::DuplicateStream { stream } if *stream == a),
            ),
        ),
        (
            "a stream named twice, the first with a wrong expected version",
            vec![
                one(&a, ExpectedVersion::Exact(Version(5)), vec![test_event(3)]),
                one(&a, ExpectedVersion::Any, vec![test_event(4)]),
            ],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::DuplicateStream { stream } if *stream == a),
            ),
        ),
        (
            "an id twice and a wrong expected version",
            vec![one(&a, ExpectedVersion::Exact(Version(5)), twice(5))],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::Rejected { stream, .. } if *stream == a),
            ),
        ),
        (
            "an id in two streams, the second with a wrong expected version",
            vec![
                one(&b, ExpectedVersion::NoStream, vec![shared.clone()]),
                one(&a, ExpectedVersion::Exact(Version(7)), vec![shared.clone()]),
            ],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::Rejected { stream, .. } if *stream == a),
            ),
        ),
        (
            "a stored id in another stream, with a wrong expected version",
            vec![one(
                &b,
                ExpectedVersion::Exact(Version(9)),
                vec![stored.clone()],
            )],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::DuplicateEventId { stream, .. } if *stream == a),
            ),
        ),
        (
            "a conflict, then a stored id, in the order given",
            vec![
                one(
                    &a,
                    ExpectedVersion::Exact(Version(99)),
                    vec![test_event(10)],
                ),
                one(&b, ExpectedVersion::Any, vec![stored.clone()]),
            ],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::Conflict { stream, actual, .. } if *stream == a && *actual == Version(1)),
            ),
        ),
        (
            "a stored id, then a conflict, in the order given",
            vec![
                one(&b, ExpectedVersion::Any, vec![stored.clone()]),
                one(
                    &a,
                    ExpectedVersion::Exact(Version(99)),
                    vec![test_event(11)],
                ),
            ],
            Box::new(
                |e: &StoreError| matches!(e, StoreError::DuplicateEventId { event_id, .. } if *event_id == stored.event_id),
            ),
        ),
    ];
    for (case, appends, expected) in cases {
        let refused = store.append_streams(appends).await;
        match &refused {
            Err(error) if expected(error) => {}
            other => panic!("{case}: got {other:?}"),
        }
        assert_eq!(count_all(&store).await, 1, "{case}: nothing is written");
    }
}

/// The head of the log is the checkpoint of its last event, and the start when it is empty.
pub async fn log_head_is_the_last_event<S: EventStore>(store: S) {
    assert_eq!(store.log_head().await.expect("log_head"), Checkpoint::START);
    for n in 0..3 {
        store
            .append(
                &stream("head"),
                ExpectedVersion::Any,
                events(n * 2..n * 2 + 2),
            )
            .await
            .expect("append");
        let head = store.log_head().await.expect("log_head");
        assert_eq!(head, last_checkpoint(&store).await);
        assert!(
            store.read_all(head, 10).await.expect("read_all").is_empty(),
            "nothing comes after the head"
        );
    }
}

/// The global log holds every event once, in write order, with increasing positions and
/// checkpoints; reading after a checkpoint resumes exactly there.
pub async fn global_order_and_positions<S: EventStore>(store: S) {
    let start = last_checkpoint(&store).await;
    let ids = [stream("order-a"), stream("order-b"), stream("order-c")];
    let mut written = Vec::new();
    for round in 0..4u64 {
        for id in &ids {
            let batch = events(round * 10..round * 10 + 2);
            written.extend(batch.iter().map(|e| e.event_id));
            store
                .append(id, ExpectedVersion::Any, batch)
                .await
                .expect("append");
        }
    }
    let mut read = Vec::new();
    let mut reader = store.log_reader(start).batch_size(5);
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        assert!(batch.len() <= 5, "a batch holds at most the limit");
        read.extend(batch);
    }
    let ours: Vec<&RecordedEvent> = read.iter().filter(|e| ids.contains(&e.stream_id)).collect();
    assert_eq!(
        ours.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        written,
        "read_all returns every event once, in write order"
    );
    for pair in read.windows(2) {
        assert!(
            pair[0].checkpoint() < pair[1].checkpoint(),
            "checkpoints increase"
        );
    }
    for pair in ours.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions increase in write order"
        );
    }
    for id in &ids {
        let versions: Vec<u64> = ours
            .iter()
            .filter(|e| &e.stream_id == id)
            .map(|e| e.version.0)
            .collect();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    }

    let middle = ours[11].checkpoint();
    let rest = store.read_all(middle, 1_000).await.expect("read_all");
    let rest: Vec<Uuid> = rest
        .iter()
        .filter(|e| ids.contains(&e.stream_id))
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        rest,
        written[12..],
        "reading after a checkpoint resumes right after it"
    );
    assert_eq!(
        store.read_all(middle, 3).await.expect("read_all").len(),
        3,
        "read_all honours the limit"
    );
}

async fn last_checkpoint<S: EventStore + ?Sized>(store: &S) -> Checkpoint {
    let mut reader = store.log_reader(Checkpoint::START);
    while reader.next_batch().await.expect("read_all").is_some() {}
    reader.checkpoint()
}

/// Appending the same event ids again returns the first result and writes nothing; any other
/// reuse of a stored id is refused.
pub async fn idempotent_reappend<S: EventStore>(store: S) {
    let id = stream("idempotent");
    let batch = events(0..2);
    let first = store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    assert!(first.written, "the first append writes");
    let retried = AppendResult {
        written: false,
        ..first
    };
    let again = store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("an exact retry succeeds");
    assert_eq!(
        again, retried,
        "a retry returns the first result, saying it wrote nothing"
    );
    assert_eq!(
        read_whole(&store, &id).await.len(),
        2,
        "a retry writes nothing"
    );

    store
        .append(&id, ExpectedVersion::Exact(Version(2)), events(2..3))
        .await
        .expect("append");
    let again = store
        .append(&id, ExpectedVersion::Exact(Version(0)), batch.clone())
        .await
        .expect("a late retry succeeds");
    assert_eq!(again, retried);

    let prefix = store
        .append(&id, ExpectedVersion::Any, vec![batch[0].clone()])
        .await
        .expect("a retry of stored events succeeds");
    assert_eq!(
        (prefix.first_version, prefix.stream_version),
        (Version(1), Version(1)),
        "it describes the stored events"
    );
    let reordered = store
        .append(
            &id,
            ExpectedVersion::Any,
            vec![batch[1].clone(), batch[0].clone()],
        )
        .await;
    assert!(
        matches!(reordered, Err(StoreError::DuplicateEventId { .. })),
        "stored ids in another order are refused, got {reordered:?}"
    );
    let mixed = store
        .append(
            &id,
            ExpectedVersion::Any,
            vec![test_event(9), batch[1].clone()],
        )
        .await;
    assert!(
        matches!(mixed, Err(StoreError::DuplicateEventId { event_id, ref stream, version })
        if event_id == batch[1].event_id && *stream == id && version == Version(2)),
        "a new event beside a stored id is refused, got {mixed:?}"
    );
    let elsewhere = store
        .append(
            &stream("idempotent-other"),
            ExpectedVersion::Any,
            batch.clone(),
        )
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::DuplicateEventId { .. })),
        "stored ids cannot go to another stream, got {elsewhere:?}"
    );
    assert_eq!(read_whole(&store, &id).await.len(), 3);
}

/// Metadata and payloads are stored verbatim, quotes, unicode and all.
pub async fn metadata_round_trip<S: EventStore>(store: S) {
    let id = stream("metadata");
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::new_v4())
        .with_causation_id(Uuid::new_v4())
        .with_actor("o'brien \"the\" \\admin\\ ✓")
        .with_header("tenant", "acme; DROP TABLE events; --")
        .with_header("trace", "00-4bf92f3577b34da6-01");
    let mut event = test_event(1);
    event.metadata = metadata.clone();
    event.payload = Payload::from_value(
        &serde_json::json!({ "text": "quote ' double \" newline \n unicode ✓ 𝄞", "n": 1 }),
    )
    .expect("json");
    store
        .append(&id, ExpectedVersion::NoStream, vec![event.clone()])
        .await
        .expect("append");
    let read = read_whole(&store, &id).await;
    assert_eq!(read[0].metadata, metadata);
    assert_eq!(
        read[0].payload.to_value().expect("json"),
        event.payload.to_value().expect("json")
    );
    let plain = test_event(2);
    store
        .append(&id, ExpectedVersion::Any, vec![plain])
        .await
        .expect("append");
    assert_eq!(
        read_whole(&store, &id).await[1].metadata,
        Metadata::default()
    );
}

/// Every event carries the time it was recorded, never decreasing along a stream.
pub async fn recorded_at_is_monotonic<S: EventStore>(store: S) {
    let id = stream("time");
    let before = SystemTime::now() - Duration::from_secs(5);
    for n in 0..5 {
        store
            .append(&id, ExpectedVersion::Any, events(n..n + 1))
            .await
            .expect("append");
    }
    let after = SystemTime::now() + Duration::from_secs(5);
    let read = read_whole(&store, &id).await;
    for event in &read {
        assert!(
            event.recorded_at >= before && event.recorded_at <= after,
            "recorded_at is the append time"
        );
    }
    for pair in read.windows(2) {
        assert!(
            pair[0].recorded_at <= pair[1].recorded_at,
            "recorded_at does not go backwards"
        );
    }
}

/// Eight writers race on one stream, each appending at the version it read: every version has
/// exactly one winner, and no event is lost or duplicated.
pub async fn concurrent_writers_one_stream<S: EventStore + 'static>(store: S) {
    const WRITERS: u64 = 8;
    const EACH: u64 = 50;
    let store = Arc::new(store);
    let id = stream("race");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, id) = (Arc::clone(&store), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0u64;
            for i in 0..EACH {
                let event = test_event(writer * 1_000 + i);
                loop {
                    let version = store.stream_version(&id).await.expect("version");
                    match store
                        .append(&id, ExpectedVersion::Exact(version), vec![event.clone()])
                        .await
                    {
                        Ok(result) => {
                            assert_eq!(result.first_version, version.next());
                            won.push(result.first_version);
                            break;
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            assert_ne!(
                                actual, version,
                                "a conflict reports another version than expected"
                            );
                            conflicts += 1;
                            tokio::task::yield_now().await;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            (won, conflicts)
        }));
    }
    let mut winners = HashSet::new();
    for task in tasks {
        let (won, _conflicts) = task.await.expect("writer task");
        for version in won {
            assert!(winners.insert(version), "two writers won version {version}");
        }
    }
    let read = read_whole(&*store, &id).await;
    assert_eq!(read.len() as u64, WRITERS * EACH);
    assert_eq!(
        read.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (1..=WRITERS * EACH).collect::<Vec<_>>()
    );
    let payloads: BTreeSet<u64> = read.iter().map(n_of).collect();
    assert_eq!(
        payloads.len() as u64,
        WRITERS * EACH,
        "no event is duplicated"
    );
    let mut per_writer: HashMap<u64, Vec<u64>> = HashMap::new();
    for n in payloads {
        per_writer.entry(n / 1_000).or_default().push(n % 1_000);
    }
    for writer in 0..WRITERS {
        assert_eq!(
            per_writer.get(&writer).map(Vec::len),
            Some(EACH as usize),
            "writer {writer} lost no event"
        );
    }
}

/// A stream of 100,000 events reads back in bounded batches, each event once, in order.
pub async fn batched_reads_large_stream<S: EventStore>(store: S) {
    const TOTAL: u64 = 100_000;
    const CHUNK: u64 = 1_000;
    let id = stream("large");
    let start = last_checkpoint(&store).await;
    for chunk in 0..TOTAL / CHUNK {
        store
            .append(
                &id,
                ExpectedVersion::Exact(Version(chunk * CHUNK)),
                events(chunk * CHUNK..(chunk + 1) * CHUNK),
            )
            .await
            .expect("append");
    }
    let mut reader = store.stream_reader(&id, Version(1)).batch_size(999);
    let (mut next, mut batches) = (1u64, 0);
    while let Some(batch) = reader.next_batch().await.expect("read_stream") {
        assert!(
            !batch.is_empty() && batch.len() <= 999,
            "batches are bounded"
        );
        for event in &batch {
            assert_eq!(event.version.0, next);
            next += 1;
        }
        batches += 1;
    }
    assert_eq!(next - 1, TOTAL);
    assert_eq!(batches, TOTAL.div_ceil(999));

    let mut reader = store.log_reader(start).batch_size(4_096);
    let mut seen = 0u64;
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        assert!(batch.len() <= 4_096);
        for event in batch.iter().filter(|e| e.stream_id == id) {
            assert_eq!(event.version.0, seen + 1);
            seen += 1;
        }
    }
    assert_eq!(seen, TOTAL);
    let tail = store
        .read_stream(&id, Version(TOTAL - 5), 10)
        .await
        .expect("read_stream");
    assert_eq!(
        tail.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (TOTAL - 5..=TOTAL).collect::<Vec<_>>()
    );
}

/// `replay_stream` lends out exactly what `read_stream` returns (version, type, schema
/// version, body, time), honours `from` and `limit`, stops when told to, and reads a missing
/// stream as empty.
pub async fn replay_matches_read_stream<S: EventStore>(store: S) {
    let id = stream("replay");
    let mut first = test_event(0);
    first.schema_version = 3;
    first.event_type = "test.opened".into();
    let mut written = vec![first];
    written.extend(events(1..25));
    store
        .append(&id, ExpectedVersion::NoStream, written)
        .await
        .expect("append");
    let stored = read_whole(&store, &id).await;
    assert_eq!(stored.len(), 25);

    type Seen = (Version, String, u32, String, SystemTime);
    async fn replay<S: EventStore>(
        store: &S,
        id: &StreamId,
        from: Version,
        limit: usize,
        stop_after: usize,
    ) -> (usize, Vec<Seen>) {
        let mut seen = Vec::new();
        let visited = store
            .replay_stream(id, from, limit, &mut |event| {
                seen.push((
                    event.version,
                    event.event_type.to_owned(),
                    event.schema_version,
                    event.payload.to_owned(),
                    event.recorded_at,
                ));
                if seen.len() >= stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await
            .expect("replay_stream");
        (visited, seen)
    }
    let expected = |range: std::ops::Range<usize>| -> Vec<Seen> {
        stored[range]
            .iter()
            .map(|e| {
                (
                    e.version,
                    e.event_type.clone(),
                    e.schema_version,
                    e.payload.as_str().to_owned(),
                    e.recorded_at,
                )
            })
            .collect()
    };

    assert_eq!(
        replay(&store, &id, Version(1), 100, usize::MAX).await,
        (25, expected(0..25)),
        "a whole replay sees every event as read_stream returns it"
    );
    assert_eq!(
        replay(&store, &id, Version(11), 10, usize::MAX).await,
        (10, expected(10..20)),
        "`from` and `limit` bound a replay"
    );
    assert_eq!(
        replay(&store, &id, Version(20), 100, usize::MAX).await,
        (6, expected(19..25)),
        "a replay ends at the end of the stream"
    );
    assert_eq!(
        replay(&store, &id, Version(1), 100, 3).await,
        (3, expected(0..3)),
        "a replay stops when the visitor breaks"
    );
    assert_eq!(
        replay(&store, &id, Version(26), 100, usize::MAX).await,
        (0, Vec::new()),
        "past the end, a replay sees nothing"
    );
    assert_eq!(
        replay(
            &store,
            &stream("replay-missing"),
            Version(1),
            100,
            usize::MAX
        )
        .await,
        (0, Vec::new()),
        "a missing stream replays as empty"
    );
    assert_eq!(
        replay(&store, &id, Version(1), 0, usize::MAX).await,
        (0, Vec::new()),
        "a limit of 0 replays nothing"
    );
}

/// A store keeps the latest snapshot of each stream; an older one never replaces a newer one.
pub async fn snapshots_keep_the_latest<S: EventStore>(store: S) {
    let id = stream("snapshot");
    assert_eq!(store.load_snapshot(&id).await.expect("load_snapshot"), None);
    let snapshot = |version: u64, balance: u64| Snapshot {
        stream_id: id.clone(),
        version: Version(version),
        snapshot_version: 3,
        state: Payload::from_value(
            &serde_json::json!({ "balance": balance, "owner": "o'brien ✓" }),
        )
        .expect("json"),
        taken_at: SystemTime::now(),
    };
    store
        .save_snapshot(snapshot(10, 100))
        .await
        .expect("save_snapshot");
    let loaded = store
        .load_snapshot(&id)
        .await
        .expect("load_snapshot")
        .expect("a snapshot");
    assert_eq!(
        (
            loaded.stream_id.clone(),
            loaded.version,
            loaded.snapshot_version
        ),
        (id.clone(), Version(10), 3)
    );
    assert_eq!(
        loaded.state.to_value().expect("json"),
        serde_json::json!({ "balance": 100, "owner": "o'brien ✓" })
    );
    store
        .save_snapshot(snapshot(20, 200))
        .await
        .expect("save_snapshot");
    store
        .save_snapshot(snapshot(15, 150))
        .await
        .expect("save_snapshot");
    let loaded = store
        .load_snapshot(&id)
        .await
        .expect("load_snapshot")
        .expect("a snapshot");
    assert_eq!(
        loaded.version,
        Version(20),
        "an older snapshot does not replace a newer one"
    );
    assert_eq!(
        store
            .load_snapshot(&stream("snapshot-other"))
            .await
            .expect("load_snapshot"),
        None
    );
}

/// Named checkpoints are saved, replaced and loaded.
pub async fn checkpoints_round_trip<S: EventStore>(store: S) {
    let name = format!("projection-{}", Uuid::new_v4().simple());
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        None
    );
    let first = Checkpoint {
        commit: 7,
        position: crate::stream::Position(42),
    };
    store
        .save_checkpoint(&name, first)
        .await
        .expect("save_checkpoint");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(first)
    );
    let second = Checkpoint {
        commit: 9,
        position: crate::stream::Position(50),
    };
    store
        .save_checkpoint(&name, second)
        .await
        .expect("save_checkpoint");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(second)
    );
    store
        .save_checkpoint(&name, Checkpoint::START)
        .await
        .expect("a reset to the start");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(Checkpoint::START)
    );
}

/// A checkpoint is saved over the one expected, or not at all.
pub async fn checkpoints_compare_and_set<S: EventStore>(store: S) {
    let name = format!("compared-{}", Uuid::new_v4().simple());
    let at = |n: u64| Checkpoint {
        commit: n,
        position: crate::stream::Position(n * 10),
    };
    store
        .save_checkpoint_if(&name, None, at(1))
        .await
        .expect("the first save");
    let moved = store.save_checkpoint_if(&name, None, at(2)).await;
    assert!(
        matches!(&moved, Err(StoreError::CheckpointMoved { name: n, expected: None, actual: Some(actual) })
            if *n == name && *actual == at(1)),
        "got {moved:?}"
    );
    store
        .save_checkpoint_if(&name, Some(at(1)), at(3))
        .await
        .expect("a save over the stored one");
    let behind = store.save_checkpoint_if(&name, Some(at(1)), at(2)).await;
    assert!(
        matches!(&behind, Err(StoreError::CheckpointMoved { expected: Some(e), actual: Some(a), .. })
            if *e == at(1) && *a == at(3)),
        "got {behind:?}"
    );
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(at(3)),
        "a refused save leaves the checkpoint as it was"
    );
}

/// One holder of a lease at a time: a second caller waits until the first lets it go;
/// leases of other names are free.
pub async fn leases_exclude_each_other<S: EventStore + Clone + 'static>(store: S) {
    let name = format!("lease-{}", Uuid::new_v4().simple());
    let first = store.acquire_lease(&name).await.expect("acquire_lease");
    assert!(first.is_held());
    let other = store
        .acquire_lease(&format!("{name}-other"))
        .await
        .expect("another name is free");
    drop(other);
    let (taken, mut took) = tokio::sync::oneshot::channel();
    let second = {
        let (store, name) = (store.clone(), name.clone());
        tokio::spawn(async move {
            let lease = store.acquire_lease(&name).await.expect("acquire_lease");
            let _ = taken.send(());
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(lease);
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        took.try_recv().is_err(),
        "a second holder got the lease while the first held it"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(30), took)
        .await
        .expect("the waiting caller gets the lease once it is free")
        .expect("the lease task");
    second.await.expect("the lease task");
    let again = tokio::time::timeout(Duration::from_secs(30), store.acquire_lease(&name))
        .await
        .expect("a released lease is free")
        .expect("acquire_lease");
    assert!(again.is_held());
}

/// A store that holds turns serves their holders one at a time, and what a holder appends is
/// what the next holder reads.
pub async fn held_turns_take_turns<S: EventStore + Clone + 'static>(store: S) {
    let id = stream("turns");
    let Some(probe) = store.hold_turn(&id).await.expect("hold_turn") else {
        return; // a store without turns: repositories back off instead
    };
    assert_eq!(probe.stream(), &id);
    probe.release().await.expect("release");
    let holders: Vec<_> = (0..4u64)
        .map(|n| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut turn = store
                    .hold_turn(&id)
                    .await
                    .expect("hold_turn")
                    .expect("a turn");
                let mut version = Version(0);
                let mut visit = |event: crate::store::ReplayedEvent<'_>| {
                    version = event.version;
                    std::ops::ControlFlow::Continue(())
                };
                turn.replay(Version(1), usize::MAX, &mut visit)
                    .await
                    .expect("replay");
                tokio::task::yield_now().await;
                let batch = events(n * 10..n * 10 + 2);
                let first_id = batch[0].event_id;
                if let Some(stored) = turn.read_event(first_id).await.expect("read_event") {
                    panic!("an event not appended yet is stored: {stored:?}");
                }
                let written = turn
                    .append_and_release(ExpectedVersion::Exact(version), batch)
                    .await
                    .expect("an append decided under the turn meets no conflict");
                assert!(written.written);
                let first = store
                    .read_event(first_id)
                    .await
                    .expect("read_event")
                    .expect("the event just appended");
                assert_eq!(first.version, written.first_version);
            })
        })
        .collect();
    for holder in holders {
        holder.await.expect("a holder");
    }
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(8)
    );
}

/// A reader waiting for new events is woken by an append, well before its timeout, and
/// returns at the timeout when nothing comes.
pub async fn waiters_wake_on_append<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    let after = last_checkpoint(&*store).await;
    let started = std::time::Instant::now();
    let quiet = store
        .wait_for_events(after, Duration::from_millis(200))
        .await
        .expect("wait");
    assert!(
        !quiet || last_checkpoint(&*store).await > after,
        "woken with nothing new"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150) || quiet,
        "returned early without cause"
    );

    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            store
                .append(&stream("wake"), ExpectedVersion::Any, events(0..1))
                .await
                .expect("append");
        })
    };
    let started = std::time::Instant::now();
    let mut woken = false;
    // A store may wake early without news (a reconnect); wait again until the event is there.
    while last_checkpoint(&*store).await <= after && started.elapsed() < Duration::from_secs(30) {
        woken = store
            .wait_for_events(after, Duration::from_secs(30))
            .await
            .expect("wait");
    }
    writer.await.expect("writer");
    assert!(woken, "the append woke the waiter");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the append, not by the timeout"
    );
}

/// A subscription started after 10,000 events, with writers still appending, delivers every
/// event of its filter exactly once, in order, and nothing else.
pub async fn subscription_sees_every_event_once<S: EventStore + Clone + 'static>(store: S) {
    const STREAMS: u64 = 10;
    const BEFORE: u64 = 10_000;
    const WRITERS: u64 = 4;
    const DURING: u64 = 250;
    let category = format!("sub{}", Uuid::new_v4().simple());
    let ids: Vec<StreamId> = (0..STREAMS)
        .map(|i| StreamId::new(format!("{category}-{i}")).expect("valid id"))
        .collect();
    let start = last_checkpoint(&store).await;
    for chunk in 0..BEFORE / 500 {
        let id = &ids[(chunk % STREAMS) as usize];
        store
            .append(
                id,
                ExpectedVersion::Any,
                events(chunk * 500..(chunk + 1) * 500),
            )
            .await
            .expect("append");
    }
    // Noise in another category, which the filter drops.
    store
        .append(&stream("noise"), ExpectedVersion::Any, events(0..50))
        .await
        .expect("append");

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, ids) = (store.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..DURING {
                    let n = BEFORE + w * DURING + i;
                    let id = &ids[(n % STREAMS) as usize];
                    store
                        .append(id, ExpectedVersion::Any, events(n..n + 1))
                        .await
                        .expect("append");
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();

    let total = BEFORE + WRITERS * DURING;
    let mut subscription = Subscription::new(store.clone(), start)
        .with_filter(Filter::all().category(category.clone()))
        .with_batch_size(700)
        .with_poll_interval(Duration::from_millis(50));
    let mut seen = Vec::with_capacity(total as usize);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while (seen.len() as u64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} events arrived",
            seen.len()
        );
        let batch = subscription
            .next_batch()
            .await
            .expect("next_batch")
            .expect("not stopped");
        seen.extend(batch);
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        subscription.poll_batch().await.expect("poll").is_none(),
        "nothing beyond the writes"
    );
    assert!(
        seen.iter()
            .all(|e| e.stream_id.as_str().starts_with(&category)),
        "the filter holds"
    );
    for pair in seen.windows(2) {
        assert!(
            pair[0].checkpoint() < pair[1].checkpoint(),
            "delivered in checkpoint order, once"
        );
    }
    let payloads: BTreeSet<u64> = seen.iter().map(n_of).collect();
    assert_eq!(
        payloads,
        (0..total).collect::<BTreeSet<_>>(),
        "every event exactly once"
    );
    for id in &ids {
        let versions: Vec<u64> = seen
            .iter()
            .filter(|e| &e.stream_id == id)
            .map(|e| e.version.0)
            .collect();
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "stream {id} in version order"
        );
    }
}
