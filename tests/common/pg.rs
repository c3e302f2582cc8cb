//! PostgreSQL for the tests: fresh databases on the machine's server, and private servers
//! a test owns (to kill and restart them).
//!
//! The machine's server is at 127.0.0.1:5432 (user `postgres`, trust auth; CI's services
//! start it). A private server is made with the PostgreSQL 15 binaries in
//! `/usr/lib/postgresql/15/bin` (or `$RTDASH_PG_BIN`), as the `postgres` user when the
//! tests run as root. A missing server or binary fails the test, it never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The machine's server.
pub(crate) const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A fresh database on the machine's server, dropped when the value goes.
pub(crate) struct Database {
    pub(crate) name: String,
}

impl Database {
    pub(crate) fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "rtdash_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&format!("{SERVER}/postgres"), postgres::NoTls)
            .unwrap_or_else(|e| {
                panic!("these tests need PostgreSQL at {SERVER} (user postgres, trust auth): {e}")
            });
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {name}")))
            .expect("create the test database");
        Self { name }
    }

    pub(crate) fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }

    /// A client of the database (call it outside any tokio runtime).
    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .expect("connect to the test database")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) =
            postgres::Client::connect(&format!("{SERVER}/postgres"), postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A PostgreSQL server of the test's own on a free port of 127.0.0.1 (trust auth, user
/// `postgres`, database `postgres`), data and socket in a temporary directory. Stopped and
/// removed when the value goes.
pub(crate) struct PrivatePg {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    bin: PathBuf,
    running: bool,
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePg {
    /// Makes (initdb) and starts a server.
    pub(crate) fn start() -> Self {
        let bin = std::env::var_os("RTDASH_PG_BIN").map_or_else(
            || PathBuf::from("/usr/lib/postgresql/15/bin"),
            PathBuf::from,
        );
        assert!(
            bin.join("initdb").exists(),
            "a private PostgreSQL needs initdb and pg_ctl in {} (set RTDASH_PG_BIN)",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("rtdash-pg-")
            .tempdir()
            .expect("temporary directory");
        if as_root() {
            // The server refuses to run as root: the directory is the postgres user's.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut pg = Self {
            dir,
            port,
            bin,
            running: false,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.restart();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL of database `db`.
    pub(crate) fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server again (crash recovery after [`kill`](Self::kill)); returns when
    /// it accepts connections.
    pub(crate) fn restart(&mut self) {
        let data = self.data();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(30);
        while postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: every
    /// process quits, no checkpoint).
    pub(crate) fn kill(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        self.running = false;
    }

    /// The server's data directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}
