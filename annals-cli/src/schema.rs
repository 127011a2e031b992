//! The schema's verbs: `migrate` and `status`.

use annals_postgres::{PgConfig, PgEventStore};
use serde_json::json;
use tokio_postgres::Client;

use crate::db::{self, quoted, KNOWN_SCHEMA_VERSION};
use crate::error::CliError;
use crate::table::Table;
use crate::Output;

/// The migrations `schema_migrations` lists, as `(version, name)`.
async fn applied(client: &Client, schema: &str) -> Result<Vec<(i32, String)>, CliError> {
    if db::schema_version(client, schema).await?.is_none() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT version, name FROM {}.schema_migrations ORDER BY version",
                quoted(schema)
            ),
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// `annals migrate`: applies the migrations the schema lacks, and prints which.
pub(crate) async fn migrate(url: &str, schema: &str, out: Output) -> Result<(), CliError> {
    db::validate_schema(schema)?;
    let client = db::connect(url).await?;
    if let Some(found) = db::schema_version(&client, schema).await? {
        db::check_version(Some(found), schema)?;
    }
    let before = applied(&client, schema).await?;
    // The store applies the migrations as it connects, in one transaction under a lock.
    let store = PgEventStore::connect_with(
        url,
        PgConfig::default().with_schema(schema).with_pool_size(1),
    )
    .await?;
    drop(store);
    let after = applied(&client, schema).await?;
    let new: Vec<&(i32, String)> = after.iter().filter(|m| !before.contains(m)).collect();
    let version = after.last().map_or(0, |(version, _)| *version);
    let document = json!({
        "schema": schema,
        "applied": new.iter().map(|(version, name)| json!({"version": version, "name": name})).collect::<Vec<_>>(),
        "schema_version": version,
    });
    out.print(&document, |w| {
        if new.is_empty() {
            writeln!(w, "schema `{schema}` is up to date (version {version})")
        } else {
            for (version, name) in &new {
                writeln!(w, "applied {version} {name}")?;
            }
            writeln!(w, "schema `{schema}` is at version {version}")
        }
    })
}

/// `annals status`: where the schema stands.
pub(crate) async fn status(url: &str, schema: &str, out: Output) -> Result<(), CliError> {
    db::validate_schema(schema)?;
    let client = db::connect(url).await?;
    let version = db::check_version(db::schema_version(&client, schema).await?, schema)?;
    let q = quoted(schema);
    let row = client
        .query_one(
            // Every stream's first event has version 1, so counting those counts the streams
            // in the same pass, without the sort or hash a `count(DISTINCT ..)` needs.
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE version = 1), max(position)
                 FROM {q}.events"
            ),
            &[],
        )
        .await?;
    let events: i64 = row.try_get(0)?;
    let streams: i64 = row.try_get(1)?;
    let last_position: Option<i64> = row.try_get(2)?;
    // The transactions a reader of the global log waits for, as the store's horizon counts
    // them: those holding a lock stronger than a read on the events table (an append, a
    // migration) or on the checkpoints table (a projection batch, which may append through
    // its transaction), in this database. Any other transaction, however long, is passed over.
    let holding = client
        .query(
            &format!(
                "SELECT DISTINCT a.pid, {}, a.state, left(a.query, 120)
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'relation'
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.relation IN (to_regclass(format('%I.events', $1::text)),
                                      to_regclass(format('%I.checkpoints', $1::text)))
                   AND l.mode NOT IN ('AccessShareLock', 'RowShareLock')
                   AND l.granted AND a.pid <> pg_backend_pid()
                 ORDER BY a.pid",
                db::rfc3339("a.xact_start")
            ),
            &[&schema],
        )
        .await?;
    let mut transactions = Vec::new();
    for row in &holding {
        let pid: i32 = row.try_get(0)?;
        let started: Option<String> = row.try_get(1)?;
        let state: Option<String> = row.try_get(2)?;
        let query: Option<String> = row.try_get(3)?;
        transactions.push(json!({"pid": pid, "started": started, "state": state, "query": query}));
    }
    let projections = projections(&client, schema, last_position).await?;
    let document = json!({
        "schema": schema,
        "schema_version": version,
        "known_schema_version": KNOWN_SCHEMA_VERSION,
        "events": events,
        "streams": streams,
        "last_position": last_position,
        "holding_readers_back": transactions,
        "projections": projections,
    });
    out.print(&document, |w| {
        writeln!(w, "schema          {schema}")?;
        let note = if version < KNOWN_SCHEMA_VERSION {
            " (run `annals migrate`)"
        } else {
            ""
        };
        writeln!(
            w,
            "schema version  {version} (this binary knows {KNOWN_SCHEMA_VERSION}){note}"
        )?;
        writeln!(w, "events          {events}")?;
        writeln!(w, "streams         {streams}")?;
        let last = last_position.map_or_else(|| "-".to_owned(), |p| p.to_string());
        writeln!(w, "last position   {last}")?;
        if transactions.is_empty() {
            writeln!(w, "holding readers back: none")?;
        } else {
            writeln!(w, "holding readers back:")?;
            let mut table = Table::new(vec!["PID", "STARTED", "STATE", "QUERY"]);
            for t in &transactions {
                table.row(vec![
                    text(&t["pid"]),
                    text(&t["started"]),
                    text(&t["state"]),
                    text(&t["query"]),
                ]);
            }
            table.write(w)?;
        }
        if projections.is_empty() {
            writeln!(w, "projections: none")
        } else {
            writeln!(w, "projections:")?;
            let mut table = Table::new(vec!["NAME", "POSITION", "LAG", "UPDATED"]);
            for p in &projections {
                table.row(vec![
                    text(&p["name"]),
                    text(&p["position"]),
                    text(&p["lag"]),
                    text(&p["updated_at"]),
                ]);
            }
            table.write(w)
        }
    })
}

/// The checkpoints, each with its lag: the last position minus the checkpoint's position.
pub(crate) async fn projections(
    client: &Client,
    schema: &str,
    last_position: Option<i64>,
) -> Result<Vec<serde_json::Value>, CliError> {
    let rows = client
        .query(
            &format!(
                "SELECT name, position, {} FROM {}.checkpoints ORDER BY name",
                db::rfc3339("updated_at"),
                quoted(schema)
            ),
            &[],
        )
        .await?;
    let mut projections = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0)?;
        let position: i64 = row.try_get(1)?;
        let updated_at: Option<String> = row.try_get(2)?;
        let lag = last_position.map_or(0, |last| (last - position).max(0));
        projections.push(json!({
            "name": name,
            "position": position,
            "lag": lag,
            "updated_at": updated_at,
        }));
    }
    Ok(projections)
}

/// A JSON value as a table cell: strings without quotes, null as `-`.
pub(crate) fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
