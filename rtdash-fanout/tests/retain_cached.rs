//! Forgetting cached keys: a later subscriber's snapshot no longer shows
//! them, while current subscribers and sequence numbers carry on.

mod common;

use common::{drain, hub, msg};
use rtdash_fanout::{Event, SlowConsumerPolicy, Stamped};

fn snapshot_texts(events: &[Event<u32, std::sync::Arc<str>>]) -> Vec<String> {
    match events.first() {
        Some(Event::Snapshot { messages, .. }) => {
            messages.iter().map(|m| m.msg.to_string()).collect()
        }
        other => panic!("expected a snapshot first, got {other:?}"),
    }
}

#[test]
fn forgotten_keys_leave_later_snapshots() {
    let hub = hub();
    hub.publish(&1, 1, msg("a=1"));
    hub.publish(&1, 2, msg("b=1"));
    hub.publish_multi(&1, [3, 4], msg("c=1,d=1"));

    let early = hub.subscribe(SlowConsumerPolicy::default());
    early.subscribe(1).unwrap();
    assert_eq!(snapshot_texts(&drain(&early)).len(), 3);

    // Key 2 is gone; the message carrying 3 and 4 stays while 4 remains.
    assert_eq!(hub.retain_cached(&1, |k| *k != 2 && *k != 3), 2);
    let late = hub.subscribe(SlowConsumerPolicy::default());
    late.subscribe(1).unwrap();
    assert_eq!(snapshot_texts(&drain(&late)), vec!["a=1", "c=1,d=1"]);
    assert_eq!(hub.topic_stats(&1).unwrap().keys, 2);

    // Sequence numbers continue; both subscribers get the next message.
    assert_eq!(hub.publish(&1, 2, msg("b=2")), 4);
    for sub in [&early, &late] {
        match drain(sub).as_slice() {
            [Event::Message { seq: 4, msg: m, .. }] => assert_eq!(&**m, "b=2"),
            other => panic!("expected seq 4, got {other:?}"),
        }
    }
    assert_eq!(
        hub.snapshot(&1).messages,
        vec![
            Stamped {
                seq: 1,
                msg: msg("a=1")
            },
            Stamped {
                seq: 3,
                msg: msg("c=1,d=1")
            },
            Stamped {
                seq: 4,
                msg: msg("b=2")
            },
        ]
    );
}

#[test]
fn forgetting_everything_and_unknown_topics() {
    let hub = hub();
    assert_eq!(hub.retain_cached(&9, |_| false), 0, "unknown topic");
    hub.publish(&1, 1, msg("a=1"));
    hub.publish(&1, 2, msg("b=1"));
    assert_eq!(hub.retain_cached(&1, |_| false), 2);
    assert_eq!(hub.retain_cached(&1, |_| false), 0);
    let snap = hub.snapshot(&1);
    assert!(snap.messages.is_empty());
    assert_eq!(snap.seq, 2, "the sequence is kept");
    // The topic's other state is intact: publishing caches again.
    hub.publish(&1, 1, msg("a=2"));
    assert_eq!(hub.snapshot(&1).messages.len(), 1);
}
