//! The [`Repository`]: load an aggregate, decide on a command, append with optimistic
//! concurrency, retry on conflict.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use foldhash::HashMap;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::envelope::{Envelope, UnknownEvents};
use crate::event::{DecodeError, EncodeError};
use crate::metadata::Metadata;
use crate::store::{EventStore, HeldTurn, NewEvent, ReplayedEvent, Snapshot, StoreError};
use crate::stream::{ExpectedVersion, Position, StreamId, Version};
use crate::turn::StreamTurns;

/// An aggregate's state together with the stream version it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event applied (0 for a new aggregate).
    pub version: Version,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandOutcome {
    /// The stream's version after the command.
    pub version: Version,
    /// How many events the command appended (0 when it decided nothing should change, or when
    /// it is a repeat of a command already executed with the same idempotency key).
    pub appended: usize,
    /// The global position of the last appended event.
    pub last_position: Option<Position>,
    /// Whether the command was a repeat of one already executed with the same idempotency
    /// key, so nothing was run or written.
    pub duplicate: bool,
    /// How many times the command was decided (more than 1 after conflicts).
    pub attempts: u32,
}

/// Options for one command: metadata to stamp, a version to expect, an idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandContext {
    /// Stamped on every event the command produces.
    pub metadata: Metadata,
    /// When set, the command is decided only if the stream is at this version, and is not
    /// retried on conflict: the caller decided on a state it saw.
    pub expected_version: Option<ExpectedVersion>,
    /// When set, the command's event ids derive from this key (see [`idempotent_event_id`]), so
    /// executing the same command twice with the same key appends once.
    pub idempotency_key: Option<String>,
}

impl CommandContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the metadata stamped on every event.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Requires the stream to be at `expected` (and disables retry on conflict).
    pub fn with_expected_version(mut self, expected: ExpectedVersion) -> Self {
        self.expected_version = Some(expected);
        self
    }

    /// Makes the command idempotent under `key`.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The context for a command a process manager named `process` issues in reaction to
    /// `event`: the event's id as causation, its correlation id carried over (or the event's
    /// own id, starting a new flow), the process as actor, and an idempotency key made of the
    /// process, the event and `index` (the command's number among those issued for this
    /// event), so that handling the event again never issues the command twice.
    pub fn caused_by<E>(process: &str, event: &Envelope<E>, index: usize) -> Self {
        let metadata = Metadata {
            correlation_id: Some(event.metadata.correlation_id.unwrap_or(event.event_id)),
            causation_id: Some(event.event_id),
            actor: Some(process.to_owned()),
            headers: Default::default(),
        };
        CommandContext::new()
            .with_metadata(metadata)
            .with_idempotency_key(format!("{process}/{}/{index}", event.event_id))
    }
}

/// How a command is decided again when a concurrent writer appended first.
///
/// The default: at most 16 decisions ([`DEFAULT_MAX_ATTEMPTS`]). After the first conflict the
/// repository takes the stream's turn across every writer of the store
/// ([`EventStore::hold_turn`]: PostgreSQL's advisory lock, held on one connection while it
/// reads, decides and appends; among repositories of one memory store, a queue), so the
/// writers that lost a race are served in turn instead of racing again. A store without such
/// turns gets a randomized backoff instead ("full jitter"): before deciding again the
/// repository sleeps a random time up to `initial_backoff` ×2 per conflict so far, at most
/// `max_backoff` (by default up to 1 ms, 2 ms, 4 ms... capped at 100 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most times a command is decided, the first included (at least 1; default
    /// [`DEFAULT_MAX_ATTEMPTS`], 16).
    pub max_attempts: u32,
    /// The ceiling of the first random backoff, when the store has no turns to hold (default
    /// 1 ms).
    pub initial_backoff: Duration,
    /// The most a backoff's ceiling grows to (default 100 ms).
    pub max_backoff: Duration,
}

/// How many times a command is decided at most by default; see [`RetryPolicy`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;

impl Default for RetryPolicy {
    /// 16 decisions at most, backoff ceilings from 1 ms doubling up to 100 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The default policy with at most `max_attempts` decisions.
    pub fn with_max_attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    /// A random backoff after `conflicts` conflicts: up to `initial_backoff` × 2^(conflicts - 1),
    /// at most `max_backoff`.
    fn backoff(&self, conflicts: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << conflicts.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        match nanos {
            0 => Duration::ZERO,
            nanos => Duration::from_nanos(Uuid::new_v4().as_u64_pair().0 % nanos),
        }
    }
}

/// A repository operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E> {
    /// The aggregate rejected the command.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The store failed or refused the append (a conflict with an expected version given in
    /// the [`CommandContext`] arrives here as [`StoreError::Conflict`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded.
    #[error("cannot decode event {version} of stream `{stream}`: {source}")]
    Decode {
        /// The stream.
        stream: StreamId,
        /// The event's version in the stream.
        version: Version,
        /// What went wrong.
        #[source]
        source: DecodeError,
    },
    /// An event the command produced could not be encoded; nothing was written.
    #[error("cannot encode an event for stream `{stream}`: {source}")]
    Encode {
        /// The stream.
        stream: StreamId,
        /// What went wrong.
        #[source]
        source: EncodeError,
    },
    /// Every attempt met a concurrent write; nothing was written by this command.
    #[error("gave up on stream `{stream}` after {attempts} attempts: each append met a concurrent write (the stream is at version {actual})")]
    TooManyConflicts {
        /// The stream.
        stream: StreamId,
        /// How many times the command was decided.
        attempts: u32,
        /// The stream's version at the last conflict.
        actual: Version,
    },
    /// A time-travel query asked for a version the stream does not have.
    #[error("stream `{stream}` has no version {requested}: it is at version {current}")]
    VersionNotFound {
        /// The stream.
        stream: StreamId,
        /// The version asked for.
        requested: Version,
        /// The stream's current version.
        current: Version,
    },
}

impl<E> RepositoryError<E> {
    /// The aggregate's error, if the command was rejected.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            RepositoryError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// The namespace of idempotency-derived event ids (a UUID v5 namespace).
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x4c6f_bd1e_8a5f_4e0b_9d1c_e7a2_6b35_90f4);

/// The id of the `index`-th event (from 0) produced by a command run on `stream` under an
/// idempotency `key`: a UUID v5, the same on every run.
pub fn idempotent_event_id(stream: &StreamId, key: &str, index: usize) -> Uuid {
    let name = format!("{}\u{0}{}\u{0}{}", stream.as_str(), key, index);
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
}

/// Loads aggregates of type `A` from the store `S`, runs commands on them and appends the
/// resulting events.
///
/// Each [`execute`](Repository::execute) loads the stream, decides on the command and appends
/// with the loaded version as the expected version. When another writer appended first, the
/// repository takes the stream's turn in the store where it can ([`EventStore::hold_turn`]),
/// catches up with the new events and decides again, up to [`RetryPolicy::max_attempts`]
/// times; the next commands on that stream take the turn before they decide. A `Repository`
/// is cheap to share: put it in an `Arc`.
///
/// Its cache of states only ever holds events the store wrote: when the store answers an
/// append as an exact retry of events stored before ([`AppendResult::written`] is `false`),
/// the repository reads what is stored instead of keeping its own decision.
///
/// [`AppendResult::written`]: crate::AppendResult::written
pub struct Repository<A: Aggregate, S> {
    store: S,
    services: A::Services,
    retry: RetryPolicy,
    batch_size: usize,
    unknown: UnknownEvents,
    cache: StateCache<A>,
    writers: StreamTurns,
    hot: HotStreams,
}

/// Streams that met a conflict lately, with how many more commands on each take the
/// stream's turn before they decide.
#[derive(Default)]
struct HotStreams {
    streams: Mutex<HashMap<StreamId, u32>>,
    /// Whether `streams` has an entry: read without the lock by every command.
    any: AtomicBool,
}

/// How many commands on a stream take its turn first after a conflict on it.
const HOT_COMMANDS: u32 = 32;

impl HotStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, u32>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `id` as hot after a conflict.
    fn heat(&self, id: &StreamId) {
        let mut hot = self.lock();
        hot.insert(id.clone(), HOT_COMMANDS);
        self.any.store(true, Ordering::Relaxed);
    }

    /// Whether `id` is hot, counting this command.
    fn cools(&self, id: &StreamId) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let mut hot = self.lock();
        let cooled = match hot.get_mut(id) {
            Some(left) if *left > 1 => {
                *left -= 1;
                return true;
            }
            Some(_) => hot.remove(id).is_some(),
            None => false,
        };
        self.any.store(!hot.is_empty(), Ordering::Relaxed);
        cooled
    }
}

/// The latest known state of recently used streams. An entry is only ever a starting point:
/// the repository reads the events appended after it before deciding, and the append's
/// expected version rejects a decision made on a stale state, so other writers (in this
/// process or another) can never make it wrong.
struct StateCache<A> {
    entries: Mutex<HashMap<StreamId, Loaded<A>>>,
    capacity: usize,
}

impl<A: Clone> StateCache<A> {
    fn get(&self, id: &StreamId) -> Option<Loaded<A>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(id).cloned()
    }

    fn put(&self, id: &StreamId, loaded: Loaded<A>) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = entries.get_mut(id) {
            if cached.version < loaded.version {
                *cached = loaded;
            }
            return;
        }
        if entries.len() >= self.capacity {
            // Evict an arbitrary entry: cheap, and a miss costs one full load.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(id.clone(), loaded);
    }
}

/// How many events one [`EventStore::replay_stream`] call hands over when a repository loads
/// a stream, by default. Stores stream, lend or page through the events of a replay, so this
/// bounds round trips, not memory: one round trip for any stream up to this long.
pub const DEFAULT_LOAD_BATCH_SIZE: usize = 100_000;

/// How many aggregate states a repository keeps by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

impl<A: Aggregate, S> fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::TYPE)
            .field("retry", &self.retry)
            .field("batch_size", &self.batch_size)
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S>
where
    A::Services: Default,
{
    /// A repository over `store` with default services.
    pub fn new(store: S) -> Self {
        Self::with_services(store, A::Services::default())
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store` whose handlers receive `services`.
    pub fn with_services(store: S, services: A::Services) -> Self {
        Repository {
            store,
            services,
            retry: RetryPolicy::default(),
            batch_size: DEFAULT_LOAD_BATCH_SIZE,
            unknown: UnknownEvents::Fail,
            cache: StateCache {
                entries: Mutex::new(HashMap::default()),
                capacity: DEFAULT_CACHE_CAPACITY,
            },
            writers: StreamTurns::default(),
            hot: HotStreams::default(),
        }
    }

    /// Sets how many aggregate states the repository keeps between commands (0 keeps none).
    ///
    /// With a cached state, a command reads only the events appended since, instead of the
    /// whole stream (or the snapshot and the events after it).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = StateCache {
            entries: Mutex::new(HashMap::default()),
            capacity,
        };
        self
    }

    /// Sets what loading does with stored events of types the event enum does not know:
    /// fail with [`RepositoryError::Decode`] (the default) or skip them.
    pub fn with_unknown_events(mut self, unknown: UnknownEvents) -> Self {
        self.unknown = unknown;
        self
    }

    /// Sets the retry policy for conflicts.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// Sets how many events one [`EventStore::replay_stream`] call hands over when loading.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The services handlers receive.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// Runs `command` on the aggregate in stream `id` and appends the events it produces.
    pub async fn execute(
        &self,
        id: &StreamId,
        command: A::Command,
    ) -> Result<CommandOutcome, RepositoryError<A::Error>> {
        self.execute_with(id, command, CommandContext::default())
            .await
    }

    /// Runs `command` with the options in `context`: metadata stamped on every event, an
    /// expected version, an idempotency key.
    ///
    /// With an idempotency key, concurrent repeats of one command (in this process or in
    /// others) are one command: one of them appends, and every other returns `Ok` with
    /// [`CommandOutcome::duplicate`] set, describing the stored events. The key is looked up
    /// under the stream's turn in this process, and the store's exact-retry rule settles a
    /// race between processes.
    pub async fn execute_with(
        &self,
        id: &StreamId,
        command: A::Command,
        context: CommandContext,
    ) -> Result<CommandOutcome, RepositoryError<A::Error>> {
        let _turn = self.writers.take(id).await;
        let mut held = None;
        let outcome = self
            .decide_and_append(id, &command, &context, &mut held)
            .await;
        if let Some(turn) = held {
            if let Err(error) = turn.release().await {
                tracing::warn!(stream = %id, %error, "cannot release the stream's turn");
            }
        }
        outcome
    }

    /// The attempts of one command, under this process's turn of the stream; from the first
    /// conflict on, under the stream's turn in the store (`held`) when the store has one.
    async fn decide_and_append(
        &self,
        id: &StreamId,
        command: &A::Command,
        context: &CommandContext,
        held: &mut Option<Box<dyn HeldTurn>>,
    ) -> Result<CommandOutcome, RepositoryError<A::Error>> {
        let key = context.idempotency_key.as_deref();
        if let Some(key) = key {
            if let Some(outcome) = self.executed(held, id, key, 0).await? {
                return Ok(outcome);
            }
        }
        // A cached state is decided on as it is, without reading the stream first: the
        // append's expected version rejects the decision if another writer got in first, and
        // only then are the newer events read. That makes a command one round trip.
        let (mut loaded, mut unread) = match self.cache.get(id) {
            Some(cached) if context.expected_version.is_none() => (cached, true),
            _ => (self.start(id, None).await?, false),
        };
        // On a stream that met a conflict lately, a decision on the cached state would likely
        // lose again: take the stream's turn first, then read what is new and decide.
        if context.expected_version.is_none() && self.hot.cools(id) {
            *held = self.store.hold_turn(id).await?;
            unread &= held.is_none();
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            if !unread {
                // After a conflict only the events appended since are read: the state is kept.
                self.catch_up(held, id, &mut loaded, None).await?;
            }
            if let Some(expected) = context.expected_version {
                if !expected.matches(loaded.version) {
                    return Err(StoreError::Conflict {
                        stream: id.clone(),
                        expected,
                        actual: loaded.version,
                    }
                    .into());
                }
            }
            let decision = loaded.state.handle(command, &self.services).await;
            // A refusal or a decision to do nothing appends nothing, so no expected version
            // checks it: it stands only if it was made on the stream's latest state.
            let appends = matches!(&decision, Ok(events) if !events.is_empty());
            if !appends && unread {
                let before = loaded.version;
                self.catch_up(held, id, &mut loaded, None).await?;
                unread = false;
                if loaded.version != before {
                    attempts -= 1;
                    continue;
                }
            }
            unread = false;
            if !appends {
                // Made on a state that already holds the command's own events (a repeat
                // from another process that appended first), it is that command's repeat.
                if let Some(key) = key {
                    if let Some(outcome) = self.executed(held, id, key, attempts).await? {
                        return Ok(outcome);
                    }
                }
            }
            let events = match decision {
                Ok(events) => events,
                Err(rejection) => {
                    self.cache.put(id, loaded);
                    return Err(RepositoryError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                return Ok(CommandOutcome {
                    version: loaded.version,
                    appended: 0,
                    last_position: None,
                    duplicate: false,
                    attempts,
                });
            }
            let new_events = self.encode(id, &events, context)?;
            let expected = context
                .expected_version
                .unwrap_or(ExpectedVersion::Exact(loaded.version));
            let appended = match held.take() {
                Some(turn) => turn.append_and_release(expected, new_events).await,
                None => self.store.append(id, expected, new_events).await,
            };
            match appended {
                Ok(result) if result.written => {
                    let before = loaded.version;
                    for event in &events {
                        loaded.state.apply(event);
                    }
                    loaded.version = result.stream_version;
                    self.maybe_snapshot(id, &loaded, before).await;
                    self.cache.put(id, loaded);
                    return Ok(CommandOutcome {
                        version: result.stream_version,
                        appended: events.len(),
                        last_position: result.last_position,
                        duplicate: false,
                        attempts,
                    });
                }
                // The store holds this command's events already (its repeat, decided
                // elsewhere, appended first): they, not this decision, are what happened.
                Ok(_) | Err(StoreError::DuplicateEventId { .. }) if key.is_some() => {
                    let key = key.unwrap_or_default();
                    self.catch_up(held, id, &mut loaded, None).await?;
                    self.cache.put(id, loaded);
                    if let Some(outcome) = self.executed(held, id, key, attempts).await? {
                        return Ok(outcome);
                    }
                    return Err(match appended {
                        Err(error) => error.into(),
                        Ok(_) => StoreError::backend(format!(
                            "the store answered an append to stream `{id}` under idempotency \
                             key `{key}` as a repeat, but holds no event of that key"
                        ))
                        .into(),
                    });
                }
                Ok(result) => {
                    return Err(StoreError::backend(format!(
                        "the store answered an append to stream `{id}` at version {} as an \
                         exact retry of stored events, but the command has no idempotency key",
                        result.first_version
                    ))
                    .into());
                }
                Err(StoreError::Conflict { actual, .. }) if context.expected_version.is_none() => {
                    if attempts >= self.retry.max_attempts {
                        return Err(RepositoryError::TooManyConflicts {
                            stream: id.clone(),
                            attempts,
                            actual,
                        });
                    }
                    tracing::trace!(stream = %id, attempts, %actual, "conflict, deciding again");
                    self.hot.heat(id);
                    *held = self.store.hold_turn(id).await?;
                    if held.is_none() {
                        tokio::time::sleep(self.retry.backoff(attempts)).await;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The outcome of the command already executed on stream `id` under idempotency `key`,
    /// described by its stored events, if there is one.
    async fn executed(
        &self,
        held: &mut Option<Box<dyn HeldTurn>>,
        id: &StreamId,
        key: &str,
        attempts: u32,
    ) -> Result<Option<CommandOutcome>, RepositoryError<A::Error>> {
        let mut last = None;
        for index in 0.. {
            let event_id = idempotent_event_id(id, key, index);
            let stored = match held {
                Some(turn) => turn.read_event(event_id).await?,
                None => self.store.read_event(event_id).await?,
            };
            match stored {
                Some(event)
                    if event.stream_id == *id
                        && last
                            .as_ref()
                            .is_none_or(|(version, _): &(Version, Position)| {
                                event.version == version.next()
                            }) =>
                {
                    last = Some((event.version, event.position));
                }
                _ => break,
            }
        }
        Ok(last.map(|(version, position)| {
            tracing::debug!(stream = %id, key, "command already executed under this idempotency key");
            CommandOutcome {
                version,
                appended: 0,
                last_position: Some(position),
                duplicate: true,
                attempts,
            }
        }))
    }

    /// The current state of the aggregate in stream `id` and its version.
    pub async fn load(&self, id: &StreamId) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let mut loaded = self.start(id, None).await?;
        self.catch_up(&mut None, id, &mut loaded, None).await?;
        self.cache.put(id, loaded.clone());
        Ok(loaded)
    }

    /// The state as it was at `version` (time travel by version).
    pub async fn load_at(
        &self,
        id: &StreamId,
        version: Version,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let mut loaded = self.start(id, Some(version)).await?;
        self.catch_up(&mut None, id, &mut loaded, Some(Until::Version(version)))
            .await?;
        if loaded.version < version {
            return Err(RepositoryError::VersionNotFound {
                stream: id.clone(),
                requested: version,
                current: loaded.version,
            });
        }
        Ok(loaded)
    }

    /// The state as it was at time `at`: every event recorded at or before it applied (time
    /// travel by time). Before the first event this is the default state at version 0.
    pub async fn load_as_of(
        &self,
        id: &StreamId,
        at: SystemTime,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let mut loaded = Loaded {
            state: A::default(),
            version: Version::INITIAL,
        };
        self.catch_up(&mut None, id, &mut loaded, Some(Until::Time(at)))
            .await?;
        Ok(loaded)
    }

    /// The state to replay from: the latest usable snapshot (at or before `until`), or the
    /// default state. A snapshot of another snapshot version, or one that does not decode, is
    /// ignored: snapshots are a cache.
    async fn start(
        &self,
        id: &StreamId,
        until: Option<Version>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        if until.is_none() {
            if let Some(cached) = self.cache.get(id) {
                return Ok(cached);
            }
        }
        let initial = Loaded {
            state: A::default(),
            version: Version::INITIAL,
        };
        if A::SNAPSHOT_EVERY == 0 {
            return Ok(initial);
        }
        let Some(snapshot) = self.store.load_snapshot(id).await? else {
            return Ok(initial);
        };
        if snapshot.snapshot_version != A::SNAPSHOT_VERSION {
            tracing::debug!(stream = %id, stored = snapshot.snapshot_version, current = A::SNAPSHOT_VERSION,
                "ignoring a snapshot of another snapshot version");
            return Ok(initial);
        }
        if until.is_some_and(|until| snapshot.version > until) {
            return Ok(initial);
        }
        match A::decode_snapshot(&snapshot.state) {
            Some(Ok(state)) => Ok(Loaded {
                state,
                version: snapshot.version,
            }),
            Some(Err(error)) => {
                tracing::warn!(stream = %id, version = %snapshot.version, %error,
                    "ignoring a snapshot that does not decode; replaying the stream");
                Ok(initial)
            }
            None => Ok(initial),
        }
    }

    /// Stores a snapshot when the append that took the stream from version `before` to
    /// `loaded.version` crossed a multiple of the aggregate's snapshot interval. A failure is
    /// logged, not returned: the events are committed, and a snapshot is only a cache.
    async fn maybe_snapshot(&self, id: &StreamId, loaded: &Loaded<A>, before: Version) {
        let every = A::SNAPSHOT_EVERY;
        if every == 0 || before.0 / every == loaded.version.0 / every {
            return;
        }
        let state = match loaded.state.encode_snapshot() {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(stream = %id, %error, "cannot encode a snapshot");
                return;
            }
            None => return,
        };
        let snapshot = Snapshot {
            stream_id: id.clone(),
            version: loaded.version,
            snapshot_version: A::SNAPSHOT_VERSION,
            state,
            taken_at: SystemTime::now(),
        };
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(stream = %id, %error, "cannot store a snapshot");
        }
    }

    /// Applies the events of `id` after `loaded.version` (up to `until`) onto `loaded`, in
    /// batches of `batch_size` through [`EventStore::replay_stream`].
    async fn catch_up(
        &self,
        held: &mut Option<Box<dyn HeldTurn>>,
        id: &StreamId,
        loaded: &mut Loaded<A>,
        until: Option<Until>,
    ) -> Result<(), RepositoryError<A::Error>> {
        let unknown = self.unknown;
        loop {
            let from = loaded.version.next();
            // A load up to a version asks for no more than that: events past it would be read
            // (and a store that streams them would send them) only to be dropped.
            let limit = match until {
                Some(Until::Version(v)) if v < from => return Ok(()),
                Some(Until::Version(v)) => usize::try_from(v.0 - from.0 + 1)
                    .unwrap_or(usize::MAX)
                    .min(self.batch_size),
                _ => self.batch_size,
            };
            let mut failed = None;
            let mut reached_until = false;
            let mut visit = |event: ReplayedEvent<'_>| {
                match until {
                    Some(Until::Version(v)) if event.version > v => reached_until = true,
                    Some(Until::Time(t)) if event.recorded_at > t => reached_until = true,
                    _ => {}
                }
                if reached_until {
                    return ControlFlow::Break(());
                }
                match unknown.apply(event.decode::<A::Event>()) {
                    Ok(Some(decoded)) => loaded.state.apply(&decoded),
                    Ok(None) => {}
                    Err(source) => {
                        failed = Some(RepositoryError::Decode {
                            stream: id.clone(),
                            version: event.version,
                            source,
                        });
                        return ControlFlow::Break(());
                    }
                }
                loaded.version = event.version;
                ControlFlow::Continue(())
            };
            let visited = match held {
                Some(turn) => turn.replay(from, limit, &mut visit).await?,
                None => {
                    self.store
                        .replay_stream(id, from, limit, &mut visit)
                        .await?
                }
            };
            if let Some(error) = failed {
                return Err(error);
            }
            if reached_until || visited < limit {
                return Ok(());
            }
        }
    }

    fn encode(
        &self,
        id: &StreamId,
        events: &[A::Event],
        context: &CommandContext,
    ) -> Result<Vec<NewEvent>, RepositoryError<A::Error>> {
        events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let new = NewEvent::encode(event, context.metadata.clone()).map_err(|source| {
                    RepositoryError::Encode {
                        stream: id.clone(),
                        source,
                    }
                })?;
                Ok(match &context.idempotency_key {
                    Some(key) => new.with_event_id(idempotent_event_id(id, key, index)),
                    None => new,
                })
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Until {
    Version(Version),
    Time(SystemTime),
}
