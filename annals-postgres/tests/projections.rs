//! Projections on PostgreSQL whose read model is written through the runner's transaction:
//! a handler that fails midway, or a runner killed midway, leaves every event applied exactly
//! once after a restart; a rebuild replays the log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use annals::{
    stop_signal, Checkpoint, Envelope, Event, EventStore, EventStoreExt, ExpectedVersion,
    HandlerError, HandlerRetry, NewEvent, Payload, RunError, StreamId, UnknownEvents,
};
use annals_postgres::testing::fresh_store;
use annals_postgres::tokio_postgres::Transaction;
use annals_postgres::{PgEventStore, PgProjection, PgProjectionRunner};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum Tick {
    Ticked { n: i64 },
}

/// Writes one row per event into `<schema>.seen`, which has no unique constraint: a
/// duplicate delivery would show as a second row.
struct Seen {
    table: String,
    /// Fail on this `n` this many more times, after writing its row.
    fail_on: Option<(i64, u32)>,
}

#[async_trait]
impl PgProjection for Seen {
    type Event = Tick;

    fn name(&self) -> &str {
        "seen"
    }

    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &Envelope<Tick>,
    ) -> Result<(), HandlerError> {
        let Tick::Ticked { n } = event.event;
        tx.execute(
            &format!("INSERT INTO {} (event_id, n) VALUES ($1, $2)", self.table),
            &[&event.event_id, &n],
        )
        .await?;
        if let Some((bad, left)) = &mut self.fail_on {
            if *bad == n && *left > 0 {
                *left -= 1;
                return Err(format!("failing on {n} after writing its row").into());
            }
        }
        Ok(())
    }

    async fn reset(&mut self, tx: &Transaction<'_>) -> Result<(), HandlerError> {
        tx.execute(&format!("DELETE FROM {}", self.table), &[])
            .await?;
        Ok(())
    }
}

async fn setup() -> (PgEventStore, String) {
    let store = fresh_store().await;
    let schema = format!("rm_{}", Uuid::new_v4().simple());
    let client = store.pool().get().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.seen (event_id uuid NOT NULL, n bigint NOT NULL)"
        ))
        .await
        .unwrap();
    (store, format!("{schema}.seen"))
}

async fn append(store: &PgEventStore, from: i64, to: i64) {
    for chunk in (from..to).collect::<Vec<_>>().chunks(10) {
        let events = chunk
            .iter()
            .map(|n| {
                NewEvent::new(
                    "Ticked",
                    1,
                    Payload::from_value(&serde_json::json!({ "n": n })).unwrap(),
                )
            })
            .collect();
        let id = StreamId::new(format!("clock-{}", chunk[0] % 3)).unwrap();
        store
            .append(&id, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

async fn rows(store: &PgEventStore, table: &str) -> (i64, i64, Vec<i64>) {
    let client = store.pool().get().await.unwrap();
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT event_id) FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    let ns = client
        .query(&format!("SELECT n FROM {table} ORDER BY n"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect();
    (row.get(0), row.get(1), ns)
}

#[tokio::test]
async fn a_handler_failing_midway_then_restarted_applies_each_event_once() {
    let (store, table) = setup().await;
    append(&store, 0, 120).await;
    let retry = HandlerRetry {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
    };
    let seen = Seen {
        table: table.clone(),
        fail_on: Some((77, 2)),
    };
    let mut runner = PgProjectionRunner::new(store.clone(), seen)
        .with_batch_size(25)
        .with_retry(retry);
    let error = runner.catch_up().await.unwrap_err();
    assert!(
        matches!(error, RunError::Handler { attempts: 2, .. }),
        "{error:?}"
    );
    // The batch holding 77 rolled back whole, its checkpoint with it.
    let (count, distinct, _) = rows(&store, &table).await;
    assert_eq!(count, distinct);
    assert!(
        count < 120 && count % 25 == 0,
        "only whole batches committed: {count}"
    );
    let committed = store.load_checkpoint("seen").await.unwrap();
    assert_eq!(committed.is_some(), count > 0);

    // Restarted: a new runner resumes from the committed checkpoint.
    let seen = Seen {
        table: table.clone(),
        fail_on: None,
    };
    let mut runner = PgProjectionRunner::new(store.clone(), seen).with_batch_size(25);
    runner.catch_up().await.unwrap();
    let (count, distinct, ns) = rows(&store, &table).await;
    assert_eq!((count, distinct), (120, 120), "every event exactly once");
    assert_eq!(ns, (0..120).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_midway_applies_each_event_once_after_restarts() {
    for _ in 0..rounds(1) {
        a_runner_killed_midway().await;
    }
}

async fn a_runner_killed_midway() {
    let (store, table) = setup().await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { append(&store, 0, 600).await })
    };
    for round in 0..12u64 {
        let (_stopper, stop) = stop_signal();
        let seen = Seen {
            table: table.clone(),
            fail_on: None,
        };
        let mut runner = PgProjectionRunner::new(store.clone(), seen)
            .with_batch_size(7)
            .with_poll_interval(Duration::from_millis(20));
        let task = tokio::spawn(async move { runner.run(stop).await });
        tokio::time::sleep(Duration::from_millis(20 + 7 * (round % 5))).await;
        task.abort();
        let _ = task.await;
    }
    writer.await.unwrap();
    let seen = Seen {
        table: table.clone(),
        fail_on: None,
    };
    let mut runner = PgProjectionRunner::new(store.clone(), seen);
    runner.catch_up().await.unwrap();
    let (count, distinct, ns) = rows(&store, &table).await;
    assert_eq!(
        (count, distinct),
        (600, 600),
        "no event lost, none applied twice"
    );
    assert_eq!(ns, (0..600).collect::<Vec<_>>());
}

/// How many times the hammering tests repeat (`HAMMER_ROUNDS`, default 1).
fn rounds(base: u64) -> u64 {
    let factor = std::env::var("HAMMER_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    base * factor
}

/// Four runners of one projection, started together on stores of their own (as four
/// processes would be), aborted and restarted at random points while 10,000 events are
/// appended: every event is in the read model exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_number_of_runners_killed_at_random_apply_each_event_once() {
    for _ in 0..rounds(1) {
        let (store, table) = setup().await;
        let config = store.config().clone();
        let mut stores = Vec::new();
        for _ in 0..4 {
            let store = annals_postgres::testing::TestCluster::shared()
                .store(config.clone().with_pool_size(4))
                .await
                .unwrap();
            stores.push(store);
        }
        const EVENTS: i64 = 10_000;
        let writer = {
            let store = store.clone();
            tokio::spawn(async move { append(&store, 0, EVENTS).await })
        };
        let start = |n: usize| {
            let seen = Seen {
                table: table.clone(),
                fail_on: None,
            };
            let mut runner = PgProjectionRunner::new(stores[n].clone(), seen)
                .with_batch_size(1 + 13 * n)
                .with_poll_interval(Duration::from_millis(20));
            let (stopper, stop) = stop_signal();
            (stopper, tokio::spawn(async move { runner.run(stop).await }))
        };
        let mut running: Vec<_> = (0..4).map(start).collect();
        let mut seed = Uuid::new_v4().as_u64_pair().0;
        let mut kills = 0;
        while !writer.is_finished() || kills < 40 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(1 + seed % 25)).await;
            let victim = (seed >> 33) as usize % running.len();
            running[victim].1.abort(); // killed wherever it is
            let _ = (&mut running[victim].1).await;
            running[victim] = start(victim);
            kills += 1;
        }
        writer.await.unwrap();
        for (stopper, task) in running {
            stopper.stop();
            task.await.unwrap().unwrap();
        }
        let seen = Seen {
            table: table.clone(),
            fail_on: None,
        };
        PgProjectionRunner::new(store.clone(), seen)
            .catch_up()
            .await
            .unwrap();
        let (count, distinct, ns) = rows(&store, &table).await;
        assert_eq!(
            (count, distinct),
            (EVENTS, EVENTS),
            "{kills} kills: every event in the read model exactly once"
        );
        assert_eq!(ns, (0..EVENTS).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_rebuild_clears_the_read_model_and_replays_the_log() {
    for _ in 0..rounds(1) {
        a_rebuild().await;
    }
}

async fn a_rebuild() {
    let (store, table) = setup().await;
    append(&store, 0, 40).await;
    let mut runner = PgProjectionRunner::new(
        store.clone(),
        Seen {
            table: table.clone(),
            fail_on: None,
        },
    );
    assert_eq!(runner.catch_up().await.unwrap(), 40);
    runner.rebuild().await.unwrap();
    assert_eq!(rows(&store, &table).await.0, 0);
    assert_eq!(
        store.load_checkpoint("seen").await.unwrap(),
        Some(Checkpoint::START)
    );
    assert_eq!(runner.catch_up().await.unwrap(), 40);
    assert_eq!(rows(&store, &table).await.0, 40);
    // The log itself decodes the same way the runner saw it.
    let mut reader = store.log_reader(Checkpoint::START);
    let first = reader
        .next_decoded::<Tick>(UnknownEvents::Fail)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.len(), 40);
}
