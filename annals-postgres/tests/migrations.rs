//! Schema migrations: idempotent, safe to run concurrently, and the schema name is validated.

use annals::{EventStore, ExpectedVersion, StreamId, Version};
use annals_postgres::testing::{fresh_config, fresh_store, TestCluster};
use annals_postgres::{PgConfig, PgError, PgEventStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_twice_is_a_no_op() {
    let store = fresh_store().await;
    assert_eq!(store.migrate().await.expect("migrate"), Vec::<u32>::new());
    assert_eq!(store.migrate().await.expect("migrate"), Vec::<u32>::new());
    let client = store.pool().get().await.expect("connection");
    let rows = client
        .query(
            &format!(
                "SELECT version, name FROM \"{}\".schema_migrations ORDER BY version",
                store.schema()
            ),
            &[],
        )
        .await
        .expect("schema_migrations");
    let applied: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        applied,
        [
            (1, "initial".to_owned()),
            (2, "drop_streams".to_owned()),
            (3, "json_bodies".to_owned()),
            (4, "log_key".to_owned()),
            (5, "index_plans".to_owned()),
            (6, "inbox".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_from_several_stores() {
    let config = fresh_config();
    let url = TestCluster::shared().url().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, config) = (url.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            let store = PgEventStore::connect_with(&url, config).await?;
            let applied = store.migrate().await?;
            Ok::<_, PgError>((store, applied))
        }));
    }
    let mut stores = Vec::new();
    for task in tasks {
        let (store, again) = task.await.expect("task").expect("connect and migrate");
        assert!(again.is_empty(), "a second migrate() applies nothing");
        stores.push(store);
    }
    let client = stores[0].pool().get().await.expect("connection");
    let count: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".schema_migrations",
                stores[0].schema()
            ),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 6, "each migration is recorded once");

    // All the stores work on the one schema.
    let stream = StreamId::new("shared-1").expect("id");
    for (n, store) in stores.iter().enumerate() {
        store
            .append(
                &stream,
                ExpectedVersion::Exact(Version(n as u64)),
                vec![annals::testing::conformance::test_event(n as u64)],
            )
            .await
            .expect("append");
    }
    assert_eq!(
        stores[3].stream_version(&stream).await.expect("version"),
        Version(8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schema_names_are_refused_before_any_sql() {
    let url = TestCluster::shared().url();
    for schema in [
        "",
        "Events",
        "events; DROP TABLE x",
        "a\"b",
        "a'b",
        "1events",
        "pg_events",
        "événements",
        "with space",
        &"x".repeat(64),
    ] {
        let config = PgConfig::default().with_schema(schema);
        assert!(
            matches!(config.validate(), Err(PgError::InvalidSchema { .. })),
            "{schema:?}"
        );
        let connected = PgEventStore::connect_with(url, config.clone()).await;
        assert!(
            matches!(connected, Err(PgError::InvalidSchema { .. })),
            "{schema:?}: {connected:?}"
        );
        let store = fresh_store().await;
        let from_pool = PgEventStore::from_pool(store.pool().clone(), config);
        assert!(
            matches!(from_pool, Err(PgError::InvalidSchema { .. })),
            "{schema:?}"
        );
    }
}

/// A schema created by the first release, with events in it, migrates to the latest one:
/// every event reads back as written, versions continue, and the global log keeps its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_with_events_migrates_from_version_1() {
    let config = fresh_config();
    let url = TestCluster::shared().url().to_owned();
    let quoted = format!("\"{}\"", config.schema);
    let (client, connection) =
        annals_postgres::tokio_postgres::connect(&url, annals_postgres::tokio_postgres::NoTls)
            .await
            .expect("connect");
    let connection = tokio::spawn(connection);
    // The schema as version 1 left it, written the way version 1 appended.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {quoted};
             CREATE TABLE {quoted}.schema_migrations (
                 version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             {}
             INSERT INTO {quoted}.schema_migrations (version, name) VALUES (1, 'initial');
             INSERT INTO {quoted}.streams (stream_id, version) VALUES ('old-1', 2);
             INSERT INTO {quoted}.events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
             VALUES ('old-1', 1, gen_random_uuid(), 'Opened', 1, '{{\"owner\": \"ann\"}}', '{{\"actor\": \"clerk\"}}'),
                    ('old-1', 2, gen_random_uuid(), 'Deposited', 2, '{{\"amount\": 5}}', '{{}}');",
            include_str!("../migrations/0001_initial.sql").replace("__SCHEMA__", &quoted)
        ))
        .await
        .expect("a version-1 schema");
    drop(client);
    let _ = connection.await;

    let store = PgEventStore::connect_with(&url, config)
        .await
        .expect("connect and migrate");
    let stream = StreamId::new("old-1").expect("id");
    assert_eq!(
        store.stream_version(&stream).await.expect("version"),
        Version(2)
    );
    let read = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[0].payload.to_value().expect("json"),
        serde_json::json!({ "owner": "ann" })
    );
    assert_eq!(read[0].metadata.actor.as_deref(), Some("clerk"));
    assert_eq!(
        (read[1].event_type.as_str(), read[1].schema_version),
        ("Deposited", 2)
    );

    let appended = store
        .append(
            &stream,
            ExpectedVersion::Exact(Version(2)),
            vec![annals::NewEvent::new(
                "Deposited",
                2,
                annals::Payload::from_json(r#"{"amount": 7}"#).expect("json"),
            )],
        )
        .await
        .expect("append after the migration");
    assert_eq!(appended.stream_version, Version(3));
    let stale = store
        .append(
            &stream,
            ExpectedVersion::Exact(Version(2)),
            vec![annals::NewEvent::new(
                "Deposited",
                2,
                annals::Payload::from_json(r#"{"amount": 9}"#).expect("json"),
            )],
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(annals::StoreError::Conflict {
                actual: Version(3),
                ..
            })
        ),
        "{stale:?}"
    );
    let log: Vec<u64> = store
        .read_all(annals::Checkpoint::START, 10)
        .await
        .expect("read_all")
        .iter()
        .map(|e| e.version.0)
        .collect();
    assert_eq!(log, [1, 2, 3]);
}
