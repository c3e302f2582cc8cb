//! Heartbeats: the server pings; a client that answers stays, one that
//! sends nothing for `idle_timeout` is closed with 4002.
#![cfg(feature = "ws")]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use rtdash_transport::TransportConfig;
use tokio_tungstenite::tungstenite::Message;

fn config() -> TransportConfig {
    TransportConfig::default()
        .with_heartbeat_interval(Duration::from_millis(100))
        .with_idle_timeout(Duration::from_millis(600))
}

#[tokio::test]
async fn pings_keep_a_responsive_client_alive() {
    let server = start(config()).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    // tokio-tungstenite answers each ping with a pong while we read.
    let mut pings = 0;
    while pings < 12 {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Ping(_) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Well past idle_timeout, the session is still open.
    subscribe(&mut ws, "t").await;
}

#[tokio::test]
async fn silent_client_is_closed_with_4002() {
    let server = start(config()).await;
    let mut raw = RawClient::connect(server.addr, "?token=good").await;
    // Reads (so it is not a slow consumer) but never answers the pings.
    assert_eq!(raw.read_until_close().await, 4002);
}
