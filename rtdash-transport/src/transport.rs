//! [`Transport`]: the shared state every session of a server uses.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rtdash_fanout::{Hub, Key};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::DynAuthenticator;
use crate::session::{self, SessionStart};
use crate::{
    AuthError, Authenticator, Connection, Frame, Principal, RequestHandler, TransportConfig,
};

/// A topic name as the transport's hub carries it: a dashboard id or a raw
/// topic. `Arc<str>` so the hub's per-subscriber copies are reference-count
/// increments.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use rtdash_transport::Topic;
///
/// let topic: Topic = "ops".into();
/// let copy = Arc::clone(&topic); // no allocation, no copy of the name
/// assert!(Arc::ptr_eq(&topic, &copy));
/// assert_eq!(&*copy, "ops");
/// ```
pub type Topic = Arc<str>;

/// The hub type the transport serves: topics are [`Topic`]s, messages are
/// encoded [`Frame`]s, `K` is the conflation key (e.g. a widget id).
///
/// # Examples
///
/// A publisher encodes each frame once, with the sequence number the hub assigns:
///
/// ```
/// use rtdash_transport::{Frame, FrameHub, Topic};
///
/// let hub: FrameHub<u32> = FrameHub::default();
/// let topic: Topic = "ops".into();
/// let seq = hub.publish_with(&topic, [7], |seq| {
///     Frame::from_string(format!(r#"{{"type":"update","topic":"ops","seq":{seq}}}"#))
/// });
/// assert_eq!(seq, 1);
/// // Kept as the last value of key 7, for the snapshots of new subscribers.
/// let snapshot = hub.snapshot(&topic);
/// assert_eq!(snapshot.messages[0].msg.as_str(), r#"{"type":"update","topic":"ops","seq":1}"#);
/// ```
pub type FrameHub<K> = Hub<Topic, K, Frame>;

/// The shared state of one server's sessions: the hub, the authenticator,
/// the limits, the connection count and the shutdown signal.
///
/// Cheap to clone (an `Arc`). Create one per server, then serve WebSocket
/// clients with [`serve`](crate::serve) (feature `ws`), mount
/// [`ws_route`](Self::ws_route) (feature `axum`) or
/// [`sse_route`](Self::sse_route) (feature `sse`) in an axum router, or
/// drive a connection of your own with [`run`](Self::run). Stop everything
/// with [`shutdown`](Self::shutdown).
///
/// # Examples
///
/// ```
/// use rtdash_transport::{FrameHub, StaticTokens, Transport, TransportConfig};
///
/// let hub: FrameHub<u32> = FrameHub::default();
/// let transport = Transport::new(hub, StaticTokens::new(), TransportConfig::default());
/// assert_eq!(transport.active_connections(), 0);
/// ```
pub struct Transport<K: Key> {
    pub(crate) inner: Arc<Inner<K>>,
}

impl<K: Key> Clone for Transport<K> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Key> std::fmt::Debug for Transport<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.inner.config)
            .field("active_connections", &self.active_connections())
            .field("shutting_down", &self.inner.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<K: Key> {
    pub(crate) hub: FrameHub<K>,
    pub(crate) auth: Arc<dyn DynAuthenticator>,
    pub(crate) config: TransportConfig,
    pub(crate) shutdown: CancellationToken,
    /// Set with `shutdown`; a cheap check for busy session loops (the
    /// token's own check takes a lock).
    pub(crate) stopping: AtomicBool,
    pub(crate) tracker: TaskTracker,
    /// Random per transport instance; SSE resume ids carry it so a resume
    /// against another instance (whose seqs differ) gets a full snapshot.
    #[cfg_attr(not(feature = "sse"), allow(dead_code))]
    pub(crate) epoch: u64,
    active: AtomicUsize,
    pub(crate) counters: Counters,
    /// Set by [`Transport::observe_write_latency`].
    pub(crate) write_latency: OnceLock<WriteLatencyObserver>,
    /// Set by [`Transport::restrict_topics`].
    topic_filter: OnceLock<TopicFilter>,
    /// Set by [`Transport::handle_requests`].
    pub(crate) requests: OnceLock<Box<dyn RequestHandler>>,
}

/// What [`Transport::restrict_topics`] asks.
type TopicFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

impl<K: Key> Inner<K> {
    /// Whether `topic` exists (always, unless [`Transport::restrict_topics`] says).
    pub(crate) fn topic_exists(&self, topic: &str) -> bool {
        self.topic_filter.get().is_none_or(|exists| exists(topic))
    }
}

/// What [`Transport::observe_write_latency`] calls.
pub(crate) type WriteLatencyObserver = Box<dyn Fn(Duration) + Send + Sync>;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sessions: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
}

/// Counters of a [`Transport`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Connections open now (WebSocket and SSE).
    pub active_connections: usize,
    /// Sessions started since creation.
    pub sessions: u64,
    /// Connections refused because `max_connections` was reached.
    pub refused: u64,
    /// Sessions closed because authentication failed (any reason).
    pub auth_failures: u64,
    /// Sessions closed as slow consumers (eviction or write timeout).
    pub slow_consumers: u64,
    /// Frames written to clients (snapshots, updates and control frames).
    pub frames_sent: u64,
}

/// One slot of `max_connections`, released on drop.
pub(crate) struct Permit<K: Key> {
    inner: Arc<Inner<K>>,
}

impl<K: Key> Drop for Permit<K> {
    fn drop(&mut self) {
        self.inner.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<K: Key> Transport<K> {
    /// Creates the transport state for `hub`, checking tokens with
    /// `authenticator`.
    pub fn new(
        hub: FrameHub<K>,
        authenticator: impl Authenticator,
        config: TransportConfig,
    ) -> Self {
        let epoch = {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos());
            h.finish()
        };
        Self {
            inner: Arc::new(Inner {
                hub,
                auth: Arc::new(authenticator),
                config,
                shutdown: CancellationToken::new(),
                stopping: AtomicBool::new(false),
                tracker: TaskTracker::new(),
                epoch,
                active: AtomicUsize::new(0),
                counters: Counters::default(),
                write_latency: OnceLock::new(),
                topic_filter: OnceLock::new(),
                requests: OnceLock::new(),
            }),
        }
    }

    /// Checks `token` with this transport's authenticator, as a session does: who it
    /// belongs to, or why it is refused ([`AuthError::Expired`] for a principal whose
    /// expiry has passed). For HTTP routes beside the streams that must admit the same
    /// readers. Not counted in [`TransportStats::auth_failures`].
    ///
    /// # Errors
    ///
    /// The authenticator's [`AuthError`], or [`AuthError::Expired`].
    ///
    /// # Cancel safety
    ///
    /// As the authenticator's `authenticate`.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let p = self.inner.auth.authenticate_boxed(token).await?;
        if p.expires_at().is_some_and(|at| at <= SystemTime::now()) {
            return Err(AuthError::Expired);
        }
        Ok(p)
    }

    /// The hub sessions subscribe to; publish frames here.
    #[must_use]
    pub fn hub(&self) -> &FrameHub<K> {
        &self.inner.hub
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TransportConfig {
        &self.inner.config
    }

    /// Connections open now.
    #[must_use]
    pub fn active_connections(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Counters for metrics.
    #[must_use]
    pub fn stats(&self) -> TransportStats {
        let c = &self.inner.counters;
        TransportStats {
            active_connections: self.active_connections(),
            sessions: c.sessions.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            auth_failures: c.auth_failures.load(Ordering::Relaxed),
            slow_consumers: c.slow_consumers.load(Ordering::Relaxed),
            frames_sent: c.frames_sent.load(Ordering::Relaxed),
        }
    }

    /// Sets the function told, after each successful socket write, the time
    /// from event to write of every data frame in it that carries an event
    /// time ([`Frame::event_time`]): the push latency of the server's side,
    /// up to the kernel's socket buffer. A frame whose event time lies in the
    /// future counts as zero. Called on the session's task: keep it short
    /// (record into a histogram). Returns `false`, and changes nothing, if an
    /// observer was already set.
    pub fn observe_write_latency(
        &self,
        observer: impl Fn(Duration) + Send + Sync + 'static,
    ) -> bool {
        self.inner.write_latency.set(Box::new(observer)).is_ok()
    }

    /// Restricts sessions to the topics for which `exists` returns `true` (e.g. the
    /// dashboards a registry holds): a topic named in the connection URL that does not
    /// exist closes the session with 4004 `unknown_topic` right after authentication
    /// (after the 4003 check, so a client cannot learn which topics exist without being
    /// allowed to see them); a `subscribe` to one gets an `unknown_topic` error frame.
    /// Clients then cannot make the hub hold topics of their own naming. Called on the
    /// session's task: keep it short. Returns `false`, and changes nothing, if a filter was
    /// already set. Without one, every valid topic name exists.
    pub fn restrict_topics(&self, exists: impl Fn(&str) -> bool + Send + Sync + 'static) -> bool {
        self.inner.topic_filter.set(Box::new(exists)).is_ok()
    }

    /// Sets the answerer of application requests: WebSocket client messages whose `type`
    /// is one of `handler.kinds()` (see [`RequestHandler`] for the limits that apply).
    /// Returns `false`, and changes nothing, if a handler was already set. Without one,
    /// such messages get an `error` frame `unknown_type`.
    pub fn handle_requests(&self, handler: impl RequestHandler) -> bool {
        self.inner.requests.set(Box::new(handler)).is_ok()
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Drives one client connection of your own transport until it ends:
    /// authentication (with `token` if given, else the client's `hello`),
    /// subscriptions, snapshots, updates, heartbeats and the close.
    ///
    /// If `max_connections` are open, the connection is closed at once with
    /// [`CloseCode::TryAgainLater`](crate::CloseCode::TryAgainLater) (1013). Sessions run this way are part of
    /// [`shutdown`](Self::shutdown) like the built-in ones.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the session (and the connection) without a
    /// close frame.
    pub async fn run<C: Connection>(&self, conn: C, token: Option<String>) {
        let start = SessionStart::new(token, Vec::new(), tokio::time::Instant::now());
        let permit = self.try_acquire();
        self.inner
            .tracker
            .track_future(session::run(Arc::clone(&self.inner), conn, start, permit))
            .await;
    }

    /// Starts a graceful shutdown and waits for it: every session sends a
    /// going-away close (1001; SSE: a final `closing` frame) and ends; the
    /// listeners of [`serve`](crate::serve) stop accepting. Returns when all
    /// sessions ended or `shutdown_timeout` passed, whichever is first.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(
            self.inner.config.shutdown_timeout(),
            self.inner.tracker.wait(),
        )
        .await;
    }

    /// Takes a connection slot, or `None` at `max_connections` (the refusal
    /// is counted).
    pub(crate) fn try_acquire(&self) -> Option<Permit<K>> {
        let max = self.inner.config.max_connections().get();
        let prev = self.inner.active.fetch_add(1, Ordering::AcqRel);
        if prev >= max {
            self.inner.active.fetch_sub(1, Ordering::AcqRel);
            self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Permit {
            inner: Arc::clone(&self.inner),
        })
    }
}
