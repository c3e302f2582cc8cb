//! The write-latency observer: after each socket write it is told, per data
//! frame with an event time, how long ago that event was.
#![cfg(feature = "ws")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use rtdash_transport::{
    AlertCondition, AlertState, AlertValue, Frame, TransportConfig, WidgetValue, encode_alert,
    encode_update, unix_millis,
};

/// One update of `topic` whose value's event happened `age` ago.
fn update_aged(server: &TestServer, topic: &str, age: Duration, stale: bool) {
    let now = unix_millis(SystemTime::now());
    let event = now - i64::try_from(age.as_millis()).unwrap();
    let topic_arc: rtdash_transport::Topic = topic.into();
    server.transport.hub().publish_with(&topic_arc, [1], |seq| {
        encode_update(
            topic,
            seq,
            now,
            &[WidgetValue {
                widget: "w1",
                value: Some(1.0),
                window_end: now,
                event_time: Some(event),
                stale,
                count: 1,
                groups: None,
            }],
        )
    });
}

#[test]
fn update_frames_carry_the_newest_fresh_event_time() {
    let item = |event_time, stale| WidgetValue {
        widget: "w",
        value: Some(1.0),
        window_end: 0,
        event_time,
        stale,
        count: 1,
        groups: None,
    };
    let f = encode_update("t", 1, 0, &[item(Some(5), false), item(Some(9), false)]);
    assert_eq!(f.event_time(), Some(9));
    // A stale value's old event does not count; nor does a value without one.
    let f = encode_update("t", 1, 0, &[item(Some(9), true), item(None, false)]);
    assert_eq!(f.event_time(), None);
    // The tag is not part of the text.
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
        encode_alert(
            "dash",
            seq,
            0,
            &AlertValue {
                rule_id: "r",
                widget: "w1",
                state: AlertState::Firing,
                value: Some(1.0),
                condition: AlertCondition::Above,
                threshold: 0.0,
                group: None,
                at: 0,
                message: "m",
            },
        )
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
