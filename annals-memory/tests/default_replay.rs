//! The conformance suite again, on a store that keeps `EventStore`'s default `replay_stream`
//! (paging through `read_stream`): what a backend that does not override it gets.

use std::ops::ControlFlow;
use std::time::Duration;

use annals::{
    AppendResult, Checkpoint, EventStore, ExpectedVersion, HeldTurn, Lease, RecordedEvent,
    Snapshot, StoreError, StreamAppend, StreamId, Version,
};
use annals_memory::MemoryEventStore;
use async_trait::async_trait;
use uuid::Uuid;

/// The memory store with every method but `replay_stream` forwarded.
#[derive(Clone, Default)]
struct DefaultReplay(MemoryEventStore);

#[async_trait]
impl EventStore for DefaultReplay {
    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.0.append_streams(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from, limit).await
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(after, limit).await
    }

    async fn log_head(&self) -> Result<Checkpoint, StoreError> {
        self.0.log_head().await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError> {
        self.0.stream_version(stream).await
    }

    async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.0.read_event(event_id).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.0.save_snapshot(snapshot).await
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        self.0.load_snapshot(stream).await
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.0.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.0.save_checkpoint(name, checkpoint).await
    }

    async fn save_checkpoint_if(
        &self,
        name: &str,
        expected: Option<Checkpoint>,
        checkpoint: Checkpoint,
    ) -> Result<(), StoreError> {
        self.0.save_checkpoint_if(name, expected, checkpoint).await
    }

    async fn acquire_lease(&self, name: &str) -> Result<Box<dyn Lease>, StoreError> {
        self.0.acquire_lease(name).await
    }

    async fn hold_turn(&self, stream: &StreamId) -> Result<Option<Box<dyn HeldTurn>>, StoreError> {
        self.0.hold_turn(stream).await
    }

    async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        self.0.wait_for_events(after, timeout).await
    }
}

annals::conformance_tests!(DefaultReplay::default());

/// The default pages through `read_stream` in bounded batches, so a large `limit` is honoured
/// exactly, across pages, and a stop ends it mid-page.
#[tokio::test]
async fn the_default_replay_pages_through_long_streams() {
    let store = DefaultReplay::default();
    let stream = StreamId::new("long").expect("id");
    let events = (0..2_500)
        .map(|n| {
            annals::NewEvent::new(
                "test.happened",
                1,
                annals::Payload::from_value(&serde_json::json!({ "n": n })).expect("json"),
            )
        })
        .collect();
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .expect("append");

    let replay = |from: u64, limit: usize, stop_after: usize| {
        let store = store.clone();
        let stream = stream.clone();
        async move {
            let mut versions = Vec::new();
            let visited = store
                .replay_stream(&stream, Version(from), limit, &mut |event| {
                    versions.push(event.version.0);
                    if versions.len() >= stop_after {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .await
                .expect("replay");
            (visited, versions)
        }
    };
    let (visited, versions) = replay(100, 2_200, usize::MAX).await;
    assert_eq!(visited, 2_200);
    assert_eq!(versions, (100..2_300).collect::<Vec<_>>());
    let (visited, versions) = replay(1, 1_000_000, usize::MAX).await;
    assert_eq!(visited, 2_500);
    assert_eq!(versions, (1..=2_500).collect::<Vec<_>>());
    let (visited, versions) = replay(1, 1_000_000, 1_500).await;
    assert_eq!(visited, 1_500);
    assert_eq!(versions, (1..=1_500).collect::<Vec<_>>());
}
