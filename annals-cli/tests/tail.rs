#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `annals tail`, against appends made while it runs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{append, store, url};

/// Starts `annals tail --json` with `args`, and waits until it follows the log.
fn spawn_tail(schema: &str, args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals"))
        .env_remove("DATABASE_URL")
        .args([
            "--database-url",
            &url(),
            "--schema",
            schema,
            "tail",
            "--json",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("stderr is readable");
    assert!(line.starts_with("following schema"), "{line}");
    child
}

/// Waits (at most 30 s) for the process to exit, and returns its code and stdout lines.
fn finish(mut child: Child) -> (i32, Vec<serde_json::Value>) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect();
        let _ = sender.send(lines);
    });
    let Ok(lines) = receiver.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("tail did not exit within 30 s");
    };
    let code = child
        .wait()
        .expect("the process ends")
        .code()
        .expect("an exit code");
    let events = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    (code, events)
}

#[tokio::test]
async fn tail_prints_events_appended_while_it_runs() {
    let (store, schema) = store().await;
    // Before the tail starts: not printed, it starts at the head.
    append(&store, "account-0", &["opened"]).await;
    let child = spawn_tail(
        &schema,
        &[
            "--limit",
            "3",
            "--type",
            "opened,deposited",
            "--stream-prefix",
            "account-",
        ],
    );
    append(&store, "order-1", &["placed", "opened"]).await;
    append(&store, "account-1", &["opened", "closed", "deposited"]).await;
    append(&store, "account-2", &["opened"]).await;
    append(&store, "account-3", &["opened"]).await;

    let (code, events) = finish(child);
    assert_eq!(code, 0);
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["stream_id"].as_str().unwrap().to_owned(),
                e["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("account-1".to_owned(), "opened".to_owned()),
            ("account-1".to_owned(), "deposited".to_owned()),
            ("account-2".to_owned(), "opened".to_owned()),
        ]
    );
    assert_eq!(events[1]["version"], 3);
    assert_eq!(events[1]["payload"]["n"], 2);
    assert_eq!(events[1]["metadata"]["actor"], "tester");
    assert!(events[1]["recorded_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn tail_starts_from_a_position() {
    let (store, schema) = store().await;
    append(&store, "account-1", &["opened", "deposited", "withdrawn"]).await;
    let client = store.pool().get().await.expect("a connection");
    let second: i64 = client
        .query_one(
            &format!("SELECT position FROM \"{schema}\".events WHERE version = 2"),
            &[],
        )
        .await
        .expect("the second event")
        .get(0);
    let child = spawn_tail(
        &schema,
        &["--from-position", &second.to_string(), "--limit", "3"],
    );
    append(&store, "account-1", &["closed"]).await;

    let (code, events) = finish(child);
    assert_eq!(code, 0);
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["deposited", "withdrawn", "closed"]);
    assert_eq!(events[0]["position"], second);
}

#[tokio::test]
async fn tail_stops_on_ctrl_c() {
    let (_store, schema) = store().await;
    let child = spawn_tail(&schema, &[]);
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let (code, events) = finish(child);
    assert_eq!(code, 0);
    assert!(events.is_empty());
}

#[tokio::test]
async fn tail_prints_an_event_the_library_cannot_read_as_stored() {
    let (store, schema) = store().await;
    let client = store.pool().get().await.expect("a connection");
    // Written around the library: its metadata's correlation id is not a UUID.
    let odd: i64 = client
        .query_one(
            &format!(
                "INSERT INTO \"{schema}\".events
                   (stream_id, version, event_id, event_type, schema_version, payload, metadata)
                 VALUES ('account-9', 1, gen_random_uuid(), 'opened', 1, '{{\"n\": 7}}',
                         '{{\"correlation_id\": \"not-a-uuid\"}}')
                 RETURNING position"
            ),
            &[],
        )
        .await
        .expect("the insert")
        .get(0);
    let child = spawn_tail(
        &schema,
        &["--from-position", &odd.to_string(), "--limit", "2"],
    );
    append(&store, "account-1", &["opened"]).await;

    let (code, events) = finish(child);
    assert_eq!(code, 0);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["position"], odd);
    assert_eq!(events[0]["stream_id"], "account-9");
    assert_eq!(events[0]["payload"]["n"], 7);
    assert_eq!(events[0]["metadata"]["correlation_id"], "not-a-uuid");
    assert_eq!(events[1]["stream_id"], "account-1");
    assert_eq!(events[1]["metadata"]["actor"], "tester");
}
