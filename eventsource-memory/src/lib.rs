//! An embedded, in-memory [`EventStore`] for tests, examples and small tools.
//!
//! [`MemoryEventStore`] keeps events as a real store does, encoded as JSON with their metadata,
//! so code that passes its tests on it behaves the same on a database backend: it runs the same
//! conformance suite as `eventsource-postgres`. Nothing is persisted; data lives as long as the
//! last clone of the store.
//!
//! ```
//! use eventsource::{EventStore, ExpectedVersion, StreamId, Version};
//! use eventsource_memory::MemoryEventStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryEventStore::new();
//! let stream = StreamId::new("bank-account-1")?;
//! assert_eq!(store.stream_version(&stream).await?, Version(0));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use eventsource::{
    AppendResult, Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent, Payload, Position,
    RecordedEvent, ReplayedEvent, Snapshot, StoreError, StreamAppend, StreamId, Version,
};
use foldhash::{HashMap, HashSet, HashSetExt};
use tokio::sync::watch;
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

/// What the checks decided for one stream of an append.
enum Plan {
    /// An exact retry of an earlier append: return its result, write nothing.
    Retry(AppendResult),
    /// Write the events after `current`.
    Write { current: Version },
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

    /// Decides whether `append` is a retry, a write, or refused.
    fn plan(&self, append: &StreamAppend) -> Result<Plan, StoreError> {
        if let Some(retry) = self.retry_of(append)? {
            return Ok(Plan::Retry(retry));
        }
        let current = self.version(&append.stream_id);
        if !append.expected.matches(current) {
            return Err(StoreError::Conflict {
                stream: append.stream_id.clone(),
                expected: append.expected,
                actual: current,
            });
        }
        Ok(Plan::Write { current })
    }

    /// The earlier result if `append` repeats an append exactly: the same ids, in the same
    /// stream, at consecutive versions. A partial overlap is an error.
    fn retry_of(&self, append: &StreamAppend) -> Result<Option<AppendResult>, StoreError> {
        let stored = |id: &Uuid| self.by_id.get(id).map(|&index| &self.events[index]);
        let Some(first) = append.events.first().and_then(|e| stored(&e.event_id)) else {
            return match append.events.iter().find_map(|e| stored(&e.event_id)) {
                Some(clash) => Err(duplicate(clash)),
                None => Ok(None),
            };
        };
        let mut last = first;
        for (offset, event) in append.events.iter().enumerate() {
            match stored(&event.event_id) {
                Some(recorded)
                    if recorded.stream_id == append.stream_id
                        && recorded.version.0 == first.version.0 + offset as u64 =>
                {
                    last = recorded;
                }
                Some(recorded) => return Err(duplicate(recorded)),
                None => return Err(duplicate(first)),
            }
        }
        Ok(Some(AppendResult {
            first_version: first.version,
            stream_version: last.version,
            last_position: Some(last.position),
        }))
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

    /// Carries out `plan` for `append`, as part of commit `commit` (from
    /// [`next_commit`](Log::next_commit)), which counts once any of its appends writes an event.
    fn write(
        &mut self,
        append: StreamAppend,
        plan: Plan,
        commit: u64,
        now: SystemTime,
    ) -> AppendResult {
        let current = match plan {
            Plan::Retry(result) => return result,
            Plan::Write { current } => current,
        };
        if !append.events.is_empty() {
            self.commits = commit;
        }
        let indexes = self.streams.entry(append.stream_id.clone()).or_default();
        let mut version = current;
        let mut last_position = None;
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
        AppendResult {
            first_version: current.next(),
            stream_version: version,
            last_position,
        }
    }
}

/// Refuses an event id that appears twice in one append call. Only a call of more than one
/// event needs the set, so a one-event append allocates none.
struct IdsInCall(Option<HashSet<Uuid>>);

impl IdsInCall {
    fn new(events: usize) -> Self {
        IdsInCall((events > 1).then(|| HashSet::with_capacity(events)))
    }

    fn check(&mut self, append: &StreamAppend) -> Result<(), StoreError> {
        let Some(ids) = &mut self.0 else {
            return Ok(());
        };
        match append.events.iter().find(|e| !ids.insert(e.event_id)) {
            Some(event) => Err(StoreError::Rejected {
                stream: append.stream_id.clone(),
                reason: format!("event id {} appears twice in one append", event.event_id),
            }),
            None => Ok(()),
        }
    }
}

fn duplicate(recorded: &Stored) -> StoreError {
    StoreError::DuplicateEventId {
        event_id: recorded.event_id,
        stream: recorded.stream_id.clone(),
        version: recorded.version,
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
        let log = self.write();
        IdsInCall::new(append.events.len()).check(&append)?;
        let plan = log.plan(&append)?;
        Ok(self.commit(log, |log, commit, now| log.write(append, plan, commit, now)))
    }

    async fn append_streams(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let log = self.write();

        // Check everything before writing anything, so a refused append leaves no trace.
        let mut streams = HashSet::with_capacity(appends.len());
        let mut ids = IdsInCall::new(appends.iter().map(|a| a.events.len()).sum());
        let mut plans = Vec::with_capacity(appends.len());
        for append in &appends {
            if !streams.insert(&append.stream_id) {
                return Err(StoreError::DuplicateStream {
                    stream: append.stream_id.clone(),
                });
            }
            ids.check(append)?;
            plans.push(log.plan(append)?);
        }

        Ok(self.commit(log, |log, commit, now| {
            appends
                .into_iter()
                .zip(plans)
                .map(|(append, plan)| log.write(append, plan, commit, now))
                .collect()
        }))
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
