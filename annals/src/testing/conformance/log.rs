//! The global log: its order, its head, and the checkpoints kept in it.

use super::*;

/// The head of the log is the checkpoint of its last event, and the start when it is empty.
pub async fn log_head_is_the_last_event<S: EventStore>(store: S) {
    assert_eq!(store.log_head().await.expect("log_head"), Checkpoint::START);
    for n in 0..3 {
        store
            .append(
                &stream("head"),
                ExpectedVersion::Any,
                events(n * 2..n * 2 + 2),
            )
            .await
            .expect("append");
        let head = store.log_head().await.expect("log_head");
        assert_eq!(head, last_checkpoint(&store).await);
        assert!(
            store.read_all(head, 10).await.expect("read_all").is_empty(),
            "nothing comes after the head"
        );
    }
}

/// The global log holds every event once, in write order, with increasing positions and
/// checkpoints; reading after a checkpoint resumes exactly there.
pub async fn global_order_and_positions<S: EventStore>(store: S) {
    let start = last_checkpoint(&store).await;
    let ids = [stream("order-a"), stream("order-b"), stream("order-c")];
    let mut written = Vec::new();
    for round in 0..4u64 {
        for id in &ids {
            let batch = events(round * 10..round * 10 + 2);
            written.extend(batch.iter().map(|e| e.event_id));
            store
                .append(id, ExpectedVersion::Any, batch)
                .await
                .expect("append");
        }
    }
    let mut read = Vec::new();
    let mut reader = store.log_reader(start).batch_size(5);
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        assert!(batch.len() <= 5, "a batch holds at most the limit");
        read.extend(batch);
    }
    let ours: Vec<&RecordedEvent> = read.iter().filter(|e| ids.contains(&e.stream_id)).collect();
    assert_eq!(
        ours.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        written,
        "read_all returns every event once, in write order"
    );
    for pair in read.windows(2) {
        assert!(
            pair[0].checkpoint() < pair[1].checkpoint(),
            "checkpoints increase"
        );
    }
    for pair in ours.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions increase in write order"
        );
    }
    for id in &ids {
        let versions: Vec<u64> = ours
            .iter()
            .filter(|e| &e.stream_id == id)
            .map(|e| e.version.0)
            .collect();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    }

    let middle = ours[11].checkpoint();
    let rest = store.read_all(middle, 1_000).await.expect("read_all");
    let rest: Vec<Uuid> = rest
        .iter()
        .filter(|e| ids.contains(&e.stream_id))
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        rest,
        written[12..],
        "reading after a checkpoint resumes right after it"
    );
    assert_eq!(
        store.read_all(middle, 3).await.expect("read_all").len(),
        3,
        "read_all honours the limit"
    );
}

/// Named checkpoints are saved, replaced and loaded.
pub async fn checkpoints_round_trip<S: EventStore>(store: S) {
    let name = format!("projection-{}", Uuid::new_v4().simple());
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        None
    );
    let first = Checkpoint {
        commit: 7,
        position: crate::stream::Position(42),
    };
    store
        .save_checkpoint(&name, first)
        .await
        .expect("save_checkpoint");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(first)
    );
    let second = Checkpoint {
        commit: 9,
        position: crate::stream::Position(50),
    };
    store
        .save_checkpoint(&name, second)
        .await
        .expect("save_checkpoint");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(second)
    );
    store
        .save_checkpoint(&name, Checkpoint::START)
        .await
        .expect("a reset to the start");
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(Checkpoint::START)
    );
}

/// A checkpoint is saved over the one expected, or not at all.
pub async fn checkpoints_compare_and_set<S: EventStore>(store: S) {
    let name = format!("compared-{}", Uuid::new_v4().simple());
    let at = |n: u64| Checkpoint {
        commit: n,
        position: crate::stream::Position(n * 10),
    };
    store
        .save_checkpoint_if(&name, None, at(1))
        .await
        .expect("the first save");
    let moved = store.save_checkpoint_if(&name, None, at(2)).await;
    assert!(
        matches!(&moved, Err(StoreError::CheckpointMoved { name: n, expected: None, actual: Some(actual) })
            if *n == name && *actual == at(1)),
        "got {moved:?}"
    );
    store
        .save_checkpoint_if(&name, Some(at(1)), at(3))
        .await
        .expect("a save over the stored one");
    let behind = store.save_checkpoint_if(&name, Some(at(1)), at(2)).await;
    assert!(
        matches!(&behind, Err(StoreError::CheckpointMoved { expected: Some(e), actual: Some(a), .. })
            if *e == at(1) && *a == at(3)),
        "got {behind:?}"
    );
    assert_eq!(
        store.load_checkpoint(&name).await.expect("load_checkpoint"),
        Some(at(3)),
        "a refused save leaves the checkpoint as it was"
    );
}
