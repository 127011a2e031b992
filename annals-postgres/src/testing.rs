//! A test harness (feature `testing`): a throwaway PostgreSQL cluster, and a fresh store per
//! test.
//!
//! When `DATABASE_URL` is set, tests use that server. Otherwise the first test of a process
//! starts one cluster from the installed PostgreSQL binaries (`/usr/lib/postgresql/*/bin`,
//! highest version first, then `PATH`): `initdb` in a new temporary directory, then `pg_ctl`
//! on a free port of 127.0.0.1, as the `postgres` OS user when the tests run as root. A small
//! supervisor process stops the cluster and removes its directory once the test process has
//! exited, however it exits. Every store from [`fresh_store`] lives in a schema of its own.
//!
//! With no PostgreSQL binaries installed, the harness panics with a message saying how to
//! install them: PostgreSQL tests never pass by skipping.
//!
//! ```no_run
//! # async fn demo() {
//! let store = annals_postgres::testing::fresh_store().await;
//! # }
//! ```

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use uuid::Uuid;

use crate::{PgConfig, PgEventStore};

/// What to do when no PostgreSQL is installed.
const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) were not found in \
     /usr/lib/postgresql/*/bin nor on PATH. The PostgreSQL tests start a throwaway cluster from \
     them: install them with `apt-get install -y postgresql` (Debian, Ubuntu), or set \
     DATABASE_URL to a server where the tests may create schemas.";

/// The harness could not provide a database.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL test harness: {0}")]
pub struct ClusterError(String);

/// Server settings of a throwaway cluster started with [`TestCluster::start_with`].
///
/// The default is the tests' setting, durability off, which makes commits cheap; a benchmark
/// that wants a real server's cost of a commit turns both on ([`ClusterOptions::DURABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `fsync`: whether the server forces its writes to disk. `full_page_writes`, which only
    /// protects against torn pages on a crash, follows it.
    pub fsync: bool,
    /// `synchronous_commit`: whether a commit waits until its WAL is flushed to disk.
    pub synchronous_commit: bool,
}

impl ClusterOptions {
    /// The tests' settings: `fsync` and `synchronous_commit` off. Fast, and not crash safe.
    pub const FOR_TESTS: ClusterOptions = ClusterOptions {
        fsync: false,
        synchronous_commit: false,
    };

    /// A real server's defaults: `fsync` and `synchronous_commit` on.
    pub const DURABLE: ClusterOptions = ClusterOptions {
        fsync: true,
        synchronous_commit: true,
    };

    /// The server options (`postgres -c ...`) these settings stand for.
    fn server_args(&self) -> String {
        let on = |flag: bool| if flag { "on" } else { "off" };
        format!(
            "-c fsync={fsync} -c synchronous_commit={sync} -c full_page_writes={fsync}",
            fsync = on(self.fsync),
            sync = on(self.synchronous_commit),
        )
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions::FOR_TESTS
    }
}

/// A PostgreSQL server for tests: either the one `DATABASE_URL` names, or a throwaway cluster
/// this process started.
#[derive(Debug)]
pub struct TestCluster {
    url: String,
    local: Option<Local>,
}

/// A cluster started from the installed binaries.
#[derive(Debug)]
struct Local {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    options: ClusterOptions,
    /// Whether dropping the [`TestCluster`] stops it (not for the shared one, which the
    /// supervisor stops after the process exits).
    owned: bool,
}

impl TestCluster {
    /// The cluster shared by every test of this process: `DATABASE_URL`'s server, or a
    /// throwaway cluster started on first use.
    ///
    /// # Panics
    ///
    /// When no server can be had, for example when PostgreSQL is not installed; the message
    /// says how to install it.
    #[allow(clippy::panic, reason = "a test harness fails the test that needs it")]
    pub fn shared() -> &'static TestCluster {
        static SHARED: OnceLock<Result<TestCluster, ClusterError>> = OnceLock::new();
        let cluster = SHARED.get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(TestCluster { url, local: None }),
            _ => TestCluster::start_local(false, ClusterOptions::FOR_TESTS),
        });
        match cluster {
            Ok(cluster) => cluster,
            Err(error) => panic!("{error}"),
        }
    }

    /// Starts a throwaway cluster of the caller's own (whatever `DATABASE_URL` says), for a
    /// test that restarts or otherwise disturbs its server. Dropping it stops it and removes
    /// its files.
    pub fn start() -> Result<TestCluster, ClusterError> {
        TestCluster::start_local(true, ClusterOptions::FOR_TESTS)
    }

    /// Starts a throwaway cluster of the caller's own, like [`start`](TestCluster::start),
    /// with the server settings `options` (kept across [`restart`](TestCluster::restart)).
    ///
    /// ```no_run
    /// use annals_postgres::testing::{ClusterOptions, TestCluster};
    ///
    /// // A server that pays for its commits like a production one.
    /// let cluster = TestCluster::start_with(ClusterOptions::DURABLE)?;
    /// println!("{}", cluster.url());
    /// # Ok::<(), annals_postgres::testing::ClusterError>(())
    /// ```
    pub fn start_with(options: ClusterOptions) -> Result<TestCluster, ClusterError> {
        TestCluster::start_local(true, options)
    }

    /// The URL of the cluster's `postgres` database, as its superuser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the server has logged so far, for a cluster this process started (`None` for
    /// `DATABASE_URL`'s server): a test that turns on `auto_explain` reads the plans there.
    pub fn server_log(&self) -> Option<String> {
        let local = self.local.as_ref()?;
        fs::read_to_string(local.dir.join("server.log")).ok()
    }

    /// A new store in a schema of its own (applying the migrations).
    pub async fn store(&self, config: PgConfig) -> Result<PgEventStore, crate::PgError> {
        PgEventStore::connect_with(&self.url, config).await
    }

    /// Restarts the server (`pg_ctl restart -m fast`): every connection is closed. Blocks
    /// until the server accepts connections again.
    pub fn restart(&self) -> Result<(), ClusterError> {
        let local = self.local.as_ref().ok_or_else(|| {
            ClusterError("cannot restart a server given by DATABASE_URL".to_owned())
        })?;
        local.pg_ctl(&["-m", "fast", "restart"], true)
    }

    fn start_local(owned: bool, options: ClusterOptions) -> Result<TestCluster, ClusterError> {
        let bin = find_binaries().ok_or_else(|| ClusterError(INSTALL_HINT.to_owned()))?;
        let as_postgres = running_as_root();
        // The postgres user must be able to reach the directory: under /tmp it can.
        let base = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "annals-pg-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        if dir.to_string_lossy().contains(['\'', ' ', '"', '\\']) {
            return Err(ClusterError(format!(
                "the temporary directory {} holds characters the harness does not quote",
                dir.display()
            )));
        }
        fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        let mut local = Local {
            bin,
            dir,
            port: 0,
            as_postgres,
            options,
            owned,
        };
        // From here on the supervisor removes the directory, even if starting fails.
        local.supervise()?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&local.dir))?;
        }
        let mut initdb = local.command("initdb");
        initdb
            .arg("-D")
            .arg(local.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        run(&mut initdb)?;
        // A port free now may be taken before the server binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            local.port = free_port()?;
            match local.pg_ctl(&["start"], true) {
                Ok(()) => {
                    return Ok(TestCluster {
                        url: format!("postgres://postgres@127.0.0.1:{}/postgres", local.port),
                        local: Some(local),
                    })
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError("the server did not start".to_owned())))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(local) = self.local.as_ref().filter(|local| local.owned) {
            let _ = local.pg_ctl(&["-m", "immediate", "stop"], false);
            let _ = fs::remove_dir_all(&local.dir);
        }
    }
}

impl Local {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running the binary `name`, as the postgres user when we are root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs `pg_ctl` with the server options (by default fsync off: for tests only).
    fn pg_ctl(&self, action: &[&str], with_options: bool) -> Result<(), ClusterError> {
        let mut command = self.command("pg_ctl");
        command
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "120"]);
        if with_options {
            command.arg("-o").arg(format!(
                "-c listen_addresses=127.0.0.1 -k {} -p {} {} -c max_connections=200",
                self.dir.display(),
                self.port,
                self.options.server_args(),
            ));
        }
        command.args(action);
        run(&mut command).map_err(|ClusterError(message)| {
            let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            ClusterError(format!("{message}\nserver log:\n{}", tail.join("\n")))
        })
    }

    /// Starts a process that waits for this one to exit, then stops the cluster and removes
    /// its directory: statics are never dropped, so the shared cluster needs it.
    fn supervise(&self) -> Result<(), ClusterError> {
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {as_user}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests does not stop the cleanup.
            .process_group(0)
            .spawn()
            .map_err(|e| ClusterError(format!("cannot start the cleanup process: {e}")))?;
        Ok(())
    }
}

/// Runs `command` to completion; its output goes to a file, never to a pipe a server child
/// could hold open.
fn run(command: &mut Command) -> Result<(), ClusterError> {
    let out = std::env::temp_dir().join(format!("annals-pg-cmd-{}", Uuid::new_v4().simple()));
    let file = File::create(&out).map_err(|e| io_error("create", &out, e))?;
    let err = file.try_clone().map_err(|e| io_error("open", &out, e))?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| ClusterError(format!("cannot run {command:?}: {e}")));
    let output = fs::read_to_string(&out).unwrap_or_default();
    let _ = fs::remove_file(&out);
    let status = status?;
    if status.success() {
        Ok(())
    } else {
        Err(ClusterError(format!(
            "{command:?} failed ({status}):\n{output}"
        )))
    }
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> ClusterError {
    ClusterError(format!("cannot {action} {}: {error}", path.display()))
}

/// The directory holding `initdb` and `pg_ctl`: the highest version under
/// `/usr/lib/postgresql`, else the first on `PATH`.
fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| has_both(dir))
        .map(|dir| {
            fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                .filter(|real| has_both(real))
                .unwrap_or(dir)
        })
}

/// Whether this process runs as root: PostgreSQL refuses to, so the harness runs it as the
/// `postgres` user then.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ClusterError(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| ClusterError(format!("cannot find a free port: {e}")))
}

/// A configuration with a new, unique schema name (`test_<uuid>`), so tests sharing a server
/// never see each other's data, and a pool of 8 connections; the rest is
/// [`PgConfig::default`]'s. Other tests' transactions on the shared server hold no reader of
/// this schema's log back: only transactions writing its events do.
///
/// The schemas are not dropped after a test: a throwaway cluster goes away whole when the test
/// process ends, but on `DATABASE_URL`'s server every test leaves its `test_<uuid>` schema
/// behind (drop them with `DROP SCHEMA ... CASCADE`, or point `DATABASE_URL` at a database
/// kept for tests).
pub fn fresh_config() -> PgConfig {
    PgConfig::default()
        .with_schema(format!("test_{}", Uuid::new_v4().simple()))
        .with_pool_size(8)
}

/// A new, empty store on the shared test cluster, in a schema of its own.
///
/// # Panics
///
/// When no server can be had (see [`TestCluster::shared`]) or the store cannot connect.
pub async fn fresh_store() -> PgEventStore {
    fresh_store_with(fresh_config()).await
}

/// A new store with `config` on the shared test cluster.
///
/// # Panics
///
/// When no server can be had (see [`TestCluster::shared`]) or the store cannot connect.
#[allow(clippy::panic, reason = "a test harness fails the test that needs it")]
pub async fn fresh_store_with(config: PgConfig) -> PgEventStore {
    match TestCluster::shared().store(config).await {
        Ok(store) => store,
        Err(error) => panic!("cannot connect a store to the test cluster: {error}"),
    }
}
