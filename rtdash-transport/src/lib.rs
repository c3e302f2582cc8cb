//! Client sessions for rtdash: WebSocket and Server-Sent Events connections
//! driven against the fan-out hub, with the wire protocol, authentication,
//! limits and graceful shutdown.
//!
//! # Concepts
//!
//! - A [`Transport`] is the shared state of one server: the
//!   [`FrameHub`] sessions subscribe to, the [`Authenticator`], the
//!   [`TransportConfig`] limits and the shutdown signal.
//! - A **session** drives one client [`Connection`]: it authenticates the
//!   client before any data flows (a `hello` message, or a token in the URL
//!   or `Authorization` header), subscribes the topics the [`Principal`] may
//!   see, sends a snapshot of each, streams updates, sends heartbeats, and
//!   closes with a documented [`CloseCode`].
//! - A [`Frame`] is one encoded server frame (UTF-8 JSON). The transport
//!   is generic over what a published frame carries: publishers encode each
//!   frame **once** (the `rtdash` facade encodes dashboards' `update`,
//!   `alert` and `dashboard` frames; any JSON object with a string `type`
//!   will do, [`push_json_str`] helps write one) and publish it to the hub;
//!   every subscriber gets a reference-counted clone, written to its socket
//!   without re-encoding. Writes are batched: a session drains what is
//!   queued, feeds each frame and flushes once.
//! - Slow clients never delay the others: each session's backlog is bounded
//!   by the hub's [`SlowConsumerPolicy`]; a socket that stays blocked for
//!   `write_timeout` is closed with 4008.
//! - Application requests (e.g. a dashboard's `history`) are answered by the
//!   host's [`RequestHandler`], set with [`Transport::handle_requests`]:
//!   bounded per session, answered through the session's send path.
//! - The wire protocol is specified in `docs/PROTOCOL.md` of the
//!   repository: every frame with an example, the order of frames, errors
//!   and close codes, and the SSE mapping.
//!
//! # Example
//!
//! A server with one static token, a client that says hello, subscribes to
//! a dashboard and receives its snapshot and an update:
//!
//! ```
//! # #[cfg(feature = "ws")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use futures::{SinkExt, StreamExt};
//! use rtdash_transport::{
//!     Frame, FrameHub, Principal, StaticTokens, Topic, TopicAccess, Transport, TransportConfig,
//!     serve,
//! };
//! use tokio_tungstenite::tungstenite::Message;
//!
//! let auth = StaticTokens::new().with_token("s3cret", Principal::new("alice", TopicAccess::all()));
//! let transport = Transport::new(FrameHub::<u32>::default(), auth, TransportConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let url = format!("ws://{}/", listener.local_addr().unwrap());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve(listener, transport.clone(), async { let _ = stopped.await; }));
//!
//! let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
//! ws.send(Message::text(r#"{"type":"hello","token":"s3cret"}"#)).await.unwrap();
//! ws.send(Message::text(r#"{"type":"subscribe","topics":["ops"]}"#)).await.unwrap();
//! let mut next = async || loop {
//!     if let Some(Ok(Message::Text(t))) = ws.next().await {
//!         break serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
//!     }
//! };
//! assert_eq!(next().await["type"], "welcome");
//! assert_eq!(next().await["type"], "snapshot");
//!
//! // The publisher encodes each update once, with the hub's sequence number.
//! let topic: Topic = "ops".into();
//! transport.hub().publish_with(&topic, [7], |seq| {
//!     Frame::from_string(format!(
//!         r#"{{"type":"update","topic":"ops","seq":{seq},"items":[{{"widget":"cpu","value":0.42}}]}}"#
//!     ))
//! });
//! let update = next().await;
//! assert_eq!((update["type"].as_str(), update["seq"].as_u64()), (Some("update"), Some(1)));
//!
//! stop.send(()).unwrap(); // graceful shutdown: clients get close code 1001
//! server.await.unwrap();
//! # }
//! # #[cfg(not(feature = "ws"))]
//! # fn main() {}
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `ws`   | yes | WebSocket sessions over tokio-tungstenite: [`serve`] (standalone listener with graceful shutdown), [`WsConnection`] |
//! | `axum` | no  | `Transport::ws_route` / `Transport::ws_upgrade`: WebSocket sessions inside a host's axum router (implies `ws`) |
//! | `sse`  | no  | `Transport::sse_route` / `Transport::sse_response`: Server-Sent Events sessions inside a host's axum router, with `Last-Event-ID` resume |
//! | `jwt`  | no  | `JwtAuthenticator`: HS256 JSON Web Tokens (pure-Rust crypto) |
//!
//! # Memory per connection
//!
//! With the default [`TransportConfig`], an idle WebSocket session holds
//! about 1.5 KiB of task state (the session future is kept small: setup,
//! client-message handling and each write batch live on the heap only
//! while they run), tungstenite's read buffer (`read_buffer_bytes`,
//! 2 KiB), a write buffer as large as the largest batch written so far
//! (snapshots included), and its hub subscription. The load generator
//! (`examples/loadgen.rs`) measured about 7 KB of server RSS per idle
//! connection with 10,000 clients subscribed to one dashboard each.

mod auth;
#[cfg(feature = "axum")]
mod axum_ws;
mod config;
mod connection;
mod error;
mod frame;
#[cfg(feature = "jwt")]
mod jwt;
mod protocol;
#[cfg(any(feature = "ws", feature = "sse"))]
mod query;
mod rate;
mod request;
mod session;
#[cfg(feature = "sse")]
mod sse;
mod transport;
#[cfg(feature = "ws")]
mod ws;

#[cfg(any(feature = "ws", feature = "sse"))]
pub use auth::request_token;
pub use auth::{Authenticator, Principal, StaticTokens, TopicAccess, bearer_token};
pub use config::TransportConfig;
pub use connection::{Connection, Incoming, Outgoing};
pub use error::{AuthError, TransportError};
pub use frame::Frame;
#[cfg(feature = "jwt")]
pub use jwt::JwtAuthenticator;
pub use protocol::{CloseCode, ErrorCode, push_json_str, unix_millis};
pub use request::{Request, RequestError, RequestHandler};
pub use rtdash_fanout::SlowConsumerPolicy;
pub use transport::{FrameHub, Topic, Transport, TransportStats};
#[cfg(feature = "ws")]
pub use ws::{RequestParams, WsConnection, serve};
