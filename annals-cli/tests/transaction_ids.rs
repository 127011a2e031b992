#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! The verbs that read the whole log follow the log's order, `(tx_id, position)`, when a
//! transaction id gains a digit: sorted as text, "1000" would come before "999".

mod common;

use annals_postgres::testing::TestCluster;
use annals_postgres::{PgConfig, PgEventStore};
use common::{append, run_with_url, unique_schema};

/// Events in each of the two transactions: together more than one page of a scan.
const EACH: usize = 600;

#[tokio::test]
async fn whole_log_verbs_read_across_a_transaction_id_with_more_digits() {
    // A cluster of its own: no other test's transactions move its ids while this one aims.
    let cluster = TestCluster::start().expect("a cluster of its own");
    let schema = unique_schema();
    let store = PgEventStore::connect_with(cluster.url(), PgConfig::default().with_schema(&schema))
        .await
        .expect("a store");
    let client = store.pool().get().await.expect("a connection");
    client
        .batch_execute(&format!(
            "CREATE PROCEDURE \"{schema}\".use_ids(n bigint) LANGUAGE plpgsql AS $$
             BEGIN
                 FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP;
             END $$"
        ))
        .await
        .expect("the procedure");
    let now = current(&client).await;
    let mut boundary = 10_i64;
    while boundary <= now + 10 {
        boundary *= 10;
    }
    // The first append's transaction just below the boundary, the second's above it.
    client
        .batch_execute(&format!(
            "CALL \"{schema}\".use_ids({})",
            boundary - now - 5
        ))
        .await
        .expect("ids used");
    append(&store, "below-1", &vec!["ticked"; EACH]).await;
    let now = current(&client).await;
    client
        .batch_execute(&format!(
            "CALL \"{schema}\".use_ids({})",
            (boundary - now).max(0) + 1
        ))
        .await
        .expect("ids used");
    append(&store, "above-1", &vec!["tocked"; EACH]).await;
    let ids: Vec<String> = client
        .query(
            &format!("SELECT DISTINCT tx_id::text FROM \"{schema}\".events ORDER BY 1"),
            &[],
        )
        .await
        .expect("the transaction ids")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let digits: Vec<usize> = ids.iter().map(String::len).collect();
    assert_ne!(
        digits[0], digits[1],
        "the set-up missed the boundary: {ids:?}"
    );

    let url = cluster.url();
    let check = run_with_url(url, &schema, &["check", "--json"]);
    assert_eq!(check.code, 0, "stderr: {}", check.stderr);
    let report = check.json();
    assert_eq!(report["events"], 2 * EACH);
    assert_eq!(
        report["types"],
        serde_json::json!([
            {"event_type": "ticked", "schema_version": 1, "events": EACH},
            {"event_type": "tocked", "schema_version": 1, "events": EACH},
        ])
    );

    let stats = run_with_url(url, &schema, &["stats", "--json"]);
    assert_eq!(stats.code, 0, "stderr: {}", stats.stderr);
    let stats = stats.json();
    assert_eq!(stats["events"], 2 * EACH);
    assert_eq!(
        stats["per_type"],
        serde_json::json!({"ticked": EACH, "tocked": EACH})
    );

    // From the first event: every event, below the boundary first.
    let first: i64 = client
        .query_one(
            &format!("SELECT min(position) FROM \"{schema}\".events"),
            &[],
        )
        .await
        .expect("the first position")
        .get(0);
    let tail = run_with_url(
        url,
        &schema,
        &[
            "tail",
            "--json",
            "--from-position",
            &first.to_string(),
            "--limit",
            &(2 * EACH).to_string(),
        ],
    );
    assert_eq!(tail.code, 0, "stderr: {}", tail.stderr);
    let streams: Vec<String> = tail
        .stdout
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["stream_id"].as_str().expect("a stream id").to_owned()
        })
        .collect();
    assert_eq!(streams.len(), 2 * EACH);
    assert!(streams[..EACH].iter().all(|s| s == "below-1"));
    assert!(streams[EACH..].iter().all(|s| s == "above-1"));
}

/// The next transaction id (this statement's own).
async fn current(client: &tokio_postgres::Client) -> i64 {
    let id: String = client
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .expect("a transaction id")
        .get(0);
    id.parse().expect("a number")
}
