//! Run with:
//!
//! ```text
//! ulimit -n 65536     # or as high as the hard limit allows: ~1 fd per client here, as many in the server
//! cargo build --release --example dashboard
//! cargo run --release --example soak -- --stalled-percent 0 --report /tmp/soak-clean.md
//! cargo run --release --example soak -- --report /tmp/soak-stalled.md
//! ```
//!
//! A soak test of the dashboard example (issue #11): many WebSocket clients over minutes,
//! some of which never read, against the real server binary in a separate process. It is a
//! load example, not a unit test: it only ever connects to 127.0.0.1 and stops by itself.
//!
//! 1. Starts `target/release/examples/dashboard --addr 127.0.0.1:0` (demo producer on) and
//!    reads the port from the URL it prints.
//! 2. Creates a second, heavier dashboard `soak` with `POST /dashboards`: `--widgets`
//!    widgets (32) over the demo's metrics, percentiles and `group_by: region` included,
//!    half refreshed every `--refresh` seconds (0.5), half every second, each with its own
//!    query (no two widgets share metric, aggregation and window).
//! 3. Connects `--clients` WebSocket clients (10,000) to `/stream/{id}?token=demo`,
//!    alternating between the seeded `ops` dashboard and `soak`, at most
//!    `--connect-concurrency` (64) handshakes at a time (the server caps open HTTP
//!    connections per peer address at 256). `--stalled-percent` of them (1) never read a
//!    byte after the WebSocket handshake: they keep the socket open with a small receive
//!    buffer (`--stalled-rcvbuf`, 4 KiB, so the kernel cannot absorb minutes of frames for
//!    them) until the end. The server's slow-consumer policy and timeouts must cope.
//! 4. Each healthy client parses every frame: for `update` frames it records the
//!    **delivery latency** `receive time − sent_at` (the server's clock at encoding; same
//!    machine, same clock) and the **event age** `receive time − newest items[].event_time`
//!    into HDR histograms (µs; `sent_at` and `event_time` are whole milliseconds, so both
//!    are over-estimated by up to 1 ms). It checks that `seq` is gap-free: a `snapshot`
//!    sets the next expected seq to `snapshot.seq + 1`; every sequenced frame (`update`,
//!    `alert`, `dashboard`) must carry exactly that seq. A larger one counts a gap (and the
//!    seqs missed), a smaller one a step back.
//! 5. Once every client has connected (or failed), measures for `--duration` seconds (300):
//!    every `--sample-every` seconds (10) it reads the server's `VmRSS` from
//!    `/proc/<pid>/status`, the kernel's TCP buffer memory (`/proc/net/sockstat`: frames
//!    queued for clients that do not read sit there, not in the RSS), both processes' CPU
//!    time, the machine's load, and
//!    `GET /metrics` (with the token) for connections, conflations, drops, evictions and slow
//!    consumers; latencies are reported per interval and for the whole measured phase.
//! 6. Then closes every client, waits `--settle` seconds (10) and samples the server again
//!    (memory kept after all clients left). `--extra-waves` (2) waves of as many healthy
//!    clients then connect, are held `--settle` seconds and closed, with a sample after each
//!    step: RSS that levels off from wave to wave is memory the allocator keeps and reuses;
//!    RSS that grows by the same step every wave is a leak. Finally it kills the server and
//!    prints a markdown report on stdout (and to `--report FILE`). Progress goes to stderr.
//!
//! Flags: `--clients N` (10000), `--stalled-percent P` (1), `--duration S` (300),
//! `--widgets N` (32, at most 100), `--refresh S` (0.5), `--connect-concurrency N` (64),
//! `--sample-every S` (10), `--warmup S` (60: RSS after this much of the measured phase is
//! the reference for "flat"), `--settle S` (10), `--client-threads N` (2),
//! `--stalled-rcvbuf BYTES` (4096; 0 keeps the system's autotuned buffer), `--stalled-ping S`
//! (0: stalled clients write nothing either; S > 0: a `ping` message every S seconds, which
//! keeps the server's 60 s idle timeout from closing them, so only the slow-consumer policy
//! and the write timeout can), `--seed N` (1, the demo producer's seed), `--extra-waves N`,
//! `--server PATH` (the dashboard binary), `--report FILE`.
//!
//! Ctrl-C ends the measured phase early; the report says so and the server is still killed.

#[path = "support/procfs.rs"]
mod procfs;

use procfs::{cpu_ticks, machine_jiffies, memory_kib};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Any token works with the example's default `AllowAll` authenticator.
const TOKEN: &str = "demo";
/// The dashboard the example seeds.
const OPS: &str = "ops";
/// The dashboard this program creates.
const SOAK: &str = "soak";
/// Latency histograms are sharded to keep lock contention negligible.
const SHARDS: usize = 64;
/// Highest latency recorded, in µs (10 min); larger values are clamped to it.
const MAX_US: u64 = 600_000_000;
/// Time allowed for one client's TCP connect, handshake and first snapshot.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Labels of the samples taken outside the measured phase.
const IDLE: &str = "idle, before clients";
const CONNECTED: &str = "all connected";
const CLOSED: &str = "all clients closed";
const WAVE_CONNECTED: &str = "connected";
const WAVE_CLOSED: &str = "closed";
/// How long a sample waits for `/metrics`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// RSS growth after warm-up below which the report calls it flat.
const FLAT_GROWTH: f64 = 0.05;

const USAGE: &str = "\
rtdash soak test: many WebSocket clients against the dashboard example, for minutes

Usage: soak [OPTIONS]   (raise the fd limit first: ulimit -n 65536)

Options:
  --clients N               WebSocket clients (default 10000)
  --stalled-percent P       share of clients that never read after the handshake (default 1)
  --duration S              seconds measured once every client is connected (default 300)
  --widgets N               widgets of the extra `soak` dashboard, 1 to 100 (default 32)
  --refresh S               refresh of half of those widgets, the others 1 s (default 0.5)
  --connect-concurrency N   handshakes in flight (default 64; the server allows 256 per peer)
  --sample-every S          RSS, CPU and /metrics sampling period (default 10)
  --warmup S                measured seconds before RSS must be flat (default 60)
  --settle S                wait after closing the clients before the last sample (default 10)
  --client-threads N        tokio worker threads of this process (default 2)
  --stalled-rcvbuf BYTES    SO_RCVBUF of stalled clients, 0 = system default (default 4096)
  --stalled-ping S          stalled clients send a `ping` message every S s, still reading
                            nothing (keeps the server's idle timeout away); 0 = never (default)
  --seed N                  seed of the demo producer (default 1)
  --extra-waves N           waves of healthy clients connected, held and closed after the
                            measured phase, to tell allocator retention from a leak (default 2)
  --server PATH             dashboard binary (default target/release/examples/dashboard)
  --report FILE             also write the markdown report to FILE
  -h, --help                print this help
";

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    clients: usize,
    stalled_percent: f64,
    duration: Duration,
    widgets: usize,
    refresh: f64,
    connect_concurrency: usize,
    sample_every: Duration,
    warmup: Duration,
    settle: Duration,
    client_threads: usize,
    stalled_rcvbuf: u32,
    stalled_ping: Duration,
    seed: u64,
    extra_waves: usize,
    server: PathBuf,
    report: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            clients: 10_000,
            stalled_percent: 1.0,
            duration: Duration::from_secs(300),
            widgets: 32,
            refresh: 0.5,
            connect_concurrency: 64,
            sample_every: Duration::from_secs(10),
            warmup: Duration::from_secs(60),
            settle: Duration::from_secs(10),
            client_threads: 2,
            stalled_rcvbuf: 4096,
            stalled_ping: Duration::ZERO,
            seed: 1,
            extra_waves: 2,
            server: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/release/examples/dashboard"),
            report: None,
        }
    }
}

impl Args {
    /// How many of the clients stall.
    fn stalled(&self) -> usize {
        ((self.clients as f64) * self.stalled_percent / 100.0).round() as usize
    }

    /// Whether client `i` is one of the stalled ones (spread evenly over the clients).
    fn is_stalled(&self, i: usize) -> bool {
        let (s, n) = (self.stalled(), self.clients);
        n > 0 && (i + 1) * s / n > i * s / n
    }
}

/// Parses the flags; `Ok(None)` means `--help`.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }

        let v = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("{name} needs a value; see --help"))?;
        let int = |what: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|e| format!("{name} {v:?}: {e}; expected {what}"))
        };
        let secs = |min: f64| -> Result<f64, String> {
            let s: f64 = v
                .parse()
                .map_err(|e| format!("{name} {v:?}: {e}; expected seconds"))?;
            if s.is_finite() && s >= min {
                Ok(s)
            } else {
                Err(format!("{name} {v:?}: expected at least {min} seconds"))
            }
        };
        let usize_of = |n: u64| usize::try_from(n).map_err(|_| format!("{name}: too large"));
        match name.as_str() {
            "--clients" => a.clients = usize_of(int("a number of clients")?)?.max(1),
            "--stalled-percent" => {
                let p: f64 = v
                    .parse()
                    .map_err(|e| format!("{name} {v:?}: {e}; expected a percentage"))?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(format!("{name} {v:?}: expected 0 to 100"));
                }
                a.stalled_percent = p;
            }
            "--duration" => a.duration = Duration::from_secs_f64(secs(1.0)?),
            "--widgets" => {
                let n = usize_of(int("1 to 100")?)?;
                if !(1..=100).contains(&n) {
                    return Err(format!("{name} {v:?}: expected 1 to 100 (SchemaLimits)"));
                }
                a.widgets = n;
            }
            "--refresh" => a.refresh = secs(0.1)?,
            "--connect-concurrency" => {
                a.connect_concurrency = usize_of(int("a number")?)?.clamp(1, 250);
            }
            "--sample-every" => a.sample_every = Duration::from_secs_f64(secs(1.0)?),
            "--warmup" => a.warmup = Duration::from_secs_f64(secs(0.0)?),
            "--settle" => a.settle = Duration::from_secs_f64(secs(0.0)?),
            "--client-threads" => a.client_threads = usize_of(int("a number")?)?.max(1),
            "--stalled-rcvbuf" => {
                a.stalled_rcvbuf =
                    u32::try_from(int("bytes")?).map_err(|_| format!("{name}: too large"))?;
            }
            "--stalled-ping" => a.stalled_ping = Duration::from_secs_f64(secs(0.0)?),
            "--seed" => a.seed = int("an unsigned integer")?,
            "--extra-waves" => a.extra_waves = usize_of(int("a number of waves")?)?,
            "--server" => a.server = PathBuf::from(v),
            "--report" => a.report = Some(PathBuf::from(v)),
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------ the server

/// The dashboard example, running as a child process; killed when dropped.
struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl Server {
    /// A sample taken outside the measured phase (clients closed, or an extra wave held):
    /// the server's memory, sockets and the machine's load now, the open connections from
    /// `metrics` (a `/metrics` scrape, if it answered) and `healthy_open` clients.
    fn settled_sample(
        &self,
        t0: Instant,
        label: &'static str,
        wave: usize,
        metrics: Option<&BTreeMap<String, f64>>,
        healthy_open: u64,
    ) -> Sample {
        Sample {
            t: t0.elapsed().as_secs_f64(),
            label,
            wave,
            rss_kib: memory_kib(self.pid).map_or(0, |m| m.0),
            tcp_kib: tcp_buffers_kib(),
            sockets: server_sockets(self.addr.port()),
            load: load_average(),
            connections: metrics.and_then(|m| m.get("rtdash_active_connections").copied()),
            healthy_open,
            ..Sample::default()
        }
    }

    /// Starts the binary on 127.0.0.1, a free port, and waits for the URL it prints.
    fn start(args: &Args) -> Result<Self, String> {
        if !args.server.is_file() {
            return Err(format!(
                "{} not found; build it first: cargo build --release --example dashboard \
                 (or pass --server PATH)",
                args.server.display()
            ));
        }
        let mut child = Command::new(&args.server)
            .args(["--addr", "127.0.0.1:0", "--seed", &args.seed.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", args.server.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("no stdout from the server")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the server's output: the URL line is handed over, the rest forwarded.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("open http://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let _ = t.send(rest.split('/').next().unwrap_or_default().to_owned());
                } else {
                    eprintln!("  [server] {line}");
                }
            }
        });
        let mut server = Self {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let host = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "the server printed no URL within 20 s".to_owned())?;
        server.addr = host
            .parse()
            .map_err(|e| format!("the server's address {host:?}: {e}"))?;
        if !server.addr.ip().is_loopback() {
            return Err(format!("the server listens on {host}, not on loopback"));
        }
        Ok(server)
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `soak` dashboard: `widgets` widgets over the demo producer's metrics, each its own
/// query, half refreshed every `refresh` seconds and half every second.
fn soak_dashboard(widgets: usize, refresh: f64) -> Value {
    // (metric, aggregation, window s, group by region, chart, unit)
    const KINDS: &[(&str, &str, u32, bool, &str, &str)] = &[
        ("http.latency", "p50", 30, true, "line", "ms"),
        ("http.latency", "p90", 30, true, "line", "ms"),
        ("http.latency", "p95", 60, true, "heatmap", "ms"),
        ("http.latency", "p99", 60, true, "line", "ms"),
        ("http.latency", "p99.9", 300, true, "line", "ms"),
        ("http.latency", "p99", 10, false, "stat", "ms"),
        ("http.latency", "count", 10, true, "table", "events"),
        ("http.latency", "max", 30, false, "stat", "ms"),
        ("http.requests.rate", "avg", 5, true, "area", "req/s"),
        ("http.requests.rate", "max", 60, true, "line", "req/s"),
        ("http.errors.percent", "avg", 10, true, "line", "%"),
        ("http.errors.percent", "p95", 60, true, "heatmap", "%"),
        ("http.requests.rate.all", "avg", 5, false, "stat", "req/s"),
        ("http.requests.rate.all", "min", 60, false, "area", "req/s"),
        ("http.errors.percent.all", "max", 30, false, "stat", "%"),
        ("queue.depth", "avg", 10, false, "stat", "jobs"),
        ("queue.depth", "p95", 60, false, "line", "jobs"),
        ("api.connections", "avg", 30, false, "stat", "conns"),
        ("api.connections", "max", 10, false, "area", "conns"),
        ("http.latency", "p75", 120, true, "line", "ms"),
    ];
    let list: Vec<Value> = (0..widgets)
        .map(|i| {
            let (metric, agg, window, grouped, chart, unit) = KINDS[i % KINDS.len()];
            // A second round over the kinds uses longer windows: still distinct queries.
            let window = (window * (1 + (i / KINDS.len()) as u32 * 2)).min(3600);
            let mut w = json!({
                "widget_id": format!("50a50000-0000-4000-8000-{i:012}"),
                "dashboard_id": SOAK,
                "title": format!("{metric} {agg} {window}s"),
                "metric_name": metric,
                "aggregation": agg,
                "window_seconds": window,
                "refresh_interval_seconds": if i % 2 == 0 { refresh } else { 1.0 },
                "display_config": {
                    "chart": chart,
                    "unit": unit,
                    "position": {"x": (i % 4) * 3, "y": (i / 4) * 2, "w": 3, "h": 2}
                }
            });
            if grouped {
                w["group_by"] = json!("region");
            }
            if metric == "queue.depth" {
                w["tag_filter"] = json!({"queue": "jobs"});
            }
            w
        })
        .collect();
    json!({"id": SOAK, "name": "Soak: heavy dashboard", "columns": 12, "widgets": list})
}

/// The server's `/metrics`, as `series → value` (labels kept in the series name).
async fn scrape(
    http: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, f64>, String> {
    let resp = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("GET /metrics: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET /metrics: {}", resp.status()));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| format!("GET /metrics: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}

// ------------------------------------------------------------------------ the clients

/// What the clients share with the sampler.
struct Shared {
    /// Delivery latency (µs) since the last sample, by shard.
    delivery: Vec<Mutex<Histogram<u64>>>,
    /// Event age (µs) since the last sample, by shard.
    age: Vec<Mutex<Histogram<u64>>>,
    /// Latencies are recorded only in the measured phase.
    recording: AtomicBool,
    updates: AtomicU64,
    other_frames: AtomicU64,
    bytes: AtomicU64,
    /// Snapshots after a client's first one (resynchronisations).
    resyncs: AtomicU64,
    gaps: AtomicU64,
    missed_seqs: AtomicU64,
    steps_back: AtomicU64,
    /// Sequenced frames before any snapshot (a protocol violation).
    unsynced: AtomicU64,
    healthy_open: AtomicU64,
    /// Healthy clients whose connection ended before the stop, by close code or error.
    ended: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn new() -> Result<Self, String> {
        let hist = || {
            Histogram::<u64>::new_with_bounds(1, MAX_US, 3)
                .map(Mutex::new)
                .map_err(|e| format!("histogram: {e}"))
        };
        Ok(Self {
            delivery: (0..SHARDS).map(|_| hist()).collect::<Result<_, _>>()?,
            age: (0..SHARDS).map(|_| hist()).collect::<Result<_, _>>()?,
            recording: AtomicBool::new(false),
            updates: AtomicU64::new(0),
            other_frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            missed_seqs: AtomicU64::new(0),
            steps_back: AtomicU64::new(0),
            unsynced: AtomicU64::new(0),
            healthy_open: AtomicU64::new(0),
            ended: Mutex::new(BTreeMap::new()),
        })
    }

    fn ended(&self, why: String) {
        self.healthy_open.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.ended.lock() {
            *m.entry(why).or_default() += 1;
        }
    }

    /// Moves the interval histograms into `total`; returns the interval's.
    fn drain(hists: &[Mutex<Histogram<u64>>], total: &mut Histogram<u64>) -> Histogram<u64> {
        let mut interval = Histogram::new_from(total);
        for h in hists {
            if let Ok(mut h) = h.lock() {
                let _ = interval.add(&*h);
                h.reset();
            }
        }
        let _ = total.add(&interval);
        interval
    }
}

/// The fields of a server frame this program reads.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    sent_at: Option<i64>,
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    event_time: Option<i64>,
}

/// The seq check of one client's topic.
#[derive(Debug, Default)]
struct SeqCheck {
    next: Option<u64>,
    snapshots: u64,
}

/// What a sequenced frame's seq says about the stream.
#[derive(Debug, PartialEq, Eq)]
enum SeqOutcome {
    InOrder,
    /// This many seqs were skipped.
    Gap(u64),
    StepBack,
    /// No snapshot yet.
    Unsynced,
}

impl SeqCheck {
    fn snapshot(&mut self, seq: u64) {
        self.snapshots += 1;
        self.next = Some(seq + 1);
    }

    fn sequenced(&mut self, seq: u64) -> SeqOutcome {
        let outcome = match self.next {
            None => SeqOutcome::Unsynced,
            Some(n) if seq == n => SeqOutcome::InOrder,
            Some(n) if seq > n => SeqOutcome::Gap(seq - n),
            Some(_) => SeqOutcome::StepBack,
        };
        if outcome != SeqOutcome::StepBack {
            self.next = Some(seq + 1);
        }
        outcome
    }
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Handles one text frame of a healthy client. Returns whether it was a snapshot.
fn on_frame(text: &str, check: &mut SeqCheck, shared: &Shared, shard: usize) -> bool {
    let now = now_micros();
    shared.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
        shared.other_frames.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    match (frame.kind.as_ref(), frame.seq) {
        ("snapshot", Some(seq)) => {
            if check.snapshots > 0 {
                shared.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            check.snapshot(seq);
            shared.other_frames.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        ("update" | "alert" | "dashboard", Some(seq)) => match check.sequenced(seq) {
            SeqOutcome::InOrder => {}
            SeqOutcome::Gap(n) => {
                shared.gaps.fetch_add(1, Ordering::Relaxed);
                shared.missed_seqs.fetch_add(n, Ordering::Relaxed);
            }
            SeqOutcome::StepBack => {
                shared.steps_back.fetch_add(1, Ordering::Relaxed);
            }
            SeqOutcome::Unsynced => {
                shared.unsynced.fetch_add(1, Ordering::Relaxed);
            }
        },
        _ => {}
    }
    if frame.kind != "update" {
        shared.other_frames.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    shared.updates.fetch_add(1, Ordering::Relaxed);
    if !shared.recording.load(Ordering::Relaxed) {
        return false;
    }
    let micros = |ms: i64| u64::try_from(now - ms * 1000).unwrap_or(0).clamp(1, MAX_US);
    if let Some(sent_at) = frame.sent_at
        && let Ok(mut h) = shared.delivery[shard].lock()
    {
        let _ = h.record(micros(sent_at));
    }
    if let Some(newest) = frame.items.iter().filter_map(|i| i.event_time).max()
        && let Ok(mut h) = shared.age[shard].lock()
    {
        let _ = h.record(micros(newest));
    }
    false
}

/// One client's parameters.
struct ClientSpec {
    index: usize,
    addr: SocketAddr,
    topic: &'static str,
    stalled: bool,
    rcvbuf: u32,
    ping: Duration,
}

/// Connects: TCP, WebSocket handshake with `?token=`.
async fn connect(
    spec: &ClientSpec,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if spec.stalled && spec.rcvbuf > 0 {
        socket
            .set_recv_buffer_size(spec.rcvbuf)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    }
    let stream = socket
        .connect(spec.addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{}/stream/{}?token={TOKEN}", spec.addr, spec.topic);
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// Why a healthy client's stream ended.
fn end_reason(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> String {
    match msg {
        Some(Ok(Message::Close(Some(f)))) => format!("close {} {}", u16::from(f.code), f.reason),
        Some(Ok(Message::Close(None))) => "close without code".into(),
        Some(Err(e)) => format!("error: {e}"),
        None | Some(Ok(_)) => "end of stream".into(),
    }
}

/// Completes once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One client: connects, reports, then reads (healthy) or holds the socket (stalled)
/// until `stop`.
async fn client(
    spec: ClientSpec,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: mpsc::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) {
    let shard = spec.index % SHARDS;
    let mut check = SeqCheck::default();
    let first = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut ws = connect(&spec).await?;
        if spec.stalled {
            return Ok(ws);
        }
        // A healthy client counts once its snapshot has arrived.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if on_frame(t.as_str(), &mut check, &shared, shard) {
                        return Ok(ws);
                    }
                }
                Some(Ok(_)) => {}
                other => return Err(format!("before the snapshot: {}", end_reason(other))),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    drop(permit);
    let mut ws = match first {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Err(e)).await;
            return;
        }
    };
    if !spec.stalled {
        shared.healthy_open.fetch_add(1, Ordering::Relaxed);
    }
    let _ = ready.send(Ok(())).await;
    drop(ready);
    if spec.stalled {
        // Never read: hold the socket until the end, writing a `ping` now and then if asked.
        if spec.ping.is_zero() {
            stopped(&mut stop).await;
            return;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + spec.ping, spec.ping);
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                _ = tick.tick() => {
                    let ping = Message::text(r#"{"type":"ping"}"#);
                    let sent = tokio::time::timeout(Duration::from_secs(5), ws.send(ping)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        stopped(&mut stop).await;
                        return;
                    }
                }
            }
        }
    }
    loop {
        tokio::select! {
            () = stopped(&mut stop) => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                shared.healthy_open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    on_frame(t.as_str(), &mut check, &shared, shard);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    shared.ended(end_reason(msg));
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A group of clients being connected or connected.
struct Wave {
    tasks: tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>>,
    connected: usize,
    failures: BTreeMap<String, u64>,
    secs: f64,
}

impl Wave {
    /// Waits for every client task to end (after its stop signal).
    async fn join(self) {
        if let Ok(tasks) = self.tasks.await {
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

/// Connects `--clients` clients (stalled ones too when `with_stalled`), at most
/// `--connect-concurrency` at a time, alternating between the two dashboards; returns once
/// each has connected or failed.
async fn connect_all(
    args: &Args,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
    with_stalled: bool,
) -> Wave {
    let sem = Arc::new(Semaphore::new(args.connect_concurrency));
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(1024);
    let started = Instant::now();
    let tasks = tokio::spawn({
        let (args, shared) = (args.clone(), Arc::clone(shared));
        async move {
            let mut tasks = Vec::with_capacity(args.clients);
            for index in 0..args.clients {
                let Ok(permit) = Arc::clone(&sem).acquire_owned().await else {
                    break;
                };
                let spec = ClientSpec {
                    index,
                    addr,
                    topic: if index % 2 == 0 { OPS } else { SOAK },
                    stalled: with_stalled && args.is_stalled(index),
                    rcvbuf: args.stalled_rcvbuf,
                    ping: args.stalled_ping,
                };
                let (shared, ready, stop) = (Arc::clone(&shared), ready_tx.clone(), stop.clone());
                tasks.push(tokio::spawn(client(spec, shared, permit, ready, stop)));
            }
            tasks
        }
    });
    let mut connected = 0usize;
    let mut failed = 0usize;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_note = Instant::now();
    while connected + failed < args.clients {
        match ready_rx.recv().await {
            Some(Ok(())) => connected += 1,
            Some(Err(e)) => {
                failed += 1;
                *failures.entry(e).or_default() += 1;
            }
            None => break,
        }
        if last_note.elapsed() > Duration::from_secs(5) {
            last_note = Instant::now();
            eprintln!(
                "soak: {connected} connected, {failed} failed, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("soak: {connected} connected ({failed} failed) in {secs:.1} s");
    Wave {
        tasks,
        connected,
        failures,
        secs,
    }
}

// ------------------------------------------------------------------------ measuring

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Memory of every TCP socket buffer of the network namespace (`/proc/net/sockstat`, pages
/// of 4 KiB on x86-64), KiB: where frames queued for clients that do not read end up.
fn tcp_buffers_kib() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let tcp = stat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = tcp.split_whitespace();
    it.find(|w| *w == "mem")?;
    Some(it.next()?.parse::<u64>().ok()? * 4)
}

/// The server's side of its TCP connections, from `/proc/net/tcp`.
#[derive(Debug, Clone, Copy, Default)]
struct Sockets {
    /// Established connections and the bytes queued in them, not yet acknowledged.
    open: u64,
    open_queued: u64,
    /// Connections the server has closed whose queued data the peer has not taken yet
    /// (FIN_WAIT1, CLOSING, LAST_ACK), and those bytes: kernel memory held for a client that
    /// does not read, after the server let go of it.
    closing: u64,
    closing_queued: u64,
}

fn server_sockets(port: u16) -> Option<Sockets> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{port:04X}");
    let mut s = Sockets::default();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(state), Some(queues)) = (f.get(1), f.get(3), f.get(4)) else {
            continue;
        };
        if !addr.ends_with(&local) {
            continue;
        }
        let tx = queues
            .split_once(':')
            .and_then(|(tx, _)| u64::from_str_radix(tx, 16).ok())
            .unwrap_or(0);
        match *state {
            "01" => {
                s.open += 1;
                s.open_queued += tx;
            }
            "04" | "0B" | "09" => {
                s.closing += 1;
                s.closing_queued += tx;
            }
            _ => {}
        }
    }
    Some(s)
}

/// The soft limit on open files of this process (inherited by the server).
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One row of the time series.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// Seconds into the measured phase (negative: before it).
    t: f64,
    label: &'static str,
    /// The extra wave the sample belongs to (0: the measured one).
    wave: usize,
    rss_kib: u64,
    tcp_kib: Option<u64>,
    sockets: Option<Sockets>,
    server_cores: f64,
    soak_cores: f64,
    machine_busy: f64,
    load: String,
    connections: Option<f64>,
    healthy_open: u64,
    updates_per_s: f64,
    p99_ms: Option<f64>,
    conflated: Option<f64>,
    slow_consumers: Option<f64>,
    evicted: Option<f64>,
}

/// Differences of CPU counters between two samples.
struct CpuClock {
    server: Option<u64>,
    soak: Option<u64>,
    machine: Option<(u64, u64)>,
    at: Instant,
}

impl CpuClock {
    fn now(server_pid: u32) -> Self {
        Self {
            server: cpu_ticks(server_pid),
            soak: cpu_ticks(std::process::id()),
            machine: machine_jiffies(),
            at: Instant::now(),
        }
    }

    /// (server cores, soak cores, machine busy %) since `self`, and the new clock.
    fn lap(&self, server_pid: u32) -> ((f64, f64, f64), Self) {
        let next = Self::now(server_pid);
        let secs = next.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let cores = |a: Option<u64>, b: Option<u64>| {
            a.zip(b)
                .map_or(0.0, |(a, b)| b.saturating_sub(a) as f64 / 100.0 / secs)
        };
        let busy = self
            .machine
            .zip(next.machine)
            .map_or(0.0, |((b0, t0), (b1, t1))| {
                (b1.saturating_sub(b0)) as f64 * 100.0 / (t1.saturating_sub(t0)).max(1) as f64
            });
        (
            (
                cores(self.server, next.server),
                cores(self.soak, next.soak),
                busy,
            ),
            next,
        )
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// UTC date and time, `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The machine, from /proc.
fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |kib| format!("{:.1} GiB", kib as f64 / 1_048_576.0),
        );
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |s| s.trim().to_owned());
    format!("{cores} cores ({cpu}), {mem} RAM, Linux {kernel}")
}

// ------------------------------------------------------------------------ the run

async fn run(args: Args) -> Result<(), String> {
    let needed = args.clients as u64 + 256;
    match fd_limit() {
        Some(limit) if limit < needed => {
            return Err(format!(
                "the open-file limit is {limit}, {} clients need about {needed} (here and in \
                 the server): raise it first, e.g. `ulimit -n 65536` (or up to the hard limit, \
                 `ulimit -Hn`)",
                args.clients
            ));
        }
        _ => {}
    }
    let started_at = utc_now();
    let load_at_start = load_average();
    let server = Server::start(&args)?;
    let base = server.base();
    eprintln!("soak: server pid {} on {}", server.pid, server.addr);
    let http = reqwest::Client::new();

    let resp = http
        .post(format!("{base}/dashboards"))
        .json(&soak_dashboard(args.widgets, args.refresh))
        .send()
        .await
        .map_err(|e| format!("POST /dashboards: {e}"))?;
    if resp.status().as_u16() != 201 {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("POST /dashboards: {status}: {body}"));
    }
    // Let both dashboards publish a few rounds before anyone connects.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = memory_kib(server.pid).map_or(0, |m| m.0);
    let tcp_idle = tcp_buffers_kib();

    // ---- connect
    let shared = Arc::new(Shared::new()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let wave = connect_all(&args, server.addr, &shared, stop_rx, true).await;
    let (connected, failures, connect_secs) = (wave.connected, wave.failures.clone(), wave.secs);
    let stalled = args.stalled();

    // ---- measure
    let metrics0 = scrape(&http, &base, SCRAPE_TIMEOUT).await.ok();
    let rss_connected = memory_kib(server.pid).map_or(0, |m| m.0);
    let tcp_connected = tcp_buffers_kib();
    let sockets_connected = server_sockets(server.addr.port());
    let mut delivery_total =
        Histogram::<u64>::new_with_bounds(1, MAX_US, 3).map_err(|e| format!("histogram: {e}"))?;
    let mut age_total = Histogram::new_from(&delivery_total);
    let _ = Shared::drain(&shared.delivery, &mut Histogram::new_from(&delivery_total));
    let _ = Shared::drain(&shared.age, &mut Histogram::new_from(&delivery_total));
    let updates_before = shared.updates.load(Ordering::Relaxed);
    let other_before = shared.other_frames.load(Ordering::Relaxed);
    let bytes_before = shared.bytes.load(Ordering::Relaxed);
    shared.recording.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut clock = CpuClock::now(server.pid);
    let mut samples: Vec<Sample> = Vec::new();
    samples.push(Sample {
        t: -connect_secs,
        label: IDLE,
        rss_kib: rss_idle,
        tcp_kib: tcp_idle,
        sockets: None,
        load: load_at_start.clone(),
        ..Sample::default()
    });
    samples.push(Sample {
        t: 0.0,
        label: CONNECTED,
        rss_kib: rss_connected,
        tcp_kib: tcp_connected,
        sockets: sockets_connected,
        load: load_average(),
        connections: metrics0
            .as_ref()
            .and_then(|m| m.get("rtdash_active_connections").copied()),
        healthy_open: shared.healthy_open.load(Ordering::Relaxed),
        ..Sample::default()
    });
    let mut last_updates = updates_before;
    let mut interrupted = None;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + args.sample_every,
        args.sample_every,
    );
    let end = t0 + args.duration;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let remaining = end.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep(remaining), if remaining < args.sample_every => {}
            _ = &mut ctrl_c => {
                interrupted = Some(t0.elapsed().as_secs_f64());
                eprintln!("soak: interrupted; stopping");
            }
        }
        let ((server_cores, soak_cores, machine_busy), next) = clock.lap(server.pid);
        let secs = next.at.duration_since(clock.at).as_secs_f64().max(1e-3);
        clock = next;
        let interval = Shared::drain(&shared.delivery, &mut delivery_total);
        let _ = Shared::drain(&shared.age, &mut age_total);
        let updates = shared.updates.load(Ordering::Relaxed);
        let t = t0.elapsed().as_secs_f64();
        let rss_kib = memory_kib(server.pid).map_or(0, |m| m.0);
        let tcp_kib = tcp_buffers_kib();
        let sockets = server_sockets(server.addr.port());
        // A busy server may answer late or not within the scrape's timeout: then "–".
        let m = scrape(&http, &base, SCRAPE_TIMEOUT).await.ok();
        let get = |k: &str| m.as_ref().and_then(|m| m.get(k).copied());
        let s = Sample {
            t,
            label: "",
            wave: 0,
            rss_kib,
            tcp_kib,
            sockets,
            server_cores,
            soak_cores,
            machine_busy,
            load: load_average(),
            connections: get("rtdash_active_connections"),
            healthy_open: shared.healthy_open.load(Ordering::Relaxed),
            updates_per_s: (updates - last_updates) as f64 / secs,
            p99_ms: (!interval.is_empty()).then(|| ms(interval.value_at_quantile(0.99))),
            conflated: get("rtdash_fanout_conflated_total"),
            slow_consumers: get("rtdash_transport_slow_consumers_total"),
            evicted: get("rtdash_fanout_evicted_total"),
        };
        last_updates = updates;
        eprintln!(
            "soak: t={:>5.0}s rss={:.1} MiB server={:.2} cores soak={:.2} cores conns={} \
             updates/s={:.0} p99={} ms conflated={} slow={}",
            s.t,
            s.rss_kib as f64 / 1024.0,
            s.server_cores,
            s.soak_cores,
            s.connections.map_or("?".into(), |c| format!("{c:.0}")),
            s.updates_per_s,
            s.p99_ms.map_or("-".into(), |p| format!("{p:.1}")),
            s.conflated.map_or("?".into(), |c| format!("{c:.0}")),
            s.slow_consumers.map_or("?".into(), |c| format!("{c:.0}")),
        );
        samples.push(s);
        if interrupted.is_some() || Instant::now() >= end {
            break;
        }
    }
    let measured_secs = t0.elapsed().as_secs_f64();
    shared.recording.store(false, Ordering::Relaxed);
    // Under load the server may answer late: wait longer for this one.
    let mut final_metrics = None;
    for _ in 0..3 {
        if let Ok(m) = scrape(&http, &base, Duration::from_secs(20)).await {
            final_metrics = Some(m);
            break;
        }
    }
    let updates = shared.updates.load(Ordering::Relaxed) - updates_before;
    let other = shared.other_frames.load(Ordering::Relaxed) - other_before;
    let bytes = shared.bytes.load(Ordering::Relaxed) - bytes_before;
    let healthy_at_end = shared.healthy_open.load(Ordering::Relaxed);
    let load_at_end = load_average();

    // ---- stop: close every client, let the server settle, sample it once more
    let _ = stop_tx.send(true);
    wave.join().await;
    tokio::time::sleep(args.settle).await;
    let after = scrape(&http, &base, Duration::from_secs(20)).await.ok();
    samples.push(server.settled_sample(t0, CLOSED, 0, after.as_ref(), 0));

    // ---- extra waves: is the memory kept reused (retention) or does it grow (a leak)?
    for n in 1..=args.extra_waves {
        eprintln!("soak: extra wave {n}: {} healthy clients", args.clients);
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new()?);
        let wave = connect_all(&args, server.addr, &shared, stop_rx, false).await;
        tokio::time::sleep(args.settle).await;
        let m = scrape(&http, &base, Duration::from_secs(20)).await.ok();
        let open = wave.connected as u64;
        samples.push(server.settled_sample(t0, WAVE_CONNECTED, n, m.as_ref(), open));
        let _ = stop_tx.send(true);
        wave.join().await;
        tokio::time::sleep(args.settle).await;
        let m = scrape(&http, &base, Duration::from_secs(20)).await.ok();
        samples.push(server.settled_sample(t0, WAVE_CLOSED, n, m.as_ref(), 0));
    }
    let hwm_kib = memory_kib(server.pid).map_or(0, |m| m.1);
    drop(server);

    let report = Report {
        args: &args,
        started_at,
        load_at_start,
        load_at_end,
        connected,
        stalled,
        failures,
        connect_secs,
        measured_secs,
        interrupted,
        delivery: delivery_total,
        age: age_total,
        updates,
        other,
        bytes,
        healthy_at_end,
        shared: &shared,
        samples,
        hwm_kib,
        metrics: final_metrics,
        metrics_after: after.unwrap_or_default(),
    }
    .render();
    print!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("soak: report written to {}", path.display());
    }
    Ok(())
}

// ------------------------------------------------------------------------ the report

/// Everything the report shows.
struct Report<'a> {
    args: &'a Args,
    started_at: String,
    load_at_start: String,
    load_at_end: String,
    connected: usize,
    stalled: usize,
    failures: BTreeMap<String, u64>,
    connect_secs: f64,
    measured_secs: f64,
    interrupted: Option<f64>,
    delivery: Histogram<u64>,
    age: Histogram<u64>,
    updates: u64,
    other: u64,
    bytes: u64,
    healthy_at_end: u64,
    shared: &'a Shared,
    samples: Vec<Sample>,
    hwm_kib: u64,
    /// `/metrics` at the end of the measured phase, if the server answered.
    metrics: Option<BTreeMap<String, f64>>,
    /// `/metrics` once every client had left.
    metrics_after: BTreeMap<String, f64>,
}

impl Report<'_> {
    fn render(&self) -> String {
        let a = self.args;
        let mut o = String::new();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let failed: u64 = self.failures.values().sum();
        let _ = writeln!(
            o,
            "# rtdash soak report: {} clients, {} % stalled, {:.0} s\n",
            a.clients, a.stalled_percent, self.measured_secs
        );
        let _ = writeln!(o, "- started: {}", self.started_at);
        let _ = writeln!(
            o,
            "- machine: {}; load average (1 min) {} at start, {} at the end of the measured \
             phase (other work on the machine included)",
            machine_description(),
            self.load_at_start,
            self.load_at_end
        );
        let _ = writeln!(
            o,
            "- command: `soak {}`",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        let _ = writeln!(
            o,
            "- server: `{} --addr 127.0.0.1:0 --seed {}` (demo producer on, default \
             TransportConfig: conflate policy, 10 s write timeout, 60 s idle timeout)",
            a.server.display(),
            a.seed
        );
        let _ = writeln!(
            o,
            "- dashboards: `ops` (12 widgets, seeded) and `soak` ({} widgets, half refreshed \
             every {} s, half every 1 s); clients alternate between them",
            a.widgets, a.refresh
        );
        let _ = writeln!(
            o,
            "- clients: {} ({} stalled: SO_RCVBUF {}, {}), this process on {} tokio threads",
            a.clients,
            self.stalled,
            if a.stalled_rcvbuf == 0 {
                "system default".to_owned()
            } else {
                format!("{} B", a.stalled_rcvbuf)
            },
            if a.stalled_ping.is_zero() {
                "silent".to_owned()
            } else {
                format!("a `ping` every {:.0} s", a.stalled_ping.as_secs_f64())
            },
            a.client_threads
        );
        if let Some(t) = self.interrupted {
            let _ = writeln!(o, "- **interrupted** after {t:.0} s of the measured phase");
        }

        let _ = writeln!(o, "\n## Connections\n");
        let _ = writeln!(
            o,
            "- connected: {} of {} in {:.1} s ({} healthy, {} stalled asked for)",
            self.connected,
            a.clients,
            self.connect_secs,
            self.connected.saturating_sub(self.stalled),
            self.stalled
        );
        let _ = writeln!(o, "- connection failures: {failed}");
        for (why, n) in &self.failures {
            let _ = writeln!(o, "  - {n} × {why}");
        }
        let ended: Vec<(String, u64)> = self
            .shared
            .ended
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "- healthy clients still connected at the end: {}; ended by the server before the \
             end: {}",
            self.healthy_at_end,
            ended.iter().map(|e| e.1).sum::<u64>()
        );
        for (why, n) in &ended {
            let _ = writeln!(o, "  - {n} × {why}");
        }

        let _ = writeln!(o, "\n## Healthy clients, measured phase\n");
        let _ = writeln!(
            o,
            "| latency (ms) | p50 | p95 | p99 | p99.9 | max | frames |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for (name, h) in [
            ("delivery: receive − `sent_at`", &self.delivery),
            ("event age: receive − newest `event_time`", &self.age),
        ] {
            if h.is_empty() {
                let _ = writeln!(o, "| {name} | – | – | – | – | – | 0 |");
                continue;
            }
            let _ = writeln!(
                o,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.95)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999)),
                ms(h.max()),
                h.len()
            );
        }
        let secs = self.measured_secs.max(1e-3);
        let _ = writeln!(
            o,
            "\n- frames received: {} updates ({:.0}/s) and {} others (snapshots, alerts, \
             dashboard events, welcome); {:.1} MiB ({:.1} MiB/s) of text",
            self.updates,
            self.updates as f64 / secs,
            self.other,
            self.bytes as f64 / 1_048_576.0,
            self.bytes as f64 / 1_048_576.0 / secs
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "- seq check (whole run, every healthy client): {} gaps ({} seqs missed), {} steps \
             back, {} frames before a snapshot, {} resynchronising snapshots",
            load(&self.shared.gaps),
            load(&self.shared.missed_seqs),
            load(&self.shared.steps_back),
            load(&self.shared.unsynced),
            load(&self.shared.resyncs)
        );

        let mean = |name: &str| {
            let sum = self.metrics_after.get(&format!("{name}_sum"))?;
            let count = self.metrics_after.get(&format!("{name}_count"))?;
            (*count > 0.0).then(|| sum / count * 1000.0)
        };
        if let (Some(publish), Some(push)) = (
            mean("rtdash_publish_latency_seconds"),
            mean("rtdash_push_latency_seconds"),
        ) {
            let _ = writeln!(
                o,
                "- server's own view (means over the whole run, from `/metrics`): newest event → \
                 frame published {publish:.1} ms, newest event → frame written to a socket \
                 {push:.1} ms"
            );
        }

        let _ = writeln!(o, "\n## Server memory and load over time\n");
        let _ = writeln!(
            o,
            "| t (s) | server RSS (MiB) | kernel TCP buffers (MiB) | queued in open server sockets (MiB) | server-closed sockets still holding data (n / MiB) | server CPU (cores) | soak CPU (cores) | machine busy | \
             load avg | WS connections | healthy open | updates/s received | interval p99 (ms) \
             | conflated | slow consumers | evicted |"
        );
        let _ = writeln!(
            o,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let opt = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
        for s in &self.samples {
            let t = if s.label.is_empty() {
                format!("{:.0}", s.t)
            } else if s.t < 0.0 {
                format!("before ({})", s.label)
            } else if s.wave > 0 {
                format!("{:.0} (extra wave {}: {})", s.t, s.wave, s.label)
            } else {
                format!("{:.0} ({})", s.t, s.label)
            };
            let busy = |v: f64| {
                if s.label.is_empty() {
                    format!("{v:.2}")
                } else {
                    "–".into()
                }
            };
            let _ = writeln!(
                o,
                "| {t} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                mib(s.rss_kib),
                s.tcp_kib.map_or("–".into(), |k| format!("{:.1}", mib(k))),
                s.sockets.map_or("–".into(), |k| format!(
                    "{:.1}",
                    k.open_queued as f64 / 1_048_576.0
                )),
                s.sockets.map_or("–".into(), |k| format!(
                    "{} / {:.1}",
                    k.closing,
                    k.closing_queued as f64 / 1_048_576.0
                )),
                busy(s.server_cores),
                busy(s.soak_cores),
                if s.label.is_empty() {
                    format!("{:.0} %", s.machine_busy)
                } else {
                    "–".into()
                },
                s.load,
                opt(s.connections),
                if s.label == CLOSED || s.label == WAVE_CLOSED {
                    "0".into()
                } else {
                    s.healthy_open.to_string()
                },
                if s.label.is_empty() {
                    format!("{:.0}", s.updates_per_s)
                } else {
                    "–".into()
                },
                s.p99_ms.map_or("–".into(), |p| format!("{p:.1}")),
                opt(s.conflated),
                opt(s.slow_consumers),
                opt(s.evicted),
            );
        }
        let _ = writeln!(o, "\n{}", self.rss_verdict());
        let _ = writeln!(o, "- server peak RSS (VmHWM): {:.1} MiB", mib(self.hwm_kib));

        let _ = writeln!(
            o,
            "\n## Server counters (`GET /metrics`)\n\nCounters are totals since the server \
             started; gauges are the state at the time.\n"
        );
        let _ = writeln!(
            o,
            "| metric | end of the measured phase | after every client left |\n|---|---:|---:|"
        );
        for (k, v) in &self.metrics_after {
            let keep = [
                "rtdash_active_connections",
                "rtdash_hub_subscribers",
                "rtdash_dashboard_subscribers",
                "rtdash_transport_sessions_total",
                "rtdash_transport_slow_consumers_total",
                "rtdash_transport_frames_sent_total",
                "rtdash_fanout_published_total",
                "rtdash_fanout_delivered_total",
                "rtdash_fanout_conflated_total",
                "rtdash_fanout_dropped_total",
                "rtdash_fanout_evicted_total",
                "rtdash_frames_published_total",
                "rtdash_alerts_fired_total",
                "rtdash_ingest_events_total",
                "rtdash_publish_latency_seconds_sum",
                "rtdash_publish_latency_seconds_count",
                "rtdash_push_latency_seconds_sum",
                "rtdash_push_latency_seconds_count",
            ];
            if keep
                .iter()
                .any(|p| k.starts_with(p) && !k.contains("_bucket"))
            {
                let at_end = self
                    .metrics
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .map_or("no answer".to_owned(), ToString::to_string);
                let _ = writeln!(o, "| `{k}` | {at_end} | {v} |");
            }
        }
        o
    }

    /// RSS after warm-up: first sample at or after `--warmup`, growth to the last measured
    /// sample, least-squares slope; and what the server kept after every client left.
    fn rss_verdict(&self) -> String {
        let measured: Vec<&Sample> = self.samples.iter().filter(|s| s.label.is_empty()).collect();
        let warm: Vec<&Sample> = measured
            .iter()
            .copied()
            .filter(|s| s.t + 0.5 >= self.args.warmup.as_secs_f64())
            .collect();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let idle = self.samples.first().map_or(0, |s| s.rss_kib);
        let closed = self
            .samples
            .iter()
            .find(|s| s.label == CLOSED)
            .map_or(0, |s| s.rss_kib);
        let mut out = String::new();
        if let (Some(first), Some(last)) = (warm.first(), warm.last())
            && warm.len() >= 2
        {
            let n = warm.len() as f64;
            let mx = warm.iter().map(|s| s.t).sum::<f64>() / n;
            let my = warm.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
            let sxy: f64 = warm
                .iter()
                .map(|s| (s.t - mx) * (s.rss_kib as f64 - my))
                .sum();
            let sxx: f64 = warm.iter().map(|s| (s.t - mx).powi(2)).sum();
            let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 } * 60.0 / 1024.0;
            let max = warm.iter().map(|s| s.rss_kib).max().unwrap_or(0);
            let growth = (last.rss_kib as f64 - first.rss_kib as f64) / first.rss_kib.max(1) as f64;
            let _ = writeln!(
                out,
                "- RSS after warm-up (t ≥ {:.0} s): {:.1} MiB at t = {:.0} s, {:.1} MiB at the \
                 end (t = {:.0} s), max {:.1} MiB; growth {:+.1} %, least-squares slope {:+.2} \
                 MiB/min → **{}** (flat = growth under {:.0} %)",
                self.args.warmup.as_secs_f64(),
                mib(first.rss_kib),
                first.t,
                mib(last.rss_kib),
                last.t,
                mib(max),
                growth * 100.0,
                slope,
                if growth.abs() < FLAT_GROWTH {
                    "flat"
                } else {
                    "not flat"
                },
                FLAT_GROWTH * 100.0
            );
        } else {
            let _ = writeln!(
                out,
                "- RSS after warm-up: too few samples after {:.0} s to judge",
                self.args.warmup.as_secs_f64()
            );
        }
        let _ = write!(
            out,
            "- memory kept after every client left: {:.1} MiB after {:.0} s, against {:.1} MiB \
             idle before the clients ({:+.1} MiB)",
            mib(closed),
            self.args.settle.as_secs_f64(),
            mib(idle),
            mib(closed) - mib(idle)
        );
        let waves: Vec<(&Sample, &Sample)> = (1..=self.args.extra_waves)
            .filter_map(|n| {
                let of = |label: &str| {
                    self.samples
                        .iter()
                        .find(|s| s.wave == n && s.label == label)
                };
                Some((of(WAVE_CONNECTED)?, of(WAVE_CLOSED)?))
            })
            .collect();
        if !waves.is_empty() {
            let list: Vec<String> = waves
                .iter()
                .map(|(on, off)| format!("{:.1} → {:.1}", mib(on.rss_kib), mib(off.rss_kib)))
                .collect();
            let _ = write!(
                out,
                "\n- extra waves of {} healthy clients (connected, held {:.0} s, closed), RSS \
                 MiB connected → closed: {}",
                self.args.clients,
                self.args.settle.as_secs_f64(),
                list.join("; ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_check_counts_gaps_and_resets_on_snapshot() {
        let mut c = SeqCheck::default();
        assert_eq!(c.sequenced(3), SeqOutcome::Unsynced);
        c.snapshot(10);
        assert_eq!(c.sequenced(11), SeqOutcome::InOrder);
        assert_eq!(c.sequenced(14), SeqOutcome::Gap(2));
        assert_eq!(c.sequenced(15), SeqOutcome::InOrder);
        assert_eq!(c.sequenced(15), SeqOutcome::StepBack);
        c.snapshot(40);
        assert_eq!(c.sequenced(41), SeqOutcome::InOrder);
    }

    #[test]
    fn stalled_clients_are_spread() {
        let a = Args {
            clients: 10_000,
            stalled_percent: 1.0,
            ..Args::default()
        };
        let stalled: Vec<usize> = (0..a.clients).filter(|&i| a.is_stalled(i)).collect();
        assert_eq!(stalled.len(), 100);
        assert!(stalled.windows(2).all(|w| w[1] - w[0] == 100));
        let none = Args {
            stalled_percent: 0.0,
            ..a
        };
        assert!((0..none.clients).all(|i| !none.is_stalled(i)));
    }

    #[test]
    fn the_soak_dashboard_is_valid() {
        for n in [1, 32, 40, 100] {
            let doc = soak_dashboard(n, 0.5);
            let doc = rtdash::DashboardDoc::from_json(doc.to_string().as_bytes()).unwrap();
            assert_eq!(doc.dashboard.widgets.len(), n);
        }
    }

    #[test]
    fn parses_flags() {
        let p = |v: &[&str]| parse_args(v.iter().map(|s| (*s).to_owned()));
        let a = p(&["--clients", "50", "--stalled-percent=0", "--duration", "6"])
            .unwrap()
            .unwrap();
        assert_eq!((a.clients, a.stalled(), a.duration.as_secs()), (50, 0, 6));
        for bad in [
            &["--clients"][..],
            &["--stalled-percent", "101"],
            &["--widgets", "0"],
            &["--refresh", "0.01"],
            &["--what", "1"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
