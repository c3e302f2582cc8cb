//! A topic nobody publishes on is freed when its last subscriber leaves
//! (unsubscribe, drop, eviction), so subscribing and unsubscribing fresh
//! names cannot grow the hub; a topic with a cached value or a sequence
//! history stays, so its `seq` never goes back.

mod common;

use std::sync::Arc;

use common::{drain, hub, msg};
use rtdash_fanout::{Event, SlowConsumerPolicy};

#[test]
fn unsubscribing_fresh_names_frees_their_topics() {
    let hub = hub();
    hub.publish(&0, 1, msg("kept"));
    let baseline = hub.stats().topics;
    assert_eq!(baseline, 1);
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    for round in 0..10u32 {
        for t in 1..=100 {
            let topic = round * 1_000 + t;
            sub.subscribe(topic).unwrap();
            assert_eq!(hub.subscriber_count(&topic), 1);
        }
        assert_eq!(hub.stats().topics, baseline + 100);
        for t in 1..=100 {
            assert!(sub.unsubscribe(&(round * 1_000 + t)));
        }
        assert_eq!(hub.stats().topics, baseline, "round {round}");
    }
    // A topic stays while anyone else still holds it.
    let other = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(5).unwrap();
    other.subscribe(5).unwrap();
    assert!(sub.unsubscribe(&5));
    assert_eq!(hub.subscriber_count(&5), 1);
    assert_eq!(hub.stats().topics, baseline + 1);
    assert!(other.unsubscribe(&5));
    assert_eq!(hub.stats().topics, baseline);
}

#[test]
fn dropping_a_subscription_frees_its_unused_topics() {
    let hub = hub();
    let subs: Vec<_> = (0..20u32)
        .map(|i| {
            let s = hub.subscribe(SlowConsumerPolicy::default());
            for t in 0..50 {
                s.subscribe(i * 100 + t).unwrap();
            }
            s
        })
        .collect();
    assert_eq!(hub.stats().topics, 20 * 50);
    drop(subs);
    assert_eq!(hub.stats().topics, 0);
    assert_eq!(hub.stats().subscribers, 0);
}

#[test]
fn an_evicted_subscriber_frees_its_unused_topics() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(3, usize::MAX).unwrap());
    for t in 10..13 {
        sub.subscribe(t).unwrap();
    }
    assert_eq!(hub.stats().topics, 3);
    // Three snapshots fill the queue: the next event evicts.
    sub.subscribe(1).unwrap_err();
    assert!(sub.is_evicted());
    assert_eq!(hub.stats().topics, 0);
    assert!(matches!(drain(&sub).last(), Some(Event::Evicted { .. })));
}

#[test]
fn topics_with_a_value_or_a_history_stay_and_keep_their_seq() {
    let hub = hub();
    // A cached value: the topic stays, live messages continue its seq.
    hub.publish(&1, 7, msg("v1"));
    hub.publish(&1, 7, msg("v2"));
    // A keyless (uncached) message: nothing to snapshot, but seq 1 was used.
    hub.publish_multi(&2, [], msg("notice"));
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    for t in [1, 2] {
        sub.subscribe(t).unwrap();
        assert!(sub.unsubscribe(&t));
    }
    drop(sub);
    assert_eq!(hub.stats().topics, 2);
    assert_eq!(hub.snapshot(&1).seq, 2);
    assert_eq!(hub.snapshot(&2).seq, 1);
    assert_eq!(hub.publish(&1, 7, msg("v3")), 3);
    assert_eq!(hub.publish(&2, 7, msg("first value")), 2);
}

/// Subscribing, unsubscribing and dropping the same few names from many
/// threads: a subscriber that holds a topic is always registered on the
/// topic the hub publishes to (never on one freed behind its back), and the
/// hub ends empty.
#[test]
fn freeing_races_with_subscribe_and_publish() {
    let hub = hub();
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for n in 0..2_000u32 {
                    // Room for every message the other threads can publish meanwhile.
                    let sub = hub
                        .subscribe(SlowConsumerPolicy::drop_oldest(1 << 20, usize::MAX).unwrap());
                    let t = (n + i) % 3;
                    sub.subscribe(t).unwrap();
                    assert!(hub.subscriber_count(&t) >= 1, "topic {t} freed while held");
                    // A publish on a held topic reaches the holder.
                    let seq = hub.publish_multi(&(100 + t), [], msg("x"));
                    assert!(seq >= 1);
                    sub.subscribe(100 + t).unwrap();
                    let published = hub.publish_multi(&(100 + t), [], Arc::from("y"));
                    let got = drain(&sub).into_iter().any(|ev| {
                        matches!(ev, Event::Message { topic, seq, .. }
                            if topic == 100 + t && seq == published)
                    });
                    assert!(got, "message {published} on {} lost", 100 + t);
                    if n % 2 == 0 {
                        assert!(sub.unsubscribe(&t));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Topics 0..3 were never published to: all freed. 100..103 have a history.
    assert_eq!(hub.stats().topics, 3);
    assert_eq!(hub.stats().subscribers, 0);
}
