//! Harness of the backplane's integration tests: a real `redis-server` started on a free
//! port (killed on drop), a TCP proxy that can wedge its connections, a recorder that
//! checks what a local subscriber gets, deadlines, and Redis queries.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use rtdash_fanout::{Event, SlowConsumerPolicy, Subscription};
use rtdash_redis::{BackplaneConfig, BackplaneKey, Part, Publication};
use rtdash_transport::{Frame, Topic};
use serde_json::Value;

pub(crate) use rtdash_redis::test_server::RedisServer;

// ---------------------------------------------------------------------------------------
// Redis queries (a separate client of the test's own)
// ---------------------------------------------------------------------------------------

/// A fresh connection of the test's own (RESP2) to the Redis at `url`.
pub(crate) async fn admin(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("the test's Redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("the test could not connect to {url}: {e}"))
}

/// The topic's sequence number in Redis (`GET rtdash:seq:{topic}`).
pub(crate) async fn redis_seq(conn: &mut MultiplexedConnection, topic: &str) -> Option<u64> {
    redis::cmd("GET")
        .arg(format!("rtdash:seq:{{{topic}}}"))
        .query_async(conn)
        .await
        .expect("GET seq")
}

/// `PUBSUB CHANNELS *`, sorted.
pub(crate) async fn pubsub_channels(conn: &mut MultiplexedConnection) -> Vec<String> {
    let mut channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("*")
        .query_async(conn)
        .await
        .expect("PUBSUB CHANNELS");
    channels.sort();
    channels
}

/// One line of `CLIENT LIST`, as its fields.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    pub(crate) fields: BTreeMap<String, String>,
}

impl ClientInfo {
    pub(crate) fn id(&self) -> u64 {
        self.num("id")
    }

    pub(crate) fn num(&self, field: &str) -> u64 {
        self.fields
            .get(field)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// `CLIENT LIST`.
pub(crate) async fn client_list(conn: &mut MultiplexedConnection) -> Vec<ClientInfo> {
    let text: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(conn)
        .await
        .expect("CLIENT LIST");
    text.lines()
        .map(|line| ClientInfo {
            fields: line
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
        .collect()
}

/// The clients that subscribe at least one channel.
pub(crate) async fn subscribers(conn: &mut MultiplexedConnection) -> Vec<ClientInfo> {
    client_list(conn)
        .await
        .into_iter()
        .filter(|c| c.num("sub") > 0)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Configuration, keys, publications
// ---------------------------------------------------------------------------------------

/// The key type of the tests: a widget name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Wk(pub(crate) String);

impl BackplaneKey for Wk {
    fn to_name(&self) -> String {
        self.0.clone()
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(Self(name.to_owned()))
    }
}

/// Short timings, so that failures are found and repaired quickly.
pub(crate) fn config(node: &str) -> BackplaneConfig {
    BackplaneConfig::new(node)
        .with_probe_interval(Duration::from_millis(150))
        .with_probe_timeout(Duration::from_millis(500))
        .with_stale_after(Duration::from_millis(300))
        .with_min_backoff(Duration::from_millis(20))
        .with_max_backoff(Duration::from_millis(200))
        .with_response_timeout(Duration::from_millis(500))
        .with_breaker_cooldown(Duration::from_millis(200))
}

/// The subscribers' policy: never merge nor drop anything (a test that overflows it is
/// evicted, which the recorder reports).
pub(crate) fn policy() -> SlowConsumerPolicy {
    SlowConsumerPolicy::disconnect(1 << 20, usize::MAX).expect("policy")
}

pub(crate) fn topic(name: &str) -> Topic {
    Arc::from(name)
}

/// The fragment of key `key` at version `v`: `{"k":"<key>","v":<v>}`.
pub(crate) fn fragment(key: &str, v: i64) -> String {
    format!(r#"{{"k":"{key}","v":{v}}}"#)
}

/// An update frame of `topic` with one part per `(key, version)`: the frame is
/// `{"type":"update","topic":..,"seq":N,"items":[fragments]}`.
pub(crate) fn publication(topic: &Topic, parts: &[(&str, i64)]) -> Publication {
    Publication {
        topic: Arc::clone(topic),
        head: format!(r#"{{"type":"update","topic":"{topic}","seq":"#),
        mid: r#","items":["#.to_owned(),
        tail: "]}".to_owned(),
        parts: parts
            .iter()
            .map(|&(key, v)| Part {
                key: key.to_owned(),
                version: (v, 0),
                fragment: fragment(key, v),
            })
            .collect(),
        cached: true,
        conflate: true,
        event_time: Some(1_700_000_000_000 + parts.first().map_or(0, |p| p.1)),
    }
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A non-empty random subset of `keys`, in order.
    pub(crate) fn subset<'a>(&mut self, keys: &[&'a str]) -> Vec<&'a str> {
        loop {
            let bits = self.next();
            let picked: Vec<&str> = keys
                .iter()
                .enumerate()
                .filter(|(i, _)| bits >> (i % 64) & 1 == 1)
                .map(|(_, k)| *k)
                .collect();
            if !picked.is_empty() {
                return picked;
            }
        }
    }
}

/// The keys of the tests.
pub(crate) const KEYS: [&str; 5] = ["k0", "k1", "k2", "k3", "k4"];

/// What a test published: the newest version of each key, as the subscribers must end
/// up with.
#[derive(Debug, Default, Clone)]
pub(crate) struct Published {
    pub(crate) newest: BTreeMap<String, i64>,
    pub(crate) version: i64,
}

impl Published {
    /// The next publication of `keys`, at the next version; recorded as the newest.
    pub(crate) fn next(&mut self, topic: &Topic, keys: &[&str]) -> Publication {
        self.version += 1;
        let v = self.version;
        let parts: Vec<(&str, i64)> = keys.iter().map(|k| (*k, v)).collect();
        for k in keys {
            self.newest.insert((*k).to_owned(), v);
        }
        publication(topic, &parts)
    }

    /// One publication of every key's newest value (after Redis lost its data).
    pub(crate) fn republish(&self, topic: &Topic) -> Publication {
        let parts: Vec<(&str, i64)> = self.newest.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        publication(topic, &parts)
    }
}

// ---------------------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------------------

/// A deadline for one wait: `tick` sleeps a little, or panics naming what was awaited
/// once the time is up.
#[derive(Debug)]
pub(crate) struct Deadline {
    until: Instant,
    limit: Duration,
    what: String,
}

impl Deadline {
    pub(crate) fn after(limit: Duration, what: impl Into<String>) -> Self {
        Self {
            until: Instant::now() + limit,
            limit,
            what: what.into(),
        }
    }

    pub(crate) fn expired(&self) -> bool {
        Instant::now() > self.until
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Panics if the time is up (with `context()` in the message), else sleeps 10 ms.
    pub(crate) async fn tick(&self, context: impl FnOnce() -> String) {
        assert!(
            !self.expired(),
            "timed out after {:?} waiting for {}; {}",
            self.limit,
            self.what,
            context()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `cond()` holds, at most `limit`.
pub(crate) async fn wait_until(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let d = Deadline::after(limit, what);
    while !cond() {
        d.tick(&context).await;
    }
}

// ---------------------------------------------------------------------------------------
// The recorder: a local subscriber and the checks on what it gets
// ---------------------------------------------------------------------------------------

/// One update frame, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) seq: u64,
    pub(crate) stale: bool,
    pub(crate) items: Vec<(String, i64)>,
}

/// Parses a frame made by [`publication`] (possibly marked stale by [`stale_marker`]) and
/// checks that an unmarked one is byte for byte the publication's head, seq, mid,
/// fragments and tail.
pub(crate) fn parse_frame(text: &str, topic: &str) -> Parsed {
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text:?}"));
    assert_eq!(v["type"], "update", "frame type: {text}");
    assert_eq!(v["topic"], topic, "frame topic: {text}");
    let seq = v["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("frame without seq: {text}"));
    let items: Vec<(String, i64)> = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("frame without items: {text}"))
        .iter()
        .map(|i| {
            (
                i["k"].as_str().expect("item key").to_owned(),
                i["v"].as_i64().expect("item version"),
            )
        })
        .collect();
    let stale = v.get("stale").is_some();
    if !stale {
        // Exactly the publication's pieces, as Redis joined them.
        let fragments: Vec<String> = items.iter().map(|(k, v)| fragment(k, *v)).collect();
        assert_eq!(
            text,
            format!(
                r#"{{"type":"update","topic":"{topic}","seq":{seq},"items":[{}]}}"#,
                fragments.join(",")
            ),
            "frame bytes"
        );
    }
    Parsed { seq, stale, items }
}

/// The stale marker of the tests: the same frame with `"stale":"STALE"` after its type.
pub(crate) fn stale_marker() -> rtdash_redis::StaleMarker {
    Arc::new(|f: &Frame| {
        Frame::from_string(f.as_str().replacen(
            r#"{"type":"update","#,
            r#"{"type":"update","stale":"STALE","#,
            1,
        ))
    })
}

/// A snapshot a recorder received.
#[derive(Debug, Clone)]
pub(crate) struct SeenSnapshot {
    pub(crate) seq: u64,
    /// The state it gives: the newest version per key.
    pub(crate) state: BTreeMap<String, i64>,
    /// How many of its frames were marked stale, of how many.
    pub(crate) stale_frames: usize,
    pub(crate) frames: usize,
}

/// A local subscriber of one topic that checks every event as it comes:
///
/// - the first event is a `Snapshot`;
/// - a `Message` continues at the previous seq + 1 (no gap, no duplicate);
/// - a later `Snapshot` never goes back (seq at least the previous one);
/// - each frame's `"seq"` is the seq it came with, and one seq always has the same bytes;
/// - nothing is skipped, and the subscriber is never evicted.
pub(crate) struct Recorder {
    pub(crate) name: String,
    topic: Topic,
    pub(crate) sub: Subscription<Topic, Wk, Frame>,
    /// The last seq (snapshot or message).
    pub(crate) last_seq: Option<u64>,
    /// The current state: newest version per key.
    pub(crate) state: BTreeMap<String, i64>,
    /// Keys whose current value came from a stale-marked frame.
    pub(crate) stale_keys: BTreeMap<String, bool>,
    /// The state after each seq.
    pub(crate) history: BTreeMap<u64, BTreeMap<String, i64>>,
    /// The bytes of every (unmarked) frame seen, by seq.
    pub(crate) frames: BTreeMap<u64, String>,
    pub(crate) snapshots: Vec<SeenSnapshot>,
    pub(crate) messages: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("name", &self.name)
            .field("last_seq", &self.last_seq)
            .field("state", &self.state)
            .field("stale_keys", &self.stale_keys)
            .field("snapshots", &self.snapshots)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Subscribes `topic` on `hub` with [`policy`].
    pub(crate) fn subscribe(
        name: &str,
        hub: &rtdash_transport::FrameHub<Wk>,
        topic: &Topic,
    ) -> Self {
        let sub = hub.subscribe(policy());
        sub.subscribe(Arc::clone(topic)).expect("subscribe");
        Self {
            name: name.to_owned(),
            topic: Arc::clone(topic),
            sub,
            last_seq: None,
            state: BTreeMap::new(),
            stale_keys: BTreeMap::new(),
            history: BTreeMap::new(),
            frames: BTreeMap::new(),
            snapshots: Vec::new(),
            messages: 0,
        }
    }

    fn record_frame(&mut self, seq: u64, text: &str) {
        match self.frames.get(&seq) {
            Some(old) => assert_eq!(
                old, text,
                "{}: two different frames with seq {seq}",
                self.name
            ),
            None => {
                self.frames.insert(seq, text.to_owned());
            }
        }
    }

    /// Checks and applies one event.
    pub(crate) fn on_event(&mut self, event: Event<Topic, Frame>) {
        let name = self.name.clone();
        match event {
            Event::Snapshot {
                topic,
                seq,
                messages,
            } => {
                assert_eq!(topic, self.topic, "{name}: snapshot of another topic");
                if let Some(last) = self.last_seq {
                    assert!(
                        seq >= last,
                        "{name}: snapshot seq {seq} went back from {last}"
                    );
                }
                let mut state = BTreeMap::new();
                let mut stale_keys = BTreeMap::new();
                let mut stale_frames = 0;
                let mut previous = 0;
                for m in &messages {
                    assert!(
                        m.seq <= seq,
                        "{name}: snapshot at {seq} holds a frame of seq {}",
                        m.seq
                    );
                    assert!(
                        m.seq > previous,
                        "{name}: snapshot frames not in ascending seq order"
                    );
                    previous = m.seq;
                    let p = parse_frame(m.msg.as_str(), &self.topic);
                    assert_eq!(p.seq, m.seq, "{name}: snapshot frame: {}", m.msg.as_str());
                    if p.stale {
                        stale_frames += 1;
                    } else {
                        self.record_frame(m.seq, m.msg.as_str());
                    }
                    for (k, v) in p.items {
                        stale_keys.insert(k.clone(), p.stale);
                        state.insert(k, v);
                    }
                }
                self.snapshots.push(SeenSnapshot {
                    seq,
                    state: state.clone(),
                    stale_frames,
                    frames: messages.len(),
                });
                self.history.insert(seq, state.clone());
                self.state = state;
                self.stale_keys = stale_keys;
                self.last_seq = Some(seq);
            }
            Event::Message { topic, seq, msg } => {
                assert_eq!(topic, self.topic, "{name}: message of another topic");
                let last = self.last_seq.unwrap_or_else(|| {
                    panic!("{name}: the first event is message {seq}, not a snapshot")
                });
                assert_eq!(
                    seq,
                    last + 1,
                    "{name}: message {seq} after {last}: a gap or a duplicate"
                );
                let p = parse_frame(msg.as_str(), &self.topic);
                assert_eq!(p.seq, seq, "{name}: frame {}", msg.as_str());
                assert!(!p.stale, "{name}: a live message marked stale");
                self.record_frame(seq, msg.as_str());
                for (k, v) in p.items {
                    self.stale_keys.insert(k.clone(), false);
                    self.state.insert(k, v);
                }
                self.history.insert(seq, self.state.clone());
                self.last_seq = Some(seq);
                self.messages += 1;
            }
            other => panic!("{name}: unexpected event {other:?}"),
        }
    }

    /// Applies every event ready now; returns how many.
    pub(crate) fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(event) = self.sub.try_recv() {
            self.on_event(event);
            n += 1;
        }
        n
    }

    /// Waits (at most `limit`) until `cond` holds of the recorder, applying events as
    /// they come.
    pub(crate) async fn wait_for(
        &mut self,
        limit: Duration,
        what: &str,
        cond: impl Fn(&Self) -> bool,
    ) {
        let d = Deadline::after(limit, format!("{}: {what}", self.name));
        loop {
            self.drain();
            if cond(self) {
                return;
            }
            assert!(
                !d.expired(),
                "timed out after {limit:?} waiting for {}: {what}; {self:#?}",
                self.name
            );
            let wait = d.remaining().min(Duration::from_millis(50));
            if let Ok(Some(event)) = tokio::time::timeout(wait, self.sub.recv()).await {
                self.on_event(event);
            }
        }
    }

    /// Waits for the first snapshot.
    pub(crate) async fn wait_snapshot(&mut self, limit: Duration) {
        self.wait_for(limit, "the first snapshot", |r| r.last_seq.is_some())
            .await;
    }

    /// Waits until the recorder is at seq `seq` with the state `state`, none of it stale.
    pub(crate) async fn wait_state(
        &mut self,
        limit: Duration,
        seq: u64,
        state: &BTreeMap<String, i64>,
    ) {
        self.wait_for(limit, &format!("seq {seq} and the state {state:?}"), |r| {
            r.last_seq == Some(seq) && &r.state == state
        })
        .await;
        assert!(
            self.stale_keys.values().all(|s| !s),
            "{}: values still marked stale at the end: {:?}",
            self.name,
            self.stale_keys
        );
    }

    /// Asserts that nothing is ready now.
    pub(crate) fn assert_quiet(&mut self) {
        if let Ok(event) = self.sub.try_recv() {
            panic!("{}: unexpected event {event:?}", self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A TCP proxy that can wedge its connections
// ---------------------------------------------------------------------------------------

/// A TCP proxy to a Redis. [`blackhole`](Self::blackhole) wedges the connections open
/// now: they stay open, and every byte is read and thrown away in both directions;
/// connections made afterwards go through normally. [`cut`](Self::cut) closes every
/// connection, and while [`refuse`](Self::refuse) is set new ones are closed at once (a
/// network outage, with Redis and its data intact behind it).
pub(crate) struct Proxy {
    port: u16,
    refusing: Arc<AtomicBool>,
    wedges: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy bind");
        let port = listener.local_addr().expect("proxy address").port();
        let refusing = Arc::new(AtomicBool::new(false));
        let wedges: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accept = {
            let refusing = Arc::clone(&refusing);
            let wedges = Arc::clone(&wedges);
            let tasks = Arc::clone(&tasks);
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if refusing.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let Ok(outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        continue;
                    };
                    let wedged = Arc::new(AtomicBool::new(false));
                    wedges.lock().unwrap().push(Arc::clone(&wedged));
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    let mut t = tasks.lock().unwrap();
                    t.push(tokio::spawn(pump(ir, ow, Arc::clone(&wedged))));
                    t.push(tokio::spawn(pump(or, iw, wedged)));
                }
            })
        };
        Self {
            port,
            refusing,
            wedges,
            tasks,
            accept,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Wedges every connection open now; returns how many.
    pub(crate) fn blackhole(&self) -> usize {
        let wedges = std::mem::take(&mut *self.wedges.lock().unwrap());
        for w in &wedges {
            w.store(true, Ordering::SeqCst);
        }
        wedges.len()
    }

    /// Closes every connection open now.
    pub(crate) fn cut(&self) {
        self.wedges.lock().unwrap().clear();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Whether new connections are closed at once.
    pub(crate) fn refuse(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
    }

    /// How many connections went through since the last [`blackhole`](Self::blackhole).
    pub(crate) fn open_since_blackhole(&self) -> usize {
        self.wedges.lock().unwrap().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// Copies `from` to `to`; once `wedged`, reads and discards.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    wedged: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if wedged.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Once wedged, never close: the peer must find out by itself.
    if !wedged.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    } else {
        std::future::pending::<()>().await;
    }
}
