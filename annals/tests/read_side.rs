//! The read side through the public API, on the memory store: subscriptions, projections
//! (at least once, exactly once with their own checkpoint), rebuilds, clean stops, and process
//! managers that link causation and correlation.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use annals::prelude::*;
use annals::{
    stop_signal, Checkpoint, Envelope, Filter, HandlerError, HandlerRetry, Projection,
    ProjectionRunner, RunError,
};
use annals_memory::MemoryEventStore;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Counter)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Counter)]
enum CounterCommand {
    Add { n: u64 },
}

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(event = CounterEvent, command = CounterCommand, error = Never)]
struct Counter {
    total: u64,
}

impl Counter {
    fn added(&mut self, n: &u64) {
        self.total += n;
    }
    fn add(&self, n: &u64) -> Result<Vec<CounterEvent>, Never> {
        Ok(vec![CounterEvent::Added { n: *n }])
    }
}

/// The same events on another aggregate type, written by the process manager.
#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(name = "mirror", event = CounterEvent, command = CounterCommand, error = Never)]
struct Mirror {
    total: u64,
}

impl annals::Apply<CounterEvent> for Mirror {
    fn apply(&mut self, CounterEvent::Added { n }: &CounterEvent) {
        self.total += n;
    }
}

impl annals::Handle<CounterCommand> for Mirror {
    async fn handle(
        &self,
        CounterCommand::Add { n }: &CounterCommand,
        _: &(),
    ) -> Result<Vec<CounterEvent>, Never> {
        Ok(vec![CounterEvent::Added { n: *n }])
    }
}

async fn seed(store: &MemoryEventStore, streams: u64, each: u64) -> Vec<u64> {
    let counters = Repository::<Counter, _>::new(store.clone());
    let mut ns = Vec::new();
    for i in 0..each {
        for s in 0..streams {
            let n = s * 1_000 + i;
            counters
                .execute(
                    &StreamId::for_aggregate::<Counter>(s).unwrap(),
                    CounterCommand::Add { n },
                )
                .await
                .unwrap();
            ns.push(n);
        }
    }
    ns
}

/// Totals per stream; keeps its checkpoint in the store (at least once).
#[derive(Default)]
struct Totals {
    applied: Vec<u64>,
    fail_on: Option<(u64, u32)>,
}

#[async_trait]
impl Projection for Totals {
    type Event = CounterEvent;

    fn name(&self) -> &str {
        "totals"
    }

    fn filter(&self) -> Filter {
        Filter::aggregate::<Counter>()
    }

    async fn handle(&mut self, event: &Envelope<CounterEvent>) -> Result<(), HandlerError> {
        let CounterEvent::Added { n } = event.event;
        if let Some((bad, failures)) = &mut self.fail_on {
            if *bad == n && *failures > 0 {
                *failures -= 1;
                return Err(format!("cannot handle {n}").into());
            }
        }
        self.applied.push(n);
        Ok(())
    }

    async fn reset(&mut self) -> Result<(), HandlerError> {
        self.applied.clear();
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_catches_up_and_resumes_from_its_checkpoint() {
    let store = MemoryEventStore::new();
    let written = seed(&store, 4, 25).await;
    let mut runner = ProjectionRunner::new(store.clone(), Totals::default()).with_batch_size(7);
    assert_eq!(runner.catch_up().await.unwrap(), 100);
    assert_eq!(runner.projection().applied, written);
    let saved = store.load_checkpoint("totals").await.unwrap().unwrap();
    assert_eq!(
        saved,
        store
            .read_all(Checkpoint::START, 1_000)
            .await
            .unwrap()
            .last()
            .unwrap()
            .checkpoint()
    );

    // Another process picks up where the checkpoint says, and sees only what is new.
    let more = seed(&store, 1, 5).await;
    let mut later = ProjectionRunner::new(store.clone(), Totals::default());
    assert_eq!(later.catch_up().await.unwrap(), 5);
    assert_eq!(later.projection().applied, more);
}

#[tokio::test]
async fn a_failing_handler_is_retried_then_reported_and_nothing_is_skipped() {
    let store = MemoryEventStore::new();
    let written = seed(&store, 2, 30).await;
    let bad = written[40];
    let retry = HandlerRetry {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
    };
    let totals = Totals {
        fail_on: Some((bad, 5)),
        ..Totals::default()
    };
    let mut runner = ProjectionRunner::new(store.clone(), totals)
        .with_batch_size(16)
        .with_retry(retry);
    let error = runner.catch_up().await.unwrap_err();
    match &error {
        RunError::Handler {
            projection,
            stream,
            version,
            attempts,
            ..
        } => {
            assert_eq!((projection.as_str(), *attempts), ("totals", 3));
            assert_eq!(stream.as_str(), format!("counter-{}", bad / 1_000));
            assert_eq!(*version, Version(bad % 1_000 + 1));
        }
        other => panic!("expected a handler failure, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("after 3 attempts: cannot handle"),
        "{error}"
    );
    assert_eq!(
        runner.projection().applied,
        written[..40],
        "everything before the failure, once"
    );

    // The failure persists twice more, then clears: the next run starts with the failed event.
    let totals = runner.into_projection();
    let mut runner = ProjectionRunner::new(store.clone(), totals).with_retry(retry);
    runner.catch_up().await.unwrap();
    assert_eq!(
        runner.projection().applied,
        written,
        "nothing skipped, nothing twice"
    );
}

#[tokio::test]
async fn a_rebuild_replays_the_whole_log() {
    let store = MemoryEventStore::new();
    let written = seed(&store, 3, 10).await;
    let mut runner = ProjectionRunner::new(store.clone(), Totals::default());
    runner.catch_up().await.unwrap();
    runner.rebuild().await.unwrap();
    assert!(runner.projection().applied.is_empty());
    assert_eq!(
        store.load_checkpoint("totals").await.unwrap(),
        Some(Checkpoint::START)
    );
    assert_eq!(runner.catch_up().await.unwrap(), 30);
    assert_eq!(runner.projection().applied, written);
}

/// A read model that stores its checkpoint with its data, in one step: exactly once.
#[derive(Default)]
struct Model {
    applied: Vec<u64>,
    checkpoint: Option<Checkpoint>,
}

struct Exact(Arc<Mutex<Model>>);

#[async_trait]
impl Projection for Exact {
    type Event = CounterEvent;

    fn name(&self) -> &str {
        "exact"
    }

    async fn handle(&mut self, event: &Envelope<CounterEvent>) -> Result<(), HandlerError> {
        tokio::task::yield_now().await; // a place for the kill to land
        let CounterEvent::Added { n } = event.event;
        let mut model = self.0.lock().unwrap();
        model.applied.push(n);
        model.checkpoint = Some(event.checkpoint());
        Ok(())
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, HandlerError> {
        Ok(self.0.lock().unwrap().checkpoint)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_projection_neither_loses_nor_repeats_an_event() {
    let store = MemoryEventStore::new();
    let model = Arc::new(Mutex::new(Model::default()));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { seed(&store, 5, 300).await })
    };
    for round in 0..25u64 {
        let (stopper, stop) = stop_signal();
        let mut runner = ProjectionRunner::new(store.clone(), Exact(Arc::clone(&model)))
            .with_batch_size(13)
            .with_poll_interval(Duration::from_millis(5));
        let task = tokio::spawn(async move { runner.run(stop).await });
        tokio::time::sleep(Duration::from_millis(3 + round % 7)).await;
        task.abort(); // killed midway, wherever it is
        let _ = task.await;
        drop(stopper);
    }
    let written = writer.await.unwrap();
    let mut runner = ProjectionRunner::new(store.clone(), Exact(Arc::clone(&model)));
    runner.catch_up().await.unwrap();
    let applied = model.lock().unwrap().applied.clone();
    let expected: Vec<u64> = {
        let mut all = Vec::new();
        let mut reader = store.log_reader(Checkpoint::START);
        while let Some(batch) = reader
            .next_decoded::<CounterEvent>(Default::default())
            .await
            .unwrap()
        {
            all.extend(batch.into_iter().map(|e| match e.event {
                CounterEvent::Added { n } => n,
            }));
        }
        all
    };
    assert_eq!(expected.len(), written.len());
    assert_eq!(applied, expected, "every event exactly once, in log order");
}

#[tokio::test]
async fn a_running_projection_follows_live_and_stops_cleanly() {
    let store = MemoryEventStore::new();
    let (stopper, stop) = stop_signal();
    let model = Arc::new(Mutex::new(Model::default()));
    let mut runner = ProjectionRunner::new(store.clone(), Exact(Arc::clone(&model)))
        .with_poll_interval(Duration::from_secs(30));
    let task = tokio::spawn(async move { runner.run(stop).await });
    let written = seed(&store, 2, 5).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while model.lock().unwrap().applied.len() < written.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "live events arrive, woken by the store"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stopper.stop();
    let stopped = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "stopped cleanly: {stopped:?}"
    );
}

/// Mirrors every counter event as a command on the mirror aggregate.
struct MirrorProcess {
    mirrors: Repository<Mirror, MemoryEventStore>,
}

#[async_trait]
impl Projection for MirrorProcess {
    type Event = CounterEvent;

    fn name(&self) -> &str {
        "mirror-process"
    }

    fn filter(&self) -> Filter {
        Filter::aggregate::<Counter>()
    }

    async fn handle(&mut self, event: &Envelope<CounterEvent>) -> Result<(), HandlerError> {
        let CounterEvent::Added { n } = event.event;
        let target = StreamId::for_aggregate::<Mirror>(event.stream_id.as_str())?;
        let context = CommandContext::caused_by(self.name(), event, 0);
        self.mirrors
            .execute_with(&target, CounterCommand::Add { n }, context)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_process_manager_links_causes_and_never_repeats_a_command() {
    let store = MemoryEventStore::new();
    let counters = Repository::<Counter, _>::new(store.clone());
    let flow = Uuid::new_v4();
    let id = StreamId::for_aggregate::<Counter>("a").unwrap();
    for n in 1..=3 {
        let context =
            CommandContext::new().with_metadata(Metadata::new().with_correlation_id(flow));
        counters
            .execute_with(&id, CounterCommand::Add { n }, context)
            .await
            .unwrap();
    }
    let process = MirrorProcess {
        mirrors: Repository::new(store.clone()),
    };
    let mut runner = ProjectionRunner::new(store.clone(), process);
    assert_eq!(runner.catch_up().await.unwrap(), 3);

    // Delivered again from the start (a lost checkpoint): no command runs twice.
    store
        .save_checkpoint("mirror-process", Checkpoint::START)
        .await
        .unwrap();
    assert_eq!(runner.catch_up().await.unwrap(), 3);

    let mirror = StreamId::for_aggregate::<Mirror>("counter-a").unwrap();
    let causes = store.read_stream(&id, Version(1), 10).await.unwrap();
    let effects = store.read_stream(&mirror, Version(1), 10).await.unwrap();
    assert_eq!(
        effects.len(),
        3,
        "one command per event, however often it is delivered"
    );
    for (cause, effect) in causes.iter().zip(&effects) {
        assert_eq!(effect.metadata.causation_id, Some(cause.event_id));
        assert_eq!(effect.metadata.correlation_id, Some(flow));
        assert_eq!(effect.metadata.actor.as_deref(), Some("mirror-process"));
    }
    let by_correlation: BTreeMap<_, usize> = store
        .read_all(Checkpoint::START, 100)
        .await
        .unwrap()
        .iter()
        .fold(BTreeMap::new(), |mut acc, e| {
            *acc.entry(e.metadata.correlation_id).or_default() += 1;
            acc
        });
    assert_eq!(
        by_correlation.get(&Some(flow)),
        Some(&6),
        "the whole flow shares one correlation id"
    );
}
