//! Property tests on hostile input: schema names are valid or refused with a typed error, and
//! appends of events with arbitrary stream ids, type names (NUL included), metadata and
//! bodies are stored and read back equal, or refused with `StoreError::Rejected` with nothing
//! written. Never a panic.

// Test helpers fail the test that calls them.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use annals::{EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StoreError, StreamId};
use annals_postgres::testing::fresh_store;
use annals_postgres::{PgConfig, PgError, PgEventStore};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::Value;
use uuid::Uuid;

/// Whether `name` has the documented form of a schema name: `[a-z_][a-z0-9_]{0,62}`, and not
/// one PostgreSQL reserves (`information_schema`, `pg_*`).
fn documented_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    first
        && name.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name != "information_schema"
        && !name.starts_with("pg_")
}

/// Any text: arbitrary Unicode, control characters (NUL among them), long runs.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{feff}'\"\\\\;$%a-z -]{0,24}",
        (any::<char>(), 0..400usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        prop::option::of(any::<u128>()),
        prop::option::of(hostile_text()),
        prop::collection::btree_map(hostile_text(), hostile_text(), 0..4),
    )
        .prop_map(|(correlation, actor, headers): (_, _, BTreeMap<_, _>)| {
            let mut metadata = Metadata::new();
            if let Some(id) = correlation {
                metadata = metadata.with_correlation_id(Uuid::from_u128(id));
            }
            if let Some(actor) = actor {
                metadata = metadata.with_actor(actor);
            }
            headers
                .into_iter()
                .fold(metadata, |metadata, (name, value)| {
                    metadata.with_header(name, value)
                })
        })
}

/// One append: a stream id (any text, valid or not), and an event of any type name, schema
/// version, metadata and body.
fn hostile_append() -> impl Strategy<Value = (String, NewEvent)> {
    (
        prop_oneof![hostile_text(), "[a-z]{1,8}-[0-9]{1,3}"],
        hostile_text(),
        prop_oneof![0..4u32, any::<u32>()],
        json_value(),
        metadata(),
    )
        .prop_map(|(stream, event_type, schema_version, body, metadata)| {
            let payload = Payload::from_value(&body).expect("a JSON value serializes");
            let event = NewEvent::new(event_type, schema_version, payload).with_metadata(metadata);
            (stream, event)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn schema_names_are_valid_or_refused_with_a_typed_error(
        name in prop_oneof![
            any::<String>(),
            "[a-z_][a-z0-9_]{0,70}",
            "pg_[a-z0-9_]{0,8}",
            "(information_schema|pg_catalog|pg_toast|public|annals)",
            "[A-Za-z0-9_\\- ;'\"\\x00é]{0,12}",
        ],
    ) {
        match PgConfig::default().with_schema(name.clone()).validate() {
            Ok(()) => prop_assert!(documented_schema_name(&name), "{name:?} was accepted"),
            Err(PgError::InvalidSchema { schema, reason }) => {
                prop_assert!(!documented_schema_name(&name), "{name:?} was refused: {reason}");
                prop_assert_eq!(schema, name);
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "{name:?}: not InvalidSchema: {other:?}"),
        }
    }
}

/// Appends `event` to the stream named `stream`, and checks it reads back equal or was
/// refused with nothing written.
async fn append_and_check(
    store: &PgEventStore,
    stream: String,
    event: NewEvent,
) -> Result<(), TestCaseError> {
    let Ok(stream) = StreamId::new(stream) else {
        // Refused before it reaches the store (the core's property tests check how).
        return Ok(());
    };
    let fail = |what: &str, error: StoreError| TestCaseError::fail(format!("{what}: {error}"));
    let before = store
        .stream_version(&stream)
        .await
        .map_err(|e| fail("stream_version", e))?;
    match store
        .append(&stream, ExpectedVersion::Any, vec![event.clone()])
        .await
    {
        Ok(written) => {
            prop_assert_eq!(written.first_version, before.next());
            prop_assert_eq!(written.stream_version, before.next());
            let read = store
                .read_stream(&stream, written.first_version, 10)
                .await
                .map_err(|e| fail("read_stream", e))?;
            prop_assert_eq!(read.len(), 1);
            let stored = &read[0];
            prop_assert_eq!(&stored.stream_id, &stream);
            prop_assert_eq!(stored.event_id, event.event_id);
            prop_assert_eq!(stored.event_type.as_str(), &*event.event_type);
            prop_assert_eq!(stored.schema_version, event.schema_version);
            prop_assert_eq!(&stored.payload, &event.payload);
            prop_assert_eq!(&stored.metadata, &event.metadata);
            let by_id = store
                .read_event(event.event_id)
                .await
                .map_err(|e| fail("read_event", e))?;
            prop_assert_eq!(by_id.as_ref(), Some(stored));
        }
        Err(StoreError::Rejected {
            stream: named,
            reason,
        }) => {
            prop_assert_eq!(&named, &stream);
            prop_assert!(!reason.is_empty());
            let after = store
                .stream_version(&stream)
                .await
                .map_err(|e| fail("stream_version", e))?;
            prop_assert_eq!(after, before, "a refused append writes nothing");
            let by_id = store
                .read_event(event.event_id)
                .await
                .map_err(|e| fail("read_event", e))?;
            prop_assert!(by_id.is_none(), "the refused event is not stored");
        }
        Err(other) => prop_assert!(false, "{stream}: not stored, not Rejected: {other:?}"),
    }
    Ok(())
}

#[test]
fn hostile_events_are_stored_verbatim_or_rejected_with_nothing_written() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let store = runtime.block_on(fresh_store());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(128));
    let result = runner.run(&hostile_append(), |(stream, event)| {
        runtime.block_on(append_and_check(&store, stream, event))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Some of them were stored: the property did not pass by refusing everything.
    let stored = runtime
        .block_on(store.read_all(annals::Checkpoint::START, 1_000))
        .expect("read_all");
    assert!(!stored.is_empty());
}
