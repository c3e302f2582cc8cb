//! `TransportConfig::with_allowed_origins`: a WebSocket upgrade whose
//! `Origin` is not listed is refused with 403 before the upgrade (standalone
//! listener and axum route); by default any origin is accepted.
#![cfg(feature = "axum")]

mod common;

use common::*;
use rtdash_transport::{FrameHub, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

fn request(url: &str, origin: Option<&str>) -> Request {
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    req
}

fn config() -> TransportConfig {
    TransportConfig::default()
        .with_allowed_origins(["https://dash.example", "http://localhost:8080"])
}

/// `url` refuses unlisted origins and accepts listed ones.
async fn check(url: &str) {
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let (status, body) = expect_refused(request(url, origin)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{origin:?}: {body}"
        );
        // The API's error shape, not the protocol's frame.
        assert!(body.get("type").is_none(), "{body}");
    }
    for origin in ["https://dash.example", "HTTP://LOCALHOST:8080"] {
        let (mut ws, _) = tokio_tungstenite::connect_async(request(url, Some(origin)))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_eq!(next_json(&mut ws).await["type"], "welcome");
    }
}

#[tokio::test]
async fn the_standalone_listener_checks_the_origin() {
    let server = start(config()).await;
    check(&server.url("?token=good")).await;
    assert_eq!(server.transport.stats().sessions, 2);
}

#[tokio::test]
async fn the_axum_route_checks_the_origin() {
    let transport = Transport::new(FrameHub::<u32>::default(), tokens(), config());
    let app: axum::Router = axum::Router::new().route("/ws", transport.ws_route());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    check(&format!("ws://{addr}/ws?token=good")).await;
    assert_eq!(transport.stats().sessions, 2);
}

#[tokio::test]
async fn any_origin_is_accepted_by_default() {
    let server = start(TransportConfig::default()).await;
    assert!(TransportConfig::default().allowed_origins().is_none());
    let url = server.url("?token=good");
    for origin in [Some("https://evil.example"), None] {
        let (mut ws, _) = tokio_tungstenite::connect_async(request(&url, origin))
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "welcome");
    }
}
