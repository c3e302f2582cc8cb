//! Subscriptions outside the principal's rights get an error frame; the
//! session goes on. The subscription limit is enforced the same way.
#![cfg(feature = "ws")]

mod common;

use std::num::NonZeroUsize;

use common::*;
use rtdash_transport::TransportConfig;
use serde_json::json;

#[tokio::test]
async fn forbidden_topic_gets_an_error_frame_and_the_session_goes_on() {
    let server = start(TransportConfig::default()).await;
    let (mut ws, _) = hello(&server.url(""), "limited").await;
    send_json(
        &mut ws,
        json!({"type": "subscribe", "topics": ["secret"], "id": 4}),
    )
    .await;
    let err = next_json(&mut ws).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["topic"], "secret");
    assert_eq!(err["id"], 4);
    server.publish("secret", 1, 1.0);
    // Allowed topics, exact and by prefix, still work.
    subscribe(&mut ws, "allowed").await;
    subscribe(&mut ws, "team.ops").await;
    server.publish("team.ops", 1, 2.0);
    let up = next_json(&mut ws).await;
    assert_eq!(
        (up["type"].as_str(), up["topic"].as_str()),
        (Some("update"), Some("team.ops"))
    );
    assert_eq!(server.transport.hub().subscriber_count(&"secret".into()), 0);
}

#[tokio::test]
async fn subscriptions_beyond_the_limit_are_refused() {
    let config = TransportConfig::default().with_max_subscriptions(NonZeroUsize::new(2).unwrap());
    let server = start(config).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    send_json(
        &mut ws,
        json!({"type": "subscribe", "topics": ["a", "b", "c"]}),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let v = next_json(&mut ws).await;
        got.push((
            v["type"].as_str().unwrap().to_owned(),
            v["topic"].as_str().unwrap().to_owned(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("error".to_owned(), "c".to_owned()),
            ("snapshot".to_owned(), "a".to_owned()),
            ("snapshot".to_owned(), "b".to_owned()),
        ]
    );
}
