//! Wake-ups for readers of the global log: a listener task on a dedicated connection
//! `LISTEN`s to the schema's channel, which appends notify (right after they commit, coalesced
//! by an [`Announcer`], or inside their transaction; see [`crate::Notifications`]), and
//! [`PgEventStore::wait_for_events`] waits on it.
//!
//! Notifications only wake readers; they carry nothing a reader relies on. A reader checks the
//! log itself, and polls as a fallback, because a notification can be lost (the listener's
//! connection drops, or it is not listening yet). After reconnecting, the listener wakes every
//! waiter for that reason.

use std::fmt;
use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use annals::{AppendResult, Checkpoint, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

use crate::config::Notifications;
use crate::error::PgError;
use crate::rows::signed;
use crate::store::PgEventStore;

impl PgEventStore {
    /// Waits until events after `after` may be readable in the global log, or `timeout`
    /// passes.
    ///
    /// Returns `true` at once when events after `after` are visible to
    /// [`read_all`](annals::EventStore::read_all), and otherwise as soon as a notification
    /// arrives (an append committed, or the listener reconnected and may have missed one): read
    /// the log then. Returns `false` when the timeout passes with nothing new. Notifications
    /// are only a wake-up: the log is also polled every
    /// [`PgConfig::poll_interval`](crate::PgConfig::poll_interval), so a lost notification
    /// delays a reader at most that long. The listener starts on the first call, on its own
    /// connection.
    pub async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        let poll_interval = self.inner.config.poll_interval;
        let mut wakeups = self.inner.notifier.subscribe();
        if let Some(receiver) = wakeups.as_mut() {
            // A notification sent before the listener listens is lost: wait for it (a
            // little), then check the log.
            let ready = deadline.min(Instant::now() + poll_interval);
            let _ = tokio::time::timeout_at(ready, receiver.wait_for(|s| s.listening)).await;
            receiver.borrow_and_update();
        }
        loop {
            if self.events_visible(after).await? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let tick = deadline.min(now + poll_interval);
            match wakeups.as_mut() {
                Some(receiver) => {
                    tokio::select! {
                        changed = receiver.changed() => {
                            if changed.is_ok() {
                                return Ok(true);
                            }
                            tokio::time::sleep_until(tick).await;
                        }
                        () = tokio::time::sleep_until(tick) => {}
                    }
                }
                None => tokio::time::sleep_until(tick).await,
            }
        }
    }

    /// Whether events after `after` are visible in the global log.
    async fn events_visible(&self, after: Checkpoint) -> Result<bool, StoreError> {
        let rows = self
            .query(
                &self.inner.sql.visible_after,
                &[&after.commit.to_string(), &signed(after.position.0)],
            )
            .await?;
        let row = rows.first().ok_or_else(|| {
            StoreError::backend("internal error: the visibility check returned no row")
        })?;
        Ok(row.try_get(0).map_err(PgError::from)?)
    }

    /// Wakes this store's waiting readers, and other processes' when notifications are sent
    /// after commit, if `results` wrote events.
    pub(crate) fn announce(&self, results: &[AppendResult]) {
        if results.iter().any(|r| r.written) {
            let inner = &*self.inner;
            inner.notifier.wake_local();
            if inner.config.notifications == Notifications::AfterCommit {
                inner.announcer.request(&inner.pool, &inner.channel);
            }
        }
    }

    /// The channel an append on a pooled connection notifies inside its transaction, if it
    /// does: `None` when readers are notified after it commits.
    pub(crate) fn in_transaction_channel(&self) -> Option<&str> {
        match self.inner.config.notifications {
            Notifications::InTransaction => Some(self.inner.channel.as_str()),
            Notifications::AfterCommit => None,
        }
    }
}

/// What waiters watch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Signal {
    /// Bumped on every notification and after every reconnection.
    wakeups: u64,
    /// Whether the listener is listening now.
    pub(crate) listening: bool,
}

/// Opens the listener's connections.
pub(crate) trait Listen: Send + Sync + fmt::Debug {
    /// Starts the listener task on the current Tokio runtime.
    fn spawn(&self, channel: String, signal: Arc<watch::Sender<Signal>>) -> JoinHandle<()>;
}

/// A listener that connects with `config` through `tls`.
pub(crate) struct ListenWith<T> {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: T,
}

impl<T> fmt::Debug for ListenWith<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenWith")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T> Listen for ListenWith<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn spawn(&self, channel: String, signal: Arc<watch::Sender<Signal>>) -> JoinHandle<()> {
        tokio::spawn(run(self.config.clone(), self.tls.clone(), channel, signal))
    }
}

/// The store's side: the listener (started on first use) and the signal waiters watch.
pub(crate) struct Notifier {
    listen: Option<Arc<dyn Listen>>,
    channel: String,
    signal: Arc<watch::Sender<Signal>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("channel", &self.channel)
            .field("listens", &self.listen.is_some())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub(crate) fn new(listen: Option<Arc<dyn Listen>>, channel: String) -> Self {
        Notifier {
            listen,
            channel,
            signal: Arc::new(watch::channel(Signal::default()).0),
            task: Mutex::new(None),
        }
    }

    /// A receiver of wake-ups, starting the listener if it is not running; `None` when this
    /// store has no listener (or no Tokio runtime runs): the caller then only polls.
    pub(crate) fn subscribe(&self) -> Option<watch::Receiver<Signal>> {
        let listen = self.listen.as_ref()?;
        tokio::runtime::Handle::try_current().ok()?;
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        // A listener ends only with its runtime: start a new one on this runtime then.
        if task.as_ref().is_none_or(JoinHandle::is_finished) {
            self.signal.send_if_modified(stop_listening);
            *task = Some(listen.spawn(self.channel.clone(), Arc::clone(&self.signal)));
        }
        Some(self.signal.subscribe())
    }
}

impl Notifier {
    /// Wakes this process's waiters at once, without a round trip through the server.
    pub(crate) fn wake_local(&self) {
        self.signal.send_modify(|signal| signal.wakeups += 1);
    }
}

/// Sends `NOTIFY`s after appends commit, from one background task per store: requests made
/// while a `NOTIFY` is in flight, or within [`NOTIFY_INTERVAL`] after it, are folded into the
/// next one, so the notification rate stays bounded whatever the rate of appends.
pub(crate) struct Announcer {
    pending: Arc<tokio::sync::Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Announcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Announcer").finish_non_exhaustive()
    }
}

impl Announcer {
    pub(crate) fn new() -> Self {
        Announcer {
            pending: Arc::new(tokio::sync::Notify::new()),
            task: Mutex::new(None),
        }
    }

    /// Asks for a `NOTIFY` on `channel` soon. Without a Tokio runtime, nothing is sent:
    /// readers in other processes then find the events by polling.
    pub(crate) fn request(&self, pool: &deadpool_postgres::Pool, channel: &str) {
        // A stored permit: the task sends one more NOTIFY after the one in flight.
        self.pending.notify_one();
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        // A task ends only with its runtime: start a new one on this runtime then.
        if task.as_ref().is_none_or(JoinHandle::is_finished)
            && tokio::runtime::Handle::try_current().is_ok()
        {
            *task = Some(tokio::spawn(announce(
                pool.clone(),
                channel.to_owned(),
                Arc::clone(&self.pending),
            )));
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// The shortest time between two `NOTIFY`s of one store: it bounds their cost on a busy store
/// (at most 100 a second) and adds at most this much to a remote reader's wake-up.
pub(crate) const NOTIFY_INTERVAL: Duration = Duration::from_millis(10);

/// The announcer's task: one `NOTIFY` per wake-up, until the store is dropped.
async fn announce(
    pool: deadpool_postgres::Pool,
    channel: String,
    pending: Arc<tokio::sync::Notify>,
) {
    loop {
        pending.notified().await;
        let sent = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let statement = client
                .prepare_cached("SELECT pg_notify($1::text, '')")
                .await
                .map_err(|e| e.to_string())?;
            client
                .execute(&statement, &[&channel])
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(error) = sent.await {
            // Readers in other processes fall back to polling; nothing is lost.
            tracing::warn!(%channel, %error, "cannot send a notification");
        }
        tokio::time::sleep(NOTIFY_INTERVAL).await;
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The listener task: listens, and reconnects with backoff whenever the connection drops.
async fn run<T>(
    config: tokio_postgres::Config,
    tls: T,
    channel: String,
    signal: Arc<watch::Sender<Signal>>,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let mut backoff = FIRST_BACKOFF;
    let mut reconnecting = false;
    loop {
        match listen_once(&config, tls.clone(), &channel, &signal, reconnecting).await {
            Ok(()) => {
                tracing::debug!(channel, "notification listener: connection closed");
                backoff = FIRST_BACKOFF;
            }
            Err(Listened { listened, error }) => {
                tracing::warn!(channel, %error, "notification listener: connection failed, reconnecting");
                if listened {
                    backoff = FIRST_BACKOFF;
                }
            }
        }
        signal.send_if_modified(stop_listening);
        reconnecting = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

struct Listened {
    listened: bool,
    error: tokio_postgres::Error,
}

/// Connects, listens, and forwards notifications until the connection ends.
async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    channel: &str,
    signal: &watch::Sender<Signal>,
    reconnecting: bool,
) -> Result<(), Listened>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let mut listened = false;
    let failed = |listened, error| Listened { listened, error };
    let (client, mut connection) = config.connect(tls).await.map_err(|e| failed(false, e))?;
    // The channel derives from the validated schema name; quoting keeps it one identifier.
    let query = format!("LISTEN \"{channel}\"");
    let mut listen = std::pin::pin!(client.batch_execute(&query));
    enum Step {
        Listened(Result<(), tokio_postgres::Error>),
        Notified,
        Other,
        Failed(tokio_postgres::Error),
        Closed,
    }
    loop {
        // The connection does all the I/O, the LISTEN's included, in poll_message.
        let step = poll_fn(|cx| {
            if let Poll::Ready(message) = connection.poll_message(cx) {
                return Poll::Ready(match message {
                    Some(Ok(AsyncMessage::Notification(_))) => Step::Notified,
                    Some(Ok(_)) => Step::Other,
                    Some(Err(error)) => Step::Failed(error),
                    None => Step::Closed,
                });
            }
            if !listened {
                if let Poll::Ready(result) = listen.as_mut().poll(cx) {
                    return Poll::Ready(Step::Listened(result));
                }
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::Listened(Ok(())) => {
                listened = true;
                tracing::debug!(channel, "notification listener: listening");
                signal.send_modify(|signal| {
                    signal.listening = true;
                    // Notifications sent while the connection was down are lost.
                    if reconnecting {
                        signal.wakeups += 1;
                    }
                });
            }
            Step::Listened(Err(error)) => return Err(failed(listened, error)),
            Step::Notified => signal.send_modify(|signal| signal.wakeups += 1),
            Step::Other => {}
            Step::Failed(error) => return Err(failed(listened, error)),
            Step::Closed => return Ok(()),
        }
    }
}

/// Marks the listener as not listening, without waking anyone: only a reconnection wakes
/// waiters (in case notifications were lost meanwhile).
fn stop_listening(signal: &mut Signal) -> bool {
    signal.listening = false;
    false
}
