//! Durable, partitioned ingest across crashes, checked from the outside: three node
//! processes (the dashboard example, all aggregators) share a `redis-server` this test
//! starts with AOF on (`appendfsync always`); a producer sends a known set of 100k
//! events with ids (in order, out of order within the grace period, late, and retried
//! duplicates) to whichever nodes are alive, retrying a batch on another node when one
//! fails; nodes are killed with SIGKILL mid-stream (or Redis is restarted). Afterwards
//! every widget value (count, sum, min, max, avg, p50, p99 of 8 metrics) read over
//! WebSocket from every surviving node equals a single-node run over the same events
//! (an in-process engine), and the late streams hold every late event exactly once:
//! 0 lost, 0 double-counted.
//!
//! The scenarios run one at a time (a lock): each starts its own Redis and nodes.
#![cfg(all(feature = "http", feature = "redis", unix))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rtdash::redis::{Backplane, BackplaneConfig, LogConfig, RedisStreamsLog, StreamLog};
use rtdash::{
    Aggregation, ChartType, Dashboard, DashboardDoc, DashboardId, Engine, EngineConfig, GridPos,
    MemoryStore, Timestamp, Widget,
};
use rtdash_redis::test_server::RedisServer;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::cluster::{Node, redis_cmd};

const PARTITIONS: u32 = 8;
const METRICS: usize = 8;
const HOSTS: usize = 4;
const EVENTS: usize = 100_000;
const BATCH: usize = 500;
/// The producer's pace: 500 events every 50 ms, 10k events/s, so the stream lasts about
/// 10 s and the kills land mid-stream.
const BATCH_EVERY: Duration = Duration::from_millis(50);
/// The example's default checkpoint interval (`--checkpoint-secs`).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// One scenario at a time: each runs three nodes and a producer.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AGGREGATIONS: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::Sum,
    Aggregation::Min,
    Aggregation::Max,
    Aggregation::Avg,
    Aggregation::P50,
    Aggregation::P99,
];

/// Dashboard `t`: every aggregation of every metric over one hour; the widget id and
/// its metric.
fn test_dashboard() -> (DashboardDoc, Vec<(String, String)>) {
    let mut d = Dashboard::new(DashboardId::new("t").unwrap(), "Durable ingest");
    let mut widgets = Vec::new();
    for m in 0..METRICS {
        for agg in AGGREGATIONS {
            let i = u32::try_from(d.widgets.len()).unwrap();
            let metric = format!("m{m}");
            let mut w = Widget::new(format!("{metric} {agg}"), &metric, agg, 3600)
                .with_refresh(Duration::from_millis(500))
                .with_chart(ChartType::Stat)
                .with_position(GridPos::new(i % 12, i / 12, 1, 1));
            w.dashboard_id = Some(d.id.clone());
            widgets.push((w.widget_id.to_string(), metric));
            d.widgets.push(w);
        }
    }
    (DashboardDoc::from(d), widgets)
}

/// xorshift64*: the same events in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The producer's batches (JSON bodies): `EVENTS` events with ids over 32 series, 10 ms
/// apart in event time from `base`; every 50th moved back by up to 20 s (out of order,
/// within the 30 s grace period), every 997th by 2 min (late), and after every 301st a
/// resend of one of the 400 events before it (a producer's retry: same id).
fn workload(base: i64) -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut all: Vec<Value> = Vec::with_capacity(EVENTS);
    let mut stream: Vec<Value> = Vec::with_capacity(EVENTS + EVENTS / 300);
    for i in 0..EVENTS {
        let mut t = base + i64::try_from(i).unwrap() * 10;
        if i % 50 == 7 {
            t -= i64::try_from(rng.next() % 20_000).unwrap();
        }
        if i % 997 == 3 {
            t -= 120_000;
        }
        let value = (rng.next() % 1_000_000) as f64 / 1000.0;
        let e = json!({
            "id": format!("e{i}"),
            "metric_name": format!("m{}", i % METRICS),
            "tags": {"host": format!("h{}", (i / METRICS) % HOSTS)},
            "value": value,
            "event_time": t,
        });
        all.push(e.clone());
        stream.push(e);
        if i % 301 == 300 {
            let back = usize::try_from(rng.next() % 400).unwrap();
            stream.push(all[i - back].clone());
        }
    }
    stream
        .chunks(BATCH)
        .map(|c| serde_json::to_string(c).unwrap())
        .collect()
}

/// Sends every batch once acknowledged (a `200` with nothing refused), in order, paced,
/// to the live nodes in turn; a batch that fails is retried on the next node. Returns the
/// number of retries.
async fn produce(
    batches: Arc<Vec<String>>,
    live: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicUsize>,
) -> usize {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut tick = tokio::time::interval(BATCH_EVERY);
    let mut turn = 0usize;
    let mut retries = 0;
    for (i, body) in batches.iter().enumerate() {
        tick.tick().await;
        loop {
            let addr = {
                let l = live.lock().unwrap();
                l[turn % l.len()].clone()
            };
            turn += 1;
            let answer = client
                .post(format!("http://{addr}/ingest"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            if let Ok(r) = answer
                && r.status() == 200
            {
                let report: Value = r.json().await.unwrap();
                assert_eq!(report["rejected"], 0, "batch {i}: {report}");
                break;
            }
            retries += 1;
            assert!(retries < 5_000, "the cluster stopped taking events");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent.store(i + 1, Ordering::Release);
    }
    retries
}

/// The widget values of dashboard `t` in a new subscriber's snapshot on `addr`.
async fn snapshot_values(addr: &str) -> Option<BTreeMap<String, Value>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/stream/t?token=demo"))
        .await
        .ok()?;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
            .ok()?;
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).ok()?;
        if v["type"] == "snapshot" {
            let mut values = BTreeMap::new();
            for f in v["frames"].as_array().into_iter().flatten() {
                for item in f["items"].as_array().into_iter().flatten() {
                    values.insert(
                        item["widget"].as_str().unwrap_or("").to_owned(),
                        item["value"].clone(),
                    );
                }
            }
            return Some(values);
        }
    }
}

/// Who holds each partition's lease now (node ids).
async fn owners(url: &str) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        let v: Option<String> = redis_cmd(url, &["GET", &format!("rtdash:lease:{{{p}}}")]).await;
        if let Some(v) = v
            && let Some((node, _token)) = v.rsplit_once(':')
        {
            out.insert(p, node.to_owned());
        }
    }
    out
}

/// When partition `p`'s stored checkpoint was last written (ms, Redis time).
async fn checkpoint_at(url: &str, p: u32) -> Option<String> {
    redis_cmd(url, &["HGET", &format!("rtdash:ckpt:{{{p}}}"), "at_ms"]).await
}

/// Waits until a checkpoint of partition `p` newer than the one stored now is written.
async fn next_checkpoint(url: &str, p: u32) {
    let before = checkpoint_at(url, p).await;
    let deadline = Instant::now() + CHECKPOINT_EVERY * 4;
    while checkpoint_at(url, p).await == before {
        assert!(Instant::now() < deadline, "no checkpoint of partition {p}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The times at which a subscriber on `addr` received updates of widgets in `watched`.
struct Watch {
    times: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    async fn start(addr: &str, watched: BTreeSet<String>) -> Self {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/stream/t?token=demo"))
                .await
                .expect("WebSocket handshake");
        let times = Arc::new(Mutex::new(Vec::new()));
        let t = Arc::clone(&times);
        let task = tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(text) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let hit = v["type"] == "update"
                    && v["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|i| i["widget"].as_str().is_some_and(|w| watched.contains(w)));
                if hit {
                    t.lock().unwrap().push(Instant::now());
                }
            }
        });
        Self { times, task }
    }

    /// The first update after `t`.
    fn first_after(&self, t: Instant) -> Option<Instant> {
        self.times.lock().unwrap().iter().copied().find(|&x| x > t)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What happens mid-stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// One node killed as soon as one of its partitions was checkpointed.
    KillAfterCheckpoint,
    /// One node killed 100 ms before one of its partitions is checkpointed again.
    KillBeforeCheckpoint,
    /// One node killed at the moment a checkpoint of one of its partitions is due.
    KillDuringCheckpoint,
    /// One node killed, then, once its partitions moved, a second one.
    KillTwo,
    /// `redis-server` killed and restarted from its AOF.
    RestartRedis,
}

struct Cluster {
    redis: RedisServer,
    nodes: Vec<(String, Node)>,
    live: Arc<Mutex<Vec<String>>>,
    log: StreamLog,
    doc: DashboardDoc,
    widgets: Vec<(String, String)>,
}

impl Cluster {
    async fn start(exe: &Path) -> Self {
        let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
        let url = redis.url();
        let (doc, widgets) = test_dashboard();
        let mut nodes = Vec::new();
        for id in ["n0", "n1", "n2"] {
            let node = Node::start(
                exe,
                id,
                &[
                    "--redis",
                    &url,
                    "--node-id",
                    id,
                    "--no-demo",
                    "--partitions",
                    &PARTITIONS.to_string(),
                ],
            );
            let created = reqwest::Client::new()
                .post(format!("http://{}/dashboards", node.addr))
                .header("content-type", "application/json")
                .body(doc.to_json())
                .send()
                .await
                .expect("POST /dashboards");
            assert_eq!(created.status(), 201, "dashboard t on {id}");
            nodes.push((id.to_owned(), node));
        }
        let live = Arc::new(Mutex::new(
            nodes.iter().map(|(_, n)| n.addr.clone()).collect(),
        ));
        let log = Backplane::new(&url, BackplaneConfig::new("test-reader"))
            .unwrap()
            .stream_log(LogConfig {
                partitions: PARTITIONS,
                ..LogConfig::default()
            })
            .unwrap();
        let cluster = Self {
            redis,
            nodes,
            live,
            log,
            doc,
            widgets,
        };
        // Every partition owned, by all three nodes.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let o = cluster.owners().await;
            let distinct: BTreeSet<&String> = o.values().collect();
            if o.len() == PARTITIONS as usize && distinct.len() == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "partitions not spread over the three nodes: {o:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster
    }

    async fn owners(&self) -> BTreeMap<u32, String> {
        owners(&self.redis.url()).await
    }

    fn node(&mut self, id: &str) -> &mut Node {
        &mut self
            .nodes
            .iter_mut()
            .find(|(n, _)| n == id)
            .expect("a node of the cluster")
            .1
    }

    /// Kills node `id` with SIGKILL; the producer stops sending it events 300 ms later
    /// (as a load balancer's health check would), so some of its requests fail and are
    /// retried on another node.
    fn kill(&mut self, id: &str) -> Instant {
        let node = self.node(id);
        node.kill();
        let killed_at = Instant::now();
        let addr = node.addr.clone();
        let live = Arc::clone(&self.live);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            live.lock().unwrap().retain(|a| *a != addr);
        });
        killed_at
    }

    /// The widgets of the metrics in partitions `ps`.
    fn widgets_of(&self, ps: &BTreeSet<u32>) -> BTreeSet<String> {
        self.widgets
            .iter()
            .filter(|(_, m)| ps.contains(&self.log.partition_of(m)))
            .map(|(w, _)| w.clone())
            .collect()
    }

    /// The partitions that hold some of the test's metrics.
    fn with_metrics(&self) -> BTreeSet<u32> {
        self.widgets
            .iter()
            .map(|(_, m)| self.log.partition_of(m))
            .collect()
    }

    /// A node, other than those in `except`, owning partitions that hold some of the
    /// test's metrics, and those partitions.
    async fn victim(&self, except: &[&str]) -> (String, BTreeSet<u32>) {
        let o = self.owners().await;
        let busy = self.with_metrics();
        let node = o
            .iter()
            .find(|(p, n)| busy.contains(p) && !except.contains(&n.as_str()))
            .map(|(_, n)| n.clone())
            .expect("a node owning a partition with metrics");
        let ps = o
            .iter()
            .filter(|(p, n)| **n == node && busy.contains(p))
            .map(|(p, _)| *p)
            .collect();
        (node, ps)
    }

    /// Kills the owner of some partitions at the point `scenario` names, relative to
    /// one of its partitions' checkpoints; returns the failover time: kill → a
    /// subscriber on a surviving node sees fresh values of the moved partitions again.
    async fn kill_one(&mut self, scenario: Scenario, except: &[&str]) -> (String, Duration) {
        let (victim, ps) = self.victim(except).await;
        let survivor = self
            .nodes
            .iter()
            .find(|(n, _)| *n != victim && !except.contains(&n.as_str()))
            .map(|(_, node)| node.addr.clone())
            .expect("a surviving node");
        let watch = Watch::start(&survivor, self.widgets_of(&ps)).await;
        let p = *ps.iter().next().expect("a partition");
        next_checkpoint(&self.redis.url(), p).await;
        match scenario {
            Scenario::KillBeforeCheckpoint => {
                tokio::time::sleep(CHECKPOINT_EVERY - Duration::from_millis(100)).await;
            }
            Scenario::KillDuringCheckpoint => {
                tokio::time::sleep(CHECKPOINT_EVERY).await;
            }
            _ => {}
        }
        let killed_at = self.kill(&victim);
        let deadline = Instant::now() + Duration::from_secs(20);
        let seen = loop {
            // (What the victim published just before it died may still be on its way.)
            if let Some(t) = watch.first_after(killed_at + Duration::from_millis(20)) {
                break t;
            }
            if Instant::now() >= deadline {
                let before = watch.times.lock().unwrap().len();
                panic!(
                    "no fresh value of partitions {ps:?} after {victim} was killed \
                     ({before} updates of them before; owners now {:?})",
                    self.owners().await
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        (victim, seen - killed_at)
    }
}

/// Runs `scenario` end to end and checks the invariant.
async fn run(scenario: Scenario) {
    let _serial = SERIAL.lock().await;
    let exe = common::build_example("dashboard", &["--all-features"]);
    let mut cluster = Cluster::start(&exe).await;
    let base = Timestamp::now().as_millis() - 1_100_000;
    let batches = Arc::new(workload(base));
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn(produce(
        Arc::clone(&batches),
        Arc::clone(&cluster.live),
        Arc::clone(&sent),
    ));
    let reached = |share: f64| {
        let sent = Arc::clone(&sent);
        let n = batches.len();
        async move {
            while (sent.load(Ordering::Acquire) as f64) < share * n as f64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };

    reached(0.2).await;
    let mut failovers = Vec::new();
    match scenario {
        Scenario::KillAfterCheckpoint
        | Scenario::KillBeforeCheckpoint
        | Scenario::KillDuringCheckpoint => {
            failovers.push(cluster.kill_one(scenario, &[]).await);
        }
        Scenario::KillTwo => {
            let (first, t) = cluster.kill_one(Scenario::KillAfterCheckpoint, &[]).await;
            failovers.push((first.clone(), t));
            // Every partition owned again, by the two others.
            let deadline = Instant::now() + Duration::from_secs(20);
            while cluster.owners().await.len() < PARTITIONS as usize
                || cluster.owners().await.values().any(|n| *n == first)
            {
                assert!(Instant::now() < deadline, "partitions did not move");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reached(0.5).await;
            failovers.push(
                cluster
                    .kill_one(Scenario::KillBeforeCheckpoint, &[first.as_str()])
                    .await,
            );
        }
        Scenario::RestartRedis => {
            reached(0.4).await;
            cluster.redis.restart();
        }
    }
    let retries = producer.await.expect("the producer");
    assert!(
        sent.load(Ordering::Acquire) == batches.len(),
        "every batch acknowledged"
    );

    // The single-node run over the same events.
    let reference = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    reference.dashboards().create(cluster.doc.clone()).unwrap();
    let mut late = 0;
    for b in batches.iter() {
        late += reference
            .ingest_json_at(b.as_bytes(), Timestamp::now())
            .unwrap()
            .late;
    }
    let want: BTreeMap<String, Value> = cluster
        .widgets
        .iter()
        .map(|(w, _)| {
            let v = reference
                .widget_value("t", w.parse().unwrap())
                .unwrap()
                .value
                .map_or(Value::Null, |v| json!(v));
            (w.clone(), v)
        })
        .collect();
    assert!(late > 50, "the workload has late events: {late}");
    assert!(
        want.values().all(|v| v.is_number()),
        "every widget has a value"
    );

    // Every surviving node serves exactly those values, once the owners caught up.
    let live: Vec<String> = cluster.live.lock().unwrap().clone();
    let started = Instant::now();
    for addr in &live {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = snapshot_values(addr).await;
            if got.as_ref() == Some(&want) {
                break;
            }
            if Instant::now() >= deadline {
                let got = got.unwrap_or_default();
                let diff: Vec<String> = want
                    .iter()
                    .filter(|(w, v)| got.get(*w) != Some(*v))
                    .take(10)
                    .map(|(w, v)| format!("{w}: want {v}, got {:?}", got.get(w)))
                    .collect();
                panic!("{scenario:?}: node {addr} serves other values: {diff:#?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let settled = started.elapsed();

    // The surviving nodes' metrics account for every partition, and for the takeovers.
    let mut owned = 0.0;
    let mut takeovers = 0.0;
    for addr in &live {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in the metrics of {addr}"))
        };
        owned += value("rtdash_log_partitions_owned ");
        takeovers += value("rtdash_log_takeovers_total ");
    }
    assert_eq!(
        owned,
        f64::from(PARTITIONS),
        "{scenario:?}: partitions owned"
    );
    assert!(
        takeovers >= f64::from(PARTITIONS),
        "{scenario:?}: takeovers {takeovers}"
    );

    // Every late event is in the late streams, once.
    let reader = RedisStreamsLog::new(cluster.log.clone());
    let mut in_streams = 0;
    for p in 0..PARTITIONS {
        for (_, events) in reader.late_events(p, "0-0", 100_000).await.unwrap() {
            in_streams += events.len();
        }
    }
    assert_eq!(
        in_streams, late,
        "{scenario:?}: late events in the late streams"
    );
    for (id, node) in &mut cluster.nodes {
        if cluster.live.lock().unwrap().contains(&node.addr) {
            assert!(node.alive(), "{id} still runs");
        }
    }
    let figures: Vec<String> = failovers
        .iter()
        .map(|(n, d)| format!("{n} killed: fresh values after {} ms", d.as_millis()))
        .collect();
    println!(
        "{scenario:?}: {} events in {} batches, {retries} retries, {late} late; {figures:?}; \
         all nodes equal the single-node run {} ms after the last batch",
        EVENTS,
        batches.len(),
        settled.as_millis()
    );
    for (_, d) in &failovers {
        assert!(
            *d < Duration::from_secs(10),
            "{scenario:?}: failover took {d:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_right_after_a_checkpoint_loses_nothing() {
    run(Scenario::KillAfterCheckpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_just_before_a_checkpoint_loses_nothing() {
    run(Scenario::KillBeforeCheckpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_as_a_checkpoint_is_due_loses_nothing() {
    run(Scenario::KillDuringCheckpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_killed_one_after_the_other_lose_nothing() {
    run(Scenario::KillTwo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_loses_nothing() {
    run(Scenario::RestartRedis).await;
}
