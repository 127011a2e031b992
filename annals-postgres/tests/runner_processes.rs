//! Exactly once with runners in several processes, killed with SIGKILL at random points.
//!
//! This test starts four copies of itself, each running a `PgProjectionRunner` of the same
//! projection, whose read model is a table with no unique constraint: an event applied twice
//! would be a second row. While the parent appends events, it kills a random runner process
//! (SIGKILL: no destructor runs, a batch transaction may be in flight) and starts another, at
//! least 30 times. Then it stops them all, catches up itself, and checks that every event is
//! in the read model exactly once.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use annals::{
    stop_signal, Envelope, Event, EventStore, ExpectedVersion, HandlerError, NewEvent, Payload,
    StreamId,
};
use annals_postgres::testing::{fresh_config, TestCluster};
use annals_postgres::tokio_postgres::Transaction;
use annals_postgres::{PgConfig, PgEventStore, PgProjection, PgProjectionRunner};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

const RUNNERS: usize = 4;
const EVENTS: i64 = 3_000;
const KILLS: usize = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum Tick {
    Ticked { n: i64 },
}

/// One row per event handled.
struct Seen {
    table: String,
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
            &format!("INSERT INTO {} (n) VALUES ($1)", self.table),
            &[&n],
        )
        .await?;
        Ok(())
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match (
        std::env::var("SEEN_URL"),
        std::env::var("SEEN_SCHEMA"),
        std::env::var("SEEN_TABLE"),
    ) {
        (Ok(url), Ok(schema), Ok(table)) => runtime.block_on(run(url, schema, table)),
        _ => runtime.block_on(coordinate()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runner_processes: {error}");
            println!("test result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

/// A runner process: runs the projection until it is killed.
async fn run(url: String, schema: String, table: String) -> Result<(), Error> {
    let store = PgEventStore::connect_with(
        &url,
        PgConfig::default()
            .with_schema(schema)
            .with_pool_size(3)
            .with_poll_interval(Duration::from_millis(50)),
    )
    .await?;
    let batch = 1 + std::process::id() as usize % 40;
    let mut runner = PgProjectionRunner::new(store, Seen { table }).with_batch_size(batch);
    let (_stopper, stop) = stop_signal();
    runner.run(stop).await?;
    Ok(())
}

/// The parent: appends, kills and restarts runners, checks the read model.
async fn coordinate() -> Result<(), Error> {
    let cluster = TestCluster::shared();
    let config = fresh_config();
    let store = cluster.store(config.clone()).await?;
    let table = format!("{}.seen", config.schema);
    store
        .pool()
        .get()
        .await?
        .batch_execute(&format!("CREATE TABLE {table} (n bigint NOT NULL)"))
        .await?;
    let exe = std::env::current_exe()?;
    let spawn = || -> Result<Child, Error> {
        Ok(Command::new(&exe)
            .env("SEEN_URL", cluster.url())
            .env("SEEN_SCHEMA", &config.schema)
            .env("SEEN_TABLE", &table)
            .stdout(Stdio::null())
            .spawn()?)
    };
    let mut runners: Vec<Child> = (0..RUNNERS).map(|_| spawn()).collect::<Result<_, _>>()?;

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(5) {
                let events = chunk
                    .iter()
                    .map(|n| {
                        Payload::from_value(&serde_json::json!({ "n": n }))
                            .map(|body| NewEvent::new("Ticked", 1, body))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let id = StreamId::new(format!("clock-{}", chunk[0] % 7))?;
                store.append(&id, ExpectedVersion::Any, events).await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok::<(), Error>(())
        })
    };
    let mut seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let mut kills = 0;
    while !writer.is_finished() || kills < KILLS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(10 + seed % 150)).await;
        let victim = (seed >> 33) as usize % RUNNERS;
        runners[victim].kill()?; // SIGKILL, wherever it is
        runners[victim].wait()?;
        runners[victim] = spawn()?;
        kills += 1;
    }
    writer.await??;
    // Give the survivors a moment to work, then stop them the hard way too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for mut runner in runners {
        runner.kill()?;
        runner.wait()?;
    }
    PgProjectionRunner::new(
        store.clone(),
        Seen {
            table: table.clone(),
        },
    )
    .catch_up()
    .await?;

    let client = store.pool().get().await?;
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT n), min(n), max(n) FROM {table}"),
            &[],
        )
        .await?;
    let (count, distinct, min, max): (i64, i64, Option<i64>, Option<i64>) = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    );
    if (count, distinct, min, max) != (EVENTS, EVENTS, Some(0), Some(EVENTS - 1)) {
        return Err(format!(
            "after {kills} kills the read model holds {count} rows of {distinct} events \
             ({min:?} to {max:?}) for {EVENTS} events"
        )
        .into());
    }
    println!("runner_processes: {RUNNERS} runner processes, {kills} SIGKILLs, {EVENTS} events, each applied once");
    println!("test result: ok. 1 passed; 0 failed");
    Ok(())
}
