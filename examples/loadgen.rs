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
//! `--baseline` (see below).
//!
//! `--baseline` runs the same load against a naive peer server instead of
//! rtdash-transport: one `tokio::sync::broadcast` channel per topic and, per
//! connection, a task that writes every frame with `send` (one flush each),
//! the way a minimal Go or Node WebSocket fan-out is written. It has no
//! protocol, auth, policies, heartbeats or limits; it sends the same frames,
//! so the two runs show what rtdash costs over a bare fan-out on the same
//! machine (and where the machine itself is the limit).

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
}

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
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
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
                other => return Err(format!("unknown flag {other}")),
            }
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

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, transport.clone(), async {
        let _ = stop_rx.await;
    }));
    println!("LISTENING {port}");
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

/// Reads commands on stdin: `start` calls `publish(topic index, round)` for
/// `--duration` s at `--rate` per topic, then prints `DONE published=N` and
/// `done()`; `quit` returns.
async fn command_loop(args: &Args, publish: impl Fn(usize, u64), done: impl Fn() -> String) {
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if cmd_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
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

async fn run_driver(args: Args) {
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
    let (mut child, port) = spawn_server(&args);
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = memory_kib(pid).map(|m| m.0).unwrap_or(0);

    let shared = Arc::new(Shared {
        hist: (0..SHARDS)
            .map(|_| Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram")))
            .collect(),
        frames: AtomicU64::new(0),
        values: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    });

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
    let mut total = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram");
    for h in &shared.hist {
        let _ = total.add(&*h.lock().expect("histogram lock"));
    }
    let expected = args.rate as f64 * (args.clients * args.subs.min(args.topics)) as f64;
    println!(
        "--- results ({} clients, machine shared with other work) ---",
        connected
    );
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
