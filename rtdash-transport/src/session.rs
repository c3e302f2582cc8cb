//! The session loop: one client connection driven against the hub.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use rtdash_fanout::{Event, FanoutError, Key, Stamped, Subscription};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::protocol::{ClientMessage, SessionFrame, encode_snapshot, parse_client};
use crate::transport::{Inner, Permit, Topic};
use crate::{
    AuthError, CloseCode, Connection, ErrorCode, Frame, Incoming, Outgoing, Principal, Request,
    RequestError, TransportError, unix_millis,
};

/// How long closing may take: the close frame going out and, for
/// WebSocket, the client's close frame coming back (see
/// `WsConnection::close`); the connection is dropped after it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the session learns who the client is.
#[derive(Debug)]
enum Credentials {
    /// Wait for the client's `hello`.
    Hello,
    /// A token from the URL or a header.
    Token(String),
    /// Already authenticated (SSE checks the token before answering).
    #[cfg_attr(not(feature = "sse"), allow(dead_code))]
    Principal(Principal),
}

/// Where a session starts.
#[derive(Debug)]
pub(crate) struct SessionStart {
    credentials: Credentials,
    /// Topics to subscribe at once (from the URL).
    topics: Vec<String>,
    /// SSE resume: for each of `topics`, the last seq the client saw.
    resume: Option<Vec<u64>>,
    /// When the connection was accepted; `hello_timeout` counts from here.
    accepted_at: Instant,
}

impl SessionStart {
    /// A session that authenticates with `token` (from the URL or a header) if there is
    /// one, else with the client's `hello`, then subscribes `topics`.
    pub(crate) fn new(
        token: Option<String>,
        topics: Vec<String>,
        accepted_at: Instant,
    ) -> Box<Self> {
        Box::new(Self {
            credentials: token.map_or(Credentials::Hello, Credentials::Token),
            topics,
            resume: None,
            accepted_at,
        })
    }

    /// A session whose client was authenticated before it started (SSE answers the
    /// request only after checking its token), resuming after `resume` if given.
    #[cfg(feature = "sse")]
    pub(crate) fn authenticated(
        principal: Principal,
        topics: Vec<String>,
        resume: Option<Vec<u64>>,
        accepted_at: Instant,
    ) -> Box<Self> {
        Box::new(Self {
            credentials: Credentials::Principal(principal),
            topics,
            resume,
            accepted_at,
        })
    }
}

/// How a session ends.
#[derive(Debug)]
enum End {
    /// Send a close with this code.
    Close(CloseCode, Cow<'static, str>),
    /// The client closed: complete the close handshake.
    ClientClosed,
    /// The connection broke: just drop it.
    Broken,
}

impl End {
    fn close(code: CloseCode, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Close(code, reason.into())
    }
}

/// Per-topic state of a session.
#[derive(Debug)]
struct TopicState {
    topic: Topic,
    /// Highest seq sent; older events (after a resync snapshot) are dropped.
    last_seq: u64,
    /// SSE resume point, used by the first snapshot only.
    resume_since: Option<u64>,
}

type Sub<K> = Subscription<Topic, K, Frame>;

/// Runs a session to its end, then closes the connection as decided.
pub(crate) async fn run<K: Key, C: Connection>(
    inner: Arc<Inner<K>>,
    mut conn: C,
    start: Box<SessionStart>,
    permit: Option<Permit<K>>,
) {
    let Some(_permit) = permit else {
        Box::pin(close(
            &mut conn,
            CloseCode::TryAgainLater,
            "too many connections",
        ))
        .await;
        return;
    };
    let shutdown = inner.shutdown.child_token();
    if shutdown.is_cancelled() {
        Box::pin(close(
            &mut conn,
            CloseCode::GoingAway,
            "server shutting down",
        ))
        .await;
        return;
    }
    let session_id = inner.counters.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    let end = drive(&inner, &mut conn, start, &shutdown, session_id).await;
    tracing::debug!(session_id, ?end, "session ended");
    // Boxed: runs once, at the end; keeps the task small.
    match end {
        End::Close(code, reason) => Box::pin(close(&mut conn, code, &reason)).await,
        End::ClientClosed => Box::pin(close(&mut conn, CloseCode::Normal, "")).await,
        End::Broken => {}
    }
}

async fn close<C: Connection>(conn: &mut C, code: CloseCode, reason: &str) {
    let _ = timeout(CLOSE_TIMEOUT, conn.close(code, reason)).await;
}

async fn drive<K: Key, C: Connection>(
    inner: &Inner<K>,
    conn: &mut C,
    start: Box<SessionStart>,
    shutdown: &CancellationToken,
    session_id: u64,
) -> End {
    // Boxed: what setting up needs is freed once it is done instead of
    // enlarging every session task for its whole life.
    let mut session = match Box::pin(setup(inner, conn, start, shutdown, session_id)).await {
        Ok(s) => s,
        Err(end) => return end,
    };
    session.serve(conn, shutdown).await
}

/// Authenticates, sends `welcome`, subscribes the URL's topics.
async fn setup<'a, K: Key, C: Connection>(
    inner: &'a Inner<K>,
    conn: &mut C,
    start: Box<SessionStart>,
    shutdown: &CancellationToken,
    session_id: u64,
) -> Result<Session<'a, K>, End> {
    let deadline = start.accepted_at + inner.config.hello_timeout();
    let auth = tokio::select! {
        biased;
        () = shutdown.cancelled() => return Err(End::close(CloseCode::GoingAway, "server shutting down")),
        r = authenticate(inner, conn, start.credentials, deadline) => r,
    };
    let principal = match auth {
        Ok(p) => p,
        Err(end) => {
            if matches!(end, End::Close(..)) {
                inner.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            }
            return Err(end);
        }
    };
    // Topics named in the URL: refused before any data flows, forbidden ones first so
    // that only a principal allowed to see a topic learns whether it exists.
    if let Some(t) = start.topics.iter().find(|t| !principal.may_see(t)) {
        inner.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(End::Close(
            CloseCode::Forbidden,
            Cow::Owned(clip(&format!("not allowed to see topic `{t}`"), 120)),
        ));
    }
    if let Some(t) = start.topics.iter().find(|t| !inner.topic_exists(t)) {
        return Err(End::Close(
            CloseCode::UnknownTopic,
            Cow::Owned(clip(&format!("unknown topic `{t}`"), 120)),
        ));
    }
    let expiry = match principal.expires_at() {
        None => None,
        Some(at) => match at.duration_since(SystemTime::now()) {
            // So far ahead that the monotonic clock cannot hold it: no expiry timer.
            Ok(left) if !left.is_zero() => Instant::now().checked_add(left),
            _ => {
                inner.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
                return Err(End::close(CloseCode::TokenExpired, "token expired"));
            }
        },
    };
    let mut session = Session {
        inner,
        sub: inner.hub.subscribe(inner.config.slow_consumer_policy()),
        principal,
        topics: Vec::new(),
        bucket: {
            let (rate, burst) = inner.config.client_rate();
            crate::rate::TokenBucket::new(rate.get(), burst.get(), std::time::Instant::now())
        },
        last_rx: Instant::now(),
        expiry,
        duplex: conn.is_duplex(),
        requests: FuturesUnordered::new(),
    };
    let welcome = SessionFrame::Welcome {
        session: session_id,
        subject: session.principal.subject(),
        heartbeat_ms: millis(inner.config.heartbeat_interval()),
        idle_timeout_ms: millis(inner.config.idle_timeout()),
        max_subscriptions: inner.config.max_subscriptions().get(),
        expires_at: session.principal.expires_at().map(unix_millis),
        server_time: unix_millis(SystemTime::now()),
    }
    .encode();
    let mut replies = vec![welcome];
    let resume = start.resume.unwrap_or_default();
    for (i, topic) in start.topics.into_iter().enumerate() {
        session.subscribe(topic, resume.get(i).copied(), None, &mut replies)?;
    }
    session.write_control(conn, replies, shutdown).await?;
    Ok(session)
}

/// Authenticates the client before any data flows.
async fn authenticate<K: Key, C: Connection>(
    inner: &Inner<K>,
    conn: &mut C,
    credentials: Credentials,
    deadline: Instant,
) -> Result<Principal, End> {
    let token = match credentials {
        Credentials::Principal(p) => return Ok(p),
        Credentials::Token(t) => t,
        Credentials::Hello if !conn.is_duplex() => {
            return Err(End::close(
                CloseCode::AuthFailed,
                "token required: pass ?token= or an Authorization: Bearer header",
            ));
        }
        Credentials::Hello => loop {
            let msg = match timeout_at(deadline, conn.recv()).await {
                Err(_) => {
                    return Err(End::close(
                        CloseCode::Timeout,
                        "no hello within hello_timeout",
                    ));
                }
                Ok(m) => m,
            };
            match msg {
                None => return Err(End::ClientClosed),
                Some(Err(e)) => return Err(read_error(e)),
                Some(Ok(Incoming::Alive)) => {}
                Some(Ok(Incoming::Binary(_))) => {
                    return Err(End::close(
                        CloseCode::UnsupportedData,
                        "binary frames are not accepted; send JSON text",
                    ));
                }
                Some(Ok(Incoming::Text(text))) => match parse_client(&text) {
                    Ok(ClientMessage::Hello { token, .. }) => break token,
                    Ok(_) => {
                        return Err(End::close(
                            CloseCode::BadRequest,
                            "send hello with a token first",
                        ));
                    }
                    Err(e) => {
                        return Err(End::Close(
                            CloseCode::BadRequest,
                            Cow::Owned(clip(&e.message(), 120)),
                        ));
                    }
                },
            }
        },
    };
    match timeout_at(deadline, inner.auth.authenticate_boxed(&token)).await {
        Err(_) => Err(End::close(
            CloseCode::TryAgainLater,
            "authentication timed out",
        )),
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(auth_end(&e)),
    }
}

fn auth_end(e: &AuthError) -> End {
    End::Close(e.close_code(), Cow::Owned(clip(&e.to_string(), 120)))
}

fn read_error(e: TransportError) -> End {
    match e {
        TransportError::MessageTooBig { max, .. } => End::Close(
            CloseCode::MessageTooBig,
            Cow::Owned(format!("message larger than {max} bytes")),
        ),
        _ => End::Broken,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn clip(s: &str, max: usize) -> String {
    s[..s.floor_char_boundary(max)].to_owned()
}

/// What to do with one hub event.
enum Step {
    Send(Frame, Topic, u64),
    Skip,
    Evicted,
}

/// How a guarded write ended.
enum WriteEnd {
    Done,
    Shutdown,
    TimedOut,
    Broken,
    Evicted,
}

type HubEvent = Event<Topic, Frame>;

struct Session<'a, K: Key> {
    inner: &'a Inner<K>,
    sub: Sub<K>,
    principal: Principal,
    topics: Vec<TopicState>,
    bucket: crate::rate::TokenBucket,
    last_rx: Instant,
    expiry: Option<Instant>,
    duplex: bool,
    /// Application requests being answered (at most `max_requests_in_flight`), each
    /// yielding its answer frame.
    requests: FuturesUnordered<BoxFuture<'static, Frame>>,
}

/// How often a blocked write checks whether the hub evicted the subscriber.
const EVICTION_CHECK: Duration = Duration::from_millis(200);

/// Runs `work` (feeds and a flush) bounded by `write_timeout` and shutdown.
/// While the socket is blocked, the subscription is checked for eviction
/// every [`EVICTION_CHECK`] so a slow consumer the hub disconnected is
/// closed at once rather than after `write_timeout`. (Events are not taken
/// from the hub meanwhile: they stay under the hub's policy bounds.)
async fn guarded_write<K: Key>(
    sub: &Sub<K>,
    shutdown: &CancellationToken,
    write_timeout: Duration,
    work: impl Future<Output = Result<(), TransportError>>,
) -> WriteEnd {
    tokio::pin!(work);
    // Fast path: the socket took everything at once (no timer needed).
    if let Some(r) = futures::FutureExt::now_or_never(work.as_mut()) {
        return if r.is_ok() {
            WriteEnd::Done
        } else {
            WriteEnd::Broken
        };
    }
    if shutdown.is_cancelled() {
        return WriteEnd::Shutdown;
    }
    // Blocked: the timer lives on the heap only while the socket is full.
    let deadline = Instant::now() + write_timeout;
    let mut tick = Box::pin(tokio::time::sleep(EVICTION_CHECK.min(write_timeout)));
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return WriteEnd::Shutdown,
            r = &mut work => {
                return if r.is_ok() { WriteEnd::Done } else { WriteEnd::Broken };
            }
            () = &mut tick => {
                if sub.is_evicted() {
                    return WriteEnd::Evicted;
                }
                let now = Instant::now();
                if now >= deadline {
                    return WriteEnd::TimedOut;
                }
                tick.as_mut().reset((now + EVICTION_CHECK).min(deadline));
            }
        }
    }
}

/// Turns a hub event into a frame to send (or not).
fn on_event<K: Key>(inner: &Inner<K>, topics: &mut [TopicState], ev: HubEvent) -> Step {
    match ev {
        Event::Message { topic, seq, msg } => {
            let Some(st) = topic_mut(topics, &topic) else {
                return Step::Skip;
            };
            if seq <= st.last_seq {
                return Step::Skip;
            }
            st.last_seq = seq;
            Step::Send(msg, topic, seq)
        }
        Event::Snapshot {
            topic,
            seq,
            messages,
        } => {
            let Some(st) = topic_mut(topics, &topic) else {
                return Step::Skip;
            };
            let since = st.resume_since.take().filter(|&s| s <= seq);
            st.last_seq = seq;
            let frame = snapshot_frame(&topic, seq, since, &messages);
            Step::Send(frame, topic, seq)
        }
        Event::Skipped { topic, .. } => {
            // Repair the gap with a fresh snapshot; queued messages it
            // already covers are dropped by `last_seq`.
            let snap = inner.hub.snapshot(&topic);
            let Some(st) = topic_mut(topics, &topic) else {
                return Step::Skip;
            };
            st.last_seq = st.last_seq.max(snap.seq);
            let frame = snapshot_frame(&topic, snap.seq, None, &snap.messages);
            Step::Send(frame, topic, snap.seq)
        }
        Event::Evicted { .. } => Step::Evicted,
        _ => Step::Skip,
    }
}

fn topic_mut<'t>(topics: &'t mut [TopicState], topic: &Topic) -> Option<&'t mut TopicState> {
    topics
        .iter_mut()
        .find(|s| Arc::ptr_eq(&s.topic, topic) || s.topic == *topic)
}

impl<K: Key> Session<'_, K> {
    async fn serve<C: Connection>(&mut self, conn: &mut C, shutdown: &CancellationToken) -> End {
        let cfg = &self.inner.config;
        let mut next_heartbeat = Instant::now() + cfg.heartbeat_interval();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let sleep = sleep_until(self.next_wake(next_heartbeat));
        tokio::pin!(sleep);
        loop {
            // A busy session may never reach the `cancelled` branch below.
            if self.inner.stopping.load(Ordering::Relaxed) {
                return End::close(CloseCode::GoingAway, "server shutting down");
            }
            tokio::select! {
                biased;
                () = &mut sleep => {
                    let now = Instant::now();
                    if self.expiry.is_some_and(|at| now >= at) {
                        return End::close(CloseCode::TokenExpired, "token expired");
                    }
                    if self.duplex && now >= self.last_rx + cfg.idle_timeout() {
                        return End::close(CloseCode::Timeout, "idle timeout");
                    }
                    if now >= next_heartbeat {
                        let work = conn.heartbeat();
                        let w = Box::pin(guarded_write(&self.sub, shutdown, cfg.write_timeout(), work)).await;
                        if let Some(end) = self.write_end(w) {
                            return end;
                        }
                        next_heartbeat = now + cfg.heartbeat_interval();
                    }
                    sleep.as_mut().reset(self.next_wake(next_heartbeat));
                }
                msg = conn.recv() => {
                    self.last_rx = Instant::now();
                    // Boxed: client messages are rare; keep the task small.
                    if let Some(end) = Box::pin(self.on_client(conn, msg, shutdown)).await {
                        return end;
                    }
                }
                Some(answer) = self.requests.next(), if !self.requests.is_empty() => {
                    if let Err(end) = Box::pin(self.write_control(conn, vec![answer], shutdown)).await {
                        return end;
                    }
                }
                ev = self.sub.recv() => {
                    let Some(ev) = ev else {
                        return End::close(CloseCode::GoingAway, "hub closed");
                    };
                    // Boxed per batch (one small allocation next to a socket
                    // write): an idle session's task stays small.
                    if let Some(end) = Box::pin(self.write_events(conn, ev, shutdown)).await {
                        return end;
                    }
                }
                // Last: polled only when nothing else is ready (its check
                // takes a lock); the flag above covers busy sessions.
                () = &mut cancelled => {
                    return End::close(CloseCode::GoingAway, "server shutting down");
                }
            }
        }
    }

    fn next_wake(&self, next_heartbeat: Instant) -> Instant {
        let mut at = next_heartbeat;
        if self.duplex {
            at = at.min(self.last_rx + self.inner.config.idle_timeout());
        }
        if let Some(exp) = self.expiry {
            at = at.min(exp);
        }
        at
    }

    fn slow_consumer(&self, why: &'static str) -> End {
        self.inner
            .counters
            .slow_consumers
            .fetch_add(1, Ordering::Relaxed);
        End::close(CloseCode::SlowConsumer, why)
    }

    /// Maps a guarded write's end to the session's end, if it ends.
    fn write_end(&self, w: WriteEnd) -> Option<End> {
        match w {
            WriteEnd::Done => None,
            WriteEnd::Shutdown => Some(End::close(CloseCode::GoingAway, "server shutting down")),
            WriteEnd::TimedOut => Some(self.slow_consumer("not reading: write timed out")),
            WriteEnd::Evicted => Some(self.slow_consumer("slow consumer evicted")),
            WriteEnd::Broken => Some(End::Broken),
        }
    }

    /// Writes `first` and whatever else is queued as one batch: feed each,
    /// flush once.
    async fn write_events<C: Connection>(
        &mut self,
        conn: &mut C,
        first: HubEvent,
        shutdown: &CancellationToken,
    ) -> Option<End> {
        let max = self.inner.config.max_batch_frames().get();
        let mut rest = Vec::new();
        if max > 1 {
            self.sub.drain_into(&mut rest, max - 1);
        }
        let inner = self.inner;
        let topics = &mut self.topics;
        let mut sent = 0u64;
        let mut evicted = false;
        let observer = inner.write_latency.get();
        // Event times of the batch's frames, kept only for an observer.
        let mut event_times: Vec<i64> = Vec::new();
        let work = async {
            for ev in std::iter::once(first).chain(rest) {
                match on_event(inner, topics, ev) {
                    Step::Send(frame, topic, seq) => {
                        if observer.is_some()
                            && let Some(t) = frame.event_time()
                        {
                            event_times.push(t);
                        }
                        conn.feed(Outgoing::data(frame, &topic, seq)).await?;
                        sent += 1;
                    }
                    Step::Skip => {}
                    Step::Evicted => {
                        evicted = true;
                        break;
                    }
                }
            }
            conn.flush().await
        };
        let w = guarded_write(&self.sub, shutdown, inner.config.write_timeout(), work).await;
        inner
            .counters
            .frames_sent
            .fetch_add(sent, Ordering::Relaxed);
        if let (Some(observe), WriteEnd::Done) = (observer, &w) {
            let now = crate::unix_millis(SystemTime::now());
            for t in event_times {
                let ms = u64::try_from(now.saturating_sub(t)).unwrap_or(0);
                observe(Duration::from_millis(ms));
            }
        }
        if evicted {
            return Some(self.slow_consumer("slow consumer evicted"));
        }
        self.write_end(w)
    }

    /// Handles what `conn.recv()` returned.
    async fn on_client<C: Connection>(
        &mut self,
        conn: &mut C,
        msg: Option<Result<Incoming, TransportError>>,
        shutdown: &CancellationToken,
    ) -> Option<End> {
        let text = match msg {
            None => return Some(End::ClientClosed),
            Some(Err(e)) => return Some(read_error(e)),
            Some(Ok(Incoming::Text(text))) => text,
            Some(Ok(Incoming::Binary(_))) => {
                return Some(End::close(
                    CloseCode::UnsupportedData,
                    "binary frames are not accepted; send JSON text",
                ));
            }
            Some(Ok(_)) => return None,
        };
        if !self.bucket.try_take(std::time::Instant::now()) {
            return Some(End::close(
                CloseCode::PolicyViolation,
                "client message rate exceeded",
            ));
        }
        let mut replies = Vec::new();
        match parse_client(&text) {
            Err(e) => match e.unknown_type() {
                Some(kind) => {
                    let kind = kind.to_owned();
                    let id = e.id().cloned();
                    replies.extend(self.request(kind, text, id));
                }
                None => replies.push(error_frame(e.code(), &e.message(), e.id(), None)),
            },
            Ok(ClientMessage::Hello { id, .. }) => replies.push(error_frame(
                ErrorCode::AlreadyAuthenticated,
                "this session is already authenticated; open a new connection to change token",
                id.as_ref(),
                None,
            )),
            Ok(ClientMessage::Ping { t }) => replies.push(
                SessionFrame::Pong {
                    t: t.as_ref(),
                    server_time: unix_millis(SystemTime::now()),
                }
                .encode(),
            ),
            Ok(ClientMessage::Subscribe { topics, id }) => {
                for topic in topics {
                    if let Err(end) = self.subscribe(topic, None, id.as_ref(), &mut replies) {
                        return Some(end);
                    }
                }
            }
            Ok(ClientMessage::Unsubscribe { topics, id }) => {
                let mut removed = Vec::new();
                for topic in topics {
                    if let Some(i) = self.topics.iter().position(|s| *s.topic == *topic) {
                        let st = self.topics.swap_remove(i);
                        self.sub.unsubscribe(&st.topic);
                        removed.push(topic);
                    }
                }
                replies.push(
                    SessionFrame::Unsubscribed {
                        topics: &removed,
                        id: id.as_ref(),
                    }
                    .encode(),
                );
            }
        }
        self.write_control(conn, replies, shutdown).await.err()
    }

    /// Starts answering an application request of type `kind` (whole message `text`), or
    /// returns the `error` frame refusing it at once.
    fn request(
        &mut self,
        kind: String,
        text: String,
        id: Option<serde_json::Value>,
    ) -> Option<Frame> {
        let handler = self
            .inner
            .requests
            .get()
            .filter(|h| h.kinds().contains(&kind.as_str()));
        let Some(handler) = handler else {
            let mut expected = String::from("hello, subscribe, unsubscribe, ping");
            for k in self.inner.requests.get().map_or(&[][..], |h| h.kinds()) {
                expected.push_str(", ");
                expected.push_str(k);
            }
            let message = format!("unknown message type `{kind}`; expected {expected}");
            return Some(error_frame(
                ErrorCode::UnknownType,
                &message,
                id.as_ref(),
                None,
            ));
        };
        let max = self.inner.config.max_requests_in_flight().get();
        if self.requests.len() >= max {
            return Some(error_frame(
                ErrorCode::TooManyRequests,
                &format!(
                    "at most {max} requests in flight per connection; wait for an answer first"
                ),
                id.as_ref(),
                None,
            ));
        }
        let max_bytes = self.inner.config.max_response_bytes().get();
        let answer = handler.handle(Request::new(kind, text, id.clone(), self.principal.clone()));
        self.requests.push(Box::pin(async move {
            let e = match answer.await {
                Ok(frame) if frame.len() <= max_bytes => return frame,
                Ok(frame) => RequestError::new(
                    ErrorCode::ResponseTooLarge,
                    format!(
                        "the answer is {} bytes; at most {max_bytes}: ask for less (e.g. a shorter range or a larger step)",
                        frame.len()
                    ),
                ),
                Err(e) => e,
            };
            SessionFrame::Error {
                code: e.code().as_str(),
                message: e.message(),
                id: id.as_ref(),
                topic: None,
                field: e.field(),
            }
            .encode()
        }));
        None
    }

    /// Subscribes `topic` (already checked with `protocol::check_topic`) if
    /// the principal may see it; refusals become error frames in `replies`.
    /// The snapshot arrives through the hub.
    fn subscribe(
        &mut self,
        topic: String,
        resume_since: Option<u64>,
        id: Option<&serde_json::Value>,
        replies: &mut Vec<Frame>,
    ) -> Result<(), End> {
        if !self.principal.may_see(&topic) {
            replies.push(error_frame(
                ErrorCode::Forbidden,
                "not allowed to see this topic",
                id,
                Some(&topic),
            ));
            return Ok(());
        }
        if !self.inner.topic_exists(&topic) {
            replies.push(error_frame(
                ErrorCode::UnknownTopic,
                "no such topic",
                id,
                Some(&topic),
            ));
            return Ok(());
        }
        if let Some(i) = self.topics.iter().position(|s| *s.topic == *topic) {
            // Subscribing again asks for a fresh snapshot.
            let st = self.topics.swap_remove(i);
            self.sub.unsubscribe(&st.topic);
        }
        let max = self.inner.config.max_subscriptions().get();
        if self.topics.len() >= max {
            replies.push(error_frame(
                ErrorCode::TooManySubscriptions,
                &format!("at most {max} subscriptions per connection; unsubscribe first"),
                id,
                Some(&topic),
            ));
            return Ok(());
        }
        let t: Topic = Arc::from(topic);
        // Register before the hub can queue the snapshot event.
        self.topics.push(TopicState {
            topic: Arc::clone(&t),
            last_seq: 0,
            resume_since,
        });
        match self.sub.subscribe(Arc::clone(&t)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.topics.pop();
                match e {
                    FanoutError::TooManyTopics { limit } => {
                        replies.push(error_frame(
                            ErrorCode::TooManySubscriptions,
                            &format!("at most {limit} topics per subscription; unsubscribe first"),
                            id,
                            Some(&t),
                        ));
                        Ok(())
                    }
                    FanoutError::HubFull { .. } => {
                        replies.push(error_frame(
                            ErrorCode::TooManyTopics,
                            "the server holds its maximum number of topics; subscribe an existing topic or retry later",
                            id,
                            Some(&t),
                        ));
                        Ok(())
                    }
                    FanoutError::Evicted { .. } => Err(self.slow_consumer("slow consumer evicted")),
                    _ => Err(End::close(CloseCode::GoingAway, "hub closed")),
                }
            }
        }
    }

    /// Writes session frames (welcome, errors, pongs) as one batch.
    async fn write_control<C: Connection>(
        &mut self,
        conn: &mut C,
        frames: Vec<Frame>,
        shutdown: &CancellationToken,
    ) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        let n = frames.len() as u64;
        let work = async {
            for f in frames {
                conn.feed(Outgoing::control(f)).await?;
            }
            conn.flush().await
        };
        let write_timeout = self.inner.config.write_timeout();
        let w = guarded_write(&self.sub, shutdown, write_timeout, work).await;
        self.inner
            .counters
            .frames_sent
            .fetch_add(n, Ordering::Relaxed);
        self.write_end(w).map_or(Ok(()), Err)
    }
}

fn snapshot_frame(topic: &str, seq: u64, since: Option<u64>, messages: &[Stamped<Frame>]) -> Frame {
    let sent_at = unix_millis(SystemTime::now());
    let since_seq = since.unwrap_or(0);
    let frames = messages
        .iter()
        .filter(move |m| m.seq > since_seq)
        .map(|m| &m.msg);
    encode_snapshot(topic, seq, sent_at, since, frames)
}

fn error_frame(
    code: ErrorCode,
    message: &str,
    id: Option<&serde_json::Value>,
    topic: Option<&str>,
) -> Frame {
    SessionFrame::Error {
        code: code.as_str(),
        message,
        id,
        topic,
        field: None,
    }
    .encode()
}

#[cfg(all(test, feature = "ws"))]
mod tests {
    use super::*;
    use crate::{FrameHub, StaticTokens, Transport, TransportConfig, WsConnection};

    /// Every connection's task holds this future: keep it small.
    #[test]
    fn session_task_is_small() {
        fn size_of_session<C: Connection>(t: &Transport<u32>, conn: C) -> usize {
            let start = SessionStart::new(None, Vec::new(), Instant::now());
            let fut = run(Arc::clone(&t.inner), conn, start, None);
            std::mem::size_of_val(&fut)
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = Transport::new(
                FrameHub::<u32>::default(),
                StaticTokens::new(),
                TransportConfig::default(),
            );
            let (a, _b) = tokio::io::duplex(64);
            let conn = WsConnection::from_upgraded(a, &t).await;
            let size = size_of_session(&t, conn);
            println!("session future: {size} bytes");
            assert!(size < 2048, "session future is {size} bytes");
        });
    }
}
