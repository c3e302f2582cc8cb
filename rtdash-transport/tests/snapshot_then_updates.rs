//! A subscriber gets a snapshot of the current values at once, then the
//! updates in sequence.
#![cfg(feature = "ws")]

mod common;

use common::*;
use rtdash_transport::TransportConfig;

#[tokio::test]
async fn snapshot_then_updates_in_sequence() {
    let server = start(TransportConfig::default()).await;
    // Values before the client connects: w1 twice (only the newest counts), w2 once.
    server.publish("dash", 1, 10.0);
    server.publish("dash", 2, 20.0);
    server.publish("dash", 1, 11.0);

    let (mut ws, _) = hello(&server.url(""), "good").await;
    let snap = subscribe(&mut ws, "dash").await;
    assert_eq!(snap["seq"], 3);
    let frames = snap["frames"].as_array().unwrap();
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 3], "newest frame per widget, ascending seq");
    assert_eq!(frames[1]["items"][0]["widget"], "w1");
    assert_eq!(frames[1]["items"][0]["value"], 11.0);
    assert!(frames[0]["items"][0]["event_time"].as_i64().is_some());

    for i in 0..50 {
        server.publish("dash", i % 5, f64::from(i));
    }
    let seqs = read_updates_until(&mut ws, "dash", 53).await;
    assert_eq!(seqs, (4..=53).collect::<Vec<_>>());
}

#[tokio::test]
async fn subscribing_again_gives_a_fresh_snapshot_and_unsubscribe_stops_updates() {
    let server = start(TransportConfig::default()).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    subscribe(&mut ws, "a").await;
    server.publish("a", 1, 1.0);
    assert_eq!(next_json(&mut ws).await["seq"], 1);
    let snap = subscribe(&mut ws, "a").await;
    assert_eq!(snap["seq"], 1);
    assert_eq!(snap["frames"].as_array().unwrap().len(), 1);

    send_json(
        &mut ws,
        serde_json::json!({"type": "unsubscribe", "topics": ["a", "zzz"], "id": 9}),
    )
    .await;
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "unsubscribed");
    assert_eq!(ack["topics"], serde_json::json!(["a"]));
    assert_eq!(ack["id"], 9);
    server.publish("a", 1, 2.0);
    subscribe(&mut ws, "b").await;
    server.publish("b", 1, 3.0);
    let next = next_json(&mut ws).await;
    assert_eq!(
        (next["topic"].as_str(), next["seq"].as_u64()),
        (Some("b"), Some(1))
    );
}

#[tokio::test]
async fn ping_gets_pong_with_the_same_t() {
    let server = start(TransportConfig::default()).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    send_json(&mut ws, serde_json::json!({"type": "ping", "t": 12345})).await;
    let pong = next_json(&mut ws).await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["t"], 12345);
}
