//! Identity and ordering: stream ids, per-stream versions, global positions and the expected
//! version an append is checked against.

use std::fmt::{self, Write as _};
use std::sync::Arc;

/// The most bytes a [`StreamId`] may hold.
pub const MAX_STREAM_ID_LEN: usize = 256;

/// The name of one event stream, usually one aggregate instance (`bank-account-42`).
///
/// A stream id is validated once, on construction: it is non-empty, at most
/// [`MAX_STREAM_ID_LEN`] bytes long and holds no control characters. Cloning is cheap (a
/// reference count), so ids travel freely inside recorded events and errors.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// Validates `id` and wraps it.
    ///
    /// ```
    /// # use annals::StreamId;
    /// assert!(StreamId::new("bank-account-42").is_ok());
    /// assert!(StreamId::new("").is_err());
    /// assert!(StreamId::new("tab\there").is_err());
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidStreamId> {
        let id: String = id.into();
        if id.is_empty() {
            return Err(InvalidStreamId::Empty);
        }
        if id.len() > MAX_STREAM_ID_LEN {
            return Err(InvalidStreamId::TooLong {
                prefix: id.chars().take(32).collect(),
                len: id.len(),
                max: MAX_STREAM_ID_LEN,
            });
        }
        // Printable ASCII, the common case, holds no control character; only other text needs
        // the scan by character.
        let printable = id.bytes().all(|b| (b' '..=b'~').contains(&b));
        if !printable {
            if let Some((index, character)) = id.char_indices().find(|(_, c)| c.is_control()) {
                return Err(InvalidStreamId::ControlCharacter {
                    id,
                    index,
                    character,
                });
            }
        }
        Ok(StreamId(id.into()))
    }

    /// The id of the stream of aggregate `A` with instance id `id`: `<A::TYPE>-<id>`.
    ///
    /// ```
    /// # use annals::{StreamId, Aggregate};
    /// # fn doc<A: Aggregate>() -> Result<(), annals::InvalidStreamId> {
    /// let stream = StreamId::for_aggregate::<A>("42")?; // e.g. "bank-account-42"
    /// # Ok(()) }
    /// ```
    pub fn for_aggregate<A: crate::Aggregate>(
        id: impl fmt::Display,
    ) -> Result<Self, InvalidStreamId> {
        // Built in one buffer sized up front: `format!` grows its buffer as it goes, and this
        // runs for nearly every command.
        let mut text = String::with_capacity(A::TYPE.len() + 1 + 32);
        text.push_str(A::TYPE);
        text.push('-');
        // Writing into a `String` cannot fail; a `Display` impl that reports an error anyway
        // leaves what it wrote, which is then validated like any id.
        let _ = write!(text, "{id}");
        StreamId::new(text)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a stream of aggregate type `aggregate_type` by the convention of
    /// [`for_aggregate`](StreamId::for_aggregate): the id starts with `<aggregate_type>-`.
    pub fn belongs_to(&self, aggregate_type: &str) -> bool {
        self.0
            .strip_prefix(aggregate_type)
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StreamId {
    type Err = InvalidStreamId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamId::new(s)
    }
}

impl TryFrom<&str> for StreamId {
    type Error = InvalidStreamId;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        StreamId::new(s)
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        StreamId::new(s)
    }
}

/// Why a string is not a valid [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidStreamId {
    /// The id is the empty string.
    #[error("invalid stream id: the id is empty")]
    Empty,
    /// The id is longer than [`MAX_STREAM_ID_LEN`] bytes.
    #[error("invalid stream id {prefix:?}...: {len} bytes long, the limit is {max}")]
    TooLong {
        /// The first characters of the rejected id.
        prefix: String,
        /// Its length in bytes.
        len: usize,
        /// The limit, [`MAX_STREAM_ID_LEN`].
        max: usize,
    },
    /// The id holds a control character (a newline, a NUL byte, an escape...).
    #[error("invalid stream id {id:?}: control character {character:?} at byte {index}")]
    ControlCharacter {
        /// The rejected id.
        id: String,
        /// The byte offset of the first control character.
        index: usize,
        /// The control character.
        character: char,
    },
}

/// The version of a stream: the number of events in it, and the number of its latest event.
///
/// The first event of a stream has version 1; `Version(0)` is a stream with no events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    /// The version of a stream that holds no events.
    pub const INITIAL: Version = Version(0);

    /// The version after this one.
    pub const fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The place of an event in the store's global log, unique and increasing in the order events
/// were written.
///
/// Positions are assigned when an append starts, so an event that commits late can carry a lower
/// position than events already visible; readers of the whole log order by [`Checkpoint`], which
/// accounts for that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A reader's place in the global log: the commit an event was written in, then its position.
///
/// The global log is read in `(commit, position)` order, which is the order in which events
/// became visible. A reader that remembers the checkpoint of the last event it handled resumes
/// after it without skipping an event that committed late. In the memory store `commit` counts
/// appends; in PostgreSQL it is the writing transaction's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    /// The commit (transaction) the event was written in.
    pub commit: u64,
    /// The event's global position.
    pub position: Position,
}

impl Checkpoint {
    /// The checkpoint before the first event: reading after it reads the whole log.
    pub const START: Checkpoint = Checkpoint {
        commit: 0,
        position: Position(0),
    };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.commit, self.position)
    }
}

/// What an append expects of the stream's current version; a mismatch is a
/// [`StoreError::Conflict`](crate::StoreError::Conflict) and nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream must not exist yet (hold no events).
    NoStream,
    /// The stream must exist (hold at least one event).
    StreamExists,
    /// The stream's version must be exactly this; `Exact(Version(0))` means the stream is empty.
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn matches(self, actual: Version) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == Version::INITIAL,
            ExpectedVersion::StreamExists => actual > Version::INITIAL,
            ExpectedVersion::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}
