//! Disconnect: crossing the bound evicts the subscriber at publish time: its
//! queue is freed, it leaves its topics, and it receives a terminal
//! `Evicted` event with the limit that was crossed.

mod common;

use common::{drain, hub, msg};
use rtdash_fanout::{Event, EvictReason, FanoutError, SlowConsumerPolicy, TryRecvError};

#[test]
fn message_limit_evicts_with_reason() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(3, usize::MAX).unwrap());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    drain(&sub);
    hub.publish(&1, 0, msg("a"));
    hub.publish(&2, 0, msg("b"));
    hub.publish(&1, 0, msg("c"));
    assert!(!sub.is_evicted());
    assert_eq!(hub.subscriber_count(&1), 1);
    hub.publish(&1, 0, msg("d")); // 4th queued event
    assert!(sub.is_evicted());
    // Freed and removed from every topic at once.
    assert_eq!(sub.stats().queue_len, 0);
    assert_eq!(sub.stats().topics, 0);
    assert_eq!(hub.subscriber_count(&1), 0);
    assert_eq!(hub.subscriber_count(&2), 0);
    assert_eq!(hub.stats().evicted, 1);
    // Queued messages are not delivered after the eviction; the terminal event is.
    assert_eq!(
        sub.try_recv(),
        Ok(Event::Evicted {
            reason: EvictReason::MessageLimit { limit: 3 }
        })
    );
    assert_eq!(sub.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        sub.subscribe(3),
        Err(FanoutError::Evicted {
            reason: EvictReason::MessageLimit { limit: 3 }
        })
    );
    // Publishing goes on without it.
    hub.publish(&1, 0, msg("e"));
    assert_eq!(hub.stats().evicted, 1);
}

#[test]
fn byte_limit_evicts_with_reason() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(100, 5).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    hub.publish(&1, 0, msg("abc"));
    hub.publish(&1, 0, msg("def"));
    assert_eq!(
        drain(&sub),
        vec![Event::Evicted {
            reason: EvictReason::ByteLimit { limit: 5 }
        }]
    );
    assert_eq!(
        EvictReason::ByteLimit { limit: 5 }.to_string(),
        "slow consumer: more than 5 bytes queued (max_bytes)"
    );
}

#[test]
fn a_reader_that_keeps_up_is_never_evicted() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    for i in 1..=100u64 {
        hub.publish(&1, 0, msg("x"));
        assert!(matches!(sub.try_recv(), Ok(Event::Message { seq, .. }) if seq == i));
    }
    assert!(!sub.is_evicted());
}

#[tokio::test]
async fn recv_returns_evicted_then_none() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap());
    sub.subscribe(1).unwrap(); // the snapshot fills the queue
    hub.publish(&1, 0, msg("x"));
    assert_eq!(
        sub.recv().await,
        Some(Event::Evicted {
            reason: EvictReason::MessageLimit { limit: 1 }
        })
    );
    assert_eq!(sub.recv().await, None);
}

#[test]
fn snapshot_over_the_bound_evicts_at_subscribe() {
    let hub = hub();
    hub.publish(&1, 0, msg("0123456789"));
    let sub = hub.subscribe(SlowConsumerPolicy::disconnect(10, 4).unwrap());
    assert_eq!(
        sub.subscribe(1),
        Err(FanoutError::Evicted {
            reason: EvictReason::ByteLimit { limit: 4 }
        })
    );
    assert_eq!(hub.subscriber_count(&1), 0);
}
