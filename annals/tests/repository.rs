//! The repository through the public API: execute, load, time travel, conflicts and retries,
//! metadata, idempotency, decode errors.

// Test helpers outside `#[test]` fns unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use annals::prelude::*;
use annals::{
    idempotent_event_id, AppendResult, Checkpoint, DecodeError, Loaded, NewEvent, Payload,
    RecordedEvent, RetryPolicy, StoreError, StreamAppend,
};
use annals_memory::MemoryEventStore;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(apply = Wallet)]
enum WalletEvent {
    Credited {
        amount: u64,
    },
    #[event(version = 2)]
    Debited {
        amount: u64,
        reason: String,
    },
    Noted(String),
}

#[derive(Debug, Clone, PartialEq, Command)]
#[command(aggregate = Wallet)]
enum WalletCommand {
    Credit {
        amount: u64,
    },
    CreditTwice {
        amount: u64,
    },
    Debit {
        amount: u64,
    },
    #[command(async, services)]
    CheckedCredit {
        amount: u64,
    },
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
enum WalletError {
    Insufficient { balance: u64, requested: u64 },
    Blocked,
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for WalletError {}

/// A service the async handler asks before crediting.
#[derive(Default)]
struct Limits {
    blocked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Aggregate)]
#[aggregate(event = WalletEvent, command = WalletCommand, error = WalletError, services = Limits)]
struct Wallet {
    balance: u64,
    notes: Vec<String>,
}

impl Wallet {
    fn credited(&mut self, amount: &u64) {
        self.balance += amount;
    }
    fn debited(&mut self, amount: &u64, _reason: &str) {
        self.balance -= amount;
    }
    fn noted(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    fn credit(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(vec![WalletEvent::Credited { amount: *amount }])
    }
    fn credit_twice(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(vec![
            WalletEvent::Credited { amount: *amount },
            WalletEvent::Credited { amount: *amount },
        ])
    }
    fn debit(&self, amount: &u64) -> Result<Vec<WalletEvent>, WalletError> {
        if *amount > self.balance {
            return Err(WalletError::Insufficient {
                balance: self.balance,
                requested: *amount,
            });
        }
        Ok(vec![WalletEvent::Debited {
            amount: *amount,
            reason: "debit".into(),
        }])
    }
    async fn checked_credit(
        &self,
        amount: &u64,
        limits: &Limits,
    ) -> Result<Vec<WalletEvent>, WalletError> {
        tokio::task::yield_now().await;
        if limits.blocked {
            return Err(WalletError::Blocked);
        }
        Ok(vec![WalletEvent::Credited { amount: *amount }])
    }
    fn nothing(&self) -> Result<Vec<WalletEvent>, WalletError> {
        Ok(Vec::new())
    }
}

fn wallet(id: &str) -> StreamId {
    StreamId::for_aggregate::<Wallet>(id).unwrap()
}

#[tokio::test]
async fn execute_appends_and_load_replays() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("1");
    let outcome = repo
        .execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    assert_eq!(
        (outcome.version, outcome.appended, outcome.attempts),
        (Version(1), 1, 1)
    );
    let outcome = repo
        .execute(&id, WalletCommand::CreditTwice { amount: 5 })
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.appended), (Version(3), 2));
    repo.execute(&id, WalletCommand::Debit { amount: 12 })
        .await
        .unwrap();

    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.version, Version(4));
    assert_eq!(loaded.state.balance, 8);
    assert_eq!(id.as_str(), "wallet-1");

    let fresh = repo.load(&wallet("never")).await.unwrap();
    assert_eq!((fresh.version, fresh.state.balance), (Version(0), 0));
}

#[tokio::test]
async fn a_rejected_command_stores_nothing() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("2");
    repo.execute(&id, WalletCommand::Credit { amount: 3 })
        .await
        .unwrap();
    let error = repo
        .execute(&id, WalletCommand::Debit { amount: 4 })
        .await
        .unwrap_err();
    assert_eq!(
        error.rejection(),
        Some(&WalletError::Insufficient {
            balance: 3,
            requested: 4
        })
    );
    assert!(error.to_string().contains("command rejected"), "{error}");
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_command_without_events_appends_nothing() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("3");
    repo.execute(&id, WalletCommand::Credit { amount: 3 })
        .await
        .unwrap();
    let outcome = repo.execute(&id, WalletCommand::Nothing).await.unwrap();
    assert_eq!((outcome.version, outcome.appended), (Version(1), 0));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn async_handlers_receive_services() {
    let open =
        Repository::<Wallet, _>::with_services(MemoryEventStore::new(), Limits { blocked: false });
    open.execute(&wallet("4"), WalletCommand::CheckedCredit { amount: 7 })
        .await
        .unwrap();
    assert_eq!(open.load(&wallet("4")).await.unwrap().state.balance, 7);

    let blocked =
        Repository::<Wallet, _>::with_services(MemoryEventStore::new(), Limits { blocked: true });
    let error = blocked
        .execute(&wallet("4"), WalletCommand::CheckedCredit { amount: 7 })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::Rejected(WalletError::Blocked)
    ));
}

#[tokio::test]
async fn an_expected_version_is_checked_before_deciding() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("5");
    let at = |v| CommandContext::new().with_expected_version(ExpectedVersion::Exact(Version(v)));
    repo.execute_with(&id, WalletCommand::Credit { amount: 1 }, at(0))
        .await
        .unwrap();
    let error = repo
        .execute_with(&id, WalletCommand::Credit { amount: 1 }, at(0))
        .await
        .unwrap_err();
    match error {
        RepositoryError::Store(StoreError::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, id);
            assert_eq!(expected, ExpectedVersion::Exact(Version(0)));
            assert_eq!(actual, Version(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    repo.execute_with(&id, WalletCommand::Credit { amount: 1 }, at(1))
        .await
        .unwrap();
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 2);
}

#[tokio::test]
async fn command_metadata_is_stamped_on_every_event() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("6");
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::new_v4())
        .with_causation_id(Uuid::new_v4())
        .with_actor("ann")
        .with_header("ip", "127.0.0.1");
    let context = CommandContext::new().with_metadata(metadata.clone());
    repo.execute_with(&id, WalletCommand::CreditTwice { amount: 1 }, context)
        .await
        .unwrap();
    let events = store.read_stream(&id, Version(1), 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.metadata == metadata));
}

#[tokio::test]
async fn an_idempotency_key_appends_once() {
    let store = MemoryEventStore::new();
    let repo = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("7");
    repo.execute(&id, WalletCommand::Credit { amount: 5 })
        .await
        .unwrap();
    let keyed = CommandContext::new().with_idempotency_key("payment-77");
    let first = repo
        .execute_with(&id, WalletCommand::Debit { amount: 5 }, keyed.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);
    // Run again, the debit would now be refused (balance 0): the key short-circuits it.
    let second = repo
        .execute_with(&id, WalletCommand::Debit { amount: 5 }, keyed)
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!((second.appended, second.version), (0, Version(2)));
    assert_eq!(store.len(), 2);
    let stored = store.read_stream(&id, Version(2), 1).await.unwrap();
    assert_eq!(
        stored[0].event_id,
        idempotent_event_id(&id, "payment-77", 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_through_the_repository_lose_nothing() {
    const TASKS: u64 = 8;
    const EACH: u64 = 1_000;
    let repo = Arc::new(Repository::<Wallet, _>::new(MemoryEventStore::new()));
    let id = wallet("shared");
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (repo, id) = (Arc::clone(&repo), id.clone());
            tokio::spawn(async move {
                for _ in 0..EACH {
                    repo.execute(&id, WalletCommand::Credit { amount: 1 })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = repo.load(&id).await.unwrap();
    assert_eq!(loaded.state.balance, TASKS * EACH);
    assert_eq!(loaded.version, Version(TASKS * EACH));
}

#[tokio::test]
async fn a_cached_state_never_hides_other_writers() {
    // Two repositories over one store stand for two processes, each with its own cache.
    let store = MemoryEventStore::new();
    let here = Repository::<Wallet, _>::new(store.clone());
    let there = Repository::<Wallet, _>::new(store.clone());
    let id = wallet("two-processes");
    here.execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    assert_eq!(here.load(&id).await.unwrap().state.balance, 10);
    there
        .execute(&id, WalletCommand::Debit { amount: 10 })
        .await
        .unwrap();
    // `here` cached balance 10; the debit elsewhere must still refuse this one.
    let refused = here
        .execute(&id, WalletCommand::Debit { amount: 1 })
        .await
        .unwrap_err();
    assert_eq!(
        refused.rejection(),
        Some(&WalletError::Insufficient {
            balance: 0,
            requested: 1
        })
    );
    there
        .execute(&id, WalletCommand::Credit { amount: 5 })
        .await
        .unwrap();
    assert_eq!(
        here.load(&id).await.unwrap(),
        Loaded {
            state: Wallet {
                balance: 5,
                notes: vec![]
            },
            version: Version(3)
        }
    );

    let uncached = Repository::<Wallet, _>::new(store.clone()).with_cache_capacity(0);
    uncached
        .execute(&id, WalletCommand::Debit { amount: 5 })
        .await
        .unwrap();
    assert_eq!(here.load(&id).await.unwrap().state.balance, 0);
}

/// A store that lets a rival writer append right before each of the first `races` appends.
struct Racing {
    inner: MemoryEventStore,
    races: AtomicU32,
}

#[async_trait]
impl EventStore for Racing {
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let rival =
                NewEvent::encode(&WalletEvent::Credited { amount: 100 }, Metadata::new()).unwrap();
            self.inner
                .append(&appends[0].stream_id, ExpectedVersion::Any, vec![rival])
                .await?;
        }
        self.inner.append_streams(appends).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, from, limit).await
    }
    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }
    async fn log_head(&self) -> Result<Checkpoint, StoreError> {
        self.inner.log_head().await
    }
    async fn stream_version(&self, s: &StreamId) -> Result<Version, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn read_event(&self, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.read_event(id).await
    }
}

#[tokio::test]
async fn conflicts_are_retried_on_the_new_state_then_given_up() {
    let racing = Racing {
        inner: MemoryEventStore::new(),
        races: AtomicU32::new(2),
    };
    let repo = Repository::<Wallet, _>::new(racing);
    let id = wallet("8");
    let outcome = repo
        .execute(&id, WalletCommand::Credit { amount: 1 })
        .await
        .unwrap();
    assert_eq!((outcome.attempts, outcome.version), (3, Version(3)));
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 201);

    let racing = Racing {
        inner: MemoryEventStore::new(),
        races: AtomicU32::new(u32::MAX),
    };
    let repo =
        Repository::<Wallet, _>::new(racing).with_retry_policy(RetryPolicy::with_max_attempts(4));
    let error = repo
        .execute(&id, WalletCommand::Credit { amount: 1 })
        .await
        .unwrap_err();
    match &error {
        RepositoryError::TooManyConflicts {
            stream,
            attempts,
            actual,
        } => {
            assert_eq!((stream, *attempts, *actual), (&id, 4, Version(4)));
        }
        other => panic!("expected TooManyConflicts, got {other:?}"),
    }
    assert!(error.to_string().contains("after 4 attempts"), "{error}");
}

#[tokio::test]
async fn a_repository_over_a_shared_dyn_store() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let repo = Repository::<Wallet, Arc<dyn EventStore>>::new(Arc::clone(&store));
    repo.execute(&wallet("9"), WalletCommand::Credit { amount: 2 })
        .await
        .unwrap();
    assert_eq!(
        store.stream_version(&wallet("9")).await.unwrap(),
        Version(1)
    );
}

#[tokio::test]
async fn time_travel_by_version_and_by_time() {
    let repo = Repository::<Wallet, _>::new(MemoryEventStore::new());
    let id = wallet("10");
    let before_all = SystemTime::now() - Duration::from_secs(1);
    repo.execute(&id, WalletCommand::Credit { amount: 10 })
        .await
        .unwrap();
    repo.execute(&id, WalletCommand::Credit { amount: 20 })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    repo.execute(&id, WalletCommand::Debit { amount: 25 })
        .await
        .unwrap();

    let at_one = repo.load_at(&id, Version(1)).await.unwrap();
    assert_eq!((at_one.version, at_one.state.balance), (Version(1), 10));
    let at_zero = repo.load_at(&id, Version(0)).await.unwrap();
    assert_eq!((at_zero.version, at_zero.state.balance), (Version(0), 0));
    let error = repo.load_at(&id, Version(9)).await.unwrap_err();
    assert!(matches!(
        error,
        RepositoryError::VersionNotFound {
            requested: Version(9),
            current: Version(3),
            ..
        }
    ));

    let then = repo.load_as_of(&id, middle).await.unwrap();
    assert_eq!((then.version, then.state.balance), (Version(2), 30));
    let before = repo.load_as_of(&id, before_all).await.unwrap();
    assert_eq!((before.version, before.state.balance), (Version(0), 0));
    let now = repo.load_as_of(&id, SystemTime::now()).await.unwrap();
    assert_eq!((now.version, now.state.balance), (Version(3), 5));
}

async fn store_with(raw: NewEvent) -> (Repository<Wallet, MemoryEventStore>, StreamId) {
    let store = MemoryEventStore::new();
    let id = wallet("corrupt");
    let good = NewEvent::encode(&WalletEvent::Credited { amount: 1 }, Metadata::new()).unwrap();
    store
        .append(&id, ExpectedVersion::NoStream, vec![good, raw])
        .await
        .unwrap();
    (Repository::new(store), id)
}

fn raw(event_type: &str, schema_version: u32, json: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned().into(),
        schema_version,
        payload: Payload::from_json(json).unwrap(),
        metadata: Metadata::new(),
    }
}

#[tokio::test]
async fn undecodable_stored_events_give_typed_errors() {
    type Case = (NewEvent, fn(&DecodeError) -> bool, &'static str);
    let cases: [Case; 4] = [
        (
            raw("Mystery", 1, "{}"),
            |e| matches!(e, DecodeError::UnknownType { event_type, schema_version: 1 } if event_type == "Mystery"),
            "unknown event type `Mystery`",
        ),
        (
            raw("Credited", 7, r#"{"amount":1}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::FutureVersion {
                        schema_version: 7,
                        current: 1,
                        ..
                    }
                )
            },
            "schema version 7, newer than the current version 1",
        ),
        (
            raw("Debited", 1, r#"{"amount":1}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::NoUpcaster {
                        schema_version: 1,
                        current: 2,
                        ..
                    }
                )
            },
            "no upcaster",
        ),
        (
            raw("Credited", 1, r#"{"amount":"ten"}"#),
            |e| {
                matches!(
                    e,
                    DecodeError::Body {
                        schema_version: 1,
                        ..
                    }
                )
            },
            "the body does not match",
        ),
    ];
    for (event, check, message) in cases {
        let (repo, id) = store_with(event).await;
        let error = repo.load(&id).await.unwrap_err();
        match &error {
            RepositoryError::Decode {
                stream,
                version,
                source,
            } => {
                assert_eq!((stream, *version), (&id, Version(2)));
                assert!(check(source), "unexpected {source:?}");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("event 2 of stream `wallet-corrupt`") && text.contains(message),
            "{text}"
        );
        // A command on the stream fails the same way, and writes nothing.
        assert!(matches!(
            repo.execute(&id, WalletCommand::Credit { amount: 1 }).await,
            Err(RepositoryError::Decode { .. })
        ));
        assert_eq!(repo.store().len(), 2);
    }
}

#[test]
fn invalid_stream_ids_are_typed_errors() {
    use annals::InvalidStreamId;
    assert_eq!(StreamId::new(""), Err(InvalidStreamId::Empty));
    assert!(matches!(
        StreamId::new("x".repeat(300)),
        Err(InvalidStreamId::TooLong {
            len: 300,
            max: 256,
            ..
        })
    ));
    let nul = StreamId::new("wallet-\0").unwrap_err();
    assert!(matches!(
        nul,
        InvalidStreamId::ControlCharacter {
            index: 7,
            character: '\0',
            ..
        }
    ));
    assert!(nul.to_string().contains("control character"), "{nul}");
    assert_eq!(
        StreamId::new("wallet-ünïcode ok").unwrap().as_str(),
        "wallet-ünïcode ok"
    );
    // DEL is ASCII but not printable; U+0085 is a control character outside ASCII.
    for (id, index, character) in [("wallet\u{7f}", 6, '\u{7f}'), ("ü-\u{85}x", 3, '\u{85}')] {
        assert_eq!(
            StreamId::new(id),
            Err(InvalidStreamId::ControlCharacter {
                id: id.to_owned(),
                index,
                character,
            })
        );
    }
    assert_eq!(
        StreamId::for_aggregate::<Wallet>("ü 7").unwrap().as_str(),
        "wallet-ü 7"
    );
    assert!(matches!(
        StreamId::for_aggregate::<Wallet>("a\nb"),
        Err(InvalidStreamId::ControlCharacter {
            index: 8,
            character: '\n',
            ..
        })
    ));
}
