//! Every statement the store runs keeps an index plan whatever the events table's size, its
//! statistics and PostgreSQL's plan cache mode.
//!
//! A cluster of the test's own logs the plan of every statement it runs, nested ones (inside
//! `stream_turn`) included, with `auto_explain`. Stores on two databases, one forcing generic
//! plans and one forcing custom plans, run every kind of store call while the events table is
//! nearly empty (so plans are cached then), again after the table has grown to a few hundred
//! thousand events without new statistics, and again after `ANALYZE`. Any sequential or
//! bitmap scan of the events table, or a sort that spills to disk, fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use annals::{
    Checkpoint, Envelope, Event, EventStore, ExpectedVersion, HandlerError, Metadata, NewEvent,
    Payload, Snapshot, StreamAppend, StreamId, Version,
};
use annals_postgres::testing::TestCluster;
use annals_postgres::tokio_postgres::{self, NoTls, Transaction};
use annals_postgres::{Notifications, PgConfig, PgEventStore, PgProjection, PgProjectionRunner};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Events the grown table holds: a few hundred thousand, in many streams and one long one.
const GROWN_EVENTS: i64 = 300_000;
/// The events of the long stream among them.
const LONG_STREAM: i64 = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum Tick {
    Ticked { n: i64 },
}

fn tick(n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Ticked".into(),
        schema_version: 1,
        payload: Payload::from_json(format!(r#"{{"n":{n}}}"#)).unwrap(),
        metadata: Metadata::new(),
    }
}

fn ticks(count: i64) -> Vec<NewEvent> {
    (0..count).map(tick).collect()
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

/// A projection that only counts, so a batch runs the runner's statements.
struct Counter(u64);

#[async_trait]
impl PgProjection for Counter {
    type Event = Tick;

    fn name(&self) -> &str {
        "counter"
    }

    async fn handle(
        &mut self,
        _tx: &Transaction<'_>,
        _event: &Envelope<Tick>,
    ) -> Result<(), HandlerError> {
        self.0 += 1;
        Ok(())
    }
}

/// Runs every kind of store call once: appends of each shape (one event, many, several
/// streams, exact, any and no-stream expectations, a conflict, an exact retry, a reused id,
/// in the caller's transaction, with the notification in the transaction), reads of a stream
/// and of the global log from the start and from the middle, a replay of the long stream,
/// versions, event lookups, snapshots, checkpoints, a lease, a held turn, a wait for events
/// and a projection batch. `round` keeps stream names apart between runs.
async fn workload(store: &PgEventStore, notifying: &PgEventStore, round: &str) {
    let one = stream(&format!("one-{round}"));
    let many = stream(&format!("many-{round}"));
    let other = stream(&format!("other-{round}"));
    let long = stream("long-0");

    // Appends: one event with any expectation, then exact; many events; several streams.
    let first = tick(1);
    let first_of_round = first.event_id;
    let appends = [
        (&one, ExpectedVersion::Any, vec![first]),
        (&one, ExpectedVersion::Exact(Version(1)), vec![tick(2)]),
        (&one, ExpectedVersion::StreamExists, vec![tick(3)]),
        (&many, ExpectedVersion::NoStream, ticks(100)),
        (&many, ExpectedVersion::Exact(Version(100)), ticks(100)),
        (&many, ExpectedVersion::Any, ticks(100)),
    ];
    for (stream, expected, events) in appends {
        store.append(stream, expected, events).await.unwrap();
    }
    store
        .append_streams(vec![
            StreamAppend {
                stream_id: one.clone(),
                expected: ExpectedVersion::Exact(Version(3)),
                events: vec![tick(4)],
            },
            StreamAppend {
                stream_id: other.clone(),
                expected: ExpectedVersion::NoStream,
                events: ticks(2),
            },
        ])
        .await
        .unwrap();
    // A conflict, an exact retry and a reused event id take the slow path.
    let conflict = store
        .append(&one, ExpectedVersion::Exact(Version(1)), vec![tick(9)])
        .await;
    assert!(conflict.is_err(), "a stale expected version must conflict");
    let again = tick(5);
    store
        .append(
            &one,
            ExpectedVersion::Exact(Version(4)),
            vec![again.clone()],
        )
        .await
        .unwrap();
    let retried = store
        .append(
            &one,
            ExpectedVersion::Exact(Version(4)),
            vec![again.clone()],
        )
        .await
        .unwrap();
    assert!(!retried.written, "an exact retry writes nothing");
    let reused = store
        .append(
            &other,
            ExpectedVersion::Exact(Version(2)),
            vec![again.clone()],
        )
        .await;
    assert!(reused.is_err(), "a reused event id must be refused");
    // With the notification inside the append's transaction: the full append statement.
    notifying
        .append(&one, ExpectedVersion::Exact(Version(5)), vec![tick(6)])
        .await
        .unwrap();
    notifying
        .append(&many, ExpectedVersion::Exact(Version(300)), ticks(10))
        .await
        .unwrap();
    // In the caller's transaction.
    {
        let mut client = store.pool().get().await.unwrap();
        let mut tx = client.transaction().await.unwrap();
        store
            .append_in(
                &mut tx,
                vec![StreamAppend {
                    stream_id: other.clone(),
                    expected: ExpectedVersion::Exact(Version(2)),
                    events: vec![tick(3)],
                }],
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    // Reads of one stream: a page, a replay from the middle of the long stream, versions.
    let page = store.read_stream(&many, Version(50), 20).await.unwrap();
    assert_eq!(page.len(), 20);
    let long_version = store.stream_version(&long).await.unwrap();
    let mut replayed = 0;
    store
        .replay_stream(&long, Version(long_version.0 / 2), 100_000, &mut |_| {
            replayed += 1;
            std::ops::ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert!(replayed > 0);
    assert!(store.read_event(again.event_id).await.unwrap().is_some());
    assert!(store.read_event(Uuid::new_v4()).await.unwrap().is_none());

    // The global log: from the start, from the middle, its head, waiting for more.
    let first = store.read_all(Checkpoint::START, 500).await.unwrap();
    assert!(first.len() > 300);
    let head = store.log_head().await.unwrap();
    let middle = first[first.len() / 2].checkpoint();
    assert!(!store.read_all(middle, 1000).await.unwrap().is_empty());
    assert!(store.read_all(head, 10).await.unwrap().is_empty());
    // With no time to wait, the answer is the check for visible events alone (a wait may also
    // end on a notification of an earlier append).
    assert!(store.wait_for_events(middle, Duration::ZERO).await.unwrap());
    assert!(!store.wait_for_events(head, Duration::ZERO).await.unwrap());

    // Snapshots and checkpoints.
    let snapshot = Snapshot {
        stream_id: one.clone(),
        version: Version(6),
        snapshot_version: 1,
        state: Payload::from_json(r#"{"n":6}"#).unwrap(),
        taken_at: std::time::SystemTime::now(),
    };
    store.save_snapshot(snapshot).await.unwrap();
    assert!(store.load_snapshot(&one).await.unwrap().is_some());
    let name = format!("reader-{round}");
    store.save_checkpoint(&name, middle).await.unwrap();
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), Some(middle));
    store
        .save_checkpoint_if(&name, Some(middle), head)
        .await
        .unwrap();

    // A lease and a held turn.
    let lease = store.acquire_lease(&name).await.unwrap();
    drop(lease);
    let mut turn = store
        .hold_turn(&one)
        .await
        .unwrap()
        .expect("a PostgreSQL turn");
    let mut seen = 0;
    turn.replay(Version(1), 100, &mut |_| {
        seen += 1;
        std::ops::ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(seen, 6);
    assert!(turn.read_event(again.event_id).await.unwrap().is_some());
    turn.append_and_release(ExpectedVersion::Exact(Version(6)), vec![tick(7)])
        .await
        .unwrap();

    // A projection batch, from just before this round's first event.
    let start = store
        .read_event(first_of_round)
        .await
        .unwrap()
        .unwrap()
        .checkpoint();
    store.save_checkpoint("counter", start).await.unwrap();
    let mut runner = PgProjectionRunner::new(store.clone(), Counter(0));
    assert!(runner.catch_up().await.unwrap() > 0);
}

/// One plan `auto_explain` logged: the statement and its plan tree.
struct Logged {
    query: String,
    plan: Value,
}

/// The plans logged in `log` (the server log's text), in order.
fn logged_plans(log: &str) -> Vec<Logged> {
    let mut plans = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.trim_end().ends_with("plan:") {
            continue;
        }
        let mut json = String::new();
        while let Some(next) = lines.peek() {
            match next.strip_prefix('\t') {
                Some(rest) => {
                    json.push_str(rest);
                    json.push('\n');
                    lines.next();
                }
                None => break,
            }
        }
        let parsed: Value = serde_json::from_str(&json).unwrap_or_else(|e| {
            panic!("auto_explain logged a plan that is not JSON ({e}):\n{json}")
        });
        plans.push(Logged {
            query: parsed["Query Text"].as_str().unwrap_or_default().to_owned(),
            plan: parsed["Plan"].clone(),
        });
    }
    plans
}

/// Every node of `plan`, depth first.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut all = vec![plan];
    if let Some(children) = plan["Plans"].as_array() {
        for child in children {
            all.extend(nodes(child));
        }
    }
    all
}

/// What is wrong with the plans logged since `from` (a byte offset into the server log), and
/// the index scans of the events table they hold.
fn check_plans(cluster: &TestCluster, from: usize, phase: &str) -> (Vec<String>, BTreeSet<String>) {
    let log = cluster
        .server_log()
        .expect("the test's own cluster has a log");
    let plans = logged_plans(&log[from..]);
    let mut problems = Vec::new();
    let mut index_scans = BTreeSet::new();
    for logged in &plans {
        for node in nodes(&logged.plan) {
            let kind = node["Node Type"].as_str().unwrap_or_default();
            let relation = node["Relation Name"].as_str().unwrap_or_default();
            if relation == "events" {
                match kind {
                    "Seq Scan" | "Bitmap Heap Scan" => problems.push(format!(
                        "{phase}: {kind} of the events table ({}) in:\n{}\n",
                        node["Filter"]
                            .as_str()
                            .or(node["Recheck Cond"].as_str())
                            .unwrap_or_default(),
                        logged.query
                    )),
                    "Index Scan" | "Index Only Scan" => {
                        index_scans
                            .insert(node["Index Name"].as_str().unwrap_or_default().to_owned());
                    }
                    _ => {}
                }
            }
            if kind == "Sort" && node["Sort Space Type"].as_str() == Some("Disk") {
                problems.push(format!(
                    "{phase}: a sort spilled to disk in:\n{}\n",
                    logged.query
                ));
            }
        }
    }
    assert!(
        plans.len() >= 40,
        "{phase}: only {} plans were logged: is auto_explain on?",
        plans.len()
    );
    print_plans(phase, &plans);
    (problems, index_scans)
}

/// Prints how each statement reads the events table (shown with `--nocapture`).
fn print_plans(phase: &str, plans: &[Logged]) {
    let mut reads: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for logged in plans {
        let statement: String = logged
            .query
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let horizon_end = "END AS tx FROM snapshot)";
        let shown = match statement.find(horizon_end) {
            // The global log's statements share the horizon: show what follows it.
            Some(at) => format!("WITH <horizon> {}", &statement[at + horizon_end.len()..]),
            None => statement,
        };
        let shown: String = shown.chars().take(110).collect();
        let entry = reads.entry(shown).or_default();
        for node in nodes(&logged.plan) {
            if node["Relation Name"].as_str() == Some("events") {
                entry.insert(format!(
                    "{} {} {} ({})",
                    node["Node Type"].as_str().unwrap_or_default(),
                    node["Scan Direction"].as_str().unwrap_or_default(),
                    node["Index Name"].as_str().unwrap_or_default(),
                    node["Index Cond"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    println!("\n{phase}: how each statement reads the events table");
    for (statement, scans) in reads {
        let scans: Vec<String> = scans.into_iter().collect();
        println!("- {statement}\n    {}", scans.join("\n    "));
    }
}

/// Grows `schema`'s events table by [`GROWN_EVENTS`] rows, as appends would write them: many
/// streams, and the long stream `long-0` after its first event, in transactions of 10,000
/// events.
async fn grow(admin: &tokio_postgres::Client, schema: &str) {
    let chunk = 10_000;
    for start in (0..GROWN_EVENTS).step_by(chunk as usize) {
        let sql = if start < LONG_STREAM {
            format!(
                "INSERT INTO \"{schema}\".events \
                   (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
                 SELECT 'long-0', g + 2, gen_random_uuid(), 'Ticked', 1, \
                        json_build_object('n', g), '{{}}' \
                 FROM generate_series({start}, {start} + {chunk} - 1) AS g"
            )
        } else {
            format!(
                "INSERT INTO \"{schema}\".events \
                   (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
                 SELECT 'grown-' || (g % 5000), g / 5000 + 1, gen_random_uuid(), 'Ticked', 1, \
                        json_build_object('n', g), '{{}}' \
                 FROM generate_series({start}, {start} + {chunk} - 1) AS g"
            )
        };
        admin.batch_execute(&sql).await.unwrap();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_statements_keep_index_plans_at_any_size_and_plan_cache_mode() {
    let cluster = TestCluster::start().unwrap();
    let admin = connect(cluster.url()).await;
    let base = cluster.url().rsplit_once('/').unwrap().0.to_owned();
    let mut problems = Vec::new();
    let mut index_scans = BTreeSet::new();
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let database = format!("plans_{mode}");
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {database} SET plan_cache_mode = {mode}; \
                 ALTER DATABASE {database} SET session_preload_libraries = 'auto_explain'; \
                 ALTER DATABASE {database} SET auto_explain.log_min_duration = 0; \
                 ALTER DATABASE {database} SET auto_explain.log_analyze = on; \
                 ALTER DATABASE {database} SET auto_explain.log_timing = off; \
                 ALTER DATABASE {database} SET auto_explain.log_nested_statements = on; \
                 ALTER DATABASE {database} SET auto_explain.log_format = json"
            ))
            .await
            .unwrap();
        let url = format!("{base}/{database}");
        let schema = "plans";
        // A small pool, so the connections that cached plans while the table was nearly
        // empty are the ones that run the statements after it grew.
        let config = PgConfig::default().with_schema(schema).with_pool_size(2);
        let store = PgEventStore::connect_with(&url, config.clone())
            .await
            .unwrap();
        let notifying = PgEventStore::connect_with(
            &url,
            config.with_notifications(Notifications::InTransaction),
        )
        .await
        .unwrap();
        let db = connect(&url).await;
        // Statistics of an empty table: the planner is told it holds nothing.
        db.batch_execute(&format!("ANALYZE \"{schema}\".events"))
            .await
            .unwrap();
        store
            .append(&stream("long-0"), ExpectedVersion::NoStream, ticks(1))
            .await
            .unwrap();

        let mark = cluster.server_log().unwrap().len();
        workload(&store, &notifying, "small").await;
        let (found, _) = check_plans(&cluster, mark, &format!("{mode}, nearly empty"));
        problems.extend(found);

        // The table grows under the cached plans, with the statistics of the empty table.
        grow(&db, schema).await;
        let mark = cluster.server_log().unwrap().len();
        workload(&store, &notifying, "grown").await;
        let (found, scans) =
            check_plans(&cluster, mark, &format!("{mode}, grown, stale statistics"));
        problems.extend(found);
        index_scans.extend(scans);

        db.batch_execute(&format!("ANALYZE \"{schema}\".events"))
            .await
            .unwrap();
        let mark = cluster.server_log().unwrap().len();
        workload(&store, &notifying, "analyzed").await;
        let (found, scans) = check_plans(&cluster, mark, &format!("{mode}, grown, analyzed"));
        problems.extend(found);
        index_scans.extend(scans);
    }
    assert!(
        problems.is_empty(),
        "plans that degrade:\n{}",
        problems.join("\n")
    );
    for index in [
        "events_pkey",
        "events_stream_version_key",
        "events_event_id_key",
    ] {
        assert!(
            index_scans.contains(index),
            "no statement walked {index}: {index_scans:?}"
        );
    }
}
