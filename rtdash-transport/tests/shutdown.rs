//! Graceful shutdown: stop accepting, send going-away (1001) to every
//! session, finish.
#![cfg(feature = "ws")]

mod common;

use common::*;
use rtdash_transport::TransportConfig;

#[tokio::test]
async fn shutdown_sends_going_away_and_stops_accepting() {
    let mut server = start(TransportConfig::default()).await;
    let (mut subscribed, _) = hello(&server.url(""), "good").await;
    subscribe(&mut subscribed, "t").await;
    let (mut idle, _) = hello(&server.url(""), "limited").await;
    // Connected but not yet authenticated.
    let mut unauthenticated = connect(&server.url("")).await;
    eventually("three connections", || {
        server.transport.active_connections() == 3
    })
    .await;

    server.stop();
    assert_eq!(expect_close(&mut subscribed).await, 1001);
    assert_eq!(expect_close(&mut idle).await, 1001);
    assert_eq!(expect_close(&mut unauthenticated).await, 1001);
    tokio::time::timeout(WAIT, &mut server.handle)
        .await
        .expect("serve returns after shutdown")
        .expect("serve task");
    assert!(server.transport.is_shutting_down());
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "listener closed"
    );
    eventually("all sessions ended", || {
        server.transport.active_connections() == 0
    })
    .await;
}
