//! Async receiving: the subscription is a `Stream`, `recv` is cancel safe,
//! a parked receiver is woken by a publish, and `drain_into` batches.

mod common;

use std::time::Duration;

use common::{hub, msg};
use futures::StreamExt;
use rtdash_fanout::{Event, SlowConsumerPolicy};

#[tokio::test]
async fn stream_yields_snapshot_then_messages() {
    let hub = hub();
    let mut sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    let publisher = hub.clone();
    tokio::spawn(async move {
        for i in 1..=3 {
            tokio::task::yield_now().await;
            publisher.publish(&1, 0, msg(format!("{i}")));
        }
    });
    let events: Vec<_> = (&mut sub).take(4).collect().await;
    assert!(matches!(events[0], Event::Snapshot { seq: 0, .. }));
    let seqs: Vec<u64> = events[1..].iter().filter_map(Event::seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn recv_is_cancel_safe_in_select() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    let publisher = hub.clone();
    tokio::spawn(async move {
        for i in 1..=20u64 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            publisher.publish(&1, 0, msg(format!("{i}")));
        }
    });
    let mut seqs = Vec::new();
    let mut timeouts = 0;
    while seqs.len() < 20 {
        tokio::select! {
            ev = sub.recv() => match ev {
                Some(Event::Message { seq, .. }) => seqs.push(seq),
                Some(Event::Snapshot { .. }) => {}
                other => panic!("{other:?}"),
            },
            () = tokio::time::sleep(Duration::from_millis(2)) => timeouts += 1,
        }
    }
    assert!(timeouts > 0, "the recv branch was cancelled at least once");
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<_>>(),
        "nothing lost to cancellation"
    );
}

#[test]
fn drain_into_moves_a_batch() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::default());
    sub.subscribe(1).unwrap();
    for i in 0..5 {
        hub.publish(&1, i, msg("x"));
    }
    let mut batch = Vec::new();
    assert_eq!(sub.drain_into(&mut batch, 4), 4);
    assert_eq!(sub.drain_into(&mut batch, 4), 2);
    assert_eq!(sub.drain_into(&mut batch, 4), 0);
    assert_eq!(batch.len(), 6);
    assert_eq!(sub.stats().delivered, 6);
    assert_eq!(sub.stats().queue_len, 0);
}
