//! Connections beyond `max_connections` are refused with 1013.
#![cfg(feature = "ws")]

mod common;

use std::num::NonZeroUsize;

use common::*;
use rtdash_transport::TransportConfig;

#[tokio::test]
async fn extra_connection_is_refused_with_1013() {
    let config = TransportConfig::default().with_max_connections(NonZeroUsize::new(2).unwrap());
    let server = start(config).await;
    let (a, _) = hello(&server.url(""), "good").await;
    let (mut b, _) = hello(&server.url(""), "good").await;
    let mut c = connect(&server.url("")).await;
    assert_eq!(expect_close(&mut c).await, 1013);
    assert_eq!(server.transport.stats().refused, 1);

    // A slot frees up when a client leaves.
    drop(a);
    eventually("slot released", || {
        server.transport.active_connections() == 1
    })
    .await;
    let (_d, welcome) = hello(&server.url(""), "good").await;
    assert_eq!(welcome["type"], "welcome");
    // The remaining client is unaffected.
    subscribe(&mut b, "t").await;
}
