//! Snapshots of aggregate state.

use super::*;

/// A store keeps the latest snapshot of each stream; an older one never replaces a newer one.
pub async fn snapshots_keep_the_latest<S: EventStore>(store: S) {
    let id = stream("snapshot");
    assert_eq!(store.load_snapshot(&id).await.expect("load_snapshot"), None);
    let snapshot = |version: u64, balance: u64| Snapshot {
        stream_id: id.clone(),
        version: Version(version),
        snapshot_version: 3,
        state: Payload::from_value(
            &serde_json::json!({ "balance": balance, "owner": "o'brien ✓" }),
        )
        .expect("json"),
        taken_at: SystemTime::now(),
    };
    store
        .save_snapshot(snapshot(10, 100))
        .await
        .expect("save_snapshot");
    let loaded = store
        .load_snapshot(&id)
        .await
        .expect("load_snapshot")
        .expect("a snapshot");
    assert_eq!(
        (
            loaded.stream_id.clone(),
            loaded.version,
            loaded.snapshot_version
        ),
        (id.clone(), Version(10), 3)
    );
    assert_eq!(
        loaded.state.to_value().expect("json"),
        serde_json::json!({ "balance": 100, "owner": "o'brien ✓" })
    );
    store
        .save_snapshot(snapshot(20, 200))
        .await
        .expect("save_snapshot");
    store
        .save_snapshot(snapshot(15, 150))
        .await
        .expect("save_snapshot");
    let loaded = store
        .load_snapshot(&id)
        .await
        .expect("load_snapshot")
        .expect("a snapshot");
    assert_eq!(
        loaded.version,
        Version(20),
        "an older snapshot does not replace a newer one"
    );
    assert_eq!(
        store
            .load_snapshot(&stream("snapshot-other"))
            .await
            .expect("load_snapshot"),
        None
    );
}
