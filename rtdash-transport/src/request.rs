//! The seam for application requests: client messages the transport does not know itself
//! (e.g. a dashboard's `history`), answered by the host's [`RequestHandler`].
//!
//! # How a request is answered
//!
//! The transport knows `hello`, `subscribe`, `unsubscribe` and `ping`. A WebSocket client
//! message of another `type` that the handler lists in [`RequestHandler::kinds`] becomes a
//! [`Request`]; [`RequestHandler::handle`] returns a future of the answer frame, which the
//! session polls beside its other work (updates keep flowing while a request runs) and
//! writes through its normal send path, like its own control frames. A refused request is
//! a [`RequestError`], sent as an `error` frame with the request's `id` (and the `field`
//! at fault, if named); the session goes on.
//!
//! # Limits
//!
//! - At most [`TransportConfig::max_requests_in_flight`](crate::TransportConfig::max_requests_in_flight)
//!   requests run at once per session (default 4); a request beyond it is answered at
//!   once with an `error` frame `too_many_requests`, never queued.
//! - An answer longer than [`TransportConfig::max_response_bytes`](crate::TransportConfig::max_response_bytes)
//!   (default 1 MiB) is replaced by an `error` frame `response_too_large`. A long answer is
//!   written in WebSocket fragments of `max_frame_bytes` like a snapshot.
//! - Requests count against the client message rate (`client_rate`) like any message.
//!
//! Without a handler (the default) every such message is answered with an `error` frame
//! `unknown_type`. SSE sessions receive no client messages, so they take no requests.

use futures::future::BoxFuture;

use crate::{ErrorCode, Frame, Principal};

/// A client request of a type the host's [`RequestHandler`] answers.
#[derive(Debug)]
pub struct Request {
    kind: String,
    text: String,
    id: Option<serde_json::Value>,
    principal: Principal,
}

impl Request {
    pub(crate) fn new(
        kind: String,
        text: String,
        id: Option<serde_json::Value>,
        principal: Principal,
    ) -> Self {
        Self {
            kind,
            text,
            id,
            principal,
        }
    }

    /// The message's `type`, one of the handler's [`kinds`](RequestHandler::kinds).
    #[must_use]
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The whole message as the client sent it (a JSON object), for the handler to parse
    /// its fields from.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The request's `id`, if it had one: the answer frame must carry it back.
    #[must_use]
    pub fn id(&self) -> Option<&serde_json::Value> {
        self.id.as_ref()
    }

    /// Who asks: the session's authenticated principal. The handler must check that it may
    /// see what it asks for ([`Principal::may_see`]).
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Why a [`Request`] was refused: sent to the client as an `error` frame
/// `{"type":"error","code","message","id","field"}`.
///
/// # Examples
///
/// ```
/// use rtdash_transport::{ErrorCode, RequestError};
///
/// let e = RequestError::new(ErrorCode::BadRequest, "`step` must be a positive number of ms")
///     .with_field("step");
/// assert_eq!(e.field(), Some("step"));
/// assert_eq!(e.code(), ErrorCode::BadRequest);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    code: ErrorCode,
    message: String,
    field: Option<String>,
}

impl RequestError {
    /// A refusal with `code` and a message saying what to change.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the request's field at fault (sent as the frame's `field`).
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The frame's `code`.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The frame's `message`.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The frame's `field`, if one is named.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for RequestError {}

/// The host's answerer of application requests, given to a transport with
/// [`Transport::handle_requests`](crate::Transport::handle_requests).
///
/// `handle` is called on the session's task and must return at once: put the work in the
/// returned future (it is polled by the session, beside its updates, and dropped
/// unfinished when the session ends). The frame it yields is written as is: a JSON
/// object with a string `type`, carrying the request's [`id`](Request::id) back.
///
/// # Examples
///
/// A handler answering `time` requests with the server's clock:
///
/// ```
/// use futures::future::BoxFuture;
/// use rtdash_transport::{Frame, Request, RequestError, RequestHandler};
///
/// struct Clock;
///
/// impl RequestHandler for Clock {
///     fn kinds(&self) -> &[&'static str] {
///         &["time"]
///     }
///
///     fn handle(&self, request: Request) -> BoxFuture<'static, Result<Frame, RequestError>> {
///         let id = request.id().map_or("null".to_owned(), ToString::to_string);
///         Box::pin(async move {
///             let now = rtdash_transport::unix_millis(std::time::SystemTime::now());
///             Ok(Frame::from_string(format!(r#"{{"type":"time","id":{id},"now":{now}}}"#)))
///         })
///     }
/// }
/// ```
pub trait RequestHandler: Send + Sync + 'static {
    /// The message `type`s this handler answers (e.g. `["history"]`); never `hello`,
    /// `subscribe`, `unsubscribe` or `ping`, which the transport answers itself.
    fn kinds(&self) -> &[&'static str];

    /// Starts answering `request`; the future yields the answer frame or the refusal.
    fn handle(&self, request: Request) -> BoxFuture<'static, Result<Frame, RequestError>>;
}
