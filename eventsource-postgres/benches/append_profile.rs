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
//! Run with: cargo bench -p eventsource-postgres --bench append_profile
//!
//! To count the client's instructions, run the built binary under callgrind with
//! `APPEND_PROFILE_STEP=<step>` so only that step runs. The server is the test cluster, so
//! these times leave out most of the disk's share that a server with `fsync` on adds.

use std::time::{Duration, Instant};

use eventsource::prelude::*;
use eventsource::{EventStore, Metadata, NewEvent};
use eventsource_postgres::testing::{fresh_config, fresh_store, ClusterOptions, TestCluster};

use account::{Account, AccountCommand, AccountEvent};

mod account;

const ACCOUNTS: usize = 1_000;
const COMMANDS: usize = 10_000;
/// Events per W4-shaped append.
const BATCH: usize = 100;
/// W4-shaped appends per step.
const BATCHES: usize = 300;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens `ACCOUNTS` accounts named `{prefix}-{n}` through `accounts`.
async fn open_accounts<S: EventStore>(
    accounts: &Repository<Account, S>,
    prefix: &str,
) -> Result<Vec<StreamId>, BoxError> {
    let mut ids = Vec::with_capacity(ACCOUNTS);
    for n in 0..ACCOUNTS {
        let id = StreamId::for_aggregate::<Account>(&format!("{prefix}-{n}"))?;
        accounts
            .execute(
                &id,
                AccountCommand::Open {
                    owner: "ann".into(),
                },
            )
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

fn per_command(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / COMMANDS as f64
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
        let ids = open_accounts(&accounts, "store").await?;
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
        let ids = open_accounts(&accounts, "repository").await?;
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

    if runs("batch-raw") {
        let client = store.pool().get().await?;
        let table = format!("\"{}\".raw_events", store.schema());
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (position bigserial PRIMARY KEY, stream_id text NOT NULL, \
                 version bigint NOT NULL, event_type text NOT NULL, payload jsonb NOT NULL, \
                 UNIQUE (stream_id, version))"
            ))
            .await?;
        let values: Vec<String> = (0..BATCH)
            .map(|i| {
                format!(
                    "($1::text, ${}::int8, 'Deposited', ${}::text::jsonb)",
                    2 * i + 2,
                    2 * i + 3
                )
            })
            .collect();
        let statement = client
            .prepare(&format!(
                "INSERT INTO {table} (stream_id, version, event_type, payload) VALUES {}",
                values.join(", ")
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
            started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64,
        ));
    }
    if runs("batch-insert") {
        let client = store.pool().get().await?;
        let values: Vec<String> = (0..BATCH)
            .map(|i| {
                let p = 4 * i;
                format!(
                    "($1::text, ${}::int8, ${}::uuid, 'Deposited', 1, ${}::text::json, \
                     ${}::text::json)",
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO \"{}\".events \
             (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
             VALUES {}",
            store.schema(),
            values.join(", ")
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
            started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64,
        ));
    }
    if runs("batch") {
        let mut ids = Vec::with_capacity(BATCHES);
        for n in 0..BATCHES {
            let id = StreamId::for_aggregate::<Account>(&format!("batch-{n}"))?;
            accounts
                .execute(
                    &id,
                    AccountCommand::Open {
                        owner: "ann".into(),
                    },
                )
                .await?;
            ids.push(id);
        }
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
            started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64,
        ));
    }

    println!("{COMMANDS} one-event appends over {ACCOUNTS} streams, mean per append");
    println!("| step | what | µs |");
    println!("|---|---|---:|");
    for (step, what, micros) in rows {
        println!("| {step} | {what} | {micros:.1} |");
    }
    Ok(())
}
