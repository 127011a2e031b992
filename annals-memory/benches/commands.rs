//! Commands and loads on the memory store, in process: W1's shape (one writer, deposits
//! round-robin over 1,000 accounts, through a `Repository` with its default cache) and W3's
//! (a cold load of a 10,000-event stream).
//!
//! Run with: cargo bench -p annals-memory --bench commands
//!
//! To count instructions, run the built binary under callgrind with `COMMANDS=<n>` to set the
//! number of W1 commands. `RECORDER=prometheus` installs a Prometheus metrics recorder first
//! (no HTTP listener), to measure what recording metrics costs; the run then also times, on
//! their own, the recorder's updates a W1 command makes (two counters, two histogram samples)
//! and the clock readings that time it.

use std::convert::Infallible;
use std::time::Instant;

use annals::prelude::*;
use annals_memory::MemoryEventStore;
use serde::{Deserialize, Serialize};

const ACCOUNTS: usize = 1_000;
const LONG: u32 = 10_000;
const LOADS: usize = 20;
/// Commands in one timed stretch of W1.
const STRETCH: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Account)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
    DepositMany { count: u32, amount: u64 },
}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(name = "account", event = AccountEvent, command = AccountCommand, error = Infallible)]
struct Account {
    balance: u64,
}

impl Account {
    fn opened(&mut self, _owner: &str) {}

    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    fn open(&self, owner: &str) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![AccountEvent::Opened {
            owner: owner.to_owned(),
        }])
    }

    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, Infallible> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }

    fn deposit_many(&self, count: &u32, amount: &u64) -> Result<Vec<AccountEvent>, Infallible> {
        Ok((0..*count)
            .map(|_| AccountEvent::Deposited { amount: *amount })
            .collect())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let commands: usize = match std::env::var("COMMANDS") {
        Ok(n) => n.parse()?,
        Err(_) => 100_000,
    };
    let recorder = std::env::var("RECORDER").unwrap_or_default();
    let _prometheus = match recorder.as_str() {
        "prometheus" => {
            Some(metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?)
        }
        "" | "none" => None,
        other => {
            return Err(format!("unknown RECORDER `{other}`: use `prometheus` or `none`").into())
        }
    };
    let store = MemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let ids = (0..ACCOUNTS)
        .map(|n| StreamId::for_aggregate::<Account>(&format!("acc-{n}")))
        .collect::<Result<Vec<_>, _>>()?;
    for id in &ids {
        accounts
            .execute(
                id,
                AccountCommand::Open {
                    owner: "ann".into(),
                },
            )
            .await?;
    }
    // Timed in stretches too: the fastest stretch is the least disturbed by the rest of a
    // busy machine, which makes small differences between builds visible.
    let started = Instant::now();
    let mut fastest = std::time::Duration::MAX;
    for first in (0..commands).step_by(STRETCH) {
        let stretch = first..(first + STRETCH).min(commands);
        let stretch_started = Instant::now();
        for n in stretch.clone() {
            accounts
                .execute(&ids[n % ACCOUNTS], AccountCommand::Deposit { amount: 7 })
                .await?;
        }
        if stretch.len() == STRETCH {
            fastest = fastest.min(stretch_started.elapsed());
        }
    }
    let w1 = started.elapsed();

    let long = StreamId::for_aggregate::<Account>("long")?;
    accounts
        .execute(
            &long,
            AccountCommand::Open {
                owner: "bob".into(),
            },
        )
        .await?;
    let mut left = LONG - 1;
    while left > 0 {
        let count = left.min(100);
        accounts
            .execute(&long, AccountCommand::DepositMany { count, amount: 7 })
            .await?;
        left -= count;
    }
    let mut loads = Vec::with_capacity(LOADS);
    for _ in 0..LOADS {
        let started = Instant::now();
        let cold = Repository::<Account, _>::new(store.clone()).with_cache_capacity(0);
        let loaded = cold.load(&long).await?;
        loads.push(started.elapsed());
        if loaded.state.balance != 7 * u64::from(LONG - 1) {
            return Err(format!("loaded balance {}", loaded.state.balance).into());
        }
    }
    loads.sort_unstable();

    println!(
        "Memory store, in process, metrics recorder: {}",
        if _prometheus.is_some() {
            "Prometheus"
        } else {
            "none"
        }
    );
    println!("| workload | value |");
    println!("|---|---:|");
    println!(
        "| W1: {commands} deposits over {ACCOUNTS} accounts, default cache | {:.0} commands/s |",
        commands as f64 / w1.as_secs_f64()
    );
    if fastest != std::time::Duration::MAX {
        println!(
            "| W1: fastest stretch of {STRETCH} commands | {:.0} commands/s |",
            STRETCH as f64 / fastest.as_secs_f64()
        );
    }
    if _prometheus.is_some() {
        let (updates, clock) = recorder_floor();
        println!("| recorder's updates of one W1 command, alone | {updates:.1} ns |");
        println!("| one clock reading (`Instant::now`), alone | {clock:.1} ns |");
    }
    println!(
        "| W3: cold load of a {LONG}-event stream, median of {LOADS} | {:.3} ms |",
        loads[LOADS / 2].as_secs_f64() * 1_000.0
    );
    Ok(())
}

/// What the installed recorder costs a W1 command on its own, and what one clock reading
/// costs, in nanoseconds: the fastest of 15 rounds of 200,000. The updates are the ones a
/// command that appends one event makes (commands by outcome, events appended, command and
/// append durations), on handles of the same names and labels.
fn recorder_floor() -> (f64, f64) {
    let labels = [("aggregate", "account")];
    let commands = metrics::counter!(
        annals::telemetry::names::COMMANDS,
        "aggregate" => "account",
        "outcome" => "appended"
    );
    let appended = metrics::counter!(annals::telemetry::names::EVENTS_APPENDED, &labels);
    let command_duration = metrics::histogram!(annals::telemetry::names::COMMAND_DURATION, &labels);
    let append_duration = metrics::histogram!(annals::telemetry::names::APPEND_DURATION, &labels);
    let fastest = |round: &dyn Fn(u32)| {
        (0..15)
            .map(|_| {
                let started = Instant::now();
                for n in 0..200_000 {
                    round(n);
                }
                started.elapsed().as_secs_f64() * 1e9 / 200_000.0
            })
            .fold(f64::MAX, f64::min)
    };
    let updates = fastest(&|n| {
        commands.increment(1);
        appended.increment(1);
        command_duration.record(f64::from(n) * 1e-9);
        append_duration.record(f64::from(n) * 0.5e-9);
    });
    let clock = fastest(&|_| {
        std::hint::black_box(Instant::now());
    });
    (updates, clock)
}
