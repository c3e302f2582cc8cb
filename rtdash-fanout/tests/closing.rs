//! Closing: when the last hub handle is dropped, subscribers receive what is
//! queued, then their stream ends.

mod common;

use common::{hub, msg};
use rtdash_fanout::{Event, SlowConsumerPolicy};

#[tokio::test]
async fn queued_events_are_delivered_then_none() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    hub.publish(&1, 0, msg("last words"));
    let clone = hub.clone();
    drop(hub);
    // Another handle is alive: still open.
    assert!(matches!(sub.recv().await, Some(Event::Snapshot { .. })));
    drop(clone);
    assert!(matches!(
        sub.recv().await,
        Some(Event::Message { seq: 1, .. })
    ));
    assert_eq!(sub.recv().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_receiver_is_woken_when_the_hub_closes() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    let waiter = tokio::spawn(async move {
        let mut n = 0;
        while sub.recv().await.is_some() {
            n += 1;
        }
        n
    });
    tokio::task::yield_now().await;
    hub.publish(&1, 0, msg("a"));
    drop(hub);
    let n = waiter.await.unwrap();
    assert!(
        n == 2 || n == 1,
        "snapshot and the message unless the hub closed first: {n}"
    );
}
