//! Relay throughput against a raw `async-nats` publisher, and latency from an append to a
//! consumer's handler, on a throwaway `nats-server` with JetStream.
//!
//! Run with: `cargo run --release --manifest-path benches/nats/Cargo.toml` (`-- --quick` for
//! a short try). Writes `RESULTS.md` beside this crate's `Cargo.toml` (`target/RESULTS-quick.md`
//! with `--quick`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use annals::{
    stop_signal, Checkpoint, Envelope, EventStore, EventStoreExt, ExpectedVersion, HandlerError,
    Metadata, NewEvent, RecordedEvent, StreamId,
};
use annals_memory::MemoryEventStore;
use annals_nats::consumer::{NatsConsumer, NatsHandler};
use annals_nats::testing::NatsServer;
use annals_nats::wire::{body_of, headers_of};
use annals_nats::{Relay, RelayConfig, SubjectMapping, DEFAULT_PUBLISH_WINDOW};
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The events of the bench's one type.
#[derive(Debug, Clone, Serialize, Deserialize, annals::Event)]
enum AccountEvent {
    Deposited { amount: u64, note: String },
}

/// How a run is sized.
struct Plan {
    events: usize,
    streams: usize,
    rounds: usize,
    rate: u64,
    latency_for: Duration,
    quick: bool,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = if quick {
        Plan {
            events: 10_000,
            streams: 100,
            rounds: 1,
            rate: 1_000,
            latency_for: Duration::from_secs(2),
            quick,
        }
    } else {
        Plan {
            events: 100_000,
            streams: 1_000,
            rounds: 5,
            rate: 1_000,
            latency_for: Duration::from_secs(20),
            quick,
        }
    };
    let server = NatsServer::start()?;
    let client = async_nats::connect(server.url()).await?;
    let version = client.server_info().version;

    let store = seeded(plan.events, plan.streams).await?;
    let mut events = Vec::with_capacity(plan.events);
    let mut reader = store.log_reader(Checkpoint::START);
    while let Some(batch) = reader.next_batch().await? {
        events.extend(batch);
    }

    let mut raw_rates = Vec::new();
    let mut ordered_rates = Vec::new();
    let mut relay_rates = Vec::new();
    for round in 0..plan.rounds {
        // Rotate which goes first, so none always meets a warmer server.
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => relay_rates.push(relay_rate(&store, &client, round, plan.events).await?),
                1 => raw_rates.push(raw_rate(&client, &events, round, false).await?),
                _ => ordered_rates.push(raw_rate(&client, &events, round, true).await?),
            }
        }
    }
    let raw = median(&mut raw_rates);
    let ordered = median(&mut ordered_rates);
    let relay = median(&mut relay_rates);

    let latencies = latency(&client, &plan).await?;

    let report = format!(
        "# annals-nats benchmark\n\n\
         nats-server {version} (one node, JetStream file storage, a throwaway store directory), \
         async-nats 0.51, on the same machine; {cores} cores.\n\n\
         | measurement | value |\n|---|---:|\n\
         | relay: {events} events of {streams} streams to JetStream, window {window}, median of {rounds} | {relay:.0} events/s |\n\
         | raw async-nats publisher of the same messages, same window, median of {rounds} | {raw:.0} events/s |\n\
         | relay / raw | {ratio:.2}x |\n\
         | raw publisher adding the relay's order headers (`Nats-Expected-Stream`, `Nats-Expected-Last-Msg-Id`), median of {rounds} | {ordered:.0} events/s |\n\
         | relay / raw with the same headers | {ordered_ratio:.2}x |\n\
         | append to consumer handler at {rate} events/s for {secs} s: p50 | {p50:.2} ms |\n\
         | p99 | {p99:.2} ms |\n\
         | max | {max:.2} ms |\n\n\
         Runs (events/s): relay {relay_rates:?}, raw {raw_rates:?}, raw with the order headers {ordered_rates:?}.\n",
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        events = plan.events,
        streams = plan.streams,
        window = DEFAULT_PUBLISH_WINDOW,
        rounds = plan.rounds,
        ratio = relay / raw,
        ordered_ratio = relay / ordered,
        rate = plan.rate,
        secs = plan.latency_for.as_secs(),
        p50 = millis(percentile(&latencies, 0.50)),
        p99 = millis(percentile(&latencies, 0.99)),
        max = millis(percentile(&latencies, 1.0)),
        relay_rates = relay_rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
        raw_rates = raw_rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
        ordered_rates = ordered_rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
    );
    print!("{report}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = if plan.quick {
        dir.join("target").join("RESULTS-quick.md")
    } else {
        dir.join("RESULTS.md")
    };
    std::fs::write(&path, report)?;
    eprintln!("written to {}", path.display());
    Ok(())
}

/// A memory store holding `events` events spread over `streams` streams, in appends of 100.
async fn seeded(events: usize, streams: usize) -> Result<MemoryEventStore, BoxError> {
    let store = MemoryEventStore::new();
    let per_stream = events / streams;
    for s in 0..streams {
        let id = StreamId::new(format!("account-{s}"))?;
        let mut written = 0;
        while written < per_stream {
            let count = (per_stream - written).min(100);
            let batch = (0..count)
                .map(|n| event(written as u64 + n as u64))
                .collect::<Result<Vec<_>, _>>()?;
            store.append(&id, ExpectedVersion::Any, batch).await?;
            written += count;
        }
    }
    Ok(store)
}

fn event(n: u64) -> Result<NewEvent, BoxError> {
    let event = AccountEvent::Deposited {
        amount: n,
        note: "a deposit of the benchmark".to_owned(),
    };
    Ok(NewEvent::encode(
        &event,
        Metadata::new().with_actor("bench"),
    )?)
}

/// Events per second of a relay catching up on `store` into a new stream.
async fn relay_rate(
    store: &MemoryEventStore,
    client: &async_nats::Client,
    round: usize,
    events: usize,
) -> Result<f64, BoxError> {
    let config = RelayConfig::new(
        format!("RELAY_{round}"),
        SubjectMapping::new(format!("relay{round}")),
    )
    .with_name(format!("bench-{round}"))
    .with_batch_size(relay_batch_size());
    let mut relay = Relay::new(store.clone(), client.clone(), config);
    let started = Instant::now();
    let published = relay.catch_up().await?;
    let elapsed = started.elapsed();
    if published != events as u64 {
        return Err(format!("the relay published {published} of {events} events").into());
    }
    Ok(events as f64 / elapsed.as_secs_f64())
}

/// The relay's batch size: `RELAY_BATCH_SIZE`, or the relay's default.
fn relay_batch_size() -> usize {
    std::env::var("RELAY_BATCH_SIZE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(annals_nats::relay::DEFAULT_RELAY_BATCH_SIZE)
}

/// Events per second of a raw publisher of the same messages (subjects, headers, bodies) into
/// a new stream, with the relay's window of unacknowledged messages.
async fn raw_rate(
    client: &async_nats::Client,
    events: &[RecordedEvent],
    round: usize,
    with_order_headers: bool,
) -> Result<f64, BoxError> {
    let js = jetstream::new(client.clone());
    let round = format!("{round}{}", if with_order_headers { "o" } else { "" });
    let prefix = format!("raw{round}");
    js.create_stream(stream::Config {
        name: format!("RAW_{round}"),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await?;
    let mapping = SubjectMapping::new(prefix);
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(DEFAULT_PUBLISH_WINDOW);
    // Each message is made as the relay makes it, from the stored event, in the timed loop.
    let stream_name = format!("RAW_{round}");
    for (index, event) in events.iter().enumerate() {
        let (subject, mut headers, body): (String, HeaderMap, Bytes) =
            (mapping.subject(event), headers_of(event), body_of(event));
        if with_order_headers {
            // The headers the relay adds for order: the stream it expects, and the message
            // before this one.
            headers.insert("Nats-Expected-Stream", stream_name.as_str());
            if let Some(previous) = index.checked_sub(1).map(|i| &events[i]) {
                headers.insert(
                    "Nats-Expected-Last-Msg-Id",
                    previous.event_id.to_string().as_str(),
                );
            }
        }
        if pending.len() == DEFAULT_PUBLISH_WINDOW {
            if let Some(ack) = pending.pop_front() {
                let _: jetstream::publish::PublishAck = ack.await?;
            }
        }
        pending.push_back(js.publish_with_headers(subject, headers, body).await?);
    }
    for ack in pending {
        ack.await?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

/// Records, for each event it handles, how long ago it was appended.
struct Timer {
    appended: Arc<Mutex<HashMap<uuid::Uuid, Instant>>>,
    seen: Arc<Mutex<Vec<Duration>>>,
}

#[annals::async_trait]
impl NatsHandler for Timer {
    type Event = AccountEvent;

    async fn handle(&mut self, event: &Envelope<AccountEvent>) -> Result<(), HandlerError> {
        let now = Instant::now();
        let appended = self
            .appended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&event.event_id);
        if let Some(appended) = appended {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(now - appended);
        }
        Ok(())
    }
}

/// Latencies from append to handler of events appended at `plan.rate` per second while a
/// relay and a consumer run.
async fn latency(client: &async_nats::Client, plan: &Plan) -> Result<Vec<Duration>, BoxError> {
    let store = MemoryEventStore::new();
    let config = RelayConfig::new("LATENCY", SubjectMapping::new("latency")).with_name("latency");
    let mut relay = Relay::new(store.clone(), client.clone(), config);
    // The stream exists before the consumer binds to it.
    relay.catch_up().await?;
    let (stopper, stop) = stop_signal();
    let relay_task = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop).await }
    });
    let appended = Arc::new(Mutex::new(HashMap::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = NatsConsumer::new(jetstream::new(client.clone()), "latency", "LATENCY")
        .with_filter_subject("latency.>");
    let consumer_task = tokio::spawn({
        let handler = Timer {
            appended: appended.clone(),
            seen: seen.clone(),
        };
        let stop = stop.clone();
        async move { consumer.run(handler, stop).await }
    });

    let total = plan.rate * plan.latency_for.as_secs();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / plan.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..total {
        tick.tick().await;
        let id = StreamId::new(format!("account-{}", n % 100))?;
        let new = event(n)?;
        appended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(new.event_id, Instant::now());
        store.append(&id, ExpectedVersion::Any, vec![new]).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap_or_else(PoisonError::into_inner).len() < total as usize {
        if Instant::now() > deadline {
            return Err("the consumer did not receive every event within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stopper.stop();
    relay_task.await?;
    consumer_task.await??;
    let mut latencies = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
    latencies.sort();
    Ok(latencies)
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
