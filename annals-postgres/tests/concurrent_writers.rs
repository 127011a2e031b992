//! Many writers on few streams: every append either wins its version or reports a conflict,
//! and the streams end up exact, with no duplicate or missing version.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use annals::{
    Aggregate, Checkpoint, DecodeError, EncodeError, Event, EventStore, EventStoreExt,
    ExpectedVersion, Metadata, NewEvent, Payload, Repository, RetryPolicy, StoreError, StreamId,
    Version,
};
use annals_postgres::testing::fresh_store;
use annals_postgres::PgEventStore;

const TASKS: u64 = 8;
const EACH: u64 = 1_000;
const STREAMS: u64 = 10;

/// A counter aggregate, implemented by hand: it sums the amounts added.
#[derive(Debug, Clone, Default)]
struct Counter {
    total: u64,
    count: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum CounterEvent {
    Added { amount: u64 },
}

impl Event for CounterEvent {
    fn event_type(&self) -> &'static str {
        "counter.added"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn encode(&self) -> Result<Payload, EncodeError> {
        let CounterEvent::Added { amount } = self;
        Payload::from_value(&serde_json::json!({ "amount": amount })).map_err(|source| {
            EncodeError {
                event_type: "counter.added",
                schema_version: 1,
                source,
            }
        })
    }

    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Result<Option<Self>, DecodeError> {
        if event_type != "counter.added" {
            return Err(DecodeError::UnknownType {
                event_type: event_type.to_owned(),
                schema_version,
            });
        }
        #[derive(serde::Deserialize)]
        struct Body {
            amount: u64,
        }
        let body: Body = serde_json::from_str(payload).map_err(|source| DecodeError::Body {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })?;
        Ok(Some(CounterEvent::Added {
            amount: body.amount,
        }))
    }
}

struct Add(u64);

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Event = CounterEvent;
    type Command = Add;
    type Error = Never;
    type Services = ();

    fn apply(&mut self, event: &CounterEvent) {
        let CounterEvent::Added { amount } = event;
        self.total += amount;
        self.count += 1;
    }

    fn handle(
        &self,
        command: &Add,
        _services: &(),
    ) -> impl Future<Output = Result<Vec<CounterEvent>, Never>> + Send {
        let amount = command.0;
        async move { Ok(vec![CounterEvent::Added { amount }]) }
    }
}

/// The amount task `task` adds with its `i`-th command: unique over the whole run.
fn amount(task: u64, i: u64) -> u64 {
    task * EACH + i + 1
}

/// The stream the `i`-th command of `task` goes to.
fn target(task: u64, i: u64) -> u64 {
    (task + i) % STREAMS
}

/// Checks every stream holds versions 1..=n in order, and the global log holds every event
/// exactly once; returns the amounts per stream.
#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn check_log(store: &PgEventStore, ids: &[StreamId]) -> Vec<Vec<u64>> {
    let mut per_stream = Vec::new();
    let mut all_ids = HashSet::new();
    for id in ids {
        let mut amounts = Vec::new();
        let mut reader = store.stream_reader(id, Version(1));
        let mut next = 1;
        while let Some(batch) = reader.next_batch().await.expect("read_stream") {
            for event in batch {
                assert_eq!(event.version, Version(next), "no gap nor repeat in {id}");
                next += 1;
                assert!(all_ids.insert(event.event_id));
                let Some(CounterEvent::Added { amount }) =
                    event.decode::<CounterEvent>().expect("decode")
                else {
                    panic!("a removed event type");
                };
                amounts.push(amount);
            }
        }
        assert_eq!(
            store.stream_version(id).await.expect("version"),
            Version(next - 1)
        );
        per_stream.push(amounts);
    }
    let mut in_log = 0;
    let mut reader = store.log_reader(Checkpoint::START);
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        for event in batch {
            assert!(
                all_ids.contains(&event.event_id),
                "the log holds only these"
            );
            in_log += 1;
        }
    }
    assert_eq!(in_log, all_ids.len(), "the log holds each event once");
    per_stream
}

fn expected_amounts() -> BTreeMap<u64, Vec<u64>> {
    let mut expected: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for task in 0..TASKS {
        for i in 0..EACH {
            expected
                .entry(target(task, i))
                .or_default()
                .push(amount(task, i));
        }
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_appends_with_exact_versions() {
    let store = fresh_store().await;
    let ids: Vec<StreamId> = (0..STREAMS)
        .map(|n| StreamId::new(format!("raw-{n}")).expect("id"))
        .collect();
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, ids) = (store.clone(), Arc::clone(&ids));
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for i in 0..EACH {
                let id = &ids[target(task, i) as usize];
                let event = NewEvent::encode(
                    &CounterEvent::Added {
                        amount: amount(task, i),
                    },
                    Metadata::default(),
                )
                .expect("encode");
                loop {
                    let version = store.stream_version(id).await.expect("version");
                    match store
                        .append(id, ExpectedVersion::Exact(version), vec![event.clone()])
                        .await
                    {
                        Ok(result) => {
                            assert_eq!(result.first_version, version.next());
                            break;
                        }
                        Err(StoreError::Conflict { actual, .. }) => {
                            assert_ne!(actual, version);
                            conflicts += 1;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let per_stream = check_log(&store, &ids).await;
    for (stream, mut amounts) in per_stream.into_iter().enumerate() {
        amounts.sort_unstable();
        let mut expected = expected_amounts()
            .remove(&(stream as u64))
            .unwrap_or_default();
        expected.sort_unstable();
        assert_eq!(
            amounts, expected,
            "stream {stream} holds exactly its events"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_commands_on_hand_written_aggregates() {
    let store = fresh_store().await;
    let accounts = Arc::new(
        Repository::<Counter, _>::new(store.clone())
            .with_retry_policy(RetryPolicy::with_max_attempts(1_000)),
    );
    let ids: Arc<Vec<StreamId>> = Arc::new(
        (0..STREAMS)
            .map(|n| StreamId::for_aggregate::<Counter>(n).expect("id"))
            .collect(),
    );
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (accounts, ids) = (Arc::clone(&accounts), Arc::clone(&ids));
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let id = &ids[target(task, i) as usize];
                accounts
                    .execute(id, Add(amount(task, i)))
                    .await
                    .expect("command");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let expected = expected_amounts();
    for (n, id) in ids.iter().enumerate() {
        let loaded = accounts.load(id).await.expect("load");
        let amounts = &expected[&(n as u64)];
        assert_eq!(loaded.state.count, amounts.len() as u64, "{id}");
        assert_eq!(loaded.state.total, amounts.iter().sum::<u64>(), "{id}");
        assert_eq!(loaded.version, Version(amounts.len() as u64), "{id}");
    }
    let per_stream = check_log(&store, &ids).await;
    assert_eq!(
        per_stream.iter().map(Vec::len).sum::<usize>() as u64,
        TASKS * EACH
    );
}
