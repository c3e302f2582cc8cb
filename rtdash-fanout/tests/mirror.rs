//! Mirrored hubs (`Hub::mirrored`): topics whose sequence numbers and last values come
//! from a source elsewhere. The observer is told when a topic is first wanted and when
//! its last subscriber left; a wanted topic is pending until `reset`; `publish_at` only
//! delivers the next sequence number; `reset` and `map_cached` send every subscriber a
//! fresh snapshot that replaces its backlog; and a lossy mirror that catches up or
//! resynchronises keeps every subscriber at the source's state.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use common::{TestHub, TestSub, View, drain, msg};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use rtdash_fanout::{
    Cached, Event, EvictReason, Hub, HubConfig, Interest, MirrorOutcome, SlowConsumerPolicy,
    Snapshot, Stamped, TryRecvError,
};

/// What the observer was told, in order.
type Seen = Arc<Mutex<Vec<(u32, Interest)>>>;

fn mirrored() -> (TestHub, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let hub = Hub::mirrored(HubConfig::default(), move |topic: &u32, interest| {
        record.lock().unwrap().push((*topic, interest));
    });
    (hub, seen)
}

/// What the observer was told since the last call.
fn take(seen: &Seen) -> Vec<(u32, Interest)> {
    std::mem::take(&mut *seen.lock().unwrap())
}

fn cached(keys: &[u32], seq: u64, text: &str) -> Cached<u32, Arc<str>> {
    Cached {
        keys: keys.to_vec(),
        stamped: stamped(seq, text),
    }
}

fn stamped(seq: u64, text: &str) -> Stamped<Arc<str>> {
    Stamped {
        seq,
        msg: msg(text),
    }
}

fn snapshot(topic: u32, seq: u64, messages: Vec<Stamped<Arc<str>>>) -> Event<u32, Arc<str>> {
    Event::Snapshot {
        topic,
        seq,
        messages,
    }
}

fn message(topic: u32, seq: u64, text: &str) -> Event<u32, Arc<str>> {
    Event::Message {
        topic,
        seq,
        msg: msg(text),
    }
}

fn policies(max_messages: usize) -> [SlowConsumerPolicy; 3] {
    [
        SlowConsumerPolicy::conflate(max_messages).unwrap(),
        SlowConsumerPolicy::drop_oldest(max_messages, usize::MAX).unwrap(),
        SlowConsumerPolicy::disconnect(max_messages, usize::MAX).unwrap(),
    ]
}

// ---------------------------------------------------------------------------------------
// 1. The observer.
// ---------------------------------------------------------------------------------------

#[test]
fn first_subscriber_wants_the_topic_and_later_ones_change_nothing() {
    let (hub, seen) = mirrored();
    assert!(hub.is_mirrored());
    assert!(!Hub::<u32, u32, Arc<str>>::new(HubConfig::default()).is_mirrored());
    assert!(hub.topics().is_empty());

    let a = hub.subscribe(SlowConsumerPolicy::default());
    a.subscribe(1).unwrap();
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
    assert_eq!(hub.topics(), [1]);
    assert!(hub.is_pending(&1));

    let b = hub.subscribe(SlowConsumerPolicy::drop_oldest(8, usize::MAX).unwrap());
    b.subscribe(1).unwrap();
    a.subscribe(1).unwrap(); // already held by `a`: nothing at all
    assert_eq!(take(&seen), []);
    assert_eq!(hub.subscriber_count(&1), 2);

    // Once served, a newcomer is no news either.
    assert!(hub.reset(&1, 3, Vec::new()));
    let c = hub.subscribe(SlowConsumerPolicy::default());
    c.subscribe(1).unwrap();
    assert_eq!(take(&seen), []);
    assert_eq!(hub.subscriber_count(&1), 3);

    // Every other topic is wanted on its own.
    b.subscribe(2).unwrap();
    assert_eq!(take(&seen), [(2, Interest::Wanted)]);
    let mut topics = hub.topics();
    topics.sort_unstable();
    assert_eq!(topics, [1, 2]);
}

#[test]
fn last_unsubscribe_drops_the_topic_once() {
    let (hub, seen) = mirrored();
    let a = hub.subscribe(SlowConsumerPolicy::default());
    let b = hub.subscribe(SlowConsumerPolicy::default());
    a.subscribe(1).unwrap();
    b.subscribe(1).unwrap();
    a.subscribe(2).unwrap(); // stays pending
    assert_eq!(take(&seen), [(1, Interest::Wanted), (2, Interest::Wanted)]);
    assert!(hub.reset(&1, 5, vec![cached(&[1], 5, "k1=5")]));

    assert!(a.unsubscribe(&1));
    assert_eq!(take(&seen), [], "b still holds topic 1");
    assert_eq!(hub.seq(&1), Some(5));

    assert!(b.unsubscribe(&1));
    assert_eq!(take(&seen), [(1, Interest::Dropped)]);
    assert_eq!(hub.topics(), [2]);
    assert_eq!(hub.seq(&1), None);
    assert!(!hub.is_pending(&1));
    assert_eq!(hub.topic_stats(&1), None);
    assert_eq!(hub.subscriber_count(&1), 0);

    // Leaving again is not news.
    assert!(!b.unsubscribe(&1));
    assert_eq!(take(&seen), []);

    // A pending topic is dropped the same way (the mirror may still be fetching it).
    assert!(a.unsubscribe(&2));
    assert_eq!(take(&seen), [(2, Interest::Dropped)]);
    assert!(hub.topics().is_empty());
    assert_eq!(hub.stats().topics, 0);
}

#[test]
fn dropping_the_last_subscription_drops_its_topics_once() {
    let (hub, seen) = mirrored();
    let a = hub.subscribe(SlowConsumerPolicy::default());
    let b = hub.subscribe(SlowConsumerPolicy::default());
    a.subscribe(1).unwrap();
    a.subscribe(2).unwrap();
    b.subscribe(2).unwrap();
    assert_eq!(take(&seen), [(1, Interest::Wanted), (2, Interest::Wanted)]);
    assert!(hub.reset(&1, 1, Vec::new()));
    assert_eq!(
        hub.publish_at(&1, [1], 2, msg("k1=2")),
        MirrorOutcome::Published
    );

    drop(a);
    assert_eq!(take(&seen), [(1, Interest::Dropped)]);
    assert_eq!(hub.topics(), [2]);
    assert_eq!(hub.subscriber_count(&2), 1);

    drop(b);
    assert_eq!(take(&seen), [(2, Interest::Dropped)]);
    assert!(hub.topics().is_empty());
    assert_eq!(hub.stats().subscribers, 0);
}

#[test]
fn evicting_the_last_subscriber_drops_the_topic_once() {
    let (hub, seen) = mirrored();
    // Evicted by a publish: snapshot + one message fill a queue of two.
    let slow = hub.subscribe(SlowConsumerPolicy::disconnect(2, usize::MAX).unwrap());
    slow.subscribe(1).unwrap();
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
    assert!(hub.reset(&1, 0, Vec::new()));
    assert_eq!(
        hub.publish_at(&1, [1], 1, msg("k1=1")),
        MirrorOutcome::Published
    );
    assert_eq!(take(&seen), []);
    assert_eq!(
        hub.publish_at(&1, [1], 2, msg("k1=2")),
        MirrorOutcome::Published
    );
    assert!(slow.is_evicted());
    assert_eq!(take(&seen), [(1, Interest::Dropped)]);
    assert!(hub.topics().is_empty());
    assert_eq!(
        drain(&slow),
        [Event::Evicted {
            reason: EvictReason::MessageLimit { limit: 2 }
        }]
    );
    assert_eq!(hub.stats().evicted, 1);
    // Nothing more about the topic once the hub forgot it.
    assert_eq!(
        hub.publish_at(&1, [1], 3, msg("k1=3")),
        MirrorOutcome::NotHeld
    );
    assert_eq!(take(&seen), []);

    // Evicted by a reset: the second snapshot does not fit in a queue of one; both of
    // the subscriber's topics are dropped.
    let tiny = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    tiny.subscribe(3).unwrap();
    tiny.subscribe(4).unwrap();
    assert_eq!(take(&seen), [(3, Interest::Wanted), (4, Interest::Wanted)]);
    assert!(hub.reset(&3, 1, vec![cached(&[1], 1, "k1=1")]));
    assert_eq!(take(&seen), []);
    assert!(hub.reset(&4, 1, vec![cached(&[1], 1, "k1=1")]));
    assert!(tiny.is_evicted());
    let mut dropped = take(&seen);
    dropped.sort_unstable_by_key(|(t, _)| *t);
    assert_eq!(dropped, [(3, Interest::Dropped), (4, Interest::Dropped)]);
    assert!(hub.topics().is_empty());

    // A subscriber that is not the last one goes without news.
    let stays = hub.subscribe(SlowConsumerPolicy::default());
    let slow = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    stays.subscribe(5).unwrap();
    slow.subscribe(5).unwrap();
    assert_eq!(take(&seen), [(5, Interest::Wanted)]);
    assert!(hub.reset(&5, 0, Vec::new()));
    hub.publish_at(&5, [1], 1, msg("k1=1"));
    assert!(slow.is_evicted());
    assert_eq!(take(&seen), []);
    assert_eq!(hub.topics(), [5]);
}

#[test]
fn a_topic_wanted_again_after_it_was_dropped_is_pending_again() {
    let (hub, seen) = mirrored();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert!(hub.reset(&1, 7, vec![cached(&[1], 6, "k1=6")]));
    assert_eq!(drain(&sub).len(), 1);
    assert!(sub.unsubscribe(&1));
    assert_eq!(take(&seen), [(1, Interest::Wanted), (1, Interest::Dropped)]);

    // The same subscription comes back.
    sub.subscribe(1).unwrap();
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
    assert!(hub.is_pending(&1));
    // The old state is forgotten: the source gives the new one.
    assert_eq!(hub.seq(&1), Some(0));
    assert_eq!(
        hub.snapshot(&1),
        Snapshot {
            seq: 0,
            messages: Vec::new()
        }
    );
    assert_eq!(
        hub.publish_at(&1, [1], 8, msg("k1=8")),
        MirrorOutcome::Pending
    );
    assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
    assert!(hub.reset(&1, 9, vec![cached(&[1], 8, "k1=8")]));
    assert_eq!(drain(&sub), [snapshot(1, 9, vec![stamped(8, "k1=8")])]);

    // And after a drop of the subscription, and an eviction, a new one is wanted again.
    drop(sub);
    assert_eq!(take(&seen), [(1, Interest::Dropped)]);
    let evicted = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    evicted.subscribe(1).unwrap();
    assert!(hub.reset(&1, 9, Vec::new()));
    hub.publish_at(&1, [1], 10, msg("k1=10"));
    assert!(evicted.is_evicted());
    assert_eq!(take(&seen), [(1, Interest::Wanted), (1, Interest::Dropped)]);
    let again = hub.subscribe(SlowConsumerPolicy::default());
    again.subscribe(1).unwrap();
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
    assert!(hub.is_pending(&1));
    assert_eq!(hub.topics(), [1]);
}

/// Regression: the observer was told `Dropped` after the hub had released the map's
/// lock, so a subscriber re-creating the topic in between could be reported `Wanted`
/// before the old topic's `Dropped`: the mirror then saw the topic as dropped while the
/// hub held it, pending, and its subscribers waited for a snapshot forever.
#[test]
fn interest_alternates_per_topic_under_concurrent_joins_and_leaves() {
    const THREADS: usize = 2;
    const ROUNDS: usize = 50_000;
    /// Per topic: whether the observer was last told `Wanted`; and the violations seen.
    type Told = (BTreeMap<u32, bool>, Vec<String>);
    let wanted: Arc<Mutex<Told>> = Arc::default();
    let record = Arc::clone(&wanted);
    let hub: TestHub = Hub::mirrored(HubConfig::default(), move |topic: &u32, interest| {
        let mut guard = record.lock().unwrap();
        let (state, violations) = &mut *guard;
        let was = state.insert(*topic, interest == Interest::Wanted);
        if was == Some(interest == Interest::Wanted)
            || (was.is_none() && interest != Interest::Wanted)
        {
            violations.push(format!("{interest:?} for {topic} after {was:?}"));
        }
    });
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let hub = hub.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let sub = hub.subscribe(SlowConsumerPolicy::default());
                start.wait();
                for round in 0..ROUNDS {
                    sub.subscribe(0).unwrap();
                    // Sometimes served: the topic's state makes no difference to its lifetime.
                    if round % 3 == 0 {
                        hub.reset(&0, round as u64, Vec::new());
                    }
                    assert!(sub.unsubscribe(&0));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let (state, violations) = &*wanted.lock().unwrap();
    assert_eq!(violations, &Vec::<String>::new());
    assert!(hub.topics().is_empty());
    assert_eq!(
        state.get(&0),
        Some(&false),
        "last told: wanted, yet not held"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Pending topics.
// ---------------------------------------------------------------------------------------

#[test]
fn a_pending_topic_delivers_nothing_until_its_first_reset() {
    let (hub, seen) = mirrored();
    let subs: Vec<TestSub> = policies(16).iter().map(|p| hub.subscribe(*p)).collect();
    for s in &subs {
        s.subscribe(5).unwrap();
    }
    assert_eq!(take(&seen), [(5, Interest::Wanted)]);
    assert!(hub.is_pending(&5));
    assert_eq!(hub.seq(&5), Some(0));
    for s in &subs {
        assert_eq!(s.try_recv(), Err(TryRecvError::Empty));
    }

    // Whatever the source sends before the snapshot is refused, and changes nothing.
    for seq in [0, 1, 2, 40] {
        assert_eq!(
            hub.publish_at(&5, [1], seq, msg("k1=x")),
            MirrorOutcome::Pending
        );
    }
    assert!(hub.is_pending(&5));
    assert_eq!(hub.seq(&5), Some(0));
    assert_eq!(hub.snapshot(&5).messages, []);
    assert_eq!(hub.stats().published, 0);
    for s in &subs {
        assert_eq!(s.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(s.stats().queue_len, 0);
    }

    // The source's state at seq 12, in no particular order: key 1 was written at 4 and
    // again at 9, keys 2 and 3 together at 7, key 4 at 11; key 5 at 15 is past the
    // snapshot and must not show.
    let state = vec![
        cached(&[5], 15, "k5=15"),
        cached(&[4], 11, "k4=11"),
        cached(&[1], 4, "k1=4"),
        cached(&[2, 3], 7, "k2=7,k3=7"),
        cached(&[1], 9, "k1=9"),
    ];
    assert!(hub.reset(&5, 12, state));
    let expected = vec![
        stamped(7, "k2=7,k3=7"),
        stamped(9, "k1=9"),
        stamped(11, "k4=11"),
    ];
    for s in &subs {
        assert_eq!(drain(s), [snapshot(5, 12, expected.clone())]);
    }
    assert!(!hub.is_pending(&5));
    assert_eq!(hub.seq(&5), Some(12));
    assert_eq!(
        hub.snapshot(&5),
        Snapshot {
            seq: 12,
            messages: expected.clone()
        }
    );
    let stats = hub.topic_stats(&5).unwrap();
    assert_eq!((stats.keys, stats.cached_messages), (4, 3));
    assert_eq!(take(&seen), []);

    // A subscriber joining a served topic gets its snapshot at once.
    let late = hub.subscribe(SlowConsumerPolicy::default());
    late.subscribe(5).unwrap();
    assert_eq!(drain(&late), [snapshot(5, 12, expected)]);
    assert_eq!(take(&seen), []);

    // Live messages follow the snapshot for everyone.
    assert_eq!(
        hub.publish_at(&5, [5], 13, msg("k5=13")),
        MirrorOutcome::Published
    );
    for s in subs.iter().chain([&late]) {
        assert_eq!(drain(s), [message(5, 13, "k5=13")]);
    }
}

#[test]
fn an_empty_first_reset_still_serves_the_waiting_subscribers() {
    let (hub, _seen) = mirrored();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert!(hub.reset(&1, 0, Vec::new()));
    assert_eq!(drain(&sub), [snapshot(1, 0, Vec::new())]);
    assert!(!hub.is_pending(&1));
    assert_eq!(
        hub.publish_at(&1, [], 1, msg("keyless")),
        MirrorOutcome::Published
    );
    assert_eq!(drain(&sub), [message(1, 1, "keyless")]);
    // Not cached.
    assert_eq!(hub.snapshot(&1).messages, []);
}

#[test]
fn an_unheld_topic_is_refused_and_never_created() {
    let (hub, seen) = mirrored();
    let calls = AtomicUsize::new(0);
    assert_eq!(
        hub.publish_at(&9, [1], 1, msg("k1=1")),
        MirrorOutcome::NotHeld
    );
    assert!(!hub.reset(&9, 1, vec![cached(&[1], 1, "k1=1")]));
    assert!(!hub.map_cached(&9, |m| {
        calls.fetch_add(1, Ordering::Relaxed);
        m.clone()
    }));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert!(hub.topics().is_empty());
    assert_eq!(hub.stats().topics, 0);
    assert_eq!(hub.seq(&9), None);
    assert!(!hub.is_pending(&9));
    assert_eq!(hub.topic_stats(&9), None);
    assert_eq!(take(&seen), [], "the observer hears of subscribers only");

    // A held topic does not make another one held.
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert!(hub.reset(&1, 0, Vec::new()));
    assert_eq!(
        hub.publish_at(&9, [1], 1, msg("k1=1")),
        MirrorOutcome::NotHeld
    );
    assert_eq!(hub.topics(), [1]);
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
}

// ---------------------------------------------------------------------------------------
// 3. publish_at.
// ---------------------------------------------------------------------------------------

#[test]
fn publish_at_delivers_only_the_next_seq() {
    let (hub, _seen) = mirrored();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert!(hub.reset(&1, 5, vec![cached(&[1], 5, "k1=5")]));
    assert_eq!(drain(&sub), [snapshot(1, 5, vec![stamped(5, "k1=5")])]);

    // At or below the topic's seq: duplicates.
    for seq in [5, 4, 1, 0] {
        assert_eq!(
            hub.publish_at(&1, [1], seq, msg("dup")),
            MirrorOutcome::Duplicate,
            "seq {seq}"
        );
    }
    // Past the next one: a gap, whatever the distance.
    for seq in [7, 8, 1_000, u64::MAX] {
        assert_eq!(
            hub.publish_at(&1, [1], seq, msg("gap")),
            MirrorOutcome::Gap { expected: 6 },
            "seq {seq}"
        );
    }
    // Neither delivered, cached nor counted anything.
    assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(hub.seq(&1), Some(5));
    assert_eq!(
        hub.snapshot(&1),
        Snapshot {
            seq: 5,
            messages: vec![stamped(5, "k1=5")]
        }
    );
    assert_eq!(hub.stats().published, 0);
    assert_eq!(hub.stats().delivered, 0);

    // The next one is published (a message with two keys), and only once.
    assert_eq!(
        hub.publish_at(&1, [1, 2], 6, msg("k1=6,k2=6")),
        MirrorOutcome::Published
    );
    assert_eq!(
        hub.publish_at(&1, [1, 2], 6, msg("k1=6,k2=6")),
        MirrorOutcome::Duplicate
    );
    assert_eq!(
        hub.publish_at(&1, [2], 8, msg("k2=8")),
        MirrorOutcome::Gap { expected: 7 }
    );
    assert_eq!(
        hub.publish_at(&1, [2], 7, msg("k2=7")),
        MirrorOutcome::Published
    );
    assert_eq!(
        hub.publish_at(&1, [2], 8, msg("k2=8")),
        MirrorOutcome::Published
    );
    assert_eq!(
        drain(&sub),
        [
            message(1, 6, "k1=6,k2=6"),
            message(1, 7, "k2=7"),
            message(1, 8, "k2=8"),
        ]
    );
    assert_eq!(hub.seq(&1), Some(8));
    assert_eq!(
        hub.snapshot(&1).messages,
        [stamped(6, "k1=6,k2=6"), stamped(8, "k2=8")]
    );
    assert_eq!(hub.stats().published, 3);
}

#[test]
fn publish_at_outcomes_are_per_topic() {
    let (hub, _seen) = mirrored();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    assert!(hub.reset(&1, 10, Vec::new()));
    assert!(hub.reset(&2, 0, Vec::new()));
    drain(&sub);
    assert_eq!(
        hub.publish_at(&2, [1], 11, msg("b")),
        MirrorOutcome::Gap { expected: 1 }
    );
    assert_eq!(
        hub.publish_at(&1, [1], 1, msg("a")),
        MirrorOutcome::Duplicate
    );
    assert_eq!(
        hub.publish_at(&2, [1], 1, msg("b")),
        MirrorOutcome::Published
    );
    assert_eq!(
        hub.publish_at(&1, [1], 11, msg("a")),
        MirrorOutcome::Published
    );
    assert_eq!(drain(&sub), [message(2, 1, "b"), message(1, 11, "a")]);
}

// ---------------------------------------------------------------------------------------
// 4. reset on a served topic.
// ---------------------------------------------------------------------------------------

#[test]
fn reset_replaces_the_queued_backlog_under_every_policy() {
    for policy in policies(64) {
        let (hub, _seen) = mirrored();
        let sub = hub.subscribe(policy);
        sub.subscribe(1).unwrap();
        sub.subscribe(2).unwrap();
        assert!(hub.reset(&1, 2, vec![cached(&[1], 2, "k1=2")]));
        assert!(hub.reset(&2, 0, Vec::new()));
        assert_eq!(drain(&sub).len(), 2, "{policy:?}");

        // A backlog on topic 1, with a message of topic 2 in the middle of it.
        for (topic, keys, seq, text) in [
            (1, vec![1], 3, "k1=3"),
            (2, vec![9], 1, "other"),
            (1, vec![2], 4, "k2=4"),
            (1, vec![1, 3], 5, "k1=5,k3=5"),
        ] {
            assert_eq!(
                hub.publish_at(&topic, keys, seq, msg(text)),
                MirrorOutcome::Published
            );
        }
        assert_eq!(sub.stats().queue_len, 4, "{policy:?}");

        // The source's state at 9: key 3 past it is ignored.
        let state = vec![
            cached(&[3], 10, "k3=10"),
            cached(&[1], 8, "k1=8"),
            cached(&[2], 4, "k2=4"),
        ];
        assert!(hub.reset(&1, 9, state));
        assert_eq!(sub.stats().queue_len, 2, "{policy:?}");
        assert_eq!(
            drain(&sub),
            [
                message(2, 1, "other"),
                snapshot(1, 9, vec![stamped(4, "k2=4"), stamped(8, "k1=8")]),
            ],
            "{policy:?}"
        );
        assert!(!sub.is_evicted());
        assert_eq!(sub.stats().dropped, 0);
        assert_eq!(hub.seq(&1), Some(9));
        assert_eq!(hub.topic_stats(&1).unwrap().keys, 2, "key 3 was not cached");

        // Live messages continue after the reset's seq.
        assert_eq!(
            hub.publish_at(&1, [3], 10, msg("k3=10")),
            MirrorOutcome::Published
        );
        assert_eq!(drain(&sub), [message(1, 10, "k3=10")], "{policy:?}");

        // The seq never goes back: a stale reset changes nothing.
        hub.publish_at(&1, [1], 11, msg("k1=11"));
        let before = hub.snapshot(&1);
        assert!(!hub.reset(&1, 4, vec![cached(&[1], 4, "k1=4")]));
        assert_eq!(hub.seq(&1), Some(11));
        assert_eq!(hub.snapshot(&1), before);
        assert_eq!(drain(&sub), [message(1, 11, "k1=11")], "{policy:?}");
        assert_eq!(
            hub.publish_at(&1, [1], 12, msg("k1=12")),
            MirrorOutcome::Published
        );

        // The same seq is accepted (the source's snapshot of the current state).
        assert!(hub.reset(&1, 12, vec![cached(&[1], 12, "k1=12")]));
        assert_eq!(
            drain(&sub),
            [snapshot(1, 12, vec![stamped(12, "k1=12")])],
            "{policy:?}"
        );
    }
}

#[test]
fn reset_of_a_queue_at_its_bound_replaces_instead_of_overflowing() {
    for policy in policies(3) {
        let (hub, _seen) = mirrored();
        let sub = hub.subscribe(policy);
        sub.subscribe(1).unwrap();
        assert!(hub.reset(&1, 0, Vec::new()));
        assert_eq!(drain(&sub).len(), 1);
        // Three distinct keys: the queue is exactly at its bound, nothing conflated,
        // dropped or evicted yet.
        for seq in 1..=3 {
            let text = format!("k{seq}={seq}");
            assert_eq!(
                hub.publish_at(&1, [seq as u32], seq, msg(&text)),
                MirrorOutcome::Published
            );
        }
        let stats = sub.stats();
        assert_eq!(
            (stats.queue_len, stats.dropped, stats.conflated),
            (3, 0, 0),
            "{policy:?}"
        );

        assert!(hub.reset(&1, 20, vec![cached(&[7], 20, "k7=20")]));
        assert!(!sub.is_evicted(), "{policy:?}");
        assert_eq!(sub.stats().dropped, 0, "{policy:?}");
        assert_eq!(
            drain(&sub),
            [snapshot(1, 20, vec![stamped(20, "k7=20")])],
            "{policy:?}"
        );
    }
}

#[test]
fn reset_ignores_cached_messages_past_its_seq() {
    let (hub, _seen) = mirrored();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    let state = vec![
        cached(&[2], 6, "k2=6"),
        cached(&[1], 3, "k1=3"),
        cached(&[1], 5, "k1=5"), // key 1 again, past the snapshot: the value at 3 stays
    ];
    assert!(hub.reset(&1, 4, state));
    assert_eq!(drain(&sub), [snapshot(1, 4, vec![stamped(3, "k1=3")])]);
    let stats = hub.topic_stats(&1).unwrap();
    assert_eq!((stats.seq, stats.keys, stats.cached_messages), (4, 1, 1));
    // The source's 5 is the topic's next message, not a duplicate.
    assert_eq!(
        hub.publish_at(&1, [1], 5, msg("k1=5")),
        MirrorOutcome::Published
    );
    assert_eq!(drain(&sub), [message(1, 5, "k1=5")]);
}

// ---------------------------------------------------------------------------------------
// 5. map_cached.
// ---------------------------------------------------------------------------------------

#[test]
fn map_cached_sends_every_subscriber_the_mapped_snapshot() {
    let (hub, _seen) = mirrored();
    let subs: Vec<TestSub> = policies(16).iter().map(|p| hub.subscribe(*p)).collect();
    for s in &subs {
        s.subscribe(1).unwrap();
    }
    let state = vec![cached(&[1, 2], 2, "k1=2,k2=2"), cached(&[3], 4, "k3=4")];
    assert!(hub.reset(&1, 4, state));
    for s in &subs {
        assert_eq!(drain(s).len(), 1);
    }
    // A backlog for the first subscriber only (the others read it).
    assert_eq!(
        hub.publish_at(&1, [3], 5, msg("k3=5")),
        MirrorOutcome::Published
    );
    for s in &subs[1..] {
        assert_eq!(drain(s), [message(1, 5, "k3=5")]);
    }

    let calls = AtomicUsize::new(0);
    assert!(hub.map_cached(&1, |m| {
        calls.fetch_add(1, Ordering::Relaxed);
        msg(format!("{m};stale"))
    }));
    // Once per cached message: the two-key message is one.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    let mapped = vec![stamped(2, "k1=2,k2=2;stale"), stamped(5, "k3=5;stale")];
    for s in &subs {
        assert_eq!(drain(s), [snapshot(1, 5, mapped.clone())]);
    }
    assert_eq!(hub.seq(&1), Some(5));
    assert_eq!(
        hub.snapshot(&1),
        Snapshot {
            seq: 5,
            messages: mapped
        }
    );

    // The stream goes on from the same seq.
    assert_eq!(
        hub.publish_at(&1, [1], 6, msg("k1=6")),
        MirrorOutcome::Published
    );
    for s in &subs {
        assert_eq!(drain(s), [message(1, 6, "k1=6")]);
    }
    assert_eq!(
        hub.snapshot(&1).messages,
        [
            stamped(2, "k1=2,k2=2;stale"),
            stamped(5, "k3=5;stale"),
            stamped(6, "k1=6")
        ]
    );
}

#[test]
fn map_cached_refuses_pending_and_unheld_topics() {
    let (hub, seen) = mirrored();
    let calls = AtomicUsize::new(0);
    let mut mark = |m: &Arc<str>| {
        calls.fetch_add(1, Ordering::Relaxed);
        msg(format!("{m};stale"))
    };
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert!(hub.is_pending(&1));
    assert!(!hub.map_cached(&1, &mut mark));
    assert!(hub.is_pending(&1), "still waiting for the source");
    assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));

    assert!(!hub.map_cached(&2, &mut mark));
    assert_eq!(hub.topics(), [1]);
    assert_eq!(take(&seen), [(1, Interest::Wanted)]);
    assert_eq!(calls.load(Ordering::Relaxed), 0);

    // Served with nothing cached: still a fresh (empty) snapshot.
    assert!(hub.reset(&1, 3, Vec::new()));
    drain(&sub);
    assert!(hub.map_cached(&1, &mut mark));
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert_eq!(drain(&sub), [snapshot(1, 3, Vec::new())]);
}

// ---------------------------------------------------------------------------------------
// 6. A lossy mirror against the source.
// ---------------------------------------------------------------------------------------

const TOPIC: u32 = 7;

/// The source: a log of every message (`seq` = index + 1) and the state after each.
#[derive(Debug)]
struct Source {
    log: Vec<(Vec<u32>, Arc<str>)>,
    /// `states[s]`: key -> seq of its newest message, after message `s`.
    states: Vec<BTreeMap<u32, u64>>,
    /// How many of the newest messages it can still send again.
    log_bound: u64,
}

impl Source {
    fn new(log_bound: u64) -> Self {
        Self {
            log: Vec::new(),
            states: vec![BTreeMap::new()],
            log_bound,
        }
    }

    fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    fn publish(&mut self, keys: &BTreeSet<u8>) -> u64 {
        let seq = self.seq() + 1;
        let keys: Vec<u32> = keys.iter().map(|k| u32::from(*k)).collect();
        let text = if keys.is_empty() {
            format!("keyless {seq}")
        } else {
            let parts: Vec<String> = keys.iter().map(|k| format!("k{k}={seq}")).collect();
            parts.join(",")
        };
        let mut state = self.states[self.states.len() - 1].clone();
        for k in &keys {
            state.insert(*k, seq);
        }
        self.log.push((keys, msg(text)));
        self.states.push(state);
        seq
    }

    fn message(&self, seq: u64) -> (Vec<u32>, Arc<str>) {
        self.log[seq as usize - 1].clone()
    }

    /// Whether the source can still send message `seq` again.
    fn in_log(&self, seq: u64) -> bool {
        seq + self.log_bound > self.seq()
    }

    /// Its current state, as `reset` takes it: each newest message once, with the keys
    /// it is the newest value of (newest first: `reset` takes any order).
    fn cached(&self) -> Vec<Cached<u32, Arc<str>>> {
        let mut by_seq: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (k, s) in &self.states[self.states.len() - 1] {
            by_seq.entry(*s).or_default().push(*k);
        }
        by_seq
            .into_iter()
            .rev()
            .map(|(seq, keys)| Cached {
                keys,
                stamped: Stamped {
                    seq,
                    msg: self.message(seq).1,
                },
            })
            .collect()
    }

    /// What a client holds at `seq` (see `View::apply_text`).
    fn view(&self, seq: u64) -> View {
        View {
            seq,
            values: self.states[seq as usize]
                .iter()
                .map(|(k, s)| (format!("k{k}"), s.to_string()))
                .collect(),
        }
    }
}

/// One local subscriber and what it reconstructed.
#[derive(Debug)]
struct Client {
    sub: TestSub,
    /// Lossless bounds: every message arrives, so the state after each event is the
    /// source's at that seq and seqs after a snapshot are contiguous. Otherwise
    /// (`Conflate` with a small bound) superseded messages may be skipped.
    exact: bool,
    /// `None` until the first snapshot.
    view: Option<View>,
    /// The last event read was a snapshot.
    after_snapshot: bool,
}

/// The mirror's idea of the topic, from the observer and the outcomes.
#[derive(Debug, Default)]
struct Mirror {
    held: bool,
    /// Wanted, not reset yet.
    pending: bool,
    /// The topic's seq in the hub.
    seq: u64,
}

#[derive(Debug)]
struct Sim {
    hub: TestHub,
    seen: Seen,
    source: Source,
    mirror: Mirror,
    clients: Vec<Client>,
}

type Check = Result<(), TestCaseError>;

impl Sim {
    /// Reads what the observer said and checks the hub agrees.
    fn observe(&mut self) -> Check {
        for (topic, interest) in take(&self.seen) {
            prop_assert_eq!(topic, TOPIC);
            match interest {
                Interest::Wanted => {
                    prop_assert!(!self.mirror.held, "wanted twice");
                    self.mirror = Mirror {
                        held: true,
                        pending: true,
                        seq: 0,
                    };
                }
                Interest::Dropped => {
                    prop_assert!(self.mirror.held, "dropped while not held");
                    self.mirror = Mirror::default();
                }
                other => prop_assert!(false, "unknown interest {:?}", other),
            }
        }
        let m = &self.mirror;
        let subscribed = self.clients.iter().any(|c| c.sub.is_subscribed(&TOPIC));
        prop_assert_eq!(m.held, subscribed);
        prop_assert_eq!(self.hub.topics(), if m.held { vec![TOPIC] } else { vec![] });
        prop_assert_eq!(self.hub.is_pending(&TOPIC), m.pending);
        prop_assert_eq!(self.hub.seq(&TOPIC), m.held.then_some(m.seq));
        Ok(())
    }

    /// The mirror read the source's snapshot: `reset` to it.
    fn reset(&mut self) -> Check {
        let done = self
            .hub
            .reset(&TOPIC, self.source.seq(), self.source.cached());
        prop_assert_eq!(done, self.mirror.held);
        if done {
            self.mirror.pending = false;
            self.mirror.seq = self.source.seq();
        }
        Ok(())
    }

    /// Gives the hub message `seq` of the source.
    fn feed(&mut self, seq: u64) -> Result<MirrorOutcome, TestCaseError> {
        let (keys, text) = self.source.message(seq);
        let got = self.hub.publish_at(&TOPIC, keys, seq, text);
        let m = &mut self.mirror;
        let want = if !m.held {
            MirrorOutcome::NotHeld
        } else if m.pending {
            MirrorOutcome::Pending
        } else if seq <= m.seq {
            MirrorOutcome::Duplicate
        } else if seq == m.seq + 1 {
            MirrorOutcome::Published
        } else {
            MirrorOutcome::Gap {
                expected: m.seq + 1,
            }
        };
        prop_assert_eq!(got, want, "seq {}", seq);
        if got == MirrorOutcome::Published {
            m.seq = seq;
        }
        Ok(got)
    }

    /// Feeds message `seq`; on a gap, catches up from the source's log, or resets.
    fn deliver(&mut self, seq: u64) -> Check {
        if let MirrorOutcome::Gap { expected } = self.feed(seq)? {
            self.recover(expected)?;
        }
        Ok(())
    }

    /// The hub misses `from..=source.seq()`.
    fn recover(&mut self, from: u64) -> Check {
        let to = self.source.seq();
        if (from..=to).all(|s| self.source.in_log(s)) {
            for s in from..=to {
                prop_assert_eq!(self.feed(s)?, MirrorOutcome::Published);
            }
            Ok(())
        } else {
            self.reset()
        }
    }

    /// Client `i` reads up to `max` events, checking each.
    fn read(&mut self, i: usize, max: usize) -> Check {
        let client = &mut self.clients[i];
        for _ in 0..max {
            let ev = match client.sub.try_recv() {
                Ok(ev) => ev,
                Err(e) => {
                    prop_assert_eq!(e, TryRecvError::Empty);
                    // All read: the client is where the hub is.
                    if client.sub.is_subscribed(&TOPIC) && !self.mirror.pending {
                        let Some(view) = &client.view else {
                            return Err(TestCaseError::fail("served, but no snapshot"));
                        };
                        prop_assert_eq!(view, &self.source.view(self.mirror.seq));
                    }
                    return Ok(());
                }
            };
            prop_assert!(!self.mirror.pending, "an event while pending: {:?}", ev);
            match ev {
                Event::Snapshot {
                    topic,
                    seq,
                    messages,
                } => {
                    prop_assert_eq!(topic, TOPIC);
                    if let Some(view) = &client.view {
                        prop_assert!(seq >= view.seq, "snapshot {} after {}", seq, view.seq);
                    }
                    let mut view = View {
                        seq,
                        ..View::default()
                    };
                    let mut last = 0;
                    for m in &messages {
                        prop_assert!(m.seq > last && m.seq <= seq, "{:?} in {}", messages, seq);
                        prop_assert_eq!(&m.msg, &self.source.message(m.seq).1);
                        view.apply_text(&m.msg);
                        last = m.seq;
                    }
                    prop_assert_eq!(&view, &self.source.view(seq));
                    client.view = Some(view);
                    client.after_snapshot = true;
                }
                Event::Message { topic, seq, msg } => {
                    prop_assert_eq!(topic, TOPIC);
                    let Some(view) = client.view.as_mut() else {
                        return Err(TestCaseError::fail("a message before the snapshot"));
                    };
                    let keyless = self.source.message(seq).0.is_empty();
                    if client.exact {
                        prop_assert_eq!(seq, view.seq + 1, "gap or duplicate");
                    } else if keyless && client.after_snapshot {
                        // Conflate's resync delivers the keyless message that triggered
                        // it right after the snapshot, with the snapshot's seq.
                        prop_assert!(seq >= view.seq, "{} after {}", seq, view.seq);
                    } else {
                        prop_assert!(seq > view.seq, "{} after {}", seq, view.seq);
                    }
                    client.after_snapshot = false;
                    prop_assert_eq!(&msg, &self.source.message(seq).1);
                    view.apply_text(&msg);
                    view.seq = seq;
                    if client.exact {
                        prop_assert_eq!(&*view, &self.source.view(seq));
                    }
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        Ok(())
    }

    fn join(&mut self, policy: u8) -> Check {
        let (policy, exact) = match policy % 4 {
            0 => (SlowConsumerPolicy::conflate(1024).unwrap(), true),
            1 => (
                SlowConsumerPolicy::drop_oldest(1024, usize::MAX).unwrap(),
                true,
            ),
            2 => (
                SlowConsumerPolicy::disconnect(1024, usize::MAX).unwrap(),
                true,
            ),
            n => (SlowConsumerPolicy::conflate(usize::from(n)).unwrap(), false),
        };
        let sub = self.hub.subscribe(policy);
        prop_assert_eq!(sub.subscribe(TOPIC), Ok(()));
        self.clients.push(Client {
            sub,
            exact,
            view: None,
            after_snapshot: false,
        });
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// The source publishes; the message may be lost on its way to the mirror.
    Publish { keys: BTreeSet<u8>, lost: bool },
    /// A new local subscriber (policy index).
    Join(u8),
    /// Client `i` subscribes again (after leaving).
    Rejoin(usize),
    /// Client `i` unsubscribes.
    Leave(usize),
    /// Client `i` drops its subscription.
    Drop(usize),
    /// Client `i` reads up to this many events.
    Read(usize, usize),
    /// The mirror serves a wanted topic (subscribes at the source, resets).
    Serve,
    /// A message of the source arrives again, late: `back` before the newest.
    Redeliver(u64),
    /// The mirror resynchronises for no reason.
    Resync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (proptest::collection::btree_set(0u8..4, 0..3), proptest::bool::weighted(0.3))
            .prop_map(|(keys, lost)| Op::Publish { keys, lost }),
        3 => (0u8..6).prop_map(Op::Join),
        1 => any::<usize>().prop_map(Op::Rejoin),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Drop),
        4 => (any::<usize>(), 0usize..8).prop_map(|(i, n)| Op::Read(i, n)),
        2 => Just(Op::Serve),
        1 => (0u64..6).prop_map(Op::Redeliver),
        1 => Just(Op::Resync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/mirror.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// A source publishes seq 1..n; the mirror loses some of them on the way, catches
    /// up from the source's bounded log on a gap or resets to the source's state;
    /// subscribers come and go. Every subscriber's state, after each event, is the
    /// source's at that event's seq (exactly, with contiguous seqs, for lossless
    /// bounds), and at the end everyone holds the source's final state.
    #[test]
    fn a_lossy_mirror_keeps_subscribers_at_the_source_state(
        log_bound in 0u64..6,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let (hub, seen) = mirrored();
        let mut sim = Sim {
            hub,
            seen,
            source: Source::new(log_bound),
            mirror: Mirror::default(),
            clients: Vec::new(),
        };
        for op in ops {
            let n = sim.clients.len();
            match op {
                Op::Publish { keys, lost } => {
                    let seq = sim.source.publish(&keys);
                    if !lost {
                        sim.deliver(seq)?;
                    }
                }
                Op::Join(policy) => sim.join(policy)?,
                Op::Rejoin(i) if n > 0 => {
                    let c = &mut sim.clients[i % n];
                    if !c.sub.is_subscribed(&TOPIC) {
                        prop_assert_eq!(c.sub.subscribe(TOPIC), Ok(()));
                        c.view = None;
                    }
                }
                Op::Leave(i) if n > 0 => {
                    let c = &mut sim.clients[i % n];
                    let was = c.sub.is_subscribed(&TOPIC);
                    prop_assert_eq!(c.sub.unsubscribe(&TOPIC), was);
                    prop_assert_eq!(c.sub.try_recv(), Err(TryRecvError::Empty));
                    c.view = None;
                }
                Op::Drop(i) if n > 0 => {
                    sim.clients.remove(i % n);
                }
                Op::Read(i, max) if n > 0 => sim.read(i % n, max)?,
                Op::Serve => {
                    if sim.mirror.pending {
                        sim.reset()?;
                    }
                }
                Op::Redeliver(back) => {
                    if let Some(seq) = sim.source.seq().checked_sub(back).filter(|s| *s > 0) {
                        sim.deliver(seq)?;
                    }
                }
                Op::Resync => {
                    if sim.mirror.held && !sim.mirror.pending {
                        sim.reset()?;
                    }
                }
                Op::Rejoin(_) | Op::Leave(_) | Op::Drop(_) | Op::Read(..) => {}
            }
            sim.observe()?;
        }

        // The end: someone is subscribed, the topic is served, the mirror caught up.
        if !sim.mirror.held {
            sim.join(0)?;
            sim.observe()?;
        }
        if sim.mirror.pending {
            sim.reset()?;
        }
        if sim.mirror.seq < sim.source.seq() {
            let from = sim.mirror.seq + 1;
            sim.recover(from)?;
        }
        sim.observe()?;
        prop_assert_eq!(sim.hub.seq(&TOPIC), Some(sim.source.seq()));
        let last = sim.source.view(sim.source.seq());
        let snap = sim.hub.snapshot(&TOPIC);
        let mut view = View { seq: snap.seq, ..View::default() };
        for m in &snap.messages {
            view.apply_text(&m.msg);
        }
        prop_assert_eq!(&view, &last);
        let mut checked = 0;
        for i in 0..sim.clients.len() {
            sim.read(i, usize::MAX)?;
            let c = &sim.clients[i];
            if c.sub.is_subscribed(&TOPIC) {
                prop_assert_eq!(c.view.as_ref(), Some(&last));
                checked += 1;
            } else {
                prop_assert!(c.view.is_none());
            }
        }
        prop_assert!(checked > 0);
    }
}
