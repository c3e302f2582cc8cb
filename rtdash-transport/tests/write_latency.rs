//! The write-latency observer: after each socket write it is told, per data
//! frame with an event time, how long ago that event was.
#![cfg(feature = "ws")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use rtdash_transport::{Frame, TransportConfig, unix_millis};
use serde_json::json;

/// One update of `topic` whose value's event happened `age` ago; a stale value's frame
/// is not tagged with its event time (as the rtdash facade encodes them).
fn update_aged(server: &TestServer, topic: &str, age: Duration, stale: bool) {
    let now = unix_millis(SystemTime::now());
    let event = now - i64::try_from(age.as_millis()).unwrap();
    let topic_arc: rtdash_transport::Topic = topic.into();
    server.transport.hub().publish_with(&topic_arc, [1], |seq| {
        let frame = update_frame(topic, seq, event, &[("w1", Some(1.0))]);
        frame.with_event_time((!stale).then_some(event))
    });
}

#[test]
fn the_event_time_tag_is_not_part_of_the_text() {
    let tagged = Frame::from_static("{}").with_event_time(Some(3));
    assert_eq!(tagged.as_str(), "{}");
    assert_eq!(tagged.event_time(), Some(3));
}

#[tokio::test]
async fn observer_hears_event_to_write_time_of_update_frames() {
    let server = start(TransportConfig::default()).await;
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let sink = Arc::clone(&seen);
    assert!(
        server
            .transport
            .observe_write_latency(move |d| sink.lock().unwrap().push(d))
    );
    assert!(
        !server.transport.observe_write_latency(|_| {}),
        "a second observer is refused"
    );

    let (mut ws, _) = hello(&server.url(""), "good").await;
    // The snapshot is not a push: not observed.
    update_aged(&server, "dash", Duration::from_secs(2), false);
    subscribe(&mut ws, "dash").await;
    // Live: a fresh value 1.5 s old, a stale one (no event time), an alert
    // (none either).
    update_aged(&server, "dash", Duration::from_millis(1500), false);
    update_aged(&server, "dash", Duration::from_secs(60), true);
    let topic: rtdash_transport::Topic = "dash".into();
    server.transport.hub().publish_with(&topic, [], |seq| {
        let alert = json!({"type": "alert", "topic": "dash", "seq": seq, "state": "firing"});
        Frame::from_string(alert.to_string())
    });
    for _ in 0..3 {
        next_json(&mut ws).await;
    }
    eventually("one observation", || !seen.lock().unwrap().is_empty()).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0] >= Duration::from_millis(1500) && seen[0] < Duration::from_secs(10),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_event_time_in_the_future_counts_as_zero() {
    let server = start(TransportConfig::default()).await;
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let sink = Arc::clone(&seen);
    server
        .transport
        .observe_write_latency(move |d| sink.lock().unwrap().push(d));
    let (mut ws, _) = hello(&server.url(""), "good").await;
    subscribe(&mut ws, "dash").await;
    let topic: rtdash_transport::Topic = "dash".into();
    server.transport.hub().publish_with(&topic, [1], |seq| {
        Frame::from_static(r#"{"type":"update"}"#).with_event_time(Some(i64::MAX - seq as i64))
    });
    next_json(&mut ws).await;
    eventually("one observation", || !seen.lock().unwrap().is_empty()).await;
    assert_eq!(seen.lock().unwrap().as_slice(), [Duration::ZERO]);
}
