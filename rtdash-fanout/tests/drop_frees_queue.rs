//! Dropping a subscription unsubscribes it from every topic and frees its
//! queue: the hub's counts go back to zero and the shared messages are
//! released (their reference counts drop back).

mod common;

use std::sync::Arc;

use common::hub;
use rtdash_fanout::SlowConsumerPolicy;

#[test]
fn dropping_a_subscription_releases_everything() {
    let hub = hub();
    let payload: Arc<str> = Arc::from("shared payload");
    let subs: Vec<_> = (0..50)
        .map(|_| {
            let s = hub.subscribe(SlowConsumerPolicy::drop_oldest(1_000, usize::MAX).unwrap());
            s.subscribe(1).unwrap();
            s.subscribe(2).unwrap();
            s
        })
        .collect();
    assert_eq!(hub.stats().subscribers, 50);
    assert_eq!(hub.subscriber_count(&1), 50);
    for key in 0..10 {
        hub.publish(&1, key, Arc::clone(&payload));
        hub.publish(&2, key, Arc::clone(&payload));
    }
    // 1 (ours) + 20 in the two caches (10 keys each) + 50 subscribers x 20 queued.
    assert_eq!(Arc::strong_count(&payload), 1 + 20 + 50 * 20);
    assert_eq!(subs[0].stats().queue_len, 2 + 20);

    drop(subs);
    assert_eq!(hub.stats().subscribers, 0);
    assert_eq!(hub.subscriber_count(&1), 0);
    assert_eq!(hub.subscriber_count(&2), 0);
    // Only the last-value caches still hold the message.
    assert_eq!(Arc::strong_count(&payload), 1 + 20);

    drop(hub);
    assert_eq!(Arc::strong_count(&payload), 1);
}

#[test]
fn unsubscribe_discards_that_topics_queued_events_only() {
    let hub = hub();
    let payload: Arc<str> = Arc::from("x");
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    hub.publish(&1, 0, Arc::clone(&payload));
    hub.publish(&2, 0, Arc::clone(&payload));
    assert_eq!(Arc::strong_count(&payload), 1 + 2 + 2);
    assert!(sub.unsubscribe(&1));
    assert!(!sub.unsubscribe(&1));
    assert_eq!(Arc::strong_count(&payload), 1 + 2 + 1);
    assert_eq!(sub.topics(), vec![2]);
    assert_eq!(sub.stats().queue_len, 2); // topic 2: snapshot + message
    assert_eq!(hub.subscriber_count(&1), 0);
    assert_eq!(hub.subscriber_count(&2), 1);
}
