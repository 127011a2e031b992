//! Shared by the integration tests: a fresh schema on the test cluster, events appended with
//! annals' own types, and a run of the built binary.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;

use annals::{EventStore, ExpectedVersion, Metadata, NewEvent, Payload, StreamId};
use annals_postgres::testing::TestCluster;
use annals_postgres::{PgConfig, PgEventStore};

/// The test cluster's URL.
pub fn url() -> String {
    TestCluster::shared().url().to_owned()
}

/// A unique schema name.
pub fn unique_schema() -> String {
    format!("cli_{}", uuid::Uuid::new_v4().simple())
}

/// A migrated store in a schema of its own.
pub async fn store() -> (PgEventStore, String) {
    let schema = unique_schema();
    let store = PgEventStore::connect_with(&url(), PgConfig::default().with_schema(&schema))
        .await
        .expect("the test cluster accepts a store");
    (store, schema)
}

/// Appends events of `types` to `stream`, with actor `tester`. Returns their ids.
pub async fn append(store: &PgEventStore, stream: &str, types: &[&str]) -> Vec<uuid::Uuid> {
    let stream = StreamId::new(stream).expect("a valid stream id");
    let events: Vec<NewEvent> = types
        .iter()
        .enumerate()
        .map(|(i, event_type)| NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: event_type.to_string().into(),
            schema_version: 1,
            payload: Payload::from_json(format!(r#"{{"n":{i}}}"#)).expect("JSON"),
            metadata: Metadata::new().with_actor("tester"),
        })
        .collect();
    let ids = events.iter().map(|e| e.event_id).collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("the append succeeds");
    ids
}

/// What a run of the binary printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `annals --database-url <url> --schema <schema> <args>`.
pub fn run(schema: &str, args: &[&str]) -> Run {
    run_with_url(&url(), schema, args)
}

/// Runs the binary against `url`.
pub fn run_with_url(url: &str, schema: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_annals"))
        .env_remove("DATABASE_URL")
        .args(["--database-url", url, "--schema", schema])
        .args(args)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().expect("the binary exits"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
