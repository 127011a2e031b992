//! The results table: rows, ratios, and its Markdown form.

use std::fmt::Write as _;

use crate::bank::Counts;

/// One line of the table's workload column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// One writer, one event per command.
    W1,
    /// Concurrent writers on disjoint accounts.
    W2,
    /// Loading the long stream.
    W3Long,
    /// Loading the short stream.
    W3Short,
    /// Commands appending many events each.
    W4,
    /// W1 in process, on memory stores.
    MemW1,
    /// Loading the long stream from a memory store.
    MemW3Long,
    /// Loading the short stream from a memory store.
    MemW3Short,
}

/// What a value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Throughput of commands: higher is better.
    CommandsPerSecond,
    /// Throughput of events: higher is better.
    EventsPerSecond,
    /// Time of one load: lower is better.
    MsPerLoad,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::CommandsPerSecond => "commands/s",
            Unit::EventsPerSecond => "events/s",
            Unit::MsPerLoad => "ms/load",
        }
    }

    /// How much faster `value` is than `reference` (above 1: faster), whatever the unit.
    fn speedup(self, value: f64, reference: f64) -> f64 {
        match self {
            Unit::MsPerLoad => reference / value,
            Unit::CommandsPerSecond | Unit::EventsPerSecond => value / reference,
        }
    }
}

/// The contender whose row is the raw baseline of a workload.
pub(crate) const RAW_COMMAND_LOOP: &str = "raw SQL: command loop (SELECT + decode, INSERT)";
/// The raw W3 baseline.
pub(crate) const RAW_LOAD: &str = "raw SQL: SELECT + decode";
/// The raw W4 baseline.
pub(crate) const RAW_MULTI_ROW: &str = "raw SQL: multi-row INSERT, 100 rows per tx";

impl Workload {
    /// Every workload, in table order.
    pub(crate) const ALL: [Workload; 8] = [
        Workload::W1,
        Workload::W2,
        Workload::W3Long,
        Workload::W3Short,
        Workload::W4,
        Workload::MemW1,
        Workload::MemW3Long,
        Workload::MemW3Short,
    ];

    /// The workloads `--workloads` means by `name`: W1 and W3 include their in-memory forms.
    pub(crate) fn named(name: &str) -> Option<&'static [Workload]> {
        match name {
            "W1" | "w1" => Some(&[Workload::W1, Workload::MemW1]),
            "W2" | "w2" => Some(&[Workload::W2]),
            "W3" | "w3" => Some(&[
                Workload::W3Long,
                Workload::W3Short,
                Workload::MemW3Long,
                Workload::MemW3Short,
            ]),
            "W4" | "w4" => Some(&[Workload::W4]),
            _ => None,
        }
    }

    fn label(self, counts: &Counts) -> String {
        match self {
            Workload::W1 => format!(
                "W1: {} commands, 1 writer, {} accounts",
                counts.w1_commands, counts.w1_accounts
            ),
            Workload::W2 => format!(
                "W2: {} writers x {} commands, disjoint accounts",
                counts.w2_writers, counts.w2_commands_per_writer
            ),
            Workload::W3Long => format!("W3: load a {}-event stream", counts.w3_long),
            Workload::W3Short => format!("W3: load a {}-event stream", counts.w3_short),
            Workload::W4 => format!(
                "W4: {} commands x {} events",
                counts.w4_commands, counts.w4_events_per_command
            ),
            Workload::MemW1 => format!("W1 in memory: {} commands", counts.w1_commands),
            Workload::MemW3Long => format!("W3 in memory: {}-event stream", counts.w3_long),
            Workload::MemW3Short => format!("W3 in memory: {}-event stream", counts.w3_short),
        }
    }

    /// The unit of the workload's values.
    pub(crate) fn unit(self) -> Unit {
        match self {
            Workload::W1 | Workload::W2 | Workload::MemW1 => Unit::CommandsPerSecond,
            Workload::W4 => Unit::EventsPerSecond,
            Workload::W3Long | Workload::W3Short | Workload::MemW3Long | Workload::MemW3Short => {
                Unit::MsPerLoad
            }
        }
    }

    /// The contender whose value the "vs raw" ratio divides by (none in memory).
    fn baseline(self) -> Option<&'static str> {
        match self {
            Workload::W1 | Workload::W2 => Some(RAW_COMMAND_LOOP),
            Workload::W3Long | Workload::W3Short => Some(RAW_LOAD),
            Workload::W4 => Some(RAW_MULTI_ROW),
            Workload::MemW1 | Workload::MemW3Long | Workload::MemW3Short => None,
        }
    }
}

/// Whose row it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// This framework.
    Ours,
    /// A peer framework: the "vs best peer" ratio compares with the best of these.
    Peer,
    /// Hand-written SQL.
    Raw,
}

/// A measured value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The median of the runs.
    Measured(f64),
    /// The contender could not run the workload.
    Unavailable(String),
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// The workload.
    pub(crate) workload: Workload,
    /// Who ran it (and how, when it matters).
    pub(crate) contender: String,
    /// Ours, a peer's, or raw SQL.
    pub(crate) kind: Kind,
    /// The value.
    pub(crate) outcome: Outcome,
}

/// Where and how the table was measured: its heading.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// `nproc`, the CPU model, the memory.
    pub(crate) machine: String,
    /// The PostgreSQL version.
    pub(crate) postgres: String,
    /// `fsync`, `synchronous_commit` and where the server came from.
    pub(crate) server: String,
    /// The UTC date of the run.
    pub(crate) date: String,
    /// The command that reproduces the table.
    pub(crate) command: String,
    /// The exact versions of the contenders.
    pub(crate) versions: String,
    /// The counts, to tell a `--quick` table apart.
    pub(crate) counts: Counts,
    /// Wall time of the whole run.
    pub(crate) wall: String,
}

/// Formats a value with a precision that suits its size.
fn value(v: f64) -> String {
    if v >= 100.0 {
        group_thousands(v.round() as u64)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{r:.2}x"),
        None => "-".to_owned(),
    }
}

fn measured(rows: &[Row], workload: Workload, contender: &str) -> Option<f64> {
    rows.iter()
        .filter(|row| row.workload == workload && row.contender == contender)
        .find_map(|row| match row.outcome {
            Outcome::Measured(v) => Some(v),
            Outcome::Unavailable(_) => None,
        })
}

/// The best peer value of `workload`, if any peer has one.
fn best_peer(rows: &[Row], workload: Workload) -> Option<f64> {
    let unit = workload.unit();
    rows.iter()
        .filter(|row| row.workload == workload && row.kind == Kind::Peer)
        .filter_map(|row| match row.outcome {
            Outcome::Measured(v) => Some(v),
            Outcome::Unavailable(_) => None,
        })
        .max_by(|a, b| unit.speedup(*a, *b).total_cmp(&1.0))
}

/// The table as Markdown (the terminal prints the same text).
pub(crate) fn markdown(setting: &Setting, rows: &[Row]) -> String {
    let mut out = String::new();
    let quick = if setting.counts.runs == 1 {
        " (`--quick`: small counts, 1 run; not for publishing)"
    } else {
        ""
    };
    let _ = writeln!(out, "# annals against its peers and raw SQL{quick}\n");
    let _ = writeln!(out, "- Machine: {}", setting.machine);
    let _ = writeln!(out, "- PostgreSQL: {}", setting.postgres);
    let _ = writeln!(out, "- Server settings: {}", setting.server);
    let _ = writeln!(out, "- Date: {}", setting.date);
    let _ = writeln!(out, "- Reproduce: `{}`", setting.command);
    let _ = writeln!(out, "- Versions: {}", setting.versions);
    let _ = writeln!(
        out,
        "- Each value is the median of {} run(s); a W3 run is itself the median of {} loads. \
         Wall time of the whole run: {}.",
        setting.counts.runs, setting.counts.w3_loads, setting.wall
    );
    let _ = writeln!(
        out,
        "- Ratios are speed ratios, above 1 meaning faster, in every unit (for ms/load, the \
         reference's time divided by this row's). \"vs raw\" is against the raw baseline of the \
         workload (W1, W2: the raw command loop; W3: raw SELECT + decode; W4: raw multi-row \
         INSERT); \"vs best peer\" against the fastest of cqrs-es, esrs, disintegrate and \
         eventually on that workload.\n"
    );
    let _ = writeln!(
        out,
        "| workload | contender | value | unit | vs raw | vs best peer |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---:|---:|");
    for workload in Workload::ALL {
        let unit = workload.unit();
        let raw = workload
            .baseline()
            .and_then(|name| measured(rows, workload, name));
        let best = best_peer(rows, workload);
        for row in rows.iter().filter(|row| row.workload == workload) {
            let (shown, vs_raw, vs_peer) = match &row.outcome {
                Outcome::Measured(v) => (
                    value(*v),
                    ratio(raw.map(|r| unit.speedup(*v, r))),
                    ratio(best.map(|b| unit.speedup(*v, b))),
                ),
                Outcome::Unavailable(reason) => (
                    format!("not run: {}", reason.replace('|', "/").replace('\n', " ")),
                    "-".to_owned(),
                    "-".to_owned(),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                workload.label(&setting.counts),
                row.contender,
                shown,
                unit.label(),
                vs_raw,
                vs_peer
            );
        }
    }
    out.push_str(NOTES);
    out
}

/// What the table's labels and numbers mean, beyond the heading.
const NOTES: &str = "
Notes:

- Every contender runs the same workloads from one source file (`src/bank.rs`) against its own
  fresh database on the same server, through its documented API, with a pool of 16
  connections where it takes a pool. Setup (opening the accounts, writing the W3 streams) is
  not timed. Every contender first proves the domain rule: a withdrawal past the balance is
  refused.
- annals: \"default cache\" is `Repository::new` as a user gets it (states of recent
  aggregates kept, only newer events read before a command); \"cache off\" is
  `with_cache_capacity(0)`. W3 \"cold\" is the honest load: a fresh `Repository` with no cache
  per load, replaying the stream. W3 \"warm\" loads through the repository that wrote the
  stream, so it only checks for newer events: shown for what the cache does, not a replay.
- (1) eventually-postgres 0.2 cannot be built with the others: it pulls refinery-core 0.3,
  which needs serde < 1.0.119, while cqrs-es 0.5 and disintegrate 4 need serde >= 1.0.219. It
  is built apart (`eventually/`, its own lock with serde 1.0.118) and run as a child process
  on the same workloads. It is built on tokio 0.2 and tokio-postgres 0.5 (its connection runs
  on a tokio 0.2 runtime thread) and takes one client (`Arc<Client>`): all its writers share
  one connection, by its design.
- (2) disintegrate appends in SERIALIZABLE transactions and reports a serialization failure
  as a concurrency error, even between writers on different accounts (PostgreSQL's predicate
  locks cover pages, not one account's rows): the harness retries the decision, up to 64
  times with a random backoff of up to 64 ms, as annals's repository retries a version
  conflict (16 times by default).
- (2a) disintegrate-postgres 4 needs PostgreSQL 16: its `event_store_begin_epoch()` uses a
  hexadecimal integer literal (`0xFFFFFFFF`), a syntax error before 16. On an older server the
  harness runs disintegrate's own migration with function bodies unchecked, then replaces that
  one function with the same body written with the literal in decimal (`4294967295`).
- (3) cqrs-es's `MemStore` prints a line to stdout on every load and every commit; the
  harness sends stdout to /dev/null while it runs, so the terminal's speed does not count.
- Raw SQL: one connection per writer, prepared statements, autocommit (one transaction per
  statement), the table `events(position bigserial primary key, stream_id, version,
  event_type, payload jsonb, unique(stream_id, version))`. The command loop SELECTs the stream,
  decodes each row with serde_json into the state, decides, and INSERTs one row whose
  version the unique key checks. \"INSERT only\" skips the load. The rows \"json column\"
  run W3 and W4 again on the same table with `payload json`, the type annals stores
  bodies in (kept as written, no conversion on reads; `jsonb` is rebuilt into text on every
  read): they show what the column type alone is worth, and are not the reference.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: Workload, contender: &str, kind: Kind, v: f64) -> Row {
        Row {
            workload,
            contender: contender.to_owned(),
            kind,
            outcome: Outcome::Measured(v),
        }
    }

    #[test]
    fn best_peer_is_the_fastest_in_either_direction() {
        let rows = [
            row(Workload::W1, "a", Kind::Peer, 900.0),
            row(Workload::W1, "b", Kind::Peer, 400.0),
            row(Workload::W1, "ours", Kind::Ours, 5_000.0),
            row(Workload::W3Long, "a", Kind::Peer, 40.0),
            row(Workload::W3Long, "b", Kind::Peer, 25.0),
        ];
        assert_eq!(best_peer(&rows, Workload::W1), Some(900.0));
        assert_eq!(best_peer(&rows, Workload::W3Long), Some(25.0));
        assert_eq!(best_peer(&rows, Workload::W2), None);
    }

    #[test]
    fn ratios_are_speedups() {
        assert_eq!(Unit::CommandsPerSecond.speedup(2_000.0, 1_000.0), 2.0);
        assert_eq!(Unit::MsPerLoad.speedup(10.0, 20.0), 2.0);
    }

    #[test]
    fn values_read_well() {
        assert_eq!(value(12_345.4), "12,345");
        assert_eq!(value(12.34), "12.3");
        assert_eq!(value(1.234), "1.23");
        assert_eq!(value(0.01234), "0.0123");
    }
}
