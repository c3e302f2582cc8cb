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

struct Shared {
    /// Set at each (re)connection: Redis may have restarted empty.
    reconnected: std::sync::atomic::AtomicBool,
    pending: Mutex<Pending>,
    wake: Notify,
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
        counters.has_publisher.store(true, Ordering::Release);
        let shared = Arc::new(Shared {
            reconnected: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            names: Names::new(&config.prefix),
            config,
            counters,
        });
        tokio::spawn(run(client, Arc::clone(&shared)));
        Self { shared }
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
        let mut pending = self.lock();
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
        self.shared.wake.notify_one();
        Ok(())
    }

    /// How many publications wait to be sent (conflated widget values count once per
    /// topic): a producer that can wait may use it as backpressure.
    #[must_use]
    pub fn waiting(&self) -> usize {
        let pending = self.lock();
        pending.merged.len() + pending.queue.len()
    }

    /// Whether the publisher (re)connected since the last call: Redis may have restarted
    /// and lost the newest values, so the caller should publish every value again (the
    /// version check drops those Redis still holds).
    #[must_use]
    pub fn take_reconnected(&self) -> bool {
        self.shared.reconnected.swap(false, Ordering::AcqRel)
    }

    /// Removes `keys` from the topic's newest values, in Redis and in every mirror.
    pub fn retire(&self, topic: Arc<str>, keys: Vec<String>) {
        let keys: Vec<String> = keys.into_iter().filter(|k| valid_key(k)).collect();
        if keys.is_empty() {
            return;
        }
        let mut pending = self.lock();
        self.push_job(&mut pending, Job::Retire { topic, keys });
        drop(pending);
        self.shared.wake.notify_one();
    }

    fn push_job(&self, pending: &mut Pending, job: Job) {
        if pending.queue.len() >= self.shared.config.max_pending {
            pending.queue.pop_front();
            Counters::add(&self.shared.counters.dropped, 1);
        }
        pending.queue.push_back(job);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
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
fn take_batch(shared: &Shared, max: usize) -> Vec<Job> {
    let mut pending = shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
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
fn nothing_waits(shared: &Shared) -> bool {
    let pending = shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    pending.merged.is_empty() && pending.queue.is_empty()
}

/// Puts a batch that could not be sent back in front of what waits, newer values
/// winning over the batch's.
fn requeue(shared: &Shared, batch: Vec<Job>) {
    let mut pending = shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
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
                if pending.queue.len() < shared.config.max_pending {
                    pending.queue.push_front(job);
                } else {
                    Counters::add(&shared.counters.dropped, 1);
                }
            }
        }
    }
}

async fn run(client: redis::Client, shared: Arc<Shared>) {
    let config = link::connection_config(&shared.config);
    let mut backoff = Backoff::new(&shared.config);
    let mut conn: Option<(MultiplexedConnection, [String; 2])> = None;
    // The last seq Redis gave each topic: the floor of the next publish, so that a Redis
    // that lost its data cannot hand out a number a client has seen. Bounded by the
    // topics this node publishes on.
    let mut floors: HashMap<Arc<str>, u64> = HashMap::new();
    loop {
        if Arc::strong_count(&shared) == 1 && nothing_waits(&shared) {
            // Every handle was dropped and nothing waits.
            return;
        }
        if conn.is_none() {
            match link::connect(&client, config.clone(), [scripts::PUBLISH, scripts::RETIRE]).await
            {
                Ok(c) => {
                    backoff.succeed();
                    shared.counters.publisher_up.store(true, Ordering::Release);
                    shared.counters.breaker_open.store(false, Ordering::Release);
                    shared.reconnected.store(true, Ordering::Release);
                    conn = Some(c);
                }
                Err(e) => {
                    failed(&shared, &mut backoff, &e).await;
                    continue;
                }
            }
        }
        let Some((c, shas)) = conn.as_mut() else {
            continue;
        };
        let batch = take_batch(&shared, shared.config.max_batch);
        if batch.is_empty() {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(shared.config.probe_interval) => {
                    // Idle: check the connection, so that health tells the truth.
                    let started = std::time::Instant::now();
                    let ping: redis::RedisResult<String> = redis::cmd("PING").query_async(c).await;
                    match ping {
                        Ok(_) => link::record_rtt(&shared.counters, started.elapsed()),
                        Err(e) => {
                            conn = None;
                            failed(&shared, &mut backoff, &e.into()).await;
                        }
                    }
                }
            }
            continue;
        }
        match send(&shared, c, shas, &batch, &floors).await {
            Ok(results) => {
                for (job, seq) in batch.iter().zip(results) {
                    if let Job::Publish(p) = job {
                        if seq == 0 {
                            Counters::add(&shared.counters.suppressed, 1);
                        } else {
                            Counters::add(&shared.counters.published, 1);
                            floors.insert(Arc::clone(&p.topic), seq);
                        }
                    }
                }
            }
            Err(e) => {
                conn = None;
                Counters::add(&shared.counters.publish_errors, 1);
                requeue(&shared, batch);
                failed(&shared, &mut backoff, &e).await;
            }
        }
    }
}

async fn failed(shared: &Shared, backoff: &mut Backoff, e: &BackplaneError) {
    shared.counters.publisher_up.store(false, Ordering::Release);
    Counters::add(&shared.counters.reconnects, 1);
    let (wait, open) = backoff.fail();
    shared.counters.breaker_open.store(open, Ordering::Release);
    tracing::warn!(error = %e, retry_in = ?wait, "redis backplane publisher: Redis unreachable");
    tokio::time::sleep(wait).await;
}

/// A version as the script compares it: two zero-padded 16-digit numbers (negative
/// numbers count as 0), so that string order is version order.
fn version_text((hi, lo): (i64, i64)) -> String {
    const MAX: i64 = 9_999_999_999_999_999;
    format!("{:016}{:016}", hi.clamp(0, MAX), lo.clamp(0, MAX))
}

/// Most publications in one call of the publish script: batching spreads the cost of a
/// script call over many publications, and a bounded batch keeps each call short (Redis
/// runs nothing else meanwhile).
const PER_CALL: usize = 16;

/// Sends one pipeline: runs of publications as batched script calls, retirements one
/// call each, in order; returns each job's seq (0: suppressed, or a retirement).
async fn send(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    shas: &[String; 2],
    batch: &[Job],
    floors: &HashMap<Arc<str>, u64>,
) -> Result<Vec<u64>, BackplaneError> {
    let names = &shared.names;
    let mut pipe = redis::pipe();
    // For each call of the pipeline: how many jobs it answers for.
    let mut counts = Vec::new();
    let mut i = 0;
    while let Some(job) = batch.get(i) {
        match job {
            Job::Publish(_) => {
                let cmd = pipe
                    .cmd("EVALSHA")
                    .arg(&shas[0])
                    .arg(0)
                    .arg(names.prefix())
                    .arg(shared.config.log_len);
                let mut n = 0;
                while let Some(Job::Publish(p)) = batch.get(i) {
                    if n == PER_CALL {
                        break;
                    }
                    let event_time = p
                        .event_time
                        .map_or_else(|| "-".to_owned(), |t| t.to_string());
                    cmd.arg(&*p.topic)
                        .arg(floors.get(&p.topic).copied().unwrap_or(0))
                        .arg(event_time)
                        .arg(&p.head)
                        .arg(&p.mid)
                        .arg(&p.tail)
                        .arg(if p.cached { "1" } else { "0" })
                        .arg(p.parts.len());
                    for part in &p.parts {
                        cmd.arg(&part.key)
                            .arg(version_text(part.version))
                            .arg(&part.fragment);
                    }
                    n += 1;
                    i += 1;
                }
                counts.push(Some(n));
            }
            Job::Retire { topic, keys } => {
                pipe.cmd("EVALSHA")
                    .arg(&shas[1])
                    .arg(2)
                    .arg(names.key("lvc", topic))
                    .arg(names.key("msg", topic))
                    .arg(names.channel(topic))
                    .arg(keys);
                counts.push(None);
                i += 1;
            }
        }
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let mut seqs = Vec::with_capacity(batch.len());
    for (reply, count) in replies.into_iter().zip(counts) {
        match (count, reply) {
            (None, _) => seqs.push(0),
            (Some(n), redis::Value::Array(items)) if items.len() == n => {
                seqs.extend(items.into_iter().map(|v| match v {
                    redis::Value::Int(s) => u64::try_from(s).unwrap_or(0),
                    _ => 0,
                }));
            }
            (Some(_), other) => {
                return Err(BackplaneError::Protocol(format!(
                    "publish script answered {other:?}"
                )));
            }
        }
    }
    Ok(seqs)
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
    fn versions_compare_as_text_in_version_order() {
        let v = [
            (0, 0),
            (0, 7),
            (1, 0),
            (1_700_000_000_000, 5),
            (1_700_000_000_001, 0),
        ];
        for w in v.windows(2) {
            assert!(version_text(w[0]) < version_text(w[1]), "{w:?}");
        }
        assert_eq!(version_text((-5, 3)), version_text((0, 3)));
        assert_eq!(version_text((1, 2)).len(), 32);
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
