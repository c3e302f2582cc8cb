//! The publishing side: [`RedisPublisher`] queues publications and one task sends them
//! to Redis in pipelines of script calls.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use crate::link::{self, Backoff, Counters};
use crate::wire::{Names, valid_key};
use crate::{BackplaneConfig, BackplaneError, scripts};

/// One piece of a publication: a key it is the newest value of, the version of that
/// value, and its encoded fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The key (e.g. a widget): no `,`, space, `:` or line break.
    pub key: String,
    /// The value's version: a part whose version is not above the one Redis holds for
    /// its key is left out (compared as a pair, first element first; each element from 0
    /// to 10¹⁶ − 1, a negative one counts as 0).
    pub version: (i64, i64),
    /// The part's encoding inside the frame (joined to the others by `,`); empty for a
    /// frame that is all head and tail.
    pub fragment: String,
}

/// One frame to publish on a topic, in pieces: Redis assigns the sequence number `seq`
/// and builds the frame `head + seq + mid + fragments.join(",") + tail` from the parts
/// that are newer than what it holds, so the bytes are made once in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The topic.
    pub topic: Arc<str>,
    /// The frame up to its sequence number.
    pub head: String,
    /// The frame between the sequence number and the first fragment.
    pub mid: String,
    /// The frame after the last fragment.
    pub tail: String,
    /// The parts. With none, the frame is always published (a notice).
    pub parts: Vec<Part>,
    /// Whether the frame becomes the newest value of its parts' keys.
    pub cached: bool,
    /// Whether a newer publication on the same topic may absorb this one part by part
    /// while it waits (widget values: only the newest matters). Others wait in order.
    pub conflate: bool,
    /// The newest event time the frame reports (ms), for latency accounting.
    pub event_time: Option<i64>,
}

enum Job {
    Publish(Publication),
    Retire { topic: Arc<str>, keys: Vec<String> },
}

#[derive(Default)]
struct Pending {
    /// Conflating publications, one per topic, in the order topics first appeared.
    merged: HashMap<Arc<str>, Publication>,
    order: VecDeque<Arc<str>>,
    /// Everything else, in order; bounded by `max_pending`.
    queue: VecDeque<Job>,
}

/// One connection's share of the topics and what waits for it.
struct Lane {
    /// Set at each (re)connection: Redis may have restarted empty.
    reconnected: std::sync::atomic::AtomicBool,
    pending: Mutex<Pending>,
    wake: Notify,
}

struct Shared {
    lanes: Vec<Lane>,
    /// Most keyless publications waiting per lane.
    max_pending: usize,
    config: BackplaneConfig,
    names: Names,
    counters: Arc<Counters>,
}

/// The publishing half of the backplane: queues [`Publication`]s without waiting and
/// sends them to Redis from its own task, in pipelines, reconnecting with backoff.
///
/// Made by [`Backplane::publisher`](crate::Backplane::publisher). While Redis is
/// unreachable, the newest value of each key waits (older ones are absorbed) and other
/// publications wait in order up to
/// [`max_pending`](crate::BackplaneConfig::max_pending); when Redis is back they go out,
/// and a batch that failed half-way is sent again (the version check drops what had
/// already gone out).
#[derive(Clone)]
pub struct RedisPublisher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("node_id", &self.shared.config.node_id)
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    pub(crate) fn spawn(
        client: redis::Client,
        config: BackplaneConfig,
        counters: Arc<Counters>,
    ) -> Self {
        let lanes = config.publisher_connections.max(1);
        counters.has_publisher.store(true, Ordering::Release);
        // Added, not stored: several publishers of one backplane share the count.
        counters.publishers_down.fetch_add(lanes, Ordering::AcqRel);
        let shared = Arc::new(Shared {
            lanes: (0..lanes)
                .map(|_| Lane {
                    reconnected: std::sync::atomic::AtomicBool::new(false),
                    pending: Mutex::new(Pending::default()),
                    wake: Notify::new(),
                })
                .collect(),
            max_pending: config.max_pending.div_ceil(lanes).max(1),
            names: Names::new(&config.prefix),
            config,
            counters,
        });
        // Every lane's task holds its reference before any runs: a task ends when only
        // the lanes' references are left.
        let held: Vec<Arc<Shared>> = (0..lanes).map(|_| Arc::clone(&shared)).collect();
        for (lane, shared) in held.into_iter().enumerate() {
            tokio::spawn(run(client.clone(), shared, lane));
        }
        Self { shared }
    }

    /// The lane of `topic`: always the same one, so that its messages keep their order.
    fn lane(&self, topic: &str) -> &Lane {
        use std::hash::{BuildHasher as _, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(topic);
        let lanes = &self.shared.lanes;
        let i = usize::try_from(hash % lanes.len() as u64).unwrap_or(0);
        &lanes[i]
    }

    /// Queues `publication`; never waits. A key listed in several parts keeps the last.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::Protocol`] for a part whose key holds a separator (nothing is
    /// queued).
    pub fn publish(&self, mut publication: Publication) -> Result<(), BackplaneError> {
        if let Some(p) = publication.parts.iter().find(|p| !valid_key(&p.key)) {
            return Err(BackplaneError::Protocol(format!(
                "key {:?} holds a separator (',', ' ', ':' or a line break)",
                p.key
            )));
        }
        keep_last_per_key(&mut publication.parts);
        let lane = self.lane(&publication.topic);
        let mut pending = lock(lane);
        if publication.conflate {
            match pending.merged.get_mut(&publication.topic) {
                Some(waiting) => {
                    absorb(waiting, publication);
                    Counters::add(&self.shared.counters.absorbed, 1);
                }
                None => {
                    pending.order.push_back(Arc::clone(&publication.topic));
                    pending
                        .merged
                        .insert(Arc::clone(&publication.topic), publication);
                }
            }
        } else {
            self.push_job(&mut pending, Job::Publish(publication));
        }
        drop(pending);
        lane.wake.notify_one();
        Ok(())
    }

    /// How many publications wait to be sent (conflated widget values count once per
    /// topic): a producer that can wait may use it as backpressure.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.shared
            .lanes
            .iter()
            .map(|lane| {
                let pending = lock(lane);
                pending.merged.len() + pending.queue.len()
            })
            .sum()
    }

    /// Whether the publisher (re)connected since the last call: Redis may have restarted
    /// and lost the newest values, so the caller should publish every value again (the
    /// version check drops those Redis still holds).
    #[must_use]
    pub fn take_reconnected(&self) -> bool {
        // Every lane's flag is taken (no short circuit).
        self.shared.lanes.iter().fold(false, |any, lane| {
            lane.reconnected.swap(false, Ordering::AcqRel) | any
        })
    }

    /// Removes `keys` from the topic's newest values, in Redis and in every mirror.
    pub fn retire(&self, topic: Arc<str>, keys: Vec<String>) {
        let keys: Vec<String> = keys.into_iter().filter(|k| valid_key(k)).collect();
        if keys.is_empty() {
            return;
        }
        let lane = self.lane(&topic);
        let mut pending = lock(lane);
        self.push_job(&mut pending, Job::Retire { topic, keys });
        drop(pending);
        lane.wake.notify_one();
    }

    fn push_job(&self, pending: &mut Pending, job: Job) {
        if pending.queue.len() >= self.shared.max_pending {
            pending.queue.pop_front();
            Counters::add(&self.shared.counters.dropped, 1);
        }
        pending.queue.push_back(job);
    }
}

fn lock(lane: &Lane) -> std::sync::MutexGuard<'_, Pending> {
    lane.pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps, of the parts of one key, the last (the script counts each key once).
fn keep_last_per_key(parts: &mut Vec<Part>) {
    if parts.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut keep: Vec<bool> = parts
        .iter()
        .rev()
        .map(|p| seen.insert(p.key.clone()))
        .collect();
    keep.reverse();
    let mut flags = keep.into_iter();
    parts.retain(|_| flags.next().unwrap_or(true));
}

/// Merges a newer conflating publication into the waiting one: its frame pieces, and
/// each of its parts in place of the waiting part of the same key.
fn absorb(waiting: &mut Publication, newer: Publication) {
    waiting.head = newer.head;
    waiting.mid = newer.mid;
    waiting.tail = newer.tail;
    waiting.event_time = waiting.event_time.max(newer.event_time);
    for part in newer.parts {
        match waiting.parts.iter_mut().find(|p| p.key == part.key) {
            Some(p) if p.version <= part.version => *p = part,
            Some(_) => {}
            None => waiting.parts.push(part),
        }
    }
}

/// Takes up to `max` jobs: the waiting conflated publications first, then the queue.
fn take_batch(lane: &Lane, max: usize) -> Vec<Job> {
    let mut pending = lock(lane);
    let mut batch = Vec::new();
    while batch.len() < max {
        let Some(topic) = pending.order.pop_front() else {
            break;
        };
        if let Some(p) = pending.merged.remove(&topic) {
            batch.push(Job::Publish(p));
        }
    }
    while batch.len() < max {
        let Some(job) = pending.queue.pop_front() else {
            break;
        };
        batch.push(job);
    }
    batch
}

/// Whether no publication or retirement waits to be sent.
fn nothing_waits(lane: &Lane) -> bool {
    let pending = lock(lane);
    pending.merged.is_empty() && pending.queue.is_empty()
}

/// Puts a batch that could not be sent back in front of what waits, newer values
/// winning over the batch's.
fn requeue(shared: &Shared, lane: &Lane, batch: Vec<Job>) {
    let mut pending = lock(lane);
    for job in batch.into_iter().rev() {
        match job {
            Job::Publish(mut p) if p.conflate => {
                if let Some(newer) = pending.merged.remove(&p.topic) {
                    absorb(&mut p, newer);
                } else {
                    pending.order.push_front(Arc::clone(&p.topic));
                }
                pending.merged.insert(Arc::clone(&p.topic), p);
            }
            job => {
                if pending.queue.len() < shared.max_pending {
                    pending.queue.push_front(job);
                } else {
                    Counters::add(&shared.counters.dropped, 1);
                }
            }
        }
    }
}

/// Sends the publications of lane `index` on a connection of its own.
async fn run(client: redis::Client, shared: Arc<Shared>, index: usize) {
    let Some(lane) = shared.lanes.get(index) else {
        return;
    };
    let lanes = shared.lanes.len();
    // Whether this lane's connection is up (counted in `publishers_down`).
    let mut up = false;
    let config = link::connection_config(&shared.config);
    let mut backoff = Backoff::new(&shared.config);
    let mut conn: Option<(MultiplexedConnection, [String; 3])> = None;
    // The last seq Redis gave each topic: the floor of the next publish, so that a Redis
    // that lost its data cannot hand out a number a client has seen. Bounded by the
    // topics this node publishes on; kept across connections (that is its point).
    let mut floors: HashMap<Arc<str>, u64> = HashMap::new();
    // What this node knows of each topic in Redis, seeded on first use in a connection.
    let mut ledgers: HashMap<Arc<str>, Ledger> = HashMap::new();
    loop {
        if Arc::strong_count(&shared) <= lanes && nothing_waits(lane) {
            // Every handle was dropped and nothing waits.
            return;
        }
        if conn.is_none() {
            let scripts = [scripts::PUBLISH, scripts::RETIRE, scripts::SEED];
            match link::connect(&client, config.clone(), scripts).await {
                Ok(c) => {
                    backoff.succeed();
                    if !up {
                        up = true;
                        shared
                            .counters
                            .publishers_down
                            .fetch_sub(1, Ordering::AcqRel);
                    }
                    shared.counters.breaker_open.store(false, Ordering::Release);
                    lane.reconnected.store(true, Ordering::Release);
                    // Redis may have changed meanwhile (restarted, or another node
                    // published): every topic is seeded again.
                    ledgers.clear();
                    conn = Some(c);
                }
                Err(e) => {
                    failed(&shared, &mut backoff, &mut up, &e).await;
                    continue;
                }
            }
        }
        let Some((c, shas)) = conn.as_mut() else {
            continue;
        };
        let batch = take_batch(lane, shared.config.max_batch);
        if batch.is_empty() {
            tokio::select! {
                () = lane.wake.notified() => {}
                () = tokio::time::sleep(shared.config.probe_interval) => {
                    // Idle: check the connection, so that health tells the truth.
                    let started = std::time::Instant::now();
                    let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(c).await;
                    match ping {
                        Ok(_) => link::record_rtt(&shared.counters, started.elapsed()),
                        Err(e) => {
                            conn = None;
                            failed(&shared, &mut backoff, &mut up, &e.into()).await;
                        }
                    }
                }
            }
            continue;
        }
        let mut state = State {
            floors: &mut floors,
            ledgers: &mut ledgers,
        };
        if let Err(e) = send(&shared, c, shas, &batch, &mut state).await {
            conn = None;
            Counters::add(&shared.counters.publish_errors, 1);
            requeue(&shared, lane, batch);
            failed(&shared, &mut backoff, &mut up, &e).await;
        }
    }
}

async fn failed(shared: &Shared, backoff: &mut Backoff, up: &mut bool, e: &BackplaneError) {
    if *up {
        *up = false;
        shared
            .counters
            .publishers_down
            .fetch_add(1, Ordering::AcqRel);
    }
    Counters::add(&shared.counters.reconnects, 1);
    let (wait, open) = backoff.fail();
    shared.counters.breaker_open.store(open, Ordering::Release);
    tracing::warn!(error = %e, retry_in = ?wait, "redis backplane publisher: Redis unreachable");
    tokio::time::sleep(wait).await;
}

/// A version as stored in Redis: `<hi>.<lo>`.
fn version_text((hi, lo): (i64, i64)) -> String {
    format!("{hi}.{lo}")
}

/// Parses a `lvc` value, `<hi>.<lo>:<seq>`; an unreadable version counts as the oldest.
fn parse_lvc(value: &str) -> Option<((i64, i64), u64)> {
    let (version, seq) = value.rsplit_once(':')?;
    let seq = seq.parse().ok()?;
    let version = version
        .split_once('.')
        .and_then(|(hi, lo)| Some((hi.parse().ok()?, lo.parse().ok()?)))
        .unwrap_or((i64::MIN, i64::MIN));
    Some((version, seq))
}

/// What a publisher knows of one topic in Redis: the newest version of each key and the
/// message holding it, which messages are still the newest of some key, and which are
/// garbage once the catch-up log has moved past them. Seeded from Redis, then kept up to
/// date by this node's own publications; another node publishing the same keys (a
/// misconfiguration, or an owner that lost its lease) can only delay garbage, never make
/// a newest value point at a deleted message: a node deletes a message only after it
/// replaced every key the message held.
#[derive(Debug, Default)]
struct Ledger {
    /// Key → the newest version sent (updated when a publication is sent, so that a
    /// second publication in the same pipeline is checked against the first).
    versions: HashMap<String, (i64, i64)>,
    /// Key → the seq of the message holding its newest value (updated on Redis's reply).
    holder: HashMap<String, u64>,
    /// Seq → how many keys its message is the newest of (never 0: such a message ages).
    refs: HashMap<u64, u32>,
    /// Messages no key needs, oldest first, kept until the catch-up log has `log_len`
    /// newer ones (they arrive nearly in order: a sorted deque beats a tree here).
    aging: VecDeque<u64>,
    /// The newest seq known on the topic.
    latest: u64,
}

impl Ledger {
    /// The ledger of a topic Redis holds: its seq, its newest values (`lvc` pairs) and
    /// the seqs of its stored messages.
    fn seed(seq: u64, lvc: Vec<(String, String)>, stored: Vec<String>) -> Self {
        let mut ledger = Self {
            latest: seq,
            ..Self::default()
        };
        for (key, value) in lvc {
            if let Some((version, seq)) = parse_lvc(&value) {
                ledger.versions.insert(key.clone(), version);
                ledger.holder.insert(key, seq);
                *ledger.refs.entry(seq).or_default() += 1;
            }
        }
        let mut aging: Vec<u64> = stored
            .iter()
            .filter_map(|s| s.parse::<u64>().ok())
            .filter(|s| !ledger.refs.contains_key(s))
            .collect();
        aging.sort_unstable();
        ledger.aging = aging.into();
        ledger
    }

    /// Whether `version` is newer than what the topic holds for `key`; if so it becomes
    /// the key's version.
    fn take_newer(&mut self, key: &str, version: (i64, i64)) -> bool {
        match self.versions.get_mut(key) {
            Some(v) if *v >= version => false,
            Some(v) => {
                *v = version;
                true
            }
            None => {
                self.versions.insert(key.to_owned(), version);
                true
            }
        }
    }

    /// Takes up to `max` garbage messages: no key needs them and at least `log_len`
    /// newer messages exist.
    fn take_garbage(&mut self, log_len: usize, max: usize) -> Vec<u64> {
        let log_len = u64::try_from(log_len).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        while out.len() < max {
            match self.aging.front() {
                Some(&s) if s.saturating_add(log_len) <= self.latest => {
                    self.aging.pop_front();
                    out.push(s);
                }
                _ => break,
            }
        }
        out
    }

    /// Message `seq` was published and is now the newest of `keys`.
    fn published(&mut self, seq: u64, keys: &[String]) {
        self.latest = self.latest.max(seq);
        for key in keys {
            if let Some(old) = self.holder.insert(key.clone(), seq) {
                self.release(old);
            }
        }
        if keys.is_empty() {
            self.age(seq);
        } else {
            *self.refs.entry(seq).or_default() += u32::try_from(keys.len()).unwrap_or(u32::MAX);
        }
    }

    /// `keys` are being retired: their versions are forgotten when the retirement is
    /// sent, like a publication's are taken (so that a publication after it in the same
    /// pipeline starts over).
    fn forget(&mut self, keys: &[String]) {
        for key in keys {
            self.versions.remove(key);
        }
    }

    /// `keys` were retired (on Redis's reply, in order with the publications' replies).
    fn retired(&mut self, keys: &[String]) {
        for key in keys {
            if let Some(old) = self.holder.remove(key) {
                self.release(old);
            }
        }
    }

    /// Puts `seq` among the aging messages, in order.
    fn age(&mut self, seq: u64) {
        if self.aging.back().is_none_or(|&last| last < seq) {
            self.aging.push_back(seq);
        } else {
            let at = self.aging.partition_point(|&s| s < seq);
            if self.aging.get(at) != Some(&seq) {
                self.aging.insert(at, seq);
            }
        }
    }

    fn release(&mut self, seq: u64) {
        if let Some(n) = self.refs.get_mut(&seq) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.refs.remove(&seq);
                self.age(seq);
            }
        }
    }
}

/// The publisher task's memory of Redis, lent to [`send`].
struct State<'a> {
    floors: &'a mut HashMap<Arc<str>, u64>,
    ledgers: &'a mut HashMap<Arc<str>, Ledger>,
}

/// Most publications in one call of the publish script: batching spreads the cost of a
/// script call over many publications, and a bounded batch keeps each call short (Redis
/// runs nothing else meanwhile, and sends what it published only after the call).
const PER_CALL: usize = 16;

/// Most garbage messages one publication deletes.
const GARBAGE_PER_PUBLICATION: usize = 32;

/// What one job of a batch turned into.
enum Planned<'a> {
    /// Every part was older than what Redis holds.
    Suppressed,
    /// Sent; becomes the newest of these keys.
    Publish(&'a Arc<str>, Vec<String>),
    /// Sent.
    Retire(&'a Arc<str>, &'a [String]),
}

/// The SEED script's answer: the seq, the `lvc` pairs, the stored messages' seqs.
type Seed = (u64, Vec<(String, String)>, Vec<String>);

/// Seeds the ledgers of the batch's topics that have none yet, in one round trip.
async fn seed(
    conn: &mut MultiplexedConnection,
    sha: &str,
    names: &Names,
    batch: &[Job],
    ledgers: &mut HashMap<Arc<str>, Ledger>,
) -> Result<(), BackplaneError> {
    let mut topics: Vec<&Arc<str>> = batch
        .iter()
        .map(|job| match job {
            Job::Publish(p) => &p.topic,
            Job::Retire { topic, .. } => topic,
        })
        .filter(|t| !ledgers.contains_key(*t))
        .collect();
    topics.sort();
    topics.dedup();
    if topics.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for topic in &topics {
        pipe.cmd("EVALSHA")
            .arg(sha)
            .arg(3)
            .arg(names.key("seq", topic))
            .arg(names.key("lvc", topic))
            .arg(names.key("msg", topic));
    }
    let replies: Vec<Seed> = pipe.query_async(conn).await?;
    for (topic, (seq, lvc, stored)) in topics.into_iter().zip(replies) {
        ledgers.insert(Arc::clone(topic), Ledger::seed(seq, lvc, stored));
    }
    Ok(())
}

/// Sends one batch: seeds the ledgers it needs, drops the parts Redis already holds
/// newer, then sends runs of publications as batched script calls and retirements one
/// call each, in one pipeline, in order.
async fn send(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    shas: &[String; 3],
    batch: &[Job],
    state: &mut State<'_>,
) -> Result<(), BackplaneError> {
    let names = &shared.names;
    seed(conn, &shas[2], names, batch, state.ledgers).await?;
    let mut plan = Vec::with_capacity(batch.len());
    let mut pipe = redis::pipe();
    // Publications in the open script call.
    let mut in_call = 0;
    for job in batch {
        match job {
            Job::Publish(p) => {
                let ledger = state.ledgers.entry(Arc::clone(&p.topic)).or_default();
                let parts: Vec<&Part> = if p.cached {
                    p.parts
                        .iter()
                        .filter(|part| ledger.take_newer(&part.key, part.version))
                        .collect()
                } else {
                    p.parts.iter().collect()
                };
                if !p.parts.is_empty() && parts.is_empty() {
                    plan.push(Planned::Suppressed);
                    continue;
                }
                if in_call == 0 {
                    pipe.cmd("EVALSHA").arg(&shas[0]).arg(0).arg(names.prefix());
                }
                let keys: Vec<String> = if p.cached {
                    parts.iter().map(|part| part.key.clone()).collect()
                } else {
                    Vec::new()
                };
                let mut body = String::new();
                for fragment in parts.iter().map(|part| part.fragment.as_str()) {
                    if !fragment.is_empty() {
                        if !body.is_empty() {
                            body.push(',');
                        }
                        body.push_str(fragment);
                    }
                }
                body.push_str(&p.tail);
                let garbage = ledger.take_garbage(shared.config.log_len, GARBAGE_PER_PUBLICATION);
                let event_time = p
                    .event_time
                    .map_or_else(|| "-".to_owned(), |t| t.to_string());
                pipe.arg(&*p.topic)
                    .arg(state.floors.get(&p.topic).copied().unwrap_or(0))
                    .arg(event_time)
                    .arg(keys.join(","))
                    .arg(&p.head)
                    .arg(&p.mid)
                    .arg(body)
                    .arg(keys.len())
                    .arg(garbage.len());
                if p.cached {
                    for part in &parts {
                        pipe.arg(&part.key).arg(version_text(part.version));
                    }
                }
                pipe.arg(garbage);
                plan.push(Planned::Publish(&p.topic, keys));
                in_call = (in_call + 1) % PER_CALL;
            }
            Job::Retire { topic, keys } => {
                state
                    .ledgers
                    .entry(Arc::clone(topic))
                    .or_default()
                    .forget(keys);
                in_call = 0;
                pipe.cmd("EVALSHA")
                    .arg(&shas[1])
                    .arg(1)
                    .arg(names.key("lvc", topic))
                    .arg(names.channel(topic))
                    .arg(keys);
                plan.push(Planned::Retire(topic, keys));
            }
        }
    }
    let replies: Vec<redis::Value> = if plan.iter().all(|p| matches!(p, Planned::Suppressed)) {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    // Each reply answers a script call: a publish call for its run of publications
    // (skipping suppressed ones), a retire call for one retirement.
    let mut replies = replies.into_iter();
    let mut seqs: std::vec::IntoIter<redis::Value> = Vec::new().into_iter();
    for planned in plan {
        match planned {
            Planned::Suppressed => Counters::add(&shared.counters.suppressed, 1),
            Planned::Publish(topic, keys) => {
                let seq = match seqs.next() {
                    Some(v) => v,
                    None => match replies.next() {
                        Some(redis::Value::Array(items)) => {
                            seqs = items.into_iter();
                            seqs.next().unwrap_or(redis::Value::Nil)
                        }
                        other => {
                            return Err(BackplaneError::Protocol(format!(
                                "publish script answered {other:?}"
                            )));
                        }
                    },
                };
                let redis::Value::Int(seq) = seq else {
                    return Err(BackplaneError::Protocol(format!(
                        "publish script answered {seq:?} for a seq"
                    )));
                };
                let seq = u64::try_from(seq).unwrap_or(0);
                Counters::add(&shared.counters.published, 1);
                state.floors.insert(Arc::clone(topic), seq);
                if let Some(ledger) = state.ledgers.get_mut(topic) {
                    ledger.published(seq, &keys);
                }
            }
            Planned::Retire(topic, keys) => {
                // A retirement ends the open run of publications.
                seqs = Vec::new().into_iter();
                let _ = replies.next();
                if let Some(ledger) = state.ledgers.get_mut(topic) {
                    ledger.retired(keys);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(key: &str, v: i64, frag: &str) -> Part {
        Part {
            key: key.to_owned(),
            version: (v, 0),
            fragment: frag.to_owned(),
        }
    }

    #[test]
    fn a_key_listed_twice_keeps_its_last_part() {
        let mut parts = vec![part("a", 1, "a1"), part("b", 1, "b1"), part("a", 2, "a2")];
        keep_last_per_key(&mut parts);
        let got: Vec<_> = parts.iter().map(|p| p.fragment.as_str()).collect();
        assert_eq!(got, ["b1", "a2"]);
    }

    #[test]
    fn a_stored_version_reads_back() {
        for v in [
            (0, 0),
            (-5, 3),
            (1_700_000_000_000, 7),
            (i64::MAX, i64::MIN),
        ] {
            let stored = format!("{}:42", version_text(v));
            assert_eq!(parse_lvc(&stored), Some((v, 42)));
        }
        // An unreadable version is the oldest; an unreadable seq is no entry.
        assert_eq!(parse_lvc("junk:7"), Some(((i64::MIN, i64::MIN), 7)));
        assert_eq!(parse_lvc("1.2:x"), None);
        assert_eq!(parse_lvc("nothing"), None);
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|&k| k.to_owned()).collect()
    }

    #[test]
    fn a_ledger_drops_what_redis_holds_newer() {
        let mut l = Ledger::seed(
            9,
            vec![("a".into(), "5.0:9".into()), ("b".into(), "5.0:8".into())],
            keys(&["8", "9"]),
        );
        assert!(!l.take_newer("a", (5, 0)), "equal is not newer");
        assert!(!l.take_newer("a", (4, 9)));
        assert!(l.take_newer("a", (5, 1)));
        assert!(
            !l.take_newer("a", (5, 1)),
            "a second send of the same version"
        );
        assert!(l.take_newer("new", (i64::MIN, 0)));
        l.forget(&keys(&["b"]));
        l.retired(&keys(&["b"]));
        assert!(l.take_newer("b", (0, 0)), "a retired key starts over");
    }

    #[test]
    fn a_message_becomes_garbage_after_its_keys_moved_on_and_the_log_passed_it() {
        // Seeded: 3 holds a and b, 2 holds nothing (a notice), 1 is unknown junk.
        let mut l = Ledger::seed(
            3,
            vec![("a".into(), "1.0:3".into()), ("b".into(), "1.0:3".into())],
            keys(&["2", "3", "junk"]),
        );
        assert_eq!(
            l.take_garbage(2, 10),
            Vec::<u64>::new(),
            "2 is still in the log"
        );
        l.published(4, &keys(&["a"]));
        // 3 still holds b.
        assert_eq!(l.take_garbage(2, 10), [2]);
        l.published(5, &keys(&["b"]));
        assert_eq!(l.take_garbage(2, 10), [3]);
        l.published(6, &[]);
        l.forget(&keys(&["a"]));
        l.retired(&keys(&["a"]));
        assert_eq!(l.take_garbage(2, 10), [4]);
        l.published(9, &[]);
        assert_eq!(l.take_garbage(2, 1), [6], "at most max at a time");
        assert_eq!(
            l.take_garbage(2, 10),
            Vec::<u64>::new(),
            "9 is new, 5 holds b"
        );
        assert_eq!(l.holder.get("b"), Some(&5));
        assert_eq!(l.refs.get(&5), Some(&1));
    }

    #[test]
    fn a_newer_publication_absorbs_a_waiting_one_key_by_key() {
        let mut waiting = Publication {
            topic: Arc::from("t"),
            head: "h1".into(),
            mid: "m1".into(),
            tail: "]".into(),
            parts: vec![part("a", 1, "a1"), part("b", 1, "b1")],
            cached: true,
            conflate: true,
            event_time: Some(5),
        };
        let newer = Publication {
            head: "h2".into(),
            mid: "m2".into(),
            parts: vec![part("b", 2, "b2"), part("c", 2, "c2"), part("a", 0, "a0")],
            event_time: Some(3),
            ..waiting.clone()
        };
        absorb(&mut waiting, newer);
        assert_eq!((waiting.head.as_str(), waiting.mid.as_str()), ("h2", "m2"));
        assert_eq!(waiting.event_time, Some(5));
        let got: Vec<_> = waiting.parts.iter().map(|p| p.fragment.as_str()).collect();
        // `a` keeps its newer version; `b` is replaced; `c` joins.
        assert_eq!(got, ["a1", "b2", "c2"]);
    }
}
