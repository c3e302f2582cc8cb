//! [`TransportConfig`]: limits, timeouts and buffer sizes.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use rtdash_fanout::SlowConsumerPolicy;

/// Limits, timeouts and buffer sizes of the transport, with safe defaults.
///
/// Every setter documents its default and what it costs. Memory per idle
/// WebSocket connection is roughly `read_buffer_bytes` + tungstenite's write
/// buffer (about `write_buffer_bytes` + `max_frame_bytes` while the client
/// reads) + ~2 KiB of session state, task and socket bookkeeping; the
/// kernel's socket buffers come on top but are not process memory.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use rtdash_transport::TransportConfig;
///
/// let config = TransportConfig::default()
///     .with_max_connections(NonZeroUsize::new(20_000).unwrap())
///     .with_idle_timeout(Duration::from_secs(90));
/// assert_eq!(config.max_connections().get(), 20_000);
/// ```
#[derive(Debug, Clone)]
pub struct TransportConfig {
    max_message_bytes: NonZeroUsize,
    max_subscriptions: NonZeroUsize,
    client_rate: NonZeroU32,
    client_burst: NonZeroU32,
    max_connections: NonZeroUsize,
    hello_timeout: Duration,
    heartbeat_interval: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    shutdown_timeout: Duration,
    read_buffer_bytes: NonZeroUsize,
    write_buffer_bytes: usize,
    max_frame_bytes: NonZeroUsize,
    max_batch_frames: NonZeroUsize,
    max_requests_in_flight: NonZeroUsize,
    max_response_bytes: NonZeroUsize,
    policy: SlowConsumerPolicy,
    allowed_origins: Option<Arc<[String]>>,
}

const fn nz(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

const fn nz32(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: nz(16 * 1024),
            max_subscriptions: nz(64),
            client_rate: nz32(20),
            client_burst: nz32(50),
            max_connections: nz(10_000),
            hello_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            read_buffer_bytes: nz(2 * 1024),
            write_buffer_bytes: 4 * 1024,
            max_frame_bytes: nz(4 * 1024),
            max_batch_frames: nz(64),
            max_requests_in_flight: nz(4),
            max_response_bytes: nz(1024 * 1024),
            policy: SlowConsumerPolicy::default(),
            allowed_origins: None,
        }
    }
}

impl TransportConfig {
    /// Largest client message (WebSocket message or frame) accepted, in bytes.
    /// Default 16 KiB. A larger one closes the connection with 1009; the
    /// limit is checked from the frame header, before the payload is read.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Most topics one connection may be subscribed to at once. Default 64.
    /// A subscribe beyond it gets an `error` frame `too_many_subscriptions`.
    /// The hub's own `HubConfig::max_topics_per_subscription` caps it too.
    #[must_use]
    pub fn with_max_subscriptions(mut self, n: NonZeroUsize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Client message rate: `per_second` on average, bursts of `burst`.
    /// Default 20/s, burst 50. A client over the rate is closed with 1008.
    #[must_use]
    pub fn with_client_rate(mut self, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        self.client_rate = per_second;
        self.client_burst = burst;
        self
    }

    /// Most concurrent connections (WebSocket and SSE together). Default
    /// 10,000. One more is accepted and closed at once with 1013 (SSE: HTTP
    /// 503), so clients can back off.
    #[must_use]
    pub fn with_max_connections(mut self, n: NonZeroUsize) -> Self {
        self.max_connections = n;
        self
    }

    /// Time from TCP accept until the client is authenticated (WebSocket
    /// handshake, `hello` and the token check). Default 10 s; then 4002.
    #[must_use]
    pub fn with_hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// How often the server sends a heartbeat (WebSocket ping; SSE comment).
    /// Default 20 s. Keep it well under `idle_timeout` and under the idle
    /// timeouts of proxies in front of the server.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// A WebSocket connection from which nothing (not even a pong) arrives
    /// for this long is closed with 4002. Default 60 s.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A write (one batch, flushed) that cannot complete within this time
    /// means the client is not reading: the connection is closed with 4008.
    /// Default 10 s. Until then the hub's slow-consumer policy bounds the
    /// backlog; healthy clients are never delayed by it.
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long graceful shutdown waits for sessions to send their going-away
    /// close and finish. Default 5 s; sessions still running are then dropped.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// tungstenite's read buffer, allocated per connection for its lifetime.
    /// Default 2 KiB (tungstenite's own default is 128 KiB). Client messages
    /// are small, so a small buffer costs nothing in speed.
    #[must_use]
    pub fn with_read_buffer_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.read_buffer_bytes = bytes;
        self
    }

    /// tungstenite's write buffer target: frames are gathered up to this
    /// size before a socket write; a batch is always flushed at its end.
    /// Default 4 KiB (tungstenite: 128 KiB). The buffer grows to the largest
    /// frame or batch that did not fit the socket at once and keeps that
    /// capacity; [`with_max_frame_bytes`](Self::with_max_frame_bytes) keeps
    /// the frames small.
    #[must_use]
    pub fn with_write_buffer_bytes(mut self, bytes: usize) -> Self {
        self.write_buffer_bytes = bytes;
        self
    }

    /// Largest WebSocket frame payload the server writes, in bytes. A
    /// longer message (a snapshot of a big dashboard) goes out as a text
    /// frame followed by continuation frames (RFC 6455 section 5.4), cut at
    /// UTF-8 character boundaries; clients see one message as before.
    /// Default 4 KiB.
    ///
    /// Why: tungstenite's write buffer grows to the largest frame it was
    /// given and keeps that capacity for the connection's lifetime, so
    /// without this every connection would hold a buffer the size of its
    /// largest snapshot (tens of KiB, times every client). Larger values
    /// save a few header bytes per message and cost that memory.
    #[must_use]
    pub fn with_max_frame_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// Most frames written per batch (one flush). Default 64.
    #[must_use]
    pub fn with_max_batch_frames(mut self, n: NonZeroUsize) -> Self {
        self.max_batch_frames = n;
        self
    }

    /// Most application requests (see [`RequestHandler`](crate::RequestHandler)) a
    /// session runs at once. Default 4. A request beyond it is answered at once with an
    /// `error` frame `too_many_requests` (never queued), so a client holds at most this many
    /// answers being computed, each at most
    /// [`max_response_bytes`](Self::with_max_response_bytes).
    #[must_use]
    pub fn with_max_requests_in_flight(mut self, n: NonZeroUsize) -> Self {
        self.max_requests_in_flight = n;
        self
    }

    /// Longest answer to an application request, in bytes. Default 1 MiB. A longer one is
    /// replaced by an `error` frame `response_too_large` (the client should ask for less,
    /// e.g. a larger step). The answer is held in memory until written, and is written in
    /// fragments of [`max_frame_bytes`](Self::with_max_frame_bytes).
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The hub's slow-consumer policy for every session. Default
    /// `Conflate { max_messages: 64 }`: a lagging client ends at the newest
    /// value of every widget, never with a backlog.
    #[must_use]
    pub fn with_slow_consumer_policy(mut self, policy: SlowConsumerPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Origins allowed to open WebSocket sessions, as browsers send them in
    /// the `Origin` header: `scheme://host[:port]`, e.g.
    /// `https://dash.example.com` (compared ignoring ASCII case). Default:
    /// not set, any origin (or none) is accepted.
    ///
    /// When set, a WebSocket upgrade ([`serve`](crate::serve) and the axum
    /// route) whose `Origin` header is missing or not in the list is refused
    /// with HTTP 403 and a JSON `error` body (`code` `forbidden`) before the
    /// upgrade: no session starts, no token is checked. This stops web pages
    /// of other sites from opening sessions with a user's browser
    /// (cross-site WebSocket hijacking); non-browser clients must then send
    /// one of the listed origins. An empty list refuses every upgrade. SSE
    /// requests are not checked: browsers apply CORS to `EventSource`, and
    /// the transport sends no CORS headers.
    #[must_use]
    pub fn with_allowed_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// See [`with_max_message_bytes`](Self::with_max_message_bytes).
    #[must_use]
    pub fn max_message_bytes(&self) -> NonZeroUsize {
        self.max_message_bytes
    }

    /// See [`with_max_subscriptions`](Self::with_max_subscriptions).
    #[must_use]
    pub fn max_subscriptions(&self) -> NonZeroUsize {
        self.max_subscriptions
    }

    /// See [`with_client_rate`](Self::with_client_rate): `(per_second, burst)`.
    #[must_use]
    pub fn client_rate(&self) -> (NonZeroU32, NonZeroU32) {
        (self.client_rate, self.client_burst)
    }

    /// See [`with_max_connections`](Self::with_max_connections).
    #[must_use]
    pub fn max_connections(&self) -> NonZeroUsize {
        self.max_connections
    }

    /// See [`with_hello_timeout`](Self::with_hello_timeout).
    #[must_use]
    pub fn hello_timeout(&self) -> Duration {
        self.hello_timeout
    }

    /// See [`with_heartbeat_interval`](Self::with_heartbeat_interval).
    #[must_use]
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// See [`with_idle_timeout`](Self::with_idle_timeout).
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// See [`with_write_timeout`](Self::with_write_timeout).
    #[must_use]
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// See [`with_shutdown_timeout`](Self::with_shutdown_timeout).
    #[must_use]
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// See [`with_read_buffer_bytes`](Self::with_read_buffer_bytes).
    #[must_use]
    pub fn read_buffer_bytes(&self) -> NonZeroUsize {
        self.read_buffer_bytes
    }

    /// See [`with_write_buffer_bytes`](Self::with_write_buffer_bytes).
    #[must_use]
    pub fn write_buffer_bytes(&self) -> usize {
        self.write_buffer_bytes
    }

    /// See [`with_max_frame_bytes`](Self::with_max_frame_bytes).
    #[must_use]
    pub fn max_frame_bytes(&self) -> NonZeroUsize {
        self.max_frame_bytes
    }

    /// See [`with_max_requests_in_flight`](Self::with_max_requests_in_flight).
    #[must_use]
    pub fn max_requests_in_flight(&self) -> NonZeroUsize {
        self.max_requests_in_flight
    }

    /// See [`with_max_response_bytes`](Self::with_max_response_bytes).
    #[must_use]
    pub fn max_response_bytes(&self) -> NonZeroUsize {
        self.max_response_bytes
    }

    /// See [`with_max_batch_frames`](Self::with_max_batch_frames).
    #[must_use]
    pub fn max_batch_frames(&self) -> NonZeroUsize {
        self.max_batch_frames
    }

    /// See [`with_slow_consumer_policy`](Self::with_slow_consumer_policy).
    #[must_use]
    pub fn slow_consumer_policy(&self) -> SlowConsumerPolicy {
        self.policy
    }

    /// See [`with_allowed_origins`](Self::with_allowed_origins): `None` when
    /// any origin is accepted.
    #[must_use]
    pub fn allowed_origins(&self) -> Option<&[String]> {
        self.allowed_origins.as_deref()
    }

    /// Whether a WebSocket upgrade with this `Origin` header (if any) may
    /// proceed.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (&self.allowed_origins, origin) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(list), Some(origin)) => {
                list.iter().any(|o| o.eq_ignore_ascii_case(origin.trim()))
            }
        }
    }

    /// tungstenite's configuration derived from these limits.
    #[cfg(feature = "ws")]
    pub(crate) fn websocket_config(
        &self,
    ) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        let max = self.max_message_bytes.get();
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes.get())
            .write_buffer_size(self.write_buffer_bytes)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_only_when_listed() {
        let any = TransportConfig::default();
        assert!(any.origin_allowed(None) && any.origin_allowed(Some("https://x.example")));
        let listed = any.with_allowed_origins(["https://dash.example"]);
        assert_eq!(
            listed.allowed_origins(),
            Some(&["https://dash.example".to_owned()][..])
        );
        assert!(listed.origin_allowed(Some("https://dash.example")));
        assert!(listed.origin_allowed(Some("HTTPS://Dash.Example")));
        assert!(!listed.origin_allowed(Some("https://dash.example.evil")));
        assert!(!listed.origin_allowed(Some("null")));
        assert!(!listed.origin_allowed(None));
        let none = TransportConfig::default().with_allowed_origins(Vec::<String>::new());
        assert!(!none.origin_allowed(Some("https://dash.example")));
    }
}
