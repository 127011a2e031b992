//! Where the time of a one-event command on PostgreSQL goes: W1's shape (one writer, deposits
//! round-robin over 1,000 accounts), taken apart. Each step runs the same number of one-event
//! appends and prints the mean time of one:
//!
//! - `insert`: a plain prepared `INSERT` of the same row, the floor for one round trip;
//! - `store`: `EventStore::append` with the exact expected version;
//! - `repository`: `Repository::execute` of a deposit, with its default cache.
//!
//! W4's shape (one command appending a hundred events to a new account) gets two steps of its
//! own, timed per append of `BATCH` events:
//!
//! - `batch-insert`: a plain prepared multi-row `INSERT` of the same rows;
//! - `batch`: `Repository::execute` of a deposit of `BATCH` events at once.
//!
//! Run with: cargo bench -p annals-postgres --bench append_profile
//!
//! To count the client's instructions, run the built binary under callgrind with
//! `APPEND_PROFILE_STEP=<step>` so only that step runs. The server is the test cluster, so
//! these times leave out most of the disk's share that a server with `fsync` on adds.

use std::time::{Duration, Instant};

use annals::prelude::*;
use annals::{EventStore, Metadata, NewEvent};
use annals_postgres::testing::{fresh_config, fresh_store, ClusterOptions, TestCluster};

use account::{open_accounts, Account, AccountCommand, AccountEvent};

mod account;

const ACCOUNTS: usize = 1_000;
const COMMANDS: usize = 10_000;
/// Events per W4-shaped append.
const BATCH: usize = 100;
/// W4-shaped appends per step.
const BATCHES: usize = 300;
/// W2's concurrent writers, each on accounts of its own.
const WRITERS: usize = 8;
/// Commands per W2 writer.
const PER_WRITER: usize = 2_000;
/// Accounts per W2 writer.
const WRITER_ACCOUNTS: usize = 125;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn per_command(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / COMMANDS as f64
}

fn per_batch(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / BATCHES as f64
}

/// The VALUES list of a `BATCH`-row INSERT whose `$1` is the stream and whose rows take
/// `per_row` parameters each: `row(p)` writes one row whose parameters start at `$p`.
fn values_list(per_row: usize, row: impl Fn(usize) -> String) -> String {
    (0..BATCH)
        .map(|i| row(2 + per_row * i))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let only = std::env::var("APPEND_PROFILE_STEP").ok();
    let runs = |name: &str| only.as_deref().is_none_or(|o| o == name);
    // A cluster of its own with `fsync` on, as the comparison harness runs, kept alive until
    // the end; otherwise the shared test cluster.
    let durable = match std::env::var("APPEND_PROFILE_DURABLE") {
        Ok(_) => Some(TestCluster::start_with(ClusterOptions::DURABLE)?),
        Err(_) => None,
    };
    let store = match &durable {
        Some(cluster) => cluster.store(fresh_config()).await?,
        None => fresh_store().await,
    };
    let accounts = Repository::<Account, _>::new(store.clone());
    let mut rows = Vec::new();

    if runs("insert") {
        let client = store.pool().get().await?;
        let sql = format!(
            "INSERT INTO \"{}\".events \
             (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
             VALUES ($1::text, $2::int8, $3::uuid, $4::text, $5::int4, $6::text::json, \
             $7::text::json)",
            store.schema()
        );
        let statement = client.prepare(&sql).await?;
        let started = Instant::now();
        for n in 0..COMMANDS {
            let stream = format!("insert-{}", n % ACCOUNTS);
            let version = i64::try_from(n / ACCOUNTS + 1)?;
            client
                .execute(
                    &statement,
                    &[
                        &stream,
                        &version,
                        &uuid::Uuid::now_v7(),
                        &"Deposited",
                        &1i32,
                        &r#"{"amount":7}"#,
                        &"{}",
                    ],
                )
                .await?;
        }
        rows.push(("insert", "prepared INSERT", per_command(started.elapsed())));
    }
    if runs("store") {
        let ids = open_accounts(&accounts, "store", ACCOUNTS).await?;
        let started = Instant::now();
        for n in 0..COMMANDS {
            let version = Version((n / ACCOUNTS + 1) as u64);
            let event = NewEvent::encode(&AccountEvent::Deposited { amount: 7 }, Metadata::new())?;
            store
                .append(
                    &ids[n % ACCOUNTS],
                    ExpectedVersion::Exact(version),
                    vec![event],
                )
                .await?;
        }
        rows.push((
            "store",
            "EventStore::append, exact version",
            per_command(started.elapsed()),
        ));
    }
    if runs("repository") {
        let ids = open_accounts(&accounts, "repository", ACCOUNTS).await?;
        let started = Instant::now();
        for n in 0..COMMANDS {
            accounts
                .execute(&ids[n % ACCOUNTS], AccountCommand::Deposit { amount: 7 })
                .await?;
        }
        rows.push((
            "repository",
            "Repository::execute, default cache",
            per_command(started.elapsed()),
        ));
    }

    // The comparison harness's raw table: the fewest columns and indexes an event needs.
    let raw_table = format!("\"{}\".raw_events", store.schema());
    if runs("batch-raw") || runs("w2-raw-loop") {
        store
            .pool()
            .get()
            .await?
            .batch_execute(&format!(
                "CREATE TABLE {raw_table} (position bigserial PRIMARY KEY, \
                 stream_id text NOT NULL, version bigint NOT NULL, event_type text NOT NULL, \
                 payload jsonb NOT NULL, UNIQUE (stream_id, version))"
            ))
            .await?;
    }
    if runs("batch-raw") {
        let client = store.pool().get().await?;
        let values = values_list(2, |p| {
            format!(
                "($1::text, ${}::int8, 'Deposited', ${}::text::jsonb)",
                p,
                p + 1
            )
        });
        let statement = client
            .prepare(&format!(
                "INSERT INTO {raw_table} (stream_id, version, event_type, payload) VALUES {values}"
            ))
            .await?;
        let started = Instant::now();
        for n in 0..BATCHES {
            let stream = format!("batch-raw-{n}");
            let versions: Vec<i64> = (1..=i64::try_from(BATCH)?).collect();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                Vec::with_capacity(1 + 2 * BATCH);
            params.push(&stream);
            for version in &versions {
                params.extend([
                    version as &(dyn tokio_postgres::types::ToSql + Sync),
                    &r#"{"amount":7}"#,
                ]);
            }
            client.execute(&statement, &params).await?;
        }
        rows.push((
            "batch-raw",
            "multi-row INSERT into a raw table (the harness's), per 100 events",
            per_batch(started.elapsed()),
        ));
    }
    if runs("batch-insert") {
        let client = store.pool().get().await?;
        let values = values_list(4, |p| {
            format!(
                "($1::text, ${}::int8, ${}::uuid, 'Deposited', 1, ${}::text::json, \
                 ${}::text::json)",
                p,
                p + 1,
                p + 2,
                p + 3
            )
        });
        let sql = format!(
            "INSERT INTO \"{}\".events \
             (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
             VALUES {values}",
            store.schema(),
        );
        let statement = client.prepare(&sql).await?;
        let started = Instant::now();
        for n in 0..BATCHES {
            let stream = format!("batch-insert-{n}");
            let versions: Vec<i64> = (1..=i64::try_from(BATCH)?).collect();
            let ids: Vec<uuid::Uuid> = (0..BATCH).map(|_| uuid::Uuid::now_v7()).collect();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                Vec::with_capacity(1 + 4 * BATCH);
            params.push(&stream);
            for (version, id) in versions.iter().zip(&ids) {
                params.extend([
                    version as &(dyn tokio_postgres::types::ToSql + Sync),
                    id,
                    &r#"{"amount":7}"#,
                    &"{}",
                ]);
            }
            client.execute(&statement, &params).await?;
        }
        rows.push((
            "batch-insert",
            "prepared multi-row INSERT, per 100 events",
            per_batch(started.elapsed()),
        ));
    }
    if runs("batch") {
        let ids = open_accounts(&accounts, "batch", BATCHES).await?;
        let started = Instant::now();
        for id in &ids {
            accounts
                .execute(
                    id,
                    AccountCommand::DepositMany {
                        count: BATCH as u32,
                        amount: 7,
                    },
                )
                .await?;
        }
        rows.push((
            "batch",
            "Repository::execute of 100 deposits, per command",
            per_batch(started.elapsed()),
        ));
    }

    if runs("w2-raw-loop") {
        let micros = w2_raw_loop(&store, &raw_table).await?;
        rows.push((
            "w2-raw-loop",
            "8 writers: SELECT + decode + INSERT into the raw table, per command",
            micros,
        ));
    }
    if runs("w2-insert") {
        let micros = w2_insert(&store).await?;
        rows.push((
            "w2-insert",
            "8 writers: plain INSERT into the events table, no check, per command",
            micros,
        ));
    }
    if runs("w2") {
        let micros = w2_repository(&store).await?;
        rows.push((
            "w2",
            "8 writers: Repository::execute, default cache, per command",
            micros,
        ));
    }

    println!("{COMMANDS} one-event appends over {ACCOUNTS} streams, mean per append");
    println!(
        "(W2 steps: wall time per command over all {WRITERS} writers; batch steps: per append)"
    );
    println!("| step | what | µs |");
    println!("|---|---|---:|");
    for (step, what, micros) in rows {
        println!("| {step} | {what} | {micros:.1} |");
    }
    Ok(())
}

/// The wall time per command of `WRITERS` tasks running `command(writer, n)` `PER_WRITER`
/// times each, at once.
async fn concurrently<F, Fut>(command: F) -> Result<f64, BoxError>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    let command = std::sync::Arc::new(command);
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let command = std::sync::Arc::clone(&command);
            tokio::spawn(async move {
                for n in 0..PER_WRITER {
                    command(writer, n).await?;
                }
                Ok::<(), BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / (WRITERS * PER_WRITER) as f64)
}

/// W2's raw command loop, as the comparison harness runs it: per command, SELECT the
/// account's rows from the raw table, decode each body, INSERT the next one.
async fn w2_raw_loop(store: &annals_postgres::PgEventStore, table: &str) -> Result<f64, BoxError> {
    #[derive(serde::Deserialize)]
    struct Amount {
        #[allow(dead_code)]
        amount: u64,
    }
    let mut clients = Vec::with_capacity(WRITERS);
    for writer in 0..WRITERS {
        let client = store.pool().get().await?;
        for account in 0..WRITER_ACCOUNTS {
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} (stream_id, version, event_type, payload) \
                         VALUES ($1, 1, 'Opened', '{{\"amount\":0}}')"
                    ),
                    &[&format!("raw-{writer}-{account}")],
                )
                .await?;
        }
        let select = client
            .prepare(&format!(
                "SELECT version, event_type, payload::text FROM {table} \
                 WHERE stream_id = $1 ORDER BY version"
            ))
            .await?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (stream_id, version, event_type, payload) \
                 VALUES ($1, $2, 'Deposited', $3::text::jsonb)"
            ))
            .await?;
        clients.push((client, select, insert));
    }
    let clients = std::sync::Arc::new(clients);
    concurrently(move |writer, n| {
        let clients = std::sync::Arc::clone(&clients);
        async move {
            let (client, select, insert) = &clients[writer];
            let stream = format!("raw-{writer}-{}", n % WRITER_ACCOUNTS);
            let mut version = 0_i64;
            for row in client.query(select, &[&stream]).await? {
                let payload: &str = row.try_get(2)?;
                serde_json::from_str::<Amount>(payload)?;
                version = row.try_get(0)?;
            }
            client
                .execute(insert, &[&stream, &(version + 1), &r#"{"amount":7}"#])
                .await?;
            Ok(())
        }
    })
    .await
}

/// W2's shape with the least an append into the events table can cost: a plain INSERT of
/// the row, with no version check and no stream turn.
async fn w2_insert(store: &annals_postgres::PgEventStore) -> Result<f64, BoxError> {
    let sql = format!(
        "INSERT INTO \"{}\".events \
         (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
         VALUES ($1::text, $2::int8, $3::uuid, 'Deposited', 1, $4::text::json, '{{}}'::json)",
        store.schema()
    );
    let mut clients = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        let client = store.pool().get().await?;
        let statement = client.prepare(&sql).await?;
        clients.push((client, statement));
    }
    let clients = std::sync::Arc::new(clients);
    concurrently(move |writer, n| {
        let clients = std::sync::Arc::clone(&clients);
        async move {
            let (client, statement) = &clients[writer];
            let stream = format!("w2-insert-{writer}-{}", n % WRITER_ACCOUNTS);
            let version = i64::try_from(n / WRITER_ACCOUNTS + 1)?;
            client
                .execute(
                    statement,
                    &[&stream, &version, &uuid::Uuid::now_v7(), &r#"{"amount":7}"#],
                )
                .await?;
            Ok(())
        }
    })
    .await
}

/// W2 through the repository: each writer's deposits into its own opened accounts.
async fn w2_repository(store: &annals_postgres::PgEventStore) -> Result<f64, BoxError> {
    let accounts = std::sync::Arc::new(Repository::<Account, _>::new(store.clone()));
    let mut ids = Vec::with_capacity(WRITERS);
    for writer in 0..WRITERS {
        ids.push(open_accounts(&accounts, &format!("w2-{writer}"), WRITER_ACCOUNTS).await?);
    }
    let ids = std::sync::Arc::new(ids);
    concurrently(move |writer, n| {
        let (accounts, ids) = (
            std::sync::Arc::clone(&accounts),
            std::sync::Arc::clone(&ids),
        );
        async move {
            accounts
                .execute(
                    &ids[writer][n % WRITER_ACCOUNTS],
                    AccountCommand::Deposit { amount: 7 },
                )
                .await?;
            Ok(())
        }
    })
    .await
}
