//! The wire protocol: close codes, error codes, client messages and the
//! encoders for server frames. `docs/PROTOCOL.md` is the human-readable spec.

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
    /// 4003: the token is valid but its subject may not connect.
    Forbidden,
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
    /// The subscription would exceed `max_subscriptions`.
    TooManySubscriptions,
    /// A second `hello` on an authenticated session.
    AlreadyAuthenticated,
    /// A topic in `unsubscribe` was not subscribed.
    NotSubscribed,
}

impl ErrorCode {
    /// The string sent in the frame's `code` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::Forbidden => "forbidden",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::NotSubscribed => "not_subscribed",
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

/// One group's result inside a `group_by` widget's update item: the widget's
/// query evaluated over the series whose tag has the value `group`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupValue<'a> {
    /// The tag value (e.g. the region `"eu"`).
    pub group: &'a str,
    /// The group's aggregate; `None` (sent as `null`) when the window is
    /// empty. NaN and infinities are also sent as `null`.
    pub value: Option<f64>,
    /// Event time of the group's newest event, ms since the Unix epoch;
    /// `None` (sent as `null`) when the group has no event yet.
    pub event_time: Option<i64>,
    /// Whether the group's newest event is older than the staleness limit.
    pub stale: bool,
    /// How many events went into the value.
    pub count: u64,
}

/// One widget's new value inside an update frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidgetValue<'a> {
    /// The widget id (a UUID in rtdash dashboards).
    pub widget: &'a str,
    /// The aggregate; `None` (sent as `null`) when the window is empty.
    /// NaN and infinities are also sent as `null`.
    pub value: Option<f64>,
    /// End of the window the value covers, ms since the Unix epoch.
    pub window_end: i64,
    /// Event time of the newest event that went into the value, ms since the
    /// Unix epoch: clients subtract it from their clock to measure
    /// event→client latency. `None` (sent as `null`) when there is no event.
    pub event_time: Option<i64>,
    /// Whether the newest event is older than the staleness limit (the
    /// source may have stopped sending).
    pub stale: bool,
    /// How many events went into the value.
    pub count: u64,
    /// Per-group results of a `group_by` widget; `None` omits the `groups`
    /// field (widgets without `group_by`).
    pub groups: Option<&'a [GroupValue<'a>]>,
}

/// The state an alert rule entered, the `state` field of an alert frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlertState {
    /// The condition started to hold (`"firing"`).
    Firing,
    /// The condition stopped holding (`"resolved"`).
    Resolved,
}

impl AlertState {
    /// The string sent in the frame's `state` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// How an alert's value is compared with its threshold, the `condition`
/// field of an alert frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlertCondition {
    /// Fires while the value is above the threshold (`"above"`).
    Above,
    /// Fires while the value is below the threshold (`"below"`).
    Below,
}

impl AlertCondition {
    /// The string sent in the frame's `condition` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

/// One alert transition, the body of an alert frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertValue<'a> {
    /// The alert rule's id.
    pub rule_id: &'a str,
    /// The widget whose value the rule watches.
    pub widget: &'a str,
    /// Whether the rule started or stopped firing.
    pub state: AlertState,
    /// The value that caused the transition; `None`, NaN and infinities are
    /// sent as `null`.
    pub value: Option<f64>,
    /// How the value is compared with `threshold`.
    pub condition: AlertCondition,
    /// The rule's threshold (non-finite values are sent as `null`).
    pub threshold: f64,
    /// The group (tag value) of a `group_by` widget the transition is about;
    /// `None` omits the `group` field.
    pub group: Option<&'a str>,
    /// When the transition happened, ms since the Unix epoch.
    pub at: i64,
    /// A human-readable description.
    pub message: &'a str,
}

/// What happened to a dashboard, the `event` field of a dashboard frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DashboardEvent {
    /// The dashboard was created (`"created"`).
    Created,
    /// The dashboard or one of its widgets or rules changed (`"updated"`).
    Updated,
    /// The dashboard was deleted (`"deleted"`).
    Deleted,
}

impl DashboardEvent {
    /// The string sent in the frame's `event` field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// Encodes one update frame carrying several widgets' values.
///
/// Call it once per publish, typically inside
/// [`Hub::publish_with`](rtdash_fanout::Hub::publish_with) so `seq` is the
/// hub's sequence number; the frame is then shared by every subscriber.
/// `sent_at` is the server time at encoding, ms since the Unix epoch (see
/// [`unix_millis`]).
///
/// # Examples
///
/// ```
/// use rtdash_transport::{encode_update, GroupValue, WidgetValue};
///
/// let groups = [GroupValue {
///     group: "eu",
///     value: Some(3.0),
///     event_time: Some(1_700_000_000_100),
///     stale: false,
///     count: 2,
/// }];
/// let frame = encode_update("ops", 42, 1_700_000_000_120, &[WidgetValue {
///     widget: "w1",
///     value: Some(12.5),
///     window_end: 1_700_000_000_000,
///     event_time: Some(1_700_000_000_100),
///     stale: false,
///     count: 5,
///     groups: Some(&groups),
/// }]);
/// assert_eq!(
///     frame.as_str(),
///     concat!(
///         r#"{"type":"update","topic":"ops","seq":42,"sent_at":1700000000120,"items":["#,
///         r#"{"widget":"w1","value":12.5,"window_end":1700000000000,"event_time":1700000000100,"#,
///         r#""stale":false,"count":5,"groups":[{"group":"eu","value":3.0,"#,
///         r#""event_time":1700000000100,"stale":false,"count":2}]}]}"#,
///     )
/// );
/// ```
#[must_use]
pub fn encode_update(topic: &str, seq: u64, sent_at: i64, items: &[WidgetValue<'_>]) -> Frame {
    let groups: usize = items
        .iter()
        .map(|i| i.groups.map_or(0, <[GroupValue<'_>]>::len))
        .sum();
    let mut out = String::with_capacity(96 + topic.len() + items.len() * 160 + groups * 96);
    out.push_str(r#"{"type":"update","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(out, r#","seq":{seq},"sent_at":{sent_at},"items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"widget":"#);
        push_json_str(&mut out, item.widget);
        out.push_str(r#","value":"#);
        push_json_num(&mut out, item.value);
        let _ = write!(out, r#","window_end":{},"event_time":"#, item.window_end);
        push_json_int(&mut out, item.event_time);
        let _ = write!(out, r#","stale":{},"count":{}"#, item.stale, item.count);
        if let Some(groups) = item.groups {
            out.push_str(r#","groups":["#);
            for (j, g) in groups.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"group":"#);
                push_json_str(&mut out, g.group);
                out.push_str(r#","value":"#);
                push_json_num(&mut out, g.value);
                out.push_str(r#","event_time":"#);
                push_json_int(&mut out, g.event_time);
                let _ = write!(out, r#","stale":{},"count":{}}}"#, g.stale, g.count);
            }
            out.push(']');
        }
        out.push('}');
    }
    out.push_str("]}");
    // The newest event among the fresh values: what a client sees as "now".
    let newest = items
        .iter()
        .filter(|i| !i.stale)
        .filter_map(|i| i.event_time)
        .max();
    Frame::from_string(out).with_event_time(newest)
}

/// Encodes one alert frame: an alert rule started or stopped firing.
///
/// Like [`encode_update`], call it once per publish inside
/// [`Hub::publish_with`](rtdash_fanout::Hub::publish_with) on the topic of
/// the dashboard the rule belongs to.
///
/// # Examples
///
/// ```
/// use rtdash_transport::{encode_alert, AlertCondition, AlertState, AlertValue};
///
/// let frame = encode_alert("ops", 7, 1_700_000_000_120, &AlertValue {
///     rule_id: "r1",
///     widget: "w1",
///     state: AlertState::Firing,
///     value: Some(97.5),
///     condition: AlertCondition::Above,
///     threshold: 90.0,
///     group: None,
///     at: 1_700_000_000_000,
///     message: "cpu above 90",
/// });
/// assert_eq!(
///     frame.as_str(),
///     concat!(
///         r#"{"type":"alert","topic":"ops","seq":7,"sent_at":1700000000120,"rule_id":"r1","#,
///         r#""widget":"w1","state":"firing","value":97.5,"condition":"above","#,
///         r#""threshold":90.0,"at":1700000000000,"message":"cpu above 90"}"#,
///     )
/// );
/// ```
#[must_use]
pub fn encode_alert(topic: &str, seq: u64, sent_at: i64, alert: &AlertValue<'_>) -> Frame {
    let mut out = String::with_capacity(
        200 + topic.len() + alert.rule_id.len() + alert.widget.len() + alert.message.len(),
    );
    out.push_str(r#"{"type":"alert","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(out, r#","seq":{seq},"sent_at":{sent_at},"rule_id":"#);
    push_json_str(&mut out, alert.rule_id);
    out.push_str(r#","widget":"#);
    push_json_str(&mut out, alert.widget);
    let _ = write!(out, r#","state":"{}","value":"#, alert.state.as_str());
    push_json_num(&mut out, alert.value);
    let _ = write!(
        out,
        r#","condition":"{}","threshold":"#,
        alert.condition.as_str()
    );
    push_json_num(&mut out, Some(alert.threshold));
    if let Some(g) = alert.group {
        out.push_str(r#","group":"#);
        push_json_str(&mut out, g);
    }
    let _ = write!(out, r#","at":{},"message":"#, alert.at);
    push_json_str(&mut out, alert.message);
    out.push('}');
    Frame::from_string(out)
}

/// Encodes one dashboard frame: the dashboard published on `topic` was
/// created, changed or deleted, so clients should reload its definition.
///
/// # Examples
///
/// ```
/// use rtdash_transport::{encode_dashboard_event, DashboardEvent};
///
/// let frame = encode_dashboard_event("ops", 44, 1_700_000_000_120, DashboardEvent::Updated);
/// assert_eq!(
///     frame.as_str(),
///     r#"{"type":"dashboard","topic":"ops","seq":44,"sent_at":1700000000120,"event":"updated"}"#
/// );
/// ```
#[must_use]
pub fn encode_dashboard_event(topic: &str, seq: u64, sent_at: i64, event: DashboardEvent) -> Frame {
    let mut out = String::with_capacity(96 + topic.len());
    out.push_str(r#"{"type":"dashboard","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(
        out,
        r#","seq":{seq},"sent_at":{sent_at},"event":"{}"}}"#,
        event.as_str()
    );
    Frame::from_string(out)
}

/// Appends a number, or `null` for `None`, NaN and infinities.
fn push_json_num(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            let _ = write!(out, "{v:?}");
        }
        _ => out.push_str("null"),
    }
}

/// Appends an integer, or `null` for `None`.
fn push_json_int(out: &mut String, v: Option<i64>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
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

/// Appends `s` as a JSON string literal (quoted, escaped).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
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

/// Why a client message could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not JSON, not an object, no string `type`, or bad fields.
    BadRequest(String),
    /// A `type` the server does not know.
    UnknownType(String),
}

impl ParseError {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::UnknownType(_) => ErrorCode::UnknownType,
        }
    }

    pub(crate) fn message(&self) -> Cow<'_, str> {
        match self {
            Self::BadRequest(m) => Cow::Borrowed(m),
            Self::UnknownType(t) => Cow::Owned(format!(
                "unknown message type `{t}`; expected hello, subscribe, unsubscribe or ping"
            )),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
}

#[derive(Deserialize)]
struct HelloBody {
    token: String,
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
        ParseError::BadRequest(format!(
            "expected a JSON object with a string `type` field: {e}"
        ))
    })?;
    let bad =
        |e: serde_json::Error| ParseError::BadRequest(format!("bad `{}` message: {e}", env.ty));
    match env.ty.as_ref() {
        "hello" => {
            let b: HelloBody = serde_json::from_str(text).map_err(bad)?;
            Ok(ClientMessage::Hello { token: b.token })
        }
        "subscribe" | "unsubscribe" => {
            let b: TopicsBody = serde_json::from_str(text).map_err(bad)?;
            if b.topics.is_empty() {
                return Err(ParseError::BadRequest(format!(
                    "bad `{}` message: `topics` is empty; list at least one topic",
                    env.ty
                )));
            }
            if let Some(t) = b.topics.iter().find(|t| !valid_topic(t)) {
                return Err(ParseError::BadRequest(format!(
                    "bad topic {t:?}: topics are 1 to {MAX_TOPIC_LEN} bytes without control characters"
                )));
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
        other => Err(ParseError::UnknownType(truncate(other, 64).to_owned())),
    }
}

/// Whether a topic name is acceptable from a client.
pub(crate) fn valid_topic(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_TOPIC_LEN && !t.chars().any(char::is_control)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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
    fn update_is_valid_json_with_nulls_for_non_finite() {
        let f = encode_update(
            "a\"b",
            1,
            2,
            &[
                WidgetValue {
                    widget: "w",
                    value: Some(f64::NAN),
                    window_end: 3,
                    event_time: Some(4),
                    stale: false,
                    count: 0,
                    groups: None,
                },
                WidgetValue {
                    widget: "x",
                    value: None,
                    window_end: 5,
                    event_time: Some(-6),
                    stale: false,
                    count: 0,
                    groups: None,
                },
                WidgetValue {
                    widget: "y",
                    value: Some(1e300),
                    window_end: 5,
                    event_time: Some(6),
                    stale: false,
                    count: 0,
                    groups: None,
                },
            ],
        );
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        assert_eq!(v["topic"], "a\"b");
        assert!(v["items"][0]["value"].is_null());
        assert!(v["items"][1]["value"].is_null());
        assert_eq!(v["items"][1]["event_time"], -6);
        assert_eq!(v["items"][2]["value"], 1e300);
        assert!(!f.is_multiline());
    }

    #[test]
    fn update_carries_stale_count_and_groups() {
        let groups = [
            GroupValue {
                group: "e\"u\n",
                value: Some(f64::INFINITY),
                event_time: None,
                stale: true,
                count: 0,
            },
            GroupValue {
                group: "us",
                value: Some(2.5),
                event_time: Some(9),
                stale: false,
                count: 4,
            },
        ];
        let items = [
            WidgetValue {
                widget: "w",
                value: None,
                window_end: 10,
                event_time: None,
                stale: true,
                count: 0,
                groups: Some(&groups),
            },
            WidgetValue {
                widget: "x",
                value: Some(1.0),
                window_end: 10,
                event_time: Some(8),
                stale: false,
                count: 7,
                groups: None,
            },
        ];
        let f = encode_update("t", 1, 2, &items);
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        let w = &v["items"][0];
        assert_eq!(w["stale"], true);
        assert_eq!(w["count"], 0);
        assert!(w["event_time"].is_null());
        assert_eq!(w["groups"][0]["group"], "e\"u\n");
        assert!(w["groups"][0]["value"].is_null());
        assert!(w["groups"][0]["event_time"].is_null());
        assert_eq!(w["groups"][0]["stale"], true);
        assert_eq!(w["groups"][1]["value"], 2.5);
        assert_eq!(w["groups"][1]["event_time"], 9);
        assert_eq!(w["groups"][1]["count"], 4);
        assert!(v["items"][1].get("groups").is_none());
        assert_eq!(v["items"][1]["count"], 7);
        assert!(!f.is_multiline());
        let empty = encode_update(
            "t",
            1,
            2,
            &[WidgetValue {
                groups: Some(&[]),
                ..items[1]
            }],
        );
        assert!(empty.as_str().contains(r#""groups":[]"#));
    }

    #[test]
    fn alert_frame_fields_and_optional_group() {
        let mut a = AlertValue {
            rule_id: "r",
            widget: "w",
            state: AlertState::Resolved,
            value: Some(f64::NAN),
            condition: AlertCondition::Below,
            threshold: f64::NEG_INFINITY,
            group: None,
            at: -3,
            message: "line\nbreak \"q\"",
        };
        let f = encode_alert("o\"ps", 5, 6, &a);
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        assert_eq!(v["type"], "alert");
        assert_eq!(v["topic"], "o\"ps");
        assert_eq!(v["seq"], 5);
        assert_eq!(v["sent_at"], 6);
        assert_eq!(v["state"], "resolved");
        assert_eq!(v["condition"], "below");
        assert!(v["value"].is_null());
        assert!(v["threshold"].is_null());
        assert!(v.get("group").is_none());
        assert_eq!(v["at"], -3);
        assert_eq!(v["message"], "line\nbreak \"q\"");
        assert!(!f.is_multiline());
        a.group = Some("eu");
        a.state = AlertState::Firing;
        let v: serde_json::Value =
            serde_json::from_str(encode_alert("ops", 5, 6, &a).as_str()).unwrap();
        assert_eq!(v["group"], "eu");
        assert_eq!(v["state"], "firing");
    }

    #[test]
    fn dashboard_frames_name_the_event() {
        for (e, name) in [
            (DashboardEvent::Created, "created"),
            (DashboardEvent::Updated, "updated"),
            (DashboardEvent::Deleted, "deleted"),
        ] {
            let f = encode_dashboard_event("a\u{1}b", 3, 4, e);
            let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
            assert_eq!(v["type"], "dashboard");
            assert_eq!(v["topic"], "a\u{1}b");
            assert_eq!(v["event"], name);
            assert_eq!(
                (v["seq"].as_u64(), v["sent_at"].as_i64()),
                (Some(3), Some(4))
            );
        }
    }

    #[test]
    fn snapshot_embeds_frames() {
        let a = encode_update("t", 1, 0, &[]);
        let b = encode_update("t", 2, 0, &[]);
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
                token: "abc".into()
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
                matches!(parse_client(bad), Err(ParseError::BadRequest(_))),
                "{bad}"
            );
        }
        let long = format!(r#"{{"type":"subscribe","topics":["{}"]}}"#, "x".repeat(300));
        assert!(matches!(
            parse_client(&long),
            Err(ParseError::BadRequest(_))
        ));
        let e = parse_client(r#"{"type":"launch_missiles"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownType);
        assert!(e.message().contains("launch_missiles"));
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
        fn update_frames_parse_back(
            topic in "\\PC{0,20}",
            seq in any::<u64>(),
            value in proptest::option::of(any::<f64>()),
            t in any::<i64>(),
        ) {
            let f = encode_update(&topic, seq, t, &[WidgetValue { widget: &topic, value, window_end: t, event_time: Some(t), stale: false, count: 0, groups: None }]);
            let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
            prop_assert_eq!(v["topic"].as_str(), Some(topic.as_str()));
            prop_assert_eq!(v["seq"].as_u64(), Some(seq));
            prop_assert_eq!(v["items"][0]["event_time"].as_i64(), Some(t));
            match value {
                // serde_json's default float parser may be 1 ULP off on
                // subnormals, so check the exact text (Rust's shortest
                // round-trip form) instead.
                Some(x) if x.is_finite() => {
                    let text = format!("\"value\":{x:?},");
                    prop_assert!(f.as_str().contains(&text));
                    prop_assert_eq!(format!("{x:?}").parse::<f64>().ok(), Some(x));
                    prop_assert!(v["items"][0]["value"].is_number());
                }
                _ => prop_assert!(v["items"][0]["value"].is_null()),
            }
        }

        #[test]
        fn parse_client_never_panics(s in "\\PC{0,64}") {
            let _ = parse_client(&s);
        }
    }
}
