//! The insert statement: the common append (one stream, at least one event, in its own
//! transaction, readers woken after it commits) as one `INSERT` that returns only what it
//! wrote. Its SQL text, its parameters and its rows are all here.

use annals::{AppendResult, Position, StoreError, Version};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement};

use super::encode::{expected_matches, EncodedAppend, ExpectedForm};
use super::take_turn;
use crate::error::{classify, is_stale_version, AppendFailure};
use crate::rows::unsigned;

/// Where an insert statement numbers its events from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Numbering {
    /// From the version the stream's turn reads (`stream_turn`, migration 2): any expected
    /// version.
    Read = 0,
    /// From the expected version itself (`$3`): an exact expected version or no stream. The
    /// statement reads no version; it only checks that the expected one is stored.
    Expected = 1,
}

/// Which of the four insert statements serves an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InsertStatement {
    pub(crate) numbering: Numbering,
    /// With exactly one event, each event column is bound as a plain value instead of a
    /// one-element array, so neither side builds or takes an array apart.
    pub(crate) single_event: bool,
}

/// The insert statements of the schema `s`, indexed by [`Numbering`], then by
/// [`InsertStatement::single_event`].
pub(super) fn statements(s: &str) -> [[String; 2]; 2] {
    [Numbering::Read, Numbering::Expected].map(|numbering| {
        [false, true].map(|single_event| {
            sql(
                s,
                InsertStatement {
                    numbering,
                    single_event,
                },
            )
        })
    })
}

/// The common append, leaner than the general statement ([`super::general`]): one `INSERT` of
/// the events, numbered as `numbering` says, after the stream's turn is taken. With a single
/// event, it returns the event's row (version, position), or none when the expected version
/// does not match; with more events, one summary row (the count written, the first and last
/// version, the last position), with a count of 0 when the expected version does not match.
/// On no match the caller resolves the refusal ([`super::resolve`]), which runs the general
/// statement to learn why. It needs at least one event (no rows would be ambiguous) and sends
/// no notification. The parameters are the general statement's first eight.
///
/// [`Numbering::Read`] numbers from the version `stream_turn` reads after the wait, and keeps
/// the rows only when it matches the expected version.
///
/// [`Numbering::Expected`] takes the turn (the same advisory lock, so transaction ids still
/// follow each stream's version order) and numbers from the expected version `$3` (0 for no
/// stream), with no version read: it writes only when an event at version `$3` is stored (or
/// `$3` is 0), and the `(stream_id, version)` key refuses the first event when the stream is
/// further along. The check and the key together admit exactly the appends whose expected
/// version is the stream's. Under a conflict it falls to the resolution more often than
/// [`Numbering::Read`] (a writer that waited for the turn checks with a snapshot from before
/// the wait), but an uncontended append, nearly every one, costs an index probe instead of a
/// PL/pgSQL call and a version read: 18% more appends per second with pgbench (one client).
fn sql(s: &str, statement: InsertStatement) -> String {
    let one = statement.single_event;
    let (turn, base, check) = match statement.numbering {
        Numbering::Read => (
            format!("current AS MATERIALIZED (SELECT {s}.stream_turn($1::text) AS version)"),
            "current.version",
            expected_matches("current.version"),
        ),
        Numbering::Expected => (
            format!("current AS MATERIALIZED (SELECT {})", take_turn("$1::text")),
            "$3::int8",
            format!(
                "$2::int4 IN ({exact}, {no_stream}) AND ($3::int8 = 0 OR EXISTS \
                 (SELECT 1 FROM {s}.events AS at WHERE at.stream_id = $1::text \
                  AND at.version = $3::int8))",
                exact = ExpectedForm::Exact.code(),
                no_stream = ExpectedForm::NoStream.code(),
            ),
        ),
    };
    let (columns, events, order) = if one {
        (
            format!("{base} + 1, $4::uuid, $5::text, $6::int4, $7::text::json, $8::text::json"),
            "",
            "",
        )
    } else {
        (
            format!(
                "{base} + e.ord, e.event_id, e.event_type, e.schema_version, \
                 e.payload::json, e.metadata::json"
            ),
            ", unnest($4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[]) \
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)",
            "ORDER BY e.ord",
        )
    };
    let insert = format!(
        "INSERT INTO {s}.events \
             (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
         SELECT $1::text, {columns} FROM current{events} WHERE {check} {order} \
         RETURNING version, position"
    );
    if one {
        format!("WITH {turn} {insert}")
    } else {
        // One summary row instead of a row per event: a hundred rows cost the server more
        // to send, and the client more to take apart, than the rest of its side of the append.
        format!(
            "WITH {turn}, written AS ({insert}) \
             SELECT count(*), min(version), max(version), max(position) FROM written"
        )
    }
}

/// Runs the insert statement `statement` (prepared from [`EncodedAppend::insert_statement`])
/// for one stream's append of at least one event. `None` when it wrote nothing: the expected
/// version does not match, or the version read was stale; the caller then resolves the
/// refusal, which finds out why.
pub(crate) async fn run<C: GenericClient + Sync>(
    client: &C,
    statement: &Statement,
    e: &EncodedAppend<'_>,
) -> Result<Option<AppendResult>, AppendFailure> {
    let stream = e.append.stream_id.as_str();
    let expected = e.expected.code();
    type Param<'p> = &'p (dyn ToSql + Sync);
    // One event binds plain values, more bind arrays.
    let events: [Param<'_>; 5] = match (
        e.ids.first(),
        e.types.first(),
        e.schema_versions.first(),
        e.payloads.first(),
        e.metadata.first(),
    ) {
        (Some(id), Some(event_type), Some(schema_version), Some(payload), Some(metadata))
            if e.single_event() =>
        {
            [id, event_type, schema_version, payload, metadata]
        }
        _ => [
            &e.ids,
            &e.types,
            &e.schema_versions,
            &e.payloads,
            &e.metadata,
        ],
    };
    let [ids, types, schema_versions, payloads, metadata] = events;
    let rows = client
        .query(
            statement,
            &[
                &stream,
                &expected,
                &e.expected_version,
                ids,
                types,
                schema_versions,
                payloads,
                metadata,
            ],
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            if is_stale_version(&error) {
                return Ok(None);
            }
            return Err(classify(&e.append.stream_id, error));
        }
    };
    let written = |count: i64, first: i64, last: i64, position: i64| {
        let expected = e.ids.len() as u64;
        let (count, first, last) = (
            unsigned(count, "count")?,
            Version(unsigned(first, "version")?),
            Version(unsigned(last, "version")?),
        );
        if count != expected || last.0.checked_sub(first.0) != Some(expected.saturating_sub(1)) {
            return Err(AppendFailure::Error(StoreError::backend(format!(
                "internal error: the append statement wrote {count} of {expected} events, \
                 versions {} to {}",
                first.0, last.0
            ))));
        }
        Ok(Some(AppendResult {
            first_version: first,
            stream_version: last,
            last_position: Some(Position(unsigned(position, "position")?)),
            written: true,
        }))
    };
    match rows.as_slice() {
        // One event: its row, or none when the expected version does not match.
        [] => Ok(None),
        [row] if e.single_event() => {
            let version = row.try_get(0)?;
            written(1, version, version, row.try_get(1)?)
        }
        // More: one summary row, counting 0 when the expected version does not match.
        [row] => match row.try_get::<_, i64>(0)? {
            0 => Ok(None),
            count => written(count, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?),
        },
        _ => Err(AppendFailure::Error(StoreError::backend(format!(
            "internal error: the append statement returned {} rows",
            rows.len()
        )))),
    }
}
