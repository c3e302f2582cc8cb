//! Bad input gets a clear error: zero bounds, too many topics, subscribing
//! after eviction or after the hub is gone.

mod common;

use std::num::NonZeroUsize;

use common::{drain, hub, msg};
use rtdash_fanout::{EvictReason, FanoutError, Hub, HubConfig, SlowConsumerPolicy, TryRecvError};

#[test]
fn zero_bounds_are_rejected_with_the_field_named() {
    assert_eq!(
        SlowConsumerPolicy::conflate(0),
        Err(FanoutError::ZeroBound {
            policy: "Conflate",
            field: "max_messages"
        })
    );
    assert_eq!(
        SlowConsumerPolicy::drop_oldest(0, 10),
        Err(FanoutError::ZeroBound {
            policy: "DropOldest",
            field: "max_messages"
        })
    );
    assert_eq!(
        SlowConsumerPolicy::drop_oldest(10, 0),
        Err(FanoutError::ZeroBound {
            policy: "DropOldest",
            field: "max_bytes"
        })
    );
    let err = SlowConsumerPolicy::disconnect(10, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Disconnect policy: `max_bytes` must be at least 1, got 0"
    );
    assert!(SlowConsumerPolicy::disconnect(1, 1).is_ok());
}

#[test]
fn too_many_topics() {
    let hub: Hub<u32, u32, std::sync::Arc<str>> = Hub::new(
        HubConfig::default().with_max_topics_per_subscription(NonZeroUsize::new(2).unwrap()),
    );
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    // Re-subscribing a held topic is a no-op, not an error.
    sub.subscribe(2).unwrap();
    let err = sub.subscribe(3).unwrap_err();
    assert_eq!(err, FanoutError::TooManyTopics { limit: 2 });
    assert!(err.to_string().contains("max_topics_per_subscription"));
    assert_eq!(hub.topic_stats(&3), None, "a refused topic is not created");
    assert!(sub.unsubscribe(&1));
    sub.subscribe(3).unwrap();
}

#[test]
fn subscribe_after_eviction_is_an_error() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    sub.subscribe(1).unwrap();
    hub.publish(&1, 0, msg("x"));
    let reason = EvictReason::MessageLimit { limit: 1 };
    assert_eq!(sub.subscribe(2), Err(FanoutError::Evicted { reason }));
    // Even before the Evicted event was read, and after.
    drain(&sub);
    assert_eq!(sub.subscribe(1), Err(FanoutError::Evicted { reason }));
    assert!(sub.to_string_lossy_check());
}

trait Check {
    fn to_string_lossy_check(&self) -> bool;
}

impl Check for common::TestSub {
    fn to_string_lossy_check(&self) -> bool {
        format!("{self:?}").contains("Subscription")
    }
}

#[test]
fn subscribe_after_the_hub_is_gone_is_an_error() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    drop(hub);
    assert_eq!(sub.subscribe(1), Err(FanoutError::HubClosed));
    assert_eq!(sub.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn publishing_without_keys_is_transient() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    assert_eq!(hub.publish_multi(&1, [], msg("tick")), 1);
    assert_eq!(hub.snapshot(&1).messages, vec![]);
    assert_eq!(hub.snapshot(&1).seq, 1);
    assert_eq!(drain(&sub).len(), 2);
    // Unknown topics.
    assert_eq!(hub.snapshot(&99).seq, 0);
    assert_eq!(hub.subscriber_count(&99), 0);
    assert_eq!(hub.topic_stats(&99), None);
}
