//! Backplane benchmark: what the Redis backplane costs beside its baselines, in one run.
//!
//! Run with: `cargo run --release --features redis --example backplane`
//!
//! Starts its own `redis-server` on a free port (`rtdash_redis::test_server`, a
//! dev-dependency), or uses `--redis URL`, then measures:
//!
//! 1. **Publish rate one Redis carries.** The publisher of `rtdash-redis` (batched Lua
//!    script calls on two connections: sequence number, newest values, catch-up log,
//!    `PUBLISH`; the version check in the publisher) kept saturated over 1,000 dashboards
//!    for `--seconds`, with frames of 1 and of 8 widget values; beside it the naive
//!    baseline, plain pipelined `PUBLISH` of the same bytes (no sequence, no snapshot, no
//!    catch-up). Both have the same receiving end: one pub/sub connection on every
//!    channel, counting (the run fails if it got fewer frames than were published).
//! 2. **Delivery latency added by the backplane** at `--rate` frames/s (default 10,000
//!    over 100 dashboards), spread evenly over 1 ms ticks and in bursts (every dashboard
//!    at once): from the publish call on the "aggregator" to the frame's arrival in a
//!    subscriber's queue of the "edge" (a second backplane connection in this process,
//!    through Redis), beside the same load through an in-process hub (the single-node
//!    path) and through plain `PUBLISH` to a `redis` crate subscriber (the peer
//!    baseline). All stop just before the socket write, which costs the same.
//!
//! Prints a Markdown table. Load stays on 127.0.0.1 and the run stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rtdash::fanout::{Event, HubConfig, SlowConsumerPolicy};
use rtdash::redis::{Backplane, BackplaneConfig, BackplaneKey, BackplaneStats, Part, Publication};
use rtdash::transport::{Frame, FrameHub};
use rtdash_redis::test_server::RedisServer;

/// Dashboards in the latency phase.
const TOPICS: usize = 100;
/// Dashboards in the publish-rate phase: enough that the publisher always has a full
/// pipeline waiting while the producer sleeps on tokio's 1 ms timer.
const RATE_TOPICS: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(String);

impl BackplaneKey for Key {
    fn to_name(&self) -> String {
        self.0.clone()
    }
    fn from_name(name: &str) -> Option<Self> {
        Some(Self(name.to_owned()))
    }
}

struct Args {
    redis: Option<String>,
    seconds: u64,
    rate: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        redis: None,
        seconds: 5,
        rate: 10_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--redis" => a.redis = Some(value()?),
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--rate" => a.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: backplane [--redis URL] [--seconds S] [--rate FRAMES/S]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.seconds == 0 || a.rate == 0 {
        return Err("--seconds and --rate must be above 0".into());
    }
    Ok(a)
}

fn topic(i: usize) -> Arc<str> {
    Arc::from(format!("bench-{i}"))
}

/// A frame of `values` widget values on `topic`; the fragments carry `stamp` (ns since the
/// run started) so the receiver can time it.
fn publication(topic: &Arc<str>, values: usize, version: i64, stamp: u64) -> Publication {
    let parts = (0..values)
        .map(|k| Part {
            key: format!("w{k}"),
            version: (version, 0),
            fragment: format!(
                r#"{{"widget":"w{k}","value":{version}.5,"window_end":{version},"stamp":{stamp},"stale":false,"count":12}}"#
            ),
        })
        .collect();
    Publication {
        topic: Arc::clone(topic),
        head: format!(r#"{{"type":"update","topic":"{topic}","seq":"#),
        mid: r#","sent_at":1700000000000,"items":["#.to_owned(),
        tail: "]}".to_owned(),
        parts,
        cached: true,
        conflate: true,
        event_time: None,
    }
}

fn stamp_of(frame: &Frame) -> Option<u64> {
    let s = frame.as_str();
    let i = s.find(r#""stamp":"#)? + 8;
    let end = s[i..].find(|c: char| !c.is_ascii_digit())? + i;
    s[i..end].parse().ok()
}

/// Subscribes every topic on `hub`; a task per subscription drains it, recording
/// latencies (now − stamp) into the shared histogram. Returns the stop flag.
fn drain_all(
    hub: &FrameHub<Key>,
    start: Instant,
    hist: Arc<std::sync::Mutex<Histogram<u64>>>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for i in 0..TOPICS {
        let sub = hub.subscribe(SlowConsumerPolicy::default());
        let _ = sub.subscribe(topic(i));
        let (stop, hist) = (Arc::clone(&stop), Arc::clone(&hist));
        tokio::spawn(async move {
            let mut local = Histogram::<u64>::new(3).expect("histogram");
            while !stop.load(Ordering::Relaxed) {
                let ev = std::future::poll_fn(|cx| sub.poll_recv(cx));
                let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), ev).await
                else {
                    continue;
                };
                if let Event::Message { msg, .. } = ev
                    && let Some(sent) = stamp_of(&msg)
                {
                    let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let _ = local.record(now.saturating_sub(sent) / 1_000);
                }
            }
            let _ = hist.lock().map(|mut h| h.add(&local));
        });
    }
    stop
}

async fn wait_subscribed(backplane: &Backplane, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while backplane.stats().subscriptions < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscriber on every channel matching `pattern` that only counts what it receives:
/// the same receiving end for ours and the baseline, so that the phase measures what
/// Redis and the publishing side carry (what an edge costs is the latency phase's).
async fn counting_subscriber(
    url: &str,
    pattern: &str,
) -> Result<
    (
        Arc<std::sync::atomic::AtomicU64>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut sub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    sub.psubscribe(pattern).await.map_err(|e| e.to_string())?;
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r = Arc::clone(&received);
    let reader = tokio::spawn(async move {
        use futures::StreamExt as _;
        let mut s = sub.into_on_message();
        while s.next().await.is_some() {
            r.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok((received, reader))
}

/// Phase 1, ours: frames/s Redis carries through the publisher, kept saturated.
async fn publish_rate(
    url: &str,
    seconds: u64,
    values: usize,
) -> Result<(f64, BackplaneStats), String> {
    let prefix = format!("rate{values}");
    let (received, reader) = counting_subscriber(url, &format!("{prefix}:ch:*")).await?;
    let config = BackplaneConfig::new(format!("rate-{values}")).with_prefix(&prefix);
    let aggregator = Backplane::new(url, config).map_err(|e| e.to_string())?;
    let publisher = aggregator.publisher();
    let topics: Vec<Arc<str>> = (0..RATE_TOPICS).map(topic).collect();
    let began = Instant::now();
    let until = began + Duration::from_secs(seconds);
    let mut version = 1i64;
    while Instant::now() < until {
        // Keep the publisher's queue full without spinning: the producer must not take
        // the CPU Redis needs. With a pipeline of `max_batch` (256) in flight, the 1 ms
        // sleep refills the queue before it runs dry.
        if publisher.waiting() > 256 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for t in &topics {
            publisher
                .publish(publication(t, values, version, 0))
                .map_err(|e| e.to_string())?;
        }
        version += 1;
    }
    let stats = aggregator.stats();
    #[allow(clippy::cast_precision_loss)]
    let rate = stats.published as f64 / began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    reader.abort();
    let got = received.load(Ordering::Relaxed);
    if got < stats.published {
        return Err(format!(
            "the subscriber received {got} of {} frames published",
            stats.published
        ));
    }
    Ok((rate, stats))
}

/// Phase 1, baseline: plain pipelined PUBLISH of the same bytes.
async fn publish_baseline(url: &str, seconds: u64, values: usize) -> Result<f64, String> {
    let (received, reader) = counting_subscriber(url, "base:ch:*").await?;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let frame = format!(
        "1 - w0\n{}",
        assemble(&publication(&topic(0), values, 1, 0), 1)
    );
    let began = Instant::now();
    let mut sent = 0u64;
    while began.elapsed() < Duration::from_secs(seconds) {
        let mut pipe = redis::pipe();
        for i in 0..256 {
            pipe.cmd("PUBLISH")
                .arg(format!("base:ch:{{{}}}", topic(i % RATE_TOPICS)))
                .arg(&frame)
                .ignore();
        }
        let () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        sent += 256;
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = sent as f64 / began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    reader.abort();
    let got = received.load(Ordering::Relaxed);
    if got < sent {
        return Err(format!("the baseline subscriber received {got} of {sent}"));
    }
    Ok(rate)
}

/// The frame Redis would build from `p` with sequence number `seq`.
fn assemble(p: &Publication, seq: u64) -> String {
    let frags: Vec<&str> = p.parts.iter().map(|x| x.fragment.as_str()).collect();
    format!("{}{seq}{}{}{}", p.head, p.mid, frags.join(","), p.tail)
}

/// The latency phases' load: `per_tick` frames of 8 values every tick, round-robin over
/// the dashboards, for `seconds`; each frame stamped when made.
struct Paced {
    tick: tokio::time::Interval,
    per_tick: usize,
    began: Instant,
    seconds: u64,
    next: usize,
}

impl Paced {
    fn new(seconds: u64, rate: u64, per_tick: usize) -> Self {
        let period = Duration::from_secs_f64(per_tick as f64 / rate as f64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        Self {
            tick,
            per_tick,
            began: Instant::now(),
            seconds,
            next: 0,
        }
    }

    /// The next tick's frames, once it is due; `None` when the time is up.
    async fn frames(&mut self, start: Instant) -> Option<Vec<Publication>> {
        if self.began.elapsed() >= Duration::from_secs(self.seconds) {
            return None;
        }
        self.tick.tick().await;
        let mut out = Vec::with_capacity(self.per_tick);
        for _ in 0..self.per_tick {
            let i = self.next % TOPICS;
            self.next += 1;
            let version = 1 + i64::try_from(self.next / TOPICS).unwrap_or(i64::MAX);
            let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            out.push(publication(&topic(i), 8, version, now));
        }
        Some(out)
    }
}

/// Phase 2, peer baseline: the same frames as plain pipelined `PUBLISH` (what a naive
/// backplane without sequence numbers, snapshots or catch-up costs), received by a
/// `redis` crate pub/sub connection. Returns (p50, p99, max) in µs.
async fn plain_latency(
    url: &str,
    seconds: u64,
    rate: u64,
    per_tick: usize,
) -> Result<(u64, u64, u64), String> {
    let start = Instant::now();
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut sub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    sub.psubscribe("plain:ch:*")
        .await
        .map_err(|e| e.to_string())?;
    let reader = tokio::spawn(async move {
        use futures::StreamExt as _;
        let mut hist = Histogram::<u64>::new(3).expect("histogram");
        let mut s = sub.into_on_message();
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), s.next()).await {
            let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
            if let Ok(frame) = Frame::try_from_bytes(payload.into())
                && let Some(sent) = stamp_of(&frame)
            {
                let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = hist.record(now.saturating_sub(sent) / 1_000);
            }
        }
        hist
    });
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let mut load = Paced::new(seconds, rate, per_tick);
    while let Some(frames) = load.frames(start).await {
        let mut pipe = redis::pipe();
        for p in frames {
            pipe.cmd("PUBLISH")
                .arg(format!("plain:ch:{{{}}}", p.topic))
                .arg(assemble(&p, 1))
                .ignore();
        }
        let () = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let h = reader.await.map_err(|e| e.to_string())?;
    Ok((h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
}

/// Phase 2: publish → delivery latency at `rate` frames/s, through Redis (`url`) or
/// through an in-process hub (`None`). Returns (p50, p99, max) in µs.
async fn latency(
    url: Option<&str>,
    seconds: u64,
    rate: u64,
    per_tick: usize,
) -> Result<(u64, u64, u64), String> {
    let start = Instant::now();
    let hist = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
    ));
    let (hub, publisher, task) = match url {
        Some(url) => {
            let config = BackplaneConfig::new("lat").with_prefix("lat");
            let edge = Backplane::new(url, config.clone()).map_err(|e| e.to_string())?;
            let mirror = edge.mirror::<Key>(HubConfig::default());
            let hub = mirror.hub().clone();
            let task = mirror.spawn();
            let stop = drain_all(&hub, start, Arc::clone(&hist));
            wait_subscribed(&edge, TOPICS as u64).await;
            let aggregator = Backplane::new(url, config).map_err(|e| e.to_string())?;
            (hub, Some((aggregator.publisher(), stop)), Some(task))
        }
        None => (FrameHub::new(HubConfig::default()), None, None),
    };
    let local_stop = publisher
        .is_none()
        .then(|| drain_all(&hub, start, Arc::clone(&hist)));
    let mut load = Paced::new(seconds, rate, per_tick);
    let keys: Vec<Key> = (0..8).map(|k| Key(format!("w{k}"))).collect();
    while let Some(frames) = load.frames(start).await {
        for p in frames {
            let t = Arc::clone(&p.topic);
            match &publisher {
                Some((publisher, _)) => publisher.publish(p).map_err(|e| e.to_string())?,
                // The single-node path: the hub numbers the frame and queues it.
                None => {
                    hub.publish_with(&t, keys.iter().cloned(), |seq| {
                        Frame::from_string(assemble(&p, seq))
                    });
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some((_, stop)) = &publisher {
        stop.store(true, Ordering::Relaxed);
    }
    if let Some(stop) = &local_stop {
        stop.store(true, Ordering::Relaxed);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(t) = task {
        t.abort();
    }
    let h = hist.lock().map_err(|_| "histogram lock".to_owned())?;
    Ok((h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("backplane: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backplane: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Without --redis: a redis-server of the run's own on a free port, killed at the end.
    let (_server, url) = match &args.redis {
        Some(url) => (None, url.clone()),
        None => {
            let server = RedisServer::start();
            let url = server.url();
            (Some(server), url)
        }
    };
    println!(
        "backplane benchmark against {url}, {TOPICS} dashboards, {} s per phase\n",
        args.seconds
    );
    println!("| publish rate, one Redis | 1 value per frame | 8 values per frame |");
    println!("|---|---:|---:|");
    let base1 = publish_baseline(&url, args.seconds, 1).await?;
    let base8 = publish_baseline(&url, args.seconds, 8).await?;
    let (ours1, s1) = publish_rate(&url, args.seconds, 1).await?;
    let (ours8, s8) = publish_rate(&url, args.seconds, 8).await?;
    println!(
        "| plain `PUBLISH`, pipelined (baseline) | {base1:.0} frames/s | {base8:.0} frames/s |"
    );
    println!(
        "| rtdash-redis publisher (seq, newest values, log, version check) | {ours1:.0} frames/s | {ours8:.0} frames/s ({:.0} values/s) |",
        ours8 * 8.0
    );
    println!(
        "\n(absorbed while waiting: {} and {}; suppressed: {} and {})\n",
        s1.absorbed, s8.absorbed, s1.suppressed, s8.suppressed
    );
    // Even: the rate spread over 1 ms ticks (as evenly as tokio's timer allows); burst:
    // every dashboard at once, as a refresh tick over all of them publishes.
    let even = usize::try_from(args.rate / 1_000)
        .unwrap_or(TOPICS)
        .clamp(1, TOPICS);
    for (pattern, per_tick) in [("even", even), ("burst", TOPICS)] {
        let local = latency(None, args.seconds, args.rate, per_tick).await?;
        let redis = latency(Some(&url), args.seconds, args.rate, per_tick).await?;
        let plain = plain_latency(&url, args.seconds, args.rate, per_tick).await?;
        println!(
            "\n| delivery at {} frames/s (8 values each), {pattern}: {per_tick} frames every {:.1} ms | p50 | p99 | max |",
            args.rate,
            per_tick as f64 * 1_000.0 / args.rate as f64
        );
        println!("|---|---:|---:|---:|");
        println!(
            "| in-process hub (single node) | {} µs | {} µs | {} µs |",
            local.0, local.1, local.2
        );
        println!(
            "| plain `PUBLISH` → `redis` crate subscriber (peer baseline) | {} µs | {} µs | {} µs |",
            plain.0, plain.1, plain.2
        );
        println!(
            "| rtdash-redis, aggregator → edge | {} µs | {} µs | {} µs |",
            redis.0, redis.1, redis.2
        );
        println!(
            "| added by the backplane (rtdash-redis − in-process) | {} µs | {} µs | |",
            redis.0.saturating_sub(local.0),
            redis.1.saturating_sub(local.1)
        );
    }
    Ok(())
}
