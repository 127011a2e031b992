//! The projections' verbs: `projections` and `projection reset`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use crate::db::{self, quoted};
use crate::error::CliError;
use crate::schema::text;
use crate::table::Table;
use crate::Output;

/// `annals projection`'s actions.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProjectionAction {
    /// Deletes the projection's checkpoint, so its next run reads the log from the start.
    ///
    /// The read model is not touched: clear it too, or the projection applies every event
    /// a second time. A runner at work finds its checkpoint gone at its next batch and
    /// stops with an error rather than writing over the reset. Asks for confirmation on a
    /// terminal; elsewhere it refuses (exit code 2) without `--yes`.
    #[command(after_help = crate::EXIT_CODES)]
    Reset {
        /// The projection's (checkpoint's) name.
        name: String,
        /// Resets without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// `annals projections`: each checkpoint, its lag in events and when it was last saved.
pub(crate) async fn list(url: &str, schema: &str, out: Output) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let q = quoted(schema);
    // The lag counts the events after the checkpoint in the global log's order,
    // `(tx_id, position)`, down the primary key.
    let rows = client
        .query(
            &format!(
                "SELECT c.name, c.commit, c.position, {},
                        (SELECT count(*) FROM {q}.events e
                         WHERE (e.tx_id, e.position) > (c.commit::text::xid8, c.position))
                 FROM {q}.checkpoints c ORDER BY c.name",
                db::rfc3339("c.updated_at")
            ),
            &[],
        )
        .await?;
    let mut projections = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0)?;
        let commit: i64 = row.try_get(1)?;
        let position: i64 = row.try_get(2)?;
        let updated_at: Option<String> = row.try_get(3)?;
        let lag: i64 = row.try_get(4)?;
        projections.push(json!({
            "name": name,
            "commit": commit,
            "position": position,
            "lag": lag,
            "updated_at": updated_at,
        }));
    }
    let document = json!({ "projections": projections });
    out.print(&document, |w| {
        let mut table = Table::new(vec!["NAME", "COMMIT", "POSITION", "LAG", "UPDATED"]);
        for p in &projections {
            table.row(vec![
                text(&p["name"]),
                text(&p["commit"]),
                text(&p["position"]),
                text(&p["lag"]),
                text(&p["updated_at"]),
            ]);
        }
        table.write(w)
    })
}

/// `annals projection <action>`.
pub(crate) async fn act(
    url: &str,
    schema: &str,
    out: Output,
    action: ProjectionAction,
) -> Result<(), CliError> {
    match action {
        ProjectionAction::Reset { name, yes } => reset(url, schema, out, &name, yes).await,
    }
}

/// Deletes `name`'s checkpoint, once confirmed.
async fn reset(
    url: &str,
    schema: &str,
    out: Output,
    name: &str,
    yes: bool,
) -> Result<(), CliError> {
    let client = db::open(url, schema).await?;
    let q = quoted(schema);
    let position: i64 = client
        .query_opt(
            &format!("SELECT position FROM {q}.checkpoints WHERE name = $1"),
            &[&name],
        )
        .await?
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "no projection `{name}` has a checkpoint; `annals projections` lists them"
            ))
        })?
        .try_get(0)?;
    if !yes {
        confirm(name, position)?;
    }
    let deleted = client
        .execute(
            &format!("DELETE FROM {q}.checkpoints WHERE name = $1"),
            &[&name],
        )
        .await?;
    let document = json!({ "reset": name, "was_at_position": position, "deleted": deleted == 1 });
    out.print(&document, |w| {
        writeln!(
            w,
            "projection `{name}` reset (was at position {position}); its next run reads the log from the start"
        )
    })
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirm(name: &str, position: i64) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Refused(format!(
            "refusing to reset projection `{name}` without confirmation: pass --yes"
        )));
    }
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "reset projection `{name}` (at position {position}) to the start of the log? [y/N] "
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(CliError::Refused(format!("projection `{name}` not reset"))),
    }
}
