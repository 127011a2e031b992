#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `annals check` and `annals stats`.

mod common;

use common::{append, run, store};

#[tokio::test]
async fn check_counts_types_and_finds_unexpected_ones() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited", "deposited"]).await;
    append(&store, "account-2", &["opened"]).await;

    let all = run(&schema, &["check", "--json"]);
    assert_eq!(all.code, 0, "stderr: {}", all.stderr);
    let report = all.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["events"], 4);
    assert_eq!(
        report["types"],
        serde_json::json!([
            {"event_type": "deposited", "schema_version": 1, "events": 2},
            {"event_type": "opened", "schema_version": 1, "events": 2},
        ])
    );
    assert_eq!(report["not_json"], serde_json::json!([]));

    let expected = run(
        &schema,
        &["check", "--expect-types", "opened,deposited,closed"],
    );
    assert_eq!(expected.code, 0, "{}", expected.stdout);
    assert!(
        expected.stdout.contains("ok: 4 events read"),
        "{}",
        expected.stdout
    );

    let missing = run(&schema, &["check", "--expect-types", "opened", "--json"]);
    assert_eq!(missing.code, 1);
    let report = missing.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["unexpected_types"], serde_json::json!(["deposited"]));
}

#[tokio::test]
async fn check_reads_past_one_page() {
    let (store, schema) = store().await;
    let types = vec!["ticked"; 1_500];
    append(&store, "clock-1", &types).await;
    let report = run(&schema, &["check", "--json"]);
    assert_eq!(report.code, 0, "stderr: {}", report.stderr);
    assert_eq!(report.json()["events"], 1_500);
}

#[tokio::test]
async fn stats_counts_per_type_and_day_and_sizes_tables() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited", "deposited"]).await;

    let result = run(&schema, &["stats", "--json"]);
    assert_eq!(result.code, 0, "stderr: {}", result.stderr);
    let stats = result.json();
    assert_eq!(stats["events"], 3);
    assert_eq!(
        stats["per_type"],
        serde_json::json!({"deposited": 2, "opened": 1})
    );
    let per_day = stats["per_day"].as_object().expect("days");
    assert_eq!(per_day.values().filter_map(|v| v.as_u64()).sum::<u64>(), 3);
    let sizes = stats["sizes"].as_array().expect("sizes");
    let events = sizes
        .iter()
        .find(|s| s["name"] == "events")
        .expect("the events table is sized");
    assert_eq!(events["kind"], "table");
    assert!(events["bytes"].as_i64().expect("bytes") > 0);
    assert!(sizes
        .iter()
        .any(|s| s["name"] == "events_pkey" && s["kind"] == "index"));

    let human = run(&schema, &["stats"]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("deposited  2"), "{}", human.stdout);
}
