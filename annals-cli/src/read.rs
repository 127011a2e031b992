//! The reading verbs: `streams`, `stream` and `event`.

use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use crate::db::{self, quoted};
use crate::error::CliError;
use crate::schema::text;
use crate::table::Table;
use crate::Output;

/// `annals streams`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamsArgs {
    /// Only the streams whose id starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// At most this many streams.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Only the streams after this id (the `next_after` of the previous page).
    #[arg(long)]
    after: Option<String>,
}

/// `annals stream`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// The stream's id.
    id: String,
    /// Stops at this version (a number) or this time (RFC 3339, `2026-01-31T23:59:59Z`).
    #[arg(long)]
    at: Option<String>,
}

/// `annals event`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct EventArgs {
    /// The event's id.
    id: uuid::Uuid,
}

/// `annals streams`: streams by id, with their event counts and last versions.
pub(crate) async fn streams(
    url: &str,
    schema: &str,
    out: Output,
    args: StreamsArgs,
) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let limit = i64::from(args.limit);
    let after = args.after.unwrap_or_default();
    // Pages are in the column's collation, for both the order and `>`. (A database's default
    // collation is always deterministic, so no two stream ids compare equal and no stream
    // falls between pages.) Without a prefix, a page reads its streams' events down the
    // `(stream_id, version)` index and stops. With one, the streams that match can be anywhere
    // in that index, so their events are read in one pass over the table instead of a walk
    // down the whole index.
    let q = quoted(schema);
    let last_recorded = db::rfc3339("max(recorded_at)");
    let rows = if args.prefix.is_empty() {
        client
            .query(
                &format!(
                    "SELECT stream_id, count(*), max(version), {last_recorded}
                     FROM {q}.events
                     WHERE stream_id > $1
                     GROUP BY stream_id ORDER BY stream_id LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await?
    } else {
        // `OFFSET 0` keeps the planner from turning the filter into an index walk.
        client
            .query(
                &format!(
                    "SELECT stream_id, count(*), max(version), {last_recorded}
                     FROM (SELECT stream_id, version, recorded_at FROM {q}.events OFFSET 0) e
                     WHERE starts_with(stream_id, $1) AND stream_id > $2
                     GROUP BY stream_id ORDER BY stream_id LIMIT $3"
                ),
                &[&args.prefix, &after, &limit],
            )
            .await?
    };
    let mut streams = Vec::new();
    for row in &rows {
        let id: String = row.try_get(0)?;
        let events: i64 = row.try_get(1)?;
        let version: i64 = row.try_get(2)?;
        let last_recorded_at: Option<String> = row.try_get(3)?;
        streams.push(json!({
            "stream_id": id,
            "events": events,
            "version": version,
            "last_recorded_at": last_recorded_at,
        }));
    }
    let next_after = if limit > 0 && rows.len() as i64 == limit {
        streams.last().map(|s| s["stream_id"].clone())
    } else {
        None
    };
    let document = json!({ "streams": streams, "next_after": next_after });
    out.print(&document, |w| {
        let mut table = Table::new(vec!["STREAM", "EVENTS", "VERSION", "LAST RECORDED"]);
        for s in &streams {
            table.row(vec![
                text(&s["stream_id"]),
                text(&s["events"]),
                text(&s["version"]),
                text(&s["last_recorded_at"]),
            ]);
        }
        table.write(w)?;
        if let Some(next) = &next_after {
            writeln!(w, "more: --after {}", text(next))?;
        }
        Ok(())
    })
}

/// The columns of an event, in the order [`event_json`] reads them.
fn event_columns() -> String {
    format!(
        "position, tx_id::text, stream_id, version, event_id, event_type, schema_version, \
         payload::text, metadata::text, {}",
        db::rfc3339("recorded_at")
    )
}

/// A stored body as JSON, or as a string when it is not JSON (it always is: the column is
/// `json`, checked on the way in).
fn body(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The event at `checkpoint` (its commit and position) as stored, as JSON (`None`: there is
/// none). Found down the primary key, `(tx_id, position)`.
pub(crate) async fn stored_event(
    client: &tokio_postgres::Client,
    schema: &str,
    checkpoint: annals::Checkpoint,
) -> Result<Option<Value>, CliError> {
    // Both as text, as `scan` passes its key: the checkpoint's values came from the store.
    let row = client
        .query_opt(
            &format!(
                "SELECT {} FROM {}.events WHERE tx_id = $1::text::xid8 AND position = $2::text::int8",
                event_columns(),
                quoted(schema)
            ),
            &[&checkpoint.commit.to_string(), &checkpoint.position.0.to_string()],
        )
        .await?;
    row.as_ref().map(event_json).transpose()
}

/// One event row as JSON.
fn event_json(row: &Row) -> Result<Value, CliError> {
    let position: i64 = row.try_get(0)?;
    let tx_id: String = row.try_get(1)?;
    let stream_id: String = row.try_get(2)?;
    let version: i64 = row.try_get(3)?;
    let event_id: uuid::Uuid = row.try_get(4)?;
    let event_type: String = row.try_get(5)?;
    let schema_version: i32 = row.try_get(6)?;
    let payload: String = row.try_get(7)?;
    let metadata: String = row.try_get(8)?;
    let recorded_at: String = row.try_get(9)?;
    Ok(json!({
        "position": position,
        "tx_id": tx_id,
        "stream_id": stream_id,
        "version": version,
        "event_id": event_id.to_string(),
        "event_type": event_type,
        "schema_version": schema_version,
        "payload": body(payload),
        "metadata": body(metadata),
        "recorded_at": recorded_at,
    }))
}

/// Events as a table, bodies and metadata as compact JSON.
fn events_table(events: &[Value], w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut table = Table::new(vec![
        "VERSION", "POSITION", "TYPE", "SCHEMA", "EVENT ID", "RECORDED", "METADATA", "PAYLOAD",
    ]);
    for e in events {
        table.row(vec![
            text(&e["version"]),
            text(&e["position"]),
            text(&e["event_type"]),
            text(&e["schema_version"]),
            text(&e["event_id"]),
            text(&e["recorded_at"]),
            e["metadata"].to_string(),
            e["payload"].to_string(),
        ]);
    }
    table.write(w)
}

/// `annals stream <id>`: the stream's events in version order, up to `--at`.
pub(crate) async fn stream(
    url: &str,
    schema: &str,
    out: Output,
    args: StreamArgs,
) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let q = quoted(schema);
    let base = format!(
        "SELECT {} FROM {q}.events WHERE stream_id = $1",
        event_columns()
    );
    let rows = match &args.at {
        None => {
            client
                .query(&format!("{base} ORDER BY version"), &[&args.id])
                .await?
        }
        Some(at) if !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) => {
            let version: i64 = at
                .parse()
                .map_err(|_| CliError::Usage(format!("--at {at}: version too large")))?;
            client
                .query(
                    &format!("{base} AND version <= $2 ORDER BY version"),
                    &[&args.id, &version],
                )
                .await?
        }
        // PostgreSQL also reads words (`now`, `yesterday`): only a time that starts with a
        // date is taken.
        Some(at) if !at.starts_with(|c: char| c.is_ascii_digit()) => {
            return Err(not_a_time(at));
        }
        Some(at) => client
            .query(
                &format!("{base} AND recorded_at <= $2::text::timestamptz ORDER BY version"),
                &[&args.id, at],
            )
            .await
            .map_err(|error| match error.code() {
                Some(code)
                    if *code == SqlState::INVALID_DATETIME_FORMAT
                        || *code == SqlState::DATETIME_FIELD_OVERFLOW =>
                {
                    not_a_time(at)
                }
                _ => CliError::Database(error),
            })?,
    };
    if rows.is_empty() {
        let exists = client
            .query_opt(
                &format!("SELECT 1 FROM {q}.events WHERE stream_id = $1 LIMIT 1"),
                &[&args.id],
            )
            .await?
            .is_some();
        if !exists {
            return Err(CliError::NotFound(format!(
                "stream `{}` has no events; `annals streams --prefix` lists stored streams",
                args.id
            )));
        }
    }
    let events = rows.iter().map(event_json).collect::<Result<Vec<_>, _>>()?;
    let version = events
        .last()
        .map_or(Value::from(0), |e| e["version"].clone());
    let document = json!({ "stream_id": args.id, "version": version, "events": events });
    out.print(&document, |w| events_table(&events, w))
}

/// The error of an `--at` that is neither a version nor a time.
fn not_a_time(at: &str) -> CliError {
    CliError::Usage(format!(
        "--at {at}: neither a version nor an RFC 3339 time (like 2026-01-31T23:59:59Z)"
    ))
}

/// `annals event <uuid>`: one event, with its stream and position.
pub(crate) async fn event(
    url: &str,
    schema: &str,
    out: Output,
    args: EventArgs,
) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {} FROM {}.events WHERE event_id = $1",
                event_columns(),
                quoted(schema)
            ),
            &[&args.id],
        )
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no event has id {}", args.id)))?;
    let event = event_json(&row)?;
    out.print(&event, |w| {
        for key in [
            "event_id",
            "event_type",
            "schema_version",
            "stream_id",
            "version",
            "position",
            "tx_id",
            "recorded_at",
        ] {
            writeln!(w, "{key:<15} {}", text(&event[key]))?;
        }
        writeln!(w, "{:<15} {}", "metadata", event["metadata"])?;
        writeln!(w, "{:<15} {}", "payload", event["payload"])
    })
}
