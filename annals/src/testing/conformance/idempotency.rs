//! Exact retries of an append, and event ids used again.

use super::*;

/// Appending the same event ids again returns the first result and writes nothing; any other
/// reuse of a stored id is refused.
pub async fn idempotent_reappend<S: EventStore>(store: S) {
    let id = stream("idempotent");
    let batch = events(0..2);
    let first = store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("append");
    assert!(first.written, "the first append writes");
    let retried = AppendResult {
        written: false,
        ..first
    };
    let again = store
        .append(&id, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("an exact retry succeeds");
    assert_eq!(
        again, retried,
        "a retry returns the first result, saying it wrote nothing"
    );
    assert_eq!(
        read_whole(&store, &id).await.len(),
        2,
        "a retry writes nothing"
    );

    store
        .append(&id, ExpectedVersion::Exact(Version(2)), events(2..3))
        .await
        .expect("append");
    let again = store
        .append(&id, ExpectedVersion::Exact(Version(0)), batch.clone())
        .await
        .expect("a late retry succeeds");
    assert_eq!(again, retried);

    let prefix = store
        .append(&id, ExpectedVersion::Any, vec![batch[0].clone()])
        .await
        .expect("a retry of stored events succeeds");
    assert_eq!(
        (prefix.first_version, prefix.stream_version),
        (Version(1), Version(1)),
        "it describes the stored events"
    );
    let reordered = store
        .append(
            &id,
            ExpectedVersion::Any,
            vec![batch[1].clone(), batch[0].clone()],
        )
        .await;
    assert!(
        matches!(reordered, Err(StoreError::DuplicateEventId { .. })),
        "stored ids in another order are refused, got {reordered:?}"
    );
    let mixed = store
        .append(
            &id,
            ExpectedVersion::Any,
            vec![test_event(9), batch[1].clone()],
        )
        .await;
    assert!(
        matches!(mixed, Err(StoreError::DuplicateEventId { event_id, ref stream, version })
        if event_id == batch[1].event_id && *stream == id && version == Version(2)),
        "a new event beside a stored id is refused, got {mixed:?}"
    );
    let elsewhere = store
        .append(
            &stream("idempotent-other"),
            ExpectedVersion::Any,
            batch.clone(),
        )
        .await;
    assert!(
        matches!(elsewhere, Err(StoreError::DuplicateEventId { .. })),
        "stored ids cannot go to another stream, got {elsewhere:?}"
    );
    assert_eq!(read_whole(&store, &id).await.len(), 3);
}
