//! A token that expires during the session closes it with 4009 at expiry.
#![cfg(feature = "ws")]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use rtdash_transport::{Principal, StaticTokens, TopicAccess, TransportConfig};

#[tokio::test]
async fn session_closes_when_its_token_expires() {
    let auth = StaticTokens::new().with_token(
        "short",
        Principal::new("dave", TopicAccess::all())
            .with_expires_at(SystemTime::now() + Duration::from_millis(700)),
    );
    let server = start_with(TransportConfig::default(), auth).await;
    let (mut ws, welcome) = hello(&server.url(""), "short").await;
    assert!(welcome["expires_at"].as_i64().is_some());
    subscribe(&mut ws, "a").await;
    server.publish("a", 1, 1.0);
    assert_eq!(next_json(&mut ws).await["type"], "update");
    assert_eq!(expect_close(&mut ws).await, 4009);
}
