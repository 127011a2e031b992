//! Appends to one stream: expected versions, atomicity, metadata, concurrent writers.

use super::*;

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
