//! Loads a stream of 1,000,000 events from PostgreSQL and reports the time and the peak memory
//! of the load: reads are paged, so memory stays bounded by the batch size, not the stream.
//!
//! Run with: cargo bench -p eventsource-postgres --bench large_stream
//!
//! Starts a throwaway cluster like the tests do (or uses `DATABASE_URL`), appends the events in
//! appends of 1,000, then resets the process's peak-RSS counter (`/proc/self/clear_refs`) before
//! each load and reads `VmHWM` after it.

use std::time::Instant;

use eventsource::prelude::*;
use eventsource::{Checkpoint, NewEvent, Payload};
use eventsource_postgres::testing::fresh_store;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

const EVENTS: u64 = 1_000_000;
const PER_APPEND: u64 = 1_000;

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

/// `VmHWM` (peak resident set) in KiB, after resetting it when `reset` is set.
fn peak_kib(reset: bool) -> Option<u64> {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = fresh_store().await;
    let id = StreamId::for_aggregate::<Meter>("m-1")?;
    let started = Instant::now();
    for chunk in 0..EVENTS / PER_APPEND {
        let events = (0..PER_APPEND)
            .map(|i| {
                let body = serde_json::json!({ "kwh": chunk * PER_APPEND + i, "note": "quarter-hourly reading, meter m-1" });
                Ok(NewEvent::new("Read", 1, Payload::from_value(&body)?))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        store
            .append(
                &id,
                ExpectedVersion::Exact(Version(chunk * PER_APPEND)),
                events,
            )
            .await?;
    }
    let appended = started.elapsed();

    let before = peak_kib(true);
    let started = Instant::now();
    let meters = Repository::<Meter, _>::new(store.clone()).with_cache_capacity(0);
    let loaded = meters.load(&id).await?;
    let load = started.elapsed();
    let load_peak = peak_kib(false);
    assert_eq!(
        (loaded.state.readings, loaded.version),
        (EVENTS, Version(EVENTS))
    );

    peak_kib(true);
    let started = Instant::now();
    let mut reader = store.log_reader(Checkpoint::START);
    let mut seen = 0u64;
    while let Some(batch) = reader.next_batch().await? {
        seen += batch.len() as u64;
    }
    let scan = started.elapsed();
    let scan_peak = peak_kib(false);
    assert_eq!(seen, EVENTS);

    let mib = |kib: Option<u64>| {
        kib.map_or("n/a".to_owned(), |k| {
            format!("{:.0} MiB", k as f64 / 1024.0)
        })
    };
    println!("1,000,000 events of ~90 bytes in one stream (PostgreSQL, batches of 1,000)");
    println!("| step | time | peak RSS of the process during the step |");
    println!("|---|---:|---:|");
    println!(
        "| append, 1,000 appends of 1,000 events | {:.1} s | - |",
        appended.as_secs_f64()
    );
    println!(
        "| Repository::load (cache off) | {:.1} s | {} |",
        load.as_secs_f64(),
        mib(load_peak)
    );
    println!(
        "| log_reader over the whole log | {:.1} s | {} |",
        scan.as_secs_f64(),
        mib(scan_peak)
    );
    println!("(process RSS before the load: {})", mib(before));
    Ok(())
}
