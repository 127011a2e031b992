//! The whole-log verbs: `check` and `stats`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::db;
use crate::error::CliError;
use crate::scan::scan;
use crate::schema::text;
use crate::table::Table;
use crate::Output;

/// `annals check`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The event types the application knows, comma-separated: stored types missing from
    /// this list are findings.
    #[arg(long, value_delimiter = ',')]
    expect_types: Option<Vec<String>>,
}

/// A stored row whose body or metadata is not JSON.
#[derive(Debug, serde::Serialize)]
struct BadBody {
    position: i64,
    event_id: String,
    field: &'static str,
    error: String,
}

/// `annals check`: reads every event; returns whether anything is wrong.
pub(crate) async fn check(
    url: &str,
    schema: &str,
    out: Output,
    args: CheckArgs,
) -> Result<bool, CliError> {
    let client = db::open(url, schema).await?;
    let mut histogram: BTreeMap<(String, i32), u64> = BTreeMap::new();
    let mut bad = Vec::new();
    let read = scan(
        &client,
        schema,
        "event_id::text, event_type, schema_version, payload::text, metadata::text",
        |row| {
            let position: i64 = row.try_get(1)?;
            let event_id: String = row.try_get(2)?;
            let event_type: String = row.try_get(3)?;
            let schema_version: i32 = row.try_get(4)?;
            for (field, index) in [("payload", 5), ("metadata", 6)] {
                let body: String = row.try_get(index)?;
                if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&body) {
                    bad.push(BadBody {
                        position,
                        event_id: event_id.clone(),
                        field,
                        error: error.to_string(),
                    });
                }
            }
            *histogram.entry((event_type, schema_version)).or_default() += 1;
            Ok(())
        },
    )
    .await?;
    let unexpected: Vec<String> = match &args.expect_types {
        None => Vec::new(),
        Some(expected) => {
            let expected: BTreeSet<&str> = expected.iter().map(|t| t.trim()).collect();
            let stored: BTreeSet<&str> = histogram.keys().map(|(t, _)| t.as_str()).collect();
            stored
                .into_iter()
                .filter(|t| !expected.contains(t))
                .map(str::to_owned)
                .collect()
        }
    };
    let ok = bad.is_empty() && unexpected.is_empty();
    let types: Vec<_> = histogram
        .iter()
        .map(|((event_type, version), count)| {
            json!({"event_type": event_type, "schema_version": version, "events": count})
        })
        .collect();
    let document = json!({
        "ok": ok,
        "events": read,
        "types": types,
        "not_json": bad,
        "unexpected_types": unexpected,
    });
    out.print(&document, |w| {
        let mut table = Table::new(vec!["TYPE", "SCHEMA", "EVENTS"]);
        for t in &types {
            table.row(vec![
                text(&t["event_type"]),
                text(&t["schema_version"]),
                text(&t["events"]),
            ]);
        }
        table.write(w)?;
        for b in &bad {
            writeln!(
                w,
                "not JSON: {} of event {} at position {}: {}",
                b.field, b.event_id, b.position, b.error
            )?;
        }
        for t in &unexpected {
            writeln!(w, "stored type not in --expect-types: {t}")?;
        }
        if ok {
            writeln!(w, "ok: {read} events read")
        } else {
            writeln!(w, "FAILED: {read} events read")
        }
    })?;
    Ok(ok)
}

/// `annals stats`: events per type and per day, and the size of each table and index.
pub(crate) async fn stats(url: &str, schema: &str, out: Output) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    let read = scan(
        &client,
        schema,
        "event_type, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        |row| {
            let event_type: String = row.try_get(2)?;
            let day: String = row.try_get(3)?;
            *per_type.entry(event_type).or_default() += 1;
            *per_day.entry(day).or_default() += 1;
            Ok(())
        },
    )
    .await?;
    let rows = client
        .query(
            "SELECT c.relname, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END,
                    pg_total_relation_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'p')
             ORDER BY c.relkind DESC, c.relname",
            &[&schema],
        )
        .await?;
    let mut sizes = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let bytes: i64 = row.try_get(2)?;
        sizes.push(json!({"name": name, "kind": kind, "bytes": bytes}));
    }
    let document = json!({
        "events": read,
        "per_type": per_type,
        "per_day": per_day,
        "sizes": sizes,
    });
    out.print(&document, |w| {
        writeln!(w, "{read} events")?;
        let mut table = Table::new(vec!["TYPE", "EVENTS"]);
        for (event_type, count) in &per_type {
            table.row(vec![event_type.clone(), count.to_string()]);
        }
        table.write(w)?;
        writeln!(w)?;
        let mut table = Table::new(vec!["DAY (UTC)", "EVENTS"]);
        for (day, count) in &per_day {
            table.row(vec![day.clone(), count.to_string()]);
        }
        table.write(w)?;
        writeln!(w)?;
        let mut table = Table::new(vec!["RELATION", "KIND", "BYTES (WITH INDEXES, TOAST)"]);
        for s in &sizes {
            table.row(vec![text(&s["name"]), text(&s["kind"]), text(&s["bytes"])]);
        }
        table.write(w)
    })
}
