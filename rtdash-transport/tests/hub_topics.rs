//! Over a real socket: topics a client subscribes and unsubscribes do not
//! stay in the hub (its topic count returns to the baseline, also after the
//! connection closes), and past the hub's `max_topics` a new name gets an
//! `error` frame `too_many_topics` while the session goes on.
#![cfg(feature = "ws")]

mod common;

use std::num::{NonZeroU32, NonZeroUsize};

use common::*;
use rtdash_transport::{FrameHub, TransportConfig};
use serde_json::json;

fn unlimited_rate() -> TransportConfig {
    let n = NonZeroU32::new(100_000).unwrap();
    TransportConfig::default().with_client_rate(n, n)
}

#[tokio::test]
async fn fresh_topic_names_do_not_grow_the_hub() {
    let server = start(unlimited_rate()).await;
    server.publish("kept", 1, 1.0);
    let hub = server.transport.hub();
    let baseline = hub.stats().topics;
    assert_eq!(baseline, 1);

    let (mut ws, _) = hello(&server.url(""), "good").await;
    for i in 0..300 {
        let name = format!("probe-{i}");
        subscribe(&mut ws, &name).await;
        send_json(&mut ws, json!({"type": "unsubscribe", "topics": [name]})).await;
        let v = next_json(&mut ws).await;
        assert_eq!(v["type"], "unsubscribed", "{v}");
    }
    assert_eq!(hub.stats().topics, baseline);

    // Names still subscribed when the client closes go too.
    let names: Vec<String> = (0..40).map(|i| format!("held-{i}")).collect();
    send_json(&mut ws, json!({"type": "subscribe", "topics": names})).await;
    for _ in 0..40 {
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    }
    assert_eq!(hub.stats().topics, baseline + 40);
    ws.close(None).await.unwrap();
    // The session has dropped its subscription before it answers the close.
    expect_clean_close(&mut ws).await;
    assert_eq!(hub.stats().topics, baseline);
    // The published topic kept its value and its sequence.
    assert_eq!(server.publish("kept", 1, 2.0), 2);
}

#[tokio::test]
async fn past_max_topics_a_new_name_gets_an_error_frame() {
    let hub = FrameHub::new(
        rtdash_fanout::HubConfig::default().with_max_topics(NonZeroUsize::new(3).unwrap()),
    );
    let server = start_with_hub(unlimited_rate(), tokens(), hub).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    for t in ["a", "b", "c"] {
        subscribe(&mut ws, t).await;
    }
    send_json(
        &mut ws,
        json!({"type": "subscribe", "topics": ["d"], "id": 9}),
    )
    .await;
    let err = next_json(&mut ws).await;
    assert_eq!(
        (
            err["type"].as_str(),
            err["code"].as_str(),
            err["topic"].as_str()
        ),
        (Some("error"), Some("too_many_topics"), Some("d")),
        "{err}"
    );
    assert_eq!(err["id"], 9);
    // The session goes on; freeing a topic makes room.
    send_json(&mut ws, json!({"type": "unsubscribe", "topics": ["a"]})).await;
    assert_eq!(next_json(&mut ws).await["type"], "unsubscribed");
    subscribe(&mut ws, "d").await;
    assert_eq!(server.transport.hub().stats().topics, 3);
}
