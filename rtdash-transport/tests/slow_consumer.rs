//! A client that stops reading (its TCP window fills up) is handled by the
//! slow-consumer policy and never delays a healthy client on the same topic.
#![cfg(feature = "ws")]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use rtdash_transport::{FrameHub, SlowConsumerPolicy, Topic, TransportConfig, unix_millis};

/// Publishes one ~8 KiB update (a long widget id makes it big).
fn publish_big(hub: &FrameHub<u32>, topic: &Topic, key: u32) -> u64 {
    let widget = format!("{key}-{}", "x".repeat(8 * 1024));
    let now = unix_millis(SystemTime::now());
    hub.publish_with(topic, [key], |seq| {
        update_frame(topic, seq, now, &[(&widget, Some(f64::from(key)))])
    })
}

/// Publishes `rounds` × `per_round` big updates; after each round the
/// healthy client must have received the round's last seq.
async fn publish_while_healthy_keeps_up(
    server: &TestServer,
    healthy: &mut Ws,
    rounds: u32,
    per_round: u32,
) -> u64 {
    let topic: Topic = "t".into();
    let mut last = 0;
    for r in 0..rounds {
        for i in 0..per_round {
            last = publish_big(server.transport.hub(), &topic, (r * per_round + i) % 32);
        }
        read_updates_until(healthy, "t", last).await;
    }
    last
}

#[tokio::test]
async fn conflate_bounds_the_backlog_and_write_timeout_evicts() {
    let config = TransportConfig::default()
        .with_slow_consumer_policy(SlowConsumerPolicy::conflate(16).unwrap())
        .with_write_timeout(Duration::from_secs(2));
    let server = start(config).await;
    let (mut healthy, _) = hello(&server.url(""), "good").await;
    subscribe(&mut healthy, "t").await;

    // Handshake, subscribe via the URL, then never read a byte.
    let _stuck = RawClient::connect(server.addr, "?token=good&topics=t").await;
    let topic: Topic = "t".into();
    eventually("stuck client subscribed", || {
        server.transport.hub().subscriber_count(&topic) == 2
    })
    .await;

    // ~24 MiB for the stuck client: far more than the socket buffers hold.
    let last = publish_while_healthy_keeps_up(&server, &mut healthy, 30, 100).await;
    assert_eq!(last, 3000);
    // The policy kept the stuck client's queue bounded by conflating it.
    assert!(server.transport.hub().stats().conflated > 0);
    // It cannot write, so `write_timeout` closes it (4008, counted).
    eventually("stuck client evicted", || {
        server.transport.stats().slow_consumers == 1
    })
    .await;
    eventually("stuck client unsubscribed", || {
        server.transport.hub().subscriber_count(&topic) == 1
    })
    .await;
    // The healthy client is still served.
    let seq = publish_big(server.transport.hub(), &topic, 1);
    read_updates_until(&mut healthy, "t", seq).await;
}

#[tokio::test]
async fn disconnect_policy_evicts_the_stuck_client() {
    let config = TransportConfig::default()
        .with_slow_consumer_policy(SlowConsumerPolicy::disconnect(64, usize::MAX).unwrap())
        .with_write_timeout(Duration::from_secs(600));
    let server = start(config).await;
    let (mut healthy, _) = hello(&server.url(""), "good").await;
    subscribe(&mut healthy, "t").await;
    let _stuck = RawClient::connect(server.addr, "?token=good&topics=t").await;
    let topic: Topic = "t".into();
    eventually("stuck client subscribed", || {
        server.transport.hub().subscriber_count(&topic) == 2
    })
    .await;

    publish_while_healthy_keeps_up(&server, &mut healthy, 60, 50).await;
    // Evicted by the hub (not by the 10-minute write timeout).
    assert_eq!(server.transport.hub().stats().evicted, 1);
    assert_eq!(server.transport.hub().subscriber_count(&topic), 1);
    eventually("eviction counted", || {
        server.transport.stats().slow_consumers == 1
    })
    .await;
}
