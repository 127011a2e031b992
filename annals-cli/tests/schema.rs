#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `annals migrate` and `annals status`, and the errors every verb shares.

mod common;

use common::{append, run, run_with_url, store, unique_schema};

#[test]
fn migrate_applies_every_migration_once() {
    let schema = unique_schema();
    let first = run(&schema, &["migrate", "--json"]);
    assert_eq!(first.code, 0, "stderr: {}", first.stderr);
    let document = first.json();
    let applied: Vec<i64> = document["applied"]
        .as_array()
        .expect("applied is a list")
        .iter()
        .map(|m| m["version"].as_i64().expect("a version"))
        .collect();
    assert_eq!(applied, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(document["applied"][0]["name"], "initial");

    // The binary knows the version annals-postgres migrates to.
    let status = run(&schema, &["status", "--json"]).json();
    assert_eq!(status["schema_version"], document["schema_version"]);
    assert_eq!(status["schema_version"], status["known_schema_version"]);

    let again = run(&schema, &["migrate"]);
    assert_eq!(again.code, 0, "stderr: {}", again.stderr);
    assert_eq!(
        again.stdout.trim(),
        format!("schema `{schema}` is up to date (version 6)")
    );
}

#[tokio::test]
async fn status_counts_events_streams_and_projection_lag() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited"]).await;
    append(&store, "account-2", &["opened"]).await;
    let client = store.pool().get().await.expect("a connection");
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".checkpoints (name, commit, position) \
                 SELECT 'balances', 0, min(position) FROM \"{schema}\".events"
            ),
            &[],
        )
        .await
        .expect("a checkpoint is written");

    let result = run(&schema, &["status", "--json"]);
    assert_eq!(result.code, 0, "stderr: {}", result.stderr);
    let status = result.json();
    assert_eq!(status["events"], 3);
    assert_eq!(status["streams"], 2);
    let last = status["last_position"].as_i64().expect("a last position");
    let projection = &status["projections"][0];
    assert_eq!(projection["name"], "balances");
    let position = projection["position"].as_i64().expect("a position");
    assert_eq!(projection["lag"].as_i64(), Some(last - position));
    assert_eq!(projection["lag"], 2);

    let human = run(&schema, &["status"]);
    assert_eq!(human.code, 0);
    assert!(
        human.stdout.contains("events          3"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("balances"), "{}", human.stdout);
}

#[tokio::test]
async fn status_shows_a_transaction_holding_readers_back() {
    let (store, schema) = store().await;
    let mut client = store.pool().get().await.expect("a connection");
    let transaction = client.transaction().await.expect("a transaction");
    // A lock stronger than a read, as an append holds until it commits.
    transaction
        .batch_execute(&format!(
            "LOCK TABLE \"{schema}\".events IN ROW EXCLUSIVE MODE; SELECT 'held by the test'"
        ))
        .await
        .expect("the lock is taken");

    let status = run(&schema, &["status", "--json"]).json();
    let holding = status["holding_readers_back"].as_array().expect("a list");
    assert_eq!(holding.len(), 1, "{status}");
    assert!(holding[0]["pid"].is_i64());
    assert!(holding[0]["started"].is_string());
    transaction.rollback().await.expect("the rollback");

    let status = run(&schema, &["status", "--json"]).json();
    assert_eq!(status["holding_readers_back"], serde_json::json!([]));

    // A projection batch writes its checkpoint first, and may append in the same transaction.
    let transaction = client.transaction().await.expect("a transaction");
    transaction
        .batch_execute(&format!(
            "INSERT INTO \"{schema}\".checkpoints (name, commit, position) VALUES ('p', 0, 0)"
        ))
        .await
        .expect("the checkpoint is written");
    let status = run(&schema, &["status", "--json"]).json();
    assert_eq!(
        status["holding_readers_back"]
            .as_array()
            .expect("a list")
            .len(),
        1,
        "{status}"
    );
    transaction.rollback().await.expect("the rollback");

    // A long transaction on another table holds no reader back.
    let transaction = client.transaction().await.expect("a transaction");
    transaction
        .batch_execute(&format!(
            "CREATE TABLE \"{schema}\".unrelated (n int); INSERT INTO \"{schema}\".unrelated VALUES (1)"
        ))
        .await
        .expect("the other table is written");
    let status = run(&schema, &["status", "--json"]).json();
    assert_eq!(
        status["holding_readers_back"],
        serde_json::json!([]),
        "{status}"
    );
    transaction.rollback().await.expect("the rollback");
}

#[test]
fn a_schema_without_tables_says_to_migrate() {
    let schema = unique_schema();
    let result = run(&schema, &["status"]);
    assert_eq!(result.code, 3);
    assert!(
        result.stderr.contains(&format!(
            "schema `{schema}` has no annals tables; run `annals migrate`"
        )),
        "{}",
        result.stderr
    );
}

#[tokio::test]
async fn a_newer_schema_asks_for_an_upgrade() {
    let (store, schema) = store().await;
    let client = store.pool().get().await.expect("a connection");
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".schema_migrations (version, name) VALUES (99, 'future')"
            ),
            &[],
        )
        .await
        .expect("a future migration is recorded");
    for verb in ["status", "migrate"] {
        let result = run(&schema, &[verb]);
        assert_eq!(result.code, 3, "{verb}");
        assert!(
            result.stderr.contains(
                "schema version 99 is newer than this binary (knows 6); upgrade annals-cli"
            ),
            "{verb}: {}",
            result.stderr
        );
    }
}

#[test]
fn a_wrong_url_says_to_check_it() {
    // Port 1 on the loopback refuses connections at once.
    let result = run_with_url(
        "postgres://nobody:secret@127.0.0.1:1/nothing",
        "annals",
        &["status"],
    );
    assert_eq!(result.code, 3);
    assert!(
        result
            .stderr
            .contains("cannot connect to 127.0.0.1:1/nothing: "),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("check DATABASE_URL"),
        "{}",
        result.stderr
    );
    assert!(!result.stderr.contains("secret"), "{}", result.stderr);
}

#[test]
fn usage_errors_exit_with_2() {
    let result = run("Not-A-Schema", &["status"]);
    assert_eq!(result.code, 2, "{}", result.stderr);
    let result = run("annals", &["no-such-verb"]);
    assert_eq!(result.code, 2, "{}", result.stderr);
}
