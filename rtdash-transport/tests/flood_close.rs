//! A client flooding messages past `client_rate` gets a close frame 1008
//! and a completed close handshake, not a TCP reset, however much it sent
//! before reading.
#![cfg(feature = "ws")]

mod common;

use std::num::NonZeroU32;

use common::*;
use futures::SinkExt;
use rtdash_transport::TransportConfig;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_flooding_client_gets_1008_not_a_reset() {
    let config = TransportConfig::default()
        .with_client_rate(NonZeroU32::new(1).unwrap(), NonZeroU32::new(5).unwrap());
    let server = start(config).await;
    for round in 0..5 {
        let (mut ws, _) = hello(&server.url(""), "good").await;
        subscribe(&mut ws, "t").await;
        // Far past the burst, without reading, as fast as the socket takes it.
        for _ in 0..20_000 {
            if ws.feed(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                break;
            }
        }
        let _ = ws.flush().await;
        assert_eq!(expect_clean_close(&mut ws).await, 1008, "round {round}");
    }
}
