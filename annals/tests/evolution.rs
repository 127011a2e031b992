//! Event evolution through the public API: upcaster chains (JSON and typed), aliases, removed
//! types, the unknown-type policy, snapshots that survive schema change.

#![allow(clippy::unwrap_used)]

use std::fmt;

use annals::prelude::*;
use annals::{
    Checkpoint, DecodeError, EventDecodeError, NewEvent, Payload, Snapshot, UnknownEvents,
};
use annals_memory::MemoryEventStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

mod upcast {
    use serde_json::{json, Value};

    /// v1 stored the holder as `name`.
    pub(crate) fn opened_v1(mut body: Value) -> Result<Value, String> {
        let object = body
            .as_object_mut()
            .ok_or("an Opened v1 body is an object")?;
        let name = object
            .remove("name")
            .ok_or("an Opened v1 body has `name`")?;
        object.insert("owner".into(), name);
        Ok(body)
    }

    /// v2 had no overdraft limit: accounts opened then had none.
    pub(crate) fn opened_v2(mut body: Value) -> Result<Value, String> {
        let object = body
            .as_object_mut()
            .ok_or("an Opened v2 body is an object")?;
        object.insert("overdraft_limit".into(), json!(0));
        Ok(body)
    }
}

/// Withdrawn v1 stored the amount as a decimal string of euros.
#[derive(Debug, Deserialize)]
struct WithdrawnV1 {
    euros: String,
}

impl TryFrom<WithdrawnV1> for AccountEvent {
    type Error = String;

    fn try_from(v1: WithdrawnV1) -> Result<Self, String> {
        let euros: u64 = v1
            .euros
            .parse()
            .map_err(|e| format!("euros {:?}: {e}", v1.euros))?;
        Ok(AccountEvent::Withdrawn {
            amount: euros * 100,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Account, removed("AuditPinged", "LegacyFlag"))]
enum AccountEvent {
    #[event(version = 3, upcast(1 => upcast::opened_v1, 2 => upcast::opened_v2))]
    Opened { owner: String, overdraft_limit: u64 },
    #[event(
        name = "account.deposited",
        alias = "MoneyDeposited",
        alias = "Deposited"
    )]
    Deposited { amount: u64 },
    #[event(version = 2, upcast_from(1 => WithdrawnV1))]
    Withdrawn { amount: u64 },
}

#[derive(Debug, Command)]
#[command(aggregate = Account)]
enum AccountCommand {
    Deposit { amount: u64 },
}

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(event = AccountEvent, command = AccountCommand, error = Never, snapshot_every = 3, snapshot_version = 2)]
struct Account {
    owner: String,
    balance: i64,
    overdraft_limit: u64,
    applied: u64,
}

impl Account {
    fn opened(&mut self, owner: &str, overdraft_limit: &u64) {
        self.owner = owner.to_owned();
        self.overdraft_limit = *overdraft_limit;
        self.applied += 1;
    }
    fn deposited(&mut self, amount: &u64) {
        self.balance += *amount as i64;
        self.applied += 1;
    }
    fn withdrawn(&mut self, amount: &u64) {
        self.balance -= *amount as i64;
        self.applied += 1;
    }
    fn deposit(&self, amount: &u64) -> Result<Vec<AccountEvent>, Never> {
        Ok(vec![AccountEvent::Deposited { amount: *amount }])
    }
}

fn raw(event_type: &str, schema_version: u32, body: Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned().into(),
        schema_version,
        payload: Payload::from_value(&body).unwrap(),
        metadata: Metadata::new(),
    }
}

fn decode(
    event_type: &str,
    version: u32,
    body: Value,
) -> Result<Option<AccountEvent>, DecodeError> {
    AccountEvent::decode(
        event_type,
        version,
        Payload::from_value(&body).unwrap().as_str(),
    )
}

#[test]
fn every_stored_version_decodes_to_the_current_one() {
    let current = Some(AccountEvent::Opened {
        owner: "ann".into(),
        overdraft_limit: 0,
    });
    assert_eq!(
        decode("Opened", 1, json!({ "name": "ann" })).unwrap(),
        current
    );
    assert_eq!(
        decode("Opened", 2, json!({ "owner": "ann" })).unwrap(),
        current
    );
    assert_eq!(
        decode("Opened", 3, json!({ "owner": "ann", "overdraft_limit": 0 })).unwrap(),
        current
    );
    assert_eq!(
        decode("Withdrawn", 1, json!({ "euros": "12" })).unwrap(),
        Some(AccountEvent::Withdrawn { amount: 1200 })
    );
    assert_eq!(
        decode("Withdrawn", 2, json!({ "amount": 5 })).unwrap(),
        Some(AccountEvent::Withdrawn { amount: 5 })
    );
}

#[test]
fn aliases_are_read_but_never_written() {
    let deposited = Some(AccountEvent::Deposited { amount: 7 });
    for name in ["account.deposited", "MoneyDeposited", "Deposited"] {
        assert_eq!(
            decode(name, 1, json!({ "amount": 7 })).unwrap(),
            deposited,
            "{name}"
        );
    }
    assert_eq!(
        AccountEvent::Deposited { amount: 7 }.event_type(),
        "account.deposited"
    );
}

#[test]
fn removed_types_decode_to_nothing() {
    assert_eq!(
        decode("AuditPinged", 1, json!({ "anything": true })).unwrap(),
        None
    );
    assert_eq!(decode("LegacyFlag", 9, json!(null)).unwrap(), None);
}

#[test]
fn bad_stored_data_gives_typed_errors() {
    let error = decode("Opened", 1, json!({ "owner": "no name field" })).unwrap_err();
    match &error {
        DecodeError::Upcast {
            event_type,
            from: 1,
            source,
        } => {
            assert_eq!(event_type, "Opened");
            assert!(source.to_string().contains("has `name`"), "{source}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("upcasting from schema version 1 failed"),
        "{error}"
    );

    let error = decode("Withdrawn", 1, json!({ "euros": "twelve" })).unwrap_err();
    assert!(
        matches!(error, DecodeError::Upcast { from: 1, .. }),
        "{error:?}"
    );
    let error = decode("Withdrawn", 1, json!({ "cents": 5 })).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::Body {
                schema_version: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let error = decode("Opened", 2, json!({ "owner": 42 })).unwrap_err();
    assert!(
        matches!(error, DecodeError::Body { .. }),
        "an upcast body that does not fit: {error:?}"
    );
    let error = decode("Opened", 4, json!({})).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::FutureVersion {
                schema_version: 4,
                current: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let error = decode("Opened", 0, json!({})).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::NoUpcaster {
                schema_version: 0,
                current: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let error = decode("Deposited", 2, json!({ "amount": 1 })).unwrap_err();
    assert!(
        matches!(error, DecodeError::FutureVersion { .. }),
        "an alias has the variant's versions: {error:?}"
    );
    let error = decode("Teleported", 1, json!({})).unwrap_err();
    assert!(
        matches!(error, DecodeError::UnknownType { .. }),
        "{error:?}"
    );
}

async fn seeded() -> (MemoryEventStore, StreamId) {
    let store = MemoryEventStore::new();
    let id = StreamId::for_aggregate::<Account>("old").unwrap();
    store
        .append(
            &id,
            ExpectedVersion::NoStream,
            vec![
                raw("Opened", 1, json!({ "name": "ann" })),
                raw("MoneyDeposited", 1, json!({ "amount": 1000 })),
                raw("AuditPinged", 1, json!({ "by": "ops" })),
                raw("Withdrawn", 1, json!({ "euros": "3" })),
                raw("Deposited", 1, json!({ "amount": 50 })),
                raw("account.deposited", 1, json!({ "amount": 5 })),
            ],
        )
        .await
        .unwrap();
    (store, id)
}

#[tokio::test]
async fn a_store_of_old_payloads_loads_into_the_current_state() {
    let (store, id) = seeded().await;
    let accounts = Repository::<Account, _>::new(store.clone());
    let loaded = accounts.load(&id).await.unwrap();
    assert_eq!(loaded.version, Version(6));
    assert_eq!(
        loaded.state,
        Account {
            owner: "ann".into(),
            balance: 1000 - 300 + 50 + 5,
            overdraft_limit: 0,
            applied: 5
        }
    );

    // Every read path decodes through the same chain.
    let mut reader = store.stream_reader(&id, Version(1));
    let decoded = reader
        .next_decoded::<AccountEvent>(UnknownEvents::Fail)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decoded.len(), 5, "the removed type is left out");
    assert_eq!(
        decoded[0].event,
        AccountEvent::Opened {
            owner: "ann".into(),
            overdraft_limit: 0
        }
    );
    assert_eq!(
        (decoded[0].schema_version, decoded[2].version),
        (1, Version(4))
    );
    let mut log = store.log_reader(Checkpoint::START);
    let all = log
        .next_decoded::<AccountEvent>(UnknownEvents::Fail)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        decoded.iter().map(|e| e.event.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn unknown_types_fail_by_default_and_can_be_skipped() {
    let (store, id) = seeded().await;
    store
        .append(&id, ExpectedVersion::Any, vec![raw("Frozen", 1, json!({}))])
        .await
        .unwrap();

    let strict = Repository::<Account, _>::new(store.clone());
    match strict.load(&id).await.unwrap_err() {
        RepositoryError::Decode(EventDecodeError {
            stream,
            version,
            position,
            source,
            ..
        }) => {
            assert_eq!((stream, version), (id.clone(), Version(7)));
            assert_eq!(position, None, "a replay reads no positions");
            assert!(
                matches!(source, DecodeError::UnknownType { ref event_type, schema_version: 1 } if event_type == "Frozen")
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let lenient =
        Repository::<Account, _>::new(store.clone()).with_unknown_events(UnknownEvents::Skip);
    assert_eq!(lenient.load(&id).await.unwrap().version, Version(7));

    let mut log = store.log_reader(Checkpoint::START);
    let error = log
        .next_decoded::<AccountEvent>(UnknownEvents::Fail)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("event 7 of stream `account-old`"),
        "{error}"
    );
    assert_eq!(
        log.checkpoint(),
        Checkpoint::START,
        "a failed batch does not move the checkpoint"
    );
    let skipped = log
        .next_decoded::<AccountEvent>(UnknownEvents::Skip)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.len(), 5);
}

#[tokio::test]
async fn snapshots_are_taken_and_used() {
    let store = MemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let id = StreamId::for_aggregate::<Account>("snap").unwrap();
    for _ in 0..2 {
        accounts
            .execute(&id, AccountCommand::Deposit { amount: 10 })
            .await
            .unwrap();
    }
    assert_eq!(
        store.load_snapshot(&id).await.unwrap(),
        None,
        "no snapshot before 3 events"
    );
    accounts
        .execute(&id, AccountCommand::Deposit { amount: 10 })
        .await
        .unwrap();
    let snapshot = store
        .load_snapshot(&id)
        .await
        .unwrap()
        .expect("a snapshot at version 3");
    assert_eq!(
        (snapshot.version, snapshot.snapshot_version),
        (Version(3), 2)
    );
    assert_eq!(snapshot.state.to_value().unwrap()["balance"], json!(30));

    // Prove the snapshot is what loading starts from: plant one with a marked state.
    let marked = Account {
        owner: "from-snapshot".into(),
        balance: 1_000_000,
        overdraft_limit: 0,
        applied: 0,
    };
    store
        .save_snapshot(Snapshot {
            state: Payload::from_value(&marked).unwrap(),
            version: Version(3),
            ..snapshot.clone()
        })
        .await
        .unwrap();
    // A repository without a cached state starts from the snapshot.
    let accounts = Repository::<Account, _>::new(store.clone()).with_cache_capacity(0);
    accounts
        .execute(&id, AccountCommand::Deposit { amount: 1 })
        .await
        .unwrap();
    let loaded = accounts.load(&id).await.unwrap();
    assert_eq!(
        (
            loaded.state.owner.as_str(),
            loaded.state.balance,
            loaded.state.applied
        ),
        ("from-snapshot", 1_000_001, 1)
    );
    // Time travel before the snapshot replays from the start.
    let at_two = accounts.load_at(&id, Version(2)).await.unwrap();
    assert_eq!((at_two.state.balance, at_two.state.applied), (20, 2));
}

#[tokio::test]
async fn snapshots_of_another_version_or_undecodable_are_ignored() {
    let store = MemoryEventStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    let id = StreamId::for_aggregate::<Account>("stale").unwrap();
    for _ in 0..4 {
        accounts
            .execute(&id, AccountCommand::Deposit { amount: 10 })
            .await
            .unwrap();
    }
    let accounts = Repository::<Account, _>::new(store.clone()).with_cache_capacity(0);
    let expected = Account {
        balance: 40,
        applied: 4,
        ..Account::default()
    };
    let bogus = Account {
        balance: -1,
        ..Account::default()
    };
    let plant = |snapshot_version: u32, state: Payload| Snapshot {
        stream_id: id.clone(),
        version: Version(4),
        snapshot_version,
        state,
        taken_at: std::time::SystemTime::now(),
    };

    store
        .save_snapshot(plant(1, Payload::from_value(&bogus).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        accounts.load(&id).await.unwrap().state,
        expected,
        "an old snapshot version is ignored"
    );

    store
        .save_snapshot(plant(
            2,
            Payload::from_value(&json!({ "balance": "not a number" })).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(
        accounts.load(&id).await.unwrap().state,
        expected,
        "an undecodable snapshot is ignored"
    );

    store
        .save_snapshot(plant(2, Payload::from_value(&bogus).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        accounts.load(&id).await.unwrap().state.balance,
        -1,
        "a current snapshot is used"
    );
}
