//! HS256 JWT authentication end to end (feature `jwt`).
#![cfg(all(feature = "jwt", feature = "ws"))]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use rtdash_transport::{JwtAuthenticator, TransportConfig};
use serde_json::json;

const SECRET: &[u8] = b"test secret that is long enough!";

#[tokio::test]
async fn jwt_grants_listed_topics_and_expires() {
    let auth = JwtAuthenticator::hs256(SECRET);
    let token = auth
        .issue("erin", &["ops"], SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    let server = start_with(TransportConfig::default(), auth.clone()).await;
    let (mut ws, welcome) = hello(&server.url(""), &token).await;
    assert_eq!(welcome["subject"], "erin");
    subscribe(&mut ws, "ops").await;
    send_json(&mut ws, json!({"type": "subscribe", "topics": ["hr"]})).await;
    assert_eq!(next_json(&mut ws).await["code"], "forbidden");
    // `exp` has one-second resolution: the session ends within ~2 s.
    assert_eq!(expect_close(&mut ws).await, 4009);

    let forged = JwtAuthenticator::hs256(b"some other secret, 32 bytes long")
        .issue(
            "mallory",
            &["*"],
            SystemTime::now() + Duration::from_secs(60),
        )
        .unwrap();
    let mut ws = connect(&server.url(&format!("?token={forged}"))).await;
    assert_eq!(expect_close(&mut ws).await, 4001);

    let old = auth
        .issue(
            "erin",
            &["ops"],
            SystemTime::now() - Duration::from_secs(30),
        )
        .unwrap();
    let mut ws = connect(&server.url(&format!("?token={old}"))).await;
    assert_eq!(expect_close(&mut ws).await, 4009);
}
