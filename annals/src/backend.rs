//! For store implementers: the rules of one append call, in one place.
//!
//! Every [`EventStore`](crate::EventStore) refuses the same calls with the same errors, so a
//! program moved from one store to another behaves the same. The stores of this project call
//! these functions, and a third-party store gets the rules by calling them too; the
//! conformance suite (`annals::testing`) pins the error of each case.
//!
//! # The order of refusals
//!
//! One append call (one or several streams) is checked in this order, and the first refusal
//! wins; nothing of a refused call is written:
//!
//! 1. **A stream named twice** ([`check_call`]): [`StoreError::DuplicateStream`] naming the
//!    first stream, in the order given, that was named before.
//! 2. **An event id given twice in the call** ([`check_call`]): [`StoreError::Rejected`] on the
//!    stream of the id's second occurrence, for the first second occurrence in the order the
//!    events are given.
//! 3. Then each stream in the order given ([`decide`]), against what is stored:
//!    1. **Stored event ids.** When the first event's id is stored, and every event of the
//!       append is stored in the same stream at consecutive versions in the same order, the
//!       append is an exact retry: nothing is written and the result describes the stored
//!       events ([`AppendResult::written`] is `false`), whatever the expected version says.
//!       Any other reuse of a stored id is [`StoreError::DuplicateEventId`].
//!    2. **The expected version**: a mismatch is [`StoreError::Conflict`] with the stream's
//!       actual version.
//!
//! Steps 1 and 2 need nothing stored, so a store runs them before it takes any lock or
//! opens a transaction. Step 3 must see the stream as it is when the events are written: a
//! store runs it under the same lock (or in the same transaction) that writes them.

use uuid::Uuid;

use crate::error::StoreError;
use crate::record::{AppendResult, StreamAppend};
use crate::stream::{Position, StreamId, Version};

/// A stored event, as far as the rules of an append need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent<'a> {
    /// The event's id.
    pub event_id: Uuid,
    /// The stream it is stored in.
    pub stream_id: &'a StreamId,
    /// Its version there.
    pub version: Version,
    /// Its position in the global log.
    pub position: Position,
}

impl StoredEvent<'_> {
    /// The refusal of an append that reuses this stored event's id without repeating the
    /// stored events exactly.
    fn duplicate(&self) -> StoreError {
        StoreError::DuplicateEventId {
            event_id: self.event_id,
            stream: self.stream_id.clone(),
            version: self.version,
        }
    }
}

/// What [`decide`] found for one stream's append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An exact retry of events already stored: write nothing and return this result.
    Retry(AppendResult),
    /// Write the events after `current`, the stream's version.
    Write {
        /// The stream's version before the append.
        current: Version,
    },
}

/// The checks of one call that need nothing stored: a stream named twice, then an event id
/// given twice (steps 1 and 2 of the [order of refusals](self)).
pub fn check_call(appends: &[StreamAppend]) -> Result<(), StoreError> {
    if let Some(stream) = repeated_stream(appends) {
        return Err(StoreError::DuplicateStream {
            stream: stream.clone(),
        });
    }
    if let Some((stream, id)) = repeated_id(appends) {
        return Err(StoreError::Rejected {
            stream: stream.clone(),
            reason: format!("event id {id} appears twice in one append"),
        });
    }
    Ok(())
}

/// Decides one stream's append against what is stored (step 3 of the [order of
/// refusals](self)): `current` is the stream's version, and `stored` looks an event id up.
///
/// Call it for each stream of a call in the order given, after [`check_call`], and stop at
/// the first error.
pub fn decide<'s>(
    append: &StreamAppend,
    current: Version,
    stored: impl Fn(&Uuid) -> Option<StoredEvent<'s>>,
) -> Result<Decision, StoreError> {
    if let Some(result) = retry_of(append, stored)? {
        return Ok(Decision::Retry(result));
    }
    if !append.expected.matches(current) {
        return Err(StoreError::Conflict {
            stream: append.stream_id.clone(),
            expected: append.expected,
            actual: current,
        });
    }
    Ok(Decision::Write { current })
}

/// The result of writing `count` events after version `current`, the last at
/// `last_position` (`None` when `count` is 0).
pub fn written(current: Version, count: usize, last_position: Option<Position>) -> AppendResult {
    AppendResult {
        first_version: current.next(),
        stream_version: Version(current.0.saturating_add(count as u64)),
        last_position,
        written: count > 0,
    }
}

/// The stored result if `append` repeats stored events exactly: the same ids, in the same
/// stream, at consecutive versions. Any other reuse of a stored id is an error.
fn retry_of<'s>(
    append: &StreamAppend,
    stored: impl Fn(&Uuid) -> Option<StoredEvent<'s>>,
) -> Result<Option<AppendResult>, StoreError> {
    let Some(first) = append.events.first().and_then(|e| stored(&e.event_id)) else {
        return match append.events.iter().find_map(|e| stored(&e.event_id)) {
            Some(clash) => Err(clash.duplicate()),
            None => Ok(None),
        };
    };
    let mut last = first;
    for (offset, event) in append.events.iter().enumerate() {
        match stored(&event.event_id) {
            Some(recorded)
                if *recorded.stream_id == append.stream_id
                    && recorded.version.0 == first.version.0 + offset as u64 =>
            {
                last = recorded;
            }
            Some(recorded) => return Err(recorded.duplicate()),
            None => return Err(first.duplicate()),
        }
    }
    Ok(Some(AppendResult {
        first_version: first.version,
        stream_version: last.version,
        last_position: Some(last.position),
        written: false,
    }))
}

/// The first stream, in the order given, named a second time.
fn repeated_stream(appends: &[StreamAppend]) -> Option<&StreamId> {
    match appends.len() {
        0 | 1 => None,
        // A few streams: comparing each pair costs less than hashing them.
        2..=8 => appends.iter().enumerate().find_map(|(index, append)| {
            appends[..index]
                .iter()
                .any(|earlier| earlier.stream_id == append.stream_id)
                .then_some(&append.stream_id)
        }),
        _ => {
            let mut seen = std::collections::HashSet::with_capacity(appends.len());
            appends
                .iter()
                .find(|append| !seen.insert(&append.stream_id))
                .map(|append| &append.stream_id)
        }
    }
}

/// The first event id given a second time, in the order the events are given, with the stream
/// of its second occurrence. Sorting the ids finds repeats without hashing each one.
fn repeated_id(appends: &[StreamAppend]) -> Option<(&StreamId, Uuid)> {
    let count: usize = appends.iter().map(|append| append.events.len()).sum();
    if count < 2 {
        return None;
    }
    let mut ids = Vec::with_capacity(count);
    for (stream, append) in appends.iter().enumerate() {
        for (event, new) in append.events.iter().enumerate() {
            ids.push((new.event_id.as_u128(), stream, event));
        }
    }
    ids.sort_unstable();
    // A run of equal ids is sorted by where each occurrence was given: its second entry is the
    // id's second occurrence, and the earliest of those is the repeat a scan would meet first.
    ids.chunk_by(|a, b| a.0 == b.0)
        .filter_map(|run| match run {
            [_, (id, stream, event), ..] => Some((*stream, *event, *id)),
            _ => None,
        })
        .min()
        .map(|(stream, _, id)| (&appends[stream].stream_id, Uuid::from_u128(id)))
}
