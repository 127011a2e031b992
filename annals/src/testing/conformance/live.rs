//! What runs beside readers and writers: leases, held turns, waiting for events, subscriptions.

use super::*;

/// One holder of a lease at a time: a second caller waits until the first lets it go;
/// leases of other names are free.
pub async fn leases_exclude_each_other<S: EventStore + Clone + 'static>(store: S) {
    let name = format!("lease-{}", Uuid::new_v4().simple());
    let first = store.acquire_lease(&name).await.expect("acquire_lease");
    assert!(first.is_held());
    let other = store
        .acquire_lease(&format!("{name}-other"))
        .await
        .expect("another name is free");
    drop(other);
    let (taken, mut took) = tokio::sync::oneshot::channel();
    let second = {
        let (store, name) = (store.clone(), name.clone());
        tokio::spawn(async move {
            let lease = store.acquire_lease(&name).await.expect("acquire_lease");
            let _ = taken.send(());
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(lease);
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        took.try_recv().is_err(),
        "a second holder got the lease while the first held it"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(30), took)
        .await
        .expect("the waiting caller gets the lease once it is free")
        .expect("the lease task");
    second.await.expect("the lease task");
    let again = tokio::time::timeout(Duration::from_secs(30), store.acquire_lease(&name))
        .await
        .expect("a released lease is free")
        .expect("acquire_lease");
    assert!(again.is_held());
}

/// A store that holds turns serves their holders one at a time, and what a holder appends is
/// what the next holder reads.
pub async fn held_turns_take_turns<S: EventStore + Clone + 'static>(store: S) {
    let id = stream("turns");
    let Some(probe) = store.hold_turn(&id).await.expect("hold_turn") else {
        return; // a store without turns: repositories back off instead
    };
    assert_eq!(probe.stream(), &id);
    probe.release().await.expect("release");
    let holders: Vec<_> = (0..4u64)
        .map(|n| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let mut turn = store
                    .hold_turn(&id)
                    .await
                    .expect("hold_turn")
                    .expect("a turn");
                let mut version = Version(0);
                let mut visit = |event: crate::ReplayedEvent<'_>| {
                    version = event.version;
                    std::ops::ControlFlow::Continue(())
                };
                turn.replay(Version(1), usize::MAX, &mut visit)
                    .await
                    .expect("replay");
                tokio::task::yield_now().await;
                let batch = events(n * 10..n * 10 + 2);
                let first_id = batch[0].event_id;
                if let Some(stored) = turn.read_event(first_id).await.expect("read_event") {
                    panic!("an event not appended yet is stored: {stored:?}");
                }
                let written = turn
                    .append_and_release(ExpectedVersion::Exact(version), batch)
                    .await
                    .expect("an append decided under the turn meets no conflict");
                assert!(written.written);
                let first = store
                    .read_event(first_id)
                    .await
                    .expect("read_event")
                    .expect("the event just appended");
                assert_eq!(first.version, written.first_version);
            })
        })
        .collect();
    for holder in holders {
        holder.await.expect("a holder");
    }
    assert_eq!(
        store.stream_version(&id).await.expect("version"),
        Version(8)
    );
}

/// A reader waiting for new events is woken by an append, well before its timeout, and
/// returns at the timeout when nothing comes.
pub async fn waiters_wake_on_append<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    let after = last_checkpoint(&*store).await;
    let started = std::time::Instant::now();
    let quiet = store
        .wait_for_events(after, Duration::from_millis(200))
        .await
        .expect("wait");
    assert!(
        !quiet || last_checkpoint(&*store).await > after,
        "woken with nothing new"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150) || quiet,
        "returned early without cause"
    );

    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            store
                .append(&stream("wake"), ExpectedVersion::Any, events(0..1))
                .await
                .expect("append");
        })
    };
    let started = std::time::Instant::now();
    let mut woken = false;
    // A store may wake early without news (a reconnect); wait again until the event is there.
    while last_checkpoint(&*store).await <= after && started.elapsed() < Duration::from_secs(30) {
        woken = store
            .wait_for_events(after, Duration::from_secs(30))
            .await
            .expect("wait");
    }
    writer.await.expect("writer");
    assert!(woken, "the append woke the waiter");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the append, not by the timeout"
    );
}

/// A subscription started after 10,000 events, with writers still appending, delivers every
/// event of its filter exactly once, in order, and nothing else.
pub async fn subscription_sees_every_event_once<S: EventStore + Clone + 'static>(store: S) {
    const STREAMS: u64 = 10;
    const BEFORE: u64 = 10_000;
    const WRITERS: u64 = 4;
    const DURING: u64 = 250;
    let category = format!("sub{}", Uuid::new_v4().simple());
    let ids: Vec<StreamId> = (0..STREAMS)
        .map(|i| StreamId::new(format!("{category}-{i}")).expect("valid id"))
        .collect();
    let start = last_checkpoint(&store).await;
    for chunk in 0..BEFORE / 500 {
        let id = &ids[(chunk % STREAMS) as usize];
        store
            .append(
                id,
                ExpectedVersion::Any,
                events(chunk * 500..(chunk + 1) * 500),
            )
            .await
            .expect("append");
    }
    // Noise in another category, which the filter drops.
    store
        .append(&stream("noise"), ExpectedVersion::Any, events(0..50))
        .await
        .expect("append");

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, ids) = (store.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..DURING {
                    let n = BEFORE + w * DURING + i;
                    let id = &ids[(n % STREAMS) as usize];
                    store
                        .append(id, ExpectedVersion::Any, events(n..n + 1))
                        .await
                        .expect("append");
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();

    let total = BEFORE + WRITERS * DURING;
    let mut subscription = Subscription::new(store.clone(), start)
        .with_filter(Filter::category(category.clone()))
        .with_batch_size(700)
        .with_poll_interval(Duration::from_millis(50));
    let mut seen = Vec::with_capacity(total as usize);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while (seen.len() as u64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} events arrived",
            seen.len()
        );
        let batch = subscription
            .next_batch()
            .await
            .expect("next_batch")
            .expect("not stopped");
        seen.extend(batch);
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        subscription.poll_batch().await.expect("poll").is_none(),
        "nothing beyond the writes"
    );
    assert!(
        seen.iter()
            .all(|e| e.stream_id.as_str().starts_with(&category)),
        "the filter holds"
    );
    for pair in seen.windows(2) {
        assert!(
            pair[0].checkpoint() < pair[1].checkpoint(),
            "delivered in checkpoint order, once"
        );
    }
    let payloads: BTreeSet<u64> = seen.iter().map(n_of).collect();
    assert_eq!(
        payloads,
        (0..total).collect::<BTreeSet<_>>(),
        "every event exactly once"
    );
    for id in &ids {
        let versions: Vec<u64> = seen
            .iter()
            .filter(|e| &e.stream_id == id)
            .map(|e| e.version.0)
            .collect();
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "stream {id} in version order"
        );
    }
}
