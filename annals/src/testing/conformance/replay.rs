//! Reading one stream in batches and replaying it.

use super::*;

/// A stream of 100,000 events reads back in bounded batches, each event once, in order.
pub async fn batched_reads_large_stream<S: EventStore>(store: S) {
    const TOTAL: u64 = 100_000;
    const CHUNK: u64 = 1_000;
    let id = stream("large");
    let start = last_checkpoint(&store).await;
    for chunk in 0..TOTAL / CHUNK {
        store
            .append(
                &id,
                ExpectedVersion::Exact(Version(chunk * CHUNK)),
                events(chunk * CHUNK..(chunk + 1) * CHUNK),
            )
            .await
            .expect("append");
    }
    let mut reader = store.stream_reader(&id, Version(1)).batch_size(999);
    let (mut next, mut batches) = (1u64, 0);
    while let Some(batch) = reader.next_batch().await.expect("read_stream") {
        assert!(
            !batch.is_empty() && batch.len() <= 999,
            "batches are bounded"
        );
        for event in &batch {
            assert_eq!(event.version.0, next);
            next += 1;
        }
        batches += 1;
    }
    assert_eq!(next - 1, TOTAL);
    assert_eq!(batches, TOTAL.div_ceil(999));

    let mut reader = store.log_reader(start).batch_size(4_096);
    let mut seen = 0u64;
    while let Some(batch) = reader.next_batch().await.expect("read_all") {
        assert!(batch.len() <= 4_096);
        for event in batch.iter().filter(|e| e.stream_id == id) {
            assert_eq!(event.version.0, seen + 1);
            seen += 1;
        }
    }
    assert_eq!(seen, TOTAL);
    let tail = store
        .read_stream(&id, Version(TOTAL - 5), 10)
        .await
        .expect("read_stream");
    assert_eq!(
        tail.iter().map(|e| e.version.0).collect::<Vec<_>>(),
        (TOTAL - 5..=TOTAL).collect::<Vec<_>>()
    );
}

/// `replay_stream` lends out exactly what `read_stream` returns (version, type, schema
/// version, body, time), honours `from` and `limit`, stops when told to, and reads a missing
/// stream as empty.
pub async fn replay_matches_read_stream<S: EventStore>(store: S) {
    let id = stream("replay");
    let mut first = test_event(0);
    first.schema_version = 3;
    first.event_type = "test.opened".into();
    let mut written = vec![first];
    written.extend(events(1..25));
    store
        .append(&id, ExpectedVersion::NoStream, written)
        .await
        .expect("append");
    let stored = read_whole(&store, &id).await;
    assert_eq!(stored.len(), 25);

    type Seen = (Version, String, u32, String, SystemTime);
    async fn replay<S: EventStore>(
        store: &S,
        id: &StreamId,
        from: Version,
        limit: usize,
        stop_after: usize,
    ) -> (usize, Vec<Seen>) {
        let mut seen = Vec::new();
        let visited = store
            .replay_stream(id, from, limit, &mut |event| {
                seen.push((
                    event.version,
                    event.event_type.to_owned(),
                    event.schema_version,
                    event.payload.to_owned(),
                    event.recorded_at,
                ));
                if seen.len() >= stop_after {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await
            .expect("replay_stream");
        (visited, seen)
    }
    let expected = |range: std::ops::Range<usize>| -> Vec<Seen> {
        stored[range]
            .iter()
            .map(|e| {
                (
                    e.version,
                    e.event_type.clone(),
                    e.schema_version,
                    e.payload.as_str().to_owned(),
                    e.recorded_at,
                )
            })
            .collect()
    };

    assert_eq!(
        replay(&store, &id, Version(1), 100, usize::MAX).await,
        (25, expected(0..25)),
        "a whole replay sees every event as read_stream returns it"
    );
    assert_eq!(
        replay(&store, &id, Version(11), 10, usize::MAX).await,
        (10, expected(10..20)),
        "`from` and `limit` bound a replay"
    );
    assert_eq!(
        replay(&store, &id, Version(20), 100, usize::MAX).await,
        (6, expected(19..25)),
        "a replay ends at the end of the stream"
    );
    assert_eq!(
        replay(&store, &id, Version(1), 100, 3).await,
        (3, expected(0..3)),
        "a replay stops when the visitor breaks"
    );
    assert_eq!(
        replay(&store, &id, Version(26), 100, usize::MAX).await,
        (0, Vec::new()),
        "past the end, a replay sees nothing"
    );
    assert_eq!(
        replay(
            &store,
            &stream("replay-missing"),
            Version(1),
            100,
            usize::MAX
        )
        .await,
        (0, Vec::new()),
        "a missing stream replays as empty"
    );
    assert_eq!(
        replay(&store, &id, Version(1), 0, usize::MAX).await,
        (0, Vec::new()),
        "a limit of 0 replays nothing"
    );
}
