//! Topics in the URL (`?topics=`) pass the same check as topics in a
//! `subscribe` message: an invalid one refuses the WebSocket upgrade (and
//! the SSE request) with HTTP 400 and the very message the `error` frame
//! carries, before anything is subscribed.
#![cfg(all(feature = "axum", feature = "sse"))]

mod common;

use std::net::SocketAddr;

use common::*;
use rtdash_transport::{FrameHub, Transport, TransportConfig};
use serde_json::{Value, json};

/// The invalid topics of the probe, as they go into a URL and as they are.
fn bad_topics() -> Vec<(String, String)> {
    let long = "x".repeat(5_000);
    vec![
        (long.clone(), long),
        ("ctl%01x".to_owned(), "ctl\u{1}x".to_owned()),
    ]
}

/// The `error` frame a `subscribe` message naming `topic` gets.
async fn subscribe_error(url: &str, topic: &str) -> Value {
    let (mut ws, _) = hello(url, "good").await;
    send_json(
        &mut ws,
        json!({"type": "subscribe", "topics": [topic], "id": 1}),
    )
    .await;
    let err = next_json(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("bad_request")),
        "{err}"
    );
    err
}

#[tokio::test]
async fn invalid_url_topics_refuse_the_standalone_upgrade() {
    let server = start(TransportConfig::default()).await;
    for (encoded, raw) in bad_topics() {
        let (status, body) =
            expect_refused(server.url(&format!("?token=good&topics=ok,{encoded}"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request"))
        );
        let err = subscribe_error(&server.url(""), &raw).await;
        assert_eq!(body["error"]["message"], err["message"]);
        assert!(
            body["error"]["message"].as_str().unwrap().len() < 200,
            "{body}"
        );
    }
    // Nothing was subscribed, not even the valid topic before the bad one.
    assert_eq!(server.transport.hub().stats().topics, 0);
    // Valid URL topics still work.
    let mut ws = connect(&server.url("?token=good&topics=ok")).await;
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
}

async fn start_axum() -> (SocketAddr, Transport<u32>) {
    let transport = Transport::new(FrameHub::default(), tokens(), TransportConfig::default());
    let app: axum::Router = axum::Router::new()
        .route("/ws", transport.ws_route())
        .route("/events", transport.sse_route());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, transport)
}

#[tokio::test]
async fn invalid_url_topics_refuse_the_axum_upgrade() {
    let (addr, transport) = start_axum().await;
    for (encoded, raw) in bad_topics() {
        let (status, body) =
            expect_refused(format!("ws://{addr}/ws?token=good&topics=ok,{encoded}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request"))
        );
        let err = subscribe_error(&format!("ws://{addr}/ws"), &raw).await;
        assert_eq!(body["error"]["message"], err["message"]);
    }
    assert_eq!(transport.hub().stats().topics, 0);
}

#[tokio::test]
async fn invalid_url_topics_refuse_the_sse_request() {
    let (addr, transport) = start_axum().await;
    for (encoded, raw) in bad_topics() {
        let resp = reqwest::get(format!(
            "http://{addr}/events?token=good&topics=ok,{encoded}"
        ))
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        let err = subscribe_error(&format!("ws://{addr}/ws"), &raw).await;
        assert_eq!(body["error"]["message"], err["message"]);
    }
    assert_eq!(transport.hub().stats().topics, 0);
}
