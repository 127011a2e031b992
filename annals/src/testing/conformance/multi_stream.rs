//! Appends across several streams in one call, and the order in which a call is refused.

use super::*;

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
