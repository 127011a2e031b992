//! [`RelaySink`]: the relay as a [`ProjectionSink`] of stored events. The core's
//! [`ProjectionRunner`](annals::ProjectionRunner) feeds it batches; it publishes each batch
//! pipelined and saves the checkpoint once every event of it is acknowledged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use annals::{
    Batch, Checkpoint, EventStore, Filter, HandlerError, ProjectionSink, RecordedEvent, SinkError,
};
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::{self, publish::PublishAck};
use async_trait::async_trait;
use tokio::sync::watch;
use tracing::Instrument;

use super::config::RelayConfig;
use super::error::RelayError;
use super::RelayStatus;
use crate::telemetry::RelayMetrics;
use crate::wire::{self, SubjectMapping};

/// The header that makes JetStream store a message only right after the one with the given
/// `Nats-Msg-Id`: how the relay keeps the stream in log order across failures.
const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";

/// The header that makes JetStream refuse a message captured by a stream of another name.
const EXPECTED_STREAM: &str = "Nats-Expected-Stream";

/// The relay as a [`ProjectionSink`]: it receives the stored events of its filter, publishes
/// them to JetStream and saves its checkpoint in the source store only after their
/// acknowledgements.
///
/// [`Relay`](super::Relay) runs it under the core's
/// [`ProjectionRunner`](annals::ProjectionRunner) and sets up the stream first; run it under a
/// runner of your own only over a stream that exists.
///
/// # A batch
///
/// Events are published in log order, at most `publish_window` of them unacknowledged at a
/// time, and their acknowledgements awaited in the same order. Each message but the first of
/// a batch carries `Nats-Expected-Last-Msg-Id` (the previous event's id), so JetStream stores
/// it only right after its predecessor: when a message is lost (a connection breaks, a
/// leader changes) the ones after it are refused instead of overtaking it. The first of a
/// batch needs none: everything before it is acknowledged.
///
/// When the `k`-th publish or acknowledgement of a batch fails, the checkpoint is saved after
/// event `k - 1` (when `k > 0`) and the sink reports [`SinkError::Handler`] with `index` and
/// `committed` equal to `k`, so the runner retries from the event that failed. An event that
/// is not acknowledged is never behind the checkpoint.
#[derive(Debug)]
pub struct RelaySink {
    name: String,
    relay: String,
    stream: String,
    jetstream: jetstream::Context,
    subjects: SubjectMapping,
    filter: Filter,
    window: usize,
    status: watch::Sender<RelayStatus>,
    metrics: RelayMetrics,
}

impl RelaySink {
    /// The sink of `config`, publishing through `jetstream`.
    pub fn new(jetstream: jetstream::Context, config: &RelayConfig) -> Self {
        RelaySink::with_status(
            jetstream,
            config,
            watch::Sender::new(RelayStatus::default()),
        )
    }

    pub(crate) fn with_status(
        jetstream: jetstream::Context,
        config: &RelayConfig,
        status: watch::Sender<RelayStatus>,
    ) -> Self {
        RelaySink {
            name: config.checkpoint_name(),
            relay: config.name().to_owned(),
            stream: config.stream().to_owned(),
            jetstream,
            subjects: config.subjects().clone(),
            filter: config.filter().clone(),
            window: config.publish_window(),
            status,
            metrics: RelayMetrics::new(config.name()),
        }
    }

    /// Publishes `events` in order, pipelined; returns how many were acknowledged before the
    /// first failure, with the failure.
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), (usize, RelayError)> {
        let mut pending: VecDeque<(usize, PublishAckFuture)> =
            VecDeque::with_capacity(self.window.min(events.len()));
        for (index, event) in events.iter().enumerate() {
            if pending.len() >= self.window {
                if let Some((sent, ack)) = pending.pop_front() {
                    self.acknowledged(sent, ack, events).await?;
                }
            }
            let mut headers = wire::headers_of(event);
            headers.insert(EXPECTED_STREAM, self.stream.as_str());
            if let Some(previous) = index.checked_sub(1).and_then(|i| events.get(i)) {
                headers.insert(EXPECTED_LAST_MSG_ID, previous.event_id.to_string().as_str());
            }
            let sent = self
                .jetstream
                .publish_with_headers(self.subjects.subject(event), headers, wire::body_of(event))
                .await;
            match sent {
                Ok(ack) => pending.push_back((index, ack)),
                Err(source) => {
                    // The events sent before it count if they are acknowledged.
                    while let Some((sent, ack)) = pending.pop_front() {
                        self.acknowledged(sent, ack, events).await?;
                    }
                    return Err((index, self.failure(event, source)));
                }
            }
        }
        while let Some((sent, ack)) = pending.pop_front() {
            self.acknowledged(sent, ack, events).await?;
        }
        Ok(())
    }

    /// Awaits the acknowledgement of `events[index]`.
    async fn acknowledged(
        &self,
        index: usize,
        ack: PublishAckFuture,
        events: &[RecordedEvent],
    ) -> Result<PublishAck, (usize, RelayError)> {
        match ack.await {
            Ok(ack) => {
                self.metrics.events.increment(1);
                self.status.send_modify(|status| {
                    status.relayed += 1;
                    if ack.duplicate {
                        status.duplicates += 1;
                    }
                });
                Ok(ack)
            }
            Err(source) => {
                let failure = match events.get(index) {
                    Some(event) => self.failure(event, source),
                    None => RelayError::StreamUnavailable {
                        relay: self.relay.clone(),
                        stream: self.stream.clone(),
                        source: Box::new(source),
                    },
                };
                Err((index, failure))
            }
        }
    }

    fn failure(&self, event: &RecordedEvent, source: PublishError) -> RelayError {
        RelayError::Publish {
            relay: self.relay.clone(),
            stream: self.stream.clone(),
            event_stream: event.stream_id.clone(),
            version: event.version,
            position: event.position,
            source,
        }
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> ProjectionSink<S> for RelaySink {
    type Item = RecordedEvent;

    /// `nats-relay:<relay name>`.
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> Filter {
        self.filter.clone()
    }

    async fn handle_batch(
        &mut self,
        store: &S,
        batch: Batch<'_, RecordedEvent>,
    ) -> Result<(), SinkError> {
        let span = tracing::info_span!(
            "annals.relay.batch",
            messaging.system = "nats",
            messaging.operation.name = "publish",
            messaging.destination.name = %self.stream,
            messaging.batch.message_count = batch.events.len(),
            annals.relay = %self.relay,
        );
        let started = Instant::now();
        let published = self.publish(batch.events).instrument(span).await;
        self.metrics.publish_duration.record(started.elapsed());
        let (index, error) = match published {
            Ok(()) => {
                store
                    .save_checkpoint_if(&self.name, batch.from, batch.to)
                    .await?;
                return Ok(());
            }
            Err(failure) => failure,
        };
        let committed = match index.checked_sub(1).and_then(|i| batch.events.get(i)) {
            Some(acknowledged) => {
                store
                    .save_checkpoint_if(&self.name, batch.from, acknowledged.checkpoint())
                    .await?;
                index
            }
            None => 0,
        };
        let error = Arc::new(error);
        super::report(&self.status, &error);
        Err(SinkError::Handler {
            index,
            committed,
            source: HandlerError::from(Box::new(error)),
        })
    }

    /// Stores the start of the log as the checkpoint, so the relay publishes the whole log
    /// again: JetStream drops the repeats within its duplicate window, and stores the older
    /// ones again.
    async fn reset(&mut self, store: &S) -> Result<(), SinkError> {
        store.save_checkpoint(&self.name, Checkpoint::START).await?;
        Ok(())
    }
}
