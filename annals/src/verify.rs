//! The verify gate: does the code about to ship read everything stored?
//!
//! [`verify`] reads the whole global log (or the part a [`Filter`] lets through) and decodes
//! every event of the event enum's types through its upcaster chain, exactly as a repository
//! or a projection would. It reports each event that does not decode, and each stored row the
//! store cannot read back, with counts per type and schema version. Events of types the enum
//! does not know belong to other enums and are counted apart, not reported.
//!
//! Meant for a test or a deploy step:
//!
//! ```
//! use annals::verify::{verify, VerifyOptions};
//! # use annals::Event;
//! # #[derive(serde::Serialize, serde::Deserialize, Event)]
//! # enum AccountEvent { Opened }
//!
//! # async fn gate(store: annals_memory::MemoryEventStore) -> Result<(), Box<dyn std::error::Error>> {
//! let report = verify::<AccountEvent, _>(&store, VerifyOptions::default(), |progress| {
//!     eprintln!("{} events read", progress.read);
//! })
//! .await?;
//! for failure in &report.failures {
//!     eprintln!("{failure}");
//! }
//! assert!(report.is_clean(), "the new code cannot read {} stored events", report.failures.len());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::decode::CorruptEvents;
use crate::error::StoreError;
use crate::event::{DecodeError, Event};
use crate::reader::EventStoreExt;
use crate::store::{EventStore, DEFAULT_BATCH_SIZE};
use crate::stream::{Checkpoint, Position, Version};
use crate::subscription::Filter;

/// What [`verify`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Which events to read (default: all of them).
    pub filter: Filter,
    /// How many events one read fetches (default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// The most failures kept in the report (default 1,000); the counts still cover every
    /// event.
    pub max_failures: usize,
}

impl Default for VerifyOptions {
    /// Every event, in batches of [`DEFAULT_BATCH_SIZE`], at most 1,000 failures listed.
    fn default() -> Self {
        VerifyOptions {
            filter: Filter::all(),
            batch_size: DEFAULT_BATCH_SIZE,
            max_failures: 1_000,
        }
    }
}

impl VerifyOptions {
    /// Reads only the events `filter` lets through.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
}

/// How far [`verify`] has read, passed to its progress callback after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyProgress {
    /// Events read so far (those the filter left out included).
    pub read: u64,
    /// The checkpoint reached.
    pub checkpoint: Checkpoint,
    /// The head of the log when the verification started.
    pub head: Checkpoint,
}

/// One stored event the code cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyFailure {
    /// The stream, as stored.
    pub stream: String,
    /// The event's version in the stream.
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
    /// Its stored type name (empty when the row itself cannot be read).
    pub event_type: String,
    /// Its stored schema version (0 when the row itself cannot be read).
    pub schema_version: u32,
    /// Why it cannot be read.
    pub error: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} of stream `{}` at position {} (type `{}`, schema version {}): {}",
            self.version,
            self.stream,
            self.position,
            self.event_type,
            self.schema_version,
            self.error
        )
    }
}

/// How the events of one stored type and schema version fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TypeCount {
    /// How many decoded (or are declared removed, which the enum reads as "skip").
    pub decoded: u64,
    /// How many did not decode.
    pub failed: u64,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Events read (those the filter left out not counted).
    pub checked: u64,
    /// Counts per stored type name and schema version, for the enum's types.
    pub by_type: BTreeMap<(String, u32), TypeCount>,
    /// Events of types the enum does not know, per type name: other enums' events.
    pub other_types: BTreeMap<String, u64>,
    /// The events that cannot be read, at most [`VerifyOptions::max_failures`] of them, in
    /// log order.
    pub failures: Vec<VerifyFailure>,
    /// How many events cannot be read, all of them counted.
    pub failed: u64,
}

impl VerifyReport {
    /// Whether every event read decodes.
    pub fn is_clean(&self) -> bool {
        self.failed == 0
    }

    fn fail(&mut self, failure: VerifyFailure, max: usize) {
        self.failed += 1;
        if self.failures.len() < max {
            self.failures.push(failure);
        }
    }
}

/// Reads every stored event `options` lets through and decodes those of `E`'s types through
/// `E`'s upcaster chain; see the [module docs](self). `progress` is called after each batch.
///
/// Fails only when the store fails; events that do not decode and rows that cannot be read
/// back are in the report.
pub async fn verify<E, S>(
    store: &S,
    options: VerifyOptions,
    mut progress: impl FnMut(&VerifyProgress),
) -> Result<VerifyReport, StoreError>
where
    E: Event,
    S: EventStore + ?Sized,
{
    let head = store.log_head().await?;
    let mut report = VerifyReport::default();
    let mut read = 0u64;
    let mut reader = store
        .log_reader(Checkpoint::START)
        .batch_size(options.batch_size)
        .corrupt_events(CorruptEvents::Fail);
    loop {
        let batch = match reader.next_batch().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(StoreError::CorruptEvent {
                stream,
                version,
                position,
                commit,
                reason,
            }) => {
                read += 1;
                report.checked += 1;
                let failure = VerifyFailure {
                    stream,
                    version,
                    position,
                    event_type: String::new(),
                    schema_version: 0,
                    error: reason,
                };
                report.fail(failure, options.max_failures);
                let after = Checkpoint { commit, position };
                reader = store
                    .log_reader(after)
                    .batch_size(options.batch_size)
                    .corrupt_events(CorruptEvents::Fail);
                continue;
            }
            Err(error) => return Err(error),
        };
        for event in &batch {
            read += 1;
            if !options.filter.matches(event) {
                continue;
            }
            report.checked += 1;
            let key = (event.event_type.clone(), event.schema_version);
            match event.decode::<E>() {
                Ok(_) => report.by_type.entry(key).or_default().decoded += 1,
                Err(DecodeError::UnknownType { event_type, .. }) => {
                    *report.other_types.entry(event_type).or_default() += 1;
                }
                Err(error) => {
                    report.by_type.entry(key).or_default().failed += 1;
                    let failure = VerifyFailure {
                        stream: event.stream_id.to_string(),
                        version: event.version,
                        position: event.position,
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        error: error.to_string(),
                    };
                    report.fail(failure, options.max_failures);
                }
            }
        }
        progress(&VerifyProgress {
            read,
            checkpoint: reader.checkpoint(),
            head,
        });
    }
    Ok(report)
}
