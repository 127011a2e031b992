//! Schema migrations: idempotent, safe to run concurrently, and the schema name is validated.

use eventsource::{EventStore, ExpectedVersion, StreamId, Version};
use eventsource_postgres::testing::{fresh_config, fresh_store, TestCluster};
use eventsource_postgres::{PgConfig, PgError, PgEventStore};

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
            (4, "log_key".to_owned())
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
    assert_eq!(count, 4, "each migration is recorded once");

    // All the stores work on the one schema.
    let stream = StreamId::new("shared-1").expect("id");
    for (n, store) in stores.iter().enumerate() {
        store
            .append(
                &stream,
                ExpectedVersion::Exact(Version(n as u64)),
                vec![eventsource::testing::conformance::test_event(n as u64)],
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
