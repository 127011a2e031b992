//! Memory store behaviour beyond the conformance suite: an event id repeated within one call,
//! on the one-stream and the multi-stream path, and waiters after appends nobody watched.

use std::time::Duration;

use annals::{
    Checkpoint, EventStore, ExpectedVersion, NewEvent, Payload, StoreError, StreamAppend, StreamId,
};
use annals_memory::MemoryEventStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn event() -> Result<NewEvent, BoxError> {
    Ok(NewEvent::new("Noted", 1, Payload::from_json("{}")?))
}

#[tokio::test]
async fn an_id_twice_in_one_stream_append_is_refused() -> Result<(), BoxError> {
    let store = MemoryEventStore::new();
    let stream = StreamId::new("notes-1")?;
    let first = event()?;
    let again = first.clone();
    let refused = store
        .append(&stream, ExpectedVersion::Any, vec![first, again])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Rejected { stream: s, .. }) if *s == stream),
        "got {refused:?}"
    );
    assert!(store.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_id_in_two_streams_of_one_append_is_refused() -> Result<(), BoxError> {
    let store = MemoryEventStore::new();
    let (a, b) = (StreamId::new("notes-a")?, StreamId::new("notes-b")?);
    let shared = event()?;
    let refused = store
        .append_streams(vec![
            StreamAppend {
                stream_id: a,
                expected: ExpectedVersion::Any,
                events: vec![shared.clone()],
            },
            StreamAppend {
                stream_id: b.clone(),
                expected: ExpectedVersion::Any,
                events: vec![shared],
            },
        ])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Rejected { stream, .. }) if *stream == b),
        "got {refused:?}"
    );
    assert!(store.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_waiter_after_unwatched_appends_still_wakes() -> Result<(), BoxError> {
    let store = MemoryEventStore::new();
    let stream = StreamId::new("notes-1")?;
    // Appended while nobody waits: nothing is announced, and nothing must be lost.
    store
        .append(&stream, ExpectedVersion::Any, vec![event()?])
        .await?;
    assert!(
        store
            .wait_for_events(Checkpoint::START, Duration::from_secs(30))
            .await?
    );
    let after = store.read_all(Checkpoint::START, 10).await?[0].checkpoint();
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_for_events(after, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    store
        .append(&stream, ExpectedVersion::Any, vec![event()?])
        .await?;
    assert!(waiter.await??);
    Ok(())
}
