//! The kill test: a relay aborted at random points, twenty times, while writers append,
//! leaves each event in the JetStream stream exactly once and in version order within each
//! aggregate stream; at every abort, its checkpoint is behind what the stream holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod relay_common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::{Checkpoint, EventStore, StopSignal};
use annals_memory::MemoryEventStore;
use annals_nats::async_nats::jetstream;
use annals_nats::testing::NatsServer;
use annals_nats::{Relay, RelayConfig, SubjectMapping};
use relay_common::{append, assert_exactly_once_in_order, log, read_back};

const STREAMS: usize = 8;
const EVENTS_PER_STREAM: usize = 2_500;
const APPENDED_BEFORE: usize = 1_000;
const KILLS: usize = 20;

/// A small xorshift generator: the seed is printed, and `RELAY_KILL_SEED` replays one.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("RELAY_KILL_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("RELAY_KILL_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// How many events of the log are at or before `checkpoint`.
async fn events_through(store: &MemoryEventStore, checkpoint: Option<Checkpoint>) -> usize {
    let Some(checkpoint) = checkpoint else {
        return 0;
    };
    log(store)
        .await
        .iter()
        .filter(|event| event.checkpoint() <= checkpoint)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_twenty_times_leaves_each_event_once_and_in_order() {
    let started = Instant::now();
    let mut random = Random::new();
    let server = NatsServer::start().unwrap();
    let store = MemoryEventStore::new();
    let streams: Vec<String> = (0..STREAMS).map(|i| format!("order-{i}")).collect();

    // Part of the log is there before the relay first starts...
    for stream in &streams {
        append(&store, stream, "Placed", APPENDED_BEFORE, 100).await;
    }
    // ...and the rest is appended by several writers while it runs and is killed.
    let writers: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                let mut left = EVENTS_PER_STREAM - APPENDED_BEFORE;
                let mut size = 1 + i;
                while left > 0 {
                    let n = size.min(left);
                    append(&store, &stream, "Updated", n, n).await;
                    left -= n;
                    size = size % 23 + 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();

    let config = RelayConfig::new("KILLED", SubjectMapping::new("killed"))
        .with_batch_size(300)
        .with_publish_window(64)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(200));
    let checker = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(checker.clone());
    for kill in 0..KILLS {
        // Each incarnation has a connection of its own, as a restarted process would.
        let client = async_nats::connect(server.url()).await.unwrap();
        let mut relay = Relay::new(store.clone(), client, config.clone());
        let task = tokio::spawn(async move { relay.run(StopSignal::never()).await });
        tokio::time::sleep(Duration::from_millis(1 + random.below(120))).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());

        // Nothing unacknowledged is behind the checkpoint: the stream holds at least every
        // event up to it.
        let checkpoint = store
            .load_checkpoint(&config.checkpoint_name())
            .await
            .unwrap();
        let through = events_through(&store, checkpoint).await;
        let held = match js.get_stream("KILLED").await {
            Ok(mut stream) => stream.info().await.unwrap().state.messages as usize,
            Err(_) => 0,
        };
        assert!(
            through <= held,
            "kill {kill}: the checkpoint is after {through} events, the stream holds {held}"
        );
        eprintln!("kill {kill}: checkpoint after {through} events, stream holds {held}");
    }
    for writer in writers {
        writer.await.unwrap();
    }

    // A last incarnation finishes the job.
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut relay = Relay::new(store.clone(), client, config.clone());
    relay.catch_up().await.unwrap();
    let events = log(&store).await;
    assert_eq!(events.len(), STREAMS * EVENTS_PER_STREAM);
    let stored = read_back(&js, "KILLED").await;
    assert_exactly_once_in_order(&stored, &events);
    eprintln!(
        "{} events relayed through {KILLS} kills in {:?}",
        events.len(),
        started.elapsed()
    );
}
