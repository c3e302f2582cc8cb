//! Several nodes as one through Redis: the dashboard example run as separate processes
//! (one aggregator, two edges) against a `redis-server` this test starts on a free port,
//! with WebSocket clients on every node, checked from the outside: every client sees the
//! same frames, byte for byte, gap-free; a late subscriber's snapshot holds the newest
//! values; a killed pub/sub connection and a restarted Redis hide no gap; no channel is
//! left behind.
#![cfg(all(feature = "http", feature = "redis", unix))]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rtdash_redis::test_server::RedisServer;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::cluster::{Node, redis_cmd};

/// The cluster's channels now.
async fn channels(url: &str) -> Vec<String> {
    redis_cmd(url, &["PUBSUB", "CHANNELS", "rtdash:*"])
        .await
        .expect("PUBSUB CHANNELS")
}

/// A node of the demo cluster: the dashboard example with its demo producer.
fn start_node(exe: &Path, redis: &str, id: &str, role: &str) -> Node {
    Node::start(
        exe,
        id,
        &["--redis", redis, "--node-id", id, "--role", role]
            .into_iter()
            .chain(["--seed", "7", "--incident-after", "2"])
            .collect::<Vec<_>>(),
    )
}

/// What one WebSocket client received, as it arrived.
#[derive(Default)]
struct Seen {
    /// (raw text, parsed) of every frame.
    frames: Vec<(String, Value)>,
    /// Whether the stream ended (closed by the server or broken).
    ended: bool,
}

struct Client {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(addr: &str) -> Self {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/stream/ops?token=demo"))
                .await
                .expect("WebSocket handshake");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Some(m) = ws.next().await {
                match m {
                    Ok(Message::Text(t)) => {
                        let v: Value = serde_json::from_str(&t).expect("frames are JSON");
                        s.lock().unwrap().frames.push((t.to_string(), v));
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            s.lock().unwrap().ended = true;
        });
        Self { seen, task }
    }

    fn frames(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().frames.clone()
    }

    fn ended(&self) -> bool {
        self.seen.lock().unwrap().ended
    }

    /// Waits until `pred` holds for the frames received, or panics with `what`.
    async fn wait_for(&self, what: &str, pred: impl Fn(&[(String, Value)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if pred(&self.seen.lock().unwrap().frames) {
                return;
            }
            if Instant::now() >= deadline {
                let f = self.frames();
                let shown: Vec<&str> = f.iter().take(4).map(|(raw, _)| raw.as_str()).collect();
                panic!(
                    "timed out waiting for {what}; {} frames, first: {shown:#?}",
                    f.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().expect("a seq")
}

/// Checks the protocol's promise for one client: `welcome`, then a snapshot, then frames
/// with `seq` one above the last, where a later snapshot (a resynchronisation) may restart
/// the count but never goes back. Returns the number of topic frames after snapshots.
fn check_sequence(who: &str, frames: &[(String, Value)]) -> usize {
    assert_eq!(kind(&frames[0].1), "welcome", "{who}: first frame");
    assert_eq!(kind(&frames[1].1), "snapshot", "{who}: second frame");
    let mut last = seq(&frames[1].1);
    let mut live = 0;
    for (i, (_, v)) in frames.iter().enumerate().skip(2) {
        match kind(v) {
            "snapshot" => {
                assert!(
                    seq(v) >= last,
                    "{who}: snapshot {i} went back from {last} to {}",
                    seq(v)
                );
                last = seq(v);
            }
            "update" | "alert" | "dashboard" => {
                assert_eq!(seq(v), last + 1, "{who}: frame {i} after seq {last}");
                last = seq(v);
                live += 1;
            }
            _ => {}
        }
    }
    live
}

/// The newest item of every widget after applying `frames` (snapshots replace, updates
/// apply) up to `upto` seq.
fn state(frames: &[(String, Value)], upto: u64) -> BTreeMap<String, Value> {
    let mut st = BTreeMap::new();
    let apply = |st: &mut BTreeMap<String, Value>, update: &Value| {
        for item in update["items"].as_array().into_iter().flatten() {
            st.insert(
                item["widget"].as_str().unwrap_or("").to_owned(),
                item.clone(),
            );
        }
    };
    for (_, v) in frames {
        match kind(v) {
            "snapshot" if seq(v) <= upto => {
                st.clear();
                for f in v["frames"].as_array().into_iter().flatten() {
                    if kind(f) == "update" {
                        apply(&mut st, f);
                    }
                }
            }
            "update" if seq(v) <= upto => apply(&mut st, v),
            _ => {}
        }
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_aggregator_and_two_edges_serve_the_same_frames() {
    let exe = common::build_example("dashboard", &["--all-features"]);
    let redis = RedisServer::start();
    let mut agg = start_node(&exe, &redis.url(), "agg", "aggregator");
    let mut e1 = start_node(&exe, &redis.url(), "edge-1", "edge");
    let mut e2 = start_node(&exe, &redis.url(), "edge-2", "edge");

    let mut clients = Vec::new();
    for node in [&agg, &e1, &e2] {
        for _ in 0..2 {
            clients.push(Client::connect(&node.addr).await);
        }
    }
    for (i, c) in clients.iter().enumerate() {
        c.wait_for(&format!("client {i}: 8 live frames"), |f| {
            f.iter().filter(|(_, v)| kind(v) == "update").count() >= 8
        })
        .await;
    }
    // A client that subscribes on an edge once the values were published.
    let late = Client::connect(&e2.addr).await;
    late.wait_for("the late client's snapshot and 3 updates", |f| {
        f.iter().filter(|(_, v)| kind(v) == "update").count() >= 3
    })
    .await;
    let frames: Vec<Vec<(String, Value)>> = clients.iter().map(Client::frames).collect();
    let late_frames = late.frames();
    drop(clients);
    drop(late);

    // Every client: gap-free; frames of the same seq are the same bytes everywhere.
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    for (i, f) in frames
        .iter()
        .chain(std::iter::once(&late_frames))
        .enumerate()
    {
        assert!(check_sequence(&format!("client {i}"), f) >= 3);
        for (raw, v) in f.iter().skip(2) {
            if matches!(kind(v), "update" | "alert" | "dashboard") {
                let prev = by_seq.entry(seq(v)).or_insert_with(|| raw.clone());
                assert_eq!(
                    prev,
                    raw,
                    "client {i}: frame {} differs between nodes",
                    seq(v)
                );
            }
        }
    }
    // The late client's snapshot holds the newest value of every widget at its seq,
    // as an early client on the aggregator saw them.
    let snap = &late_frames[1].1;
    let at = seq(snap);
    let want = state(&frames[0], at);
    let got = state(&late_frames[..2], at);
    assert!(
        want.len() >= 5,
        "the dashboard's widgets had values: {want:?}"
    );
    assert_eq!(got, want, "the late snapshot at seq {at}");

    // Every client left: no channel of the cluster remains.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = channels(&redis.url()).await;
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "channels left after every client left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, node) in [("agg", &mut agg), ("edge-1", &mut e1), ("edge-2", &mut e2)] {
        assert!(node.alive(), "{name} is still running");
        assert_eq!(node.health().await, 200, "{name}'s /health");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_and_a_restarted_redis_hide_no_gap() {
    let exe = common::build_example("dashboard", &["--all-features"]);
    let mut redis = RedisServer::start();
    let mut agg = start_node(&exe, &redis.url(), "agg", "aggregator");
    let mut edge = start_node(&exe, &redis.url(), "edge", "edge");
    let clients = [
        Client::connect(&edge.addr).await,
        Client::connect(&edge.addr).await,
        Client::connect(&agg.addr).await,
    ];
    let updates = |f: &[(String, Value)]| f.iter().filter(|(_, v)| kind(v) == "update").count();
    for c in &clients {
        c.wait_for("5 updates", |f| updates(f) >= 5).await;
    }

    // 1. Every pub/sub connection killed mid-stream.
    let killed: Option<u32> = redis_cmd(&redis.url(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert!(
        killed >= Some(2),
        "both nodes' subscriptions were killed: {killed:?}"
    );
    for c in &clients {
        let n = updates(&c.frames());
        c.wait_for("5 more updates after CLIENT KILL", |f| updates(f) >= n + 5)
            .await;
    }

    // 2. Redis dies (losing everything) and comes back after 2 s.
    redis.kill();
    let down_at = clients.iter().map(|c| c.frames().len()).collect::<Vec<_>>();
    let mut saw_503 = false;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(2) {
        saw_503 |= edge.health().await == 503;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        saw_503,
        "the edge's /health turned red while Redis was down"
    );
    // Values that can no longer be refreshed were marked stale on the edge.
    for (c, from) in clients[..2].iter().zip(&down_at) {
        let f = c.frames();
        let stale_snapshot = f[*from..].iter().any(|(_, v)| {
            kind(v) == "snapshot"
                && v["frames"].as_array().into_iter().flatten().any(|u| {
                    u["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .all(|i| i["stale"] == true)
                })
        });
        assert!(stale_snapshot, "an edge client got its values marked stale");
    }
    redis.restart();
    for c in &clients {
        let n = updates(&c.frames());
        c.wait_for("5 updates after Redis restarted", |f| updates(f) >= n + 5)
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while edge.health().await != 200 {
        assert!(
            Instant::now() < deadline,
            "the edge's /health turned green again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // No client was dropped; none saw a hidden gap; no process restarted.
    for (i, c) in clients.iter().enumerate() {
        assert!(!c.ended(), "client {i} stayed connected");
        check_sequence(&format!("client {i}"), &c.frames());
    }
    assert!(agg.alive() && edge.alive(), "no node process restarted");
}
