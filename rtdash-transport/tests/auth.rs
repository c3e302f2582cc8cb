//! Authentication before any data flows: hello, URL token, header token,
//! bad and expired tokens, hello timeout, messages before hello.
#![cfg(feature = "ws")]

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use rtdash_transport::TransportConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn hello_with_a_good_token_is_welcomed() {
    let server = start(TransportConfig::default()).await;
    let (_ws, welcome) = hello(&server.url(""), "good").await;
    assert_eq!(welcome["subject"], "alice");
    assert!(welcome["heartbeat_ms"].as_u64().is_some());
    assert!(welcome["server_time"].as_i64().is_some());
    assert!(welcome.get("expires_at").is_none());
}

#[tokio::test]
async fn token_in_the_url_skips_hello() {
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("?token=good&topics=a,b")).await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let s1 = next_json(&mut ws).await;
    let s2 = next_json(&mut ws).await;
    assert_eq!(
        (s1["type"].as_str(), s1["topic"].as_str()),
        (Some("snapshot"), Some("a"))
    );
    assert_eq!(
        (s2["type"].as_str(), s2["topic"].as_str()),
        (Some("snapshot"), Some("b"))
    );
}

#[tokio::test]
async fn token_in_the_authorization_header() {
    let server = start(TransportConfig::default()).await;
    let mut req = server.url("").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer limited".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["subject"], "bob");
}

#[tokio::test]
async fn bad_token_closes_with_4001() {
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("")).await;
    send_json(&mut ws, json!({"type": "hello", "token": "wrong"})).await;
    assert_eq!(expect_close(&mut ws).await, 4001);
    let mut ws = connect(&server.url("?token=wrong")).await;
    assert_eq!(expect_close(&mut ws).await, 4001);
    assert_eq!(server.transport.stats().auth_failures, 2);
}

#[tokio::test]
async fn expired_token_closes_with_4009() {
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("")).await;
    send_json(&mut ws, json!({"type": "hello", "token": "expired"})).await;
    assert_eq!(expect_close(&mut ws).await, 4009);
}

#[tokio::test]
async fn no_hello_in_time_closes_with_4002() {
    let config = TransportConfig::default().with_hello_timeout(Duration::from_millis(200));
    let server = start(config).await;
    let mut ws = connect(&server.url("")).await;
    assert_eq!(expect_close(&mut ws).await, 4002);
}

#[tokio::test]
async fn anything_but_hello_first_closes_with_4000() {
    let server = start(TransportConfig::default()).await;
    let mut ws = connect(&server.url("")).await;
    send_json(&mut ws, json!({"type": "subscribe", "topics": ["a"]})).await;
    assert_eq!(expect_close(&mut ws).await, 4000);
    let mut ws = connect(&server.url("")).await;
    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, 4000);
    let mut ws = connect(&server.url("")).await;
    send_json(&mut ws, json!({"type": "hello"})).await;
    assert_eq!(expect_close(&mut ws).await, 4000);
    let mut ws = connect(&server.url("")).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(expect_close(&mut ws).await, 1003);
}

#[tokio::test]
async fn second_hello_is_an_error_frame() {
    let server = start(TransportConfig::default()).await;
    let (mut ws, _) = hello(&server.url(""), "good").await;
    send_json(&mut ws, json!({"type": "hello", "token": "good"})).await;
    let err = next_json(&mut ws).await;
    assert_eq!(err["code"], "already_authenticated");
}
