//! `annals tail`: follows the global log live, through the store's own reads, so it never
//! skips an event that commits late.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use annals::{Checkpoint, EventStore, Position, RecordedEvent};
use annals_postgres::{PgConfig, PgEventStore};
use serde_json::{json, Value};

use crate::db::{self, quoted};
use crate::error::CliError;
use crate::read;
use crate::schema::text;
use crate::Output;

/// Events read per page.
const PAGE: usize = 500;

/// How long one wait for new events lasts before the log is read again.
const WAIT: Duration = Duration::from_secs(1);

/// `annals tail`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct TailArgs {
    /// Starts at this position (the event there and everything after it) instead of the
    /// head of the log.
    #[arg(long)]
    from_position: Option<u64>,
    /// Only events of these types (comma-separated, or the option repeated).
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
    /// Only events of streams whose id starts with this.
    #[arg(long)]
    stream_prefix: Option<String>,
    /// Exits after printing this many events.
    #[arg(long)]
    limit: Option<u64>,
}

/// Follows the log until Ctrl-C, or until `--limit` events are printed.
pub(crate) async fn tail(
    url: &str,
    schema: &str,
    out: Output,
    args: TailArgs,
) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    // The schema is at this binary's version (checked above), so connecting migrates nothing.
    let store = PgEventStore::connect_with(
        url,
        PgConfig::default().with_schema(schema).with_pool_size(2),
    )
    .await?;
    let mut after = match args.from_position {
        None => store.log_head().await?,
        Some(position) => start_at(&client, schema, position).await?,
    };
    let from = args.from_position.unwrap_or(0);
    crate::warn(format_args!(
        "following schema `{schema}` after position {} (Ctrl-C to stop)",
        after.position.0
    ));
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    let mut printer = Printer {
        args: &args,
        from,
        json: out.json,
        printed: 0,
    };
    if printer.done() {
        return Ok(());
    }
    loop {
        let page = tokio::select! {
            page = store.read_all(after, PAGE) => page,
            _ = &mut stop => return Ok(()),
        };
        let events = match page {
            Ok(events) => events,
            Err(error) => match error.corrupt_checkpoint() {
                // An event the library cannot read back (its metadata or its stream id): it
                // is printed as stored, and the tail reads on after it.
                Some(next) => {
                    crate::warn(format_args!("{error}; printed as stored"));
                    after = next;
                    if let Some(event) = read::stored_event(&client, schema, next).await? {
                        printer.print(&event)?;
                        if printer.done() {
                            return Ok(());
                        }
                    }
                    continue;
                }
                None => return Err(error.into()),
            },
        };
        if events.is_empty() {
            tokio::select! {
                woken = store.wait_for_events(after, WAIT) => { woken?; }
                _ = &mut stop => return Ok(()),
            }
            continue;
        }
        for event in &events {
            after = event.checkpoint();
            printer.print(&event_json(event))?;
            if printer.done() {
                return Ok(());
            }
        }
    }
}

/// Prints the events that pass the filters, and counts them against `--limit`.
struct Printer<'a> {
    /// The filters and the limit.
    args: &'a TailArgs,
    /// Events below this position are left out.
    from: u64,
    /// One JSON document per line instead of a line of text.
    json: bool,
    /// Events printed so far.
    printed: u64,
}

impl Printer<'_> {
    /// Prints `event` (as [`event_json`] makes it) if it passes the filters.
    fn print(&mut self, event: &Value) -> std::io::Result<()> {
        let position = event["position"].as_u64().unwrap_or(0);
        if position < self.from || !self.args.matches(event) {
            return Ok(());
        }
        let stdout = std::io::stdout();
        let mut w = stdout.lock();
        if self.json {
            writeln!(w, "{event}")?;
        } else {
            writeln!(
                w,
                "{position:>10}  {}@{}  {} v{}  {}",
                text(&event["stream_id"]),
                event["version"],
                text(&event["event_type"]),
                event["schema_version"],
                event["payload"]
            )?;
        }
        w.flush()?;
        self.printed += 1;
        Ok(())
    }

    /// Whether `--limit` events have been printed.
    fn done(&self) -> bool {
        self.args.limit.is_some_and(|limit| self.printed >= limit)
    }
}

impl TailArgs {
    /// Whether `event` passes the `--type` and `--stream-prefix` filters.
    fn matches(&self, event: &Value) -> bool {
        let field = |name: &str| event[name].as_str().unwrap_or_default();
        (self.types.is_empty() || self.types.iter().any(|t| t == field("event_type")))
            && self
                .stream_prefix
                .as_deref()
                .is_none_or(|prefix| field("stream_id").starts_with(prefix))
    }
}

/// The checkpoint just before the first event, in the log's order, at or after `position`.
/// Events after it with lower positions (from transactions that committed late) are left
/// out by the caller's position filter.
async fn start_at(
    client: &tokio_postgres::Client,
    schema: &str,
    position: u64,
) -> Result<Checkpoint, CliError> {
    let wanted = i64::try_from(position)
        .map_err(|_| CliError::Usage(format!("--from-position {position} is too large")))?;
    let row = client
        .query_opt(
            &format!(
                // `e.tx_id`: the column, not the output `tx_id::text`, which sorts as text.
                "SELECT e.tx_id::text, e.position FROM {}.events e WHERE e.position >= $1
                 ORDER BY e.tx_id, e.position LIMIT 1",
                quoted(schema)
            ),
            &[&wanted],
        )
        .await?;
    let Some(row) = row else {
        // Nothing there yet: everything written from now on sorts after the head.
        return Ok(Checkpoint::START);
    };
    let tx_id: String = row.try_get(0)?;
    let first: i64 = row.try_get(1)?;
    let commit: u64 = tx_id
        .parse()
        .map_err(|_| CliError::Usage(format!("unexpected transaction id `{tx_id}`")))?;
    Ok(Checkpoint {
        commit,
        position: Position(u64::try_from(first - 1).unwrap_or(0)),
    })
}

/// One event as a JSON line, with the fields `annals stream --json` prints.
fn event_json(event: &RecordedEvent) -> Value {
    let body =
        |text: &str| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    json!({
        "position": event.position.0,
        "tx_id": event.commit.to_string(),
        "stream_id": event.stream_id.as_str(),
        "version": event.version.0,
        "event_id": event.event_id.to_string(),
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "payload": body(event.payload.as_str()),
        "metadata": serde_json::to_value(&event.metadata).unwrap_or(Value::Null),
        "recorded_at": rfc3339(event.recorded_at),
    })
}

/// A time as RFC 3339 in UTC with microseconds (`2026-01-31T23:59:59.123456Z`).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc_3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_micros(1_709_210_096_789_012);
        assert_eq!(rfc3339(leap), "2024-02-29T12:34:56.789012Z");
    }
}
