//! Grows a PostgreSQL event log to millions of events and measures, at each size, what should
//! not depend on the log's size: appends, live delivery to subscribers, an idle subscriber's
//! cost to the server, catch-up of the whole log and loads of long streams.
//!
//! Run with: `cargo run --release --manifest-path benches/scale/Cargo.toml`
//! (`-- --sizes 0,1000000,5000000` is the default; `-- --quick` tries it out at small sizes).
//! See README.md beside this crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use annals::prelude::*;
use annals::{Checkpoint, NewEvent, Payload, Subscription};
use annals_postgres::testing::{ClusterOptions, TestCluster};
use annals_postgres::tokio_postgres::{self, NoTls};
use annals_postgres::{PgConfig, PgEventStore};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const USAGE: &str = "usage: cargo run --release --manifest-path benches/scale/Cargo.toml -- [--sizes N,N,..] [--quick]

  --sizes N,..  the log sizes (events) to measure at, in increasing order (default 0,1000000,5000000)
  --quick       sizes 0,100000,300000 and short runs, to try the benchmark out
  --delivery N  grow the log to the first size, then measure live delivery N times in a row
                and nothing else (a subscriber that falls behind stops the run and says where)

A throwaway PostgreSQL cluster is started from the installed binaries with fsync and
synchronous_commit on (PostgreSQL's defaults otherwise); with SCALE_DATABASE_URL set, that
server is used instead, and schemas `scale`, `fresh` and `fresh_unpinned` are created there
(a second run goes on with the log the first one left).";

/// How long each throughput and delay measurement runs.
struct Pace {
    append_secs: u64,
    delay_secs: u64,
    idle_secs: u64,
    long_streams: [u64; 2],
}

const FULL: Pace = Pace {
    append_secs: 4,
    delay_secs: 6,
    idle_secs: 10,
    long_streams: [100_000, 1_000_000],
};

const QUICK: Pace = Pace {
    append_secs: 2,
    delay_secs: 2,
    idle_secs: 3,
    long_streams: [10_000, 100_000],
};

/// Streams the log grows in, besides the long streams.
const STREAMS: u64 = 10_000;
/// Writers that grow the log and measure concurrent appends.
const WRITERS: u64 = 8;
/// Live delivery is measured at this many events per second.
const RATE: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Meter)]
enum MeterEvent {
    Read { kwh: u64, note: String },
}

#[derive(Debug, Command)]
#[command(aggregate = Meter)]
enum MeterCommand {}

#[derive(Debug, Clone, Default, Aggregate)]
#[aggregate(event = MeterEvent, command = MeterCommand, error = Infallible)]
struct Meter {
    readings: u64,
    total: u64,
}

impl Meter {
    fn read(&mut self, kwh: &u64, _note: &str) {
        self.readings += 1;
        self.total += kwh;
    }
}

/// A meter reading of about 90 bytes; `kwh` carries the microseconds since the Unix epoch when
/// its append started, for the delay measurements.
fn reading(kwh: u64) -> Result<NewEvent> {
    let body = serde_json::json!({ "kwh": kwh, "note": "quarter-hourly reading, meter m-1" });
    Ok(NewEvent::new("Read", 1, Payload::from_value(&body)?))
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Appends to streams `{prefix}-{n}`, each writer to streams of its own, with exact expected
/// versions, as a repository does.
struct Writer {
    store: PgEventStore,
    prefix: String,
    streams: Vec<u64>,
    versions: HashMap<u64, u64>,
    next: usize,
}

impl Writer {
    fn new(store: &PgEventStore, prefix: &str, writer: u64, writers: u64) -> Self {
        Writer {
            store: store.clone(),
            prefix: prefix.to_owned(),
            streams: (0..STREAMS).filter(|n| n % writers == writer).collect(),
            versions: HashMap::new(),
            next: 0,
        }
    }

    async fn append(&mut self, events: u64) -> Result<u64> {
        let stream = self.streams[self.next % self.streams.len()];
        self.next += 1;
        let version = self.versions.entry(stream).or_insert(0);
        let id = StreamId::new(format!("{}-{stream}", self.prefix))?;
        let batch = (0..events)
            .map(|_| reading(now_micros()))
            .collect::<Result<Vec<_>>>()?;
        self.store
            .append(&id, ExpectedVersion::Exact(Version(*version)), batch)
            .await?;
        *version += events;
        Ok(events)
    }
}

/// Events per second appended by `writers` tasks in appends of `events`, for `secs` seconds.
async fn append_rate(
    store: &PgEventStore,
    prefix: &str,
    writers: u64,
    events: u64,
    secs: u64,
) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut writer = Writer::new(store, prefix, w, writers);
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            while Instant::now() < deadline {
                written += writer.append(events).await?;
            }
            Ok::<u64, BoxError>(written)
        }));
    }
    let mut written = 0;
    for task in tasks {
        written += task.await??;
    }
    Ok(written as f64 / started.elapsed().as_secs_f64())
}

/// Grows the log to `target` events with 100-event appends of [`WRITERS`] writers.
async fn grow(store: &PgEventStore, target: u64, count: &Arc<AtomicU64>) -> Result<()> {
    if count.load(Ordering::Relaxed) >= target {
        return Ok(());
    }
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut writer = Writer::new(store, "grown", w, WRITERS);
        let count = count.clone();
        // Writers of the same streams across calls: start from the stored versions.
        for &stream in &writer.streams {
            let id = StreamId::new(format!("grown-{stream}"))?;
            let version = store.stream_version(&id).await?;
            writer.versions.insert(stream, version.0);
        }
        tasks.push(tokio::spawn(async move {
            while count.load(Ordering::Relaxed) < target {
                let written = writer.append(100).await?;
                count.fetch_add(written, Ordering::Relaxed);
            }
            Ok::<(), BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The p50 and p99 of `delays` in milliseconds.
fn percentiles(mut delays: Vec<f64>) -> (f64, f64, f64) {
    if delays.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), delays[delays.len() - 1])
}

/// Delivery delays (ms) of a subscription from `from`, until it has seen `expected` events,
/// with the number seen so far in `seen`.
async fn subscribe(
    store: PgEventStore,
    from: Checkpoint,
    expected: usize,
    seen: Arc<AtomicU64>,
    at: Arc<std::sync::Mutex<Checkpoint>>,
) -> Result<Vec<f64>> {
    let mut subscription = Subscription::new(store, from);
    let mut delays = Vec::with_capacity(expected);
    while delays.len() < expected {
        let Some(batch) = subscription.next_batch().await? else {
            break;
        };
        let now = now_micros();
        for event in batch {
            let value = event.payload.to_value()?;
            let sent = value["kwh"].as_u64().unwrap_or(now);
            delays.push(now.saturating_sub(sent) as f64 / 1000.0);
        }
        seen.store(delays.len() as u64, Ordering::Relaxed);
        if let Ok(mut at) = at.lock() {
            *at = subscription.checkpoint();
        }
    }
    Ok(delays)
}

/// Append-to-subscriber delays at [`RATE`] events per second for `secs` seconds, seen by a
/// subscription on the writer's store and one on another store (its own pool and listener).
async fn delivery(
    admin: &tokio_postgres::Client,
    store: &PgEventStore,
    other: &PgEventStore,
    secs: u64,
    stage: u64,
) -> Result<[(f64, f64, f64); 2]> {
    let head = store.log_head().await?;
    let expected = (RATE * secs) as usize;
    let progress = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let at = [
        Arc::new(std::sync::Mutex::new(head)),
        Arc::new(std::sync::Mutex::new(head)),
    ];
    let same = tokio::spawn(subscribe(
        store.clone(),
        head,
        expected,
        progress[0].clone(),
        at[0].clone(),
    ));
    let another = tokio::spawn(subscribe(
        other.clone(),
        head,
        expected,
        progress[1].clone(),
        at[1].clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Four writers of 250 events per second each: an append with fsync on can take longer
    // than the 1 ms one writer would have.
    let writers = 4;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut writer = Writer::new(store, &format!("live{stage}"), w, writers);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * writers / RATE));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..expected as u64 / writers {
                tick.tick().await;
                writer.append(1).await?;
            }
            Ok::<(), BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut results = Vec::new();
    for (i, task) in [same, another].into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(delays) => results.push(delays??),
            Err(_) => {
                let checkpoint = at[i].lock().map(|c| *c).unwrap_or(head);
                let after = store.read_all(checkpoint, 10).await?;
                let activity = admin
                    .query(
                        "SELECT pid::text || ' ' || coalesce(backend_type, '') || ' xid ' || \
                         coalesce(backend_xid::text, '-') || ' ' || coalesce(state, '') || ' ' || \
                         left(coalesce(query, ''), 80) FROM pg_stat_activity \
                         WHERE backend_xid IS NOT NULL OR backend_type <> 'client backend'",
                        &[],
                    )
                    .await?;
                let activity: Vec<String> = activity.iter().map(|r| r.get(0)).collect();
                return Err(format!(
                    "subscriber {i} saw {} of {expected} events 30 s after the last append; \
                     it is at {checkpoint:?}; read_all from there now returns {} events \
                     (first {:?}); server activity: {activity:#?}",
                    progress[i].load(Ordering::Relaxed),
                    after.len(),
                    after.first().map(|e| e.checkpoint()),
                )
                .into());
            }
        }
    }
    let another = results.pop().unwrap_or_default();
    let same = results.pop().unwrap_or_default();
    Ok([percentiles(same), percentiles(another)])
}

/// The CPU time (clock ticks of 1/100 s, Linux's `USER_HZ`) each server process has used so
/// far, `utime + stime`, by process id, of every process named `postgres`.
fn server_ticks() -> HashMap<i32, u64> {
    let mut ticks = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_string_lossy().parse::<i32>().ok() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !name.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3, utime field 14, stime field 15 (1-based).
        if let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) {
            let used = user.parse::<u64>().unwrap_or(0) + system.parse::<u64>().unwrap_or(0);
            ticks.insert(pid, used);
        }
    }
    ticks
}

/// The CPU seconds server processes used between two [`server_ticks`] readings: a process that
/// started in between counts from zero, one that ended in between is left out.
fn cpu_between(before: &HashMap<i32, u64>, after: &HashMap<i32, u64>) -> f64 {
    let ticks: u64 = after
        .iter()
        .map(|(pid, &now)| now.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    ticks as f64 / 100.0
}

/// The server's CPU use (% of one core) over `secs` seconds with nothing written: all its
/// processes without a subscriber, then with two idle subscriptions (one on `store`, one on
/// `other`), and the client backends alone (the stores' connections) with them.
async fn idle_cost(
    admin: &tokio_postgres::Client,
    store: &PgEventStore,
    other: &PgEventStore,
    secs: u64,
) -> Result<(f64, f64, f64)> {
    let window = Duration::from_secs(secs);
    let percent = |used: f64| used / secs as f64 * 100.0;
    let before = server_ticks();
    tokio::time::sleep(window).await;
    let quiet = percent(cpu_between(&before, &server_ticks()));
    let head = store.log_head().await?;
    let subscribers = [store.clone(), other.clone()].map(|store| {
        tokio::spawn(async move {
            let mut subscription = Subscription::new(store, head);
            subscription.next_batch().await.map(|_| ())
        })
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backends: Vec<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let before = server_ticks();
    tokio::time::sleep(window).await;
    let after = server_ticks();
    let idle = percent(cpu_between(&before, &after));
    let only = |ticks: &HashMap<i32, u64>| -> HashMap<i32, u64> {
        ticks
            .iter()
            .filter(|(pid, _)| backends.contains(pid))
            .map(|(&pid, &t)| (pid, t))
            .collect()
    };
    let idle_backends = percent(cpu_between(&only(&before), &only(&after)));
    for subscriber in subscribers {
        subscriber.abort();
    }
    Ok((quiet, idle, idle_backends))
}

/// Events per second reading the whole log in pages of `batch`.
async fn catch_up(store: &PgEventStore, batch: usize) -> Result<(u64, f64)> {
    let started = Instant::now();
    let mut reader = store.log_reader(Checkpoint::START).batch_size(batch);
    let mut seen = 0u64;
    while let Some(events) = reader.next_batch().await? {
        seen += events.len() as u64;
    }
    Ok((seen, seen as f64 / started.elapsed().as_secs_f64()))
}

/// `VmHWM` (peak resident set) in MiB, after resetting it when `reset` is set.
fn peak_mib(reset: bool) -> f64 {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Writes a stream of `events` readings in appends of 1,000.
async fn write_long(store: &PgEventStore, id: &StreamId, events: u64) -> Result<()> {
    for chunk in 0..events / 1_000 {
        let batch = (0..1_000).map(|_| reading(1)).collect::<Result<Vec<_>>>()?;
        store
            .append(id, ExpectedVersion::Exact(Version(chunk * 1_000)), batch)
            .await?;
    }
    Ok(())
}

/// Seconds and peak RSS (MiB) of a repository load of `id`, cache off.
async fn load(store: &PgEventStore, id: &StreamId, events: u64) -> Result<(f64, f64, f64)> {
    let before = peak_mib(true);
    let started = Instant::now();
    let meters = Repository::<Meter, _>::new(store.clone()).with_cache_capacity(0);
    let loaded = meters.load(id).await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_mib(false);
    if loaded.state.readings != events {
        return Err(format!("loaded {} of {events} events", loaded.state.readings).into());
    }
    Ok((secs, before, peak))
}

/// Appends per second of one writer in successive windows of `window`, on `store`.
async fn one_writer_windows(
    store: &PgEventStore,
    prefix: &str,
    windows: usize,
    window: Duration,
) -> Result<Vec<f64>> {
    let mut writer = Writer::new(store, prefix, 0, 1);
    let mut rates = Vec::new();
    for _ in 0..windows {
        let started = Instant::now();
        let mut written = 0;
        while started.elapsed() < window {
            written += writer.append(1).await?;
        }
        rates.push(written as f64 / started.elapsed().as_secs_f64());
    }
    Ok(rates)
}

/// A connection of the harness's own, to set a schema up the way a user might.
async fn admin(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// One-event appends of one writer on a just-migrated store whose events table was analyzed
/// while empty, with this crate's planner settings and, as a baseline, without them.
async fn slow_start(url: &str, pace: &Pace) -> Result<()> {
    let admin = admin(url).await?;
    let windows = (pace.append_secs * 3) as usize;
    let window = Duration::from_secs(2);
    println!(
        "\n## A new store (events table analyzed while empty), one writer, one-event appends\n"
    );
    println!("| store | appends/s in successive 2 s windows |");
    println!("|---|---|");
    for (label, schema, pinned) in [
        ("baseline: planner settings off", "fresh_unpinned", false),
        ("this crate", "fresh", true),
    ] {
        let url = if pinned {
            url.to_owned()
        } else {
            // The URL's options come after the store's, so they win.
            format!("{url}?options=-c%20enable_seqscan%3Don%20-c%20enable_bitmapscan%3Don")
        };
        let store =
            PgEventStore::connect_with(&url, PgConfig::default().with_schema(schema)).await?;
        if !pinned {
            admin
                .batch_execute(&format!(
                    "ALTER FUNCTION \"{schema}\".stream_turn(text) RESET ALL"
                ))
                .await?;
        }
        admin
            .batch_execute(&format!("ANALYZE \"{schema}\".events"))
            .await?;
        let rates = one_writer_windows(&store, "fresh", windows, window).await?;
        let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!("| {label} | {} |", shown.join(", "));
    }
    Ok(())
}

fn parse_sizes(list: &str) -> Result<Vec<u64>> {
    list.split(',')
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("--sizes {list}: {e}").into())
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut sizes = vec![0, 1_000_000, 5_000_000];
    let mut pace = &FULL;
    let mut deliveries = 0u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => sizes = parse_sizes(&args.next().ok_or(USAGE)?)?,
            "--delivery" => {
                deliveries = args.next().ok_or(USAGE)?.parse().map_err(|_| USAGE)?;
            }
            "--quick" => {
                sizes = vec![0, 100_000, 300_000];
                pace = &QUICK;
            }
            _ => return Err(USAGE.into()),
        }
    }
    // A server of the user's own, or a throwaway one.
    let (_cluster, url) = match std::env::var("SCALE_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (None, url),
        _ => {
            let cluster = TestCluster::start_with(ClusterOptions::DURABLE)?;
            let url = cluster.url().to_owned();
            (Some(cluster), url)
        }
    };
    println!("# Scale: PostgreSQL 15, fsync and synchronous_commit on, {STREAMS} streams, {WRITERS} writers\n");
    println!("Release build; one run; all figures from this run, side by side.");
    let admin = admin(&url).await?;

    if deliveries > 0 {
        let config = PgConfig::default().with_schema("scale");
        let store = PgEventStore::connect_with(&url, config.clone()).await?;
        let other = PgEventStore::connect_with(&url, config).await?;
        let count = Arc::new(AtomicU64::new(store.log_head().await?.position.0));
        grow(&store, sizes[0], &count).await?;
        for round in 0..deliveries {
            let [same, another] = delivery(
                &admin,
                &store,
                &other,
                pace.delay_secs,
                100 + u64::from(round),
            )
            .await?;
            println!(
                "round {round}: p50 / p99 ms, same store {:.1} / {:.1}, another store {:.1} / {:.1}",
                same.0, same.1, another.0, another.1
            );
        }
        return Ok(());
    }
    slow_start(&url, pace).await?;

    // The log that grows, and an empty store for the measurements at size 0. The long streams
    // are written first in each, so the loads find them at every size.
    let stores = |schema: &'static str| {
        let url = url.clone();
        async move {
            let config = PgConfig::default().with_schema(schema);
            let store = PgEventStore::connect_with(&url, config.clone()).await?;
            let other = PgEventStore::connect_with(&url, config).await?;
            Ok::<_, BoxError>((store, other))
        }
    };
    let long_ids = [StreamId::new("long-100k")?, StreamId::new("long-1m")?];
    let count = Arc::new(AtomicU64::new(0));
    let mut grown: Option<(PgEventStore, PgEventStore)> = None;

    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    for (stage, &size) in sizes.iter().enumerate() {
        let (store, other, long_written) = if size == 0 {
            let (store, other) = stores("empty").await?;
            (store, other, false)
        } else {
            if grown.is_none() {
                let (store, other) = stores("scale").await?;
                if store.stream_version(&long_ids[1]).await?.0 == 0 {
                    for (id, &n) in long_ids.iter().zip(&pace.long_streams) {
                        write_long(&store, id, n).await?;
                    }
                }
                grown = Some((store, other));
            }
            let (store, other) = grown.clone().ok_or("no store")?;
            (store, other, true)
        };
        let started = Instant::now();
        count.store(store.log_head().await?.position.0, Ordering::Relaxed);
        grow(&store, size, &count).await?;
        let grown_in = started.elapsed();
        let head = store.log_head().await?;
        let events = head.position.0;
        eprintln!(
            "stage {stage}: {events} events (grown in {:.0} s)",
            grown_in.as_secs_f64()
        );
        let prefix = format!("stage{stage}");
        let one = append_rate(&store, &format!("{prefix}-one1"), 1, 1, pace.append_secs).await?;
        let one_many = append_rate(
            &store,
            &format!("{prefix}-one8"),
            WRITERS,
            1,
            pace.append_secs,
        )
        .await?;
        let hundred = append_rate(
            &store,
            &format!("{prefix}-hundred"),
            WRITERS,
            100,
            pace.append_secs,
        )
        .await?;
        let [same, another] =
            delivery(&admin, &store, &other, pace.delay_secs, stage as u64).await?;
        let (quiet, idle, backends) = idle_cost(&admin, &store, &other, pace.idle_secs).await?;
        let mut catch = Vec::new();
        for batch in [500, 1_000, 5_000, 10_000] {
            let (seen, rate) = catch_up(&store, batch).await?;
            catch.push(format!("{:.0}k", rate / 1000.0));
            eprintln!("  catch-up of {seen} events, batches of {batch}: {rate:.0}/s");
        }
        if !long_written {
            for (id, &n) in long_ids.iter().zip(&pace.long_streams) {
                write_long(&store, id, n).await?;
            }
        }
        let mut loads = Vec::new();
        for (id, &n) in long_ids.iter().zip(&pace.long_streams) {
            let (secs, before, peak) = load(&store, id, n).await?;
            loads.push(format!(
                "{secs:.2} s, peak {peak:.0} MiB (from {before:.0})"
            ));
        }
        let mut row = vec![
            format!("{one:.0}"),
            format!("{one_many:.0}"),
            format!("{hundred:.0}"),
            format!("{:.1} / {:.1} (max {:.0})", same.0, same.1, same.2),
            format!("{:.1} / {:.1} (max {:.0})", another.0, another.1, another.2),
            format!("{quiet:.2}% / {idle:.2}% / {backends:.2}%"),
        ];
        row.extend(catch);
        row.extend(loads);
        rows.push((events, row));
    }

    println!("\n## At each size\n");
    let mut header = vec!["measure".to_owned()];
    header.extend(rows.iter().map(|(events, _)| format!("{events} events")));
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    let labels = [
        "one-event appends/s, 1 writer".to_owned(),
        format!("one-event appends, events/s, {WRITERS} writers"),
        format!("100-event appends, events/s, {WRITERS} writers"),
        format!("delay to a subscriber on the same store, p50 / p99 ms, {RATE} events/s"),
        format!("delay to a subscriber on another store, p50 / p99 ms, {RATE} events/s"),
        "server CPU, % of a core, nothing written: all processes, no subscriber / all, two idle subscribers / their backends alone".to_owned(),
        "catch-up of the whole log, events/s, batches of 500".to_owned(),
        "catch-up, batches of 1,000".to_owned(),
        "catch-up, batches of 5,000".to_owned(),
        "catch-up, batches of 10,000".to_owned(),
        format!("load of a {}-event stream (cache off), client peak RSS", pace.long_streams[0]),
        format!("load of a {}-event stream (cache off), client peak RSS", pace.long_streams[1]),
    ];
    for (i, label) in labels.iter().enumerate() {
        let cells: Vec<&str> = rows.iter().map(|(_, row)| row[i].as_str()).collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    Ok(())
}
