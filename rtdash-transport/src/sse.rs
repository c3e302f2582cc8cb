//! Server-Sent Events sessions inside a host's axum router (feature `sse`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::MethodRouter;
use bytes::{BufMut, Bytes, BytesMut};
use rtdash_fanout::Key;
use tokio::sync::mpsc;

use crate::protocol::push_json_str;
use crate::query::Refusal;
use crate::session::{SessionStart, clip};
use crate::{
    AuthError, CloseCode, Connection, Incoming, Outgoing, Transport, TransportError, bearer_token,
};

/// Batches buffered between the session and the HTTP body. Small: a client
/// that does not read holds back the session (bounded by `write_timeout`),
/// and the hub's policy takes over.
const CHANNEL_DEPTH: usize = 2;

impl<K: Key> Transport<K> {
    /// An axum route (`GET`) that streams a session as Server-Sent Events.
    ///
    /// The request names its topics and token in the URL,
    /// `?topics=a,b&token=...` (or `Authorization: Bearer`), because
    /// `EventSource` cannot send messages. Every frame of the WebSocket
    /// protocol arrives as one SSE `message` event whose data is the same
    /// JSON; snapshot and update events carry an `id` for resuming: on
    /// reconnect the browser sends it back as `Last-Event-ID` (or pass
    /// `&last_event_id=`), and the session sends only what changed since,
    /// or a full snapshot when the id cannot be honoured. Refusals are HTTP
    /// errors before the stream starts (401, 403, 400, 503) with the JSON
    /// body `{"error":{"code":..,"message":..}}`, so `EventSource` does not
    /// retry them.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::Router;
    /// use rtdash_transport::{FrameHub, StaticTokens, Transport, TransportConfig};
    ///
    /// let transport = Transport::new(FrameHub::<u64>::default(), StaticTokens::new(), TransportConfig::default());
    /// let app: Router = Router::new().route("/events", transport.sse_route());
    /// ```
    pub fn sse_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let transport = self.clone();
        axum::routing::get(move |req: Request| {
            let transport = transport.clone();
            async move { transport.sse_response(req).await }
        })
    }

    /// Answers one SSE request: checks it, authenticates, and streams the
    /// session. Use it from your own handler when you need to look at the
    /// request first.
    pub async fn sse_response(&self, req: Request) -> Response {
        let accepted_at = tokio::time::Instant::now();
        let q = crate::query::parse(req.uri().query());
        let token = q.token.clone().or_else(|| {
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token)
                .map(str::to_owned)
        });
        let last_event_id = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or(q.last_event_id);
        let topics = q.topics;
        if topics.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "list the topics in the URL: ?topics=a,b",
            );
        }
        if let Err(r) = Refusal::check_topics(&topics) {
            return r.response();
        }
        let max = self.config().max_subscriptions().get();
        if topics.len() > max {
            let msg = format!("at most {max} topics per connection");
            return refuse(StatusCode::BAD_REQUEST, "too_many_subscriptions", &msg);
        }
        if self.is_shutting_down() {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                CloseCode::GoingAway.name(),
                "server shutting down",
            );
        }
        let Some(permit) = self.try_acquire() else {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                CloseCode::TryAgainLater.name(),
                "too many connections",
            );
        };
        let Some(token) = token else {
            return refuse(
                StatusCode::UNAUTHORIZED,
                CloseCode::AuthFailed.name(),
                "token required: ?token= or Authorization: Bearer",
            );
        };
        let checked = tokio::time::timeout(
            self.config().hello_timeout(),
            self.inner.auth.authenticate_boxed(&token),
        )
        .await;
        let principal = match checked {
            Err(_) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    CloseCode::TryAgainLater.name(),
                    "authentication timed out",
                );
            }
            Ok(Err(e)) => {
                self.inner
                    .counters
                    .auth_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let status = match e {
                    AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
                    AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::UNAUTHORIZED,
                };
                return refuse(status, e.close_code().name(), &e.to_string());
            }
            Ok(Ok(p)) => p,
        };
        if let Some(t) = topics.iter().find(|t| !principal.may_see(t)) {
            let msg = format!("not allowed to see topic {:?}", clip(t, 64));
            return refuse(StatusCode::FORBIDDEN, "forbidden", &msg);
        }
        let epoch = self.inner.epoch;
        let resume = last_event_id.and_then(|id| parse_event_id(&id, epoch, topics.len()));
        let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let conn = SseConnection {
            tx,
            seqs: vec![0; topics.len()],
            topics: topics.clone(),
            epoch,
            buf: BytesMut::new(),
        };
        let start = SessionStart::authenticated(principal, topics, resume, accepted_at);
        let inner = std::sync::Arc::clone(&self.inner);
        self.inner
            .tracker
            .spawn(crate::session::run(inner, conn, start, Some(permit)));
        let stream = futures::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
        });
        let mut resp = Response::new(Body::from_stream(stream));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        resp
    }
}

/// An HTTP refusal with the JSON body `{"error":{"code":..,"message":..}}`.
fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    Refusal::new(status.as_u16(), code, message).response()
}

/// Parses `"<epoch hex>:<seq>,<seq>,..."`; `None` if it is from another
/// transport instance or does not match the topic count.
fn parse_event_id(id: &str, epoch: u64, topics: usize) -> Option<Vec<u64>> {
    let (e, seqs) = id.trim().split_once(':')?;
    if u64::from_str_radix(e, 16).ok()? != epoch {
        return None;
    }
    let seqs: Vec<u64> = seqs
        .split(',')
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (seqs.len() == topics).then_some(seqs)
}

/// One SSE response body as a session drives it.
struct SseConnection {
    tx: mpsc::Sender<Bytes>,
    /// Topics in URL order; the event id lists their seqs in this order.
    topics: Vec<String>,
    seqs: Vec<u64>,
    epoch: u64,
    buf: BytesMut,
}

impl std::fmt::Debug for SseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseConnection")
            .field("topics", &self.topics)
            .field("seqs", &self.seqs)
            .finish_non_exhaustive()
    }
}

impl SseConnection {
    fn push_data(&mut self, text: &str, multiline: bool) {
        if multiline {
            for line in text.split(['\n', '\r']) {
                self.buf.put_slice(b"data: ");
                self.buf.put_slice(line.as_bytes());
                self.buf.put_u8(b'\n');
            }
        } else {
            self.buf.reserve(text.len() + 8);
            self.buf.put_slice(b"data: ");
            self.buf.put_slice(text.as_bytes());
            self.buf.put_u8(b'\n');
        }
        self.buf.put_u8(b'\n');
    }
}

impl Connection for SseConnection {
    async fn recv(&mut self) -> Option<Result<Incoming, TransportError>> {
        // The client never sends; this ends when the response is dropped.
        self.tx.closed().await;
        None
    }

    async fn feed(&mut self, out: Outgoing<'_>) -> Result<(), TransportError> {
        if let Some(i) = out
            .topic
            .and_then(|topic| self.topics.iter().position(|t| t == topic))
        {
            self.seqs[i] = out.seq;
            let mut id = String::with_capacity(16 + 8 * self.seqs.len());
            let _ = write!(id, "id: {:x}:", self.epoch);
            for (n, s) in self.seqs.iter().enumerate() {
                if n > 0 {
                    id.push(',');
                }
                let _ = write!(id, "{s}");
            }
            id.push('\n');
            self.buf.put_slice(id.as_bytes());
        }
        self.push_data(out.frame.as_str(), out.frame.is_multiline());
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .send(chunk)
            .await
            .map_err(|_| TransportError::Closed)
    }

    async fn heartbeat(&mut self) -> Result<(), TransportError> {
        self.buf.put_slice(b": heartbeat\n\n");
        self.flush().await
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        let mut frame = String::from(r#"{"type":"closing","code":"#);
        let _ = write!(frame, "{},\"name\":", code.code());
        push_json_str(&mut frame, code.name());
        frame.push_str(r#","reason":"#);
        push_json_str(&mut frame, reason);
        frame.push('}');
        self.push_data(&frame, false);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
    }

    fn is_duplex(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids() {
        assert_eq!(parse_event_id("ff:1,2", 255, 2), Some(vec![1, 2]));
        assert_eq!(parse_event_id("fe:1,2", 255, 2), None);
        assert_eq!(parse_event_id("ff:1", 255, 2), None);
        assert_eq!(parse_event_id("ff:1,x", 255, 2), None);
        assert_eq!(parse_event_id("garbage", 255, 1), None);
        assert_eq!(parse_event_id("", 255, 1), None);
    }

    #[tokio::test]
    async fn frames_become_events() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut c = SseConnection {
            tx,
            topics: vec!["a".into(), "b".into()],
            seqs: vec![0, 0],
            epoch: 10,
            buf: BytesMut::new(),
        };
        let f = crate::Frame::from_static(r#"{"type":"update"}"#);
        c.feed(Outgoing::data(f, "b", 7)).await.unwrap();
        c.feed(Outgoing::control(crate::Frame::from_static("{\"x\":\n1}")))
            .await
            .unwrap();
        c.flush().await.unwrap();
        let got = rx.recv().await.unwrap();
        assert_eq!(
            &got[..],
            b"id: a:0,7\ndata: {\"type\":\"update\"}\n\ndata: {\"x\":\ndata: 1}\n\n"
        );
        c.close(CloseCode::GoingAway, "bye").await;
        let got = rx.recv().await.unwrap();
        assert!(std::str::from_utf8(&got).unwrap().contains("\"code\":1001"));
    }
}
