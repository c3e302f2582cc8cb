//! `error` frames about a request echo the request's `id` whenever one can
//! be read from it, even when the rest of the message is bad.
#![cfg(feature = "ws")]

mod common;

use common::*;
use futures::SinkExt;
use rtdash_transport::TransportConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn error_frames_echo_the_request_id() {
    let server = start(TransportConfig::default()).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    let cases = [
        (
            r#"{"type":"subscribe","topics":"t","id":7}"#,
            "bad_request",
            json!(7),
        ),
        (
            r#"{"type":"subscribe","topics":[],"id":"a"}"#,
            "bad_request",
            json!("a"),
        ),
        (
            r#"{"type":"unsubscribe","topics":["\u0001"],"id":[1,2]}"#,
            "bad_request",
            json!([1, 2]),
        ),
        (r#"{"type":5,"id":{"n":1}}"#, "bad_request", json!({"n": 1})),
        (r#"{"id":3}"#, "bad_request", json!(3)),
        (r#"{"type":"teleport","id":4}"#, "unknown_type", json!(4)),
        (
            r#"{"type":"hello","token":"good","id":"again"}"#,
            "already_authenticated",
            json!("again"),
        ),
    ];
    for (text, code, id) in cases {
        ws.send(Message::text(text)).await.unwrap();
        let err = next_json(&mut ws).await;
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some(code)),
            "{text}: {err}"
        );
        assert_eq!(err["id"], id, "{text}: {err}");
    }
    // No id to read: none is made up.
    for text in ["garbage", "[1]", r#"{"type":"teleport"}"#] {
        ws.send(Message::text(text)).await.unwrap();
        let err = next_json(&mut ws).await;
        assert_eq!(err["type"], "error", "{text}: {err}");
        assert!(err.get("id").is_none(), "{text}: {err}");
    }
}
