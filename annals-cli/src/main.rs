//! `annals`, an operator's command-line tool for the PostgreSQL event stores of
//! [annals](https://github.com/annals-rs/annals): migrate a schema, see where it stands,
//! read its streams and events, reset projections, and
//! check and measure the whole log, or follow it live, without any of the application's types.
//!
//! ```text
//! export DATABASE_URL=postgres://ops@db.internal/bank
//! annals migrate                      # applies the migrations the schema lacks
//! annals status                       # schema version, events, streams, projections' lag
//! annals --schema billing status --json
//! annals streams --prefix account- --limit 50
//! annals stream account-42 --at 7     # its events up to version 7
//! annals stream account-42 --at 2026-01-31T23:59:59Z
//! annals event 0190d6c5-8f1e-7c1a-9d2b-3f4e5a6b7c8d
//! annals projections                  # checkpoints and their lag in events
//! annals projection reset balances --yes
//! annals check --expect-types account.opened,account.deposited
//! annals stats
//! annals tail --type account.opened --stream-prefix account- --json
//! ```
//!
//! The database comes from `DATABASE_URL` or `--database-url`, the schema from `--schema`
//! (default `annals`, validated as annals-postgres does). Every verb prints a table by
//! default, or one JSON document with `--json`
//! (`tail`: one JSON document per line). Verbs that read the whole log (`check`,
//! `stats`) draw a progress bar on stderr when it is a terminal.
//!
//! # Exit codes
//!
//! - `0`: done, nothing wrong.
//! - `1`: a finding: what was asked for is not stored, or a check failed.
//! - `2`: a usage error, or an operation refused (a `projection reset` that is not
//!   confirmed: without `--yes` and with no terminal to ask on).
//! - `3`: the database cannot be reached, the schema is missing or newer than this binary, or
//!   a statement failed.

mod db;
mod error;
mod projections;
mod read;
mod scan;
mod schema;
mod table;
mod tail;
mod whole_log;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "Exit codes: 0 ok, 1 findings (not found, failed check), \
2 usage error or refused, 3 connection or database error";

/// An operator's tool for annals PostgreSQL event stores.
#[derive(Debug, Parser)]
#[command(name = "annals", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The database, as `postgres://user:password@host:port/database`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// The schema that holds the store's tables.
    #[arg(long, default_value = "annals", global = true)]
    schema: String,
    /// Prints one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Verb {
    /// Applies the migrations the schema lacks, and prints which.
    #[command(after_help = EXIT_CODES)]
    Migrate,
    /// The schema version, events, streams, last position, transactions holding readers back
    /// (those writing the events or checkpoints table, which readers of the global log wait
    /// for) and the projections' lag (the last position minus the checkpoint's).
    #[command(after_help = EXIT_CODES)]
    Status,
    /// Lists streams with their event counts and last versions, by stream id.
    #[command(after_help = EXIT_CODES)]
    Streams(read::StreamsArgs),
    /// One stream's events with their metadata.
    #[command(after_help = EXIT_CODES)]
    Stream(read::StreamArgs),
    /// One event, by its id.
    #[command(after_help = EXIT_CODES)]
    Event(read::EventArgs),
    /// The projections' checkpoints, their lag in events and when they were last saved.
    #[command(after_help = EXIT_CODES)]
    Projections,
    /// Reads every event: is each body and metadata JSON, which types and schema versions
    /// are stored, are they all expected. Exit code 1 when something is wrong.
    #[command(after_help = EXIT_CODES)]
    Check(whole_log::CheckArgs),
    /// Events per type and per day, and the size of each table and index.
    #[command(after_help = EXIT_CODES)]
    Stats,
    /// Follows the global log live, from its head or `--from-position`, until Ctrl-C or
    /// `--limit`; `--json` prints one JSON document per line. An event the library cannot
    /// read back (its metadata, or its stream id) is printed as stored, with a warning.
    #[command(after_help = EXIT_CODES)]
    Tail(tail::TailArgs),
    /// Acts on one projection's checkpoint.
    #[command(after_help = EXIT_CODES)]
    Projection {
        /// What to do.
        #[command(subcommand)]
        action: projections::ProjectionAction,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            warn(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // A reader that went away (`annals streams | head`) took all it wanted.
        Err(CliError::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            warn(format_args!("error: {error}"));
            error.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let url = cli.database_url.ok_or_else(|| {
        CliError::Usage("no database given: set DATABASE_URL or pass --database-url".to_owned())
    })?;
    let out = Output { json: cli.json };
    match cli.verb {
        Verb::Migrate => schema::migrate(&url, &cli.schema, out).await,
        Verb::Status => schema::status(&url, &cli.schema, out).await,
        Verb::Streams(args) => read::streams(&url, &cli.schema, out, args).await,
        Verb::Stream(args) => read::stream(&url, &cli.schema, out, args).await,
        Verb::Event(args) => read::event(&url, &cli.schema, out, args).await,
        Verb::Projections => projections::list(&url, &cli.schema, out).await,
        Verb::Projection { action } => projections::act(&url, &cli.schema, out, action).await,
        Verb::Check(args) => {
            let ok = whole_log::check(&url, &cli.schema, out, args).await?;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Verb::Tail(args) => tail::tail(&url, &cli.schema, out, args).await,
        Verb::Stats => whole_log::stats(&url, &cli.schema, out).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a line to stderr. A closed stderr is no reason to panic: the exit code still
/// tells what happened.
fn warn(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// How a verb prints its result.
#[derive(Debug, Clone, Copy)]
struct Output {
    /// One JSON document instead of a table.
    json: bool,
}

impl Output {
    /// Prints `document` as JSON, or `human` as text.
    fn print(
        self,
        document: &serde_json::Value,
        human: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), CliError> {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, document).map_err(std::io::Error::from)?;
            writeln!(out)?;
        } else {
            human(&mut out)?;
        }
        out.flush()?;
        Ok(())
    }
}
