//! What every contender implements, and the workloads that drive it.
//!
//! A contender wraps its framework's way of running a command (load the account, decide,
//! append) behind [`Bank`]; the workloads here are written once, so every contender does the
//! same work in the same order, and only the framework differs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::Result;

/// Why an account refused a command: the one error type every contender's aggregate returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountError {
    /// `Open` on an open account.
    AlreadyOpen,
    /// Anything but `Open` on an account that is not open.
    NotOpen,
    /// A withdrawal past the balance.
    Overdrawn,
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccountError::AlreadyOpen => "the account is already open",
            AccountError::NotOpen => "the account is not open",
            AccountError::Overdrawn => "the balance may not go below 0",
        })
    }
}

impl std::error::Error for AccountError {}

/// An account as the workloads name it. Contenders that identify aggregates by UUID (esrs)
/// use [`Account::uuid`], the others [`Account::name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// A readable id, unique in one contender's database (`w1-r2-17`).
    pub(crate) name: String,
    /// A random UUID standing for the same account.
    pub(crate) uuid: Uuid,
}

impl Account {
    /// A new account named `name`.
    pub(crate) fn new(name: String) -> Self {
        Account {
            name,
            uuid: Uuid::new_v4(),
        }
    }
}

/// The amount every deposit of the workloads puts in, in cents.
pub(crate) const AMOUNT: u64 = 100;

/// A bank-account service on one framework: each method is one command (or one load) run
/// through the framework's own API.
pub(crate) trait Bank: Send + Sync + 'static {
    /// Runs `Open` on a new account.
    fn open(&self, account: &Account) -> impl Future<Output = Result<()>> + Send;

    /// Runs `Deposit`: load the account, decide, append one `Deposited` event.
    fn deposit(&self, account: &Account, amount: u64) -> impl Future<Output = Result<()>> + Send;

    /// Runs `Withdraw`; `Ok(false)` when the account refused it (the balance may not go
    /// below 0).
    fn withdraw(&self, account: &Account, amount: u64)
        -> impl Future<Output = Result<bool>> + Send;

    /// Runs one command whose handler returns `count` `Deposited` events, appended together.
    fn deposit_many(
        &self,
        account: &Account,
        count: u32,
        amount: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Loads the account (replaying its events) and returns its balance.
    fn balance(&self, account: &Account) -> impl Future<Output = Result<i64>> + Send;
}

/// How much work one measurement does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    /// `full` or `quick`.
    pub(crate) name: &'static str,
    /// W1: accounts opened before the timed loop.
    pub(crate) w1_accounts: usize,
    /// W1: commands in the timed loop.
    pub(crate) w1_commands: usize,
    /// W2: concurrent writers.
    pub(crate) w2_writers: usize,
    /// W2: accounts of each writer.
    pub(crate) w2_accounts_per_writer: usize,
    /// W2: commands of each writer.
    pub(crate) w2_commands_per_writer: usize,
    /// W3: events in the long stream.
    pub(crate) w3_long: usize,
    /// W3: events in the short stream.
    pub(crate) w3_short: usize,
    /// W3: loads of which the median is taken.
    pub(crate) w3_loads: usize,
    /// W4: commands.
    pub(crate) w4_commands: usize,
    /// W4: events each command appends.
    pub(crate) w4_events_per_command: u32,
    /// Runs of each measurement, of which the median is reported.
    pub(crate) runs: usize,
}

impl Counts {
    /// The full counts: what RESULTS.md reports.
    pub(crate) const FULL: Counts = Counts {
        name: "full",
        w1_accounts: 1_000,
        w1_commands: 10_000,
        w2_writers: 8,
        w2_accounts_per_writer: 125,
        w2_commands_per_writer: 2_000,
        w3_long: 10_000,
        w3_short: 100,
        w3_loads: 20,
        w4_commands: 100,
        w4_events_per_command: 100,
        runs: 3,
    };

    /// Small counts and one run, for trying the harness out (`--quick`).
    pub(crate) const QUICK: Counts = Counts {
        name: "quick",
        w1_accounts: 100,
        w1_commands: 500,
        w2_writers: 8,
        w2_accounts_per_writer: 10,
        w2_commands_per_writer: 100,
        w3_long: 2_000,
        w3_short: 100,
        w3_loads: 5,
        w4_commands: 10,
        w4_events_per_command: 100,
        runs: 1,
    };

    /// W2's commands over all writers.
    pub(crate) fn w2_commands(&self) -> usize {
        self.w2_writers * self.w2_commands_per_writer
    }

    /// W4's events over all commands.
    pub(crate) fn w4_events(&self) -> usize {
        self.w4_commands * self.w4_events_per_command as usize
    }
}

/// Opens `count` accounts named `<prefix>-<n>`, spread over `banks` concurrently (not timed:
/// it only prepares a workload).
pub(crate) async fn open_accounts<B: Bank>(
    banks: &[Arc<B>],
    prefix: &str,
    count: usize,
) -> Result<Vec<Account>> {
    let accounts: Vec<Account> = (0..count)
        .map(|n| Account::new(format!("{prefix}-{n}")))
        .collect();
    let lanes = banks.len().max(1);
    let mut tasks = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let bank = Arc::clone(&banks[lane % banks.len()]);
        let mine: Vec<Account> = accounts.iter().skip(lane).step_by(lanes).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for account in &mine {
                bank.open(account).await?;
            }
            Ok::<(), crate::BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(accounts)
}

/// W1: one writer, `w1_commands` deposits round-robin over `w1_accounts` accounts opened first.
/// Returns commands per second.
pub(crate) async fn w1<B: Bank>(bank: &Arc<B>, counts: &Counts, run: usize) -> Result<f64> {
    let accounts = open_accounts(
        &vec![Arc::clone(bank); 8],
        &format!("w1-r{run}"),
        counts.w1_accounts,
    )
    .await?;
    let start = Instant::now();
    for n in 0..counts.w1_commands {
        bank.deposit(&accounts[n % accounts.len()], AMOUNT).await?;
    }
    Ok(per_second(counts.w1_commands, start.elapsed()))
}

/// W2: `w2_writers` concurrent tasks, each depositing round-robin over accounts of its own.
/// Writer `i` uses `banks[i % banks.len()]`: one shared bank, or one per writer (the raw
/// baseline gives each writer its own connection). Returns commands per second.
pub(crate) async fn w2<B: Bank>(banks: &[Arc<B>], counts: &Counts, run: usize) -> Result<f64> {
    let mut writers = Vec::with_capacity(counts.w2_writers);
    for writer in 0..counts.w2_writers {
        let bank = Arc::clone(&banks[writer % banks.len()]);
        let accounts = open_accounts(
            std::slice::from_ref(&bank),
            &format!("w2-r{run}-w{writer}"),
            counts.w2_accounts_per_writer,
        )
        .await?;
        writers.push((bank, accounts));
    }
    let per_writer = counts.w2_commands_per_writer;
    let start = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|(bank, accounts)| {
            tokio::spawn(async move {
                for n in 0..per_writer {
                    bank.deposit(&accounts[n % accounts.len()], AMOUNT).await?;
                }
                Ok::<(), crate::BoxError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(per_second(counts.w2_commands(), start.elapsed()))
}

/// The two W3 streams: an account with `w3_long` events and one with `w3_short` events (the
/// `Opened` event included), written by the contender itself in commands of up to 100 events.
pub(crate) async fn w3_setup<B: Bank>(bank: &B, counts: &Counts) -> Result<(Account, Account)> {
    check_rules(bank).await?;
    let long = stream_of(bank, "w3-long", counts.w3_long).await?;
    let short = stream_of(bank, "w3-short", counts.w3_short).await?;
    Ok((long, short))
}

/// Checks that the contender implements the domain: the overdraft rule holds, and the balance
/// adds up.
async fn check_rules<B: Bank>(bank: &B) -> Result<()> {
    let account = Account::new("rules".to_owned());
    bank.open(&account).await?;
    bank.deposit(&account, 100).await?;
    if bank.withdraw(&account, 150).await? {
        return Err("a withdrawal past the balance was accepted".into());
    }
    if !bank.withdraw(&account, 60).await? {
        return Err("a withdrawal within the balance was refused".into());
    }
    match bank.balance(&account).await? {
        40 => Ok(()),
        other => Err(format!("the balance is {other} after +100 -60").into()),
    }
}

async fn stream_of<B: Bank>(bank: &B, name: &str, events: usize) -> Result<Account> {
    let account = Account::new(name.to_owned());
    bank.open(&account).await?;
    let mut left = events.saturating_sub(1);
    while left > 0 {
        let chunk = left.min(100);
        bank.deposit_many(&account, chunk as u32, AMOUNT).await?;
        left -= chunk;
    }
    let expected = AMOUNT as i64 * (events.saturating_sub(1)) as i64;
    let balance = bank.balance(&account).await?;
    if balance != expected {
        return Err(format!(
            "stream `{name}` loads with balance {balance}, expected {expected}: the contender lost or added events"
        )
        .into());
    }
    Ok(account)
}

/// W3: the median time of `w3_loads` loads of `account`, in milliseconds.
pub(crate) async fn w3<B: Bank>(bank: &B, account: &Account, counts: &Counts) -> Result<f64> {
    let mut times = Vec::with_capacity(counts.w3_loads);
    for _ in 0..counts.w3_loads {
        let start = Instant::now();
        std::hint::black_box(bank.balance(account).await?);
        times.push(start.elapsed().as_secs_f64() * 1_000.0);
    }
    median(&mut times).ok_or_else(|| "no loads were timed".into())
}

/// W4: `w4_commands` commands, each appending `w4_events_per_command` events to an account of
/// its own opened first. Returns events per second.
pub(crate) async fn w4<B: Bank>(bank: &Arc<B>, counts: &Counts, run: usize) -> Result<f64> {
    let accounts = open_accounts(
        &vec![Arc::clone(bank); 8],
        &format!("w4-r{run}"),
        counts.w4_commands,
    )
    .await?;
    let start = Instant::now();
    for account in &accounts {
        bank.deposit_many(account, counts.w4_events_per_command, AMOUNT)
            .await?;
    }
    Ok(per_second(counts.w4_events(), start.elapsed()))
}

/// `count` per `elapsed`.
pub(crate) fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
