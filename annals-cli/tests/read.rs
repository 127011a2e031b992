#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `annals streams`, `annals stream` and `annals event`.

mod common;

use common::{append, run, store};

#[tokio::test]
async fn streams_pages_by_id_with_a_prefix() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited", "withdrawn"]).await;
    append(&store, "account-2", &["opened"]).await;
    append(&store, "account-3", &["opened", "closed"]).await;
    append(&store, "order-1", &["placed"]).await;

    let first = run(
        &schema,
        &["streams", "--prefix", "account-", "--limit", "2", "--json"],
    );
    assert_eq!(first.code, 0, "stderr: {}", first.stderr);
    let page = first.json();
    let streams = page["streams"].as_array().expect("a list");
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["stream_id"], "account-1");
    assert_eq!(streams[0]["events"], 3);
    assert_eq!(streams[0]["version"], 3);
    assert_eq!(streams[1]["stream_id"], "account-2");
    assert_eq!(page["next_after"], "account-2");

    let second = run(
        &schema,
        &[
            "streams",
            "--prefix",
            "account-",
            "--limit",
            "2",
            "--after",
            "account-2",
            "--json",
        ],
    )
    .json();
    let streams = second["streams"].as_array().expect("a list");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["stream_id"], "account-3");
    assert_eq!(streams[0]["version"], 2);
    assert_eq!(second["next_after"], serde_json::Value::Null);

    // Without a prefix, pages walk every stream in id order.
    let unfiltered = run(
        &schema,
        &["streams", "--limit", "2", "--after", "account-2", "--json"],
    )
    .json();
    let ids: Vec<&str> = unfiltered["streams"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["stream_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, ["account-3", "order-1"]);
    assert_eq!(unfiltered["next_after"], "order-1");

    let human = run(&schema, &["streams"]);
    assert_eq!(human.code, 0);
    assert!(human.stdout.starts_with("STREAM"), "{}", human.stdout);
    assert!(human.stdout.contains("order-1"), "{}", human.stdout);
}

#[tokio::test]
async fn stream_shows_events_with_metadata_up_to_a_version_or_a_time() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited"]).await;
    let client = store.pool().get().await.expect("a connection");
    let between: String = client
        .query_one("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", &[])
        .await
        .expect("the server's clock")
        .get(0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    append(&store, "account-1", &["withdrawn"]).await;

    let all = run(&schema, &["stream", "account-1", "--json"]);
    assert_eq!(all.code, 0, "stderr: {}", all.stderr);
    let all = all.json();
    let events = all["events"].as_array().expect("a list");
    assert_eq!(events.len(), 3);
    assert_eq!(all["version"], 3);
    assert_eq!(events[0]["event_type"], "opened");
    assert_eq!(events[0]["payload"]["n"], 0);
    assert_eq!(events[0]["metadata"]["actor"], "tester");
    assert_eq!(events[2]["event_type"], "withdrawn");

    // Times print as RFC 3339, and `--at` takes them back: up to the second event.
    let second_at = events[1]["recorded_at"]
        .as_str()
        .expect("a time")
        .to_owned();
    assert!(
        second_at.ends_with('Z') && second_at.contains('T'),
        "{second_at}"
    );
    let at_printed = run(
        &schema,
        &["stream", "account-1", "--at", &second_at, "--json"],
    )
    .json();
    assert_eq!(at_printed["events"].as_array().map(Vec::len), Some(2));

    let at_version = run(&schema, &["stream", "account-1", "--at", "1", "--json"]).json();
    assert_eq!(at_version["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(at_version["version"], 1);

    let at_time = run(
        &schema,
        &["stream", "account-1", "--at", &between, "--json"],
    );
    assert_eq!(at_time.code, 0, "stderr: {}", at_time.stderr);
    let at_time = at_time.json();
    assert_eq!(
        at_time["events"].as_array().map(Vec::len),
        Some(2),
        "{at_time}"
    );

    for at in ["yesterday", "2026-99-99T00:00:00Z"] {
        let bad = run(&schema, &["stream", "account-1", "--at", at]);
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
    }

    let missing = run(&schema, &["stream", "nobody"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("stream `nobody` has no events"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn event_finds_one_by_id() {
    let (store, schema) = store().await;
    let ids = append(&store, "account-1", &["opened", "deposited"]).await;
    let id = ids[1].to_string();

    let found = run(&schema, &["event", &id, "--json"]);
    assert_eq!(found.code, 0, "stderr: {}", found.stderr);
    let event = found.json();
    assert_eq!(event["event_id"], id.as_str());
    assert_eq!(event["stream_id"], "account-1");
    assert_eq!(event["version"], 2);
    assert_eq!(event["event_type"], "deposited");
    assert_eq!(event["payload"]["n"], 1);

    let human = run(&schema, &["event", &id]);
    assert!(human.stdout.contains("deposited"), "{}", human.stdout);

    let missing = run(&schema, &["event", &uuid::Uuid::new_v4().to_string()]);
    assert_eq!(missing.code, 1);
    let not_a_uuid = run(&schema, &["event", "not-a-uuid"]);
    assert_eq!(not_a_uuid.code, 2);
}

#[tokio::test]
async fn a_reader_that_stops_early_is_no_error() {
    let (store, schema) = store().await;
    append(&store, "account-000", &["opened"]).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_annals"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", &common::url(), "--schema", &schema])
        .args(["stream", "account-000", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Closed before the binary writes anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("the binary exits");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
