//! Decode cost per event: a current-version event against plain `serde_json::from_slice` of the
//! same body, and a version-1 event through two upcasting steps.
//!
//! Run with: cargo bench -p annals --bench decode
//!
//! Prints one table: nanoseconds per event (median of 9 runs of 100,000 decodes each) and the
//! ratio to the serde_json baseline.

use std::hint::black_box;
use std::time::Instant;

use annals::{Event, Payload};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum LedgerEvent {
    #[event(version = 3, upcast(1 => v1_to_v2, 2 => v2_to_v3))]
    Deposited {
        account: String,
        amount: u64,
        currency: String,
        memo: String,
        tags: Vec<String>,
    },
    Closed,
}

/// The same body as a plain struct: what serde_json alone would decode.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct DepositedBody {
    account: String,
    amount: u64,
    currency: String,
    memo: String,
    tags: Vec<String>,
}

/// v1 stored `amount_cents` and no currency.
fn v1_to_v2(mut body: Value) -> Result<Value, String> {
    let object = body.as_object_mut().ok_or("a v1 body is an object")?;
    let cents = object
        .remove("amount_cents")
        .ok_or("a v1 body has amount_cents")?;
    object.insert("amount".into(), cents);
    object.insert("currency".into(), json!("EUR"));
    Ok(body)
}

/// v2 had no tags.
fn v2_to_v3(mut body: Value) -> Result<Value, String> {
    let object = body.as_object_mut().ok_or("a v2 body is an object")?;
    object.entry("tags").or_insert_with(|| json!([]));
    Ok(body)
}

const DECODES: usize = 100_000;
const RUNS: usize = 9;

fn median_ns(mut run: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..DECODES {
                run();
            }
            start.elapsed().as_nanos() as f64 / DECODES as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let current = LedgerEvent::Deposited {
        account: "acc-1f0e9d4c".into(),
        amount: 125_000,
        currency: "EUR".into(),
        memo: "invoice 2026-0042, thank you".into(),
        tags: vec!["salary".into(), "recurring".into()],
    };
    let payload = current.encode()?;
    let bytes = payload.as_str().as_bytes().to_vec();
    let v1 = Payload::from_value(&json!({
        "account": "acc-1f0e9d4c",
        "amount_cents": 125_000,
        "memo": "invoice 2026-0042, thank you",
    }))?;

    // Check the three paths decode what they should before timing them.
    assert_eq!(
        LedgerEvent::decode("Deposited", 3, payload.as_str())?,
        Some(current.clone())
    );
    assert!(matches!(
        LedgerEvent::decode("Deposited", 1, v1.as_str())?,
        Some(LedgerEvent::Deposited { amount: 125_000, ref currency, ref tags, .. }) if currency == "EUR" && tags.is_empty()
    ));

    let baseline = median_ns(|| {
        let body = serde_json::from_slice::<DepositedBody>(black_box(&bytes));
        black_box(body.ok());
    });
    let decode_current = median_ns(|| {
        let event = LedgerEvent::decode(black_box("Deposited"), 3, black_box(payload.as_str()));
        black_box(event.ok());
    });
    let decode_v1 = median_ns(|| {
        let event = LedgerEvent::decode(black_box("Deposited"), 1, black_box(v1.as_str()));
        black_box(event.ok());
    });

    println!(
        "decode, {DECODES} events per run, median of {RUNS} runs; body {} bytes",
        bytes.len()
    );
    println!("| path | ns/event | vs serde_json::from_slice |");
    println!("|---|---:|---:|");
    println!("| serde_json::from_slice of the variant body | {baseline:.0} | 1.00x |");
    println!(
        "| Event::decode, current version (v3) | {decode_current:.0} | {:.2}x |",
        decode_current / baseline
    );
    println!(
        "| Event::decode, v1 through 2 upcasters | {decode_v1:.0} | {:.2}x |",
        decode_v1 / baseline
    );
    Ok(())
}
