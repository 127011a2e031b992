//! The relay: follows a store's global log from a checkpoint kept in that store and publishes
//! each event of its filter to a JetStream stream, so other services can read it.
//!
//! # Guarantees
//!
//! - **At least once.** Every event the [filter](RelayConfig::with_filter) lets through is
//!   published until JetStream acknowledges it; a relay that stops, crashes or loses NATS
//!   publishes again from its checkpoint, so an event may be published more than once.
//! - **Exactly once in the stream within the duplicate window.** Each message's
//!   `Nats-Msg-Id` is the event id, and JetStream drops a message whose id it stored within
//!   the stream's [duplicate window](RelayConfig::with_duplicate_window) (default 2 minutes).
//!   A repeat of an event stored longer ago than that is stored again: beyond the window,
//!   consumers see at least once and recognise repeats by their event id.
//! - **Log order.** The first copy of each event is stored in the order of the source
//!   store's log, so within each aggregate stream in version order. Messages are pipelined,
//!   but each one after the first of a batch carries `Nats-Expected-Last-Msg-Id` (the
//!   previous event's id): JetStream stores it only right after its predecessor, so a message
//!   lost in flight (a broken connection, a leader election) makes the ones after it fail too
//!   instead of overtaking it, and the relay publishes them again after it. The first of a
//!   batch needs no such check: every event before it is acknowledged. (A message of another
//!   publisher on the stream breaks that chain: the relay then retries, and goes on.) Every
//!   message also carries `Nats-Expected-Stream`, so a stream of another name that captures
//!   the subject refuses it.
//! - **Checkpoint only after acknowledgement.** The checkpoint, saved in the source store with
//!   a compare-and-set, moves past an event only once JetStream acknowledged it (and every
//!   event before it). An event that is not acknowledged is published again.
//! - **One relay of a name at a time.** The relay runs under the core's
//!   [`ProjectionRunner`], which holds the store's lease of `nats-relay:<name>` while it
//!   publishes: any number of copies may run, in one process or many, and one publishes
//!   while the others wait to take over.
//!
//! Events the filter leaves out never leave the service: they are not published, and only
//! move the checkpoint.
//!
//! What JetStream does with an acknowledged message is JetStream's: on a single server, file
//! storage acknowledges a message before it is written to disk, so a server killed outright
//! may lose the last acknowledged messages. Replicas (`with_replicas(3)` on a cluster) keep them.

mod config;
mod error;
mod sink;
mod stream;

use std::sync::Arc;

use annals::{Checkpoint, EventStore, HandlerRetry, ProjectionRunner, RunError, StopSignal};
use async_nats::jetstream::{self, ContextBuilder};
use tokio::sync::watch;

pub use config::{
    RelayConfig, DEFAULT_DUPLICATE_WINDOW, DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF,
    DEFAULT_PUBLISH_WINDOW, DEFAULT_RELAY_BATCH_SIZE, DEFAULT_REPLICAS, DEFAULT_TIMEOUT,
};
pub use error::{RelayError, StreamDifference, StreamMismatch};
pub use sink::RelaySink;

/// How often the runner under a relay tries a failing publish before it reports it to the
/// relay, which then waits its backoff and sets the stream up again.
const PUBLISH_ATTEMPTS: u32 = 3;

/// What a relay has done so far, for a caller or a test to watch without reading logs
/// ([`Relay::status`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RelayStatus {
    /// Events JetStream acknowledged since the relay was made (repeats included).
    pub relayed: u64,
    /// Of those, the ones JetStream recognised as repeats (within its duplicate window).
    pub duplicates: u64,
    /// Errors the relay met since it was made; it logged each one and retried.
    pub errors: u64,
    /// The last of those errors.
    pub last_error: Option<Arc<RelayError>>,
}

/// Publishes a store's events to a JetStream stream; see the [module](self) for what it
/// guarantees.
///
/// ```no_run
/// use annals::stop_signal;
/// use annals_nats::{Relay, RelayConfig, SubjectMapping};
///
/// # async fn demo(store: annals_memory::MemoryEventStore) -> Result<(), Box<dyn std::error::Error>> {
/// // `retry_on_initial_connect`: the relay starts even while NATS is down, and waits for it.
/// let client = async_nats::ConnectOptions::new()
///     .retry_on_initial_connect()
///     .connect("nats://127.0.0.1:4222")
///     .await?;
/// let config = RelayConfig::new("ORDERS", SubjectMapping::new("orders"));
/// let mut relay = Relay::new(store, client, config);
/// let (stopper, stop) = stop_signal();
/// let task = tokio::spawn(async move { relay.run(stop).await });
/// // ... on shutdown:
/// stopper.stop();
/// task.await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Relay<S> {
    config: RelayConfig,
    jetstream: jetstream::Context,
    runner: ProjectionRunner<S, RelaySink>,
    status: watch::Sender<RelayStatus>,
}

impl<S: EventStore + Clone> Relay<S> {
    /// A relay of `store`'s log to the stream of `config`, through `client`. Its JetStream
    /// context waits [`RelayConfig::timeout`] for answers and acknowledgements.
    pub fn new(store: S, client: async_nats::Client, config: RelayConfig) -> Self {
        let jetstream = ContextBuilder::new()
            .timeout(config.timeout())
            // Acknowledgements of publishes given up on (after a failure) hold their permit
            // only this long.
            .ack_timeout(config.timeout())
            .build(client);
        Relay::with_jetstream(store, jetstream, config)
    }

    /// A relay publishing through a JetStream context of the caller's (its own domain, API
    /// prefix or timeouts).
    pub fn with_jetstream(store: S, jetstream: jetstream::Context, config: RelayConfig) -> Self {
        let status = watch::Sender::new(RelayStatus::default());
        let sink = RelaySink::with_status(jetstream.clone(), &config, status.clone());
        let runner = ProjectionRunner::new(store, sink)
            .with_batch_size(config.batch_size())
            .with_poll_interval(config.poll_interval())
            .with_retry(HandlerRetry {
                max_attempts: PUBLISH_ATTEMPTS,
                initial_backoff: config.backoff().0,
            });
        Relay {
            config,
            jetstream,
            runner,
            status,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// What the relay has done so far; the receiver sees each change.
    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.subscribe()
    }

    /// Where the relay resumes: just after the last event it knows JetStream acknowledged.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RelayError> {
        self.runner
            .checkpoint()
            .await
            .map_err(|source| self.run_error(source))
    }

    /// Sets up the stream, then publishes every event committed before the call; returns how
    /// many it published. It first waits for the relay's lease. Any error stops it and is
    /// returned (the events acknowledged before it stay checkpointed).
    pub async fn catch_up(&mut self) -> Result<u64, RelayError> {
        stream::ensure_stream(&self.jetstream, &self.config).await?;
        self.runner
            .catch_up()
            .await
            .map_err(|source| self.run_error(source))
    }

    /// Sets up the stream, then publishes the log and follows it live until `stop` fires.
    ///
    /// It never gives up while it is not stopped: when NATS is down at start or goes away,
    /// the stream cannot be set up, or the runner stops on an error, it logs the typed
    /// [`RelayError`] (see also [`status`](Relay::status)), waits (from the initial backoff,
    /// doubling up to the maximum; back to the initial one once it made progress) and starts
    /// again from its checkpoint.
    pub async fn run(&mut self, mut stop: StopSignal) {
        let (initial, max) = self.config.backoff();
        let mut backoff = initial;
        let mut reached = self.runner.checkpoint().await.ok();
        while !stop.is_stopped() {
            let runner_stop = stop.clone();
            let attempt = async {
                stream::ensure_stream(&self.jetstream, &self.config).await?;
                self.runner
                    .run(runner_stop)
                    .await
                    .map_err(|source| self.run_error(source))
            };
            let error = tokio::select! {
                result = attempt => match result {
                    Ok(()) => return,
                    Err(error) => error,
                },
                () = stop.stopped() => return,
            };
            let now = self.runner.checkpoint().await.ok();
            if now.is_some() && now != reached {
                backoff = initial;
                reached = now;
            }
            tracing::error!(relay = self.config.name(), stream = self.config.stream(),
                checkpoint = ?now, error = %error, retry_in = ?backoff, "relay failed; retrying");
            report(&self.status, &Arc::new(error));
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.stopped() => return,
            }
            backoff = backoff.saturating_mul(2).min(max);
        }
    }

    fn run_error(&self, source: RunError) -> RelayError {
        RelayError::Run {
            relay: self.config.name().to_owned(),
            source,
        }
    }
}

/// Counts `error` in the status.
fn report(status: &watch::Sender<RelayStatus>, error: &Arc<RelayError>) {
    status.send_modify(|status| {
        status.errors += 1;
        status.last_error = Some(Arc::clone(error));
    });
}
