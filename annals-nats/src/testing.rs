//! A test harness (feature `testing`): throwaway `nats-server` processes with JetStream, one
//! node or a cluster, on free ports of 127.0.0.1, each with a temporary store directory that
//! is removed when the server is dropped.
//!
//! A server picks its own client port (`--port -1`) and the harness reads it from the ports
//! file the server writes once it listens, so no other process can take the port between
//! choosing it and binding it, and a started server is always this process's own. A
//! cluster's route ports must be known before its nodes start: they are chosen together, and
//! a cluster whose node finds its route port taken is started again on new ports.
//!
//! The binary is `nats-server` on `PATH` (or `/usr/sbin/nats-server`, where Debian's package
//! puts it). Without it the harness fails with a message saying how to install it: NATS tests
//! never pass by skipping.
//!
//! ```no_run
//! use annals_nats::testing::NatsServer;
//!
//! let server = NatsServer::start()?;
//! println!("{}", server.url());
//! # Ok::<(), annals_nats::testing::HarnessError>(())
//! ```

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// What to do when `nats-server` is not installed.
const INSTALL_HINT: &str = "nats-server was not found on PATH nor at /usr/sbin/nats-server. The \
     NATS tests start throwaway servers from it: install it with `apt-get install -y nats-server` \
     (Debian, Ubuntu) or from https://github.com/nats-io/nats-server/releases.";

/// How long a server may take to accept connections after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many times a cluster is started on new route ports when one of them was taken.
const CLUSTER_ATTEMPTS: usize = 5;

/// The harness could not start or stop a server.
#[derive(Debug, thiserror::Error)]
#[error("NATS test harness: {0}")]
pub struct HarnessError(String);

/// One `nats-server` with JetStream, started by this process. Dropping it kills the server and
/// removes its directory.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    name: String,
    dir: PathBuf,
    /// The client port: `None` until the server first listens, then kept for
    /// [`start_again`](NatsServer::start_again).
    port: Option<u16>,
    /// The port other nodes route to, for a node of a cluster.
    cluster_port: Option<u16>,
    /// The other nodes' route URLs, for a node of a cluster.
    routes: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a single server with JetStream on a free port.
    pub fn start() -> Result<NatsServer, HarnessError> {
        let mut server = NatsServer::prepare(&find_binary()?, "annals-test", None, Vec::new())?;
        server.run()?;
        Ok(server)
    }

    fn prepare(
        binary: &Path,
        name: &str,
        cluster_port: Option<u16>,
        routes: Vec<String>,
    ) -> Result<NatsServer, HarnessError> {
        let dir = std::env::temp_dir().join(format!(
            "annals-nats-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        Ok(NatsServer {
            binary: binary.to_owned(),
            name: name.to_owned(),
            dir,
            port: None,
            cluster_port,
            routes,
            child: None,
        })
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        // A server is only handed out once it has listened, so its port is known.
        format!("nats://127.0.0.1:{}", self.port.unwrap_or_default())
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the server process is running (as far as this process knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server at once (`SIGKILL`), as a crash would; its store directory stays, so
    /// [`start_again`](NatsServer::start_again) brings it back with its data.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .map_err(|e| HarnessError(format!("cannot kill {}: {e}", self.name)))?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts a killed server again on the same port, with the same store directory.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Err(HarnessError(format!("{} is already running", self.name)));
        }
        self.run()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn run(&mut self) -> Result<(), HarnessError> {
        let log_path = self.dir.join("server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io_error("open", &log_path, e))?;
        let err_log = log
            .try_clone()
            .map_err(|e| io_error("open", &log_path, e))?;
        let ports_dir = self.dir.join("ports");
        fs::create_dir_all(&ports_dir).map_err(|e| io_error("create", &ports_dir, e))?;
        // The first start lets the server choose its port; a start again keeps it.
        let port = self
            .port
            .map_or_else(|| "-1".to_owned(), |port| port.to_string());
        let mut command = Command::new(&self.binary);
        command
            .args(["--jetstream", "--addr", "127.0.0.1", "--port", &port])
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("--store_dir")
            .arg(self.dir.join("jetstream"))
            .args(["--server_name", &self.name]);
        if let Some(cluster_port) = self.cluster_port {
            command
                .args(["--cluster_name", "annals-test", "--cluster"])
                .arg(format!("nats://127.0.0.1:{cluster_port}"))
                .arg("--routes")
                .arg(self.routes.join(","));
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        let child = command
            .spawn()
            .map_err(|e| HarnessError(format!("cannot start {}: {e}", self.binary.display())))?;
        let ports_file = ports_dir.join(format!("{}_{}.ports", self.binary_name(), child.id()));
        self.child = Some(child);
        let port = self.wait_until_listening(&ports_file)?;
        self.port = Some(port);
        Ok(())
    }

    /// The binary's file name, which names the ports file.
    fn binary_name(&self) -> String {
        self.binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "nats-server".to_owned())
    }

    /// Waits until the server writes its ports file (it does once it listens), and returns its
    /// client port. JetStream may still be electing leaders in a cluster: callers that need it
    /// retry their first request.
    fn wait_until_listening(&mut self, ports_file: &Path) -> Result<u16, HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // The file may be read while it is being written: a partial one is read again.
            if let Some(port) = fs::read_to_string(ports_file)
                .ok()
                .and_then(|text| client_port(&text))
            {
                return Ok(port);
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(HarnessError(format!(
                        "{} exited with {status} before it listened; its log:\n{}",
                        self.name,
                        self.log()
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "{} did not listen within {START_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server's log says a port it was to listen on was taken.
    fn port_was_taken(&self) -> bool {
        self.log().contains("address already in use")
    }
}

/// The client port in a ports file: `{"nats":["nats://127.0.0.1:4222"], ..}`.
fn client_port(ports_file: &str) -> Option<u16> {
    let ports: serde_json::Value = serde_json::from_str(ports_file).ok()?;
    let url = ports.get("nats")?.get(0)?.as_str()?;
    url.rsplit_once(':')?.1.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A JetStream cluster of `nats-server` nodes routed to each other on 127.0.0.1.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts a cluster of `size` nodes (JetStream clustering needs at least 3).
    pub fn start(size: usize) -> Result<NatsCluster, HarnessError> {
        let binary = find_binary()?;
        let mut attempt = 1;
        loop {
            match NatsCluster::start_on_new_ports(&binary, size) {
                Ok(cluster) => return Ok(cluster),
                // A route port free when chosen was taken before its node bound it.
                Err(failed) if failed.port_taken && attempt < CLUSTER_ATTEMPTS => attempt += 1,
                Err(failed) => return Err(failed.error),
            }
        }
    }

    /// One try at starting a cluster on route ports chosen now. The nodes of a failed try
    /// are stopped and their directories removed as they are dropped.
    fn start_on_new_ports(binary: &Path, size: usize) -> Result<NatsCluster, FailedTry> {
        let cluster_ports = free_ports(size).map_err(FailedTry::other)?;
        let mut nodes = Vec::with_capacity(size);
        for (index, port) in cluster_ports.iter().enumerate() {
            let routes = cluster_ports
                .iter()
                .filter(|other| *other != port)
                .map(|other| format!("nats://127.0.0.1:{other}"))
                .collect();
            let name = format!("annals-test-{}", index + 1);
            nodes.push(
                NatsServer::prepare(binary, &name, Some(*port), routes)
                    .map_err(FailedTry::other)?,
            );
        }
        for node in &mut nodes {
            if let Err(error) = node.run() {
                return Err(FailedTry {
                    port_taken: node.port_was_taken(),
                    error,
                });
            }
        }
        Ok(NatsCluster { nodes })
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// Node `index`, to kill or start again.
    pub fn node_mut(&mut self, index: usize) -> Option<&mut NatsServer> {
        self.nodes.get_mut(index)
    }

    /// The client URLs of every node, as `async_nats::connect` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }
}

/// `nats-server` on `PATH`, or where Debian installs it.
fn find_binary() -> Result<PathBuf, HarnessError> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| HarnessError(INSTALL_HINT.to_owned()))
}

/// Why one try at starting a cluster failed.
struct FailedTry {
    error: HarnessError,
    /// Whether a node found its port taken: a try on new ports may succeed.
    port_taken: bool,
}

impl FailedTry {
    /// A failure that new ports would not mend.
    fn other(error: HarnessError) -> FailedTry {
        FailedTry {
            error,
            port_taken: false,
        }
    }
}

/// `count` different ports of 127.0.0.1, free at the time of the call: their listeners are
/// held until all are chosen, so no two are the same.
fn free_ports(count: usize) -> Result<Vec<u16>, HarnessError> {
    let error = |e: std::io::Error| HarnessError(format!("cannot find a free port: {e}"));
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(error))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|a| a.port()).map_err(error))
        .collect()
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> HarnessError {
    HarnessError(format!("cannot {action} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_port_is_read_from_a_whole_ports_file_only() {
        let file = r#"{"nats":["nats://127.0.0.1:42505"],"cluster":["nats://127.0.0.1:6222"]}"#;
        assert_eq!(client_port(file), Some(42505));
        assert_eq!(client_port(&file[..20]), None);
        assert_eq!(client_port(""), None);
    }
}
