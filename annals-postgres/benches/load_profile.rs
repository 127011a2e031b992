//! Where the time of loading an aggregate from PostgreSQL goes: a 10,000-event stream written
//! through a `Repository` (so with the metadata a repository stamps), then loaded by each of
//! the steps below, each the median of 20 runs.
//!
//! Run with: cargo bench -p annals-postgres --bench load_profile
//!
//! To count the client's instructions, run the built binary under callgrind with
//! `LOAD_PROFILE_STEP=<step>` (one of the step names the table prints) so only that step runs.

use std::time::{Duration, Instant};

use annals::prelude::*;
use annals_postgres::testing::fresh_store;
use serde::Deserialize;

use account::{open_accounts, Account, AccountCommand};

mod account;

const EVENTS: u32 = 10_000;
const RUNS: usize = 20;

#[derive(Deserialize)]
struct Amount {
    amount: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The median of `RUNS` runs of `step`, which returns the balance it loaded.
async fn median<F, Fut>(expected: u64, mut step: F) -> Result<Duration, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, BoxError>>,
{
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let balance = step().await?;
        times.push(started.elapsed());
        if balance != expected {
            return Err(format!("loaded balance {balance}, expected {expected}").into());
        }
    }
    times.sort_unstable();
    Ok(times[RUNS / 2])
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let only = std::env::var("LOAD_PROFILE_STEP").ok();
    let store = fresh_store().await;
    let accounts = Repository::<Account, _>::new(store.clone());
    let id = open_accounts(&accounts, "a", 1)
        .await?
        .pop()
        .ok_or("no account was opened")?;
    for _ in 0..(EVENTS - 1) / 100 {
        accounts
            .execute(
                &id,
                AccountCommand::DepositMany {
                    count: 100,
                    amount: 7,
                },
            )
            .await?;
    }
    let left = (EVENTS - 1) % 100;
    if left > 0 {
        accounts
            .execute(
                &id,
                AccountCommand::DepositMany {
                    count: left,
                    amount: 7,
                },
            )
            .await?;
    }
    let expected = 7 * u64::from(EVENTS - 1);
    let client = store.pool().get().await?;
    let schema = store.schema().to_owned();

    let mut rows = Vec::new();
    let runs = |name: &str| only.as_deref().is_none_or(|o| o == name);

    if runs("repository") {
        let time = median(expected, || async {
            let cold = Repository::<Account, _>::new(store.clone()).with_cache_capacity(0);
            Ok(cold.load(&id).await?.state.balance)
        })
        .await?;
        rows.push(("repository", "Repository::load, cache off", time));
    }
    if runs("reader") {
        let time = median(expected, || async {
            let mut reader = store.stream_reader(&id, Version(1));
            let mut balance = 0;
            while let Some(batch) = reader.next_batch().await? {
                for event in batch {
                    if event.event_type == "Deposited" {
                        balance += serde_json::from_str::<Amount>(event.payload.as_str())?.amount;
                    }
                }
            }
            Ok(balance)
        })
        .await?;
        rows.push(("reader", "stream_reader + serde_json", time));
    }
    if runs("all-columns") {
        let sql = format!(
            "SELECT event_id, stream_id, version, position, tx_id::text::int8, event_type, \
             schema_version, payload::text, metadata::text, recorded_at \
             FROM \"{schema}\".events WHERE stream_id = $1 ORDER BY version"
        );
        let statement = client.prepare(&sql).await?;
        let time = median(expected, || async {
            let rows = client.query(&statement, &[&id.as_str()]).await?;
            let mut balance = 0;
            for row in &rows {
                if row.try_get::<_, &str>(5)? == "Deposited" {
                    balance += serde_json::from_str::<Amount>(row.try_get(7)?)?.amount;
                }
            }
            Ok(balance)
        })
        .await?;
        rows.push(("all-columns", "one query, every column + serde_json", time));
    }
    if runs("lean") {
        let sql = format!(
            "SELECT version, event_type, payload::text FROM \"{schema}\".events \
             WHERE stream_id = $1 ORDER BY version"
        );
        let statement = client.prepare(&sql).await?;
        let time = median(expected, || async {
            let rows = client.query(&statement, &[&id.as_str()]).await?;
            let mut balance = 0;
            for row in &rows {
                if row.try_get::<_, &str>(1)? == "Deposited" {
                    balance += serde_json::from_str::<Amount>(row.try_get(2)?)?.amount;
                }
            }
            Ok(balance)
        })
        .await?;
        rows.push((
            "lean",
            "one query, version + type + payload + serde_json",
            time,
        ));
    }

    println!("Loading a {EVENTS}-event stream from PostgreSQL, median of {RUNS}");
    println!("| step | what | ms |");
    println!("|---|---|---:|");
    for (step, what, time) in rows {
        println!("| {step} | {what} | {:.2} |", time.as_secs_f64() * 1_000.0);
    }
    Ok(())
}
