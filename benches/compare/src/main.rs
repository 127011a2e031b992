//! Benchmarks annals against its peers (cqrs-es, esrs, disintegrate, eventually) and
//! raw tokio-postgres, on one PostgreSQL server, and prints one table.
//!
//! Run with: `cargo run --release --manifest-path benches/compare/Cargo.toml`
//! (`-- --sync-commit-off` for the second server configuration, `-- --quick` to try it out).
//! See README.md beside this crate.

mod bank;
mod contenders;
mod report;
mod server;
mod setting;
mod suite;

use std::time::Instant;

use crate::bank::Counts;
use crate::report::{Setting, Workload};
use crate::server::Server;
use crate::suite::Suite;

/// Any error: the harness reports it and stops (or, inside a workload, records it in the row).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The harness's result type.
pub(crate) type Result<T, E = BoxError> = std::result::Result<T, E>;

const USAGE: &str = "usage: cargo run --release --manifest-path benches/compare/Cargo.toml -- [--sync-commit-off] [--quick] [--only GROUP,..] [--workloads W,..]

  --sync-commit-off  run the server with synchronous_commit off (fsync stays on);
                     writes RESULTS-sync-commit-off.md instead of RESULTS.md
  --quick            small counts and one run, to try the harness out;
                     writes target/RESULTS-quick.md
  --only GROUP,..    run only these groups (annals, peers, eventually, raw, memory),
                     to iterate on one; writes target/RESULTS-only.md
  --workloads W,..   run only these workloads (W1, W2, W3, W4; W1 and W3 include their
                     in-memory forms), to iterate on one; writes target/RESULTS-only.md

Without DATABASE_URL a throwaway PostgreSQL cluster is started from the installed binaries
(fsync on); with it, that server is used, and each contender gets a database of its own there
(the user needs CREATEDB), dropped at the end.";

/// The command-line flags.
#[derive(Debug, Default)]
struct Options {
    sync_commit_off: bool,
    quick: bool,
    /// The groups to run; empty runs them all.
    only: Vec<String>,
    /// The workloads to run; empty runs them all.
    workloads: Vec<Workload>,
}

/// The groups of contenders `--only` can name.
const GROUPS: [&str; 5] = ["annals", "peers", "eventually", "raw", "memory"];

impl Options {
    /// Whether `group` runs.
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

fn options() -> Result<Option<Options>> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sync-commit-off" => options.sync_commit_off = true,
            "--quick" => options.quick = true,
            "--only" => {
                let groups = args
                    .next()
                    .ok_or_else(|| format!("`--only` needs a list of groups\n\n{USAGE}"))?;
                for group in groups.split(',') {
                    if !GROUPS.contains(&group) {
                        return Err(format!("unknown group `{group}`\n\n{USAGE}").into());
                    }
                    options.only.push(group.to_owned());
                }
            }
            "--workloads" => {
                let names = args
                    .next()
                    .ok_or_else(|| format!("`--workloads` needs a list\n\n{USAGE}"))?;
                for name in names.split(',') {
                    let named = Workload::named(name)
                        .ok_or_else(|| format!("unknown workload `{name}`\n\n{USAGE}"))?;
                    options.workloads.extend_from_slice(named);
                }
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}").into()),
        }
    }
    Ok(Some(options))
}

fn main() -> Result<()> {
    let Some(options) = options()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let started = Instant::now();
    // Started before the runtime: starting a cluster blocks on initdb and pg_ctl.
    let server = Server::start(options.sync_commit_off)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options, server, started))
}

async fn run(options: Options, mut server: Server, started: Instant) -> Result<()> {
    let counts = if options.quick {
        Counts::QUICK
    } else {
        Counts::FULL
    };
    let (postgres, settings) = server.describe().await?;
    eprintln!("PostgreSQL {postgres}: {settings}");

    let mut suite = Suite::new(counts, options.workloads.clone());
    if options.runs("annals") {
        suite.annals(&mut server).await;
    }
    if options.runs("peers") {
        suite.peers(&mut server).await;
    }
    if options.runs("eventually") {
        suite.eventually(&mut server).await;
    }
    if options.runs("raw") {
        suite.raw(&mut server).await;
    }
    if options.runs("memory") {
        suite.memory().await;
    }
    server.drop_databases().await?;

    let mut command = "cargo run --release --manifest-path benches/compare/Cargo.toml".to_owned();
    let mut flags = Vec::new();
    if options.sync_commit_off {
        flags.push("--sync-commit-off");
    }
    if options.quick {
        flags.push("--quick");
    }
    let only = options.only.join(",");
    if !only.is_empty() {
        flags.push("--only");
        flags.push(&only);
    }
    let mut workloads: Vec<&str> = Vec::new();
    for name in ["W1", "W2", "W3", "W4"] {
        if Workload::named(name)
            .is_some_and(|named| named.iter().any(|w| options.workloads.contains(w)))
        {
            workloads.push(name);
        }
    }
    let workloads = workloads.join(",");
    if !workloads.is_empty() {
        flags.push("--workloads");
        flags.push(&workloads);
    }
    if !flags.is_empty() {
        command = format!("{command} -- {}", flags.join(" "));
    }
    let setting = Setting {
        machine: setting::machine(),
        postgres,
        server: settings,
        date: setting::utc_now(),
        command,
        versions: setting::versions(),
        counts,
        wall: format!("{:.0} s", started.elapsed().as_secs_f64()),
    };
    let table = report::markdown(&setting, &suite.into_rows());
    println!("{table}");

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = if !options.only.is_empty() || !options.workloads.is_empty() {
        dir.join("target").join("RESULTS-only.md")
    } else if options.quick {
        dir.join("target").join("RESULTS-quick.md")
    } else if options.sync_commit_off {
        dir.join("RESULTS-sync-commit-off.md")
    } else {
        dir.join("RESULTS.md")
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&path, table).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
