//! Loading an aggregate: from the cache or a snapshot, then the stream's events after it;
//! time travel by version or by time; taking snapshots.

use std::ops::ControlFlow;
use std::time::SystemTime;

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::aggregate::{Aggregate, Loaded};
use crate::decode::EventDecodeError;
use crate::record::{ReplayedEvent, Snapshot};
use crate::store::{EventStore, HeldTurn};
use crate::stream::{StreamId, Version};

use super::{Repository, RepositoryError};

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// The current state of the aggregate in stream `id` and its version.
    pub async fn load(&self, id: &StreamId) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let span = tracing::info_span!(
            "annals.load",
            annals.aggregate = A::TYPE,
            annals.stream = %id,
            annals.events_replayed = Empty,
            annals.snapshot = false,
        );
        let work = async {
            let mut loaded = self.start(id, None).await?;
            self.catch_up(&mut None, id, &mut loaded, None).await?;
            self.cache.put(id, loaded.clone());
            Ok(loaded)
        };
        if span.is_disabled() {
            work.await
        } else {
            work.instrument(span).await
        }
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
    pub(super) async fn start(
        &self,
        id: &StreamId,
        until: Option<Version>,
    ) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        if until.is_none() {
            if let Some(cached) = self.cache.get(id) {
                return Ok(cached);
            }
        }
        let initial = || Loaded {
            state: A::default(),
            version: Version::INITIAL,
        };
        if A::SNAPSHOT_EVERY == 0 {
            return Ok(initial());
        }
        let stored = self.store.load_snapshot(id).await?;
        let started = stored.and_then(|snapshot| Self::usable_snapshot(id, until, snapshot));
        match &started {
            Some(_) => {
                self.metrics.snapshot_hits.increment(1);
                Span::current().record("annals.snapshot", true);
            }
            None => self.metrics.snapshot_misses.increment(1),
        }
        Ok(started.unwrap_or_else(initial))
    }

    /// A stored snapshot of `id` as a state to replay from, if it is usable: of the current
    /// snapshot version, at or before `until`, and decodable.
    fn usable_snapshot(
        id: &StreamId,
        until: Option<Version>,
        snapshot: Snapshot,
    ) -> Option<Loaded<A>> {
        if snapshot.snapshot_version != A::SNAPSHOT_VERSION {
            tracing::debug!(stream = %id, stored = snapshot.snapshot_version, current = A::SNAPSHOT_VERSION,
                "ignoring a snapshot of another snapshot version");
            return None;
        }
        if until.is_some_and(|until| snapshot.version > until) {
            return None;
        }
        match A::decode_snapshot(&snapshot.state) {
            Some(Ok(state)) => Some(Loaded {
                state,
                version: snapshot.version,
            }),
            Some(Err(error)) => {
                tracing::warn!(stream = %id, version = %snapshot.version, %error,
                    "ignoring a snapshot that does not decode; replaying the stream");
                None
            }
            None => None,
        }
    }

    /// Stores a snapshot when the append that took the stream from version `before` to
    /// `loaded.version` crossed a multiple of the aggregate's snapshot interval. A failure is
    /// logged, not returned: the events are committed, and a snapshot is only a cache.
    pub(super) async fn maybe_snapshot(&self, id: &StreamId, loaded: &Loaded<A>, before: Version) {
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
    pub(super) async fn catch_up(
        &self,
        held: &mut Option<Box<dyn HeldTurn>>,
        id: &StreamId,
        loaded: &mut Loaded<A>,
        until: Option<Until>,
    ) -> Result<(), RepositoryError<A::Error>> {
        let before = loaded.version;
        let unknown = self.unknown;
        // One loop that breaks with its result, not a helper awaited here: a command's future
        // holds this one, and every command copies it.
        let result = loop {
            let from = loaded.version.next();
            // A load up to a version asks for no more than that: events past it would be read
            // (and a store that streams them would send them) only to be dropped.
            let limit = match until {
                Some(Until::Version(v)) if v < from => break Ok(()),
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
                        failed = Some(RepositoryError::Decode(EventDecodeError {
                            stream: id.clone(),
                            version: event.version,
                            position: None,
                            source,
                        }));
                        return ControlFlow::Break(());
                    }
                }
                loaded.version = event.version;
                ControlFlow::Continue(())
            };
            let visited = match held {
                Some(turn) => turn.replay(from, limit, &mut visit).await,
                None => self.store.replay_stream(id, from, limit, &mut visit).await,
            };
            let visited = match visited {
                Ok(visited) => visited,
                Err(error) => break Err(error.into()),
            };
            if let Some(error) = failed {
                break Err(error);
            }
            if reached_until || visited < limit {
                break Ok(());
            }
        };
        let events = loaded.version.0 - before.0;
        self.metrics.replayed.record(events as f64);
        Span::current().record("annals.events_replayed", events);
        result
    }
}

/// Where a load stops: after a version, or after the events recorded by a time.
#[derive(Clone, Copy)]
pub(super) enum Until {
    Version(Version),
    Time(SystemTime),
}
