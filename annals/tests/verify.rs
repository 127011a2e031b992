//! The verify gate over a store seeded with events the code can and cannot read: every
//! failure named by stream, version, position, type and schema version, counts per type and
//! version, other enums' events counted apart, progress reported, the filter honoured.

#![allow(clippy::unwrap_used)]

use annals::verify::{verify, VerifyOptions, VerifyProgress};
use annals::{EventStore, ExpectedVersion, Filter, NewEvent, Payload, Position, StreamId, Version};
use annals_memory::MemoryEventStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod upcast {
    use serde_json::Value;

    /// v1 stored the amount in euros as a string.
    pub(crate) fn deposited_v1(mut body: Value) -> Result<Value, String> {
        let euros = body["euros"].as_str().ok_or("`euros` is a string")?;
        let cents = euros
            .parse::<u64>()
            .map_err(|e| format!("euros {euros:?}: {e}"))?
            * 100;
        body = serde_json::json!({ "amount": cents });
        Ok(body)
    }
}

#[derive(Debug, Serialize, Deserialize, annals::Event)]
#[event(removed("Pinged"))]
enum AccountEvent {
    Opened {
        owner: String,
    },
    #[event(version = 2, upcast(1 => upcast::deposited_v1))]
    Deposited {
        amount: u64,
    },
}

fn raw(event_type: &str, schema_version: u32, body: Value) -> NewEvent {
    NewEvent::new(
        event_type.to_owned(),
        schema_version,
        Payload::from_value(&body).unwrap(),
    )
}

#[tokio::test]
async fn the_gate_names_every_event_the_code_cannot_read() {
    let store = MemoryEventStore::new();
    let account = StreamId::new("account-1").unwrap();
    store
        .append(
            &account,
            ExpectedVersion::NoStream,
            vec![
                raw("Opened", 1, json!({ "owner": "ann" })),
                raw("Deposited", 1, json!({ "euros": "3" })),
                raw("Deposited", 2, json!({ "amount": 5 })),
                raw("Deposited", 3, json!({ "amount": 7 })),
                raw("Deposited", 1, json!({ "euros": "three" })),
                raw("Opened", 1, json!({ "name": "no owner" })),
                raw("Pinged", 1, json!({})),
            ],
        )
        .await
        .unwrap();
    let other = StreamId::new("cart-1").unwrap();
    store
        .append(
            &other,
            ExpectedVersion::NoStream,
            vec![
                raw("ItemAdded", 1, json!({})),
                raw("ItemAdded", 1, json!({})),
            ],
        )
        .await
        .unwrap();

    let mut seen = Vec::<VerifyProgress>::new();
    let options = VerifyOptions {
        batch_size: 4,
        ..VerifyOptions::default()
    };
    let report = verify::<AccountEvent, _>(&store, options, |p| seen.push(*p))
        .await
        .unwrap();

    assert!(!report.is_clean());
    assert_eq!(report.checked, 9);
    assert_eq!(report.failed, 3);
    let named: Vec<_> = report
        .failures
        .iter()
        .map(|f| {
            (
                f.stream.as_str(),
                f.version,
                f.position,
                f.event_type.as_str(),
                f.schema_version,
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("account-1", Version(4), Position(4), "Deposited", 3),
            ("account-1", Version(5), Position(5), "Deposited", 1),
            ("account-1", Version(6), Position(6), "Opened", 1),
        ]
    );
    assert!(
        report.failures[0].error.contains("newer"),
        "{}",
        report.failures[0]
    );
    assert!(
        report.failures[1].error.contains("three"),
        "{}",
        report.failures[1]
    );
    assert!(report.failures[2]
        .to_string()
        .contains("event 6 of stream `account-1` at position 6"));

    let count = |t: &str, v: u32| report.by_type[&(t.to_owned(), v)];
    assert_eq!(
        (count("Opened", 1).decoded, count("Opened", 1).failed),
        (1, 1)
    );
    assert_eq!(
        (count("Deposited", 1).decoded, count("Deposited", 1).failed),
        (1, 1)
    );
    assert_eq!(
        (count("Deposited", 2).decoded, count("Deposited", 2).failed),
        (1, 0)
    );
    assert_eq!(
        (count("Deposited", 3).decoded, count("Deposited", 3).failed),
        (0, 1)
    );
    assert_eq!(
        count("Pinged", 1).decoded,
        1,
        "a removed type reads as skipped"
    );
    assert_eq!(report.other_types["ItemAdded"], 2);

    // One call per batch of 4, the last at the head.
    assert_eq!(seen.iter().map(|p| p.read).collect::<Vec<_>>(), [4, 8, 9]);
    assert_eq!(seen.last().unwrap().checkpoint, seen.last().unwrap().head);

    // Only the accounts: the carts are not read as other types.
    let options = VerifyOptions::default().with_filter(Filter::category("account"));
    let accounts = verify::<AccountEvent, _>(&store, options, |_| {})
        .await
        .unwrap();
    assert_eq!((accounts.checked, accounts.failed), (7, 3));
    assert!(accounts.other_types.is_empty());
}

#[tokio::test]
async fn a_store_the_code_reads_entirely_is_clean() {
    let store = MemoryEventStore::new();
    let account = StreamId::new("account-1").unwrap();
    store
        .append(
            &account,
            ExpectedVersion::NoStream,
            vec![
                raw("Opened", 1, json!({ "owner": "ann" })),
                raw("Deposited", 1, json!({ "euros": "3" })),
            ],
        )
        .await
        .unwrap();
    let report = verify::<AccountEvent, _>(&store, VerifyOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(report.is_clean());
    assert_eq!((report.checked, report.failed), (2, 0));
    assert!(report.failures.is_empty());
}
