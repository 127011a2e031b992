//! What annals reports about itself: metrics through the [`metrics`] facade and spans through
//! [`tracing`].
//!
//! # Metrics
//!
//! Nothing is recorded until the application installs a recorder (for example
//! `metrics-exporter-prometheus`); without one every update is a no-op. Handles are registered
//! when a repository, a runner or a store is built, so **install the recorder first**. Call
//! [`describe`] once after installing it to give each metric its unit and description.
//!
//! | name | kind | unit | labels | what |
//! |---|---|---|---|---|
//! | `annals_commands_total` | counter | commands | `aggregate`, `outcome` | commands run, by how they ended: `appended`, `unchanged` (nothing to append), `duplicate` (a repeat under an idempotency key), `rejected`, `conflict` (gave up after conflicts, or an expected version not met), `failed` |
//! | `annals_command_duration_seconds` | histogram | seconds | `aggregate` | one command, from its start to the end of its last append (or to its decision, when it appends nothing), retries included |
//! | `annals_command_conflicts_total` | counter | conflicts | `aggregate` | appends that met a concurrent write |
//! | `annals_command_retries_total` | counter | decisions | `aggregate` | decisions made again after a conflict |
//! | `annals_events_appended_total` | counter | events | `aggregate` | events appended by commands |
//! | `annals_append_duration_seconds` | histogram | seconds | `aggregate` | one append of a command's events |
//! | `annals_load_events_replayed` | histogram | events | `aggregate` | events applied by one load or catch-up of a stream |
//! | `annals_snapshot_hits_total` | counter | loads | `aggregate` | loads that started from a snapshot |
//! | `annals_snapshot_misses_total` | counter | loads | `aggregate` | loads of a snapshotting aggregate that found none usable |
//! | `annals_projection_events_total` | counter | events | `projection` | events handed to a projection (or any sink) and committed |
//! | `annals_projection_lag_events` | gauge | events | `projection` | positions between the projection's checkpoint and the log's head, after each batch |
//! | `annals_projection_lag_seconds` | gauge | seconds | `projection` | age of the last event of each batch when it was committed |
//! | `annals_projection_handler_errors_total` | counter | errors | `projection` | handler (or sink) failures |
//! | `annals_projection_handler_retries_total` | counter | retries | `projection` | batches handed over again after a failure |
//! | `annals_subscription_wakeups_total` | counter | wake-ups | `cause` | a waiting subscription woken by a notification (`notified`) or by its poll interval (`polled`) |
//!
//! Backends add their own (`annals-postgres`: `annals_pool_wait_seconds`; `annals-nats`: the
//! relay's), documented in their crates.
//!
//! # Spans
//!
//! Spans cost one check of the subscriber's interest when nothing listens. Names and fields:
//!
//! - `annals.command`: `annals.aggregate`, `annals.stream`, `annals.command` (the variant),
//!   `annals.outcome`, `annals.attempts`;
//! - `annals.load`: `annals.aggregate`, `annals.stream`, `annals.events_replayed`,
//!   `annals.snapshot` (whether the load started from a snapshot);
//! - `annals.append` (in each store): `db.system`, `db.operation.name` (`append`),
//!   `annals.streams`, `annals.events`, `annals.expected_version`, `annals.conflict`;
//! - `annals.projection.batch`: `annals.projection`, `annals.events`, `annals.checkpoint`,
//!   `annals.lag_seconds`.
//!
//! # What it costs
//!
//! With no recorder installed when a repository is built and no subscriber listening at the
//! `INFO` level, a command's telemetry is a few checks: it reads no clock, makes no span and
//! records nothing. With a recorder, a command that appends reads the clock three times
//! (at its start and around its append) and makes four updates (its outcome, the events
//! appended, the command's and the append's durations); what an update costs is the
//! recorder's. The memory store's commands bench measures both.

use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Unit};
use tracing::field::Empty;
use tracing::Span;

use crate::error::StoreError;
use crate::record::StreamAppend;

/// The metrics' names.
pub mod names {
    /// Commands run, by aggregate type and outcome.
    pub const COMMANDS: &str = "annals_commands_total";
    /// Duration of one command.
    pub const COMMAND_DURATION: &str = "annals_command_duration_seconds";
    /// Appends that met a concurrent write.
    pub const COMMAND_CONFLICTS: &str = "annals_command_conflicts_total";
    /// Decisions made again after a conflict.
    pub const COMMAND_RETRIES: &str = "annals_command_retries_total";
    /// Events appended by commands.
    pub const EVENTS_APPENDED: &str = "annals_events_appended_total";
    /// Duration of one append of a command's events.
    pub const APPEND_DURATION: &str = "annals_append_duration_seconds";
    /// Events applied by one load or catch-up.
    pub const LOAD_EVENTS_REPLAYED: &str = "annals_load_events_replayed";
    /// Loads that started from a snapshot.
    pub const SNAPSHOT_HITS: &str = "annals_snapshot_hits_total";
    /// Loads of a snapshotting aggregate that found no usable snapshot.
    pub const SNAPSHOT_MISSES: &str = "annals_snapshot_misses_total";
    /// Events a projection handled and committed.
    pub const PROJECTION_EVENTS: &str = "annals_projection_events_total";
    /// Positions between a projection's checkpoint and the log's head.
    pub const PROJECTION_LAG_EVENTS: &str = "annals_projection_lag_events";
    /// Age of the last event a projection committed.
    pub const PROJECTION_LAG_SECONDS: &str = "annals_projection_lag_seconds";
    /// Handler (or sink) failures.
    pub const PROJECTION_HANDLER_ERRORS: &str = "annals_projection_handler_errors_total";
    /// Batches handed over again after a failure.
    pub const PROJECTION_HANDLER_RETRIES: &str = "annals_projection_handler_retries_total";
    /// Subscription wake-ups, by cause.
    pub const SUBSCRIPTION_WAKEUPS: &str = "annals_subscription_wakeups_total";
}

/// Gives the installed recorder each core metric's unit and description. Call it once, after
/// installing the recorder.
pub fn describe() {
    use names::*;
    let counters: [(&'static str, Unit, &'static str); 10] = [
        (
            COMMANDS,
            Unit::Count,
            "commands run, by aggregate type and outcome",
        ),
        (
            COMMAND_CONFLICTS,
            Unit::Count,
            "appends that met a concurrent write",
        ),
        (
            COMMAND_RETRIES,
            Unit::Count,
            "decisions made again after a conflict",
        ),
        (EVENTS_APPENDED, Unit::Count, "events appended by commands"),
        (
            SNAPSHOT_HITS,
            Unit::Count,
            "loads that started from a snapshot",
        ),
        (
            SNAPSHOT_MISSES,
            Unit::Count,
            "loads that found no usable snapshot",
        ),
        (
            PROJECTION_EVENTS,
            Unit::Count,
            "events a projection handled and committed",
        ),
        (
            PROJECTION_HANDLER_ERRORS,
            Unit::Count,
            "projection handler failures",
        ),
        (
            PROJECTION_HANDLER_RETRIES,
            Unit::Count,
            "projection batches handed over again",
        ),
        (
            SUBSCRIPTION_WAKEUPS,
            Unit::Count,
            "subscription wake-ups, by cause",
        ),
    ];
    for (name, unit, description) in counters {
        metrics::describe_counter!(name, unit, description);
    }
    let histograms: [(&'static str, Unit, &'static str); 3] = [
        (
            COMMAND_DURATION,
            Unit::Seconds,
            "one command, load to append",
        ),
        (
            APPEND_DURATION,
            Unit::Seconds,
            "one append of a command's events",
        ),
        (
            LOAD_EVENTS_REPLAYED,
            Unit::Count,
            "events applied by one load or catch-up",
        ),
    ];
    for (name, unit, description) in histograms {
        metrics::describe_histogram!(name, unit, description);
    }
    metrics::describe_gauge!(
        PROJECTION_LAG_EVENTS,
        Unit::Count,
        "positions between a projection's checkpoint and the log's head"
    );
    metrics::describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "age of the last event a projection committed"
    );
}

/// Whether a `tracing` subscriber may listen at the `INFO` level, the level of annals' spans:
/// one load of the level filter's atomic.
#[inline]
pub(crate) fn listening() -> bool {
    tracing::Level::INFO <= tracing::level_filters::LevelFilter::current()
}

/// The `annals.append` span of one append call, for a store to run the append in: the
/// store's `db.system` (`"postgresql"`, ...), how many streams and events, the expected version
/// of a one-stream append. Close it with [`record_append`].
///
/// When no subscriber listens at the `INFO` level this is [`Span::none`], made without
/// counting anything.
#[inline]
pub fn append_span(db_system: &'static str, appends: &[StreamAppend]) -> Span {
    if !listening() {
        return Span::none();
    }
    listened_append_span(db_system, appends)
}

/// [`append_span`] when a subscriber may listen.
fn listened_append_span(db_system: &'static str, appends: &[StreamAppend]) -> Span {
    let span = tracing::info_span!(
        "annals.append",
        db.system = db_system,
        db.operation.name = "append",
        annals.streams = appends.len(),
        annals.events = appends.iter().map(|a| a.events.len()).sum::<usize>(),
        annals.expected_version = Empty,
        annals.conflict = Empty,
    );
    if let (false, [one]) = (span.is_disabled(), appends) {
        span.record(
            "annals.expected_version",
            tracing::field::display(one.expected),
        );
    }
    span
}

/// Records on an [`append_span`] whether the append met a conflict.
#[inline]
pub fn record_append<T>(span: &Span, result: &Result<T, StoreError>) {
    // A disabled span would still look the field up by name.
    if !span.is_disabled() {
        span.record(
            "annals.conflict",
            matches!(result, Err(StoreError::Conflict { .. })),
        );
    }
}

/// How a command ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Appended,
    Unchanged,
    Duplicate,
    Rejected,
    Conflict,
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Appended,
        Outcome::Unchanged,
        Outcome::Duplicate,
        Outcome::Rejected,
        Outcome::Conflict,
        Outcome::Failed,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Appended => "appended",
            Outcome::Unchanged => "unchanged",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }
}

/// Whether a metrics recorder is installed (for this thread's scope or globally): without one
/// the facade's recorder is a unit struct that records nothing, and timing a command would be
/// clock reads for nothing.
pub(crate) fn recording() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// The clock readings of one command, taken only when a recorder is installed: at the start,
/// and before and after each append. A command that appends ends when its last append does
/// (the command duration is "load to append"), so it costs three readings; one that appends
/// nothing ends when it is observed.
pub(crate) struct Stopwatch {
    started: Option<Instant>,
    ended: Option<Instant>,
}

impl Stopwatch {
    /// Starts timing a command if `on`; otherwise every method is a no-op.
    #[inline]
    pub(crate) fn start(on: bool) -> Self {
        Stopwatch {
            started: on.then(Instant::now),
            ended: None,
        }
    }

    /// The time an append begins, if the command is timed.
    #[inline]
    pub(crate) fn append_starts(&self) -> Option<Instant> {
        self.started.map(|_| Instant::now())
    }

    /// The append begun at `began` (from [`append_starts`](Stopwatch::append_starts)) has
    /// ended: how long it took.
    #[inline]
    pub(crate) fn append_ended(&mut self, began: Option<Instant>) -> Option<Duration> {
        let began = began?;
        let now = Instant::now();
        self.ended = Some(now);
        Some(now.saturating_duration_since(began))
    }

    /// How long the command took, from its start to the end of its last append (or to now,
    /// when it appended nothing).
    pub(crate) fn command(self) -> Option<Duration> {
        let started = self.started?;
        let ended = self.ended.unwrap_or_else(Instant::now);
        Some(ended.saturating_duration_since(started))
    }
}

/// A repository's metric handles, registered once for its aggregate type.
pub(crate) struct RepositoryMetrics {
    /// Whether a recorder was installed when the handles were registered: without one every
    /// handle is a no-op, and nothing is measured or counted.
    pub(crate) recording: bool,
    commands: [Counter; 6],
    pub(crate) command_duration: Histogram,
    pub(crate) conflicts: Counter,
    pub(crate) retries: Counter,
    pub(crate) appended: Counter,
    pub(crate) append_duration: Histogram,
    pub(crate) replayed: Histogram,
    pub(crate) snapshot_hits: Counter,
    pub(crate) snapshot_misses: Counter,
}

impl RepositoryMetrics {
    pub(crate) fn new(aggregate: &'static str) -> Self {
        use names::*;
        let labels = [("aggregate", aggregate)];
        RepositoryMetrics {
            recording: recording(),
            commands: Outcome::ALL.map(|outcome| {
                metrics::counter!(COMMANDS, "aggregate" => aggregate, "outcome" => outcome.label())
            }),
            command_duration: metrics::histogram!(COMMAND_DURATION, &labels),
            conflicts: metrics::counter!(COMMAND_CONFLICTS, &labels),
            retries: metrics::counter!(COMMAND_RETRIES, &labels),
            appended: metrics::counter!(EVENTS_APPENDED, &labels),
            append_duration: metrics::histogram!(APPEND_DURATION, &labels),
            replayed: metrics::histogram!(LOAD_EVENTS_REPLAYED, &labels),
            snapshot_hits: metrics::counter!(SNAPSHOT_HITS, &labels),
            snapshot_misses: metrics::counter!(SNAPSHOT_MISSES, &labels),
        }
    }

    pub(crate) fn command(&self, outcome: Outcome) {
        // `ALL` lists the outcomes in declaration order, so the discriminant is the index.
        if let Some(counter) = self.commands.get(outcome as usize) {
            counter.increment(1);
        }
    }
}

/// A projection runner's metric handles, registered once for its name.
pub(crate) struct ProjectionMetrics {
    /// Whether a recorder was installed when the handles were registered: the lag behind the
    /// log's head, which costs a read of the head, is only measured then.
    pub(crate) recording: bool,
    pub(crate) events: Counter,
    pub(crate) lag_events: Gauge,
    pub(crate) lag_seconds: Gauge,
    pub(crate) errors: Counter,
    pub(crate) retries: Counter,
}

impl ProjectionMetrics {
    pub(crate) fn new(projection: &str) -> Self {
        use names::*;
        let labels = [("projection", projection.to_owned())];
        ProjectionMetrics {
            recording: recording(),
            events: metrics::counter!(PROJECTION_EVENTS, &labels),
            lag_events: metrics::gauge!(PROJECTION_LAG_EVENTS, &labels),
            lag_seconds: metrics::gauge!(PROJECTION_LAG_SECONDS, &labels),
            errors: metrics::counter!(PROJECTION_HANDLER_ERRORS, &labels),
            retries: metrics::counter!(PROJECTION_HANDLER_RETRIES, &labels),
        }
    }
}

impl std::fmt::Debug for ProjectionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionMetrics").finish_non_exhaustive()
    }
}

/// A subscription's wake-up counters.
pub(crate) struct WakeupMetrics {
    pub(crate) notified: Counter,
    pub(crate) polled: Counter,
}

impl WakeupMetrics {
    pub(crate) fn new() -> Self {
        WakeupMetrics {
            notified: metrics::counter!(names::SUBSCRIPTION_WAKEUPS, "cause" => "notified"),
            polled: metrics::counter!(names::SUBSCRIPTION_WAKEUPS, "cause" => "polled"),
        }
    }
}

impl std::fmt::Debug for WakeupMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeupMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopwatch_that_is_off_reads_no_clock() {
        let mut watch = Stopwatch::start(false);
        let began = watch.append_starts();
        assert_eq!(began, None);
        assert_eq!(watch.append_ended(began), None);
        assert_eq!(watch.command(), None);
    }

    #[test]
    fn a_command_ends_with_its_last_append() {
        let pause = Duration::from_millis(5);
        let outer = Instant::now();
        let mut watch = Stopwatch::start(true);
        std::thread::sleep(pause);
        let began = watch.append_starts();
        std::thread::sleep(pause);
        let append = watch.append_ended(began).unwrap();
        let after_append = Instant::now();
        std::thread::sleep(pause);
        let command = watch.command().unwrap();
        assert!(append >= pause, "{append:?}");
        assert!(command >= append + pause, "{command:?} {append:?}");
        // The pause after the append is not the command's.
        assert!(command <= after_append - outer, "{command:?}");
    }

    #[test]
    fn a_command_that_appends_nothing_ends_when_observed() {
        let pause = Duration::from_millis(5);
        let watch = Stopwatch::start(true);
        std::thread::sleep(pause);
        assert!(watch.command().unwrap() >= pause);
    }
}
