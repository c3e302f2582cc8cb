//! WebSocket sessions mounted in a host's axum router.
#![cfg(feature = "axum")]

mod common;

use common::{connect, expect_close, hello, next_json, publish, subscribe, tokens};
use rtdash_transport::{FrameHub, Transport, TransportConfig};

#[tokio::test]
async fn websocket_route_in_an_axum_router() {
    let transport = Transport::new(FrameHub::default(), tokens(), TransportConfig::default());
    let app: axum::Router = axum::Router::new()
        .route("/ws", transport.ws_route())
        .route("/health", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let (mut ws, _) = hello(&format!("ws://{addr}/ws"), "good").await;
    subscribe(&mut ws, "d").await;
    let seq = publish(transport.hub(), "d", 1, 5.0);
    let up = next_json(&mut ws).await;
    assert_eq!(up["seq"], seq);

    // URL token and topics work here too.
    let mut ws2 = connect(&format!("ws://{addr}/ws?token=good&topics=d")).await;
    assert_eq!(next_json(&mut ws2).await["type"], "welcome");
    assert_eq!(next_json(&mut ws2).await["type"], "snapshot");

    // A plain GET is not an upgrade: 400 with the API's JSON error shape.
    let resp = reqwest::get(format!("http://{addr}/ws")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Connection")),
        "{body}"
    );

    transport.shutdown().await;
    assert_eq!(expect_close(&mut ws).await, 1001);
    assert_eq!(expect_close(&mut ws2).await, 1001);
}
