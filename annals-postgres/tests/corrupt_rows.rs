//! A stored row the store cannot read back (metadata that does not decode, an invalid stream
//! id), written behind the store's back, is named by a typed error instead of failing every
//! read for good: the events before it come back, and readers skip it or stop, by policy.

// Test helpers fail the test that calls them.
#![allow(clippy::expect_used, clippy::panic)]

use annals::{
    Checkpoint, CorruptEvents, Envelope, Event, EventStore, EventStoreExt, ExpectedVersion,
    HandlerError, Metadata, NewEvent, Payload, Position, RecordedEvent, RunError, StoreError,
    StreamId, Subscription, Version,
};
use annals_postgres::testing::fresh_store;
use annals_postgres::{PgEventStore, PgProjection, PgProjectionRunner};
use serde::{Deserialize, Serialize};
use tokio_postgres::Transaction;
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "test.entry".into(),
        schema_version: 1,
        payload: Payload::from_value(&serde_json::json!({ "n": n })).expect("json"),
        metadata: Metadata::new().with_actor("teller"),
    }
}

/// A row written with SQL, as another program (or a damaged backup) might have.
struct Bad {
    event_id: Uuid,
    stream: String,
    version: Version,
    position: Position,
    commit: u64,
}

impl Bad {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            commit: self.commit,
            position: self.position,
        }
    }

    #[track_caller]
    fn assert_named_by(&self, error: &StoreError) {
        match error {
            StoreError::CorruptEvent {
                stream,
                version,
                position,
                commit,
                reason,
            } => {
                assert_eq!(stream, &self.stream);
                assert_eq!(*version, self.version);
                assert_eq!(*position, self.position);
                assert_eq!(*commit, self.commit);
                assert!(!reason.is_empty());
            }
            other => panic!("expected CorruptEvent for {}, got {other:?}", self.stream),
        }
        assert_eq!(error.corrupt_checkpoint(), Some(self.checkpoint()));
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "stored event {} of stream `{}` at position {}",
                self.version, self.stream, self.position
            )),
            "{message}"
        );
    }
}

async fn insert_raw(store: &PgEventStore, stream: &str, version: u64, metadata: &str) -> Bad {
    let client = store.pool().get().await.expect("connection");
    let event_id = Uuid::new_v4();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO \"{}\".events \
                 (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
                 VALUES ($1, $2, $3, 'test.entry', 1, '{{\"n\": 0}}', $4::text::json) \
                 RETURNING position, tx_id::text::int8",
                store.schema()
            ),
            &[&stream, &(version as i64), &event_id, &metadata],
        )
        .await
        .expect("insert a raw row");
    Bad {
        event_id,
        stream: stream.to_owned(),
        version: Version(version),
        position: Position(row.get::<_, i64>(0) as u64),
        commit: row.get::<_, i64>(1) as u64,
    }
}

/// The log: A1 A2 [A3: metadata `[1,2]`] A4 [B1: a correlation id that is no UUID]
/// [a stream id with a newline] C1.
struct Log {
    store: PgEventStore,
    a: StreamId,
    c: StreamId,
    bad: [Bad; 3],
}

async fn log_with_corrupt_rows() -> Log {
    let store = fresh_store().await;
    let a = StreamId::new("account-a").expect("id");
    let b = StreamId::new("account-b").expect("id");
    let c = StreamId::new("account-c").expect("id");
    store
        .append(&a, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .expect("append");
    let a3 = insert_raw(&store, a.as_str(), 3, "[1,2]").await;
    store
        .append(&a, ExpectedVersion::Exact(Version(3)), vec![event(4)])
        .await
        .expect("append after the raw row");
    let b1 = insert_raw(&store, b.as_str(), 1, r#"{"correlation_id": "not-a-uuid"}"#).await;
    let bad_id = insert_raw(&store, "line\nbreak", 1, "{}").await;
    store
        .append(&c, ExpectedVersion::NoStream, vec![event(7)])
        .await
        .expect("append");
    Log {
        store,
        a,
        c,
        bad: [a3, b1, bad_id],
    }
}

fn ns(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.stream_id.to_string(), e.version.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_all_returns_the_good_events_then_names_the_bad_one() {
    let Log { store, a, c, bad } = log_with_corrupt_rows().await;
    let [a3, b1, bad_id] = &bad;

    let first = store.read_all(Checkpoint::START, 100).await.expect("read");
    assert_eq!(
        ns(&first),
        [("account-a".into(), 1), ("account-a".into(), 2)]
    );
    let after_a2 = first[1].checkpoint();

    // The same error again and again: the reader's place is before the bad event.
    for _ in 0..2 {
        let error = store
            .read_all(after_a2, 100)
            .await
            .expect_err("A3 is corrupt");
        a3.assert_named_by(&error);
        assert!(error.to_string().contains("metadata"), "{error}");
    }
    let next = store.read_all(a3.checkpoint(), 100).await.expect("read");
    assert_eq!(ns(&next), [(a.to_string(), 4)]);
    let error = store
        .read_all(next[0].checkpoint(), 100)
        .await
        .expect_err("B1 is corrupt");
    b1.assert_named_by(&error);
    assert!(
        error.to_string().contains("metadata does not decode"),
        "{error}"
    );
    let error = store
        .read_all(b1.checkpoint(), 100)
        .await
        .expect_err("the stream id is invalid");
    bad_id.assert_named_by(&error);
    let last = store
        .read_all(bad_id.checkpoint(), 100)
        .await
        .expect("read");
    assert_eq!(ns(&last), [(c.to_string(), 1)]);
    assert!(store
        .read_all(last[0].checkpoint(), 100)
        .await
        .expect("read")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_stream_and_read_event_name_the_bad_event() {
    let Log { store, a, bad, .. } = log_with_corrupt_rows().await;
    let [a3, b1, _] = &bad;

    let read = store.read_stream(&a, Version(1), 100).await.expect("read");
    assert_eq!(ns(&read), [(a.to_string(), 1), (a.to_string(), 2)]);
    a3.assert_named_by(
        &store
            .read_stream(&a, Version(3), 100)
            .await
            .expect_err("A3"),
    );
    let after = store.read_stream(&a, Version(4), 100).await.expect("read");
    assert_eq!(ns(&after), [(a.to_string(), 4)]);

    // A stream reader does not take the short page for the stream's end.
    let mut reader = store.stream_reader(&a, Version(1));
    let batch = reader.next_batch().await.expect("read").expect("a batch");
    assert_eq!(batch.len(), 2);
    a3.assert_named_by(&reader.next_batch().await.expect_err("A3"));

    for bad in [a3, b1] {
        bad.assert_named_by(&store.read_event(bad.event_id).await.expect_err("corrupt"));
    }
    let good = store
        .read_event(read[0].event_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(good, read[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_skip_see_every_good_event() {
    let Log { store, bad, .. } = log_with_corrupt_rows().await;
    let everything_good = [
        ("account-a".to_owned(), 1),
        ("account-a".to_owned(), 2),
        ("account-a".to_owned(), 4),
        ("account-c".to_owned(), 1),
    ];

    let mut subscription = Subscription::new(store.clone(), Checkpoint::START)
        .with_batch_size(2)
        .with_corrupt_events(CorruptEvents::Skip);
    let mut seen = Vec::new();
    while let Some(batch) = subscription
        .poll_batch()
        .await
        .expect("skips the corrupt rows")
    {
        seen.extend(ns(&batch));
    }
    assert_eq!(seen, everything_good);
    assert!(subscription.checkpoint() > bad[2].checkpoint());

    let mut reader = store
        .log_reader(Checkpoint::START)
        .corrupt_events(CorruptEvents::Skip);
    let mut seen = Vec::new();
    while let Some(batch) = reader.next_batch().await.expect("skips the corrupt rows") {
        seen.extend(ns(&batch));
    }
    assert_eq!(seen, everything_good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_fail_stop_before_the_bad_event() {
    let Log { store, bad, .. } = log_with_corrupt_rows().await;
    let [a3, ..] = &bad;

    let mut subscription = Subscription::new(store.clone(), Checkpoint::START);
    let first = subscription
        .poll_batch()
        .await
        .expect("read")
        .expect("A1 and A2");
    assert_eq!(first.len(), 2);
    let before = subscription.checkpoint();
    assert_eq!(before, first[1].checkpoint());
    for _ in 0..2 {
        a3.assert_named_by(&subscription.poll_batch().await.expect_err("A3"));
        assert_eq!(subscription.checkpoint(), before, "the checkpoint stays");
    }

    let mut reader = store
        .log_reader(Checkpoint::START)
        .corrupt_events(CorruptEvents::Fail);
    assert_eq!(
        reader.next_batch().await.expect("read").map(|b| b.len()),
        Some(2)
    );
    a3.assert_named_by(&reader.next_batch().await.expect_err("A3"));
    assert_eq!(reader.checkpoint(), before);
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum Entry {
    #[event(name = "test.entry")]
    Entry { n: u64 },
}

/// Remembers the events it sees, and reads corrupt rows as its policy says.
struct Entries {
    name: &'static str,
    corrupt: CorruptEvents,
    seen: Vec<(String, u64)>,
}

impl Entries {
    fn new(name: &'static str, corrupt: CorruptEvents) -> Self {
        Entries {
            name,
            corrupt,
            seen: Vec::new(),
        }
    }
}

#[annals::async_trait]
impl PgProjection for Entries {
    type Event = Entry;

    fn name(&self) -> &str {
        self.name
    }

    fn corrupt_events(&self) -> CorruptEvents {
        self.corrupt
    }

    async fn handle(
        &mut self,
        _tx: &Transaction<'_>,
        event: &Envelope<Entry>,
    ) -> Result<(), HandlerError> {
        self.seen
            .push((event.stream_id.to_string(), event.version.0));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_skip_or_stop_at_corrupt_rows_by_their_policy() {
    let Log { store, a, bad, .. } = log_with_corrupt_rows().await;

    let skipping = Entries::new("entries", CorruptEvents::Skip);
    let mut runner = PgProjectionRunner::new(store.clone(), skipping).with_batch_size(2);
    assert_eq!(runner.catch_up().await.expect("skips the corrupt rows"), 4);
    assert_eq!(
        runner.projection().seen,
        [
            ("account-a".to_owned(), 1),
            ("account-a".to_owned(), 2),
            ("account-a".to_owned(), 4),
            ("account-c".to_owned(), 1),
        ]
    );
    assert!(runner.checkpoint().await.expect("checkpoint") > bad[2].checkpoint());

    let failing = Entries::new("entries-strict", CorruptEvents::Fail);
    let mut runner = PgProjectionRunner::new(store.clone(), failing);
    match runner.catch_up().await {
        Err(RunError::Store { source, .. }) => bad[0].assert_named_by(&source),
        other => panic!("expected the corrupt row to stop the projection, got {other:?}"),
    }
    assert_eq!(
        runner.projection().seen,
        [("account-a".to_owned(), 1), ("account-a".to_owned(), 2)]
    );
    let a2 = store.read_stream(&a, Version(2), 1).await.expect("A2");
    assert_eq!(
        runner.checkpoint().await.expect("checkpoint"),
        a2[0].checkpoint(),
        "the checkpoint stays before the corrupt row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_gate_names_rows_the_store_cannot_read() {
    use annals::verify::{verify, VerifyOptions};

    let Log { store, bad, .. } = log_with_corrupt_rows().await;
    let report = verify::<Entry, _>(&store, VerifyOptions::default(), |_| {})
        .await
        .expect("the store answers");
    assert_eq!((report.checked, report.failed), (7, 3));
    let named: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.stream.clone(), f.version, f.position))
        .collect();
    let expected: Vec<_> = bad
        .iter()
        .map(|b| (b.stream.clone(), b.version, b.position))
        .collect();
    assert_eq!(named, expected);
    assert_eq!(report.by_type[&("test.entry".to_owned(), 1)].decoded, 4);
}
