//! Runs every contender on every workload that applies to it, and collects the rows.

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use annals_memory::MemoryEventStore;
use annals_postgres::{PgConfig, PgEventStore};
use sqlx::{Pool, Postgres};

use crate::bank::{self, median, Bank, Counts};
use crate::contenders::annals::{AnnalsBank, Loads};
use crate::contenders::{cqrs, disintegrate, esrs, raw};
use crate::report::{Kind, Outcome, Row, Workload, RAW_COMMAND_LOOP, RAW_LOAD, RAW_MULTI_ROW};
use crate::server::Server;
use crate::Result;

/// Connections in each contender's pool: `PgEventStore`'s default, given to the peers too.
const POOL_SIZE: usize = 16;

/// The rows measured so far, and how much work each measurement does.
pub(crate) struct Suite {
    counts: Counts,
    /// The workloads to run; empty runs them all.
    workloads: Vec<Workload>,
    rows: Vec<Row>,
}

impl Suite {
    /// An empty suite.
    pub(crate) fn new(counts: Counts, workloads: Vec<Workload>) -> Self {
        Suite {
            counts,
            workloads,
            rows: Vec::new(),
        }
    }

    /// Whether `workload` runs.
    fn runs(&self, workload: Workload) -> bool {
        self.workloads.is_empty() || self.workloads.contains(&workload)
    }

    /// The rows, ours first, then the peers', then raw SQL's, in workload order.
    pub(crate) fn into_rows(mut self) -> Vec<Row> {
        let rank = |row: &Row| {
            let workload = Workload::ALL
                .iter()
                .position(|w| *w == row.workload)
                .unwrap_or(usize::MAX);
            let kind = match row.kind {
                Kind::Ours => 0,
                Kind::Peer => 1,
                Kind::Raw => 2,
            };
            (workload, kind)
        };
        self.rows.sort_by_key(rank);
        self.rows
    }

    /// Runs `measure` `counts.runs` times (it gets the run's index) and records the median;
    /// an error is recorded as the row's reason instead.
    async fn measure<F, Fut>(
        &mut self,
        workload: Workload,
        contender: &str,
        kind: Kind,
        mut measure: F,
    ) where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<f64>>,
    {
        if !self.runs(workload) {
            return;
        }
        let mut values = Vec::with_capacity(self.counts.runs);
        for run in 0..self.counts.runs {
            match measure(run).await {
                Ok(value) => {
                    eprintln!("  {workload:?} {contender}: run {}: {value:.3}", run + 1);
                    values.push(value);
                }
                Err(error) => {
                    eprintln!("  {workload:?} {contender}: failed: {error}");
                    self.unavailable(workload, contender, kind, &error.to_string());
                    return;
                }
            }
        }
        let outcome = match median(&mut values) {
            Some(value) => Outcome::Measured(value),
            None => Outcome::Unavailable("no runs".to_owned()),
        };
        self.rows.push(Row {
            workload,
            contender: contender.to_owned(),
            kind,
            outcome,
        });
    }

    fn unavailable(&mut self, workload: Workload, contender: &str, kind: Kind, reason: &str) {
        if !self.runs(workload) {
            return;
        }
        self.rows.push(Row {
            workload,
            contender: contender.to_owned(),
            kind,
            outcome: Outcome::Unavailable(reason.to_owned()),
        });
    }

    /// W1, W2, W3 and W4 for a contender on PostgreSQL. W2's writer `i` uses
    /// `writers[i % writers.len()]`.
    async fn all_workloads<B: Bank>(
        &mut self,
        contender: &str,
        kind: Kind,
        bank: &Arc<B>,
        writers: &[Arc<B>],
    ) {
        let counts = self.counts;
        let counts = &counts;
        self.measure(Workload::W1, contender, kind, |run| {
            bank::w1(bank, counts, run)
        })
        .await;
        self.measure(Workload::W2, contender, kind, |run| {
            bank::w2(writers, counts, run)
        })
        .await;
        self.loads(
            contender,
            kind,
            &**bank,
            &**bank,
            Workload::W3Long,
            Workload::W3Short,
        )
        .await;
        self.measure(Workload::W4, contender, kind, |run| {
            bank::w4(bank, counts, run)
        })
        .await;
    }

    /// W3: streams written through `writer`, loaded through `loader` (the same bank, or
    /// one that loads differently over the same store).
    async fn loads<W: Bank, L: Bank>(
        &mut self,
        contender: &str,
        kind: Kind,
        writer: &W,
        loader: &L,
        long_workload: Workload,
        short_workload: Workload,
    ) {
        if !self.runs(long_workload) && !self.runs(short_workload) {
            return;
        }
        let counts = self.counts;
        let counts = &counts;
        match bank::w3_setup(writer, counts).await {
            Ok((long, short)) => {
                let (long, short) = (&long, &short);
                self.measure(long_workload, contender, kind, |_| {
                    bank::w3(loader, long, counts)
                })
                .await;
                self.measure(short_workload, contender, kind, |_| {
                    bank::w3(loader, short, counts)
                })
                .await;
            }
            Err(error) => {
                let reason = format!("cannot write the W3 streams: {error}");
                eprintln!("  W3 {contender}: {reason}");
                self.unavailable(long_workload, contender, kind, &reason);
                self.unavailable(short_workload, contender, kind, &reason);
            }
        }
    }

    /// Records `reason` for every PostgreSQL workload of a contender that could not start.
    fn could_not_start(&mut self, contender: &str, kind: Kind, reason: &str) {
        eprintln!("  {contender}: cannot start: {reason}");
        for workload in [
            Workload::W1,
            Workload::W2,
            Workload::W3Long,
            Workload::W3Short,
            Workload::W4,
        ] {
            self.unavailable(workload, contender, kind, reason);
        }
    }

    /// This framework on PostgreSQL: with its default cache (W1, W2, W4, and W3 warm), with
    /// no cache (W1, W2), and W3 cold (a fresh repository with no cache per load).
    pub(crate) async fn annals(&mut self, server: &mut Server) {
        const NAME: &str = "annals (default cache)";
        eprintln!("annals");
        let store = match pg_store(server, "annals").await {
            Ok(store) => store,
            Err(error) => return self.could_not_start(NAME, Kind::Ours, &error.to_string()),
        };
        let bank = Arc::new(AnnalsBank::new(
            store.clone(),
            annals::DEFAULT_CACHE_CAPACITY,
            Loads::Repository,
        ));
        let counts = self.counts;
        let counts = &counts;
        let writers = [Arc::clone(&bank)];
        let (bank, writers) = (&bank, &writers[..]);
        self.measure(Workload::W1, NAME, Kind::Ours, |run| {
            bank::w1(bank, counts, run)
        })
        .await;
        self.measure(Workload::W2, NAME, Kind::Ours, |run| {
            bank::w2(writers, counts, run)
        })
        .await;
        let cold = AnnalsBank::new(store, 0, Loads::Cold);
        const COLD: &str = "annals, cold: fresh Repository, no cache";
        const WARM: &str = "annals, warm: cached state, no replay (not comparable)";
        let w3 = if self.runs(Workload::W3Long) || self.runs(Workload::W3Short) {
            bank::w3_setup(&**bank, counts).await.map(Some)
        } else {
            Ok(None)
        };
        match w3 {
            Ok(None) => {}
            Ok(Some((long, short))) => {
                let (long, short) = (&long, &short);
                for (name, loader) in [(COLD, &cold), (WARM, &**bank)] {
                    self.measure(Workload::W3Long, name, Kind::Ours, |_| {
                        bank::w3(loader, long, counts)
                    })
                    .await;
                    self.measure(Workload::W3Short, name, Kind::Ours, |_| {
                        bank::w3(loader, short, counts)
                    })
                    .await;
                }
            }
            Err(error) => {
                let reason = format!("cannot write the W3 streams: {error}");
                for name in [COLD, WARM] {
                    self.unavailable(Workload::W3Long, name, Kind::Ours, &reason);
                    self.unavailable(Workload::W3Short, name, Kind::Ours, &reason);
                }
            }
        }
        self.measure(Workload::W4, NAME, Kind::Ours, |run| {
            bank::w4(bank, counts, run)
        })
        .await;

        const NO_CACHE: &str = "annals (cache off)";
        eprintln!("annals, cache off");
        match pg_store(server, "annals_nocache").await {
            Ok(store) => {
                let bank = Arc::new(AnnalsBank::new(store, 0, Loads::Repository));
                let writers = [Arc::clone(&bank)];
                let (bank, writers) = (&bank, &writers[..]);
                self.measure(Workload::W1, NO_CACHE, Kind::Ours, |run| {
                    bank::w1(bank, counts, run)
                })
                .await;
                self.measure(Workload::W2, NO_CACHE, Kind::Ours, |run| {
                    bank::w2(writers, counts, run)
                })
                .await;
            }
            Err(error) => {
                self.unavailable(Workload::W1, NO_CACHE, Kind::Ours, &error.to_string());
                self.unavailable(Workload::W2, NO_CACHE, Kind::Ours, &error.to_string());
            }
        }
    }

    /// A peer on PostgreSQL: `connect` gets the URL of a fresh database named `database` and
    /// returns the bank, its pool (closed afterwards) and the row label.
    async fn peer<B, F, Fut>(&mut self, server: &mut Server, name: &str, database: &str, connect: F)
    where
        B: Bank,
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(B, Pool<Postgres>, &'static str)>>,
    {
        eprintln!("{name}");
        let started = match server.fresh_database(database).await {
            Ok(url) => connect(url).await,
            Err(error) => Err(error),
        };
        match started {
            Ok((bank, pool, label)) => {
                let bank = Arc::new(bank);
                self.all_workloads(label, Kind::Peer, &bank, &[Arc::clone(&bank)])
                    .await;
                pool.close().await;
            }
            Err(error) => self.could_not_start(name, Kind::Peer, &error.to_string()),
        }
    }

    /// cqrs-es with postgres-es, esrs, and disintegrate with disintegrate-postgres.
    pub(crate) async fn peers(&mut self, server: &mut Server) {
        const CQRS: &str = "cqrs-es + postgres-es";
        self.peer(server, CQRS, "cqrs", |url| async move {
            let (bank, pool) = cqrs::postgres(&url, POOL_SIZE as u32).await?;
            Ok((bank, pool, CQRS))
        })
        .await;
        self.peer(server, "esrs", "esrs", |url| async move {
            let (bank, pool) = esrs::postgres(&url, POOL_SIZE as u32).await?;
            Ok((bank, pool, "esrs"))
        })
        .await;
        const DISINTEGRATE: &str = "disintegrate + disintegrate-postgres";
        self.peer(server, DISINTEGRATE, "disintegrate", |url| async move {
            let (bank, pool, shim) = disintegrate::postgres(&url, POOL_SIZE as u32).await?;
            let label = if shim {
                "disintegrate + disintegrate-postgres (2, 2a)"
            } else {
                "disintegrate + disintegrate-postgres (2)"
            };
            Ok((bank, pool, label))
        })
        .await;
    }

    /// eventually with eventually-postgres, run as a child process: it cannot be built with
    /// the others (see `eventually/Cargo.toml`). The child runs the same workloads, from the
    /// same source file, and prints one result line per workload.
    pub(crate) async fn eventually(&mut self, server: &mut Server) {
        const NAME: &str = "eventually + eventually-postgres (1)";
        eprintln!("{NAME}: built and run apart, for its old serde");
        let output = async {
            let url = server.fresh_database("eventually").await?;
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = tokio::process::Command::new(cargo)
                .args(["run", "--release", "--quiet", "--manifest-path"])
                .arg(dir.join("eventually").join("Cargo.toml"))
                .arg("--")
                .args([url.as_str(), self.counts.name])
                .env("CARGO_TARGET_DIR", dir.join("target").join("eventually"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .output()
                .await?;
            let stdout = String::from_utf8(output.stdout)?;
            if !output.status.success() && stdout.trim().is_empty() {
                return Err(format!("its runner failed ({})", output.status).into());
            }
            Ok::<_, crate::BoxError>(stdout)
        }
        .await;
        let stdout = match output {
            Ok(stdout) => stdout,
            Err(error) => return self.could_not_start(NAME, Kind::Peer, &error.to_string()),
        };
        for workload in [
            Workload::W1,
            Workload::W2,
            Workload::W3Long,
            Workload::W3Short,
            Workload::W4,
        ] {
            let label = format!("{workload:?} ");
            let line = stdout
                .lines()
                .find_map(|line| line.strip_prefix(label.as_str()));
            let outcome = match line.map(|rest| rest.split_once(' ').unwrap_or((rest, ""))) {
                Some(("ok", value)) => match value.trim().parse::<f64>() {
                    Ok(value) => Outcome::Measured(value),
                    Err(_) => Outcome::Unavailable(format!("unreadable result `{value}`")),
                },
                Some(("error", reason)) => Outcome::Unavailable(reason.to_owned()),
                _ => Outcome::Unavailable("the runner printed no result".to_owned()),
            };
            if !self.runs(workload) {
                continue;
            }
            self.rows.push(Row {
                workload,
                contender: NAME.to_owned(),
                kind: Kind::Peer,
                outcome,
            });
        }
    }

    /// Raw SQL: the command loop (W1, W2, W3), INSERT only (W1, W2), multi-row INSERT and
    /// COPY (W4).
    pub(crate) async fn raw(&mut self, server: &mut Server) {
        eprintln!("raw SQL");
        let started = async {
            let url = server.fresh_database("raw").await?;
            raw::create_schema(&url, raw::Body::Jsonb).await?;
            let bank = Arc::new(raw::RawBank::connect(&url, raw::Body::Jsonb).await?);
            let mut writers = Vec::with_capacity(self.counts.w2_writers);
            for _ in 0..self.counts.w2_writers {
                writers.push(Arc::new(
                    raw::RawBank::connect(&url, raw::Body::Jsonb).await?,
                ));
            }
            Ok::<_, crate::BoxError>((url, bank, writers))
        }
        .await;
        let (url, bank, writers) = match started {
            Ok(started) => started,
            Err(error) => return self.could_not_start("raw SQL", Kind::Raw, &error.to_string()),
        };
        let counts = self.counts;
        let counts = &counts;
        let (url, bank, writers) = (url.as_str(), &bank, &writers[..]);
        self.measure(Workload::W1, RAW_COMMAND_LOOP, Kind::Raw, |run| {
            bank::w1(bank, counts, run)
        })
        .await;
        self.measure(
            Workload::W1,
            "raw SQL: INSERT only, no load",
            Kind::Raw,
            |run| raw::insert_only_w1(url, counts, run),
        )
        .await;
        self.measure(Workload::W2, RAW_COMMAND_LOOP, Kind::Raw, |run| {
            bank::w2(writers, counts, run)
        })
        .await;
        self.measure(
            Workload::W2,
            "raw SQL: INSERT only, no load",
            Kind::Raw,
            |run| raw::insert_only_w2(url, counts, run),
        )
        .await;
        self.loads(
            RAW_LOAD,
            Kind::Raw,
            &**bank,
            &**bank,
            Workload::W3Long,
            Workload::W3Short,
        )
        .await;
        self.measure(Workload::W4, RAW_MULTI_ROW, Kind::Raw, |run| {
            raw::multi_row_insert(url, counts, run)
        })
        .await;
        self.measure(
            Workload::W4,
            "raw SQL: binary COPY, 100 rows per tx",
            Kind::Raw,
            |run| raw::copy(url, counts, run),
        )
        .await;
        self.raw_json(server).await;
    }

    /// Raw SQL's W3 and W4 again with a `json` payload column, as annals stores bodies:
    /// what the column type alone is worth. Not a reference.
    async fn raw_json(&mut self, server: &mut Server) {
        const LOAD: &str = "raw SQL, json column: SELECT + decode (not the reference)";
        const MULTI_ROW: &str = "raw SQL, json column: multi-row INSERT (not the reference)";
        eprintln!("raw SQL, json column");
        let started = async {
            let url = server.fresh_database("raw_json").await?;
            raw::create_schema(&url, raw::Body::Json).await?;
            let bank = raw::RawBank::connect(&url, raw::Body::Json).await?;
            Ok::<_, crate::BoxError>((url, bank))
        }
        .await;
        let (url, bank) = match started {
            Ok(started) => started,
            Err(error) => {
                let reason = error.to_string();
                for (workload, name) in [
                    (Workload::W3Long, LOAD),
                    (Workload::W3Short, LOAD),
                    (Workload::W4, MULTI_ROW),
                ] {
                    self.unavailable(workload, name, Kind::Raw, &reason);
                }
                return;
            }
        };
        let counts = self.counts;
        let counts = &counts;
        self.loads(
            LOAD,
            Kind::Raw,
            &bank,
            &bank,
            Workload::W3Long,
            Workload::W3Short,
        )
        .await;
        self.measure(Workload::W4, MULTI_ROW, Kind::Raw, |run| {
            raw::multi_row_insert(&url, counts, run)
        })
        .await;
    }

    /// In process: annals-memory against cqrs-es's `MemStore` (W1 and W3).
    pub(crate) async fn memory(&mut self) {
        eprintln!("memory stores");
        let counts = self.counts;
        let counts = &counts;

        let store = MemoryEventStore::new();
        let bank = Arc::new(AnnalsBank::new(
            store.clone(),
            annals::DEFAULT_CACHE_CAPACITY,
            Loads::Repository,
        ));
        let name = "annals-memory (default cache)";
        let cached = &bank;
        self.measure(Workload::MemW1, name, Kind::Ours, |run| {
            bank::w1(cached, counts, run)
        })
        .await;
        let cold = AnnalsBank::new(store, 0, Loads::Cold);
        self.loads(
            "annals-memory, cold: fresh Repository, no cache",
            Kind::Ours,
            &*bank,
            &cold,
            Workload::MemW3Long,
            Workload::MemW3Short,
        )
        .await;
        let uncached = &Arc::new(AnnalsBank::new(
            MemoryEventStore::new(),
            0,
            Loads::Repository,
        ));
        self.measure(
            Workload::MemW1,
            "annals-memory (cache off)",
            Kind::Ours,
            |run| bank::w1(uncached, counts, run),
        )
        .await;

        // MemStore prints a line to stdout on every load and every commit: it is part of its
        // cost, but sent to /dev/null so the terminal's speed does not count.
        let name = "cqrs-es MemStore (3)";
        let silenced = gag::Gag::stdout();
        if let Err(error) = &silenced {
            eprintln!("  cannot silence stdout ({error}); MemStore's lines follow");
        }
        let mem_store = &Arc::new(cqrs::memory());
        self.measure(Workload::MemW1, name, Kind::Peer, |run| {
            bank::w1(mem_store, counts, run)
        })
        .await;
        self.loads(
            name,
            Kind::Peer,
            &**mem_store,
            &**mem_store,
            Workload::MemW3Long,
            Workload::MemW3Short,
        )
        .await;
        drop(silenced);
    }
}

/// A `PgEventStore` in a fresh database of `server`.
async fn pg_store(server: &mut Server, name: &str) -> Result<PgEventStore> {
    let url = server.fresh_database(name).await?;
    let config = PgConfig::default().with_pool_size(POOL_SIZE);
    Ok(PgEventStore::connect_with(&url, config).await?)
}
