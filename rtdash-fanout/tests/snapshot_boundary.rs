//! Snapshot on subscribe, then live messages: no gap and no duplicate at the
//! boundary, under any interleaving of publishes and subscribes, and under
//! real concurrent publishing.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{TestSub, drain, hub, msg};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rtdash_fanout::{Event, SlowConsumerPolicy};

/// Rebuilds the per-key state a client would hold from its events, checking
/// seq continuity: live seqs continue at snapshot.seq + 1, one by one.
fn client_state(sub: &TestSub, topic: u32) -> (u64, BTreeMap<String, String>) {
    let mut state = BTreeMap::new();
    let mut last: Option<u64> = None;
    for ev in drain(sub) {
        match ev {
            Event::Snapshot {
                topic: t,
                seq,
                messages,
            } if t == topic => {
                assert!(last.is_none(), "one snapshot, first");
                assert!(
                    messages.windows(2).all(|w| w[0].seq < w[1].seq),
                    "ascending"
                );
                assert!(messages.iter().all(|m| m.seq <= seq));
                for m in messages {
                    let (k, v) = m.msg.split_once('=').unwrap();
                    state.insert(k.to_owned(), v.to_owned());
                }
                last = Some(seq);
            }
            Event::Message { topic: t, seq, msg } if t == topic => {
                let prev = last.expect("snapshot before live messages");
                assert_eq!(seq, prev + 1, "no gap, no duplicate");
                let (k, v) = msg.split_once('=').unwrap();
                state.insert(k.to_owned(), v.to_owned());
                last = Some(seq);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (last.expect("a snapshot"), state)
}

#[derive(Debug, Clone)]
enum Op {
    Publish { key: u8 },
    Subscribe,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => (0u8..5).prop_map(|key| Op::Publish { key }), 1 => Just(Op::Subscribe)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/snapshot_boundary.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Any schedule of publishes and subscribes, run in order: every
    /// subscriber, replaying snapshot + live messages, holds exactly the
    /// publisher's final state, with contiguous seqs.
    #[test]
    fn any_interleaving_has_no_gap_or_duplicate(ops in proptest::collection::vec(op(), 1..60)) {
        let hub = hub();
        let mut subs = Vec::new();
        let mut truth = BTreeMap::new();
        let mut seq = 0;
        for op in ops {
            match op {
                Op::Publish { key } => {
                    seq += 1;
                    prop_assert_eq!(hub.publish(&1, u32::from(key), msg(format!("k{key}={seq}"))), seq);
                    truth.insert(format!("k{key}"), seq.to_string());
                }
                Op::Subscribe => {
                    let s = hub.subscribe(SlowConsumerPolicy::disconnect(usize::MAX, usize::MAX).unwrap());
                    s.subscribe(1).unwrap();
                    subs.push(s);
                }
            }
        }
        for s in &subs {
            let (last, state) = client_state(s, 1);
            prop_assert_eq!(last, seq);
            prop_assert_eq!(&state, &truth);
        }
    }
}

#[test]
fn concurrent_publishers_and_subscribers() {
    const PUBLISHERS: usize = 4;
    const MIN_PER_PUBLISHER: u64 = 1_000;
    const SUBSCRIBERS: usize = 100;
    let hub = hub();
    let subscribed = Arc::new(AtomicUsize::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(PUBLISHERS + 1));
    // Publishers keep going until every subscriber has joined mid-stream.
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = hub.clone();
            let start = Arc::clone(&start);
            let subscribed = Arc::clone(&subscribed);
            let published = Arc::clone(&published);
            thread::spawn(move || {
                start.wait();
                let mut last = 0;
                let mut i = 0;
                while i < MIN_PER_PUBLISHER || subscribed.load(Ordering::Relaxed) < SUBSCRIBERS {
                    let seq = hub.publish(&1, p as u32, msg(format!("k{p}={i}")));
                    assert!(seq > last);
                    last = seq;
                    published.fetch_max(seq, Ordering::Relaxed);
                    i += 1;
                }
                i - 1
            })
        })
        .collect();
    start.wait();
    let mut subs = Vec::new();
    let mut seen = 0;
    for _ in 0..SUBSCRIBERS {
        // Each subscriber joins after the stream has moved on since the last
        // one (a loaded machine may otherwise run all joins in one slice).
        while published.load(Ordering::Relaxed) <= seen {
            thread::yield_now();
        }
        seen = published.load(Ordering::Relaxed);
        let s = hub.subscribe(SlowConsumerPolicy::disconnect(usize::MAX, usize::MAX).unwrap());
        s.subscribe(1).unwrap();
        subs.push(s);
        subscribed.fetch_add(1, Ordering::Relaxed);
        thread::yield_now();
    }
    let last: Vec<u64> = publishers.into_iter().map(|p| p.join().unwrap()).collect();
    let total: u64 = last.iter().map(|l| l + 1).sum();
    let truth: BTreeMap<String, String> = last
        .iter()
        .enumerate()
        .map(|(p, l)| (format!("k{p}"), l.to_string()))
        .collect();
    let mut first_seqs = Vec::new();
    for s in &subs {
        let (last, state) = client_state(s, 1);
        assert_eq!(last, total);
        assert_eq!(state, truth);
        first_seqs.push(total - (s.stats().delivered - 1));
    }
    // Subscribers joined at many different points of the stream.
    first_seqs.sort_unstable();
    first_seqs.dedup();
    assert!(
        first_seqs.len() > SUBSCRIBERS / 2,
        "joined at {first_seqs:?}"
    );
}
