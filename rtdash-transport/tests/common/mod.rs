//! Shared helpers for the integration tests: a server on 127.0.0.1:0, a
//! tokio-tungstenite client, and a raw TCP WebSocket client that can stop
//! reading.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use rtdash_transport::{
    Authenticator, Frame, FrameHub, Principal, StaticTokens, TopicAccess, Transport,
    TransportConfig, serve, unix_millis,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound so a stuck test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub addr: SocketAddr,
    pub transport: Transport<u32>,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/{query}", self.addr)
    }

    /// Triggers the graceful shutdown future passed to `serve`.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Publishes one update carrying `value` for widget `key`.
    pub fn publish(&self, topic: &str, key: u32, value: f64) -> u64 {
        publish(self.transport.hub(), topic, key, value)
    }
}

pub fn publish(hub: &FrameHub<u32>, topic: &str, key: u32, value: f64) -> u64 {
    let widget = format!("w{key}");
    let now = unix_millis(SystemTime::now());
    let topic_arc: rtdash_transport::Topic = topic.into();
    hub.publish_with(&topic_arc, [key], |seq| {
        update_frame(topic, seq, now, &[(&widget, Some(value))])
    })
}

/// An `update` frame of `(widget, value)` items, every value's event at `event_time`, in
/// the shape of `docs/PROTOCOL.md` (the transport does not look inside; the rtdash facade
/// encodes the real ones), tagged with `event_time` for the write-latency observer.
pub fn update_frame(
    topic: &str,
    seq: u64,
    event_time: i64,
    items: &[(&str, Option<f64>)],
) -> Frame {
    let items: Vec<Value> = items
        .iter()
        .map(|(widget, value)| {
            json!({"widget": widget, "value": value, "window_end": event_time,
                   "event_time": event_time, "stale": false, "count": 1})
        })
        .collect();
    let frame = json!({"type": "update", "topic": topic, "seq": seq, "sent_at": event_time,
                       "items": items});
    Frame::from_string(frame.to_string()).with_event_time(Some(event_time))
}

/// Tokens: `good` (all topics), `limited` (`allowed`, `team.*`),
/// `expired` (already expired).
pub fn tokens() -> StaticTokens {
    StaticTokens::new()
        .with_token("good", Principal::new("alice", TopicAccess::all()))
        .with_token(
            "limited",
            Principal::new("bob", TopicAccess::topics(["allowed", "team.*"])),
        )
        .with_token(
            "expired",
            Principal::new("carol", TopicAccess::all())
                .with_expires_at(SystemTime::now() - Duration::from_secs(5)),
        )
}

pub async fn start(config: TransportConfig) -> TestServer {
    start_with(config, tokens()).await
}

pub async fn start_with(config: TransportConfig, auth: impl Authenticator) -> TestServer {
    start_with_hub(config, auth, FrameHub::default()).await
}

/// A server over `hub` (e.g. one built with a `HubConfig` under test).
pub async fn start_with_hub(
    config: TransportConfig,
    auth: impl Authenticator,
    hub: FrameHub<u32>,
) -> TestServer {
    let transport = Transport::new(hub, auth, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let t = transport.clone();
    let handle = tokio::spawn(async move {
        serve(listener, t, async {
            let _ = rx.await;
        })
        .await;
    });
    TestServer {
        addr,
        transport,
        stop: Some(tx),
        handle,
    }
}

pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect");
    ws
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// Next text frame as JSON (pings and pongs skipped). Panics on close.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("server sent JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code (text frames
/// before it are skipped).
pub async fn expect_close(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for close");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("read error before close frame: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

/// Reads until the server's close frame, then until the end of the stream;
/// returns the close code. Panics if the stream breaks or ends without a
/// close frame (a reset, or a TCP close without the WebSocket close
/// handshake).
pub async fn expect_clean_close(ws: &mut Ws) -> u16 {
    let code = expect_close(ws).await;
    let end = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("timed out waiting for the end of the stream");
    assert!(end.is_none(), "expected the end of the stream, got {end:?}");
    code
}

/// The HTTP refusal of a WebSocket upgrade: status and JSON body. Panics if
/// the upgrade succeeded or failed otherwise.
pub async fn expect_refused(request: impl IntoClientRequest + Unpin) -> (u16, Value) {
    let result = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect timed out");
    match result {
        Err(WsError::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("JSON refusal body"))
                .unwrap_or(Value::Null);
            (status, body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Connects and authenticates with `hello`; returns the welcome frame.
pub async fn hello(url: &str, token: &str) -> (Ws, Value) {
    let mut ws = connect(url).await;
    send_json(
        &mut ws,
        serde_json::json!({"type": "hello", "token": token}),
    )
    .await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// Subscribes and returns the snapshot frame.
pub async fn subscribe(ws: &mut Ws, topic: &str) -> Value {
    send_json(
        ws,
        serde_json::json!({"type": "subscribe", "topics": [topic]}),
    )
    .await;
    let snap = next_json(ws).await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(snap["topic"], topic);
    snap
}

/// Reads frames until an update of `topic` with `seq >= until`; returns
/// every update's seq seen.
pub async fn read_updates_until(ws: &mut Ws, topic: &str, until: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let v = next_json(ws).await;
        if v["topic"] != topic {
            continue;
        }
        let seq = v["seq"].as_u64().expect("seq");
        if v["type"] == "update" {
            seqs.push(seq);
        }
        if seq >= until {
            return seqs;
        }
    }
}

/// Polls `cond` until true (bounded by `WAIT`).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw WebSocket client over TCP: it does the handshake by hand and can
/// then stop reading entirely (its receive window fills up).
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects and upgrades with `GET /<query>`.
    pub async fn connect(addr: SocketAddr, query: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "GET /{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .expect("write handshake");
        // Read the response headers byte by byte so no frame is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(WAIT, stream.read(&mut b))
                .await
                .expect("handshake timed out")
                .expect("read handshake");
            assert_eq!(n, 1, "connection closed during handshake");
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Self { stream }
    }

    /// Sends a masked frame (mask key 0, which leaves the payload as is).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mut f = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        self.stream.write_all(&f).await.expect("write frame");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    /// Reads frames until a close frame; returns its code.
    pub async fn read_until_close(&mut self) -> u16 {
        loop {
            let (opcode, payload) = self.read_frame().await;
            if opcode == 0x8 {
                return if payload.len() >= 2 {
                    u16::from_be_bytes([payload[0], payload[1]])
                } else {
                    1005
                };
            }
        }
    }

    /// Reads one (unmasked) server frame: its opcode and payload.
    pub async fn read_frame(&mut self) -> (u8, Vec<u8>) {
        let (_, opcode, payload) = self.read_frame_fin().await;
        (opcode, payload)
    }

    /// Reads one (unmasked) server frame: its FIN bit, opcode and payload.
    pub async fn read_frame_fin(&mut self) -> (bool, u8, Vec<u8>) {
        let mut h = [0u8; 2];
        self.read_exact(&mut h).await;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.read_exact(&mut b).await;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.read_exact(&mut b).await;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        self.read_exact(&mut payload).await;
        (fin, opcode, payload)
    }

    async fn read_exact(&mut self, buf: &mut [u8]) {
        tokio::time::timeout(WAIT, self.stream.read_exact(buf))
            .await
            .expect("timed out reading")
            .expect("read");
    }
}
