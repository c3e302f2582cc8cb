//! Server-Sent Events through an axum router, read with a real HTTP client
//! (reqwest): subscribe by URL, snapshot then updates, resume with
//! `Last-Event-ID`, HTTP refusals, going-away on shutdown.
#![cfg(all(feature = "sse", feature = "ws"))]

mod common;

use std::num::NonZeroUsize;
use std::time::Duration;

use common::{WAIT, publish, tokens};
use futures::StreamExt;
use rtdash_transport::{FrameHub, Transport, TransportConfig};
use serde_json::Value;

struct SseServer {
    base: String,
    transport: Transport<u32>,
}

async fn start(config: TransportConfig) -> SseServer {
    let transport = Transport::new(FrameHub::default(), tokens(), config);
    let app: axum::Router = axum::Router::new().route("/events", transport.sse_route());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    SseServer { base, transport }
}

/// One parsed SSE event: its `id` (if any) and its JSON data.
#[derive(Debug)]
struct SseEvent {
    id: Option<String>,
    data: Value,
}

struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseClient {
    async fn open(url: &str, last_event_id: Option<&str>) -> Result<Self, (u16, Value)> {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        if status != 200 {
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            return Err((status, body));
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Ok(Self {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
        })
    }

    /// Next event with data (comments skipped); `None` at end of stream.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent {
                    id,
                    data: serde_json::from_str(&data).expect("JSON data"),
                });
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("timed out")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.expect("body")).unwrap());
        }
    }
}

#[tokio::test]
async fn snapshot_then_updates_with_resume_ids() {
    let server = start(TransportConfig::default()).await;
    let hub = server.transport.hub();
    publish(hub, "a", 1, 1.0);
    publish(hub, "a", 2, 2.0);
    let url = format!("{}/events?topics=a,b&token=good", server.base);
    let mut c = SseClient::open(&url, None).await.unwrap();
    assert_eq!(c.next().await.unwrap().data["type"], "welcome");
    let mut snaps = Vec::new();
    for _ in 0..2 {
        let e = c.next().await.unwrap();
        assert_eq!(e.data["type"], "snapshot");
        snaps.push((
            e.data["topic"].as_str().unwrap().to_owned(),
            e.data["seq"].as_u64().unwrap(),
            e.id.unwrap(),
        ));
    }
    snaps.sort();
    assert_eq!((snaps[0].0.as_str(), snaps[0].1), ("a", 2));
    assert_eq!((snaps[1].0.as_str(), snaps[1].1), ("b", 0));
    publish(hub, "b", 1, 3.0);
    let e = c.next().await.unwrap();
    assert_eq!(
        (e.data["type"].as_str(), e.data["topic"].as_str()),
        (Some("update"), Some("b"))
    );
    let id = e.id.unwrap();
    assert!(id.ends_with(":2,1"), "{id}");
    drop(c);

    // Meanwhile: w1 of `a` changes; then the client resumes from `id`.
    publish(hub, "a", 1, 10.0);
    let mut c = SseClient::open(&url, Some(&id)).await.unwrap();
    assert_eq!(c.next().await.unwrap().data["type"], "welcome");
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(c.next().await.unwrap().data);
    }
    got.sort_by_key(|v| v["topic"].as_str().unwrap().to_owned());
    // Only what changed since the id: one frame for `a`, nothing for `b`.
    assert_eq!(got[0]["since"], 2);
    assert_eq!(got[0]["frames"].as_array().unwrap().len(), 1);
    assert_eq!(got[0]["frames"][0]["items"][0]["value"], 10.0);
    assert_eq!(got[1]["since"], 1);
    assert_eq!(got[1]["frames"].as_array().unwrap().len(), 0);

    // An id from another server instance (or garbage) gets full snapshots.
    let mut c = SseClient::open(&url, Some("12345:9,9")).await.unwrap();
    c.next().await.unwrap();
    let snap = c.next().await.unwrap().data;
    assert!(snap.get("since").is_none());
}

#[tokio::test]
async fn refusals_are_http_errors() {
    let config = TransportConfig::default().with_max_connections(NonZeroUsize::new(1).unwrap());
    let server = start(config).await;
    let b = &server.base;
    let (status, body) = SseClient::open(&format!("{b}/events?topics=a&token=nope"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth_failed"))
    );
    let (status, body) = SseClient::open(&format!("{b}/events?topics=a&token=expired"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_expired"))
    );
    let (status, _) = SseClient::open(&format!("{b}/events?topics=a"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    let (status, body) = SseClient::open(&format!("{b}/events?topics=secret&token=limited"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = SseClient::open(&format!("{b}/events?token=good"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 400);
    let bad_topic = format!("{b}/events?token=good&topics=%01");
    assert_eq!(
        SseClient::open(&bad_topic, None).await.err().unwrap().0,
        400
    );

    let mut first = SseClient::open(&format!("{b}/events?topics=allowed&token=limited"), None)
        .await
        .unwrap();
    first.next().await.unwrap();
    let (status, body) = SseClient::open(&format!("{b}/events?topics=a&token=good"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("try_again_later"))
    );
}

#[tokio::test]
async fn shutdown_ends_the_stream_with_a_going_away_frame() {
    let server =
        start(TransportConfig::default().with_heartbeat_interval(Duration::from_millis(50))).await;
    let mut c = SseClient::open(&format!("{}/events?topics=a&token=good", server.base), None)
        .await
        .unwrap();
    c.next().await.unwrap();
    c.next().await.unwrap();
    server.transport.shutdown().await;
    let last = c.next().await.unwrap().data;
    assert_eq!(
        (last["type"].as_str(), last["code"].as_u64()),
        (Some("closing"), Some(1001))
    );
    assert!(c.next().await.is_none(), "stream ends");
}
