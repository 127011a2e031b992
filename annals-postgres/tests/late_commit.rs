//! A transaction that appends and commits late is read after it commits, in its place, and
//! never skipped; readers see nothing committed after it started until then.
//!
//! A transaction that wrote another table before it appends is refused instead: readers pass
//! over transactions that write no events, and could already be past it.

use std::time::Duration;

use annals::{
    Checkpoint, EventStore, EventStoreExt, ExpectedVersion, Metadata, NewEvent, Payload,
    RecordedEvent, StreamAppend, StreamId,
};
use annals_postgres::testing::{fresh_config, fresh_store_with};
use annals_postgres::PgEventStore;
use uuid::Uuid;

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
fn event(label: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "test.labelled".into(),
        schema_version: 1,
        payload: Payload::from_value(&serde_json::json!({ "label": label })).expect("json"),
        metadata: Metadata::default(),
    }
}

#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
fn label(event: &RecordedEvent) -> String {
    event.payload.to_value().expect("json")["label"]
        .as_str()
        .expect("label")
        .to_owned()
}

/// Reads the log after `after` one event at a time, resuming from each event's checkpoint.
#[allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test helper fails the test that calls it"
)]
async fn drain(store: &PgEventStore, after: Checkpoint) -> (Vec<RecordedEvent>, Checkpoint) {
    let mut reader = store.log_reader(after).batch_size(1);
    let mut events = Vec::new();
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        events.extend(batch);
    }
    (events, reader.checkpoint())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_read_in_its_place_and_never_skipped() {
    let config = fresh_config().with_read_settle(Duration::from_millis(200));
    let store = fresh_store_with(config).await;
    let stream = |name: &str| StreamId::new(format!("{name}-{}", Uuid::new_v4())).expect("id");
    let (a, b, c, d) = (stream("a"), stream("b"), stream("c"), stream("d"));

    for scenario in ["appends first", "takes its transaction id first"] {
        let (_, start) = drain(&store, Checkpoint::START).await;

        // A: a transaction of our own that appends and stays open.
        let mut client = store.pool().get().await.expect("connection");
        let mut tx = client.transaction().await.expect("begin");
        if scenario == "takes its transaction id first" {
            // A holds a transaction id older than B's and C's before it appends anything, as
            // a projection batch does: it saves its checkpoint first, and may then append
            // events in its handlers.
            tx.execute(
                &format!(
                    "INSERT INTO {}.checkpoints (name, commit, position) VALUES ('late', 0, 0)",
                    store.schema()
                ),
                &[],
            )
            .await
            .expect("a checkpoint");
        }
        let b_first = scenario == "takes its transaction id first";
        if b_first {
            store
                .append(&b, ExpectedVersion::Any, vec![event("B")])
                .await
                .expect("append B");
        }
        store
            .append_in(
                &mut tx,
                vec![StreamAppend {
                    stream_id: a.clone(),
                    expected: ExpectedVersion::Any,
                    events: vec![event("A")],
                }],
            )
            .await
            .expect("append A in its transaction");
        if !b_first {
            store
                .append(&b, ExpectedVersion::Any, vec![event("B")])
                .await
                .expect("append B");
        }
        store
            .append(&c, ExpectedVersion::Any, vec![event("C")])
            .await
            .expect("append C");

        // B and C are committed, but A is open and older: a reader sees none of them yet.
        let (seen, held) = drain(&store, start).await;
        assert!(
            seen.is_empty(),
            "{scenario}: nothing after A's start is readable while A is open, got {:?}",
            seen.iter().map(label).collect::<Vec<_>>()
        );
        assert_eq!(
            held, start,
            "{scenario}: the reader's checkpoint did not move"
        );
        let everything = store
            .read_all(Checkpoint::START, 1_000)
            .await
            .expect("read_all");
        assert!(
            everything
                .iter()
                .all(|e| ![&a, &b, &c].contains(&&e.stream_id) || e.checkpoint() <= start),
            "{scenario}: reading the whole log shows none of them either"
        );

        tx.commit().await.expect("commit A");
        drop(client);

        // Now A, B and C are readable, each once, A first (its transaction is oldest).
        let (seen, after) = drain(&store, held).await;
        let labels: Vec<String> = seen.iter().map(label).collect();
        assert_eq!(labels, ["A", "B", "C"], "{scenario}");
        for pair in seen.windows(2) {
            assert!(pair[0].checkpoint() < pair[1].checkpoint(), "{scenario}");
            assert!(
                pair[0].commit < pair[1].commit,
                "{scenario}: one commit each"
            );
        }
        if b_first {
            assert!(
                seen[1].position < seen[0].position,
                "{scenario}: B took a lower position than A, and is still read after it"
            );
        }

        // Resuming after the last checkpoint reads nothing again, then only what is new.
        assert!(drain(&store, after).await.0.is_empty(), "{scenario}");
        store
            .append(&d, ExpectedVersion::Any, vec![event("D")])
            .await
            .expect("append D");
        let (seen, _) = drain(&store, after).await;
        assert_eq!(
            seen.iter().map(label).collect::<Vec<_>>(),
            ["D"],
            "{scenario}"
        );

        // Resuming from each intermediate checkpoint never skips nor repeats an event.
        let (all, _) = drain(&store, start).await;
        assert_eq!(
            all.iter().map(label).collect::<Vec<_>>(),
            ["A", "B", "C", "D"],
            "{scenario}"
        );
        for (i, event) in all.iter().enumerate() {
            let (rest, _) = drain(&store, event.checkpoint()).await;
            assert_eq!(
                rest.iter().map(|e| e.event_id).collect::<Vec<_>>(),
                all[i + 1..].iter().map(|e| e.event_id).collect::<Vec<_>>(),
                "{scenario}: resuming after event {i}"
            );
        }
    }
}

#[tokio::test]
async fn an_append_after_other_writes_in_a_transaction_is_refused() {
    let store = fresh_store_with(fresh_config()).await;
    let id = StreamId::new(format!("after-{}", Uuid::new_v4())).expect("id");
    let mut client = store.pool().get().await.expect("connection");
    client
        .batch_execute(&format!("CREATE TABLE {}.other (n int)", store.schema()))
        .await
        .expect("a table");
    let mut tx = client.transaction().await.expect("begin");
    tx.execute(
        &format!("INSERT INTO {}.other VALUES (1)", store.schema()),
        &[],
    )
    .await
    .expect("another write");
    let refused = store
        .append_in(
            &mut tx,
            vec![StreamAppend {
                stream_id: id.clone(),
                expected: ExpectedVersion::Any,
                events: vec![event("late")],
            }],
        )
        .await;
    assert!(
        matches!(&refused, Err(annals::StoreError::Rejected { stream, reason })
            if *stream == id && reason.contains("before the transaction writes anything else")),
        "got {refused:?}"
    );
    tx.commit().await.expect("the transaction is still usable");
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        annals::Version(0)
    );
}
