//! Where the time of a one-event command on PostgreSQL goes: W1's shape (one writer, deposits
//! round-robin over 1,000 accounts), taken apart. Each step runs the same number of one-event
//! appends and prints the mean time of one:
//!
//! - `insert`: a plain prepared `INSERT` of the same row, the floor for one round trip;
//! - `store`: `EventStore::append` with the exact expected version;
//! - `repository`: `Repository::execute` of a deposit, with its default cache.
//!
//! Run with: cargo bench -p eventsource-postgres --bench append_profile
//!
//! To count the client's instructions, run the built binary under callgrind with
//! `APPEND_PROFILE_STEP=<step>` so only that step runs. The server is the test cluster, so
//! these times leave out most of the disk's share that a server with `fsync` on adds.

use std::time::{Duration, Instant};

use eventsource::prelude::*;
use eventsource::{EventStore, Metadata, NewEvent};
use eventsource_postgres::testing::fresh_store;

use account::{Account, AccountCommand, AccountEvent};

mod account;

const ACCOUNTS: usize = 1_000;
const COMMANDS: usize = 10_000;

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
    let store = fresh_store().await;
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

    println!("{COMMANDS} one-event appends over {ACCOUNTS} streams, mean per append");
    println!("| step | what | µs |");
    println!("|---|---|---:|");
    for (step, what, micros) in rows {
        println!("| {step} | {what} | {micros:.1} |");
    }
    Ok(())
}
