//! A sink of one's own under the core's projection runner: it gets each batch with the
//! checkpoints to move, saves the checkpoint its own way, and a failure it reports is retried
//! by the runner from the events it says it committed.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use annals::{
    Batch, Checkpoint, CorruptEvents, Envelope, Event, EventStore, ExpectedVersion, Filter,
    HandlerRetry, NewEvent, ProjectionRunner, ProjectionSink, RecordedEvent, RunError, SinkError,
    StreamId, UnknownEvents,
};
use annals_memory::MemoryEventStore;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum Tick {
    Ticked { n: u64 },
}

/// Commits all or nothing of a batch (as a transaction would), and fails once on a chosen
/// event.
#[derive(Default)]
struct AllOrNothing {
    /// Each call: its `from`, its `to` and the events it was handed.
    calls: Vec<(Option<Checkpoint>, Checkpoint, Vec<u64>)>,
    /// What it committed, in order.
    committed: Vec<u64>,
    fail_once_on: Option<u64>,
}

#[async_trait]
impl ProjectionSink<MemoryEventStore> for AllOrNothing {
    type Item = Envelope<Tick>;

    fn name(&self) -> &str {
        "all-or-nothing"
    }

    fn filter(&self) -> Filter {
        Filter::all()
    }

    fn unknown_events(&self) -> UnknownEvents {
        UnknownEvents::Fail
    }

    fn corrupt_events(&self) -> CorruptEvents {
        CorruptEvents::Fail
    }

    async fn handle_batch(
        &mut self,
        store: &MemoryEventStore,
        batch: Batch<'_, Envelope<Tick>>,
    ) -> Result<(), SinkError> {
        let ns: Vec<u64> = batch
            .events
            .iter()
            .map(|e| {
                let Tick::Ticked { n } = e.event;
                n
            })
            .collect();
        self.calls.push((batch.from, batch.to, ns.clone()));
        if let Some(index) = ns.iter().position(|n| Some(*n) == self.fail_once_on) {
            self.fail_once_on = None;
            return Err(SinkError::Handler {
                index,
                committed: 0,
                source: "refused once".into(),
            });
        }
        store
            .save_checkpoint_if(self.name(), batch.from, batch.to)
            .await?;
        self.committed.extend(ns);
        Ok(())
    }

    async fn reset(&mut self, store: &MemoryEventStore) -> Result<(), SinkError> {
        self.committed.clear();
        store
            .save_checkpoint(self.name(), Checkpoint::START)
            .await?;
        Ok(())
    }
}

async fn store_with_ticks(count: u64) -> MemoryEventStore {
    let store = MemoryEventStore::new();
    let stream = StreamId::new("clock-1").unwrap();
    let events = (1..=count)
        .map(|n| NewEvent::encode(&Tick::Ticked { n }, Default::default()).unwrap())
        .collect();
    store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_sink_of_ones_own_gets_batches_with_their_checkpoints_and_retries() {
    let store = store_with_ticks(7).await;
    let sink = AllOrNothing {
        fail_once_on: Some(5),
        ..AllOrNothing::default()
    };
    let mut runner = ProjectionRunner::new(store.clone(), sink)
        .with_batch_size(3)
        .with_retry(HandlerRetry {
            max_attempts: 2,
            initial_backoff: Duration::ZERO,
        });
    assert_eq!(runner.catch_up().await.unwrap(), 7);

    let sink = runner.projection();
    assert_eq!(
        sink.committed,
        (1..=7).collect::<Vec<_>>(),
        "each event once, in order"
    );
    let handed: Vec<Vec<u64>> = sink.calls.iter().map(|(_, _, ns)| ns.clone()).collect();
    assert_eq!(
        handed,
        [vec![1, 2, 3], vec![4, 5, 6], vec![4, 5, 6], vec![7]],
        "the batch that failed is handed over again whole"
    );
    // Each call starts where the last committed one ended.
    assert_eq!(sink.calls[0].0, None);
    assert_eq!(sink.calls[1].0, Some(sink.calls[0].1));
    assert_eq!(sink.calls[2].0, Some(sink.calls[0].1));
    assert_eq!(sink.calls[3].0, Some(sink.calls[2].1));
    assert_eq!(store.log_head().await.unwrap(), sink.calls[3].1);
    assert_eq!(runner.checkpoint().await.unwrap(), sink.calls[3].1);

    runner.rebuild().await.unwrap();
    assert!(runner.projection().committed.is_empty());
    assert_eq!(runner.checkpoint().await.unwrap(), Checkpoint::START);
}

#[tokio::test]
async fn a_sink_that_keeps_failing_stops_the_runner_naming_the_event() {
    let store = store_with_ticks(4).await;
    let mut runner =
        ProjectionRunner::new(store.clone(), AllOrNothing::default()).with_retry(HandlerRetry {
            max_attempts: 3,
            initial_backoff: Duration::ZERO,
        });
    runner.projection_mut().fail_once_on = Some(3);
    assert_eq!(
        runner.catch_up().await.unwrap(),
        4,
        "one failure is retried"
    );

    let store = store_with_ticks(4).await;
    struct AlwaysFails;
    #[async_trait]
    impl ProjectionSink<MemoryEventStore> for AlwaysFails {
        type Item = RecordedEvent;
        fn name(&self) -> &str {
            "always-fails"
        }
        async fn handle_batch(
            &mut self,
            _store: &MemoryEventStore,
            _batch: Batch<'_, RecordedEvent>,
        ) -> Result<(), SinkError> {
            Err(SinkError::Handler {
                index: 1,
                committed: 0,
                source: "never".into(),
            })
        }
        async fn reset(&mut self, _store: &MemoryEventStore) -> Result<(), SinkError> {
            Ok(())
        }
    }
    let mut runner = ProjectionRunner::new(store.clone(), AlwaysFails).with_retry(HandlerRetry {
        max_attempts: 3,
        initial_backoff: Duration::ZERO,
    });
    match runner.catch_up().await {
        Err(RunError::Handler {
            projection,
            stream,
            version,
            attempts,
            ..
        }) => {
            assert_eq!(projection, "always-fails");
            assert_eq!((stream.as_str(), version.0, attempts), ("clock-1", 2, 3));
        }
        other => panic!("expected the handler's failure, got {other:?}"),
    }
    assert_eq!(
        runner.checkpoint().await.unwrap(),
        Checkpoint::START,
        "nothing committed"
    );
}
