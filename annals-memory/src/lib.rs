//! An embedded, in-memory [`EventStore`] for tests, examples and small tools.
//!
//! [`MemoryEventStore`] keeps events as a real store does, encoded as JSON with their metadata,
//! so code that passes its tests on it behaves the same on a database backend: it runs the same
//! conformance suite as `annals-postgres`. Nothing is persisted; data lives as long as the
//! last clone of the store.
//!
//! ```
//! use annals::{EventStore, ExpectedVersion, StreamId, Version};
//! use annals_memory::MemoryEventStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryEventStore::new();
//! let stream = StreamId::new("bank-account-1")?;
//! assert_eq!(store.stream_version(&stream).await?, Version(0));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use annals::backend::{self, Decision, StoredEvent};
use annals::telemetry;
use annals::{
    AppendResult, Checkpoint, EventStore, ExpectedVersion, HeldTurn, Lease, Metadata, NewEvent,
    Payload, Position, RecordedEvent, ReplayVisitor, ReplayedEvent, Snapshot, StoreError,
    StreamAppend, StreamId, Version,
};
use async_trait::async_trait;
use foldhash::HashMap;
use tokio::sync::{watch, Mutex as AsyncMutex, OwnedMutexGuard};
use uuid::Uuid;

/// An event store held in memory, cheap to clone and safe to share across tasks: clones share
/// the same data.
///
/// Every append takes one write lock and does no I/O, so appends are atomic and totally
/// ordered: the commit number of an append is its rank, and global positions follow it.
#[derive(Clone, Default)]
pub struct MemoryEventStore {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    log: RwLock<Log>,
    /// The number of appends that wrote events, announced to waiting subscribers.
    commits: watch::Sender<u64>,
    /// The leases of projection runners, by name.
    leases: Arc<Locks<String>>,
    /// The held turns of streams ([`EventStore::hold_turn`]), by stream.
    turns: Arc<Locks<StreamId>>,
}

/// Named asynchronous locks, each kept only while someone holds or waits for it.
struct Locks<K>(Mutex<HashMap<K, Arc<AsyncMutex<()>>>>);

impl<K> Default for Locks<K> {
    fn default() -> Self {
        Locks(Mutex::new(HashMap::default()))
    }
}

impl<K: std::hash::Hash + Eq + Clone> Locks<K> {
    /// Waits for the lock of `key`, behind those who asked before.
    async fn lock(self: &Arc<Self>, key: &K) -> Held<K> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Held {
            locks: Arc::clone(self),
            key: key.clone(),
            guard: Some(guard),
        }
    }
}

/// A held lock of [`Locks`]; dropping it releases the lock.
struct Held<K: std::hash::Hash + Eq> {
    locks: Arc<Locks<K>>,
    key: K,
    guard: Option<OwnedMutexGuard<()>>,
}

impl<K: std::hash::Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut locks = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Forget the lock once nobody holds or waits for it (the map's is the last handle).
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for MemoryEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = self.read();
        f.debug_struct("MemoryEventStore")
            .field("events", &log.events.len())
            .field("streams", &log.streams.len())
            .finish()
    }
}

#[derive(Default)]
struct Log {
    /// The global log; the event at index `i` has position `i + 1`.
    events: Vec<Stored>,
    /// Each stream's events, as indexes into `events`; the event at index `v - 1` has version `v`.
    streams: HashMap<StreamId, Vec<usize>>,
    /// Every stored event id, as an index into `events`.
    by_id: HashMap<Uuid, usize>,
    /// The number of appends that wrote at least one event.
    commits: u64,
    /// The latest snapshot of each stream.
    snapshots: HashMap<StreamId, Snapshot>,
    /// Named readers' checkpoints.
    checkpoints: HashMap<String, Checkpoint>,
}

/// An event as the log keeps it: a [`RecordedEvent`] that keeps the type name as the code
/// gave it (a static name is not copied) and boxes metadata only when some is set, so the
/// log holds less and a replay reads fewer cache lines per event.
struct Stored {
    event_id: Uuid,
    stream_id: StreamId,
    version: Version,
    position: Position,
    commit: u64,
    event_type: Cow<'static, str>,
    schema_version: u32,
    payload: Payload,
    metadata: Option<Box<Metadata>>,
    recorded_at: SystemTime,
}

impl Stored {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            commit: self.commit,
            position: self.position,
        }
    }

    fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent {
            event_id: self.event_id,
            stream_id: self.stream_id.clone(),
            version: self.version,
            position: self.position,
            commit: self.commit,
            event_type: self.event_type.clone().into_owned(),
            schema_version: self.schema_version,
            payload: self.payload.clone(),
            metadata: self.metadata.as_deref().cloned().unwrap_or_default(),
            recorded_at: self.recorded_at,
        }
    }

    fn replayed(&self) -> ReplayedEvent<'_> {
        ReplayedEvent {
            version: self.version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: self.payload.as_str(),
            recorded_at: self.recorded_at,
        }
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events the store holds, over all streams.
    pub fn len(&self) -> usize {
        self.read().events.len()
    }

    /// Whether the store holds no event.
    pub fn is_empty(&self) -> bool {
        self.read().events.is_empty()
    }

    // Nothing panics while a guard is held, so a poisoned lock still guards consistent data.
    fn read(&self) -> RwLockReadGuard<'_, Log> {
        self.inner
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Log> {
        self.inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries out one commit under the write lock `log`: `writes` runs with the commit's
    /// number and time ([`Log::next_commit`]); then, if it wrote an event, the subscribers
    /// waiting in [`wait_for_events`](EventStore::wait_for_events) are woken.
    fn commit<R>(
        &self,
        mut log: RwLockWriteGuard<'_, Log>,
        writes: impl FnOnce(&mut Log, u64, SystemTime) -> R,
    ) -> R {
        let (commit, now) = log.next_commit();
        let result = writes(&mut log, commit, now);
        let wrote = log.commits == commit;
        drop(log);
        // With nobody waiting there is nobody to wake, and no wakeup is lost by skipping the
        // send: a waiter subscribes before it takes the read lock to look at the log. If its
        // look came after this commit, it saw the events; if before, the lock orders its
        // subscription before this count.
        if wrote && self.inner.commits.receiver_count() > 0 {
            self.inner.commits.send_replace(commit);
        }
        result
    }
}

impl Log {
    /// The indexes of up to `limit` events of `stream` from version `from` on.
    fn stream_slice(&self, stream: &StreamId, from: Version, limit: usize) -> &[usize] {
        let Some(indexes) = self.streams.get(stream) else {
            return &[];
        };
        let start = usize::try_from(from.0.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(indexes.len());
        let end = start.saturating_add(limit).min(indexes.len());
        &indexes[start..end]
    }

    fn version(&self, stream: &StreamId) -> Version {
        Version(self.streams.get(stream).map_or(0, |s| s.len() as u64))
    }

    /// Decides one stream's append by the rules of [`backend`].
    fn decide(&self, append: &StreamAppend) -> Result<Decision, StoreError> {
        backend::decide(append, self.version(&append.stream_id), |id| {
            self.by_id.get(id).map(|&index| {
                let event = &self.events[index];
                StoredEvent {
                    event_id: event.event_id,
                    stream_id: &event.stream_id,
                    version: event.version,
                    position: event.position,
                }
            })
        })
    }

    /// The number and the time of the next commit.
    fn next_commit(&self) -> (u64, SystemTime) {
        // Recorded times never go backwards, even if the wall clock does.
        let now = SystemTime::now().max(
            self.events
                .last()
                .map_or(SystemTime::UNIX_EPOCH, |e| e.recorded_at),
        );
        (self.commits + 1, now)
    }

    /// Carries out `decision` for `append`, as part of commit `commit` (from
    /// [`next_commit`](Log::next_commit)), which counts once any of its appends writes an event.
    fn write(
        &mut self,
        append: StreamAppend,
        decision: Decision,
        commit: u64,
        now: SystemTime,
    ) -> AppendResult {
        let current = match decision {
            Decision::Retry(result) => return result,
            Decision::Write { current } => current,
        };
        if !append.events.is_empty() {
            self.commits = commit;
        }
        let indexes = self.streams.entry(append.stream_id.clone()).or_default();
        let count = append.events.len();
        let mut last_position = None;
        let mut version = current;
        for event in append.events {
            version = version.next();
            let index = self.events.len();
            let position = Position(index as u64 + 1);
            last_position = Some(position);
            indexes.push(index);
            self.by_id.insert(event.event_id, index);
            self.events.push(Stored {
                event_id: event.event_id,
                stream_id: append.stream_id.clone(),
                version,
                position,
                commit,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: (!event.metadata.is_empty()).then(|| Box::new(event.metadata)),
                recorded_at: now,
            });
        }
        backend::written(current, count, last_position)
    }
}

impl MemoryEventStore {
    /// [`EventStore::append`]'s work, in its span.
    fn append_one(&self, append: StreamAppend) -> Result<AppendResult, StoreError> {
        backend::check_call(std::slice::from_ref(&append))?;
        let log = self.write();
        let decision = log.decide(&append)?;
        Ok(self.commit(log, |log, commit, now| {
            log.write(append, decision, commit, now)
        }))
    }

    /// [`EventStore::append_streams`]'s work, in its span.
    fn append_many(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>, StoreError> {
        backend::check_call(&appends)?;
        let log = self.write();
        // Decide everything before writing anything, so a refused append leaves no trace.
        let decisions = appends
            .iter()
            .map(|append| log.decide(append))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.commit(log, |log, commit, now| {
            appends
                .into_iter()
                .zip(decisions)
                .map(|(append, decision)| log.write(append, decision, commit, now))
                .collect()
        }))
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    /// One stream's append, without the lists a multi-stream append needs.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let append = StreamAppend {
            stream_id: stream.clone(),
            expected,
            events,
        };
        let span = telemetry::append_span("memory", std::slice::from_ref(&append));
        let entered = span.enter();
        let result = self.append_one(append);
        drop(entered);
        telemetry::record_append(&span, &result);
        result
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let span = telemetry::append_span("memory", &appends);
        let result = span.in_scope(|| self.append_many(appends));
        telemetry::record_append(&span, &result);
        result
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        Ok(log
            .stream_slice(stream, from, limit)
            .iter()
            .map(|&i| log.events[i].to_recorded())
            .collect())
    }

    /// Lends the events out under the log's read lock, without copying them; appends wait
    /// for at most one batch of `visit` calls.
    async fn replay_stream(
        &self,
        stream: &StreamId,
        from: Version,
        limit: usize,
        visit: &mut (dyn for<'e> FnMut(ReplayedEvent<'e>) -> ControlFlow<()> + Send),
    ) -> Result<usize, StoreError> {
        let log = self.read();
        let mut visited = 0;
        for &i in log.stream_slice(stream, from, limit) {
            visited += 1;
            if visit(log.events[i].replayed()).is_break() {
                break;
            }
        }
        Ok(visited)
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        let start = log.events.partition_point(|e| e.checkpoint() <= after);
        let end = start.saturating_add(limit).min(log.events.len());
        Ok(log.events[start..end]
            .iter()
            .map(Stored::to_recorded)
            .collect())
    }

    async fn log_head(&self) -> Result<Checkpoint, StoreError> {
        Ok(self
            .read()
            .events
            .last()
            .map_or(Checkpoint::START, Stored::checkpoint))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, StoreError> {
        Ok(self.read().version(stream))
    }

    async fn read_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let log = self.read();
        Ok(log
            .by_id
            .get(&event_id)
            .map(|&i| log.events[i].to_recorded()))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut log = self.write();
        match log.snapshots.get(&snapshot.stream_id) {
            Some(stored) if stored.version > snapshot.version => {}
            _ => {
                log.snapshots.insert(snapshot.stream_id.clone(), snapshot);
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.read().snapshots.get(stream).cloned())
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.read().checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.write().checkpoints.insert(name.to_owned(), checkpoint);
        Ok(())
    }

    async fn save_checkpoint_if(
        &self,
        name: &str,
        expected: Option<Checkpoint>,
        checkpoint: Checkpoint,
    ) -> Result<(), StoreError> {
        let mut log = self.write();
        let actual = log.checkpoints.get(name).copied();
        if actual != expected {
            return Err(StoreError::CheckpointMoved {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        log.checkpoints.insert(name.to_owned(), checkpoint);
        Ok(())
    }

    /// A lease of this store and its clones, released when the value is dropped (an aborted
    /// task drops it too).
    async fn acquire_lease(&self, name: &str) -> Result<Box<dyn Lease>, StoreError> {
        let held = self.inner.leases.lock(&name.to_owned()).await;
        Ok(Box::new(MemoryLease(held)))
    }

    /// A turn among the holders of turns of this store and its clones. Appends that do not
    /// hold the turn are not held up: one that gets in first makes the holder's append
    /// conflict, and the holder reads and decides again, still holding the turn.
    async fn hold_turn(&self, stream: &StreamId) -> Result<Option<Box<dyn HeldTurn>>, StoreError> {
        let held = self.inner.turns.lock(stream).await;
        Ok(Some(Box::new(MemoryTurn {
            store: self.clone(),
            held,
        })))
    }

    async fn wait_for_events(
        &self,
        after: Checkpoint,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        // Subscribe before looking, so an append in between is not missed.
        let mut commits = self.inner.commits.subscribe();
        if self
            .read()
            .events
            .last()
            .is_some_and(|e| e.checkpoint() > after)
        {
            return Ok(true);
        }
        Ok(tokio::time::timeout(timeout, commits.changed())
            .await
            .is_ok())
    }
}

/// A projection runner's lease on a [`MemoryEventStore`].
struct MemoryLease(Held<String>);

impl std::fmt::Debug for MemoryLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MemoryLease").field(&self.0.key).finish()
    }
}

impl Lease for MemoryLease {
    fn is_held(&self) -> bool {
        true
    }
}

/// A stream's turn held on a [`MemoryEventStore`].
struct MemoryTurn {
    store: MemoryEventStore,
    held: Held<StreamId>,
}

#[async_trait]
impl HeldTurn for MemoryTurn {
    fn stream(&self) -> &StreamId {
        &self.held.key
    }

    async fn replay(
        &mut self,
        from: Version,
        limit: usize,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<usize, StoreError> {
        self.store
            .replay_stream(&self.held.key, from, limit, visit)
            .await
    }

    async fn read_event(&mut self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.store.read_event(event_id).await
    }

    async fn append_and_release(
        self: Box<Self>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.store.append(&self.held.key, expected, events).await
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        Ok(())
    }
}
