//! Every core metric, read back from a recording recorder after the work that updates it.
//! One test: the recorder is global to this test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use annals::prelude::*;
use annals::telemetry::names;
use annals::{Envelope, HandlerError, HandlerRetry, Projection, ProjectionRunner, Subscription};
use annals_memory::MemoryEventStore;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Counter)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Counter)]
enum CounterCommand {
    Add { n: u64 },
    Nothing,
}

#[derive(Debug)]
struct TooBig;

impl fmt::Display for TooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too big")
    }
}

impl std::error::Error for TooBig {}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(event = CounterEvent, command = CounterCommand, error = TooBig, snapshot_every = 2)]
struct Counter {
    total: u64,
}

impl Counter {
    fn added(&mut self, n: &u64) {
        self.total += n;
    }
    fn add(&self, n: &u64) -> Result<Vec<CounterEvent>, TooBig> {
        if *n > 100 {
            return Err(TooBig);
        }
        Ok(vec![CounterEvent::Added { n: *n }])
    }
    fn nothing(&self) -> Result<Vec<CounterEvent>, TooBig> {
        Ok(vec![])
    }
}

/// Fails on its first event once.
#[derive(Default)]
struct Flaky {
    failed: bool,
}

#[annals::async_trait]
impl Projection for Flaky {
    type Event = CounterEvent;

    fn name(&self) -> &str {
        "flaky"
    }

    async fn handle(&mut self, _event: &Envelope<CounterEvent>) -> Result<(), HandlerError> {
        if !self.failed {
            self.failed = true;
            return Err("once".into());
        }
        Ok(())
    }
}

/// The recorded values by metric name and sorted labels.
fn values(snapshotter: &Snapshotter) -> BTreeMap<(String, Vec<(String, String)>), DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<_> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_is_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    annals::telemetry::describe();

    let store = MemoryEventStore::new();
    let counters = Repository::<Counter, _>::new(store.clone());
    let id = StreamId::new("counter-1").unwrap();
    for n in 1..=3 {
        counters
            .execute(&id, CounterCommand::Add { n })
            .await
            .unwrap();
    }
    counters
        .execute(&id, CounterCommand::Nothing)
        .await
        .unwrap();
    assert!(counters
        .execute(&id, CounterCommand::Add { n: 500 })
        .await
        .is_err());
    let keyed = CommandContext::new().with_idempotency_key("once");
    for _ in 0..2 {
        counters
            .execute_with(&id, CounterCommand::Add { n: 1 }, keyed.clone())
            .await
            .unwrap();
    }
    let stale = CommandContext::new().with_expected_version(ExpectedVersion::Exact(Version(1)));
    assert!(counters
        .execute_with(&id, CounterCommand::Add { n: 1 }, stale)
        .await
        .is_err());
    // Another writer appends behind the cache's back: the next decision conflicts and is made
    // again.
    Repository::<Counter, _>::new(store.clone())
        .execute(&id, CounterCommand::Add { n: 1 })
        .await
        .unwrap();
    counters
        .execute(&id, CounterCommand::Add { n: 1 })
        .await
        .unwrap();
    // A fresh repository loads from the snapshot; one of another stream finds none.
    let fresh = Repository::<Counter, _>::new(store.clone());
    assert_eq!(fresh.load(&id).await.unwrap().state.total, 9);
    fresh
        .load(&StreamId::new("counter-2").unwrap())
        .await
        .unwrap();

    let mut runner =
        ProjectionRunner::new(store.clone(), Flaky::default()).with_retry(HandlerRetry {
            max_attempts: 3,
            initial_backoff: Duration::ZERO,
        });
    assert_eq!(runner.catch_up().await.unwrap(), 6);

    let mut waiting = Subscription::new(store.clone(), store.log_head().await.unwrap())
        .with_poll_interval(Duration::from_millis(20));
    let writer = {
        let counters = Repository::<Counter, _>::new(store.clone());
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            counters.execute(&id, CounterCommand::Add { n: 1 }).await
        })
    };
    let batch = waiting.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 1);
    writer.await.unwrap().unwrap();

    let values = values(&snapshotter);
    let counter =
        |name: &str, pairs: &[(&str, &str)]| match values.get(&(name.to_owned(), labels(pairs))) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{name} {pairs:?}: {other:?}"),
        };
    let samples =
        |name: &str, pairs: &[(&str, &str)]| match values.get(&(name.to_owned(), labels(pairs))) {
            Some(DebugValue::Histogram(samples)) => {
                samples.iter().map(|s| s.into_inner()).collect::<Vec<f64>>()
            }
            other => panic!("{name} {pairs:?}: {other:?}"),
        };
    let gauge =
        |name: &str, pairs: &[(&str, &str)]| match values.get(&(name.to_owned(), labels(pairs))) {
            Some(DebugValue::Gauge(value)) => value.into_inner(),
            other => panic!("{name} {pairs:?}: {other:?}"),
        };
    let counter_of = [("aggregate", "counter")];
    let outcome = |o: &str| counter(names::COMMANDS, &[("aggregate", "counter"), ("outcome", o)]);
    // 3 adds, the keyed one, the other writer's, the one after the conflict, the last one.
    assert_eq!(outcome("appended"), 7);
    assert_eq!(outcome("unchanged"), 1);
    assert_eq!(outcome("rejected"), 1);
    assert_eq!(outcome("duplicate"), 1);
    assert_eq!(outcome("conflict"), 1);
    assert_eq!(outcome("failed"), 0);
    assert_eq!(samples(names::COMMAND_DURATION, &counter_of).len(), 11);
    assert_eq!(counter(names::COMMAND_CONFLICTS, &counter_of), 1);
    assert_eq!(counter(names::COMMAND_RETRIES, &counter_of), 1);
    assert_eq!(counter(names::EVENTS_APPENDED, &counter_of), 7);
    assert_eq!(
        samples(names::APPEND_DURATION, &counter_of).len(),
        8,
        "7 written, 1 conflict"
    );
    let replayed = samples(names::LOAD_EVENTS_REPLAYED, &counter_of);
    assert!(
        replayed.contains(&1.0),
        "the fresh load replays after its snapshot: {replayed:?}"
    );
    assert!(counter(names::SNAPSHOT_HITS, &counter_of) >= 1);
    assert!(counter(names::SNAPSHOT_MISSES, &counter_of) >= 1);

    let flaky = [("projection", "flaky")];
    assert_eq!(counter(names::PROJECTION_EVENTS, &flaky), 6);
    assert_eq!(counter(names::PROJECTION_HANDLER_ERRORS, &flaky), 1);
    assert_eq!(counter(names::PROJECTION_HANDLER_RETRIES, &flaky), 1);
    assert_eq!(gauge(names::PROJECTION_LAG_EVENTS, &flaky), 0.0);
    assert!(gauge(names::PROJECTION_LAG_SECONDS, &flaky) >= 0.0);

    assert!(counter(names::SUBSCRIPTION_WAKEUPS, &[("cause", "polled")]) >= 1);
    assert!(counter(names::SUBSCRIPTION_WAKEUPS, &[("cause", "notified")]) >= 1);
}
