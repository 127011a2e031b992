//! The steps of one command: find a repeat, start from a state, decide, append, and on a
//! conflict take the stream's turn and decide again.

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::aggregate::{Aggregate, Loaded};
use crate::command::{idempotent_event_id, CommandContext, CommandOutcome};
use crate::error::StoreError;
use crate::record::{AppendResult, NewEvent};
use crate::store::{EventStore, HeldTurn};
use crate::stream::{ExpectedVersion, Position, StreamId, Version};
use crate::telemetry::{self, Outcome, Stopwatch};

use super::{Repository, RepositoryError};

/// The stream's turn in the store, once a command holds it ([`EventStore::hold_turn`]).
type Held = Option<Box<dyn HeldTurn>>;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
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
        let span = if telemetry::listening() {
            tracing::info_span!(
                "annals.command",
                annals.aggregate = A::TYPE,
                annals.stream = %id,
                annals.command = A::command_name(&command),
                annals.outcome = Empty,
                annals.attempts = Empty,
            )
        } else {
            Span::none()
        };
        let mut watch = Stopwatch::start(self.metrics.recording);
        let _turn = self.writers.take(id).await;
        let mut held = None;
        // Without a subscriber the attempts' future is awaited where it is made, not moved
        // into a wrapper.
        let result = if span.is_disabled() {
            self.decide_and_append(id, &command, &context, &mut held, &mut watch)
                .await
        } else {
            self.decide_and_append(id, &command, &context, &mut held, &mut watch)
                .instrument(span.clone())
                .await
        };
        if let Some(turn) = held {
            if let Err(error) = turn.release().await {
                tracing::warn!(stream = %id, %error, "cannot release the stream's turn");
            }
        }
        if self.metrics.recording || !span.is_disabled() {
            self.observe(&span, &result, watch);
        }
        result
    }

    /// Reports how a command ended: on its span, and in the metrics.
    fn observe(
        &self,
        span: &Span,
        result: &Result<CommandOutcome, RepositoryError<A::Error>>,
        watch: Stopwatch,
    ) {
        let outcome = match result {
            Ok(done) if done.duplicate => Outcome::Duplicate,
            Ok(done) if done.appended > 0 => Outcome::Appended,
            Ok(_) => Outcome::Unchanged,
            Err(RepositoryError::Rejected(_)) => Outcome::Rejected,
            Err(RepositoryError::TooManyConflicts { .. })
            | Err(RepositoryError::Store(StoreError::Conflict { .. })) => Outcome::Conflict,
            Err(_) => Outcome::Failed,
        };
        if !span.is_disabled() {
            span.record("annals.outcome", outcome.label());
            if let Ok(done) = result {
                span.record("annals.attempts", done.attempts);
            }
        }
        self.metrics.command(outcome);
        if let Some(took) = watch.command() {
            self.metrics.command_duration.record(took);
        }
    }

    /// The attempts of one command, under this process's turn of the stream; from the first
    /// conflict on, under the stream's turn in the store (`held`) when the store has one.
    /// `watch` times the appends.
    async fn decide_and_append(
        &self,
        id: &StreamId,
        command: &A::Command,
        context: &CommandContext,
        held: &mut Held,
        watch: &mut Stopwatch,
    ) -> Result<CommandOutcome, RepositoryError<A::Error>> {
        let key = context.idempotency_key.as_deref();
        if let Some(key) = key {
            if let Some(outcome) = self.executed(held, id, key, 0).await? {
                return Ok(outcome);
            }
        }
        let (mut loaded, mut unread) = self.starting_state(id, context, held).await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if !unread {
                // After a conflict only the events appended since are read: the state is kept.
                self.catch_up(held, id, &mut loaded, None).await?;
            }
            check_expected_version(id, context, loaded.version)?;
            let decision = loaded.state.handle(command, &self.services).await;
            if !matches!(&decision, Ok(events) if !events.is_empty()) {
                if unread && self.stream_moved(held, id, &mut loaded).await? {
                    unread = false;
                    attempts -= 1;
                    continue;
                }
                // Made on a state that already holds the command's own events (a repeat from
                // another process that appended first), it is that command's repeat.
                if let Some(key) = key {
                    if let Some(outcome) = self.executed(held, id, key, attempts).await? {
                        return Ok(outcome);
                    }
                }
            }
            unread = false;
            let events = match decision {
                Ok(events) if events.is_empty() => {
                    return Ok(CommandOutcome::unchanged(loaded.version, attempts))
                }
                Ok(events) => events,
                Err(rejection) => {
                    self.cache.put(id, loaded);
                    return Err(RepositoryError::Rejected(rejection));
                }
            };
            let new_events = self.encode(id, &events, context)?;
            let appended = self
                .append(held, watch, id, new_events, context, loaded.version)
                .await;
            match appended {
                Ok(result) if result.written => {
                    return Ok(self
                        .keep_written(id, loaded, &events, result, attempts)
                        .await);
                }
                Ok(_) | Err(StoreError::DuplicateEventId { .. }) if key.is_some() => {
                    let key = key.unwrap_or_default();
                    return self
                        .settle_repeat(held, id, key, loaded, appended, attempts)
                        .await;
                }
                Ok(result) => return Err(repeat_without_key(id, &result).into()),
                Err(StoreError::Conflict { actual, .. }) if context.expected_version.is_none() => {
                    self.before_deciding_again(held, id, attempts, actual)
                        .await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The state a command first decides on, and whether events may have been appended since
    /// it (`true` for a cached state).
    ///
    /// A cached state is decided on as it is, without reading the stream first: the append's
    /// expected version rejects the decision if another writer got in first, and only then
    /// are the newer events read. That makes a command one round trip. On a stream that met a
    /// conflict lately, a decision on the cached state would likely lose again: the command
    /// takes the stream's turn first, then reads what is new.
    async fn starting_state(
        &self,
        id: &StreamId,
        context: &CommandContext,
        held: &mut Held,
    ) -> Result<(Loaded<A>, bool), RepositoryError<A::Error>> {
        let (loaded, mut unread) = match self.cache.get(id) {
            Some(cached) if context.expected_version.is_none() => (cached, true),
            _ => (self.start(id, None).await?, false),
        };
        if context.expected_version.is_none() && self.hot.cools(id) {
            *held = self.store.hold_turn(id).await?;
            unread &= held.is_none();
        }
        Ok((loaded, unread))
    }

    /// Whether events were appended after the cached state a decision was made on; reads them
    /// into `loaded` if so.
    ///
    /// The rule it serves: a decision that appends nothing (a refusal, or nothing to change)
    /// is checked by no expected version, so it stands only if it was made on the stream's
    /// latest state. Made on a cached state, it is made again when the stream moved.
    async fn stream_moved(
        &self,
        held: &mut Held,
        id: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<bool, RepositoryError<A::Error>> {
        let before = loaded.version;
        self.catch_up(held, id, loaded, None).await?;
        Ok(loaded.version != before)
    }

    /// Appends a decision's encoded events with the expected version of the state it was made on (or
    /// the caller's), under the stream's turn when the command holds it.
    async fn append(
        &self,
        held: &mut Held,
        watch: &mut Stopwatch,
        id: &StreamId,
        new_events: Vec<NewEvent>,
        context: &CommandContext,
        decided_at: Version,
    ) -> Result<AppendResult, StoreError> {
        let expected = context
            .expected_version
            .unwrap_or(ExpectedVersion::Exact(decided_at));
        let began = watch.append_starts();
        let appended = match held.take() {
            Some(turn) => turn.append_and_release(expected, new_events).await,
            None => self.store.append(id, expected, new_events).await,
        };
        if let Some(took) = watch.append_ended(began) {
            self.metrics.append_duration.record(took);
        }
        appended
    }

    /// After the store wrote a decision's events: applies them to the state, takes a snapshot
    /// when one is due, and caches the state.
    async fn keep_written(
        &self,
        id: &StreamId,
        mut loaded: Loaded<A>,
        events: &[A::Event],
        result: AppendResult,
        attempts: u32,
    ) -> CommandOutcome {
        let before = loaded.version;
        for event in events {
            loaded.state.apply(event);
        }
        loaded.version = result.stream_version;
        if self.metrics.recording {
            self.metrics.appended.increment(events.len() as u64);
        }
        self.maybe_snapshot(id, &loaded, before).await;
        self.cache.put(id, loaded);
        CommandOutcome {
            version: result.stream_version,
            appended: events.len(),
            last_position: result.last_position,
            duplicate: false,
            attempts,
        }
    }

    /// The store holds this command's events already (its repeat, decided elsewhere, appended
    /// first): they, not this decision, are what happened. Reads them and reports that
    /// command's outcome.
    async fn settle_repeat(
        &self,
        held: &mut Held,
        id: &StreamId,
        key: &str,
        mut loaded: Loaded<A>,
        appended: Result<AppendResult, StoreError>,
        attempts: u32,
    ) -> Result<CommandOutcome, RepositoryError<A::Error>> {
        self.catch_up(held, id, &mut loaded, None).await?;
        self.cache.put(id, loaded);
        if let Some(outcome) = self.executed(held, id, key, attempts).await? {
            return Ok(outcome);
        }
        Err(match appended {
            Err(error) => error.into(),
            Ok(_) => StoreError::backend(format!(
                "the store answered an append to stream `{id}` under idempotency key `{key}` \
                 as a repeat, but holds no event of that key"
            ))
            .into(),
        })
    }

    /// After a conflict: gives up after the policy's last attempt; otherwise marks the stream
    /// hot and takes its turn in the store, or, in a store without turns, backs off.
    async fn before_deciding_again(
        &self,
        held: &mut Held,
        id: &StreamId,
        attempts: u32,
        actual: Version,
    ) -> Result<(), RepositoryError<A::Error>> {
        self.metrics.conflicts.increment(1);
        if attempts >= self.retry.max_attempts {
            return Err(RepositoryError::TooManyConflicts {
                stream: id.clone(),
                attempts,
                actual,
            });
        }
        tracing::trace!(stream = %id, attempts, %actual, "conflict, deciding again");
        self.metrics.retries.increment(1);
        self.hot.heat(id);
        *held = self.store.hold_turn(id).await?;
        if held.is_none() {
            tokio::time::sleep(self.retry.backoff(attempts)).await;
        }
        Ok(())
    }

    /// The outcome of the command already executed on stream `id` under idempotency `key`,
    /// described by its stored events, if there is one.
    async fn executed(
        &self,
        held: &mut Held,
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

    /// The events to append, with the context's metadata and, under an idempotency key, the
    /// ids it derives.
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

/// With an expected version in the context, a command is decided only on that version.
fn check_expected_version(
    id: &StreamId,
    context: &CommandContext,
    version: Version,
) -> Result<(), StoreError> {
    match context.expected_version {
        Some(expected) if !expected.matches(version) => Err(StoreError::Conflict {
            stream: id.clone(),
            expected,
            actual: version,
        }),
        _ => Ok(()),
    }
}

/// The store answered a command without an idempotency key as an exact retry of stored
/// events: its event ids were new, so this is the store's fault.
fn repeat_without_key(id: &StreamId, result: &AppendResult) -> StoreError {
    StoreError::backend(format!(
        "the store answered an append to stream `{id}` at version {} as an exact retry of \
         stored events, but the command has no idempotency key",
        result.first_version
    ))
}
