//! Hostile input is stored verbatim or refused with a typed error: never interpolated into
//! SQL, never a panic.

use std::time::SystemTime;

use annals::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Payload, Snapshot, StoreError, StreamAppend,
    StreamId, Version, MAX_STREAM_ID_LEN,
};
use annals_postgres::testing::fresh_store;
use uuid::Uuid;

const NASTY: &[&str] = &[
    "o'brien",
    "'; DROP TABLE events; --",
    "\"; DROP SCHEMA public CASCADE; --",
    "back\\slash\\\\",
    "$1 $2 $$ $body$",
    "%s %I %L {}",
    "ünïcödé ✓ 𝄞 日本語 🦀",
    "\u{feff}bom",
    "E'\\x00'",
];

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
fn event_with(payload: serde_json::Value, metadata: Metadata) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "test.hostile".into(),
        schema_version: 1,
        payload: Payload::from_value(&payload).expect("json"),
        metadata,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nasty_strings_round_trip_verbatim() {
    let store = fresh_store().await;
    for (n, nasty) in NASTY.iter().enumerate() {
        let stream = StreamId::new(format!("{nasty}-{n}")).expect("a valid stream id");
        let metadata = Metadata::new()
            .with_actor(*nasty)
            .with_header(*nasty, *nasty)
            .with_header("n", n.to_string());
        let mut event = event_with(
            serde_json::json!({ "text": nasty, *nasty: [nasty, { "deep": nasty }] }),
            metadata.clone(),
        );
        event.event_type = format!("type {nasty}").into();
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event.clone()])
            .await
            .expect("append");
        let read = store
            .read_stream(&stream, Version(1), 10)
            .await
            .expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].stream_id, stream);
        assert_eq!(read[0].event_type, event.event_type);
        assert_eq!(read[0].metadata, metadata);
        assert_eq!(
            read[0].payload.to_value().expect("json"),
            event.payload.to_value().expect("json")
        );
        assert_eq!(store.stream_version(&stream).await.expect("v"), Version(1));
    }
    // The tables are all still there.
    let stream = StreamId::new("still-here").expect("id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event_with(serde_json::json!({}), Metadata::new())],
        )
        .await
        .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_values_round_trip() {
    let store = fresh_store().await;
    let longest = StreamId::new("s".repeat(MAX_STREAM_ID_LEN)).expect("longest id");
    let megabyte = "x'\"\\✓".repeat(1_024 * 1_024 / 8);
    let metadata = Metadata::new().with_header("big", megabyte.clone());
    let event = event_with(serde_json::json!({ "big": megabyte }), metadata.clone());
    store
        .append(&longest, ExpectedVersion::NoStream, vec![event])
        .await
        .expect("append of megabyte values");
    let read = store
        .read_stream(&longest, Version(1), 1)
        .await
        .expect("read");
    assert_eq!(read[0].stream_id, longest);
    assert_eq!(read[0].metadata, metadata);
    assert_eq!(
        read[0].payload.to_value().expect("json")["big"],
        megabyte.as_str()
    );
}

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
fn assert_rejected<T: std::fmt::Debug>(result: Result<T, StoreError>, on: &StreamId) {
    match result {
        Err(StoreError::Rejected { stream, reason }) => {
            assert_eq!(&stream, on);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a rejection on {on}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_nul_characters_in_json_round_trip() {
    let store = fresh_store().await;
    let stream = StreamId::new("nul-json").expect("id");
    // `\u0000` inside a JSON string: bodies are stored as `json`, which keeps the text as
    // written (`jsonb` could not hold it), so the store behaves as the memory store does.
    let body = serde_json::json!({ "s": "a\u{0}b" });
    let metadata = Metadata::new().with_header("h", "a\u{0}b");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event_with(body.clone(), metadata.clone())],
        )
        .await
        .expect("append");
    let read = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].payload.to_value().expect("json"), body);
    assert_eq!(read[0].metadata, metadata);

    let state = Payload::from_value(&serde_json::json!({ "s": "\u{0}" })).expect("json");
    store
        .save_snapshot(Snapshot {
            stream_id: stream.clone(),
            version: Version(1),
            snapshot_version: 1,
            state: state.clone(),
            taken_at: SystemTime::now(),
        })
        .await
        .expect("save snapshot");
    let loaded = store
        .load_snapshot(&stream)
        .await
        .expect("load")
        .expect("a snapshot");
    assert_eq!(loaded.state, state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_text_columns_are_rejected_and_nothing_is_written() {
    let store = fresh_store().await;
    let stream = StreamId::new("nul-1").expect("id");
    let other = StreamId::new("nul-2").expect("id");

    // In the event type: a PostgreSQL text value cannot hold NUL.
    let mut in_type = event_with(serde_json::json!({}), Metadata::new());
    in_type.event_type = "bad\u{0}type".into();
    assert_rejected(
        store
            .append(&stream, ExpectedVersion::Any, vec![in_type])
            .await,
        &stream,
    );
    // One bad stream refuses a multi-stream append whole.
    let good = event_with(serde_json::json!({ "fine": true }), Metadata::new());
    let mut bad = event_with(serde_json::json!({}), Metadata::new());
    bad.event_type = "\u{0}".into();
    assert_rejected(
        store
            .append_streams(vec![
                StreamAppend {
                    stream_id: other.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![good],
                },
                StreamAppend {
                    stream_id: stream.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![bad],
                },
            ])
            .await,
        &stream,
    );

    for id in [&stream, &other] {
        assert_eq!(store.stream_version(id).await.expect("version"), Version(0));
        assert!(store
            .read_stream(id, Version(1), 10)
            .await
            .expect("read")
            .is_empty());
    }

    // The store works on afterwards.
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![event_with(
                serde_json::json!({ "s": "ok" }),
                Metadata::new(),
            )],
        )
        .await
        .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_versions_are_conflicts_not_panics() {
    let store = fresh_store().await;
    let stream = StreamId::new("huge").expect("id");
    let result = store
        .append(
            &stream,
            ExpectedVersion::Exact(Version(u64::MAX)),
            vec![event_with(serde_json::json!({}), Metadata::new())],
        )
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict {
                actual: Version(0),
                ..
            })
        ),
        "{result:?}"
    );
    assert!(store
        .read_stream(&stream, Version(u64::MAX), usize::MAX)
        .await
        .expect("read")
        .is_empty());
    let mut huge = event_with(serde_json::json!({}), Metadata::new());
    huge.schema_version = u32::MAX;
    assert_rejected(
        store
            .append(&stream, ExpectedVersion::Any, vec![huge])
            .await,
        &stream,
    );
}
