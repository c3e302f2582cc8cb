//! Conflate: only the newest value per key survives a backlog; the counts
//! are reported; the consumer always ends at the current state.

mod common;

use std::sync::Arc;

use common::{View, drain, hub, msg};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rtdash_fanout::{Event, SlowConsumerPolicy, Stamped};

#[test]
fn single_key_backlog_is_compacted_to_the_newest() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::conflate(4).unwrap());
    sub.subscribe(1).unwrap();
    assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { seq: 0, .. })));
    for i in 1..=10 {
        hub.publish(&1, 7, msg(format!("k7={i}")));
    }
    // Queue reached 4 at seq 4; seq 5 superseded seq 1..=4 (compaction);
    // the same again at seq 9. Left: 9, 10.
    let events = drain(&sub);
    let seqs: Vec<u64> = events.iter().filter_map(Event::seq).collect();
    assert_eq!(seqs, vec![9, 10]);
    let stats = sub.stats();
    assert_eq!(stats.conflated, 8);
    assert_eq!(stats.high_water_mark, 4);
    assert_eq!(stats.dropped, 0);
    assert_eq!(hub.stats().conflated, 8);
    assert_eq!(hub.stats().delivered, 10);
}

#[test]
fn distinct_keys_fall_back_to_a_fresh_snapshot() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::conflate(4).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    // Five different keys: nothing is superseded when the 5th arrives, so
    // the backlog (4 messages) is replaced by one snapshot of all 5.
    for k in 0..5u32 {
        hub.publish(&1, k, msg(format!("k{k}=1")));
    }
    let events = drain(&sub);
    assert_eq!(events.len(), 1);
    match &events[0] {
        Event::Snapshot {
            topic: 1,
            seq: 5,
            messages,
        } => {
            let seqs: Vec<u64> = messages.iter().map(|s| s.seq).collect();
            assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sub.stats().conflated, 4);
    // Live messages continue right after the snapshot.
    hub.publish(&1, 0, msg("k0=2"));
    assert!(matches!(sub.try_recv(), Ok(Event::Message { seq: 6, .. })));
}

#[test]
fn multi_key_message_is_kept_while_it_is_newest_for_one_key() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::conflate(2).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    hub.publish_multi(&1, [1, 2], msg("a=1,b=1")); // seq 1
    hub.publish(&1, 1, msg("a=2")); // seq 2: supersedes key 1 of seq 1 only
    hub.publish(&1, 1, msg("a=3")); // seq 3: queue full -> seq 2 superseded, seq 1 kept (b)
    let seqs: Vec<u64> = drain(&sub).iter().filter_map(Event::seq).collect();
    assert_eq!(seqs, vec![1, 3]);
    assert_eq!(sub.stats().conflated, 1);
    let snap = hub.snapshot(&1);
    assert_eq!(snap.seq, 3);
    assert_eq!(
        snap.messages,
        vec![
            Stamped {
                seq: 1,
                msg: msg("a=1,b=1")
            },
            Stamped {
                seq: 3,
                msg: msg("a=3")
            }
        ]
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// Publish to these keys (empty: skipped).
    Publish(Vec<u8>),
    /// The consumer reads this many events.
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::collection::vec(0u8..6, 1..3).prop_map(Op::Publish),
        1 => (0usize..5).prop_map(Op::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/policy_conflate.txt",
        ))),
        cases: 512,
        ..ProptestConfig::default()
    })]

    /// Oracle: the true state is "last value per key". Whatever the
    /// interleaving of publishes and reads and whatever the bound, a
    /// conflating consumer that finally drains its queue holds exactly the
    /// true state, sees strictly increasing seqs between snapshots, and never
    /// holds more than `bound` queued events.
    #[test]
    fn consumer_ends_at_the_true_state(bound in 1usize..6, ops in proptest::collection::vec(op(), 0..80)) {
        let hub = hub();
        let sub = hub.subscribe(SlowConsumerPolicy::conflate(bound).unwrap());
        sub.subscribe(1).unwrap();
        let mut truth = View::default();
        let mut view = View::default();
        let apply = |view: &mut View, ev: Event<u32, Arc<str>>| match ev {
            Event::Snapshot { seq, messages, .. } => {
                prop_assert!(seq >= view.seq);
                for m in messages { view.apply_text(&m.msg); }
                view.seq = seq;
                Ok(())
            }
            Event::Message { seq, msg, .. } => {
                prop_assert!(seq > view.seq, "seq {} after {}", seq, view.seq);
                view.apply_text(&msg);
                view.seq = seq;
                Ok(())
            }
            other => { prop_assert!(false, "unexpected {:?}", other); Ok(()) }
        };
        for op in ops {
            match op {
                Op::Publish(keys) => {
                    let text: Vec<String> = keys.iter().map(|k| format!("k{k}={}", truth.seq + 1)).collect();
                    let text = text.join(",");
                    truth.seq = hub.publish_multi(&1, keys.iter().map(|&k| u32::from(k)), Arc::from(text.as_str()));
                    truth.apply_text(&text);
                    prop_assert!(sub.stats().queue_len <= bound);
                }
                Op::Read(n) => {
                    for _ in 0..n {
                        match sub.try_recv() {
                            Ok(ev) => apply(&mut view, ev)?,
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        for ev in drain(&sub) { apply(&mut view, ev)?; }
        prop_assert_eq!(&view, &truth);
        let stats = sub.stats();
        prop_assert_eq!(stats.conflated, hub.stats().conflated);
    }
}
