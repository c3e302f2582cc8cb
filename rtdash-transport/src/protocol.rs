//! The session protocol: close codes, error codes, client messages, the
//! frames a session sends itself (`welcome`, `snapshot`, `error`, ...) and the
//! JSON string writer. What a published frame carries is the publisher's
//! business. `docs/PROTOCOL.md` is the human-readable spec.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Frame;

/// Longest topic name accepted from a client, in bytes.
pub(crate) const MAX_TOPIC_LEN: usize = 256;

/// A WebSocket close code the server sends, with its meaning.
///
/// Codes below 4000 are the standard ones of RFC 6455; 4000–4999 are this
/// protocol's own. SSE has no close frames: there the same conditions end the
/// stream after an `error` event carrying the code (see `docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure (the client closed, or its session ended cleanly).
    Normal,
    /// 1001: the server is shutting down; reconnect (to another node).
    GoingAway,
    /// 1003: the client sent a binary frame; only JSON text is accepted.
    UnsupportedData,
    /// 1008: policy violation, e.g. the client exceeded its message rate.
    PolicyViolation,
    /// 1009: a client message exceeded `max_message_bytes`.
    MessageTooBig,
    /// 1011: an internal server error.
    InternalError,
    /// 1013: try again later: too many connections, or auth backend down.
    TryAgainLater,
    /// 4000: bad request: a malformed first message, or a message other
    /// than `hello` before authentication.
    BadRequest,
    /// 4001: authentication failed (bad or unknown token).
    AuthFailed,
    /// 4002: timeout: no `hello` within `hello_timeout`, or nothing received
    /// within `idle_timeout`.
    Timeout,
    /// 4003: the token is valid but its subject may not connect, or may not see a
    /// topic named in the connection URL.
    Forbidden,
    /// 4004: a topic named in the connection URL does not exist (see
    /// `Transport::restrict_topics`).
    UnknownTopic,
    /// 4008: slow consumer evicted: the client did not read fast enough and
    /// the hub's policy is to disconnect.
    SlowConsumer,
    /// 4009: the token expired (at connect time or during the session).
    TokenExpired,
}

impl CloseCode {
    /// The numeric code sent in the close frame.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::UnsupportedData => 1003,
            Self::PolicyViolation => 1008,
            Self::MessageTooBig => 1009,
            Self::InternalError => 1011,
            Self::TryAgainLater => 1013,
            Self::BadRequest => 4000,
            Self::AuthFailed => 4001,
            Self::Timeout => 4002,
            Self::Forbidden => 4003,
            Self::UnknownTopic => 4004,
            Self::SlowConsumer => 4008,
            Self::TokenExpired => 4009,
        }
    }

    /// The code for a number, if it is one of this protocol's codes.
    #[must_use]
    pub const fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1003 => Self::UnsupportedData,
            1008 => Self::PolicyViolation,
            1009 => Self::MessageTooBig,
            1011 => Self::InternalError,
            1013 => Self::TryAgainLater,
            4000 => Self::BadRequest,
            4001 => Self::AuthFailed,
            4002 => Self::Timeout,
            4003 => Self::Forbidden,
            4004 => Self::UnknownTopic,
            4008 => Self::SlowConsumer,
            4009 => Self::TokenExpired,
            _ => return None,
        })
    }

    /// A short machine-friendly name (`"going_away"`, `"auth_failed"`, ...),
    /// also used as the `code` of the SSE `error` event that ends a stream.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::GoingAway => "going_away",
            Self::UnsupportedData => "unsupported_data",
            Self::PolicyViolation => "policy_violation",
            Self::MessageTooBig => "message_too_big",
            Self::InternalError => "internal_error",
            Self::TryAgainLater => "try_again_later",
            Self::BadRequest => "bad_request",
            Self::AuthFailed => "auth_failed",
            Self::Timeout => "timeout",
            Self::Forbidden => "forbidden",
            Self::UnknownTopic => "unknown_topic",
            Self::SlowConsumer => "slow_consumer",
            Self::TokenExpired => "token_expired",
        }
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

/// The `code` of an `error` frame: a request was refused but the session
/// goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The message was not valid JSON, lacked a field, or had a bad value.
    BadRequest,
    /// The message's `type` is not one the server knows.
    UnknownType,
    /// The principal may not see the topic.
    Forbidden,
    /// The topic does not exist (see `Transport::restrict_topics`).
    UnknownTopic,
    /// The subscription would exceed `max_subscriptions`.
    TooManySubscriptions,
    /// A second `hello` on an authenticated session.
    AlreadyAuthenticated,
    /// A topic in `unsubscribe` was not subscribed.
    NotSubscribed,
    /// The topic does not exist and the server's hub already holds its
    /// maximum number of topics (`HubConfig::max_topics`); subscribing it may
    /// succeed later, when other clients have left theirs.
    TooManyTopics,
    /// A request would exceed `max_requests_in_flight`: wait for an answer first.
    TooManyRequests,
    /// An answer would exceed `max_response_bytes`: ask for less.
    ResponseTooLarge,
    /// A request names something that does not exist (e.g. a widget).
    NotFound,
    /// A request cannot be answered now (e.g. a store is unreachable); retry later.
    Unavailable,
    /// A request failed on the server's side.
    Internal,
}

impl ErrorCode {
    /// The string sent in the frame's `code` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::Forbidden => "forbidden",
            Self::UnknownTopic => "unknown_topic",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::NotSubscribed => "not_subscribed",
            Self::TooManyTopics => "too_many_topics",
            Self::TooManyRequests => "too_many_requests",
            Self::ResponseTooLarge => "response_too_large",
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds since the Unix epoch, the unit of every time field on the
/// wire (`sent_at`, `event_time`, `window_end`, `server_time`,
/// `expires_at`). Times before 1970 are negative.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// assert_eq!(rtdash_transport::unix_millis(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
/// ```
#[must_use]
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Encodes a snapshot frame from already-encoded frames (in seq order).
///
/// `since` is set when the snapshot only carries changes after that seq (an
/// SSE resume).
pub(crate) fn encode_snapshot<'a>(
    topic: &str,
    seq: u64,
    sent_at: i64,
    since: Option<u64>,
    frames: impl Iterator<Item = &'a Frame> + Clone,
) -> Frame {
    let body: usize = frames.clone().map(|f| f.len() + 1).sum();
    let mut out = String::with_capacity(96 + topic.len() + body);
    out.push_str(r#"{"type":"snapshot","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(out, r#","seq":{seq},"sent_at":{sent_at}"#);
    if let Some(since) = since {
        let _ = write!(out, r#","since":{since}"#);
    }
    out.push_str(r#","frames":["#);
    for (i, f) in frames.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f.as_str());
    }
    out.push_str("]}");
    Frame::from_string(out)
}

/// Appends `s` to `out` as a JSON string literal: quoted, with `"`, `\\` and the
/// control characters escaped (`\n`, `\r`, `\t`, else `\u00XX`), so the result never
/// contains a line break. Everything else, non-ASCII included, is copied as is.
///
/// For publishers that write their frames by hand, as the transport writes its own and the
/// `rtdash` facade writes the dashboard frames.
///
/// # Examples
///
/// ```
/// let mut out = String::from(r#"{"type":"notice","text":"#);
/// rtdash_transport::push_json_str(&mut out, "line 1\n\"quoted\" é");
/// out.push('}');
/// assert_eq!(out, r#"{"type":"notice","text":"line 1\n\"quoted\" é"}"#);
/// ```
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Server frames that are built per session (rare), encoded with serde.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SessionFrame<'a> {
    Welcome {
        session: u64,
        subject: &'a str,
        heartbeat_ms: u64,
        idle_timeout_ms: u64,
        max_subscriptions: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
        server_time: i64,
    },
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
    },
    Unsubscribed {
        topics: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a serde_json::Value>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        t: Option<&'a serde_json::Value>,
        server_time: i64,
    },
}

impl SessionFrame<'_> {
    pub(crate) fn encode(&self) -> Frame {
        // Serializing these plain structs into a String cannot fail.
        Frame::from_string(serde_json::to_string(self).unwrap_or_default())
    }
}

/// A message from a client, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientMessage {
    Hello {
        token: String,
        id: Option<serde_json::Value>,
    },
    Subscribe {
        topics: Vec<String>,
        id: Option<serde_json::Value>,
    },
    Unsubscribe {
        topics: Vec<String>,
        id: Option<serde_json::Value>,
    },
    Ping {
        t: Option<serde_json::Value>,
    },
}

/// Why a client message could not be used, with the request's `id` if one
/// could be read from it (error frames echo it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseError {
    /// Not JSON, not an object, no string `type`, or bad fields.
    BadRequest {
        message: String,
        id: Option<serde_json::Value>,
    },
    /// A `type` the server does not know.
    UnknownType {
        ty: String,
        id: Option<serde_json::Value>,
    },
}

impl ParseError {
    /// A bad request; its `id` is read from `text` if it is a JSON object
    /// with one, whatever else is wrong with it.
    fn bad_request(text: &str, message: String) -> Self {
        Self::BadRequest {
            message,
            id: request_id(text),
        }
    }

    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest { .. } => ErrorCode::BadRequest,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
        }
    }

    pub(crate) fn message(&self) -> Cow<'_, str> {
        match self {
            Self::BadRequest { message, .. } => Cow::Borrowed(message),
            Self::UnknownType { ty, .. } => Cow::Owned(format!(
                "unknown message type `{ty}`; expected hello, subscribe, unsubscribe or ping"
            )),
        }
    }

    /// The `type` of an unknown-type message.
    pub(crate) fn unknown_type(&self) -> Option<&str> {
        match self {
            Self::UnknownType { ty, .. } => Some(ty),
            Self::BadRequest { .. } => None,
        }
    }

    /// The request's `id`, if one could be read.
    pub(crate) fn id(&self) -> Option<&serde_json::Value> {
        match self {
            Self::BadRequest { id, .. } | Self::UnknownType { id, .. } => id.as_ref(),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
}

/// Only the `id` of a message (on the error path, whatever else is wrong).
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// The `id` of a client message that is a JSON object with one.
fn request_id(text: &str) -> Option<serde_json::Value> {
    // A derived struct would also read a JSON array, as its fields in order.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id
}

#[derive(Deserialize)]
struct HelloBody {
    token: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TopicsBody {
    topics: Vec<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PingBody {
    #[serde(default)]
    t: Option<serde_json::Value>,
}

/// Parses one client text message.
pub(crate) fn parse_client(text: &str) -> Result<ClientMessage, ParseError> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        ParseError::bad_request(
            text,
            format!("expected a JSON object with a string `type` field: {e}"),
        )
    })?;
    let bad = |e: serde_json::Error| {
        ParseError::bad_request(text, format!("bad `{}` message: {e}", env.ty))
    };
    match env.ty.as_ref() {
        "hello" => {
            let b: HelloBody = serde_json::from_str(text).map_err(bad)?;
            Ok(ClientMessage::Hello {
                token: b.token,
                id: b.id,
            })
        }
        "subscribe" | "unsubscribe" => {
            let b: TopicsBody = serde_json::from_str(text).map_err(bad)?;
            if b.topics.is_empty() {
                return Err(ParseError::BadRequest {
                    message: format!(
                        "bad `{}` message: `topics` is empty; list at least one topic",
                        env.ty
                    ),
                    id: b.id,
                });
            }
            if let Some(message) = b.topics.iter().find_map(|t| check_topic(t).err()) {
                return Err(ParseError::BadRequest { message, id: b.id });
            }
            if env.ty == "subscribe" {
                Ok(ClientMessage::Subscribe {
                    topics: b.topics,
                    id: b.id,
                })
            } else {
                Ok(ClientMessage::Unsubscribe {
                    topics: b.topics,
                    id: b.id,
                })
            }
        }
        "ping" => {
            let b: PingBody = serde_json::from_str(text).map_err(bad)?;
            Ok(ClientMessage::Ping { t: b.t })
        }
        other => Err(ParseError::UnknownType {
            ty: crate::session::clip(other, 64),
            id: request_id(text),
        }),
    }
}

/// Checks a topic name from a client, wherever it comes from (a `subscribe`
/// or `unsubscribe` message, the `topics` of a WebSocket or SSE URL): 1 to
/// [`MAX_TOPIC_LEN`] bytes, no control characters. The error is the message
/// to send back (an `error` frame, or the body of an HTTP 400), with the
/// topic cut to 64 bytes.
pub(crate) fn check_topic(t: &str) -> Result<(), String> {
    if !t.is_empty() && t.len() <= MAX_TOPIC_LEN && !t.chars().any(char::is_control) {
        return Ok(());
    }
    let shown = crate::session::clip(t, 64);
    let cut = if shown.len() < t.len() {
        format!(" (cut from {} bytes)", t.len())
    } else {
        String::new()
    };
    Err(format!(
        "bad topic {shown:?}{cut}: topics are 1 to {MAX_TOPIC_LEN} bytes without control characters"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn close_codes_round_trip() {
        for c in [
            CloseCode::Normal,
            CloseCode::GoingAway,
            CloseCode::UnsupportedData,
            CloseCode::PolicyViolation,
            CloseCode::MessageTooBig,
            CloseCode::InternalError,
            CloseCode::TryAgainLater,
            CloseCode::BadRequest,
            CloseCode::AuthFailed,
            CloseCode::Timeout,
            CloseCode::Forbidden,
            CloseCode::SlowConsumer,
            CloseCode::TokenExpired,
        ] {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
        }
        assert_eq!(CloseCode::from_code(1234), None);
    }

    #[test]
    fn snapshot_embeds_frames() {
        let a = Frame::from_static(r#"{"type":"update","topic":"t","seq":1,"items":[]}"#);
        let b = Frame::from_static(r#"{"type":"update","topic":"t","seq":2,"items":[]}"#);
        let s = encode_snapshot("t", 2, 9, Some(0), [&a, &b].into_iter());
        let v: serde_json::Value = serde_json::from_str(s.as_str()).unwrap();
        assert_eq!(v["type"], "snapshot");
        assert_eq!(v["since"], 0);
        assert_eq!(v["frames"][1]["seq"], 2);
        let empty = encode_snapshot("t", 0, 9, None, std::iter::empty());
        let v: serde_json::Value = serde_json::from_str(empty.as_str()).unwrap();
        assert_eq!(v["frames"].as_array().map(Vec::len), Some(0));
        assert!(v.get("since").is_none());
    }

    #[test]
    fn parses_every_client_message() {
        assert_eq!(
            parse_client(r#"{"type":"hello","token":"abc"}"#),
            Ok(ClientMessage::Hello {
                token: "abc".into(),
                id: None,
            })
        );
        assert_eq!(
            parse_client(r#"{"type":"subscribe","topics":["a","b"],"id":7,"extra":1}"#),
            Ok(ClientMessage::Subscribe {
                topics: vec!["a".into(), "b".into()],
                id: Some(serde_json::json!(7)),
            })
        );
        assert_eq!(
            parse_client(r#"{"topics":["a"],"type":"unsubscribe"}"#),
            Ok(ClientMessage::Unsubscribe {
                topics: vec!["a".into()],
                id: None,
            })
        );
        assert_eq!(
            parse_client(r#"{"type":"ping","t":1.5}"#),
            Ok(ClientMessage::Ping {
                t: Some(serde_json::json!(1.5))
            })
        );
    }

    #[test]
    fn rejects_bad_client_messages() {
        for bad in [
            "",
            "garbage",
            "[1,2]",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"hello"}"#,
            r#"{"type":"subscribe","topics":[]}"#,
            r#"{"type":"subscribe","topics":"a"}"#,
            r#"{"type":"subscribe","topics":[""]}"#,
            "{\"type\":\"subscribe\",\"topics\":[\"a\\u0000\"]}",
        ] {
            assert!(
                matches!(parse_client(bad), Err(ParseError::BadRequest { .. })),
                "{bad}"
            );
        }
        let long = format!(r#"{{"type":"subscribe","topics":["{}"]}}"#, "x".repeat(300));
        assert!(matches!(
            parse_client(&long),
            Err(ParseError::BadRequest { .. })
        ));
        let e = parse_client(r#"{"type":"launch_missiles"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownType);
        assert!(e.message().contains("launch_missiles"));
        assert_eq!(e.id(), None);
    }

    #[test]
    fn errors_carry_the_request_id_when_one_can_be_read() {
        let id = |text: &str| parse_client(text).unwrap_err().id().cloned();
        assert_eq!(
            id(r#"{"type":"subscribe","topics":"a","id":1}"#),
            Some(serde_json::json!(1))
        );
        assert_eq!(
            id(r#"{"type":"subscribe","topics":[],"id":"x"}"#),
            Some(serde_json::json!("x"))
        );
        assert_eq!(
            id(r#"{"type":"nope","id":[2]}"#),
            Some(serde_json::json!([2]))
        );
        assert_eq!(id(r#"{"type":7,"id":3}"#), Some(serde_json::json!(3)));
        assert_eq!(id(r#"{"type":"subscribe","topics":"a","id":null}"#), None);
        assert_eq!(id("not json"), None);
        assert_eq!(id(r#"[{"id":1}]"#), None);
    }

    #[test]
    fn topic_check_is_shared_and_clips_what_it_echoes() {
        assert_eq!(check_topic("dash-ops"), Ok(()));
        assert_eq!(check_topic(&"x".repeat(MAX_TOPIC_LEN)), Ok(()));
        for bad in [
            String::new(),
            "x".repeat(MAX_TOPIC_LEN + 1),
            "ctl\u{1}x".into(),
            "a\nb".into(),
        ] {
            let e = check_topic(&bad).unwrap_err();
            assert!(e.len() < 200, "{e}");
            let msg = format!(
                r#"{{"type":"subscribe","topics":[{}]}}"#,
                serde_json::json!(bad)
            );
            assert_eq!(parse_client(&msg).unwrap_err().message(), e);
        }
        assert!(
            check_topic(&"x".repeat(5_000))
                .unwrap_err()
                .contains("cut from 5000 bytes")
        );
    }

    #[test]
    fn unix_millis_handles_pre_epoch() {
        let t = UNIX_EPOCH - std::time::Duration::from_millis(5);
        assert_eq!(unix_millis(t), -5);
    }

    proptest! {
        #[test]
        fn json_strings_round_trip(s in any::<String>()) {
            let mut out = String::new();
            push_json_str(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(back, s);
            prop_assert!(!out.contains('\n') && !out.contains('\r'));
        }

        #[test]
        fn parse_client_never_panics(s in "\\PC{0,64}") {
            let _ = parse_client(&s);
        }
    }
}
