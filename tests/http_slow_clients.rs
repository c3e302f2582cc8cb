//! `rtdash::http::serve` bounds what slow and greedy clients hold (issue #11, hole 3):
//! headers that never finish and bodies trickled a byte at a time are cut off at their
//! deadlines, and one peer address cannot hold more than its share of connections.
#![cfg(feature = "http")]

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use rtdash::http::{ServeConfig, serve};
use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

async fn start(config: ServeConfig) -> SocketAddr {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let app = rtdash::http::router(engine, AllowAll, TransportConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, config, std::future::pending()));
    addr
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(s: &mut TcpStream) -> (String, Instant) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                return (String::from_utf8_lossy(&out).into_owned(), Instant::now());
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

async fn health(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    until_closed(&mut s).await.0
}

#[tokio::test]
async fn unfinished_headers_are_cut_off() {
    let addr =
        start(ServeConfig::default().with_header_read_timeout(Duration::from_millis(400))).await;
    // Half a request line and a header, then nothing; and a connection that sends nothing.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (_, closed) = until_closed(&mut half).await;
    assert!(closed - started < Duration::from_secs(3));
    let (sent, _) = until_closed(&mut silent).await;
    assert!(!sent.contains("200 OK"), "{sent}");
    // A client that finishes in time is served.
    assert!(health(addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_trickled_body_is_cut_off() {
    let addr =
        start(ServeConfig::default().with_body_read_timeout(Duration::from_millis(500))).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
    )
    .await
    .unwrap();
    let started = Instant::now();
    // One byte every 100 ms would take 100 s; the server must answer and close long before.
    let (mut r, mut w) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if w.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, r.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept reading the trickle: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    trickle.abort();
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.starts_with("HTTP/1.1 200"),
        "a trickled body must not be accepted: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The server is still there for others.
    assert!(health(addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_peer_holds_at_most_its_share_of_connections() {
    let addr = start(
        ServeConfig::default()
            .with_max_connections_per_peer(NonZeroUsize::new(3).unwrap())
            .with_header_read_timeout(Duration::from_secs(30)),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept the three.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The fourth is closed at once, without an answer.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (sent, _) = until_closed(&mut fourth).await;
    assert!(sent.is_empty(), "{sent}");
    // One of the three leaves: a new connection is served.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(health(addr).await.starts_with("HTTP/1.1 200"));
}
