//! DropOldest: the oldest events are dropped beyond N messages or B bytes,
//! and the consumer is told how many it skipped, before the topic's next event.

mod common;

use common::{drain, hub, msg};
use rtdash_fanout::{Event, SlowConsumerPolicy};

#[test]
fn message_bound_drops_oldest_and_reports_skipped() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::drop_oldest(3, usize::MAX).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    for i in 1..=10 {
        hub.publish(&1, 0, msg(format!("{i}")));
    }
    let events = drain(&sub);
    assert_eq!(events[0], Event::Skipped { topic: 1, count: 7 });
    let seqs: Vec<u64> = events[1..].iter().filter_map(Event::seq).collect();
    assert_eq!(seqs, vec![8, 9, 10]);
    assert_eq!(events.len(), 4);
    let stats = sub.stats();
    assert_eq!(stats.dropped, 7);
    assert_eq!(stats.high_water_mark, 3);
    assert_eq!(hub.stats().dropped, 7);
}

#[test]
fn byte_bound_counts_bytes_across_topics() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::drop_oldest(100, 10).unwrap());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    drain(&sub);
    hub.publish(&1, 0, msg("aaaa")); // 4 bytes
    hub.publish(&2, 0, msg("bbbb")); // 8
    hub.publish(&2, 0, msg("cccc")); // 12 > 10: drop topic 1's message
    assert_eq!(sub.stats().queue_bytes, 8);
    let events = drain(&sub);
    assert_eq!(
        events,
        vec![
            Event::Message {
                topic: 2,
                seq: 1,
                msg: msg("bbbb")
            },
            Event::Message {
                topic: 2,
                seq: 2,
                msg: msg("cccc")
            },
            // Topic 1 has nothing queued any more: its notice comes when the queue runs empty.
            Event::Skipped { topic: 1, count: 1 },
        ]
    );
    assert_eq!(sub.stats().queue_bytes, 0);
}

#[test]
fn oversized_message_is_itself_dropped_and_counted() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::drop_oldest(100, 4).unwrap());
    sub.subscribe(1).unwrap();
    drain(&sub);
    hub.publish(&1, 0, msg("ok"));
    hub.publish(&1, 0, msg("far too large"));
    hub.publish(&1, 0, msg("ok2"));
    let events = drain(&sub);
    assert_eq!(
        events,
        vec![
            Event::Skipped { topic: 1, count: 2 },
            Event::Message {
                topic: 1,
                seq: 3,
                msg: msg("ok2")
            },
        ]
    );
    assert_eq!(sub.stats().dropped, 2);
}

#[test]
fn skipped_precedes_the_topics_next_message_only() {
    let hub = hub();
    let sub = hub.subscribe(SlowConsumerPolicy::drop_oldest(2, usize::MAX).unwrap());
    sub.subscribe(1).unwrap();
    sub.subscribe(2).unwrap();
    drain(&sub);
    hub.publish(&1, 0, msg("1a"));
    hub.publish(&2, 0, msg("2a"));
    hub.publish(&1, 0, msg("1b")); // drops 1a
    hub.publish(&2, 0, msg("2b")); // drops 2a
    let events = drain(&sub);
    assert_eq!(
        events,
        vec![
            Event::Skipped { topic: 1, count: 1 },
            Event::Message {
                topic: 1,
                seq: 2,
                msg: msg("1b")
            },
            Event::Skipped { topic: 2, count: 1 },
            Event::Message {
                topic: 2,
                seq: 2,
                msg: msg("2b")
            },
        ]
    );
}
