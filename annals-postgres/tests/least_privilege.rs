//! A role with only the grants the crate docs list (section "Privileges") can use a store
//! whose schema another role migrated: it connects (which only reads `schema_migrations`),
//! passes the whole conformance suite, and cannot drop or disable the append-only trigger,
//! nor update or delete events.

// Test helpers fail the test that calls them.
#![allow(clippy::expect_used, clippy::panic)]

use annals::{EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StreamId, Version};
use annals_postgres::testing::{fresh_config, TestCluster};
use annals_postgres::PgEventStore;
use uuid::Uuid;

/// The grants of the crate docs, for schema `{s}` and role `{r}`. Each one is needed: with
/// any one left out, some check of the suite fails with "permission denied" (tried one by one
/// when this list was written). No grant on the identity sequence of `events.position` is
/// needed: an identity column draws its values on the table's INSERT privilege.
const GRANTS: &[&str] = &[
    "GRANT USAGE ON SCHEMA {s} TO {r}",
    "GRANT SELECT ON {s}.schema_migrations TO {r}",
    "GRANT SELECT, INSERT ON {s}.events TO {r}",
    "GRANT SELECT, INSERT, UPDATE ON {s}.snapshots, {s}.checkpoints TO {r}",
    "GRANT EXECUTE ON FUNCTION {s}.stream_turn(text) TO {r}",
];

/// `url` with its user and password replaced.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let host = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{scheme}://{user}:{password}@{host}")
}

/// A new schema migrated by the cluster's superuser, and a store on it connected as a new
/// `LOGIN` role with only [`GRANTS`]. Returns the store and the role's name.
async fn least_privilege_store_and_role() -> (PgEventStore, String) {
    let cluster = TestCluster::shared();
    let config = fresh_config();
    let owner = PgEventStore::connect_with(cluster.url(), config.clone())
        .await
        .expect("the superuser migrates the schema");
    let role = format!("app_{}", Uuid::new_v4().simple());
    let password = Uuid::new_v4().simple().to_string();
    let client = owner.pool().get().await.expect("connection");
    // The role's name and password are generated here (hex), never input.
    let schema = format!("\"{}\"", config.schema);
    let mut statements = vec![
        format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' \
             NOSUPERUSER NOCREATEDB NOCREATEROLE"
        ),
        // PostgreSQL lets every role execute a new function; a hardened database revokes
        // that, so the role gets only its own grant.
        format!("REVOKE EXECUTE ON FUNCTION {schema}.stream_turn(text) FROM PUBLIC"),
    ];
    statements.extend(GRANTS.iter().map(|grant| {
        grant
            .replace("{s}", &schema)
            .replace("{r}", &format!("\"{role}\""))
    }));
    for statement in &statements {
        client
            .batch_execute(statement)
            .await
            .unwrap_or_else(|e| panic!("`{statement}`: {e}"));
    }
    drop(client);
    let store = PgEventStore::connect_with(&as_user(cluster.url(), &role, &password), config)
        .await
        .expect("the least-privilege role connects (the schema is up to date)");
    (store, role)
}

async fn least_privilege_store() -> PgEventStore {
    least_privilege_store_and_role().await.0
}

annals::conformance_tests!(least_privilege_store().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_cannot_touch_stored_events_or_the_trigger() {
    let (store, role) = least_privilege_store_and_role().await;
    assert_eq!(
        store
            .migrate()
            .await
            .expect("an up-to-date schema only reads"),
        Vec::<u32>::new()
    );
    let stream = StreamId::new("ledger-1").expect("id");
    let event = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "test.entry".into(),
        schema_version: 1,
        payload: Payload::from_value(&serde_json::json!({ "n": 1 })).expect("json"),
        metadata: Metadata::new(),
    };
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event])
        .await
        .expect("append");
    let before = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");

    let client = store.pool().get().await.expect("connection");
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(user, role, "the store runs as the least-privilege role");
    let table = format!("\"{}\".events", store.schema());
    for statement in [
        format!("DROP TRIGGER events_append_only ON {table}"),
        format!("ALTER TABLE {table} DISABLE TRIGGER events_append_only"),
        format!("ALTER TABLE {table} DISABLE TRIGGER ALL"),
        format!("UPDATE {table} SET event_type = 'tampered'"),
        format!("DELETE FROM {table}"),
        format!("TRUNCATE {table}"),
        // Replica mode would skip ordinary triggers: only a superuser may set it.
        "SET session_replication_role = replica".to_owned(),
    ] {
        let error = client
            .batch_execute(&statement)
            .await
            .expect_err(&format!("`{statement}` must fail for the role"));
        let db = error.as_db_error().expect("a database error");
        assert_eq!(
            db.code().code(),
            "42501",
            "`{statement}` fails with insufficient_privilege, got: {}",
            db.message()
        );
    }
    drop(client);

    let after = store
        .read_stream(&stream, Version(1), 10)
        .await
        .expect("read");
    assert_eq!(after, before, "the stored events are untouched");
}
