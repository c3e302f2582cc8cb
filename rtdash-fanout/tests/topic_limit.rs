//! `HubConfig::max_topics` bounds the topics subscriptions can create:
//! past it, subscribing a new name fails with `FanoutError::HubFull`, while
//! existing topics can still be subscribed and publishing is never refused.

mod common;

use std::num::NonZeroUsize;

use common::msg;
use rtdash_fanout::{FanoutError, Hub, HubConfig, SlowConsumerPolicy};

#[test]
fn subscribing_a_new_topic_past_max_topics_fails_until_one_is_freed() {
    let config = HubConfig::default().with_max_topics(NonZeroUsize::new(4).unwrap());
    let hub: common::TestHub = Hub::new(config);
    assert_eq!(hub.config().max_topics.get(), 4);
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    for t in 0..4 {
        sub.subscribe(t).unwrap();
    }
    assert_eq!(sub.subscribe(4), Err(FanoutError::HubFull { limit: 4 }));
    assert!(!sub.is_subscribed(&4));
    assert_eq!(hub.stats().topics, 4);
    // An existing topic is not a new one.
    let other = hub.subscribe(SlowConsumerPolicy::default());
    other.subscribe(2).unwrap();
    // Publishing is never refused, even on a new topic past the bound.
    assert_eq!(hub.publish(&9, 1, msg("v")), 1);
    assert_eq!(hub.stats().topics, 5);
    // Freeing two makes room for one (topic 9 counts too).
    assert!(sub.unsubscribe(&0));
    assert!(sub.unsubscribe(&1));
    assert_eq!(hub.stats().topics, 3);
    sub.subscribe(4).unwrap();
    assert_eq!(sub.subscribe(5), Err(FanoutError::HubFull { limit: 4 }));
    let e = FanoutError::HubFull { limit: 4 }.to_string();
    assert!(e.contains("max_topics"), "{e}");
}

#[test]
fn default_max_topics_is_documented_value() {
    assert_eq!(
        HubConfig::default().max_topics.get(),
        HubConfig::DEFAULT_MAX_TOPICS
    );
}
