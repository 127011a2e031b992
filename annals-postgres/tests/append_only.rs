//! The events table is append-only: UPDATE, DELETE and TRUNCATE fail with the trigger's error,
//! even when they would touch no row, and the stored events stay as they were.

use annals::{EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StreamId, Version};
use annals_postgres::testing::fresh_store;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_delete_and_truncate_fail() {
    let store = fresh_store().await;
    let stream = StreamId::new("ledger-1").expect("id");
    let events: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "test.entry".into(),
            schema_version: 1,
            payload: Payload::from_value(&serde_json::json!({ "n": n })).expect("json"),
            metadata: Metadata::default(),
        })
        .collect();
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .expect("append");
    let before = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");

    let client = store.pool().get().await.expect("connection");
    let table = format!("\"{}\".events", store.schema());
    for statement in [
        format!("UPDATE {table} SET event_type = 'tampered'"),
        format!("UPDATE {table} SET payload = '{{}}' WHERE version = 2"),
        format!("UPDATE {table} SET event_type = 'x' WHERE false"),
        format!("DELETE FROM {table}"),
        format!("DELETE FROM {table} WHERE version = 3"),
        format!("DELETE FROM {table} WHERE false"),
        format!("TRUNCATE {table}"),
    ] {
        let error = client
            .batch_execute(&statement)
            .await
            .expect_err(&format!("`{statement}` must fail"));
        let db = error.as_db_error().expect("a database error");
        assert!(
            db.message().contains("append-only"),
            "`{statement}` fails with the trigger's error, got: {}",
            db.message()
        );
        assert_eq!(db.code().code(), "23001", "restrict_violation");
    }

    let after = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");
    assert_eq!(after, before, "the stored events are untouched");
    assert_eq!(
        store.stream_version(&stream).await.expect("version"),
        Version(3)
    );
}
