//! The Redis backplane against a real `redis-server` (each test starts its own on a free
//! port; Debian's `redis-server` package must be installed): late subscribers, replays,
//! retirements, subscriptions that follow local interest, killed and wedged connections,
//! a gap the log cannot fill, a Redis restart that loses everything, an overflowing
//! inbox, bad input, a publisher dropped right after publishing, and a reconnection
//! that fails before its fresh snapshot.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rtdash_fanout::HubConfig;
use rtdash_redis::{Backplane, BackplaneConfig, BackplaneError, BackplaneStats, Publication};
use rtdash_transport::{FrameHub, Topic};
use support::{
    Deadline, KEYS, Proxy, Published, Recorder, RedisServer, Rng, Wk, admin, config, parse_frame,
    publication, pubsub_channels, redis_seq, stale_marker, subscribers, topic, wait_until,
};

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A node serving local clients: a backplane and its running mirror.
struct Node {
    backplane: Backplane,
    hub: FrameHub<Wk>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    fn start(url: &str, config: BackplaneConfig) -> Self {
        Self::start_with(url, config, None)
    }

    fn start_with(
        url: &str,
        config: BackplaneConfig,
        marker: Option<rtdash_redis::StaleMarker>,
    ) -> Self {
        let backplane = Backplane::new(url, config).expect("backplane");
        let mut mirror = backplane.mirror::<Wk>(HubConfig::default());
        if let Some(m) = marker {
            mirror = mirror.with_stale_marker(m);
        }
        let hub = mirror.hub().clone();
        let task = mirror.spawn();
        Self {
            backplane,
            hub,
            task,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until the backplane's stats satisfy `cond` (counters are updated right after
/// what they count, so a test that saw the effect may be a moment ahead of them).
async fn wait_stats(
    backplane: &Backplane,
    what: &str,
    cond: impl Fn(&BackplaneStats) -> bool,
) -> BackplaneStats {
    wait_until(
        secs(10),
        what,
        || cond(&backplane.stats()),
        || format!("{:?}", backplane.stats()),
    )
    .await;
    backplane.stats()
}

/// The keys of the frames `hub` caches for `topic`.
fn cached_keys(hub: &FrameHub<Wk>, t: &Topic) -> Vec<String> {
    let mut keys: Vec<String> = hub
        .snapshot(t)
        .messages
        .iter()
        .flat_map(|m| parse_frame(m.msg.as_str(), t).items)
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Waits until the recorder holds `published`'s newest values and has reached Redis's seq
/// of `t` (nothing left in flight); returns that seq.
async fn settle(rec: &mut Recorder, url: &str, t: &Topic, published: &Published) -> u64 {
    let newest = published.newest.clone();
    rec.wait_for(secs(20), "the newest value of every key", |r| {
        r.state == newest
    })
    .await;
    let mut conn = admin(url).await;
    let seq = redis_seq(&mut conn, t).await.expect("the topic has a seq");
    rec.wait_state(secs(10), seq, &newest).await;
    assert_eq!(
        redis_seq(&mut conn, t).await,
        Some(seq),
        "Redis's seq moved after the last publication"
    );
    seq
}

// ---------------------------------------------------------------------------------------
// 1. Late subscribers
// ---------------------------------------------------------------------------------------

/// 200 publications of random subsets of five keys, at increasing versions. A subscriber
/// from the start (A, node 1) and two that join midway (B on node 1, served
/// from the local hub; C on node 2, served from Redis's snapshot) all start with a
/// snapshot, then get every seq once and in order; one seq is the same bytes for all;
/// a late snapshot is A's state at that seq; all end at the newest value of every key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscribers_get_a_snapshot_then_every_message_in_order() {
    let redis = RedisServer::start();
    let t = topic("late");
    let n1 = Node::start(&redis.url(), config("late-1"));
    let n2 = Node::start(&redis.url(), config("late-2"));
    let publisher = n1.backplane.publisher();

    let mut a = Recorder::subscribe("A (node 1, from the start)", &n1.hub, &t);
    a.wait_snapshot(secs(10)).await;
    assert_eq!(a.snapshots[0].seq, 0, "a fresh topic starts at seq 0");
    assert!(a.state.is_empty());

    let mut rng = Rng::new(0x1a7e_5eed);
    let mut published = Published::default();
    let mut late: Vec<Recorder> = Vec::new();
    for i in 0..200 {
        // Two in three conflate while they wait (only the newest value of a key goes
        // out), the others go out in order; Redis drops the parts already superseded.
        publisher
            .publish(Publication {
                conflate: i % 3 != 0,
                ..published.next(&t, &rng.subset(&KEYS))
            })
            .expect("publish");
        if i % 8 == 7 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            a.drain();
        }
        if i == 100 {
            a.wait_for(
                secs(10),
                "a few messages before the late subscribers",
                |r| r.last_seq >= Some(10),
            )
            .await;
            let mut b = Recorder::subscribe("B (node 1, joins midway)", &n1.hub, &t);
            let mut c = Recorder::subscribe("C (node 2, joins midway)", &n2.hub, &t);
            b.wait_snapshot(secs(10)).await;
            c.wait_snapshot(secs(10)).await;
            late.push(b);
            late.push(c);
        }
    }

    let last = settle(&mut a, &redis.url(), &t, &published).await;
    wait_stats(&n1.backplane, "one Redis seq per frame published", |s| {
        s.published == last
    })
    .await;
    assert_eq!(
        a.frames.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "A got every seq from 1 to {last}"
    );
    assert_eq!(
        a.snapshots.len(),
        1,
        "A got one snapshot only: {:?}",
        a.snapshots
    );

    for r in &mut late {
        r.wait_state(secs(10), last, &published.newest).await;
        assert_eq!(r.snapshots.len(), 1, "{}: {:?}", r.name, r.snapshots);
        let s = &r.snapshots[0];
        assert!(
            s.seq > 0 && s.seq < last,
            "{} joined midway: snapshot at {} of {last}",
            r.name,
            s.seq
        );
        assert_eq!(
            Some(&s.state),
            a.history.get(&s.seq),
            "{}: its snapshot at seq {} is A's state at that seq",
            r.name,
            s.seq
        );
        assert_eq!(
            r.messages,
            last - s.seq,
            "{}: every seq after its snapshot",
            r.name
        );
        let mut common = 0;
        for (seq, frame) in &r.frames {
            assert_eq!(
                a.frames.get(seq),
                Some(frame),
                "{} and A: frame {seq} differs",
                r.name
            );
            common += 1;
        }
        assert!(
            common as u64 > last - s.seq,
            "{}: compared {common} frames",
            r.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Replays
// ---------------------------------------------------------------------------------------

/// A publication Redis already holds is dropped (counted, no seq taken, nothing
/// delivered), also when another node replays it (a successor after failover: its
/// publisher learns what Redis holds before it sends); one with an old part and a newer
/// part gives a frame with only the newer part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_suppressed_part_by_part() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("replay");
    let node = Node::start(&url, config("replay"));
    let publisher = node.backplane.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    let mut conn = admin(&url).await;

    let first = publication(&t, &[("k0", 1), ("k1", 1)]);
    publisher.publish(first.clone()).expect("publish");
    let state: BTreeMap<String, i64> = [("k0".into(), 1), ("k1".into(), 1)].into();
    rec.wait_state(secs(10), 1, &state).await;
    wait_stats(&node.backplane, "the first publication counted", |s| {
        s.published == 1
    })
    .await;

    // The same publication again, then an older one: both suppressed.
    for replay in [
        first.clone(),
        Publication {
            conflate: false,
            ..publication(&t, &[("k0", 0), ("k1", 1)])
        },
    ] {
        let before = node.backplane.stats();
        publisher.publish(replay).expect("publish");
        wait_until(
            secs(10),
            "the replay to be suppressed",
            || node.backplane.stats().suppressed == before.suppressed + 1,
            || format!("{:?}", node.backplane.stats()),
        )
        .await;
        let after = node.backplane.stats();
        assert_eq!(after.published, before.published, "{after:?}");
        assert_eq!(redis_seq(&mut conn, &t).await, Some(1), "no seq taken");
    }
    // Another node replays what the first published.
    let successor = Node::start(&url, config("replay-successor"));
    let replayer = successor.backplane.publisher();
    replayer.publish(first.clone()).expect("publish");
    wait_stats(
        &successor.backplane,
        "the successor's replay suppressed",
        |s| (s.published, s.suppressed) == (0, 1),
    )
    .await;
    assert_eq!(redis_seq(&mut conn, &t).await, Some(1), "no seq taken");
    rec.assert_quiet();

    // One old part (k0 at 1) and one newer (k1 at 2): only k1 goes out.
    let mixed = Publication {
        conflate: false,
        ..publication(&t, &[("k0", 1), ("k1", 2)])
    };
    publisher.publish(mixed).expect("publish");
    let state: BTreeMap<String, i64> = [("k0".into(), 1), ("k1".into(), 2)].into();
    // Seq 2 right after 1: nothing was delivered for the replays.
    rec.wait_state(secs(10), 2, &state).await;
    let frame = rec.frames.get(&2).expect("frame 2");
    assert_eq!(
        parse_frame(frame, &t).items,
        [("k1".to_owned(), 2)],
        "only the newer part: {frame}"
    );
    assert_eq!(
        frame,
        r#"{"type":"update","topic":"replay","seq":2,"items":[{"k":"k1","v":2}]}"#
    );
    let lvc: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("rtdash:lvc:{replay}")
        .query_async(&mut conn)
        .await
        .expect("HGETALL lvc");
    assert_eq!(
        lvc,
        BTreeMap::from([
            ("k0".into(), "1.0:1".to_owned()),
            ("k1".into(), "2.0:2".to_owned()),
        ]),
        "Redis keeps the newest version of each key and the seq holding it"
    );
    wait_stats(&node.backplane, "2 published and 2 suppressed", |s| {
        (s.published, s.suppressed) == (2, 2)
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 3. Retirement
// ---------------------------------------------------------------------------------------

/// A retired key leaves Redis's newest values and every mirror's cache: an existing
/// subscriber's hub forgets it, new subscribers' snapshots (local or from Redis) lack it,
/// and the topic's seq goes on unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_keys_leave_redis_and_every_mirror() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("retire");
    let n1 = Node::start(&url, config("retire-1").with_log_len(2));
    let n2 = Node::start(&url, config("retire-2"));
    let publisher = n1.backplane.publisher();
    let mut a = Recorder::subscribe("A (node 1)", &n1.hub, &t);
    a.wait_snapshot(secs(10)).await;

    let mut published = Published::default();
    for keys in [&["k0"][..], &["k1"], &["k2", "k3"]] {
        publisher
            .publish(Publication {
                conflate: false,
                ..published.next(&t, keys)
            })
            .expect("publish");
    }
    let seq = settle(&mut a, &url, &t, &published).await;
    assert_eq!(seq, 3);
    assert_eq!(cached_keys(&n1.hub, &t), ["k0", "k1", "k2", "k3"]);

    publisher.retire(Arc::clone(&t), vec!["k0".into(), "bad,key".into()]);
    wait_until(
        secs(10),
        "node 1's hub to forget k0",
        || !cached_keys(&n1.hub, &t).contains(&"k0".to_owned()),
        || format!("cached: {:?}", cached_keys(&n1.hub, &t)),
    )
    .await;
    assert_eq!(cached_keys(&n1.hub, &t), ["k1", "k2", "k3"]);
    assert_eq!(n1.hub.snapshot(&t).seq, 3, "a retirement takes no seq");

    let mut conn = admin(&url).await;
    let lvc_keys: Vec<String> = redis::cmd("HKEYS")
        .arg("rtdash:lvc:{retire}")
        .query_async(&mut conn)
        .await
        .expect("HKEYS");
    let mut lvc_keys = lvc_keys;
    lvc_keys.sort();
    assert_eq!(lvc_keys, ["k1", "k2", "k3"]);
    let expected: BTreeMap<String, i64> =
        [("k1".into(), 2), ("k2".into(), 3), ("k3".into(), 3)].into();
    let mut b = Recorder::subscribe("B (node 1, after the retirement)", &n1.hub, &t);
    let mut c = Recorder::subscribe("C (node 2, after the retirement)", &n2.hub, &t);
    for r in [&mut b, &mut c] {
        r.wait_snapshot(secs(10)).await;
        assert_eq!(r.snapshots[0].seq, 3, "{}", r.name);
        assert_eq!(r.snapshots[0].state, expected, "{}: no k0", r.name);
    }

    // The stream goes on at the next seq for everyone.
    publisher
        .publish(published.next(&t, &["k4"]))
        .expect("publish");
    let mut state = expected.clone();
    state.insert("k4".into(), 4);
    b.wait_state(secs(10), 4, &state).await;
    c.wait_state(secs(10), 4, &state).await;
    a.wait_for(secs(10), "seq 4", |r| r.last_seq == Some(4))
        .await;
    assert_eq!(cached_keys(&n1.hub, &t), ["k1", "k2", "k3", "k4"]);
    // The message only k0 referred to stayed for catch-up until the log (2 messages
    // here) moved past it; the next publication deleted it.
    let mut msgs: Vec<u64> = redis::cmd("HKEYS")
        .arg("rtdash:msg:{retire}")
        .query_async(&mut conn)
        .await
        .expect("HKEYS");
    msgs.sort_unstable();
    assert_eq!(msgs, [2, 3, 4], "the message only k0 referred to is gone");
}

// ---------------------------------------------------------------------------------------
// 4. Subscriptions follow local interest
// ---------------------------------------------------------------------------------------

async fn rtdash_channels(url: &str) -> Vec<String> {
    let mut conn = admin(url).await;
    pubsub_channels(&mut conn)
        .await
        .into_iter()
        .filter(|c| c.starts_with("rtdash:"))
        .collect()
}

async fn wait_channels(url: &str, what: &str, cond: impl Fn(&[String]) -> bool) {
    let d = Deadline::after(secs(10), what);
    loop {
        let channels = rtdash_channels(url).await;
        if cond(&channels) {
            return;
        }
        d.tick(|| format!("channels: {channels:?}")).await;
    }
}

/// The mirror subscribes a topic's channel (and its probe channel) while local
/// subscribers hold the topic, and unsubscribes everything when the last one leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscriptions_follow_local_interest() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (t1, t2) = (topic("interest-1"), topic("interest-2"));
    let node = Node::start(&url, config("interest"));
    let publisher = node.backplane.publisher();
    let mut published = Published::default();
    publisher
        .publish(published.next(&t1, &["k0"]))
        .expect("publish");
    wait_until(
        secs(10),
        "the publication",
        || node.backplane.stats().published == 1,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;
    assert_eq!(rtdash_channels(&url).await, Vec::<String>::new());
    assert_eq!(node.backplane.stats().subscriptions, 0);

    let mut a = Recorder::subscribe("A", &node.hub, &t1);
    a.wait_state(secs(10), 1, &published.newest).await;
    wait_channels(&url, "the topic's channel and the probe channel", |c| {
        c == ["rtdash:ch:{interest-1}", "rtdash:probe:interest"]
    })
    .await;
    wait_stats(&node.backplane, "1 subscription", |s| s.subscriptions == 1).await;

    let b = Recorder::subscribe("B (same topic)", &node.hub, &t1);
    let c = Recorder::subscribe("C (another topic)", &node.hub, &t2);
    wait_channels(&url, "the second topic's channel", |c| {
        c == [
            "rtdash:ch:{interest-1}",
            "rtdash:ch:{interest-2}",
            "rtdash:probe:interest",
        ]
    })
    .await;
    wait_stats(&node.backplane, "2 subscriptions", |s| s.subscriptions == 2).await;

    // A leaves (B still holds the topic), then C (the last of its topic).
    drop(a);
    drop(c);
    wait_channels(&url, "the second topic's channel to go", |c| {
        c == ["rtdash:ch:{interest-1}", "rtdash:probe:interest"]
    })
    .await;
    wait_stats(&node.backplane, "1 subscription", |s| s.subscriptions == 1).await;

    drop(b);
    wait_channels(&url, "no rtdash channel at all", <[String]>::is_empty).await;
    wait_stats(&node.backplane, "no subscription", |s| s.subscriptions == 0).await;

    // Interest again: subscribed again, with a fresh snapshot from Redis.
    let mut d = Recorder::subscribe("D (comes back)", &node.hub, &t1);
    d.wait_state(secs(10), 1, &published.newest).await;
    wait_channels(&url, "the channel again", |c| {
        c == ["rtdash:ch:{interest-1}", "rtdash:probe:interest"]
    })
    .await;
    publisher
        .publish(published.next(&t1, &["k1"]))
        .expect("publish");
    d.wait_state(secs(10), 2, &published.newest).await;
}

// ---------------------------------------------------------------------------------------
// 5. Killed connections
// ---------------------------------------------------------------------------------------

/// Publishes `count` random publications, one every `every`, then returns what it
/// published.
fn spawn_publishing(
    publisher: rtdash_redis::RedisPublisher,
    t: Topic,
    seed: u64,
    count: usize,
    every: Duration,
) -> tokio::task::JoinHandle<Published> {
    tokio::spawn(async move {
        let mut rng = Rng::new(seed);
        let mut published = Published::default();
        for _ in 0..count {
            publisher
                .publish(published.next(&t, &rng.subset(&KEYS)))
                .expect("publish");
            tokio::time::sleep(every).await;
        }
        published
    })
}

/// The mirror's connection killed by Redis (`CLIENT KILL TYPE pubsub`, then by its id)
/// while a publisher keeps publishing: the mirror reconnects and catches up, and its
/// subscriber never sees a gap nor a seq going back, and ends at the newest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_subscriber_connections_are_repaired_without_a_gap() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("kill");
    let node = Node::start(&url, config("kill"));
    let publisher = node.backplane.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    let mut conn = admin(&url).await;

    let publishing = spawn_publishing(
        publisher,
        Arc::clone(&t),
        0x6b11,
        600,
        Duration::from_millis(2),
    );

    for (round, by_type) in [(1u64, true), (2, false)] {
        let seen = rec.last_seq.unwrap_or(0);
        rec.wait_for(secs(10), "messages before the kill", |r| {
            r.last_seq >= Some(seen + 30)
        })
        .await;
        let mirror_conns = subscribers(&mut conn).await;
        assert_eq!(
            mirror_conns.len(),
            1,
            "one connection subscribes (the mirror's): {mirror_conns:#?}"
        );
        let before = node.backplane.stats();
        let killed: i64 = if by_type {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query_async(&mut conn)
                .await
                .expect("CLIENT KILL TYPE pubsub")
        } else {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(mirror_conns[0].id())
                .query_async(&mut conn)
                .await
                .expect("CLIENT KILL ID")
        };
        assert_eq!(
            killed,
            1,
            "CLIENT KILL ({}) killed the mirror's RESP3 subscriber connection",
            if by_type { "TYPE pubsub" } else { "ID" }
        );
        wait_until(
            secs(10),
            "the mirror to reconnect and catch up",
            || {
                let s = node.backplane.stats();
                s.reconnects > before.reconnects
                    && s.catchups + s.resyncs > before.catchups + before.resyncs
                    && s.up
            },
            || format!("{:?}", node.backplane.stats()),
        )
        .await;
        let after = node.backplane.stats();
        assert!(after.reconnects >= round, "{after:?}");
        let new_conns = subscribers(&mut conn).await;
        assert!(
            new_conns.iter().all(|c| c.id() != mirror_conns[0].id()),
            "a new connection: {new_conns:#?}"
        );
    }

    let published = publishing.await.expect("publishing task");
    settle(&mut rec, &url, &t, &published).await;
    wait_stats(&node.backplane, "a catch-up from the log", |s| {
        s.catchups >= 1
    })
    .await;
    assert!(rec.messages > 0);
}

// ---------------------------------------------------------------------------------------
// 6. A gap the log cannot fill
// ---------------------------------------------------------------------------------------

/// A message past a gap that the topic's log does not cover makes the mirror take a
/// fresh snapshot; the message itself is never delivered out of order. A message past
/// Redis's own seq (written by someone else) is dropped and counted as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_the_log_cannot_fill_is_repaired_with_a_snapshot() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("gap");
    let node = Node::start(&url, config("gap"));
    let publisher = node.backplane.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    let mut conn = admin(&url).await;

    let mut published = Published::default();
    for keys in [&["k0", "k1"][..], &["k1"], &["k2"]] {
        publisher
            .publish(Publication {
                conflate: false,
                ..published.next(&t, keys)
            })
            .expect("publish");
    }
    let current = settle(&mut rec, &url, &t, &published).await;
    assert_eq!(current, 3);
    let bogus = |seq: u64| {
        format!(
            r#"{seq} - k0{}{{"type":"update","topic":"gap","seq":{seq},"items":[{{"k":"k0","v":999}}]}}"#,
            '\n'
        )
    };

    // 1. Injected past Redis's own seq (Redis still says 3): a gap; dropped.
    let before = node.backplane.stats();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("rtdash:ch:{gap}")
        .arg(bogus(current + 5))
        .query_async(&mut conn)
        .await
        .expect("PUBLISH");
    assert_eq!(receivers, 1);
    wait_until(
        secs(10),
        "the gap to be seen",
        || node.backplane.stats().gaps > before.gaps,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;
    publisher
        .publish(published.next(&t, &["k3"]))
        .expect("publish");
    rec.wait_state(secs(10), current + 1, &published.newest)
        .await;
    assert_eq!(rec.snapshots.len(), 1, "{:?}", rec.snapshots);

    // 2. Redis's seq moved on by 5 but the log lacks those messages (as after a log
    // write that failed): the message past the gap brings a resync.
    let current = current + 1;
    let before = node.backplane.stats();
    let _: u64 = redis::cmd("INCRBY")
        .arg("rtdash:seq:{gap}")
        .arg(5)
        .query_async(&mut conn)
        .await
        .expect("INCRBY");
    let _: i64 = redis::cmd("PUBLISH")
        .arg("rtdash:ch:{gap}")
        .arg(bogus(current + 5))
        .query_async(&mut conn)
        .await
        .expect("PUBLISH");
    rec.wait_for(secs(10), "a snapshot at the new seq", |r| {
        r.snapshots.len() == 2
    })
    .await;
    let s = rec.snapshots[1].clone();
    assert_eq!(s.seq, current + 5);
    assert_eq!(
        s.state, published.newest,
        "Redis's newest values, not the bogus one"
    );
    wait_stats(&node.backplane, "a gap and a resync counted", |s| {
        s.gaps > before.gaps && s.resyncs > before.resyncs
    })
    .await;
    assert!(
        rec.frames.values().all(|f| !f.contains("999")),
        "the bogus frame was delivered: {:?}",
        rec.frames
    );

    // The stream goes on after the snapshot.
    publisher
        .publish(published.next(&t, &["k4"]))
        .expect("publish");
    rec.wait_state(secs(10), current + 6, &published.newest)
        .await;
}

// ---------------------------------------------------------------------------------------
// 7. Redis restart
// ---------------------------------------------------------------------------------------

/// Redis killed (SIGKILL) and started again empty on the same port while a publisher
/// publishes: health goes down then up, the subscriber gets the stale-marked values
/// while Redis is gone, its seqs never go back, and after the publisher republishes
/// every key it ends at the newest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_marks_values_stale_and_never_takes_seqs_back() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let t = topic("restart");
    let node = Node::start_with(&url, config("restart"), Some(stale_marker()));
    let publisher = node.backplane.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    wait_until(
        secs(10),
        "the backplane to be up",
        || node.backplane.stats().up,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;
    assert!(publisher.take_reconnected(), "the first connection counts");

    let mut rng = Rng::new(0x04e5_7a47);
    let mut published = Published::default();
    for _ in 0..60 {
        publisher
            .publish(published.next(&t, &rng.subset(&KEYS)))
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let before_kill = settle(&mut rec, &url, &t, &published).await;

    // Redis dies; the publisher keeps publishing.
    redis.kill();
    for _ in 0..20 {
        publisher
            .publish(published.next(&t, &rng.subset(&KEYS)))
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_until(
        secs(10),
        "the backplane to be down",
        || !node.backplane.stats().up,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;
    rec.wait_for(secs(10), "a snapshot of stale-marked values", |r| {
        r.snapshots
            .last()
            .is_some_and(|s| s.frames > 0 && s.stale_frames == s.frames)
    })
    .await;
    let stale = rec.snapshots.last().cloned().expect("snapshot");
    assert_eq!(stale.seq, before_kill, "stale marking keeps the seq");
    wait_stats(&node.backplane, "a stale mark", |s| s.stale_marks >= 1).await;
    assert!(!node.backplane.stats().up);

    // Redis comes back empty.
    redis.restart();
    wait_until(
        secs(15),
        "the backplane to be up again",
        || node.backplane.stats().up,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;
    let d = Deadline::after(secs(10), "the publisher to report its reconnection");
    while !publisher.take_reconnected() {
        d.tick(|| format!("{:?}", node.backplane.stats())).await;
    }
    publisher
        .publish(published.republish(&t))
        .expect("republish");
    for _ in 0..30 {
        publisher
            .publish(published.next(&t, &rng.subset(&KEYS)))
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(2)).await;
        if publisher.take_reconnected() {
            publisher
                .publish(published.republish(&t))
                .expect("republish");
        }
    }
    let last = settle(&mut rec, &url, &t, &published).await;
    assert!(last > before_kill, "seqs go on past {before_kill}: {last}");
    let stale_at = rec
        .snapshots
        .iter()
        .position(|s| s.stale_frames > 0)
        .expect("the stale snapshot");
    assert!(
        rec.snapshots[stale_at + 1..]
            .iter()
            .any(|s| s.stale_frames == 0 && s.seq >= before_kill),
        "a fresh snapshot after the restart: {:?}",
        rec.snapshots
    );
    wait_stats(&node.backplane, "reconnections", |s| s.reconnects >= 2).await;
}

// ---------------------------------------------------------------------------------------
// 8. A wedged connection
// ---------------------------------------------------------------------------------------

/// The mirror's connection wedged by a proxy (open, but every byte thrown away): the
/// mirror's probe finds it, it reconnects and catches up, and its subscriber ends at the
/// newest state without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_connection_is_found_by_the_probe_and_replaced() {
    let redis = RedisServer::start();
    let url = redis.url();
    let proxy = Proxy::start(redis.port()).await;
    let t = topic("wedge");
    let node = Node::start(&proxy.url(), config("wedge-mirror"));
    let source = Backplane::new(&url, config("wedge-publisher")).expect("backplane");
    let publisher = source.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    wait_until(
        secs(10),
        "the mirror's subscription",
        || node.backplane.stats().subscriptions == 1,
        || format!("{:?}", node.backplane.stats()),
    )
    .await;

    let mut rng = Rng::new(0x3ed6e);
    let mut published = Published::default();
    for _ in 0..20 {
        publisher
            .publish(published.next(&t, &rng.subset(&KEYS)))
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seen = settle(&mut rec, &url, &t, &published).await;

    let before = node.backplane.stats();
    assert_eq!(
        proxy.blackhole(),
        1,
        "the mirror's one connection is wedged"
    );
    for _ in 0..50 {
        publisher
            .publish(published.next(&t, &rng.subset(&KEYS)))
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = settle(&mut rec, &url, &t, &published).await;
    assert!(last > seen);
    wait_stats(&node.backplane, "the wedge found, and up again", |s| {
        s.probe_failures + s.reconnects > before.probe_failures + before.reconnects && s.up
    })
    .await;
    assert!(proxy.open_since_blackhole() >= 1, "the mirror reconnected");
}

// ---------------------------------------------------------------------------------------
// 9. Inbox overflow
// ---------------------------------------------------------------------------------------

/// With an inbox of one message, a burst overflows it: the dropped messages are counted
/// and repaired from the log, and the subscriber ends gap-free at the newest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_inbox_is_repaired_from_the_log() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("inbox");
    let node = Node::start(&url, config("inbox").with_max_inbox(1));
    let publisher = node.backplane.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;

    let mut rng = Rng::new(0x1b0c);
    let mut published = Published::default();
    for _ in 0..1000 {
        publisher
            .publish(Publication {
                conflate: false,
                ..published.next(&t, &rng.subset(&KEYS))
            })
            .expect("publish");
    }
    let last = settle(&mut rec, &url, &t, &published).await;
    assert_eq!(last, 1000, "one frame per publication");
    let stats = wait_stats(&node.backplane, "repairs counted", |s| {
        s.catchups + s.resyncs > 1
    })
    .await;
    assert!(stats.inbox_dropped > 0, "{stats:?}");
    assert_eq!(rec.frames.len(), 1000, "every seq delivered");
}

// ---------------------------------------------------------------------------------------
// 10. Bad input
// ---------------------------------------------------------------------------------------

/// Bad URLs are refused without showing the password; a key holding a separator is
/// refused by `publish`, naming it, and nothing of it is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_keys_are_refused_without_leaking_secrets() {
    let e = Backplane::new("not a url", config("bad")).expect_err("not a url");
    assert!(matches!(e, BackplaneError::InvalidUrl { .. }), "{e:?}");
    assert!(e.to_string().contains("invalid Redis URL"), "{e}");

    let mut refused = 0;
    for url in [
        "redis://:secret@",
        "redis://:secret@127.0.0.1:notaport",
        "redis://:secret@127.0.0.1:6379/notadb",
        "redis://user:secret@[::1",
        "nonsense://:secret@127.0.0.1",
        "user:secret@127.0.0.1:6379",
        ":secret@127.0.0.1",
        "redis+unix:///tmp/redis.sock?pass=secret&db=notadb",
        "redis+unix:///tmp/redis.sock?db=1&pass=secret",
    ] {
        match Backplane::new(url, config("bad")) {
            Err(e) => {
                refused += 1;
                assert!(
                    matches!(e, BackplaneError::InvalidUrl { .. }),
                    "{url}: {e:?}"
                );
                let shown = format!("{e} {e:?}");
                assert!(
                    !shown.contains("secret"),
                    "{url}: the password shows: {shown}"
                );
            }
            Ok(b) => {
                let shown = format!("{b:?}");
                assert!(
                    !shown.contains("secret"),
                    "{url}: the password shows: {shown}"
                );
            }
        }
    }
    assert!(
        refused >= 7,
        "most of these URLs are invalid ({refused} refused)"
    );
    let b = Backplane::new("redis://:secret@127.0.0.1:6379/0", config("bad")).expect("valid");
    assert!(!format!("{b:?}").contains("secret"), "{b:?}");

    // Keys with separators.
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("badkey");
    let backplane = Backplane::new(&url, config("badkey")).expect("backplane");
    let publisher = backplane.publisher();
    for key in ["a,b", "a b", "a:b", "a\nb", ""] {
        let e = publisher
            .publish(publication(&t, &[("k0", 1), (key, 1)]))
            .expect_err("a key with a separator");
        assert!(
            e.to_string().contains(&format!("{key:?}")),
            "the error names the key {key:?}: {e}"
        );
    }
    publisher
        .publish(publication(&t, &[("k1", 1)]))
        .expect("publish");
    wait_until(
        secs(10),
        "the valid publication",
        || backplane.stats().published == 1,
        || format!("{:?}", backplane.stats()),
    )
    .await;
    let mut conn = admin(&url).await;
    assert_eq!(
        redis_seq(&mut conn, &t).await,
        Some(1),
        "only the valid one went out"
    );
    let lvc: Vec<String> = redis::cmd("HKEYS")
        .arg("rtdash:lvc:{badkey}")
        .query_async(&mut conn)
        .await
        .expect("HKEYS");
    assert_eq!(lvc, ["k1"]);
}

// ---------------------------------------------------------------------------------------
// 11. A publisher dropped right after publishing
// ---------------------------------------------------------------------------------------

/// What was queued before the last publisher handle was dropped still reaches Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_queued_before_the_publisher_is_dropped_are_sent() {
    let redis = RedisServer::start();
    let url = redis.url();
    let t = topic("drop");
    let backplane = Backplane::new(&url, config("drop")).expect("backplane");
    let mut conn = admin(&url).await;
    for round in 1..=5u64 {
        let publisher = backplane.publisher();
        publisher
            .publish(publication(&t, &[("k0", (round * 2 - 1) as i64)]))
            .expect("publish");
        // Connected and idle...
        let d = Deadline::after(secs(10), "the first publication");
        while redis_seq(&mut conn, &t).await != Some(round * 2 - 1) {
            d.tick(|| format!("{:?}", backplane.stats())).await;
        }
        // ...then one more, and the handle goes.
        publisher
            .publish(publication(&t, &[("k0", (round * 2) as i64)]))
            .expect("publish");
        drop(publisher);
        let d = Deadline::after(secs(5), "the publication queued before the drop");
        while redis_seq(&mut conn, &t).await != Some(round * 2) {
            d.tick(|| format!("round {round}: {:?}", backplane.stats()))
                .await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// 12. Stale values after a reconnection that failed half-way
// ---------------------------------------------------------------------------------------

/// The `ACL LOG` entries of commands refused to the default user.
async fn acl_denials(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> usize {
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(conn)
        .await
        .expect("ACL LOG");
    log.iter()
        .filter(|entry| format!("{entry:?}").contains(command))
        .count()
}

/// A network outage long enough to mark the values stale; when Redis (its data intact)
/// is reachable again, the first session fails before it took its fresh snapshot (here:
/// `EVALSHA` refused by an ACL for a while). The values must not stay marked stale: a
/// later session must still resynchronise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_values_are_refreshed_even_when_the_first_session_back_fails() {
    let redis = RedisServer::start();
    let url = redis.url();
    let proxy = Proxy::start(redis.port()).await;
    let t = topic("flap");
    let node = Node::start_with(&proxy.url(), config("flap-mirror"), Some(stale_marker()));
    let source = Backplane::new(&url, config("flap-publisher")).expect("backplane");
    let publisher = source.publisher();
    let mut rec = Recorder::subscribe("subscriber", &node.hub, &t);
    rec.wait_snapshot(secs(10)).await;
    let mut published = Published::default();
    for keys in [&["k0"][..], &["k1", "k2"]] {
        publisher
            .publish(published.next(&t, keys))
            .expect("publish");
    }
    let seq = settle(&mut rec, &url, &t, &published).await;

    // The network goes away: the values are marked stale.
    proxy.refuse(true);
    proxy.cut();
    rec.wait_for(secs(10), "a snapshot of stale-marked values", |r| {
        r.snapshots
            .last()
            .is_some_and(|s| s.frames > 0 && s.stale_frames == s.frames)
    })
    .await;

    // It comes back, but the snapshot script is refused for a while.
    let mut conn = admin(&url).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-evalsha")
        .query_async(&mut conn)
        .await
        .expect("ACL SETUSER");
    proxy.refuse(false);
    let d = Deadline::after(secs(10), "the mirror's snapshot to be refused");
    while acl_denials(&mut conn, "evalsha").await == 0 {
        d.tick(|| format!("{:?}", node.backplane.stats())).await;
    }
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("+evalsha")
        .query_async(&mut conn)
        .await
        .expect("ACL SETUSER");

    rec.wait_for(secs(10), "a fresh snapshot", |r| {
        r.snapshots.last().is_some_and(|s| s.stale_frames == 0)
    })
    .await;
    rec.wait_state(secs(10), seq, &published.newest).await;
    wait_stats(&node.backplane, "up", |s| s.up).await;
    publisher
        .publish(published.next(&t, &["k3"]))
        .expect("publish");
    rec.wait_state(secs(10), seq + 1, &published.newest).await;
}
