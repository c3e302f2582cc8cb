//! A subscriber that never reads does not delay the others, who receive every
//! message in order; the idle subscriber's queue stays within its bound.

mod common;

use std::thread;

use common::{drain, hub, msg};
use rtdash_fanout::{Event, SlowConsumerPolicy};

const MESSAGES: u64 = 20_000;

#[test]
fn idle_subscribers_do_not_hold_back_readers() {
    let hub = hub();
    // Idle subscribers under every policy: never read.
    let idle = [
        hub.subscribe(SlowConsumerPolicy::conflate(8).unwrap()),
        hub.subscribe(SlowConsumerPolicy::drop_oldest(16, usize::MAX).unwrap()),
        hub.subscribe(SlowConsumerPolicy::disconnect(32, usize::MAX).unwrap()),
    ];
    for s in &idle {
        s.subscribe(1).unwrap();
    }
    // Readers on their own threads, with a policy that never loses anything
    // short of eviction, and a generous bound.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let s = hub.subscribe(SlowConsumerPolicy::disconnect(usize::MAX, usize::MAX).unwrap());
            s.subscribe(1).unwrap();
            s
        })
        .collect();
    let handles: Vec<_> = readers
        .into_iter()
        .map(|s| {
            thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut seqs = Vec::new();
                    while let Some(ev) = s.recv().await {
                        match ev {
                            Event::Snapshot { seq, .. } => assert_eq!(seq, 0),
                            Event::Message { seq, msg, .. } => {
                                assert_eq!(&*msg, format!("v={seq}"));
                                seqs.push(seq);
                                if seq == MESSAGES {
                                    break;
                                }
                            }
                            other => panic!("reader got {other:?}"),
                        }
                    }
                    seqs
                })
            })
        })
        .collect();

    for i in 1..=MESSAGES {
        assert_eq!(hub.publish(&1, 0, msg(format!("v={i}"))), i);
    }
    for h in handles {
        let seqs = h.join().unwrap();
        assert_eq!(
            seqs,
            (1..=MESSAGES).collect::<Vec<_>>(),
            "every message, in order"
        );
    }

    // The idle ones were handled by their policies, within their bounds.
    assert!(idle[0].stats().queue_len <= 8);
    assert!(idle[0].stats().high_water_mark <= 8);
    assert!(idle[1].stats().queue_len <= 16);
    assert!(idle[2].is_evicted());
    assert_eq!(idle[2].stats().queue_len, 0);
    // The evicted one left the topic, the readers were dropped: two remain.
    assert_eq!(hub.subscriber_count(&1), 2);
    // The conflating one still ends at the newest value.
    let last = drain(&idle[0]).pop().unwrap();
    assert!(
        matches!(last, Event::Message { seq: MESSAGES, .. }),
        "{last:?}"
    );
}
