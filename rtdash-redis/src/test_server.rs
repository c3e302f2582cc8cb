//! A real `redis-server` for tests (feature `test-server`): started on a free port with
//! no persistence (or with the options a test gives, e.g. an append-only file) and its
//! files in a temporary directory, restarted or killed on demand, killed on drop. Used by
//! this crate's integration tests and the `rtdash` facade's cluster tests.
//!
//! ```no_run
//! use rtdash_redis::test_server::RedisServer;
//!
//! let mut redis = RedisServer::start();
//! let url = redis.url(); // redis://127.0.0.1:<port>
//! redis.restart(); // SIGKILL, then a new empty server on the same port
//!
//! // Persistent: every write is fsynced to the append-only file before Redis replies,
//! // and a restart reloads it.
//! let mut durable = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
//! durable.restart(); // SIGKILL, then a server on the same port with the same data
//! # drop(url);
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A `redis-server` of this test's own: no persistence unless asked
/// ([`start_with`](Self::start_with)), its files in a temporary directory, killed on
/// drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    starts: u32,
    /// Options given to every start, after the defaults (so they override them).
    args: Vec<String>,
}

/// The `redis-server` binary: `$REDIS_SERVER`, else `redis-server` on the `PATH`, else
/// Debian's `/usr/bin/redis-server`, installed with `apt-get` first when it is missing
/// and this process may (root on Debian): the tests need a real Redis and never skip.
///
/// # Panics
///
/// When no binary is found and none can be installed; the message says what to do.
#[must_use]
pub fn redis_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let find = || {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("redis-server"))
            .chain([PathBuf::from("/usr/bin/redis-server")])
            .find(|p| p.is_file())
    };
    if let Some(found) = find() {
        return found;
    }
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = find() {
        return found;
    }
    let installed = Command::new("sh")
        .args([
            "-c",
            "[ \"$(id -u)\" = 0 ] && command -v apt-get >/dev/null && \
             apt-get update -qq && \
             DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null",
        ])
        .status()
        .is_ok_and(|s| s.success());
    match find() {
        Some(found) if installed => found,
        _ => panic!(
            "redis-server was not found (not on the PATH, not at /usr/bin/redis-server, \
             $REDIS_SERVER unset) and could not be installed: these tests need a real \
             Redis. Install Debian's redis-server package: `sudo apt-get install redis-server`"
        ),
    }
}

/// A port nobody listens on now (the kernel's pick for 127.0.0.1:0).
///
/// # Panics
///
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

impl RedisServer {
    /// Starts a server on a free port, with no persistence (`--save "" --appendonly
    /// no`), and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When no server can be started (the message says why).
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server like [`start`](Self::start), with `args` added to its command
    /// line after the defaults (so they override them), e.g. `&["--appendonly", "yes",
    /// "--appendfsync", "always"]` for a server that fsyncs each write to its
    /// append-only file before replying. The server keeps `args` across
    /// [`restart`](Self::restart)s, and its files stay in the same directory: a
    /// persistent server restarts with its data.
    ///
    /// # Panics
    ///
    /// When no server can be started (the message says why).
    #[must_use]
    pub fn start_with(args: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            starts: 0,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        // Another process may take the port between our probe and the server's bind: try
        // a few ports.
        let mut errors = Vec::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => errors.push(e),
            }
        }
        panic!("redis-server did not start after 5 attempts: {errors:#?}");
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (no shutdown, no save) and waits for it; a later
    /// [`restart`](Self::restart) brings up a new one on the same port (empty, unless
    /// the server is persistent: see [`restart`](Self::restart)).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL, if it runs) and starts a new one on the same port, in
    /// the same directory, with the same options. Without persistence (the default of
    /// [`start`](Self::start)) everything the old one held is lost; a server started
    /// with an append-only file ([`start_with`](Self::start_with) `--appendonly yes`)
    /// reloads it: with `--appendfsync always`, every write Redis acknowledged comes
    /// back.
    ///
    /// # Panics
    ///
    /// When the new server does not start within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!(
                        "redis-server restart on port {} failed, retrying: {e}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("redis-{}.log", self.starts))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Spawns the server on `self.port` and waits until it answers `PING`.
    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let binary = redis_server_binary();
        let log = std::fs::File::create(self.log_path()).map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "{} not found ({e}): these tests need a real Redis. Install Debian's \
                 redis-server package: `sudo apt-get install redis-server`",
                binary.display()
            ),
            Err(e) => panic!("could not run {}: {e}", binary.display()),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "redis-server exited ({status}) on port {}:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {} did not answer PING within 10 s:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis answers `PING` on `port` now.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
