//! Cluster test helpers: the dashboard example as a node process, and one-off Redis
//! commands.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Runs one command on a fresh connection; `None` when Redis does not answer.
pub(crate) async fn redis_cmd<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await.ok()
}

/// One node: the example binary, listening on a free port.
pub(crate) struct Node {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub(crate) addr: String,
    /// What it printed so far.
    pub(crate) output: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts the example with `--addr 127.0.0.1:0` and `args`; returns once it printed
    /// its address. Its output is read (and kept) by a thread, so it never blocks on a
    /// full pipe.
    pub(crate) fn start(exe: &Path, name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(exe)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the dashboard example");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            let n = stdout
                .read_line(&mut line)
                .expect("read the example's output");
            assert!(n > 0, "node {name} exited before printing its address");
            if let Some(rest) = line.trim().strip_prefix("rtdash dashboard: open http://") {
                break rest.trim_end_matches('/').to_owned();
            }
        };
        let output = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                out.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            addr,
            output,
        }
    }

    /// Whether the process still runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process with SIGKILL (a crash: nothing is handed over) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The status of `GET /health` (0 when the node does not answer).
    pub(crate) async fn health(&self) -> u16 {
        reqwest::get(format!("http://{}/health", self.addr))
            .await
            .map_or(0, |r| r.status().as_u16())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
