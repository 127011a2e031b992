//! Consumers: a durable JetStream pull consumer that hands each relayed event, decoded through
//! the event enum's upcasters, to a handler, acknowledges it once handled, and parks what it
//! cannot handle on a dead-letter subject.
//!
//! # Guarantees
//!
//! - **Delivery is at least once.** JetStream delivers each message of the consumer's subjects
//!   until it is acknowledged, and the consumer acknowledges a message only after its handler
//!   succeeded (waiting for the server to confirm the acknowledgement), or after the message
//!   was parked. A crash, an aborted task or a lost acknowledgement means the message is
//!   delivered again once the acknowledgement wait ([`NatsConsumer::with_ack_wait`]) is over.
//! - **Effects are exactly once only with an inbox**, which records the events a consumer
//!   applied atomically with their effects, so a redelivered event is recognised and not
//!   applied again:
//!   - `NatsConsumer::run_on_postgres` (feature `postgres`): a `PgNatsHandler` writes
//!     through a transaction that also inserts `(consumer name, event id)` in the store's
//!     `inbox` table; both commit or neither does.
//!   - [`NatsConsumer::run_with_inbox`]: a [`MemoryNatsHandler`] applies the event and a
//!     [`MemoryInbox`] records it under one lock, with no `.await` in between.
//!
//!   [`NatsConsumer::run`] with a [`NatsHandler`] has no inbox: its effects are at least
//!   once, which suits idempotent effects (a process manager issuing commands with
//!   [`CommandContext::caused_by`](annals::CommandContext::caused_by)).
//! - **Order** is the stream's while nothing fails; a message delivered again (after a crash
//!   or a lost acknowledgement) comes after the messages delivered meanwhile.
//! - **Nothing is dropped silently.** Each message ends in exactly one of: handled and
//!   acknowledged; found in the inbox (applied before), acknowledged, logged at `info`;
//!   skipped by the handler's choice (a type its enum declares removed, or an unknown type
//!   under [`UnknownEvents::Skip`]), acknowledged, logged at
//!   `info`; or parked, logged at `error`.
//!
//! # Messages that are not ours
//!
//! A message on a consumed subject that is not a relayed event this consumer can decode (a
//! missing or malformed header, a body that is not JSON or does not match its variant, an
//! unknown event type, a schema version newer than the code's or one no upcaster covers, a
//! message larger than [`NatsConsumer::with_max_message_size`]) is an [`Unreadable`]
//! message: it is parked at once, without retries, and the consumer goes on with the next.
//! The error ([`Parked`]) names the subject, the stream sequence and the event id when the
//! `Nats-Msg-Id` header holds one. Reading never panics.
//!
//! # Handler failures
//!
//! A handler that fails is called again as [`HandlerRetry`] says (default: 5 attempts in all,
//! waiting 50, 100, 200 and 400 ms in between; the message's acknowledgement wait restarts
//! before each wait), then the message is parked with the last error. See [`dead_letter`]
//! for where parked messages go and what they carry.
//!
//! A consumer's name is its durable JetStream consumer's name, its dead-letter subject's last
//! token and its key in the inbox: renaming it starts over from the stream's first message.
//! Several processes may run the same consumer: JetStream shares the messages out between
//! them, and the inbox still applies each event once.

use std::time::{Duration, Instant};

use annals::{Envelope, Event, HandlerRetry, StopSignal, UnknownEvents};
use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use crate::telemetry::{ConsumerMetrics, Processed};
use crate::wire::{self, MessageProblem};

pub mod dead_letter;
mod error;
mod handler;
mod inbox;
#[cfg(feature = "postgres")]
mod postgres;

pub use dead_letter::{DeadLetters, DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_DEAD_LETTER_STREAM};
pub use error::{ConsumerError, MessageRef, ParkReason, Parked, Unreadable};
pub use handler::{MemoryNatsHandler, NatsHandler};
pub use inbox::MemoryInbox;
#[cfg(feature = "postgres")]
pub use postgres::PgNatsHandler;

use handler::{Delivered, Delivery, Failure};

/// The largest message a consumer accepts unless configured otherwise: 1 MiB (headers and
/// body), the default `max_payload` of `nats-server`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// How many messages a consumer asks JetStream for at a time unless configured otherwise: 64.
pub const DEFAULT_CONSUMER_BATCH_SIZE: usize = 64;

/// How long JetStream waits for a message's acknowledgement before it delivers it again,
/// unless configured otherwise: 30 s.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// How long one pull request waits for messages; the consumer then asks again.
const PULL_EXPIRES: Duration = Duration::from_secs(10);

/// The idle heartbeat of a pull request: a request that hears nothing for twice this long is
/// made again.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);

/// How long the consumer waits before it pulls again after a pull failed.
const PULL_BACKOFF: Duration = Duration::from_millis(500);

/// The first wait before a consumer that failed for a passing reason (NATS unreachable, no
/// stream leader yet, a dead letter not stored) starts again; it doubles up to
/// [`MAX_RESTART_BACKOFF`].
const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two starts of a failing consumer.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// A durable JetStream pull consumer of relayed events.
///
/// ```no_run
/// use annals::{Envelope, HandlerError, StopSignal};
/// use annals_nats::consumer::{NatsConsumer, NatsHandler};
/// # #[derive(serde::Serialize, serde::Deserialize, annals::Event)]
/// # enum OrderEvent { Placed { total: u64 } }
///
/// struct Notify;
///
/// #[annals::async_trait]
/// impl NatsHandler for Notify {
///     type Event = OrderEvent;
///
///     async fn handle(&mut self, event: &Envelope<OrderEvent>) -> Result<(), HandlerError> {
///         println!("order {} changed", event.stream_id);
///         Ok(())
///     }
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let consumer = NatsConsumer::new(async_nats::jetstream::new(client), "notify", "ORDERS")
///     .with_filter_subject("orders.>");
/// consumer.run(Notify, StopSignal::never()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsConsumer {
    js: jetstream::Context,
    name: String,
    stream: String,
    filter_subject: Option<String>,
    dead_letters: DeadLetters,
    max_message_size: usize,
    retry: HandlerRetry,
    batch_size: usize,
    ack_wait: Duration,
}

impl NatsConsumer {
    /// The consumer `name` of JetStream stream `stream`, reading all its subjects from its
    /// first message, with the defaults: [`DeadLetters::default`],
    /// [`DEFAULT_MAX_MESSAGE_SIZE`], [`HandlerRetry::default`],
    /// [`DEFAULT_CONSUMER_BATCH_SIZE`] and [`DEFAULT_ACK_WAIT`].
    ///
    /// `name` must be a valid JetStream consumer name and subject token: no `.`, `*`, `>`
    /// nor whitespace (checked when the consumer starts).
    pub fn new(js: jetstream::Context, name: impl Into<String>, stream: impl Into<String>) -> Self {
        NatsConsumer {
            js,
            name: name.into(),
            stream: stream.into(),
            filter_subject: None,
            dead_letters: DeadLetters::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            retry: HandlerRetry::default(),
            batch_size: DEFAULT_CONSUMER_BATCH_SIZE,
            ack_wait: DEFAULT_ACK_WAIT,
        }
    }

    /// Reads only the subjects `filter` covers (`*` and `>` wildcards allowed). One filter:
    /// several need `nats-server` 2.10, and this crate supports 2.9.
    pub fn with_filter_subject(mut self, filter: impl Into<String>) -> Self {
        self.filter_subject = Some(filter.into());
        self
    }

    /// Where messages are parked.
    pub fn with_dead_letters(mut self, dead_letters: DeadLetters) -> Self {
        self.dead_letters = dead_letters;
        self
    }

    /// The largest message (headers and body, in bytes) the consumer reads; a larger one is
    /// parked unread.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How a failing handler is retried before the message is parked.
    pub fn with_retry(mut self, retry: HandlerRetry) -> Self {
        self.retry = HandlerRetry {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// How many messages the consumer asks JetStream for at a time (at least 1). A batch's
    /// messages wait for their turn within the acknowledgement wait: keep
    /// `batch_size × handling time` well below it.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long JetStream waits for an acknowledgement before it delivers a message again,
    /// when it creates the durable consumer (an existing one keeps its own).
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subject the consumer parks messages on.
    pub fn dead_letter_subject(&self) -> String {
        self.dead_letters.subject(&self.name)
    }

    /// Creates the durable consumer and the dead-letter stream when they do not exist, and
    /// checks them when they do. Every `run` method starts with it.
    pub async fn start(&self) -> Result<jetstream::consumer::PullConsumer, ConsumerError> {
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
        {
            return Err(ConsumerError::Config {
                consumer: self.name.clone(),
                reason: "a consumer name must be non-empty, without `.`, `*`, `>` or whitespace"
                    .to_owned(),
            });
        }
        self.dead_letters.ensure(&self.js, &self.name).await?;
        let setup = |source: async_nats::Error| ConsumerError::Setup {
            consumer: self.name.clone(),
            stream: self.stream.clone(),
            source,
        };
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| setup(e.into()))?;
        let filter = self.filter_subject.clone().unwrap_or_default();
        let consumer = stream
            .get_or_create_consumer(
                &self.name,
                pull::Config {
                    durable_name: Some(self.name.clone()),
                    description: Some("an annals consumer".to_owned()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    filter_subject: filter.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| setup(e.into()))?;
        let existing = &consumer.cached_info().config.filter_subject;
        if *existing != filter {
            return Err(ConsumerError::Config {
                consumer: self.name.clone(),
                reason: format!(
                    "the consumer exists on stream `{}` with filter subject `{existing}`, not `{filter}`",
                    self.stream
                ),
            });
        }
        Ok(consumer)
    }

    /// Runs `handler` (effects at least once) until `stop` fires; see the [module](self)'s
    /// guarantees.
    ///
    /// Every run method carries on through failures that pass: NATS unreachable or a node
    /// lost, a stream without a leader for a while, a pull that breaks, a dead letter that
    /// cannot be stored yet. It logs the typed [`ConsumerError`], waits (100 ms, doubling up
    /// to 5 s) and starts again, and the messages it had not acknowledged are delivered again.
    /// It returns when `stop` fires, on a configuration that cannot work (a bad name, a
    /// consumer or dead-letter stream configured otherwise), or when the inbox's database
    /// keeps failing.
    pub async fn run<H: NatsHandler>(
        &self,
        handler: H,
        stop: StopSignal,
    ) -> Result<(), ConsumerError> {
        self.run_delivery(handler::AtLeastOnce(handler), stop).await
    }

    /// Runs `handler` with `inbox` (effects exactly once, in memory) until `stop` fires.
    pub async fn run_with_inbox<H: MemoryNatsHandler>(
        &self,
        inbox: &MemoryInbox,
        handler: H,
        stop: StopSignal,
    ) -> Result<(), ConsumerError> {
        let delivery = handler::InMemoryInbox {
            inbox: inbox.clone(),
            handler,
        };
        self.run_delivery(delivery, stop).await
    }

    /// Runs `handler` with the inbox of `store` (effects exactly once, in the database) until
    /// `stop` fires.
    #[cfg(feature = "postgres")]
    pub async fn run_on_postgres<H: PgNatsHandler>(
        &self,
        store: &annals_postgres::PgEventStore,
        handler: H,
        stop: StopSignal,
    ) -> Result<(), ConsumerError> {
        let delivery = postgres::PgInbox {
            store: store.clone(),
            handler,
        };
        self.run_delivery(delivery, stop).await
    }

    async fn run_delivery<D: Delivery>(
        &self,
        mut delivery: D,
        mut stop: StopSignal,
    ) -> Result<(), ConsumerError> {
        let mut backoff = RESTART_BACKOFF;
        loop {
            match self.run_until_error(&mut delivery, stop.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if error.passes() => {
                    tracing::error!(consumer = %self.name, error = %error, retry_in = ?backoff,
                        "consumer failed; starting again");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.stopped() => return Ok(()),
                    }
                    backoff = backoff.saturating_mul(2).min(MAX_RESTART_BACKOFF);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sets the consumer up and pulls and handles messages until `stop` fires or an error.
    async fn run_until_error<D: Delivery>(
        &self,
        delivery: &mut D,
        mut stop: StopSignal,
    ) -> Result<(), ConsumerError> {
        let consumer = self.start().await?;
        let metrics = ConsumerMetrics::new(&self.name);
        let pull_failed = |source: async_nats::Error| ConsumerError::Pull {
            consumer: self.name.clone(),
            source,
        };
        while !stop.is_stopped() {
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(self.batch_size)
                .expires(PULL_EXPIRES)
                .heartbeat(PULL_HEARTBEAT)
                .messages()
                .await
                .map_err(|e| pull_failed(e.into()))?;
            loop {
                let next = tokio::select! {
                    () = stop.stopped() => return Ok(()),
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        let started = Instant::now();
                        let span = tracing::info_span!(
                            "annals.consumer.message",
                            messaging.system = "nats",
                            messaging.operation.name = "process",
                            messaging.destination.name = %message.subject,
                            messaging.consumer.group.name = %self.name,
                            messaging.message.id = Empty,
                            annals.outcome = Empty,
                        );
                        if let Some(id) = wire::event_id_of(message.headers.as_ref()) {
                            span.record("messaging.message.id", tracing::field::display(id));
                        }
                        let outcome = self
                            .process(delivery, message)
                            .instrument(span.clone())
                            .await?;
                        span.record("annals.outcome", outcome.label());
                        metrics.processed(outcome);
                        metrics.handle_duration.record(started.elapsed());
                    }
                    Some(Err(error)) => {
                        use pull::MessagesErrorKind as Kind;
                        match error.kind() {
                            Kind::ConsumerDeleted | Kind::PushBasedConsumer => {
                                return Err(pull_failed(error.into()))
                            }
                            Kind::MissingHeartbeat => {
                                tracing::warn!(consumer = %self.name, %error, "pull: no heartbeat");
                            }
                            _ => {
                                tracing::warn!(consumer = %self.name, %error, "pull failed: pulling again");
                                tokio::time::sleep(PULL_BACKOFF).await;
                                break;
                            }
                        }
                    }
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Handles one message: decode, deliver with retries, acknowledge; or park. Says how it
    /// ended.
    async fn process<D: Delivery>(
        &self,
        delivery: &mut D,
        message: jetstream::Message,
    ) -> Result<Processed, ConsumerError> {
        let at = self.message_ref(&message);
        let read = read_message::<D::Event>(
            &message.message,
            self.max_message_size,
            delivery.unknown_events(),
        );
        let envelope = match read {
            Ok(Some(envelope)) => envelope,
            Ok(None) => {
                tracing::info!(consumer = %self.name, message = %at, "skipped: a type the event enum removed or does not know");
                self.acknowledge(&message, &at, AckKind::Ack).await;
                return Ok(Processed::Skipped);
            }
            Err(unreadable) => {
                self.park(&message, at, ParkReason::Unreadable(unreadable))
                    .await?;
                return Ok(Processed::Parked);
            }
        };
        let mut backoff = self.retry.initial_backoff;
        let mut attempt = 1;
        loop {
            let failure = match delivery.deliver(&self.name, &envelope).await {
                Ok(Delivered::Applied) => {
                    tracing::debug!(consumer = %self.name, message = %at, "handled");
                    self.acknowledge(&message, &at, AckKind::Ack).await;
                    return Ok(Processed::Applied);
                }
                Ok(Delivered::Duplicate) => {
                    tracing::info!(consumer = %self.name, message = %at, "skipped: the inbox shows it applied before");
                    self.acknowledge(&message, &at, AckKind::Ack).await;
                    return Ok(Processed::Duplicate);
                }
                Err(failure) => failure,
            };
            if attempt >= self.retry.max_attempts {
                return match failure {
                    Failure::Handler(source) => {
                        let reason = ParkReason::Handler {
                            attempts: attempt,
                            source,
                        };
                        self.park(&message, at, reason).await?;
                        Ok(Processed::Parked)
                    }
                    Failure::Inbox(source) => Err(ConsumerError::Inbox {
                        consumer: self.name.clone(),
                        message: at,
                        source,
                    }),
                };
            }
            match &failure {
                Failure::Handler(error) => {
                    tracing::warn!(consumer = %self.name, message = %at, attempt, %error, "the handler failed: retrying");
                }
                Failure::Inbox(error) => {
                    tracing::warn!(consumer = %self.name, message = %at, attempt, %error, "the inbox failed: retrying");
                }
            }
            // Restarts the acknowledgement wait, so the retries do not race a redelivery.
            if let Err(error) = message.ack_with(AckKind::Progress).await {
                tracing::debug!(consumer = %self.name, message = %at, %error, "cannot report progress");
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Publishes the dead letter, then terminates the original.
    async fn park(
        &self,
        message: &jetstream::Message,
        at: MessageRef,
        reason: ParkReason,
    ) -> Result<(), ConsumerError> {
        let parked = Parked {
            consumer: self.name.clone(),
            message: at,
            reason,
        };
        tracing::error!(consumer = %self.name, error = %parked, "parking a message");
        if let Err(source) = self
            .dead_letters
            .park(&self.js, &message.message, &parked)
            .await
        {
            return Err(ConsumerError::Park {
                consumer: parked.consumer,
                message: parked.message,
                source,
            });
        }
        self.acknowledge(message, &parked.message, AckKind::Term)
            .await;
        Ok(())
    }

    /// Acknowledges `message` and waits for the server to confirm. A failure is only logged:
    /// the message will be delivered again, and an inbox recognises it.
    async fn acknowledge(&self, message: &jetstream::Message, at: &MessageRef, kind: AckKind) {
        if let Err(error) = message.double_ack_with(kind).await {
            tracing::warn!(consumer = %self.name, message = %at, %error, "acknowledgement not confirmed: the message may be delivered again");
        }
    }

    fn message_ref(&self, message: &jetstream::Message) -> MessageRef {
        let (stream, sequence) = match message.info() {
            Ok(info) => (info.stream.to_owned(), info.stream_sequence),
            Err(_) => (self.stream.clone(), 0),
        };
        MessageRef {
            subject: message.subject.to_string(),
            stream,
            sequence,
            event_id: wire::event_id_of(message.headers.as_ref()),
        }
    }
}

/// Reads a message into the event it carries, decoded through `E`'s upcasters: what a
/// consumer does with every message before its handler sees it. `Ok(None)` is an event to
/// skip (a type `E` declares removed, or an unknown type under [`UnknownEvents::Skip`]).
///
/// A message larger than `max_size` bytes (headers and body) is refused before it is parsed.
pub fn read_message<E: Event>(
    message: &async_nats::Message,
    max_size: usize,
    unknown: UnknownEvents,
) -> Result<Option<Envelope<E>>, Unreadable> {
    let size = message.payload.len() + headers_size(message.headers.as_ref());
    if size > max_size {
        return Err(MessageProblem::TooLarge {
            size,
            limit: max_size,
        }
        .into());
    }
    let recorded = wire::event_of(message.headers.as_ref(), &message.payload)?;
    recorded
        .into_envelope::<E>(unknown)
        .map_err(|error| Unreadable::Decode(error.source))
}

/// The size of `headers` as they travel (`NATS/1.0` line, one `name: value` line each, blank
/// line).
fn headers_size(headers: Option<&HeaderMap>) -> usize {
    headers.map_or(0, |headers| {
        12 + headers
            .iter()
            .map(|(name, values)| {
                let name: &str = name.as_ref();
                values
                    .iter()
                    .map(|value| name.len() + value.as_str().len() + 4)
                    .sum::<usize>()
            })
            .sum::<usize>()
    })
}
