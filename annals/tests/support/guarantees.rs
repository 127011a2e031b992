//! The concurrency guarantees, as scenarios generic over the store, hammered by the memory
//! store's tests (`annals/tests/guarantees.rs`) and PostgreSQL's
//! (`annals-postgres/tests/guarantees.rs`).
//!
//! A "process" is a store handle of its own over the same data: a clone of one memory store,
//! or a PostgreSQL store with its own connection pool. Each runs its own `Repository`, so its
//! own cache of states and its own in-process turns, exactly as separate processes would.
//!
//! `HAMMER_ROUNDS` multiplies the rounds of every scenario (default 1), for runs in a loop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::prelude::*;
use annals::{
    stop_signal, Checkpoint, CommandOutcome, Envelope, EventStoreExt, HandlerError, Projection,
    ProjectionRunner, RepositoryError, RetryPolicy,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

/// How many times the scenarios' rounds are repeated (`HAMMER_ROUNDS`, default 1).
pub(crate) fn rounds(base: usize) -> usize {
    let factor = std::env::var("HAMMER_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    base * factor
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Wallet)]
pub(crate) enum WalletEvent {
    Credited { amount: u64 },
    Debited { amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
#[command(aggregate = Wallet)]
pub(crate) enum WalletCommand {
    /// Credits `amount` converted at the service's exchange rate.
    #[command(services)]
    Credit {
        amount: u64,
    },
    Debit {
        amount: u64,
    },
}

/// What the wallet's handlers ask the outside world: the exchange rate of the moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rate(pub(crate) u64);

#[derive(Debug, PartialEq)]
pub(crate) struct Insufficient;

impl std::fmt::Display for Insufficient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("insufficient funds")
    }
}

impl std::error::Error for Insufficient {}

/// A wallet whose balance may never go below zero.
#[derive(Debug, Clone, Default, PartialEq, Aggregate)]
#[aggregate(name = "wallet", event = WalletEvent, command = WalletCommand, error = Insufficient, services = Rate)]
pub(crate) struct Wallet {
    pub(crate) balance: u64,
}

impl Wallet {
    fn credited(&mut self, amount: &u64) {
        self.balance += amount;
    }
    fn debited(&mut self, amount: &u64) {
        // A decision on a state the store does not hold would underflow here.
        self.balance = self.balance.wrapping_sub(*amount);
    }
    fn credit(&self, amount: &u64, rate: &Rate) -> Result<Vec<WalletEvent>, Insufficient> {
        Ok(vec![WalletEvent::Credited {
            amount: amount * rate.0.max(1),
        }])
    }
    fn debit(&self, amount: &u64) -> Result<Vec<WalletEvent>, Insufficient> {
        if *amount > self.balance {
            return Err(Insufficient);
        }
        Ok(vec![WalletEvent::Debited { amount: *amount }])
    }
}

fn new_wallet(scenario: &str) -> StreamId {
    StreamId::for_aggregate::<Wallet>(format!("{scenario}-{}", uuid::Uuid::new_v4().simple()))
        .expect("a valid id")
}

/// The stored balance at each version of `id`, checked never to go below zero.
async fn stored_balances<S: EventStore>(store: &S, id: &StreamId) -> Vec<i64> {
    let mut balance = 0i64;
    let mut balances = Vec::new();
    let mut reader = store.stream_reader(id, Version(1));
    while let Some(batch) = reader.next_batch().await.expect("read_stream") {
        for event in batch {
            match event.decode::<WalletEvent>().expect("decode") {
                Some(WalletEvent::Credited { amount }) => balance += amount as i64,
                Some(WalletEvent::Debited { amount }) => balance -= amount as i64,
                None => unreachable!("no removed events here"),
            }
            assert!(
                balance >= 0,
                "{id}: the stored balance went to {balance} at version {}",
                event.version
            );
            balances.push(balance);
        }
    }
    balances
}

/// Two processes run one command under one idempotency key at the same moment, each with its
/// own exchange rate (1 and 2), then each debits 150. The store keeps one of the credits; a
/// process whose own decision was not stored must not keep it in its cache. After every
/// command, each process's state equals a fresh load, and the stored balance never goes
/// below zero.
pub(crate) async fn cache_race<S: EventStore + Clone + 'static>(stores: [S; 2], rounds: usize) {
    let wallets: Vec<Arc<Repository<Wallet, S>>> = stores
        .iter()
        .zip([Rate(1), Rate(2)])
        .map(|(store, rate)| Arc::new(Repository::with_services(store.clone(), rate)))
        .collect();
    let fresh = Repository::<Wallet, S>::new(stores[0].clone()).with_cache_capacity(0);
    let mut duplicates = 0;
    for _ in 0..rounds {
        let id = new_wallet("race");
        let barrier = Arc::new(Barrier::new(2));
        let credits: Vec<_> = wallets
            .iter()
            .map(|wallets| {
                let (wallets, id, barrier) =
                    (Arc::clone(wallets), id.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let context = CommandContext::new().with_idempotency_key("credit");
                    wallets
                        .execute_with(&id, WalletCommand::Credit { amount: 100 }, context)
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for credit in credits {
            outcomes.push(credit.await.expect("task").expect("a credit succeeds"));
        }
        assert_eq!(
            outcomes.iter().filter(|o| !o.duplicate).count(),
            1,
            "one credit appends, the other is its repeat: {outcomes:?}"
        );
        duplicates += 1;
        let stored = fresh.load(&id).await.expect("load");
        assert_eq!(stored.version, Version(1));
        for wallets in &wallets {
            assert_eq!(wallets.load(&id).await.expect("load"), stored);
        }

        let debits: Vec<_> = wallets
            .iter()
            .map(|wallets| {
                let (wallets, id, barrier) =
                    (Arc::clone(wallets), id.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    wallets
                        .execute(&id, WalletCommand::Debit { amount: 150 })
                        .await
                })
            })
            .collect();
        for debit in debits {
            match debit.await.expect("task") {
                Ok(_) | Err(RepositoryError::Rejected(Insufficient)) => {}
                Err(other) => panic!("a debit failed: {other}"),
            }
        }
        stored_balances(&stores[0], &id).await;
        let stored = fresh.load(&id).await.expect("load");
        for wallets in &wallets {
            assert_eq!(
                wallets.load(&id).await.expect("load"),
                stored,
                "a process's state differs from the store's"
            );
        }
    }
    assert_eq!(duplicates, rounds);
}

/// `tasks` identical commands under one idempotency key, released together from every store,
/// are one command: one append, every outcome `Ok`, all but one `duplicate`, each describing
/// the stored events. A debit of the whole balance repeated so is never `Rejected`.
pub(crate) async fn concurrent_repeats<S: EventStore + Clone + 'static>(
    stores: Vec<S>,
    tasks: usize,
    rounds: usize,
) {
    let wallets: Vec<Arc<Repository<Wallet, S>>> = stores
        .iter()
        .map(|store| Arc::new(Repository::new(store.clone())))
        .collect();
    let everyone = wallets.len() * tasks;
    for round in 0..rounds {
        let id = new_wallet("repeats");
        wallets[0]
            .execute(&id, WalletCommand::Credit { amount: 100 })
            .await
            .expect("seed");
        for (key, command) in [
            ("credit", WalletCommand::Credit { amount: 5 }),
            ("debit", WalletCommand::Debit { amount: 105 }),
        ] {
            let barrier = Arc::new(Barrier::new(everyone));
            let runs: Vec<_> = (0..everyone)
                .map(|n| {
                    let wallets = Arc::clone(&wallets[n % wallets.len()]);
                    let (id, barrier, command) =
                        (id.clone(), Arc::clone(&barrier), command.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let context = CommandContext::new().with_idempotency_key(key);
                        wallets.execute_with(&id, command, context).await
                    })
                })
                .collect();
            let mut outcomes: Vec<CommandOutcome> = Vec::new();
            for run in runs {
                match run.await.expect("task") {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(error) => panic!("round {round}, `{key}`: a repeat failed: {error}"),
                }
            }
            let appended: Vec<_> = outcomes.iter().filter(|o| !o.duplicate).collect();
            assert_eq!(appended.len(), 1, "round {round}, `{key}`: {outcomes:?}");
            let original = *appended[0];
            assert_eq!(original.appended, 1);
            for outcome in outcomes.iter().filter(|o| o.duplicate) {
                assert_eq!(
                    (outcome.appended, outcome.version, outcome.last_position),
                    (0, original.version, original.last_position),
                    "round {round}, `{key}`: a duplicate describes the stored events"
                );
            }
        }
        let balances = stored_balances(&stores[0], &id).await;
        assert_eq!(balances, vec![100, 105, 0], "round {round}");
    }
}

/// The time one shared repository and `writers` repositories on their own stores take for
/// `commands` deposits each on one stream. Every command succeeds under the default retry
/// policy: none ends in `TooManyConflicts`.
pub(crate) async fn hot_stream<S: EventStore + Clone + 'static>(
    stores: Vec<S>,
    commands: u64,
) -> (Duration, Duration) {
    let writers = stores.len() as u64;
    let run = |repos: Vec<Arc<Repository<Wallet, S>>>, id: StreamId| async move {
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers as usize)
            .map(|n| {
                let (repo, id) = (Arc::clone(&repos[n % repos.len()]), id.clone());
                tokio::spawn(async move {
                    let mut attempts = 0;
                    for _ in 0..commands {
                        match repo.execute(&id, WalletCommand::Credit { amount: 1 }).await {
                            Ok(outcome) => attempts += u64::from(outcome.attempts),
                            Err(error) => panic!("a deposit failed: {error}"),
                        }
                    }
                    attempts
                })
            })
            .collect();
        let mut attempts = 0;
        for task in tasks {
            attempts += task.await.expect("task");
        }
        (started.elapsed(), attempts)
    };
    assert_eq!(RetryPolicy::default().max_attempts, 16);

    let shared = new_wallet("hot-shared");
    let one = vec![Arc::new(Repository::<Wallet, S>::new(stores[0].clone()))];
    let (alone, _) = run(one, shared.clone()).await;

    let hot = new_wallet("hot");
    let own = stores
        .iter()
        .map(|store| Arc::new(Repository::<Wallet, S>::new(store.clone())))
        .collect();
    let (apart, attempts) = run(own, hot.clone()).await;
    let total = writers * commands;
    assert_eq!(
        stores[0].stream_version(&hot).await.expect("version"),
        Version(total)
    );
    println!(
        "hot stream: {writers} writers x {commands} commands: one shared repository {alone:?}, \
         one repository each {apart:?} ({:.2}x), {attempts} decisions for {total} commands",
        apart.as_secs_f64() / alone.as_secs_f64().max(1e-9),
    );
    (alone, apart)
}

/// A read model that keeps its own checkpoint with the events it applied, atomically: the
/// exactly-once projection of the core runner.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) applied: BTreeMap<u64, u32>,
    pub(crate) checkpoint: Option<Checkpoint>,
}

/// A projection over a shared [`Ledger`]; every runner of it has one of these.
pub(crate) struct LedgerProjection {
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    /// Set while a runner handles an event, to catch two handling at once.
    pub(crate) busy: Arc<AtomicBool>,
    pub(crate) overlaps: Arc<AtomicU64>,
}

#[async_trait]
impl Projection for LedgerProjection {
    type Event = WalletEvent;

    fn name(&self) -> &str {
        "ledger"
    }

    async fn handle(&mut self, event: &Envelope<WalletEvent>) -> Result<(), HandlerError> {
        if self.busy.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // Cleared when the handler returns or its runner is aborted while it waits.
        let _busy = Busy(&self.busy);
        if let WalletEvent::Credited { amount } = event.event {
            let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            *ledger.applied.entry(amount).or_default() += 1;
            ledger.checkpoint = Some(event.checkpoint());
        }
        // Give other runners a chance to run at the same time, were they allowed to.
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, HandlerError> {
        Ok(self
            .ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .checkpoint)
    }
}

/// Clears a busy flag when dropped.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// `runners` runners of one projection started together over `stores`, aborted and
/// restarted at random points while `events` events are appended: every event is applied
/// exactly once, no two runners handle events at the same time, and the stored checkpoint
/// never moves backwards.
pub(crate) async fn runners_exactly_once<S: EventStore + Clone + 'static>(
    stores: Vec<S>,
    runners: usize,
    events: u64,
) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let busy = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicU64::new(0));
    let projection = || LedgerProjection {
        ledger: Arc::clone(&ledger),
        busy: Arc::clone(&busy),
        overlaps: Arc::clone(&overlaps),
    };
    let writer = {
        let wallets = Repository::<Wallet, S>::new(stores[0].clone());
        tokio::spawn(async move {
            for n in 1..=events {
                let id = StreamId::for_aggregate::<Wallet>(n % 50).expect("id");
                wallets
                    .execute(&id, WalletCommand::Credit { amount: n })
                    .await
                    .expect("append");
            }
        })
    };
    // Watches the stored checkpoint: it may only move forward.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (store, watching) = (stores[0].clone(), Arc::clone(&watching));
        tokio::spawn(async move {
            let mut last = Checkpoint::START;
            let mut backwards = 0;
            while watching.load(Ordering::SeqCst) {
                if let Some(now) = store.load_checkpoint("ledger").await.expect("load") {
                    if now < last {
                        backwards += 1;
                    }
                    last = last.max(now);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            backwards
        })
    };
    let start = |n: usize| {
        let store = stores[n % stores.len()].clone();
        let mut runner = ProjectionRunner::new(store, projection())
            .with_batch_size(1 + n * 7)
            .with_poll_interval(Duration::from_millis(20));
        let (stopper, stop) = stop_signal();
        (stopper, tokio::spawn(async move { runner.run(stop).await }))
    };
    let mut running: Vec<_> = (0..runners).map(start).collect();
    let mut kills = 0u64;
    let mut seed = uuid::Uuid::new_v4().as_u64_pair().0;
    while !writer.is_finished() || kills < 40 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(1 + seed % 15)).await;
        let victim = (seed >> 33) as usize % runners;
        running[victim].1.abort(); // killed wherever it is
        let _ = (&mut running[victim].1).await;
        running[victim] = start(victim);
        kills += 1;
    }
    writer.await.expect("writer");
    // Let the survivors finish, then one more catch-up from wherever they stopped.
    for (stopper, task) in running {
        stopper.stop();
        task.await.expect("runner task").expect("a runner failed");
    }
    let mut last = ProjectionRunner::new(stores[0].clone(), projection());
    last.catch_up().await.expect("catch_up");
    watching.store(false, Ordering::SeqCst);
    let backwards = watcher.await.expect("watcher");

    let ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<u64> = (1..=events)
        .filter(|n| !ledger.applied.contains_key(n))
        .collect();
    let repeated: Vec<(&u64, &u32)> = ledger.applied.iter().filter(|(_, &c)| c != 1).collect();
    assert!(missing.is_empty(), "events never applied: {missing:?}");
    assert!(
        repeated.is_empty(),
        "events applied more than once: {repeated:?}"
    );
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two runners handled events at once"
    );
    assert_eq!(backwards, 0, "the stored checkpoint moved backwards");
    println!("runners: {runners} runners, {kills} kills, {events} events, each applied once");
}

/// With `writers` writers appending nonstop, a catch-up started now handles every event
/// committed before it started, and returns.
pub(crate) async fn catch_ups_end<S: EventStore + Clone + 'static>(
    store: S,
    writers: usize,
    catch_ups: usize,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|n| {
            let (store, stop) = (store.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let wallets = Repository::<Wallet, S>::new(store);
                let id = StreamId::for_aggregate::<Wallet>(format!("busy-{n}")).expect("id");
                while !stop.load(Ordering::SeqCst) {
                    wallets
                        .execute(&id, WalletCommand::Credit { amount: 1 })
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for round in 0..catch_ups {
        // The runner starts a little before the marker, committed before the catch-up starts.
        let before = store.log_head().await.expect("log_head");
        store
            .save_checkpoint("ledger", before)
            .await
            .expect("save_checkpoint");
        let marker = 1_000_000 + round as u64;
        Repository::<Wallet, S>::new(store.clone())
            .execute(
                &new_wallet("marker"),
                WalletCommand::Credit { amount: marker },
            )
            .await
            .expect("append");
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut runner = ProjectionRunner::new(
            store.clone(),
            LedgerProjection {
                ledger: Arc::clone(&ledger),
                busy: Arc::new(AtomicBool::new(false)),
                overlaps: Arc::new(AtomicU64::new(0)),
            },
        );
        // A guard against a catch-up that never ends, not a measure of its speed.
        tokio::time::timeout(Duration::from_secs(120), runner.catch_up())
            .await
            .expect("a catch-up returns while writers keep appending")
            .expect("catch_up");
        assert!(
            ledger
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .applied
                .contains_key(&marker),
            "round {round}: the catch-up missed an event committed before it started"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("writer");
    }
}
