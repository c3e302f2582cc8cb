//! Several publisher threads on several topics, many subscribers on their own
//! threads: every subscriber sees each topic's messages in publish order,
//! and the totals add up.

mod common;

use std::sync::Arc;
use std::thread;

use common::{TestHub, TestSub};
use rtdash_fanout::{Event, Hub, HubConfig, SlowConsumerPolicy};

const TOPICS: u32 = 4;
const PUBLISHERS_PER_TOPIC: u32 = 2;
const PER_PUBLISHER: u64 = 2_000;
const SUBSCRIBERS: usize = 32;
const READER_THREADS: usize = 4;

#[test]
fn many_publishers_many_subscribers() {
    let hub: TestHub = Hub::new(HubConfig::default());
    // Lossless policy for the readers (bounded far above what they can lag).
    let subs: Vec<TestSub> = (0..SUBSCRIBERS)
        .map(|i| {
            let s = hub.subscribe(SlowConsumerPolicy::disconnect(usize::MAX, usize::MAX).unwrap());
            // Each subscriber holds 1..=TOPICS topics.
            for t in 0..=(i as u32 % TOPICS) {
                s.subscribe(t).unwrap();
            }
            s
        })
        .collect();
    let expected_per_topic = u64::from(PUBLISHERS_PER_TOPIC) * PER_PUBLISHER;

    // Readers: each owns a share of the subscriptions and polls them on a
    // current-thread runtime.
    let mut shares: Vec<Vec<(usize, TestSub)>> = (0..READER_THREADS).map(|_| Vec::new()).collect();
    for (i, s) in subs.into_iter().enumerate() {
        shares[i % READER_THREADS].push((i, s));
    }
    let readers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    let local = tokio::task::LocalSet::new();
                    for (i, s) in share {
                        tasks.push(local.spawn_local(async move {
                            let topics = i as u32 % TOPICS + 1;
                            // Per topic: last seq, and per publisher the last counter seen.
                            let mut last_seq = vec![0u64; TOPICS as usize];
                            let mut last_count =
                                vec![
                                    vec![None::<u64>; PUBLISHERS_PER_TOPIC as usize];
                                    TOPICS as usize
                                ];
                            let mut received = 0u64;
                            while received < u64::from(topics) * expected_per_topic {
                                match s.recv().await.expect("open") {
                                    Event::Snapshot {
                                        topic,
                                        seq,
                                        messages,
                                    } => {
                                        assert_eq!(seq, 0);
                                        assert!(messages.is_empty());
                                        assert!(topic < topics);
                                    }
                                    Event::Message { topic, seq, msg } => {
                                        let t = topic as usize;
                                        assert_eq!(
                                            seq,
                                            last_seq[t] + 1,
                                            "topic {topic}: in order, no gap"
                                        );
                                        last_seq[t] = seq;
                                        let (p, c) = msg.split_once(':').unwrap();
                                        let (p, c): (usize, u64) =
                                            (p.parse().unwrap(), c.parse().unwrap());
                                        assert_eq!(
                                            last_count[t][p].map_or(0, |l| l + 1),
                                            c,
                                            "publisher order"
                                        );
                                        last_count[t][p] = Some(c);
                                        received += 1;
                                    }
                                    other => panic!("{other:?}"),
                                }
                            }
                            (topics, received, s.stats().delivered)
                        }));
                    }
                    local
                        .run_until(async move {
                            let mut out = Vec::new();
                            for t in tasks {
                                out.push(t.await.unwrap());
                            }
                            out
                        })
                        .await
                })
            })
        })
        .collect();

    let publishers: Vec<_> = (0..TOPICS)
        .flat_map(|t| (0..PUBLISHERS_PER_TOPIC).map(move |p| (t, p)))
        .map(|(t, p)| {
            let hub = hub.clone();
            thread::spawn(move || {
                for c in 0..PER_PUBLISHER {
                    hub.publish(&t, p, Arc::from(format!("{p}:{c}")));
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let mut total_received = 0;
    for r in readers {
        for (topics, received, delivered) in r.join().unwrap() {
            assert_eq!(received, u64::from(topics) * expected_per_topic);
            // + one snapshot per topic
            assert_eq!(delivered, received + u64::from(topics));
            total_received += received;
        }
    }
    let stats = hub.stats();
    assert_eq!(stats.published, u64::from(TOPICS) * expected_per_topic);
    assert_eq!(stats.delivered, total_received);
    assert_eq!(stats.conflated + stats.dropped + stats.evicted, 0);
    for t in 0..TOPICS {
        assert_eq!(hub.topic_stats(&t).unwrap().seq, expected_per_topic);
    }
}
