//! WebSocket load generator: N clients against an rtdash-transport server in
//! a separate process, reporting delivered messages/s, event→client latency
//! and server memory per connection.
//!
//! Run with:
//!
//! ```text
//! ulimit -n 65536   # or as high as the hard limit allows; 2 fds per client
//! cargo run --release --example loadgen -- --clients 1000 --duration 15
//! cargo run --release --example loadgen -- --clients 10000 --topics 10 --rate 20 --duration 15
//! ```
//!
//! The program starts itself again with `--server` as the server process
//! (so its memory can be read from `/proc/<pid>/status`), connects
//! `--clients` WebSocket clients to it on 127.0.0.1 only, each subscribed to
//! one of `--topics` dashboards, measures the server's idle memory, then
//! tells the server to publish one update frame carrying `--widgets` widget
//! values per topic `--rate` times a second for `--duration` seconds. Every
//! frame carries its event time; each client records `receive time − event
//! time` in an HDR histogram (the event time has millisecond resolution, so
//! latencies are over-estimated by up to 1 ms). It stops by itself.
//!
//! Flags: `--clients N` (1000), `--topics N` (10), `--rate N` updates per
//! second per topic (20), `--widgets N` values per update (8), `--duration S`
//! seconds of publishing (15), `--connect-concurrency N` (200),
//! `--subs N` topics per client (1), `--server-threads N` (2),
//! `--client-threads N` (2), `--aligned` (all
//! topics publish at the same instant instead of spread over the period),
//! `--baseline` (see below), `--cluster` and `--redis URL` (see the end),
//! `--help`.
//!
//! `--baseline` runs the same load against a naive peer server instead of
//! rtdash-transport: one `tokio::sync::broadcast` channel per topic and, per
//! connection, a task that writes every frame with `send` (one flush each),
//! the way a minimal Go or Node WebSocket fan-out is written. It has no
//! protocol, auth, policies, heartbeats or limits; it sends the same frames,
//! so the two runs show what rtdash costs over a bare fan-out on the same
//! machine (and where the machine itself is the limit).
//!
//! `--cluster` (cargo feature `redis`) runs the same load against three
//! server processes sharing a Redis backplane:
//!
//! ```text
//! cargo run --release --features redis --example loadgen -- --cluster --clients 9000 --topics 10 --rate 20 --duration 15
//! ```
//!
//! The load generator starts its own `redis-server` on a free port of
//! 127.0.0.1 (without persistence; stopped at the end), or uses `--redis URL`.
//! Every node serves its clients from a mirrored hub that follows Redis
//! (`Backplane::mirror`); node 0, the "aggregator", also publishes the frames
//! through the backplane's publisher, in pieces Redis numbers and assembles
//! into the same bytes the single-node server sends; nodes 1 and 2 are
//! "edges" that only serve. `--clients` are spread evenly over the three
//! nodes, so every frame travels aggregator → Redis → each node → its
//! clients, and the latency includes the trip through Redis. The report adds
//! each node's clients, memory and CPU, Redis's own, and each node's counters
//! (the aggregator's backplane `published`, `suppressed`, `absorbed`). With
//! `--redis URL` the run's keys (prefix `loadgen-<pid>`) are deleted at the end.
//!
//! Flags of cluster mode: `--cluster`, `--redis URL` (default: a
//! `redis-server` of its own). The server processes also get `--node N` and
//! `--prefix P` (internal).

#[path = "support/procfs.rs"]
mod procfs;

use procfs::{cpu_ticks, machine_jiffies, memory_kib};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use hdrhistogram::Histogram;
use rtdash::{Timestamp, Uuid, WidgetState, encode_update};
use rtdash_transport::{
    FrameHub, Principal, StaticTokens, Topic, TopicAccess, Transport, TransportConfig, serve,
    unix_millis,
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const TOKEN: &str = "loadgen-token";
const SHARDS: usize = 32;

#[derive(Debug, Clone)]
struct Args {
    server: bool,
    clients: usize,
    topics: usize,
    rate: u32,
    widgets: usize,
    duration: u64,
    connect_concurrency: usize,
    server_threads: usize,
    client_threads: usize,
    aligned: bool,
    subs: usize,
    baseline: bool,
    cluster: bool,
    /// `--redis URL` of `--cluster` (the driver's own redis-server when `None`).
    redis: Option<String>,
    /// `--node N` of a cluster's server process: 0 is the aggregator.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    node: usize,
    /// `--prefix P` of a cluster's server process: the backplane's key prefix.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    prefix: String,
}

const USAGE: &str =
    "usage: loadgen [--clients N] [--topics N] [--rate N] [--widgets N] [--duration S]
               [--connect-concurrency N] [--subs N] [--server-threads N] [--client-threads N]
               [--aligned] [--baseline | --cluster [--redis URL]]
  --cluster      three server processes sharing a Redis backplane (cargo feature `redis`):
                 node 0 publishes through Redis, all three serve an equal share of the clients
  --redis URL    the Redis of --cluster (default: a redis-server of its own on a free port)";

impl Args {
    fn parse() -> Result<Self, String> {
        let mut a = Self {
            server: false,
            clients: 1000,
            topics: 10,
            rate: 20,
            widgets: 8,
            duration: 15,
            connect_concurrency: 200,
            server_threads: 2,
            client_threads: 2,
            aligned: false,
            subs: 1,
            baseline: false,
            cluster: false,
            redis: None,
            node: 0,
            prefix: String::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--server" {
                a.server = true;
                continue;
            }
            if flag == "--aligned" {
                a.aligned = true;
                continue;
            }
            if flag == "--baseline" {
                a.baseline = true;
                continue;
            }
            if flag == "--cluster" {
                a.cluster = true;
                continue;
            }
            if flag == "--help" || flag == "-h" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--redis" => {
                    a.redis = Some(value);
                    continue;
                }
                "--prefix" => {
                    a.prefix = value;
                    continue;
                }
                _ => {}
            }
            let n: u64 = value
                .parse()
                .map_err(|_| format!("{flag}: `{value}` is not a number"))?;
            let as_usize = usize::try_from(n).map_err(|_| format!("{flag}: too large"))?;
            match flag.as_str() {
                "--clients" => a.clients = as_usize,
                "--topics" => a.topics = as_usize.max(1),
                "--rate" => a.rate = u32::try_from(n).map_err(|_| "--rate: too large")?.max(1),
                "--widgets" => a.widgets = as_usize.max(1),
                "--duration" => a.duration = n.clamp(1, 120),
                "--connect-concurrency" => a.connect_concurrency = as_usize.max(1),
                "--server-threads" => a.server_threads = as_usize.max(1),
                "--client-threads" => a.client_threads = as_usize.max(1),
                "--subs" => a.subs = as_usize.max(1),
                "--node" => a.node = as_usize,
                other => return Err(format!("unknown flag {other}\n{USAGE}")),
            }
        }
        if (a.cluster || a.redis.is_some()) && !cfg!(feature = "redis") {
            return Err(
                "--cluster needs the cargo feature `redis`: build with `--features redis`, \
                 e.g. cargo run --release --features redis --example loadgen -- --cluster"
                    .to_owned(),
            );
        }
        if a.redis.is_some() && !a.cluster {
            return Err("--redis URL is a flag of --cluster".to_owned());
        }
        if a.cluster && a.baseline {
            return Err("--cluster and --baseline exclude each other".to_owned());
        }
        Ok(a)
    }

    fn to_server_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            "--clients".into(),
            self.clients.to_string(),
            "--topics".into(),
            self.topics.to_string(),
            "--rate".into(),
            self.rate.to_string(),
            "--widgets".into(),
            self.widgets.to_string(),
            "--duration".into(),
            self.duration.to_string(),
            "--server-threads".into(),
            self.server_threads.to_string(),
        ]
        .into_iter()
        .chain(self.aligned.then(|| "--aligned".to_owned()))
        .chain(self.baseline.then(|| "--baseline".to_owned()))
        .collect()
    }
}

fn main() {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let threads = if args.server {
        args.server_threads
    } else {
        args.client_threads
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    #[cfg(feature = "redis")]
    if args.cluster {
        if args.server {
            rt.block_on(cluster::run_server(args));
            return;
        }
        if let Err(e) = rt.block_on(cluster::run_driver(args)) {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
        // As in the single-node mode: no need to wind the clients down one by one.
        std::process::exit(0);
    }
    if args.server && args.baseline {
        rt.block_on(run_baseline_server(args));
    } else if args.server {
        rt.block_on(run_server(args));
    } else {
        rt.block_on(run_driver(args));
    }
}

fn topic_name(i: usize) -> String {
    format!("dash-{i}")
}

// ---------------------------------------------------------------- server

async fn run_server(args: Args) {
    let auth = StaticTokens::new().with_token(TOKEN, Principal::new("loadgen", TopicAccess::all()));
    let max =
        std::num::NonZeroUsize::new(args.clients + 100).unwrap_or(std::num::NonZeroUsize::MIN);
    let config = TransportConfig::default().with_max_connections(max);
    let transport = Transport::new(FrameHub::<u32>::default(), auth, config);
    let topics: Vec<Topic> = (0..args.topics).map(|i| topic_name(i).into()).collect();
    let widget_ids = widget_ids(&args);
    let keys: Vec<u32> = (0..widget_ids.len() as u32).collect();
    let publish = |i: usize, round: u64| {
        let topic = &topics[i];
        let now = unix_millis(SystemTime::now());
        let items = widget_values(&widget_ids, round, now);
        transport
            .hub()
            .publish_with(topic, keys.iter().copied(), |seq| {
                encode_update(topic, seq, now, &items)
            });
    };
    // One value per widget before clients connect, so snapshots are not empty.
    for i in 0..topics.len() {
        publish(i, 0);
    }

    let (stop_tx, server) = listen(&transport).await;
    command_loop(&args, publish, || {
        let stats = transport.stats();
        format!(
            "frames_sent={} active={}",
            stats.frames_sent, stats.active_connections
        )
    })
    .await;
    let _ = stop_tx.send(());
    let _ = server.await;
}

/// The naive peer server of `--baseline`: a broadcast channel per topic, a
/// writer task per connection, every frame sent (and flushed) on its own.
async fn run_baseline_server(args: Args) {
    let (senders, _): (Vec<_>, Vec<_>) = (0..args.topics)
        .map(|_| tokio::sync::broadcast::channel::<Utf8Bytes>(1024))
        .unzip();
    let senders = Arc::new(senders);
    let widget_ids = widget_ids(&args);
    let seqs: Vec<AtomicU64> = (0..args.topics).map(|_| AtomicU64::new(0)).collect();
    let sent = Arc::new(AtomicU64::new(0));
    let active = Arc::new(AtomicU64::new(0));
    let publish = |i: usize, round: u64| {
        let now = unix_millis(SystemTime::now());
        let items = widget_values(&widget_ids, round, now);
        let seq = seqs[i].fetch_add(1, Ordering::Relaxed) + 1;
        let frame = encode_update(&topic_name(i), seq, now, &items);
        // No receiver yet is fine.
        let _ = senders[i].send(Utf8Bytes::from(frame.as_str()));
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    println!("LISTENING {port}");
    let accept = {
        let senders = Arc::clone(&senders);
        let (sent, active) = (Arc::clone(&sent), Arc::clone(&active));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let senders = Arc::clone(&senders);
                let (sent, active) = (Arc::clone(&sent), Arc::clone(&active));
                tokio::spawn(baseline_conn(stream, senders, sent, active));
            }
        })
    };
    command_loop(&args, publish, || {
        format!(
            "frames_sent={} active={}",
            sent.load(Ordering::Relaxed),
            active.load(Ordering::Relaxed)
        )
    })
    .await;
    accept.abort();
}

/// One connection of the baseline server: subscribe to the topics named in
/// the URL's `topics=` parameter, send one frame per topic plus a greeting
/// (what the load generator waits for), then forward every broadcast frame.
async fn baseline_conn(
    stream: tokio::net::TcpStream,
    senders: Arc<Vec<tokio::sync::broadcast::Sender<Utf8Bytes>>>,
    sent: Arc<AtomicU64>,
    active: Arc<AtomicU64>,
) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    let mut wanted: Vec<usize> = Vec::new();
    // The error type is tungstenite's (an HTTP response); never returned here.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        let query = req.uri().query().unwrap_or_default();
        // The load generator's own URLs: `topics=dash-0,dash-7`, unescaped.
        for v in query.split('&').filter_map(|kv| kv.strip_prefix("topics=")) {
            wanted.extend(
                v.split(',')
                    .filter_map(|t| t.strip_prefix("dash-")?.parse::<usize>().ok()),
            );
        }
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let mut rxs: Vec<_> = wanted
        .iter()
        .filter_map(|&i| {
            senders
                .get(i)
                .map(tokio::sync::broadcast::Sender::subscribe)
        })
        .collect();
    for _ in 0..=rxs.len() {
        if ws
            .send(Message::text("{\"type\":\"hello\"}"))
            .await
            .is_err()
        {
            return;
        }
    }
    active.fetch_add(1, Ordering::Relaxed);
    loop {
        let frame = if let [rx] = rxs.as_mut_slice() {
            rx.recv().await
        } else {
            let recvs = rxs.iter_mut().map(|rx| Box::pin(rx.recv()));
            futures::future::select_all(recvs).await.0
        };
        match frame {
            Ok(text) => {
                if ws.send(Message::Text(text)).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    active.fetch_sub(1, Ordering::Relaxed);
}

/// Serves `transport` on a free port of 127.0.0.1 and tells the driver with
/// `LISTENING <port>`; returns the switch that stops it and the server task.
async fn listen<K: rtdash::fanout::Key>(
    transport: &Transport<K>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, transport.clone(), async {
        let _ = stop_rx.await;
    }));
    println!("LISTENING {port}");
    (stop_tx, server)
}

/// The lines of stdin, read on a thread of their own (the driver's commands).
fn stdin_commands() -> tokio::sync::mpsc::Receiver<String> {
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if cmd_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    cmd_rx
}

/// Reads commands on stdin: `start` calls `publish(topic index, round)` for
/// `--duration` s at `--rate` per topic, then prints `DONE published=N` and
/// `done()`; `quit` returns.
async fn command_loop(args: &Args, publish: impl Fn(usize, u64), done: impl Fn() -> String) {
    let mut cmd_rx = stdin_commands();
    while let Some(cmd) = cmd_rx.recv().await {
        match cmd.trim() {
            "start" => {
                // Dashboards refresh on their own timers: by default topic i
                // publishes at phase i/topics of the period (`--aligned`:
                // all topics at the same instant, the burstiest case).
                let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
                let slots = if args.aligned { 1 } else { args.topics as u32 };
                let mut tick = tokio::time::interval(period / slots);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let end = Instant::now() + Duration::from_secs(args.duration);
                let mut n = 0u64;
                let mut published = 0u64;
                while Instant::now() < end {
                    tick.tick().await;
                    let round = n / u64::from(slots) + 1;
                    if args.aligned {
                        for i in 0..args.topics {
                            publish(i, round);
                        }
                        published += args.topics as u64;
                    } else {
                        publish((n % u64::from(slots)) as usize, round);
                        published += 1;
                    }
                    n += 1;
                }
                println!("DONE published={published} {}", done());
            }
            "quit" => break,
            _ => {}
        }
    }
}

fn widget_ids(args: &Args) -> Vec<Uuid> {
    (0..args.widgets)
        .map(|i| Uuid::parse_str(&format!("00000000-0000-4000-8000-{i:012}")).expect("a UUID"))
        .collect()
}

/// The values of one update of round `n`.
fn widget_values(widgets: &[Uuid], n: u64, now: i64) -> Vec<WidgetState> {
    let now = Timestamp::from_millis(now);
    widgets
        .iter()
        .enumerate()
        .map(|(i, &widget_id)| WidgetState {
            dashboard_id: String::new(),
            widget_id,
            value: Some(n as f64 + i as f64 * 0.5),
            count: 1,
            window_start: now,
            window_end: now,
            last_event_time: Some(now),
            stale: false,
            groups: None,
            evaluated_at: now,
        })
        .collect()
}

// ---------------------------------------------------------------- driver

struct Shared {
    hist: Vec<Mutex<Histogram<u64>>>,
    frames: AtomicU64,
    values: AtomicU64,
    closed: AtomicU64,
}

fn spawn_server(args: &Args) -> (Child, u16) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(args.to_server_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server process");
    let stdout = child.stdout.take().expect("server stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("read server stdout");
        if let Some(p) = line.strip_prefix("LISTENING ") {
            break p.trim().parse().expect("port");
        }
    };
    // Forward the rest of the server's output.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("  [server] {line}");
        }
    });
    (child, port)
}

/// The first line of a run: the load.
fn print_load(args: &Args) {
    println!(
        "loadgen: {} clients x {} topics each, {} topics, {} updates/s per topic ({}), {} widgets per update, {} s",
        args.clients,
        args.subs.min(args.topics),
        args.topics,
        args.rate,
        if args.aligned { "aligned" } else { "staggered" },
        args.widgets,
        args.duration
    );
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            hist: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram"))
                })
                .collect(),
            frames: AtomicU64::new(0),
            values: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        })
    }

    /// The latencies of every client so far.
    fn latencies(&self) -> Histogram<u64> {
        let mut total = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram");
        for h in &self.hist {
            let _ = total.add(&*h.lock().expect("histogram lock"));
        }
        total
    }
}

/// The delivery and latency lines of the results.
fn print_delivery(frames: u64, values: u64, elapsed: f64, expected: f64, total: &Histogram<u64>) {
    println!(
        "delivered: {frames} update frames in {elapsed:.1} s = {:.0} msgs/s ({:.0} widget values/s); offered {expected:.0} msgs/s",
        frames as f64 / elapsed,
        values as f64 / elapsed
    );
    println!(
        "latency event->client (ms): p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n={})",
        total.value_at_quantile(0.50) as f64 / 1000.0,
        total.value_at_quantile(0.95) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        total.max() as f64 / 1000.0,
        total.len()
    );
}

async fn run_driver(args: Args) {
    print_load(&args);
    let (mut child, port) = spawn_server(&args);
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = memory_kib(pid).map(|m| m.0).unwrap_or(0);

    let shared = Shared::new();

    // Connect with bounded concurrency; each client waits for its snapshot.
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(1024);
    for i in 0..args.clients {
        let permit = Arc::clone(&sem).acquire_owned().await.expect("semaphore");
        let subs = args.subs.min(args.topics);
        let topics: Vec<String> = (0..subs)
            .map(|j| topic_name((i * subs + j) % args.topics))
            .collect();
        let url = format!(
            "ws://127.0.0.1:{port}/?token={TOKEN}&topics={}",
            topics.join(",")
        );
        let shared = Arc::clone(&shared);
        let ready = ready_tx.clone();
        let widgets = args.widgets as u64;
        tokio::spawn(async move { client(i, url, widgets, 1 + subs, shared, ready, permit).await });
    }
    drop(ready_tx);
    let mut connected = 0usize;
    let mut failed = 0usize;
    while let Some(ok) = ready_rx.recv().await {
        if ok {
            connected += 1;
        } else {
            failed += 1;
        }
        if connected + failed == args.clients {
            break;
        }
    }
    println!(
        "connected {connected} clients ({failed} failed) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = memory_kib(pid).map(|m| m.0).unwrap_or(0);
    let per_conn = if connected > 0 {
        (rss_idle.saturating_sub(rss_before)) as f64 * 1024.0 / connected as f64
    } else {
        0.0
    };

    // Publish phase.
    for h in &shared.hist {
        h.lock().expect("histogram lock").reset();
    }
    let frames0 = shared.frames.load(Ordering::Relaxed);
    let values0 = shared.values.load(Ordering::Relaxed);
    let mut stdin = child.stdin.take().expect("server stdin");
    let cpu0 = machine_jiffies();
    let server_ticks0 = cpu_ticks(pid);
    let me = std::process::id();
    let driver_ticks0 = cpu_ticks(me);
    writeln!(stdin, "start").expect("command server");
    let started = Instant::now();
    let mut rss_peak = rss_idle;
    while started.elapsed() < Duration::from_secs(args.duration) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(memory_kib(pid).map(|m| m.0).unwrap_or(0));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu1 = machine_jiffies();
    let server_ticks = cpu_ticks(pid).zip(server_ticks0).map(|(a, b)| a - b);
    let driver_ticks = cpu_ticks(me).zip(driver_ticks0).map(|(a, b)| a - b);
    let frames = shared.frames.load(Ordering::Relaxed) - frames0;
    let values = shared.values.load(Ordering::Relaxed) - values0;
    // Let in-flight frames arrive before reading the histogram.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = shared.latencies();
    let expected = args.rate as f64 * (args.clients * args.subs.min(args.topics)) as f64;
    println!(
        "--- results ({} clients, machine shared with other work) ---",
        connected
    );
    print_delivery(frames, values, elapsed, expected, &total);
    println!(
        "server RSS: {} KiB before, {} KiB with {connected} idle clients => {:.0} bytes per connection; peak under load {} KiB",
        rss_before, rss_idle, per_conn, rss_peak
    );
    if let (Some((b0, t0)), Some((b1, t1))) = (cpu0, cpu1) {
        // Clock ticks are 100 per second on Linux.
        let secs = |t: Option<u64>| t.map_or(0.0, |t| t as f64 / 100.0);
        println!(
            "CPU while publishing: machine {:.0}% busy (2 cores = 200%: {:.0}%); server process {:.2} cores, load generator {:.2} cores, rest = kernel softirq and other work",
            (b1 - b0) as f64 * 100.0 / (t1 - t0).max(1) as f64,
            (b1 - b0) as f64 * 200.0 / (t1 - t0).max(1) as f64,
            secs(server_ticks) / elapsed,
            secs(driver_ticks) / elapsed
        );
    }
    println!(
        "clients closed by server: {}",
        shared.closed.load(Ordering::Relaxed)
    );
    let _ = writeln!(stdin, "quit");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    std::process::exit(0);
}

/// Milliseconds since the epoch in the first `"event_time":` of a frame.
fn event_time(text: &str) -> Option<i64> {
    const KEY: &str = "\"event_time\":";
    let start = text.find(KEY)? + KEY.len();
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn client(
    id: usize,
    url: String,
    widgets: u64,
    first_frames: usize,
    shared: Arc<Shared>,
    ready: tokio::sync::mpsc::Sender<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let connected =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await;
    let Ok((mut ws, _)) = connected else {
        drop(permit);
        let _ = ready.send(false).await;
        return;
    };
    // Wait for welcome and the snapshots before counting as connected.
    let mut seen = 0;
    while seen < first_frames {
        match ws.next().await {
            Some(Ok(Message::Text(_))) => seen += 1,
            Some(Ok(_)) => {}
            _ => {
                drop(permit);
                let _ = ready.send(false).await;
                return;
            }
        }
    }
    drop(permit);
    let _ = ready.send(true).await;
    let shard = id % SHARDS;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => {
                let text = t.as_str();
                if !text.starts_with("{\"type\":\"update\"") {
                    continue;
                }
                let now_us = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0);
                shared.frames.fetch_add(1, Ordering::Relaxed);
                shared.values.fetch_add(widgets, Ordering::Relaxed);
                if let Some(ev_ms) = event_time(text) {
                    let lat = (now_us - ev_ms * 1000).max(1) as u64;
                    if let Ok(mut h) = shared.hist[shard].lock() {
                        let _ = h.record(lat);
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => {
                shared.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(_) => {}
        }
    }
}

// ---------------------------------------------------------------- cluster

/// `--cluster`: three server processes sharing a Redis backplane (see the
/// module documentation).
#[cfg(feature = "redis")]
mod cluster {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, Instant, SystemTime};

    use rtdash::fanout::HubConfig;
    use rtdash::redis::{Backplane, BackplaneConfig, BackplaneKey, Part, Publication};
    use rtdash::{WidgetState, encode_update};
    use rtdash_transport::{
        Principal, StaticTokens, Topic, TopicAccess, Transport, TransportConfig, unix_millis,
    };

    use super::procfs::{cpu_ticks, machine_jiffies, memory_kib};
    use super::{
        Args, Shared, TOKEN, client, command_loop, print_delivery, print_load, topic_name,
        widget_ids, widget_values,
    };

    /// Server processes: node 0 publishes (the aggregator), the others only
    /// serve (edges).
    const NODES: usize = 3;
    /// How long a node may take to listen (the aggregator waits until Redis
    /// holds its first frames; it gives up after `NODE_START_TIMEOUT`).
    const START_TIMEOUT: Duration = Duration::from_secs(30);
    const NODE_START_TIMEOUT: Duration = Duration::from_secs(20);
    /// How long a client may take to connect and get its snapshots.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

    /// The backplane key of a widget value: its place in the frame (`w0`, `w1`, ...).
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Widget(u32);

    impl BackplaneKey for Widget {
        fn to_name(&self) -> String {
            format!("w{}", self.0)
        }

        fn from_name(name: &str) -> Option<Self> {
            name.strip_prefix('w')?.parse().ok().map(Self)
        }
    }

    fn role(node: usize) -> &'static str {
        if node == 0 { "aggregator" } else { "edge" }
    }

    /// The frame `encode_update(topic, seq, now, items)` in the pieces Redis
    /// assembles, `head + seq + mid + fragments.join(",") + tail`: one part
    /// per widget value, all at `version`.
    fn publication(topic: &Topic, now: i64, items: &[WidgetState], version: i64) -> Publication {
        const SEQ: &str = r#""seq":"#;
        let empty = encode_update(topic, 0, now, &[]);
        let empty = empty.as_str();
        // Topics are `dash-<i>`: the first `"seq":` is the frame's own.
        let cut = empty.find(SEQ).map_or(0, |i| i + SEQ.len());
        // Items start where the empty frame's closing `]}` is.
        let items_at = empty.len() - "]}".len();
        let parts = items
            .iter()
            .enumerate()
            .map(|(k, item)| {
                let one = encode_update(topic, 0, now, std::slice::from_ref(item));
                let one = one.as_str();
                Part {
                    key: Widget(k as u32).to_name(),
                    version: (version, 0),
                    fragment: one[items_at..one.len() - "]}".len()].to_owned(),
                }
            })
            .collect();
        Publication {
            topic: Arc::clone(topic),
            head: empty[..cut].to_owned(),
            // After the `0` of the sequence number, up to the items.
            mid: empty[cut + 1..items_at].to_owned(),
            tail: "]}".to_owned(),
            parts,
            cached: true,
            conflate: true,
            event_time: Some(now),
        }
    }

    fn fail(node: usize, msg: &str) -> ! {
        eprintln!("loadgen node {node}: {msg}");
        std::process::exit(1)
    }

    /// A server process of the cluster: serves its clients from a mirrored
    /// hub that follows Redis; node 0 also publishes through Redis on the
    /// driver's `start`, as the single-node server publishes to its hub.
    pub(super) async fn run_server(args: Args) {
        let node = args.node;
        let Some(url) = args.redis.as_deref() else {
            fail(node, "--redis URL missing")
        };
        let config =
            BackplaneConfig::new(format!("{}-node{node}", args.prefix)).with_prefix(&args.prefix);
        let backplane =
            Backplane::new(url, config).unwrap_or_else(|e| fail(node, &format!("backplane: {e}")));
        let mirror = backplane.mirror::<Widget>(HubConfig::default());
        let hub = mirror.hub().clone();
        let mirror_task = mirror.spawn();
        let auth =
            StaticTokens::new().with_token(TOKEN, Principal::new("loadgen", TopicAccess::all()));
        let max =
            std::num::NonZeroUsize::new(args.clients + 100).unwrap_or(std::num::NonZeroUsize::MIN);
        let config = TransportConfig::default().with_max_connections(max);
        let transport = Transport::new(hub, auth, config);

        let topics: Vec<Topic> = (0..args.topics).map(|i| topic_name(i).into()).collect();
        let widget_ids = widget_ids(&args);
        let publisher = (node == 0).then(|| backplane.publisher());
        let version = AtomicI64::new(0);
        let publish = |i: usize, round: u64| {
            let Some(publisher) = &publisher else { return };
            let now = unix_millis(SystemTime::now());
            let items = widget_values(&widget_ids, round, now);
            let v = version.fetch_add(1, Ordering::Relaxed) + 1;
            if let Err(e) = publisher.publish(publication(&topics[i], now, &items, v)) {
                eprintln!("loadgen node {node}: publication refused: {e}");
            }
        };
        if publisher.is_some() {
            // Redis must build the bytes the single-node server sends.
            let now = unix_millis(SystemTime::now());
            let items = widget_values(&widget_ids, 0, now);
            let p = publication(&topics[0], now, &items, 0);
            let fragments: Vec<&str> = p.parts.iter().map(|x| x.fragment.as_str()).collect();
            assert_eq!(
                format!("{}7{}{}{}", p.head, p.mid, fragments.join(","), p.tail),
                encode_update(&topics[0], 7, now, &items).as_str(),
                "the pieces do not assemble to the frame"
            );
            // One value per widget in Redis before clients connect, so
            // snapshots are not empty.
            for i in 0..topics.len() {
                publish(i, 0);
            }
            let deadline = Instant::now() + NODE_START_TIMEOUT;
            loop {
                let s = backplane.stats();
                if s.published + s.suppressed >= topics.len() as u64 {
                    break;
                }
                if Instant::now() > deadline {
                    let msg = format!(
                        "Redis at {} did not take the first frames within {} s (is it reachable?)",
                        redact(url),
                        NODE_START_TIMEOUT.as_secs()
                    );
                    fail(node, &msg);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        let (stop_tx, server) = super::listen(&transport).await;
        let done = || {
            let t = transport.stats();
            let b = backplane.stats();
            let published = if node == 0 {
                format!(
                    "published={} suppressed={} absorbed={} dropped={} publish_errors={} ",
                    b.published, b.suppressed, b.absorbed, b.dropped, b.publish_errors
                )
            } else {
                String::new()
            };
            format!(
                "frames_sent={} active={} | backplane: {published}received={} duplicates={} gaps={} catchups={} resyncs={} inbox_dropped={} reconnects={} subscriptions={}",
                t.frames_sent,
                t.active_connections,
                b.received,
                b.duplicates,
                b.gaps,
                b.catchups,
                b.resyncs,
                b.inbox_dropped,
                b.reconnects,
                b.subscriptions
            )
        };
        if node == 0 {
            command_loop(&args, publish, done).await;
        } else {
            edge_loop(&args, done).await;
        }
        let _ = stop_tx.send(());
        let _ = server.await;
        mirror_task.abort();
    }

    /// An edge's commands on stdin: `start` waits `--duration` s (while the
    /// aggregator publishes), then prints `DONE` and `done()`; `quit` returns.
    async fn edge_loop(args: &Args, done: impl Fn() -> String) {
        let mut cmd_rx = super::stdin_commands();
        while let Some(cmd) = cmd_rx.recv().await {
            match cmd.trim() {
                "start" => {
                    tokio::time::sleep(Duration::from_secs(args.duration)).await;
                    println!("DONE {}", done());
                }
                "quit" => break,
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------ driver

    /// The child processes: killed and reaped on drop (the nodes first), so
    /// that a run that fails or is interrupted leaves nothing behind.
    #[derive(Default)]
    struct Children {
        nodes: Vec<Child>,
        redis: Option<Child>,
    }

    impl Drop for Children {
        fn drop(&mut self) {
            for c in self.nodes.iter_mut().chain(self.redis.as_mut()) {
                if matches!(c.try_wait(), Ok(None)) {
                    let _ = c.kill();
                }
                let _ = c.wait();
            }
        }
    }

    struct Node {
        pid: u32,
        port: u16,
        stdin: ChildStdin,
        /// The node's `DONE` line (without `DONE `), once printed.
        done: Arc<Mutex<Option<String>>>,
    }

    /// A process measured: RSS (KiB) before clients, with idle clients, peak
    /// under load; CPU ticks while publishing.
    struct Measured {
        name: String,
        pid: u32,
        before: u64,
        idle: u64,
        peak: u64,
        ticks0: Option<u64>,
        cores: f64,
    }

    fn rss(pid: u32) -> u64 {
        memory_kib(pid).map_or(0, |m| m.0)
    }

    /// The URL without its password, for printing.
    fn redact(url: &str) -> String {
        match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(a)) if a > s => format!("{}***{}", &url[..s + 3], &url[a..]),
            _ => url.to_owned(),
        }
    }

    /// Whether a Redis answers `PING` on 127.0.0.1:`port`.
    fn ping(port: u16) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Starts a `redis-server` of the run's own on a free port of 127.0.0.1,
    /// without persistence; returns its URL once it answers.
    async fn start_redis(children: &mut Children) -> Result<String, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server ({e}): install it (Debian: apt-get install redis-server) or pass --redis URL"
                )
            })?;
        let redis = children.redis.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(port) {
            if let Ok(Some(status)) = redis.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}) before answering on port {port}"
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("redis-server did not answer PING on port {port}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(format!("redis://127.0.0.1:{port}"))
    }

    /// Starts node `n` serving `clients` clients; returns once it listens.
    async fn spawn_node(
        args: &Args,
        n: usize,
        clients: usize,
        url: &str,
        prefix: &str,
        children: &mut Children,
    ) -> Result<Node, String> {
        let mut node_args = args.clone();
        node_args.clients = clients;
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(node_args.to_server_args())
            .args(["--cluster", "--node", &n.to_string()])
            .args(["--redis", url, "--prefix", prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn node {n}: {e}"))?;
        let pid = child.id();
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        children.nodes.push(child);
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err(format!("node {n}: no stdin/stdout"));
        };
        let done = Arc::new(Mutex::new(None));
        let (port_tx, mut port_rx) = tokio::sync::mpsc::unbounded_channel::<u16>();
        {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(p) = line.strip_prefix("LISTENING ") {
                        if let Ok(p) = p.trim().parse() {
                            let _ = port_tx.send(p);
                        }
                    } else if let Some(rest) = line.strip_prefix("DONE ") {
                        *done.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(rest.to_owned());
                    } else {
                        println!("  [node {n}] {line}");
                    }
                }
            });
        }
        match tokio::time::timeout(START_TIMEOUT, port_rx.recv()).await {
            Ok(Some(port)) => Ok(Node {
                pid,
                port,
                stdin,
                done,
            }),
            Ok(None) => Err(format!("node {n} ({}) exited before listening", role(n))),
            Err(_) => Err(format!(
                "node {n} ({}) did not listen within {} s",
                role(n),
                START_TIMEOUT.as_secs()
            )),
        }
    }

    /// Deletes the run's keys from a Redis the run did not start.
    async fn delete_keys(url: &str, prefix: &str) -> redis::RedisResult<u64> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let (mut cursor, mut deleted) = (0u64, 0u64);
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                deleted += redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<u64>(&mut conn)
                    .await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// The driver of `--cluster`. Interrupted (SIGINT, SIGTERM), it stops its
    /// children before returning.
    pub(super) async fn run_driver(args: Args) -> Result<(), String> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
        tokio::select! {
            r = drive(args) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted; children stopped".to_owned()),
            _ = term.recv() => Err("terminated; children stopped".to_owned()),
        }
    }

    async fn drive(args: Args) -> Result<(), String> {
        print_load(&args);
        let subs = args.subs.min(args.topics);
        let node_of = |i: usize| i * NODES / args.clients.max(1);
        let mut shares = [0usize; NODES];
        for i in 0..args.clients {
            shares[node_of(i)] += 1;
        }
        let mut children = Children::default();
        let prefix = format!("loadgen-{}", std::process::id());
        let url = match &args.redis {
            Some(url) => url.clone(),
            None => start_redis(&mut children).await?,
        };
        println!(
            "cluster: {NODES} server processes sharing Redis at {} (key prefix {prefix}); node 0 aggregator (publishes through Redis), nodes 1-{} edges; clients per node {shares:?}",
            redact(&url),
            NODES - 1
        );
        let mut nodes = Vec::with_capacity(NODES);
        for (n, &share) in shares.iter().enumerate() {
            nodes.push(spawn_node(&args, n, share, &url, &prefix, &mut children).await?);
        }
        let mut procs: Vec<Measured> = nodes
            .iter()
            .enumerate()
            .map(|(n, node)| (format!("node {n} ({})", role(n)), node.pid))
            .chain(
                children
                    .redis
                    .as_ref()
                    .map(|c| ("redis-server".to_owned(), c.id())),
            )
            .map(|(name, pid)| Measured {
                name,
                pid,
                before: 0,
                idle: 0,
                peak: 0,
                ticks0: None,
                cores: 0.0,
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for p in &mut procs {
            p.before = rss(p.pid);
        }

        // Connect with bounded concurrency, an equal share to each node; each
        // client waits for its snapshots.
        let shared = Shared::new();
        let t0 = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<(usize, bool)>(1024);
        for i in 0..args.clients {
            let permit = Arc::clone(&sem)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let n = node_of(i);
            let topics: Vec<String> = (0..subs)
                .map(|j| topic_name((i * subs + j) % args.topics))
                .collect();
            let url = format!(
                "ws://127.0.0.1:{}/?token={TOKEN}&topics={}",
                nodes[n].port,
                topics.join(",")
            );
            let shared = Arc::clone(&shared);
            let ready = ready_tx.clone();
            let widgets = args.widgets as u64;
            tokio::spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<bool>(1);
                let task = tokio::spawn(client(i, url, widgets, 1 + subs, shared, tx, permit));
                let ok = match tokio::time::timeout(CONNECT_TIMEOUT, rx.recv()).await {
                    Ok(ok) => ok.unwrap_or(false),
                    Err(_) => {
                        task.abort();
                        false
                    }
                };
                let _ = ready.send((n, ok)).await;
            });
        }
        drop(ready_tx);
        let mut connected = [0usize; NODES];
        let mut failed = 0usize;
        while let Some((n, ok)) = ready_rx.recv().await {
            if ok {
                connected[n] += 1;
            } else {
                failed += 1;
            }
            if connected.iter().sum::<usize>() + failed == args.clients {
                break;
            }
        }
        let total_connected: usize = connected.iter().sum();
        println!(
            "connected {total_connected} clients ({failed} failed) in {:.1} s; per node {connected:?}",
            t0.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        for p in &mut procs {
            p.idle = rss(p.pid);
            p.peak = p.idle;
        }

        // Publish phase.
        for h in &shared.hist {
            h.lock().unwrap_or_else(PoisonError::into_inner).reset();
        }
        let frames0 = shared.frames.load(Ordering::Relaxed);
        let values0 = shared.values.load(Ordering::Relaxed);
        let cpu0 = machine_jiffies();
        for p in &mut procs {
            p.ticks0 = cpu_ticks(p.pid);
        }
        let me = std::process::id();
        let driver_ticks0 = cpu_ticks(me);
        for (n, node) in nodes.iter_mut().enumerate() {
            writeln!(node.stdin, "start").map_err(|e| format!("command node {n}: {e}"))?;
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(args.duration) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for p in &mut procs {
                p.peak = p.peak.max(rss(p.pid));
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu1 = machine_jiffies();
        // Clock ticks are 100 per second on Linux.
        let cores = |t0: Option<u64>, pid: u32| {
            cpu_ticks(pid)
                .zip(t0)
                .map_or(0.0, |(a, b)| (a - b) as f64 / 100.0 / elapsed)
        };
        for p in &mut procs {
            p.cores = cores(p.ticks0, p.pid);
        }
        let driver_cores = cores(driver_ticks0, me);
        let frames = shared.frames.load(Ordering::Relaxed) - frames0;
        let values = shared.values.load(Ordering::Relaxed) - values0;
        // Let in-flight frames arrive before reading the histogram.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let total = shared.latencies();
        let expected = args.rate as f64 * (args.clients * subs) as f64;
        println!(
            "--- results ({total_connected} clients on {NODES} nodes, machine shared with other work) ---"
        );
        print_delivery(frames, values, elapsed, expected, &total);
        let per_conn = |before: u64, idle: u64, clients: usize| {
            if clients > 0 {
                idle.saturating_sub(before) as f64 * 1024.0 / clients as f64
            } else {
                0.0
            }
        };
        for (p, &clients) in procs.iter().zip(&connected) {
            println!(
                "{}: {clients} clients; RSS {} KiB before, {} KiB with its idle clients => {:.0} bytes per connection; peak under load {} KiB; CPU {:.2} cores",
                p.name,
                p.before,
                p.idle,
                per_conn(p.before, p.idle, clients),
                p.peak,
                p.cores
            );
        }
        let servers = &procs[..NODES];
        let sum = |f: fn(&Measured) -> u64| servers.iter().map(f).sum::<u64>();
        let (before, idle, peak) = (sum(|p| p.before), sum(|p| p.idle), sum(|p| p.peak));
        println!(
            "server RSS, {NODES} nodes together: {before} KiB before, {idle} KiB with {total_connected} idle clients => {:.0} bytes per connection; peak under load {peak} KiB",
            per_conn(before, idle, total_connected)
        );
        let redis_cores = procs.get(NODES).map(|r| {
            println!(
                "redis-server: RSS {} KiB before, {} KiB with idle clients, peak under load {} KiB; CPU {:.2} cores",
                r.before, r.idle, r.peak, r.cores
            );
            r.cores
        });
        if let (Some((b0, t0)), Some((b1, t1))) = (cpu0, cpu1) {
            println!(
                "CPU while publishing: machine {:.0}% busy (2 cores = 200%: {:.0}%); server processes {:.2} cores, redis-server {}, load generator {driver_cores:.2} cores, rest = kernel softirq and other work",
                (b1 - b0) as f64 * 100.0 / (t1 - t0).max(1) as f64,
                (b1 - b0) as f64 * 200.0 / (t1 - t0).max(1) as f64,
                servers.iter().map(|p| p.cores).sum::<f64>(),
                redis_cores.map_or_else(|| "not measured".to_owned(), |c| format!("{c:.2} cores"))
            );
        }
        println!(
            "clients closed by server: {}",
            shared.closed.load(Ordering::Relaxed)
        );
        // The nodes' own counters, printed when their publishing period ended.
        let deadline = Instant::now() + Duration::from_secs(3);
        let report = |node: &Node| {
            node.done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        while nodes.iter().any(|n| report(n).is_none()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("node reports (frames_sent: to its clients, snapshots included):");
        for (n, node) in nodes.iter().enumerate() {
            let report = report(node).map_or_else(
                || "no report".to_owned(),
                // The aggregator's command loop counts its publish calls as
                // `published`; the backplane's `published` follows.
                |r| r.replacen("published=", "publish_calls=", 1),
            );
            println!("  node {n} ({}): {report}", role(n));
        }

        for node in &mut nodes {
            let _ = writeln!(node.stdin, "quit");
        }
        drop(nodes);
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut children.nodes {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Kills a node that did not stop, and the run's own redis-server.
        drop(children);
        if args.redis.is_some() {
            match delete_keys(&url, &prefix).await {
                Ok(n) => println!("deleted the run's {n} keys ({prefix}:*) from Redis"),
                Err(e) => eprintln!("loadgen: could not delete the run's keys ({prefix}:*): {e}"),
            }
        }
        Ok(())
    }
}
