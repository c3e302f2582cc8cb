//! Garbage, malformed JSON, unknown types, binary and oversized frames each
//! get their documented answer, and the server keeps serving other clients.
#![cfg(feature = "ws")]

mod common;

use std::num::NonZeroU32;
use std::num::NonZeroUsize;

use common::*;
use futures::SinkExt;
use rtdash_transport::TransportConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A healthy client on topic `t`, and a check that it still gets updates.
async fn healthy(server: &TestServer) -> Ws {
    let (mut ws, _) = hello(&server.url(""), "good").await;
    subscribe(&mut ws, "t").await;
    ws
}

async fn still_served(server: &TestServer, ws: &mut Ws) {
    let seq = server.publish("t", 1, 1.0);
    let v = next_json(ws).await;
    assert_eq!(
        (v["type"].as_str(), v["seq"].as_u64()),
        (Some("update"), Some(seq))
    );
}

#[tokio::test]
async fn garbage_malformed_and_unknown_get_error_frames() {
    let server = start(TransportConfig::default()).await;
    let mut other = healthy(&server).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    let cases = [
        ("\u{1}\u{2}garbage", "bad_request"),
        ("{\"type\":\"subscribe\",\"topics\":[", "bad_request"),
        ("[1,2,3]", "bad_request"),
        ("{\"type\":\"subscribe\",\"topics\":\"t\"}", "bad_request"),
        ("{\"type\":\"subscribe\",\"topics\":[\"\"]}", "bad_request"),
        ("{\"type\":\"teleport\",\"to\":\"mars\"}", "unknown_type"),
        ("", "bad_request"),
    ];
    for (text, code) in cases {
        ws.send(Message::text(text)).await.unwrap();
        let err = next_json(&mut ws).await;
        assert_eq!(err["type"], "error", "{text:?}");
        assert_eq!(err["code"], code, "{text:?}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
        still_served(&server, &mut other).await;
    }
    // The offender's own session still works too.
    subscribe(&mut ws, "t").await;
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let server = start(TransportConfig::default()).await;
    let mut other = healthy(&server).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    ws.send(Message::binary(vec![0u8; 10])).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, 1003);
    still_served(&server, &mut other).await;
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let config =
        TransportConfig::default().with_max_message_bytes(NonZeroUsize::new(1024).unwrap());
    let server = start(config).await;
    let mut other = healthy(&server).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    let big = json!({"type": "ping", "t": "x".repeat(4096)}).to_string();
    ws.send(Message::text(big)).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, 1009);
    still_served(&server, &mut other).await;

    // A huge declared length is refused from the header alone.
    let mut raw = RawClient::connect(server.addr, "?token=good").await;
    let (op, _) = raw.read_frame().await; // welcome
    assert_eq!(op, 0x1);
    let mut header = vec![0x81u8, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    tokio::io::AsyncWriteExt::write_all(&mut raw.stream, &header)
        .await
        .unwrap();
    assert_eq!(raw.read_until_close().await, 1009);
    still_served(&server, &mut other).await;
}

#[tokio::test]
async fn flooding_messages_closes_with_1008() {
    let config = TransportConfig::default()
        .with_client_rate(NonZeroU32::new(1).unwrap(), NonZeroU32::new(5).unwrap());
    let server = start(config).await;
    let mut other = healthy(&server).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    for _ in 0..20 {
        if ws.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
            break;
        }
    }
    assert_eq!(expect_close(&mut ws).await, 1008);
    still_served(&server, &mut other).await;
}
