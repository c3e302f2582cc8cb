//! The [`Connection`] trait: what a session needs from a transport.

use std::future::Future;

use crate::{CloseCode, Frame, TransportError};

/// What a session received from its client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A text message; the protocol expects one JSON object.
    Text(String),
    /// A binary message of this many bytes. The protocol does not accept
    /// binary data: the session closes with 1003.
    Binary(usize),
    /// A transport-level sign of life (for WebSocket: a ping or a pong).
    /// Resets the idle timer and is otherwise ignored.
    Alive,
}

/// A frame to write, and where it stands in its topic's sequence.
///
/// `topic` and `seq` are set for `snapshot` and `update` frames; transports
/// that resume by sequence (SSE's `Last-Event-ID`) use them, others ignore
/// them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outgoing<'a> {
    /// The encoded frame.
    pub frame: Frame,
    /// The topic of a data frame.
    pub topic: Option<&'a str>,
    /// The topic's sequence number after this frame (0 when `topic` is `None`).
    pub seq: u64,
}

impl<'a> Outgoing<'a> {
    pub(crate) fn control(frame: Frame) -> Self {
        Self {
            frame,
            topic: None,
            seq: 0,
        }
    }

    pub(crate) fn data(frame: Frame, topic: &'a str, seq: u64) -> Self {
        Self {
            frame,
            topic: Some(topic),
            seq,
        }
    }
}

/// One client connection, as a session drives it.
///
/// This is the plug-in point for transports: the crate ships WebSocket and
/// SSE implementations; a host can bring its own (a test double, another
/// framework's WebSocket, a QUIC stream) and run it with
/// [`Transport::run`](crate::Transport::run).
///
/// A session writes in batches: it [`feed`](Self::feed)s every frame that is
/// ready, then calls [`flush`](Self::flush) once. `feed` should only buffer
/// (writing when its buffer passes a size), `flush` must write everything
/// out. Both apply backpressure by not completing while the peer does not
/// read; the session bounds each batch with `write_timeout` and drops the
/// futures when it expires, so after such a cancellation the connection
/// is only ever closed.
pub trait Connection: Send + 'static {
    /// Waits for the next message from the client. `None` when the client
    /// closed the connection or it broke.
    ///
    /// # Errors
    ///
    /// [`TransportError::MessageTooBig`] (the session closes with 1009),
    /// [`TransportError::Protocol`] or [`TransportError::Io`] (the session
    /// ends without a close frame).
    ///
    /// # Cancel safety
    ///
    /// Must be cancel safe: the session awaits it in `tokio::select!` and
    /// drops it whenever something else happens first; no message may be
    /// lost then. A transport where the client never sends (SSE) returns a
    /// future that completes only when the peer has gone.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Incoming, TransportError>>> + Send;

    /// Queues one frame for writing (may write if a buffer fills).
    ///
    /// # Errors
    ///
    /// Any [`TransportError`]: the session ends.
    fn feed(
        &mut self,
        out: Outgoing<'_>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Writes out everything fed so far.
    ///
    /// # Errors
    ///
    /// Any [`TransportError`]: the session ends.
    fn flush(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Sends a heartbeat (WebSocket ping, SSE comment) and flushes.
    ///
    /// # Errors
    ///
    /// Any [`TransportError`]: the session ends.
    fn heartbeat(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Ends the connection with `code` and `reason` (a WebSocket close frame;
    /// for SSE a final `closing` frame). Best effort: errors are ignored, and
    /// the session bounds it with a timeout (2 s); the session drops the
    /// connection after it.
    ///
    /// After [`recv`](Self::recv) returned `None` because the client closed,
    /// the session calls this with [`CloseCode::Normal`]: a transport with a
    /// close handshake answers the client's close (the WebSocket
    /// implementation echoes the client's code). Otherwise it should wait
    /// for the client's answer, reading and discarding what still arrives,
    /// so that the connection is not dropped with unread data (which makes
    /// TCP reset it, and the client may lose the close).
    fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = ()> + Send;

    /// Whether the client sends messages. `false` (SSE) means: no `hello`
    /// (the token must come with the request) and no idle timeout.
    fn is_duplex(&self) -> bool {
        true
    }
}
