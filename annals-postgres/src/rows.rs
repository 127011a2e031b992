//! Conversions between stored rows and the core's types. A row that does not hold what the
//! store wrote is a typed error (an event's [`StoreError::CorruptEvent`], or
//! [`PgError::Decode`]), never a panic.

use std::time::SystemTime;

use annals::{
    Checkpoint, Metadata, Payload, Position, RecordedEvent, ReplayedEvent, Snapshot, StoreError,
    StreamId, Version,
};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::PgError;

/// A stored `bigint` that must be a non-negative count (a version, a position, a commit).
pub(crate) fn unsigned(value: i64, what: &'static str) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::decode(what, format!("negative value {value}")))
}

/// A version, position or commit as a `bigint` parameter. Values past `i64::MAX` cannot be
/// stored, so they are clamped: such a value never matches a stored one.
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored stream id.
pub(crate) fn stream_id(id: String) -> Result<StreamId, PgError> {
    StreamId::new(id).map_err(|e| PgError::decode("stream id", e))
}

/// A `json` column's text, borrowed from the row.
///
/// Selected as `json` rather than cast to `text`: the cast would convert every value on the
/// server (out of `json`, into `text`), and in binary format a `json` value is its text as
/// stored. (tokio-postgres reads `json` into a `&str` only through serde.)
pub(crate) struct JsonText<'a>(pub(crate) &'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }
}

/// An event row, selected with [`crate::sql`]'s event columns. `stream` is the stream the
/// rows are known to belong to (a stream read): its id is then shared, not parsed again.
///
/// A row whose stream id is invalid or whose metadata does not decode was not written by this
/// store (or was damaged since): it is [`StoreError::CorruptEvent`], naming the event, so a
/// reader can report or skip it. Values PostgreSQL itself checks (the integers, the event id,
/// the JSON body) that still do not convert are [`PgError::Decode`] or a database error.
pub(crate) fn recorded_event(
    row: &Row,
    stream: Option<&StreamId>,
) -> Result<RecordedEvent, StoreError> {
    let place = || -> Result<_, PgError> {
        Ok((
            row.try_get::<_, &str>(1)?,
            Version(unsigned(row.try_get(2)?, "version")?),
            Position(unsigned(row.try_get(3)?, "position")?),
            unsigned(row.try_get(4)?, "transaction id")?,
        ))
    };
    let (id, version, position, commit) = place()?;
    let corrupt = |reason: String| StoreError::CorruptEvent {
        stream: id.to_owned(),
        version,
        position,
        commit,
        reason,
    };
    let stream_id = match stream {
        Some(known) if known.as_str() == id => known.clone(),
        _ => StreamId::new(id).map_err(|e| corrupt(e.to_string()))?,
    };
    let JsonText(metadata) = row.try_get(8).map_err(PgError::from)?;
    let metadata = serde_json::from_str::<Metadata>(metadata)
        .map_err(|e| corrupt(format!("its metadata does not decode: {e}")))?;
    let rest = || -> Result<_, PgError> {
        let JsonText(payload) = row.try_get(7)?;
        Ok(RecordedEvent {
            event_id: row.try_get::<_, Uuid>(0)?,
            stream_id,
            version,
            position,
            commit,
            event_type: row.try_get(5)?,
            schema_version: schema_version(row.try_get(6)?)?,
            // A `json` column: checked to be JSON when it was stored.
            payload: Payload::from_stored_json(payload.to_owned()),
            metadata,
            recorded_at: row.try_get::<_, SystemTime>(9)?,
        })
    };
    Ok(rest()?)
}

/// A row of the replay statement ([`crate::sql`]), borrowed: nothing is copied.
pub(crate) fn replayed_event(row: &Row) -> Result<ReplayedEvent<'_>, PgError> {
    Ok(ReplayedEvent {
        version: Version(unsigned(row.try_get(0)?, "version")?),
        event_type: row.try_get(1)?,
        schema_version: schema_version(row.try_get(2)?)?,
        payload: row.try_get::<_, JsonText<'_>>(3)?.0,
        recorded_at: row.try_get(4)?,
    })
}

/// A stored `integer` schema version.
pub(crate) fn schema_version(value: i32) -> Result<u32, PgError> {
    u32::try_from(value)
        .map_err(|_| PgError::decode("schema version", format!("negative value {value}")))
}

/// The events of a page of the global log ([`crate::sql`]'s `read_all`) and whether events
/// after it are held back. An empty page is one row of NULL event columns. As in
/// [`events_of`], an unreadable event ends the page before it, and is the error when it comes
/// first.
pub(crate) fn page_of(rows: &[Row]) -> Result<(Vec<RecordedEvent>, bool), StoreError> {
    let mut held_back = false;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        held_back = row.try_get(10).map_err(PgError::from)?;
        if row
            .try_get::<_, Option<Uuid>>(0)
            .map_err(PgError::from)?
            .is_none()
        {
            continue;
        }
        match recorded_event(row, None) {
            Ok(event) => events.push(event),
            // A short page, returned at once: the next read starts at the unreadable event.
            Err(StoreError::CorruptEvent { .. }) if !events.is_empty() => {
                return Ok((events, false))
            }
            Err(error) => return Err(error),
        }
    }
    Ok((events, held_back))
}

/// A `(commit, position)` row.
pub(crate) fn checkpoint_of(row: &Row) -> Result<Checkpoint, PgError> {
    Ok(Checkpoint {
        commit: unsigned(row.try_get(0)?, "checkpoint commit")?,
        position: Position(unsigned(row.try_get(1)?, "checkpoint position")?),
    })
}

/// The events of a stream read or an event lookup. `stream` is as in [`recorded_event`].
pub(crate) fn events_of(
    rows: &[Row],
    stream: Option<&StreamId>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match recorded_event(row, stream) {
            Ok(event) => events.push(event),
            // The events before an unreadable one make a short page; the next read starts
            // at it and names it, so the error is always the first one after the caller's
            // place and a reader can skip exactly that event.
            Err(StoreError::CorruptEvent { .. }) if !events.is_empty() => break,
            Err(error) => return Err(error),
        }
    }
    Ok(events)
}

/// A `(version, snapshot_version, state, taken_at)` row: the snapshot of `stream`.
pub(crate) fn snapshot_of(row: &Row, stream: &StreamId) -> Result<Snapshot, PgError> {
    let JsonText(state) = row.try_get(2)?;
    Ok(Snapshot {
        stream_id: stream.clone(),
        version: Version(unsigned(row.try_get(0)?, "snapshot version")?),
        snapshot_version: schema_version(row.try_get(1)?)?,
        state: Payload::from_json(state).map_err(|e| PgError::decode("snapshot state", e))?,
        taken_at: row.try_get(3)?,
    })
}
