//! A consumer task aborted at random points, many times, and started again: with an inbox,
//! every event's effect is there exactly once, on PostgreSQL (the read model and the inbox in
//! one transaction) and in memory (the effect and the inbox record under one lock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod consumer_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annals::{stop_signal, Envelope, HandlerError, StopSignal};
use annals_nats::consumer::PgNatsHandler;
use annals_nats::{MemoryInbox, MemoryNatsHandler, NatsConsumer};
use annals_postgres::tokio_postgres::Transaction;
use consumer_common::{placed, Bus, ShopEvent, STREAM};
use uuid::Uuid;

/// How many events each test publishes.
const EVENTS: usize = 300;
/// How many times the consumer is aborted.
const ABORTS: usize = 40;

/// A small deterministic generator, seeded per run (the seed is printed, to replay a run).
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = Uuid::new_v4().as_u64_pair().0 | 1;
        eprintln!("random seed: {seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

async fn publish_events(bus: &Bus) -> (Vec<Uuid>, u64) {
    let mut ids = Vec::new();
    let mut last = 0;
    for n in 0..EVENTS {
        let event = placed(&n.to_string(), n as u64);
        ids.push(event.event_id);
        last = bus.publish(&event).await;
    }
    (ids, last)
}

/// Starts `run` again and again, and aborts it each time at a random point while it handles
/// events (a little after its handler was first called in this run), then lets it finish:
/// until the consumer has acknowledged every message. `calls` counts the handler's calls.
async fn abort_at_random_then_finish<F, Fut>(
    bus: &Bus,
    name: &str,
    last: u64,
    calls: &AtomicUsize,
    run: F,
) where
    F: Fn(StopSignal) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut random = Random::seeded();
    let started = Instant::now();
    let mut aborts = 0;
    let all_acknowledged = || async {
        let info = bus.consumer_info(name).await;
        info.is_some_and(|info| info.ack_floor.stream_sequence >= last)
    };
    while aborts < ABORTS && !all_acknowledged().await {
        let before = calls.load(Ordering::SeqCst);
        let task = tokio::spawn(run(StopSignal::never()));
        consumer_common::wait_until("the handler called", || async {
            calls.load(Ordering::SeqCst) > before || all_acknowledged().await
        })
        .await;
        tokio::time::sleep(Duration::from_micros(random.below(25_000))).await;
        task.abort();
        let _ = task.await;
        aborts += 1;
    }
    let aborted = bus.consumer_info(name).await.unwrap();
    let aborts_took = started.elapsed();
    let (stopper, stop) = stop_signal();
    let task = tokio::spawn(run(stop));
    bus.wait_all_acknowledged(name, last).await;
    stopper.stop();
    task.await.unwrap();
    let done = bus.consumer_info(name).await.unwrap();
    let delivered_again = done.delivered.consumer_sequence - last;
    eprintln!(
        "{name}: {aborts} aborts in {aborts_took:?}, after which {} of {last} were acknowledged; \
         finished in {:?}; {delivered_again} deliveries were repeats; the handler was called {} times",
        aborted.ack_floor.stream_sequence,
        started.elapsed() - aborts_took,
        calls.load(Ordering::SeqCst),
    );
    assert!(
        aborts >= ABORTS / 2,
        "too few aborts while work remained: {aborts}"
    );
    assert!(
        delivered_again > 0,
        "the aborts left messages delivered but not acknowledged"
    );
}

fn consumer(bus: &Bus, name: &str) -> NatsConsumer {
    // A short acknowledgement wait: what an aborted task held is delivered again soon.
    NatsConsumer::new(bus.js.clone(), name, STREAM)
        .with_batch_size(20)
        .with_ack_wait(Duration::from_secs(1))
}

/// Writes each event to a table with no key, in two statements with a pause between: a
/// second application would show as a second row.
struct Seen {
    table: String,
    calls: Arc<AtomicUsize>,
}

#[annals::async_trait]
impl PgNatsHandler for Seen {
    type Event = ShopEvent;

    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &Envelope<ShopEvent>,
    ) -> Result<(), HandlerError> {
        tx.execute(
            &format!("INSERT INTO {} (event_id) VALUES ($1)", self.table),
            &[&event.event_id],
        )
        .await?;
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_micros(300)).await;
        tx.execute(
            &format!(
                "UPDATE {} SET applied = applied + 1 WHERE event_id = $1",
                self.table
            ),
            &[&event.event_id],
        )
        .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_every_event_is_applied_exactly_once_however_often_the_consumer_dies() {
    let bus = Bus::start().await;
    let store = annals_postgres::testing::fresh_store().await;
    let table = format!("\"{}\".seen", store.schema());
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE {table} (event_id uuid NOT NULL, applied int NOT NULL DEFAULT 0)"
        ))
        .await
        .unwrap();
    let (ids, last) = publish_events(&bus).await;

    let consumer = consumer(&bus, "pg-kill");
    let calls = Arc::new(AtomicUsize::new(0));
    abort_at_random_then_finish(&bus, "pg-kill", last, &calls, |stop| {
        let (consumer, store) = (consumer.clone(), store.clone());
        let handler = Seen {
            table: table.clone(),
            calls: calls.clone(),
        };
        async move {
            consumer
                .run_on_postgres(&store, handler, stop)
                .await
                .unwrap();
        }
    })
    .await;

    let client = store.pool().get().await.unwrap();
    let rows = client
        .query(&format!("SELECT event_id, applied FROM {table}"), &[])
        .await
        .unwrap();
    let mut seen: Vec<Uuid> = rows.iter().map(|row| row.get(0)).collect();
    assert!(
        rows.iter().all(|row| row.get::<_, i32>(1) == 1),
        "each row written whole, once"
    );
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen.len(), EVENTS, "one row per event");
    assert_eq!(seen, expected, "every event, none twice");
    let inbox: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".inbox WHERE consumer = 'pg-kill'",
                store.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(inbox, EVENTS as i64);
    assert!(
        bus.dead_letters_or_none().await.is_empty(),
        "nothing parked"
    );
}

/// Remembers each event it applies, where the test can see it after the consumer is gone.
struct Applied {
    applied: Arc<Mutex<Vec<Uuid>>>,
    calls: Arc<AtomicUsize>,
}

impl MemoryNatsHandler for Applied {
    type Event = ShopEvent;

    fn handle(&mut self, event: &Envelope<ShopEvent>) -> Result<(), HandlerError> {
        // A slow handler (blocking, as a heavy synchronous one would), so that the aborts
        // meet work in progress: a run is aborted at most 45 ms after its first call (20 ms
        // to notice the call, 25 at most before the abort), so it handles at most 12 events,
        // and half the aborts cannot get through the 300 events. At 1 ms a run could handle
        // 45, and the work sometimes ended before the test's twentieth abort.
        std::thread::sleep(Duration::from_millis(4));
        self.applied.lock().unwrap().push(event.event_id);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_every_event_is_applied_exactly_once_however_often_the_consumer_dies() {
    let bus = Bus::start().await;
    let (ids, last) = publish_events(&bus).await;
    let inbox = MemoryInbox::new();
    let applied = Arc::new(Mutex::new(Vec::new()));

    let consumer = consumer(&bus, "memory-kill");
    let calls = Arc::new(AtomicUsize::new(0));
    abort_at_random_then_finish(&bus, "memory-kill", last, &calls, |stop| {
        let (consumer, inbox) = (consumer.clone(), inbox.clone());
        let handler = Applied {
            applied: applied.clone(),
            calls: calls.clone(),
        };
        async move {
            consumer
                .run_with_inbox(&inbox, handler, stop)
                .await
                .unwrap();
        }
    })
    .await;

    let mut seen = applied.lock().unwrap().clone();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen.len(), EVENTS, "one application per event");
    assert_eq!(seen, expected, "every event, none twice");
    assert_eq!(inbox.len(), EVENTS);
    assert!(ids.iter().all(|id| inbox.contains("memory-kill", *id)));
    assert!(
        bus.dead_letters_or_none().await.is_empty(),
        "nothing parked"
    );
}
