//! The repository's cache of aggregate states is correct with writers in several processes.
//!
//! This test starts three copies of itself as writer processes. Each has its own `Repository`
//! (and so its own cache) over its own connection pool, and runs deposits and withdrawals on
//! the same few accounts, deciding on cached states without reading the stream first. An
//! account may never go below zero, so a withdrawal decided on a stale balance would show as
//! a negative running balance in the log. The parent then replays every account's log and
//! checks that no balance ever went negative, that every accepted command is in the log once,
//! and that the writers' own tallies match it.

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use annals::prelude::*;
use annals::{EventStoreExt, RepositoryError};
use annals_postgres::testing::{fresh_config, TestCluster};
use annals_postgres::{PgConfig, PgEventStore};
use serde::{Deserialize, Serialize};

const WRITERS: usize = 3;
const COMMANDS: u64 = 300;
const ACCOUNTS: u64 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Till)]
enum TillEvent {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Till)]
enum TillCommand {
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Debug)]
struct Insufficient;

impl std::fmt::Display for Insufficient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("insufficient funds")
    }
}

impl std::error::Error for Insufficient {}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(event = TillEvent, command = TillCommand, error = Insufficient)]
struct Till {
    balance: u64,
}

impl Till {
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }
    fn withdrawn(&mut self, amount: &u64) {
        // A decision on a stale state would underflow here, and the replay would see it.
        self.balance = self.balance.wrapping_sub(*amount);
    }
    fn deposit(&self, amount: &u64) -> Result<Vec<TillEvent>, Insufficient> {
        Ok(vec![TillEvent::Deposited { amount: *amount }])
    }
    fn withdraw(&self, amount: &u64) -> Result<Vec<TillEvent>, Insufficient> {
        if *amount > self.balance {
            return Err(Insufficient);
        }
        Ok(vec![TillEvent::Withdrawn { amount: *amount }])
    }
}

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
        std::env::var("TILL_URL"),
        std::env::var("TILL_SCHEMA"),
        std::env::var("TILL_WRITER"),
    ) {
        (Ok(url), Ok(schema), Ok(writer)) => runtime.block_on(write(url, schema, writer)),
        _ => runtime.block_on(coordinate()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("multi_process_cache: {error}");
            println!("test result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One writer process: deposits and withdrawals, with a cached repository.
async fn write(url: String, schema: String, writer: String) -> Result<(), Error> {
    let store = PgEventStore::connect_with(
        &url,
        PgConfig::default().with_schema(schema).with_pool_size(2),
    )
    .await?;
    let tills = Repository::<Till, _>::new(store);
    let seed: u64 = writer.parse()?;
    let (mut accepted, mut refused) = (0u64, 0u64);
    for i in 0..COMMANDS {
        let n = seed * 7_919 + i * 31;
        let id = StreamId::for_aggregate::<Till>(n % ACCOUNTS)?;
        // Withdraw more often than deposit, so balances hover near zero and stale decisions
        // would overdraw.
        let command = if n % 3 == 0 {
            TillCommand::Deposit { amount: 1 + n % 5 }
        } else {
            TillCommand::Withdraw { amount: 1 + n % 4 }
        };
        match tills.execute(&id, command).await {
            Ok(outcome) => accepted += outcome.appended as u64,
            Err(RepositoryError::Rejected(Insufficient)) => refused += 1,
            Err(other) => return Err(other.into()),
        }
    }
    println!("{accepted} {refused}");
    Ok(())
}

/// The parent: starts the writers, waits for them, checks the logs.
async fn coordinate() -> Result<(), Error> {
    let cluster = TestCluster::shared();
    let config = fresh_config();
    let store = cluster.store(config.clone()).await?;
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..WRITERS)
        .map(|writer| {
            Command::new(&exe)
                .env("TILL_URL", cluster.url())
                .env("TILL_SCHEMA", &config.schema)
                .env("TILL_WRITER", writer.to_string())
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut appended_by_writers = 0u64;
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        if !output.status.success() {
            return Err(format!("a writer failed: {}", output.status).into());
        }
        let tally = String::from_utf8(output.stdout)?;
        let accepted: u64 = tally
            .split_whitespace()
            .next()
            .ok_or("a writer printed no tally")?
            .parse()?;
        appended_by_writers += accepted;
    }

    let mut logged = 0u64;
    for account in 0..ACCOUNTS {
        let id = StreamId::for_aggregate::<Till>(account)?;
        let mut reader = store.stream_reader(&id, Version(1));
        let mut balance: i64 = 0;
        let mut version = 0;
        while let Some(batch) = reader.next_batch().await? {
            for recorded in batch {
                version += 1;
                if recorded.version != Version(version) {
                    return Err(format!(
                        "{id}: version {} where {version} was due",
                        recorded.version
                    )
                    .into());
                }
                match recorded.decode::<TillEvent>()? {
                    Some(TillEvent::Deposited { amount }) => balance += amount as i64,
                    Some(TillEvent::Withdrawn { amount }) => balance -= amount as i64,
                    None => return Err("no event is skipped here".into()),
                }
                if balance < 0 {
                    return Err(format!("{id} went to {balance} at version {version}: a decision on a stale state was appended").into());
                }
                logged += 1;
            }
        }
    }
    if logged != appended_by_writers {
        return Err(format!(
            "the log holds {logged} events, the writers appended {appended_by_writers}"
        )
        .into());
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    println!("multi_process_cache: {WRITERS} writer processes, {appended_by_writers} events appended, no stale decision stored");
    println!("test result: ok. 1 passed; 0 failed");
    Ok(())
}
