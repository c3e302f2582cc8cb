//! WebSocket over tokio-tungstenite: the [`Connection`] implementation and
//! the standalone listener [`serve`].

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rtdash_fanout::Key;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::query::Refusal;
use crate::session::{SessionStart, clip};
use crate::{
    CloseCode, Connection, Incoming, Outgoing, Transport, TransportConfig, TransportError,
    bearer_token,
};

/// A WebSocket connection as a session drives it.
///
/// Built by [`serve`] and by the axum upgrade handler; public so hosts that
/// accept WebSockets themselves can hand the stream to
/// [`Transport::run`](crate::Transport::run) via [`WsConnection::accept`] or
/// [`WsConnection::from_upgraded`].
pub struct WsConnection<S> {
    ws: WebSocketStream<S>,
    /// The client sent its close frame (tungstenite has queued the echo).
    peer_closed: bool,
    /// Longest frame payload written; longer messages are fragmented.
    max_frame: usize,
}

impl<S> std::fmt::Debug for WsConnection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnection").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> WsConnection<S> {
    /// Performs the server side of the WebSocket handshake on `stream` with
    /// `transport`'s buffer sizes and message limit, and returns the
    /// connection and the token found in the request (`?token=` or
    /// `Authorization: Bearer`), if any.
    ///
    /// The request is checked before the upgrade: an `Origin` not in
    /// [`TransportConfig::with_allowed_origins`] is refused with HTTP 403,
    /// an invalid topic in `?topics=` with HTTP 400 (the same check as for a
    /// `subscribe` message); both with the JSON body
    /// `{"error":{"code":..,"message":..}}`.
    ///
    /// # Errors
    ///
    /// [`TransportError::Protocol`] if the handshake fails or the request
    /// was refused.
    pub async fn accept<K: Key>(
        stream: S,
        transport: &Transport<K>,
    ) -> Result<(Self, RequestParams), TransportError> {
        let mut params = RequestParams::default();
        let transport_config = transport.config();
        // The signature is tungstenite's callback type.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            match RequestParams::from_request(transport_config, req.uri().query(), req.headers()) {
                Ok(p) => {
                    params = p;
                    Ok(resp)
                }
                Err(refusal) => Err(error_response(&refusal)),
            }
        };
        let config = transport.config().websocket_config();
        // Boxed so the handshake state does not enlarge every session task.
        let ws = Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            callback,
            Some(config),
        ))
        .await
        .map_err(|e| TransportError::Protocol(format!("WebSocket handshake failed: {e}")))?;
        Ok((Self::new(ws, transport_config), params))
    }

    /// Wraps a stream whose WebSocket handshake is already done (for
    /// example by a host's HTTP server).
    pub async fn from_upgraded<K: Key>(stream: S, transport: &Transport<K>) -> Self {
        let ws = WebSocketStream::from_raw_socket(
            stream,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(transport.config().websocket_config()),
        )
        .await;
        Self::new(ws, transport.config())
    }

    fn new(ws: WebSocketStream<S>, config: &TransportConfig) -> Self {
        Self {
            ws,
            peer_closed: false,
            max_frame: config.max_frame_bytes().get(),
        }
    }
}

/// Splits `text` into pieces of at most `max` bytes at UTF-8 character
/// boundaries (a piece is longer only when one character is: `max` < 4).
/// Returns the end offset of each piece.
fn fragment_ends(text: &str, max: usize) -> impl Iterator<Item = usize> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let mut end = text.floor_char_boundary(start.saturating_add(max).min(text.len()));
        if end <= start {
            end = text.ceil_char_boundary(start + 1);
        }
        start = end;
        Some(end)
    })
}

/// After sending its close frame, how long the server waits for anything
/// more from the client (its close frame, or data it sent before it saw
/// ours) before it drops the connection.
const CLOSE_IDLE: Duration = Duration::from_millis(250);

/// tungstenite's answer for a refused upgrade.
fn error_response(refusal: &Refusal) -> ErrorResponse {
    use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
    let body = refusal.body();
    let len = body.len();
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// What the WebSocket or SSE request carried: token and topics from the URL
/// query (`?token=...&topics=a,b`) or the `Authorization: Bearer` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestParams {
    /// The token, if one was given.
    pub token: Option<String>,
    /// Topics to subscribe at once, in order.
    pub topics: Vec<String>,
}

impl RequestParams {
    /// Reads the parameters of a WebSocket upgrade request from its URL
    /// query string and headers, refusing it (before the upgrade) if its
    /// `Origin` is not allowed (403) or a topic is invalid (400).
    pub(crate) fn from_request(
        config: &TransportConfig,
        query: Option<&str>,
        headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
    ) -> Result<Self, Refusal> {
        if config.allowed_origins().is_some() {
            let allowed = match headers.get("origin") {
                None => config.origin_allowed(None),
                Some(v) => v.to_str().is_ok_and(|o| config.origin_allowed(Some(o))),
            };
            if !allowed {
                return Err(Refusal {
                    status: 403,
                    code: "forbidden",
                    message: "this Origin may not open WebSocket sessions here (allowed_origins)"
                        .to_owned(),
                });
            }
        }
        let q = crate::query::parse(query);
        Refusal::check_topics(&q.topics)?;
        let token = q.token.or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token)
                .map(str::to_owned)
        });
        Ok(Self {
            token,
            topics: q.topics,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for WsConnection<S> {
    async fn recv(&mut self) -> Option<Result<Incoming, TransportError>> {
        loop {
            let msg = match self.ws.next().await? {
                Ok(m) => m,
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                    return Some(Err(TransportError::MessageTooBig {
                        size,
                        max: max_size,
                    }));
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return None,
                Err(e) => return Some(Err(TransportError::Protocol(e.to_string()))),
            };
            return Some(Ok(match msg {
                Message::Text(t) => Incoming::Text(t.as_str().to_owned()),
                Message::Binary(b) => Incoming::Binary(b.len()),
                Message::Ping(_) | Message::Pong(_) => Incoming::Alive,
                Message::Close(_) => {
                    self.peer_closed = true;
                    return None;
                }
                Message::Frame(_) => continue,
            }));
        }
    }

    /// Writes the frame as one WebSocket message: one text frame, or when
    /// it is longer than [`TransportConfig::with_max_frame_bytes`] a text
    /// frame and continuation frames, so that tungstenite's write buffer
    /// never has to grow to a whole snapshot.
    async fn feed(&mut self, out: Outgoing<'_>) -> Result<(), TransportError> {
        let text = out.frame.into_ws_text();
        if text.len() <= self.max_frame {
            return self.ws.feed(Message::Text(text)).await.map_err(ws_error);
        }
        let bytes = Bytes::from(text.clone());
        let mut start = 0;
        for end in fragment_ends(text.as_str(), self.max_frame) {
            let opcode = if start == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let frame = WsFrame::message(bytes.slice(start..end), opcode, end == text.len());
            self.ws
                .feed(Message::Frame(frame))
                .await
                .map_err(ws_error)?;
            start = end;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.ws.flush().await.map_err(ws_error)
    }

    async fn heartbeat(&mut self) -> Result<(), TransportError> {
        self.ws
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(ws_error)
    }

    /// Completes the close handshake (RFC 6455 section 7), then the caller
    /// drops the TCP connection:
    ///
    /// - after the client's close frame: sends the echo tungstenite queued
    ///   (the client's own code), ignoring `code`;
    /// - else: sends a close frame with `code` and `reason`, then reads and
    ///   discards what the client still sends until its close frame
    ///   arrives, or until it has sent nothing for 250 ms. Dropping
    ///   the socket with unread data would make the kernel reset the
    ///   connection, and the client could lose the close frame (seeing 1006
    ///   instead of, e.g., 1008 after a flood); a client that stays silent
    ///   has nothing in flight, and gets the close frame followed by a
    ///   plain FIN. The session bounds the whole close with a timeout (2 s).
    async fn close(&mut self, code: CloseCode, reason: &str) {
        if self.peer_closed {
            let _ = self.ws.flush().await;
            return;
        }
        let frame = CloseFrame {
            code: WsCloseCode::from(code.code()),
            // RFC 6455: the reason is at most 123 bytes.
            reason: clip(reason, 123).into(),
        };
        if self.ws.close(Some(frame)).await.is_err() {
            return;
        }
        // Ends with `None` once the client's close frame arrived (or on any error).
        while let Ok(Some(Ok(_))) = tokio::time::timeout(CLOSE_IDLE, self.ws.next()).await {}
    }
}

fn ws_error(e: WsError) -> TransportError {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::Closed,
        WsError::Io(e) => TransportError::io("writing to the WebSocket", &e),
        e => TransportError::Protocol(e.to_string()),
    }
}

/// Accepts WebSocket clients on `listener` until `shutdown` completes or
/// [`Transport::shutdown`] is called, then shuts down gracefully: stops
/// accepting, closes every session with 1001 (going away) and waits up to
/// `shutdown_timeout` for them to finish.
///
/// Any path is accepted; the request may carry `?token=...` (or an
/// `Authorization: Bearer` header) to skip `hello`, and `&topics=a,b` to
/// subscribe at once. An invalid topic there refuses the upgrade with HTTP
/// 400, an `Origin` outside [`TransportConfig::with_allowed_origins`] with
/// 403 (see [`WsConnection::accept`]). Each connection gets `TCP_NODELAY`.
/// Accept errors (e.g. out of file descriptors) are logged and retried
/// after a short pause; raise the limit with `ulimit -n` for many clients.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use rtdash_transport::{FrameHub, StaticTokens, Transport, TransportConfig, serve};
///
/// let transport = Transport::new(FrameHub::<u64>::default(), StaticTokens::new(), TransportConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// serve(listener, transport, async { let _ = tokio::signal::ctrl_c().await; }).await;
/// # Ok(()) }
/// ```
pub async fn serve<K: Key>(
    listener: TcpListener,
    transport: Transport<K>,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let stop = transport.inner.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let t = transport.clone();
                transport
                    .inner
                    .tracker
                    .spawn(async move { accept_one(stream, t).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    transport.shutdown().await;
}

async fn accept_one<K: Key>(stream: TcpStream, transport: Transport<K>) {
    let accepted_at = tokio::time::Instant::now();
    let _ = stream.set_nodelay(true);
    let permit = transport.try_acquire();
    let handshake = tokio::time::timeout(
        transport.config().hello_timeout(),
        WsConnection::accept(stream, &transport),
    )
    .await;
    // A refused or failed handshake: tungstenite has answered (e.g. 400, 403).
    let Ok(Ok((conn, params))) = handshake else {
        return;
    };
    let start = SessionStart::new(params.token, params.topics, accepted_at);
    crate::session::run(std::sync::Arc::clone(&transport.inner), conn, start, permit).await;
}

#[cfg(test)]
mod tests {
    use super::fragment_ends;
    use proptest::prelude::*;

    fn pieces(text: &str, max: usize) -> Vec<&str> {
        let mut start = 0;
        fragment_ends(text, max)
            .map(|end| {
                let piece = &text[start..end];
                start = end;
                piece
            })
            .collect()
    }

    #[test]
    fn short_text_is_one_piece_and_empty_text_none() {
        assert_eq!(pieces("abc", 4), ["abc"]);
        assert_eq!(pieces("abcd", 4), ["abcd"]);
        assert_eq!(pieces("abcde", 4), ["abcd", "e"]);
        assert!(pieces("", 4).is_empty());
    }

    #[test]
    fn cuts_fall_between_characters() {
        // "é" is two bytes, "€" three, "𝄞" four.
        assert_eq!(pieces("aéb", 2), ["a", "é", "b"]);
        assert_eq!(pieces("€€", 4), ["€", "€"]);
        // A character longer than the limit is one piece of its own.
        assert_eq!(pieces("𝄞a", 1), ["𝄞", "a"]);
    }

    proptest! {
        #[test]
        fn pieces_rebuild_the_text_within_the_limit(text in "\\PC{0,200}", max in 1usize..64) {
            let parts = pieces(&text, max);
            prop_assert_eq!(parts.concat(), text.clone());
            for p in &parts {
                prop_assert!(!p.is_empty());
                prop_assert!(p.len() <= max || p.chars().count() == 1, "{p:?} over {max}");
            }
        }
    }
}
