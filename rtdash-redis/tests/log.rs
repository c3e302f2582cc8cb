//! The durable partitioned log ([`StreamLog`]) against a real `redis-server` (each test
//! starts its own): appends applied in order exactly once with checkpoints that trim
//! the stream, a crashed owner's partitions taken over with nothing lost nor counted
//! twice (and late entries written once), fencing of a stale owner's checkpoint,
//! rebalancing as nodes join and leave, a Redis restart that keeps its append-only
//! file, an owner cut off from Redis (and back), concurrent appends on one connection,
//! a checkpoint the handler refuses, and bad input.
//!
//! The test handler's state is simple and checkable: payloads are `u64`s (little
//! endian); a partition's state is their sum and count; numbers divisible by 7 are
//! "late" (returned by `apply`, so they go to the late stream).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtdash_redis::{
    Backplane, BackplaneError, LogConfig, OwnerHandle, PartitionHandler, StreamLog,
};
use support::{Proxy, RedisServer, admin, client_list, config, wait_until};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short timings: leases of 400 ms renewed every 100 ms, checkpoints every 200 ms.
fn log_config() -> LogConfig {
    LogConfig::default()
        .with_partitions(8)
        .with_lease_ttl(ms(400))
        .with_renew_every(ms(100))
        .with_checkpoint_every(ms(200))
        .with_read_count(64)
}

fn log_of(url: &str, node: &str, log: LogConfig) -> StreamLog {
    Backplane::new(url, config(node))
        .and_then(|b| b.stream_log(log))
        .expect("a stream log")
}

/// A stream id as numbers, for ordering.
fn id_key(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').expect("a stream id");
    (a.parse().expect("ms"), b.parse().expect("seq"))
}

/// One partition's state in the test handler.
#[derive(Debug, Default, Clone)]
struct Part {
    sum: u64,
    count: u64,
    last_id: Option<String>,
}

/// What the handler was told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Acquire(u32, bool),
    Release(u32),
}

/// The test handler (see the file's docs).
#[derive(Default)]
struct Handler {
    parts: Mutex<BTreeMap<u32, Part>>,
    /// Every entry applied: (partition, id, value).
    applied: Mutex<Vec<(u32, String, u64)>>,
    calls: Mutex<Vec<Call>>,
    /// Contract violations seen (calls out of order, entries out of order).
    violations: Mutex<Vec<String>>,
    /// Partitions whose next restores are refused, and how many.
    refuse: Mutex<HashMap<u32, u32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handler {
    fn violation(&self, v: String) {
        lock(&self.violations).push(v);
    }

    fn parts(&self) -> BTreeMap<u32, Part> {
        lock(&self.parts).clone()
    }

    fn applied(&self) -> Vec<(u32, String, u64)> {
        lock(&self.applied).clone()
    }

    fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    fn assert_no_violations(&self) {
        let v = lock(&self.violations);
        assert!(v.is_empty(), "handler contract violated: {v:#?}");
    }
}

impl PartitionHandler for Handler {
    fn acquire(&self, p: u32, checkpoint: Option<&[u8]>) -> Result<(), String> {
        lock(&self.calls).push(Call::Acquire(p, checkpoint.is_some()));
        if let Some(n) = lock(&self.refuse).get_mut(&p).filter(|n| **n > 0) {
            *n -= 1;
            return Err("refused by the test".into());
        }
        let part = match checkpoint {
            None => Part::default(),
            Some(data) => {
                let (sum, count) = data.split_at_checked(8).ok_or("short checkpoint")?;
                Part {
                    sum: u64::from_le_bytes(sum.try_into().map_err(|_| "bad sum")?),
                    count: u64::from_le_bytes(count.try_into().map_err(|_| "bad count")?),
                    last_id: None,
                }
            }
        };
        if lock(&self.parts).insert(p, part).is_some() {
            self.violation(format!("acquire({p}) while owning it"));
        }
        Ok(())
    }

    fn apply(&self, p: u32, id: &str, payload: &[u8]) -> Option<Vec<u8>> {
        let Ok(bytes) = <[u8; 8]>::try_from(payload) else {
            self.violation(format!(
                "apply({p}, {id}): payload of {} bytes",
                payload.len()
            ));
            return None;
        };
        let v = u64::from_le_bytes(bytes);
        let mut parts = lock(&self.parts);
        let Some(part) = parts.get_mut(&p) else {
            drop(parts);
            self.violation(format!("apply({p}, {id}) without owning it"));
            return None;
        };
        if let Some(last) = part
            .last_id
            .as_ref()
            .filter(|last| id_key(id) <= id_key(last))
        {
            let v = format!("apply({p}, {id}) after {last}: out of order or twice");
            drop(parts);
            self.violation(v);
            return None;
        }
        part.sum += v;
        part.count += 1;
        part.last_id = Some(id.to_owned());
        drop(parts);
        lock(&self.applied).push((p, id.to_owned(), v));
        (v % 7 == 0).then(|| v.to_le_bytes().to_vec())
    }

    fn checkpoint(&self, p: u32) -> Vec<u8> {
        let part = lock(&self.parts).get(&p).cloned();
        let Some(part) = part else {
            self.violation(format!("checkpoint({p}) without owning it"));
            return Vec::new();
        };
        let mut data = part.sum.to_le_bytes().to_vec();
        data.extend_from_slice(&part.count.to_le_bytes());
        data
    }

    fn release(&self, p: u32) {
        lock(&self.calls).push(Call::Release(p));
        if lock(&self.parts).remove(&p).is_none() {
            self.violation(format!("release({p}) without owning it"));
        }
    }
}

/// Appends numbers 1, 2, 3, ... (metric `m<n>`, partition by [`StreamLog::partition_of`])
/// and remembers what Redis acknowledged.
struct Producer {
    log: StreamLog,
    next: u64,
    /// Per partition: the values acknowledged, in order.
    acked: BTreeMap<u32, Vec<u64>>,
}

impl Producer {
    fn new(log: StreamLog) -> Self {
        Self {
            log,
            next: 1,
            acked: BTreeMap::new(),
        }
    }

    async fn batch(&mut self, n: u64) -> Result<(), BackplaneError> {
        let values: Vec<u64> = (self.next..self.next + n).collect();
        let entries: Vec<(u32, Bytes)> = values
            .iter()
            .map(|v| {
                let p = self.log.partition_of(&format!("m{v}"));
                (p, Bytes::copy_from_slice(&v.to_le_bytes()))
            })
            .collect();
        self.log.append(&entries).await?;
        for ((p, _), v) in entries.iter().zip(values) {
            self.acked.entry(*p).or_default().push(v);
        }
        self.next += n;
        Ok(())
    }

    /// Appends a batch, retrying (like a producer would) until Redis takes it; returns
    /// how many attempts failed.
    async fn batch_retrying(&mut self, n: u64) -> u32 {
        let mut failures = 0;
        while self.batch(n).await.is_err() {
            failures += 1;
            tokio::time::sleep(ms(20)).await;
        }
        failures
    }

    fn expected(&self) -> BTreeMap<u32, (u64, u64)> {
        self.acked
            .iter()
            .map(|(p, vs)| (*p, (vs.iter().sum(), vs.len() as u64)))
            .collect()
    }

    fn total(&self) -> u64 {
        self.acked.values().map(|v| v.len() as u64).sum()
    }
}

/// Whether every partition is held by exactly one of `handlers`, with exactly the
/// expected sum and count; else why not.
fn exact(
    handlers: &[&Handler],
    expected: &BTreeMap<u32, (u64, u64)>,
    partitions: u32,
) -> Result<(), String> {
    for p in 0..partitions {
        let held: Vec<Part> = handlers
            .iter()
            .filter_map(|h| h.parts().get(&p).cloned())
            .collect();
        let [part] = held.as_slice() else {
            return Err(format!("partition {p} held {} times", held.len()));
        };
        let want = expected.get(&p).copied().unwrap_or((0, 0));
        if (part.sum, part.count) != want {
            return Err(format!(
                "partition {p}: (sum, count) = {:?}, expected {want:?}",
                (part.sum, part.count)
            ));
        }
    }
    Ok(())
}

async fn wait_exact(handlers: &[&Handler], producer: &Producer, limit: Duration) {
    let expected = producer.expected();
    let partitions = producer.log.config().partitions;
    wait_until(
        limit,
        "every partition's exact state",
        || exact(handlers, &expected, partitions).is_ok(),
        || format!("{:?}", exact(handlers, &expected, partitions)),
    )
    .await;
}

async fn wait_owned(owner: &OwnerHandle, want: &[u32], limit: Duration) {
    wait_until(
        limit,
        &format!("ownership of {want:?}"),
        || owner.owned() == want,
        || format!("owned: {:?}", owner.owned()),
    )
    .await;
}

const ALL: [u32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

async fn xlen(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(key)
        .query_async(conn)
        .await
        .expect("XLEN")
}

async fn first_id(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    let v: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .expect("XRANGE");
    v.into_iter().next().map(|(id, _)| id)
}

#[tokio::test]
async fn one_owner_applies_every_entry_in_order_once_and_checkpoints_trim_the_stream() {
    let server = RedisServer::start();
    let url = server.url();
    let log = log_of(&url, "a", log_config());
    let handler = Arc::new(Handler::default());
    let owner = log.spawn_owner(handler.clone());
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;

    let mut producer = Producer::new(log.clone());
    for _ in 0..5 {
        assert_eq!(producer.batch_retrying(50).await, 0);
    }
    // Redis forgets the scripts (NOSCRIPT): they are loaded again, nothing is lost.
    let mut conn = admin(&url).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("SCRIPT FLUSH");
    for _ in 0..5 {
        assert_eq!(producer.batch_retrying(50).await, 0);
    }
    // An entry this crate did not write (no payload field): skipped, counted.
    let _: String = redis::cmd("XADD")
        .arg(log.stream_key(2))
        .arg("*")
        .arg("other")
        .arg("x")
        .query_async(&mut conn)
        .await
        .expect("XADD");
    assert_eq!(producer.batch_retrying(50).await, 0);
    wait_exact(&[&handler], &producer, Duration::from_secs(5)).await;

    // In order, exactly once: each partition's values as appended.
    let mut applied: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (p, _, v) in handler.applied() {
        applied.entry(p).or_default().push(v);
    }
    assert_eq!(applied, producer.acked);
    assert!(producer.acked.len() == 8, "all partitions used");

    // Checkpoints catch up with the last entry applied; the stream keeps only it.
    let last: BTreeMap<u32, String> = handler
        .parts()
        .into_iter()
        .filter_map(|(p, part)| part.last_id.map(|id| (p, id)))
        .collect();
    for p in 0..8 {
        let want = last.get(&p).cloned().expect("a last id");
        let deadline = Instant::now() + Duration::from_secs(3);
        let stored = loop {
            let c = log.checkpoint(p).await.expect("checkpoint read");
            if c.as_ref().is_some_and(|c| c.offset == want) || Instant::now() > deadline {
                break c;
            }
            tokio::time::sleep(ms(20)).await;
        };
        let stored = stored.expect("a stored checkpoint");
        assert_eq!(stored.offset, want, "partition {p}");
        assert!(stored.token >= 1);
        let (sum, count) = producer.expected()[&p];
        let mut data = sum.to_le_bytes().to_vec();
        data.extend_from_slice(&count.to_le_bytes());
        assert_eq!(stored.data.as_ref(), data.as_slice(), "partition {p}");
        let key = log.stream_key(p);
        assert_eq!(
            xlen(&mut conn, &key).await,
            1,
            "{key} trimmed behind its checkpoint"
        );
        assert_eq!(
            first_id(&mut conn, &key).await.as_deref(),
            Some(want.as_str())
        );
    }

    let stats = log.stats();
    assert!(stats.up, "{stats:?}");
    assert_eq!(stats.owned, 8);
    assert_eq!(stats.appended_entries, 550);
    assert_eq!(stats.applied_entries, 550);
    assert_eq!(stats.skipped_entries, 1);
    assert_eq!(stats.takeovers, 8);
    assert!(stats.checkpoints >= 8, "{stats:?}");
    assert_eq!(stats.last_checkpoint_bytes, 16);
    assert!(stats.late_entries >= 550 / 7, "{stats:?}");
    assert_eq!(stats.leases_lost, 0, "{stats:?}");

    // A clean shutdown frees everything.
    owner.shutdown().await;
    handler.assert_no_violations();
    assert!(handler.parts().is_empty());
    for p in 0..8 {
        let exists: u64 = redis::cmd("EXISTS")
            .arg(format!("rtdash:lease:{{{p}}}"))
            .query_async(&mut conn)
            .await
            .expect("EXISTS");
        assert_eq!(exists, 0, "lease {p} freed");
    }
    let nodes: Vec<String> = redis::cmd("ZRANGE")
        .arg("rtdash:nodes")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE");
    assert!(nodes.is_empty(), "{nodes:?}");
    assert_eq!(log.stats().owned, 0);
    assert_eq!(log.stats().releases, 8);
}

/// Reads a whole late stream.
async fn all_late(log: &StreamLog, p: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut after = "0-0".to_owned();
    loop {
        let page = log
            .late_entries(p, &after, 100)
            .await
            .expect("late entries");
        let Some((last, _)) = page.last() else {
            return out;
        };
        after = last.clone();
        for (id, payload) in page {
            let bytes = <[u8; 8]>::try_from(payload.as_ref()).expect("a late u64");
            out.push((id, u64::from_le_bytes(bytes)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_owners_partitions_move_with_nothing_lost_nor_twice_and_late_entries_once() {
    let server = RedisServer::start();
    let url = server.url();
    let log_a = log_of(&url, "a", log_config());
    let log_b = log_of(&url, "b", log_config());
    let ha = Arc::new(Handler::default());
    let hb = Arc::new(Handler::default());
    let owner_a = log_a.spawn_owner(ha.clone());
    wait_owned(&owner_a, &ALL, Duration::from_secs(5)).await;

    // Appends go on all along, through the failover.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut producer = Producer::new(log_of(&url, "producer", log_config()));
    let producing = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                producer.batch_retrying(10).await;
                tokio::time::sleep(ms(3)).await;
            }
            producer
        })
    };
    tokio::time::sleep(ms(700)).await;

    // A crashes: its tasks stop, its leases stay until they expire.
    let crashed = Instant::now();
    drop(owner_a);
    let owner_b = log_b.spawn_owner(hb.clone());
    wait_owned(&owner_b, &ALL, Duration::from_secs(5)).await;
    let failover = crashed.elapsed();
    println!("failover: B owned every partition {failover:?} after A crashed (lease_ttl 400 ms)");
    assert!(
        failover >= ms(300),
        "B cannot own A's partitions before their leases expire"
    );
    assert!(failover < Duration::from_secs(2), "{failover:?}");

    tokio::time::sleep(ms(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let producer = producing.await.expect("the producer");
    assert!(producer.total() > 200, "{}", producer.total());
    wait_exact(&[&hb], &producer, Duration::from_secs(5)).await;
    hb.assert_no_violations();
    ha.assert_no_violations();

    // B restored from A's checkpoints (some data) and replayed what A applied after them.
    let restored = hb
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Acquire(_, true)))
        .count();
    assert!(restored > 0, "{:?}", hb.calls());
    let a_ids: BTreeSet<(u32, String)> =
        ha.applied().into_iter().map(|(p, id, _)| (p, id)).collect();
    let replayed = hb
        .applied()
        .into_iter()
        .filter(|(p, id, _)| a_ids.contains(&(*p, id.clone())))
        .count();
    println!("replayed after the failover: {replayed} entries");
    assert!(replayed > 0, "B replayed nothing A had applied");
    assert_eq!(log_b.stats().takeovers, 8);
    assert_eq!(log_a.stats().owned, 0, "a crashed owner counts nothing");

    // Late entries: each once, under the id of its log entry, though replayed.
    let mut ids: HashMap<u64, (u32, String)> = HashMap::new();
    for (p, id, v) in ha.applied().into_iter().chain(hb.applied()) {
        let prev = ids.insert(v, (p, id.clone()));
        assert!(
            prev.is_none_or(|prev| prev == (p, id)),
            "value {v} under two ids"
        );
    }
    for p in 0..8 {
        let late = all_late(&log_b, p).await;
        let want: Vec<u64> = producer.acked.get(&p).map_or_else(Vec::new, |vs| {
            vs.iter().copied().filter(|v| v % 7 == 0).collect()
        });
        let got: Vec<u64> = late.iter().map(|(_, v)| *v).collect();
        assert_eq!(got, want, "late stream of partition {p}");
        for (id, v) in late {
            assert_eq!(ids.get(&v), Some(&(p, id)), "late {v} under its entry's id");
        }
    }
    owner_b.shutdown().await;
}

#[tokio::test]
async fn a_stale_owners_checkpoint_is_fenced_and_it_lets_go() {
    let server = RedisServer::start();
    let url = server.url();
    let log = log_of(&url, "a", log_config());
    let handler = Arc::new(Handler::default());
    let owner = log.spawn_owner(handler.clone());
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;
    let mut producer = Producer::new(log.clone());
    producer.batch_retrying(100).await;
    wait_exact(&[&handler], &producer, Duration::from_secs(5)).await;
    let p = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    let before = loop {
        if let Some(c) = log.checkpoint(p).await.expect("read") {
            break c;
        }
        assert!(Instant::now() < deadline, "no checkpoint of partition {p}");
        tokio::time::sleep(ms(20)).await;
    };

    // A successor acquires behind A's back: the fencing token moves on while A still
    // believes (and renews) its lease.
    let mut conn = admin(&url).await;
    let fence: u64 = redis::cmd("INCR")
        .arg(format!("rtdash:fence:{{{p}}}"))
        .query_async(&mut conn)
        .await
        .expect("INCR");
    assert_eq!(fence, before.token + 1);
    log.append(&[(p, Bytes::copy_from_slice(&7000u64.to_le_bytes()))])
        .await
        .expect("append");
    producer.acked.entry(p).or_default().push(7000);

    // A's next checkpoint is refused: it releases the partition, then (the lease being
    // its own, freed) acquires it again with a newer token and replays.
    wait_until(
        Duration::from_secs(3),
        "A fenced",
        || log.stats().fenced >= 1,
        || format!("{:?}", log.stats()),
    )
    .await;
    wait_until(
        Duration::from_secs(3),
        "A releases and acquires the partition again",
        || {
            let calls = handler.calls();
            let released = calls.iter().position(|c| *c == Call::Release(p));
            released.is_some_and(|i| calls[i..].contains(&Call::Acquire(p, true)))
        },
        || format!("{:?}", handler.calls()),
    )
    .await;
    wait_exact(&[&handler], &producer, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let c = log
            .checkpoint(p)
            .await
            .expect("read")
            .expect("a checkpoint");
        if c.token > fence {
            break;
        }
        assert!(
            c.token == before.token,
            "only A's old or new token may store: {c:?}"
        );
        assert!(
            Instant::now() < deadline,
            "no checkpoint with a new token: {c:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
    handler.assert_no_violations();
    owner.shutdown().await;
}

/// Fails if a partition is owned by two of `owners` at once; returns the union.
fn union_disjoint(owners: &[&OwnerHandle]) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    for o in owners {
        for p in o.owned() {
            assert!(
                seen.insert(p),
                "partition {p} owned twice: {:?}",
                owners.iter().map(|o| o.owned()).collect::<Vec<_>>()
            );
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_follow_nodes_joining_and_leaving() {
    let server = RedisServer::start();
    let url = server.url();
    // Long leases: a clean leave must not wait for them.
    let cfg = log_config().with_lease_ttl(Duration::from_secs(3));
    let (ha, hb, hc) = (
        Arc::new(Handler::default()),
        Arc::new(Handler::default()),
        Arc::new(Handler::default()),
    );
    let log_a = log_of(&url, "a", cfg.clone());
    let log_b = log_of(&url, "b", cfg.clone());
    let log_c = log_of(&url, "c", cfg.clone());
    let mut producer = Producer::new(log_of(&url, "producer", cfg));
    let a = log_a.spawn_owner(ha.clone());
    let b = log_b.spawn_owner(hb.clone());
    producer.batch_retrying(100).await;

    // Two nodes split the partitions as rendezvous hashing says (pinned: the hash is
    // part of the protocol).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.owned() == [2, 3, 4, 5] && b.owned() == [0, 1, 6, 7]) {
        union_disjoint(&[&a, &b]);
        assert!(
            Instant::now() < deadline,
            "a {:?}, b {:?}",
            a.owned(),
            b.owned()
        );
        tokio::time::sleep(ms(10)).await;
    }
    producer.batch_retrying(100).await;
    wait_exact(&[&ha, &hb], &producer, Duration::from_secs(5)).await;

    // A third joins and gets its share, handed over by the others (no lease expiry).
    let joined = Instant::now();
    let c = log_c.spawn_owner(hc.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.owned() == [2, 4, 5] && b.owned() == [0, 1, 6, 7] && c.owned() == [3]) {
        union_disjoint(&[&a, &b, &c]);
        assert!(
            Instant::now() < deadline,
            "a {:?}, b {:?}, c {:?}",
            a.owned(),
            b.owned(),
            c.owned()
        );
        tokio::time::sleep(ms(10)).await;
    }
    println!("join: rebalanced in {:?}", joined.elapsed());
    assert!(
        joined.elapsed() < Duration::from_secs(2),
        "{:?}",
        joined.elapsed()
    );
    producer.batch_retrying(100).await;
    wait_exact(&[&ha, &hb, &hc], &producer, Duration::from_secs(5)).await;

    // C leaves cleanly: its partitions move at once, long before its leases would expire.
    let left = Instant::now();
    c.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.owned() == [2, 3, 4, 5] && b.owned() == [0, 1, 6, 7]) {
        union_disjoint(&[&a, &b]);
        assert!(
            Instant::now() < deadline,
            "a {:?}, b {:?}",
            a.owned(),
            b.owned()
        );
        tokio::time::sleep(ms(10)).await;
    }
    let moved = left.elapsed();
    println!("leave: partitions moved {moved:?} after a clean shutdown (lease_ttl 3 s)");
    assert!(moved < Duration::from_secs(1), "{moved:?}");
    assert!(hc.parts().is_empty());
    producer.batch_retrying(100).await;
    wait_exact(&[&ha, &hb, &hc], &producer, Duration::from_secs(5)).await;
    for h in [&ha, &hb, &hc] {
        h.assert_no_violations();
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_with_its_append_only_file_loses_nothing() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = server.url();
    let log = log_of(&url, "a", log_config());
    let handler = Arc::new(Handler::default());
    let owner = log.spawn_owner(handler.clone());
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;
    let mut producer = Producer::new(log.clone());
    for _ in 0..10 {
        producer.batch_retrying(30).await;
    }
    wait_exact(&[&handler], &producer, Duration::from_secs(5)).await;
    // Let some checkpoints land, so that the restart has something to restore.
    tokio::time::sleep(ms(300)).await;

    server.kill();
    // Appends fail promptly while Redis is down.
    for _ in 0..3 {
        let started = Instant::now();
        let r = producer.batch(10).await;
        assert!(r.is_err(), "an append to a dead Redis succeeded");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    let before = producer.total();
    // A producer retries meanwhile; Redis comes back with its data after 700 ms (past
    // lease_ttl: the owner gives its partitions up, then takes them again).
    let retrying = tokio::spawn(async move {
        let failures = producer.batch_retrying(10).await;
        (producer, failures)
    });
    tokio::time::sleep(ms(700)).await;
    server.restart();
    let (mut producer, failures) = retrying.await.expect("the producer");
    assert!(failures > 0);
    assert_eq!(producer.total(), before + 10);
    for _ in 0..10 {
        producer.batch_retrying(30).await;
    }
    wait_exact(&[&handler], &producer, Duration::from_secs(10)).await;
    wait_until(
        Duration::from_secs(3),
        "healthy again",
        || log.stats().up,
        || format!("{:?}", log.stats()),
    )
    .await;
    let stats = log.stats();
    println!("after the restart: {stats:?}");
    assert!(stats.append_errors >= 3, "{stats:?}");
    handler.assert_no_violations();
    owner.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_the_handler_refuses_is_retried_after_a_cooldown() {
    let server = RedisServer::start();
    let url = server.url();
    let log = log_of(&url, "a", log_config());
    let first = Arc::new(Handler::default());
    let owner = log.spawn_owner(first.clone());
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;
    let mut producer = Producer::new(log.clone());
    producer.batch_retrying(100).await;
    wait_exact(&[&first], &producer, Duration::from_secs(5)).await;
    owner.shutdown().await;

    // The next owner cannot restore partition 3 twice, then can.
    let second = Arc::new(Handler::default());
    lock(&second.refuse).insert(3, 2);
    let started = Instant::now();
    let owner = log.spawn_owner(second.clone());
    wait_owned(&owner, &[0, 1, 2, 4, 5, 6, 7], Duration::from_secs(2)).await;
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;
    let took = started.elapsed();
    // Two refusals, each followed by 10 rounds of cooldown.
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(log.stats().restore_failures, 2);
    let tries = second
        .calls()
        .iter()
        .filter(|c| **c == Call::Acquire(3, true))
        .count();
    assert_eq!(tries, 3);
    wait_exact(&[&second], &producer, Duration::from_secs(5)).await;
    second.assert_no_violations();
    owner.shutdown().await;
}

#[tokio::test]
async fn bad_settings_and_arguments_are_refused_and_named() {
    // Nothing connects: no Redis needed.
    let backplane = Backplane::new("redis://127.0.0.1:1", config("a")).expect("backplane");
    let cases = [
        (LogConfig::default().with_partitions(0), "partitions"),
        (LogConfig::default().with_lease_ttl(ms(10)), "lease_ttl"),
        (
            LogConfig::default().with_renew_every(ms(1_000)),
            "renew_every",
        ),
        (
            LogConfig::default().with_checkpoint_every(ms(1)),
            "checkpoint_every",
        ),
        (LogConfig::default().with_read_count(0), "read_count"),
        (
            LogConfig::default().with_late_stream_len(0),
            "late_stream_len",
        ),
    ];
    for (cfg, field) in cases {
        match backplane.stream_log(cfg) {
            Err(e @ BackplaneError::InvalidConfig { .. }) => {
                assert!(e.to_string().contains(field), "{e}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }

    let log = backplane.stream_log(LogConfig::default()).expect("log");
    // Fixed forever: fmix64 of FNV-1a 64 of the bytes, modulo the partitions.
    let fixed: Vec<u32> = ["", "a", "foobar", "cpu", "mem", "disk.io"]
        .iter()
        .map(|m| log.partition_of(m))
        .collect();
    assert_eq!(fixed, [6, 3, 3, 6, 0, 2]);
    let log16 = backplane
        .stream_log(LogConfig::default().with_partitions(16))
        .expect("log");
    assert_eq!(log16.partition_of("cpu"), 14);
    assert_eq!(log16.partition_of("mem"), 8);
    assert_eq!(log.stream_key(3), "rtdash:log:{3}");
    assert_eq!(log.late_stream_key(3), "rtdash:late:{3}");

    let e = log
        .append(&[(0, Bytes::new()), (8, Bytes::new())])
        .await
        .expect_err("partition 8 of 8");
    assert!(
        matches!(
            e,
            BackplaneError::InvalidPartition {
                partition: 8,
                partitions: 8
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("0 to 7"), "{e}");
    assert_eq!(
        log.stats().append_errors,
        0,
        "refused before anything was sent"
    );
    let e = log.checkpoint(99).await.expect_err("partition 99");
    assert!(
        matches!(e, BackplaneError::InvalidPartition { .. }),
        "{e:?}"
    );
    let e = log
        .late_entries(0, "nonsense", 10)
        .await
        .expect_err("bad id");
    assert!(e.to_string().contains("after"), "{e}");
    assert!(log.append(&[]).await.is_ok(), "nothing to append");
    // Redis unreachable: an error, promptly.
    let started = Instant::now();
    let e = log.append(&[(1, Bytes::from_static(b"x"))]).await;
    assert!(
        matches!(
            e,
            Err(BackplaneError::Redis(_) | BackplaneError::Timeout { .. })
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(log.stats().append_errors, 1);
    assert!(!log.stats().up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_pipeline_on_one_connection() {
    let server = RedisServer::start();
    let url = server.url();
    let log = log_of(&url, "a", log_config());
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..50u64 {
                    let entries: Vec<(u32, Bytes)> = (0..10u64)
                        .map(|j| {
                            let v = t * 1_000_000 + i * 100 + j;
                            (
                                log.partition_of(&v.to_string()),
                                Bytes::copy_from_slice(&v.to_le_bytes()),
                            )
                        })
                        .collect();
                    log.append(&entries).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("an appending task");
    }
    let mut conn = admin(&url).await;
    let mut total = 0;
    for p in 0..8 {
        total += xlen(&mut conn, &log.stream_key(p)).await;
    }
    assert_eq!(total, 8 * 50 * 10);
    assert_eq!(log.stats().appended_entries, 4_000);
    // The log's one shared connection and the test's own.
    assert_eq!(client_list(&mut conn).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_cut_off_from_redis_lets_go_and_comes_back() {
    let server = RedisServer::start();
    let url = server.url();
    let proxy = Proxy::start(server.port()).await;
    // A reaches Redis through the proxy, B and the producer directly.
    let log_a = log_of(&proxy.url(), "a", log_config());
    let log_b = log_of(&url, "b", log_config());
    let (ha, hb) = (Arc::new(Handler::default()), Arc::new(Handler::default()));
    let a = log_a.spawn_owner(ha.clone());
    wait_owned(&a, &ALL, Duration::from_secs(5)).await;
    let mut producer = Producer::new(log_of(&url, "producer", log_config()));
    producer.batch_retrying(100).await;
    wait_exact(&[&ha], &producer, Duration::from_secs(5)).await;

    // Appends on a wedged connection fail within about the response timeout (500 ms);
    // the next call reconnects.
    let append_proxy = Proxy::start(server.port()).await;
    let log_w = log_of(&append_proxy.url(), "w", log_config());
    let zero = || vec![(0, Bytes::from_static(&[0; 8]))];
    assert!(log_w.append(&zero()).await.is_ok());
    append_proxy.blackhole();
    let started = Instant::now();
    let e = log_w.append(&zero()).await;
    assert!(e.is_err(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert!(log_w.append(&zero()).await.is_ok());
    producer.acked.entry(0).or_default().extend([0, 0]);
    assert_eq!(log_w.stats().append_errors, 1);
    wait_exact(&[&ha], &producer, Duration::from_secs(5)).await;
    assert_eq!(a.owned(), ALL, "A was not disturbed");

    // A's connections are wedged and new ones refused: A gives every partition up
    // within lease_ttl plus a response timeout; B, starting now, takes them when A's
    // leases expire.
    proxy.refuse(true);
    proxy.blackhole();
    let cut = Instant::now();
    let b = log_b.spawn_owner(hb.clone());
    let (mut a_gone, mut b_all) = (None, None);
    while a_gone.is_none() || b_all.is_none() {
        assert!(
            cut.elapsed() < Duration::from_secs(5),
            "a {:?}, b {:?}",
            a.owned(),
            b.owned()
        );
        if a_gone.is_none() && a.owned().is_empty() {
            a_gone = Some(cut.elapsed());
        }
        if b_all.is_none() && b.owned() == ALL {
            b_all = Some(cut.elapsed());
        }
        tokio::time::sleep(ms(2)).await;
    }
    let (a_gone, b_all) = (a_gone.unwrap_or_default(), b_all.unwrap_or_default());
    println!("cut off: A let go {a_gone:?} after the cut, B owned everything after {b_all:?}");
    assert!(
        b_all >= ms(250),
        "B took A's partitions before their leases expired: {b_all:?}"
    );
    // A lets go when its leases may expire, not a response timeout later.
    assert!(a_gone <= b_all + ms(100), "A let go at {a_gone:?}");
    assert_eq!(log_a.stats().leases_lost, 8);
    assert!(!log_a.stats().up);
    assert!(ha.parts().is_empty());
    producer.batch_retrying(100).await;
    wait_exact(&[&hb], &producer, Duration::from_secs(5)).await;

    // The network heals: A rejoins and takes its share back from B, handed over.
    proxy.refuse(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.owned() == [2, 3, 4, 5] && b.owned() == [0, 1, 6, 7]) {
        union_disjoint(&[&a, &b]);
        assert!(
            Instant::now() < deadline,
            "a {:?}, b {:?}",
            a.owned(),
            b.owned()
        );
        tokio::time::sleep(ms(10)).await;
    }
    producer.batch_retrying(100).await;
    wait_exact(&[&ha, &hb], &producer, Duration::from_secs(5)).await;
    wait_until(
        Duration::from_secs(3),
        "A healthy again",
        || log_a.stats().up,
        || format!("{:?}", log_a.stats()),
    )
    .await;
    ha.assert_no_violations();
    hb.assert_no_violations();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_node_with_another_number_of_partitions_is_refused() {
    let server = RedisServer::start();
    let url = server.url();
    let eight = log_of(&url, "a", log_config());
    let handler = Arc::new(Handler::default());
    let owner = eight.spawn_owner(handler.clone());
    wait_owned(&owner, &ALL, Duration::from_secs(5)).await;
    // Another node configured with 4 partitions: its appends are refused, naming the
    // setting, and nothing is appended.
    let four = log_of(&url, "b", log_config().with_partitions(4));
    let err = four
        .append(&[(0, Bytes::from_static(b"x"))])
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("partitions") && text.contains('8') && text.contains('4'),
        "{text}"
    );
    assert_eq!(four.stats().appended_entries, 0);
    // Its owner takes nothing, however long it tries; the first node keeps all.
    let other = Arc::new(Handler::default());
    let refused = four.spawn_owner(other.clone());
    tokio::time::sleep(ms(600)).await;
    assert!(refused.owned().is_empty(), "{:?}", refused.owned());
    assert_eq!(owner.owned(), ALL);
    refused.shutdown().await;
    owner.shutdown().await;
}
