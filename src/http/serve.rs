//! [`serve`]: an HTTP/1.1 server loop for the router with the limits a public server
//! needs, which `axum::serve` does not set: a deadline for request headers, one for
//! request bodies, and a cap on connections per peer address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use http_body::Frame;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The limits of [`serve`]. Every one bounds what a client can make the server hold.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServeConfig {
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections_per_peer: NonZeroUsize,
    shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections_per_peer: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeConfig {
    /// How long a client may take to send a request's headers, counted from the moment
    /// the server waits for them (a new connection, or the next request on a kept-alive
    /// one); past it the connection is closed. Default 10 s. Bounds slowloris-style
    /// connections that never finish their headers.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request's body may take to arrive in full, counted from the end of its
    /// headers; past it the request fails (`400`) and the connection closes. Default
    /// 30 s. Bounds bodies trickled a byte at a time (a timeout between reads would not).
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How many HTTP connections one peer IP address may hold open at once; a connection
    /// past it is closed as soon as it is accepted. Default 256. A connection upgraded to
    /// a WebSocket leaves this count (the transport's `max_connections` bounds those).
    pub fn with_max_connections_per_peer(mut self, limit: NonZeroUsize) -> Self {
        self.max_connections_per_peer = limit;
        self
    }

    /// How long [`serve`] waits for open requests to finish after `shutdown` completed.
    /// Default 10 s.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// See [`with_header_read_timeout`](Self::with_header_read_timeout).
    #[must_use]
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// See [`with_body_read_timeout`](Self::with_body_read_timeout).
    #[must_use]
    pub fn body_read_timeout(&self) -> Duration {
        self.body_read_timeout
    }

    /// See [`with_max_connections_per_peer`](Self::with_max_connections_per_peer).
    #[must_use]
    pub fn max_connections_per_peer(&self) -> NonZeroUsize {
        self.max_connections_per_peer
    }
}

/// Open connections per peer address.
#[derive(Debug, Default)]
struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of a peer, released on drop.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn acquire(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<PeerSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` (e.g. [`router`](super::router)) on `listener` over HTTP/1.1 with
/// WebSocket upgrades, under the limits of `config`, until `shutdown` completes; then
/// stops accepting, lets open requests finish (up to the shutdown timeout) and returns.
/// Then call [`EngineTask::shutdown`](crate::EngineTask::shutdown) (or
/// [`Engine::close_sessions`](crate::Engine::close_sessions)) to close the WebSocket and
/// SSE sessions, which are upgraded connections this loop does not track.
///
/// # Examples
///
/// ```no_run
/// use rtdash::http::{ServeConfig, serve};
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let app = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let task = engine.spawn();
/// serve(listener, app, ServeConfig::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await;
/// task.shutdown().await;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
///
/// Dropping the future stops accepting; connections already accepted run on.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let body_timeout = config.body_read_timeout;
    let app = app.layer(axum::middleware::map_request(
        move |req: Request| async move {
            let (parts, body) = req.into_parts();
            let body = Body::new(DeadlineBody {
                inner: body,
                deadline: Box::pin(tokio::time::sleep(body_timeout)),
            });
            Request::from_parts(parts, body)
        },
    ));
    let peers = Arc::new(Peers::default());
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or the peer went away before accept: pause, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(slot) = peers.acquire(peer.ip(), config.max_connections_per_peer.get()) else {
            tracing::debug!(%peer, "connection refused: too many from this peer");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let header_timeout = config.header_read_timeout;
        let stop = stop.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(config.shutdown_timeout, tracker.wait()).await;
}

/// A request body that fails once its deadline has passed, however steadily it trickles.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new("request body read timeout"))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
