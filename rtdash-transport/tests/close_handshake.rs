//! A client's close frame is answered with a close frame echoing its code
//! (RFC 6455 section 5.5.1), then the server closes the TCP connection: the
//! client sees a completed close handshake, not 1006.
#![cfg(feature = "ws")]

mod common;

use common::*;
use rtdash_transport::TransportConfig;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn close_frame(code: u16) -> Option<CloseFrame> {
    Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "bye".into(),
    })
}

#[tokio::test]
async fn a_client_close_is_answered_with_the_same_code() {
    let server = start(TransportConfig::default()).await;
    for code in [1000, 1001, 4321] {
        let (mut ws, _) = hello(&server.url(""), "good").await;
        subscribe(&mut ws, "t").await;
        ws.close(close_frame(code)).await.unwrap();
        assert_eq!(expect_clean_close(&mut ws).await, code);
    }
}

#[tokio::test]
async fn a_close_before_hello_is_answered_too() {
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("")).await;
    ws.close(close_frame(1000)).await.unwrap();
    assert_eq!(expect_clean_close(&mut ws).await, 1000);
}

#[tokio::test]
async fn the_server_waits_for_the_client_close_after_its_own() {
    // The server closes first (4000, no hello): the client's reply completes
    // the handshake and the stream ends cleanly.
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("")).await;
    send_json(&mut ws, serde_json::json!({"type": "ping"})).await;
    assert_eq!(expect_clean_close(&mut ws).await, 4000);
}
