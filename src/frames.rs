//! The dashboard frames a dashboard's topic carries: `update`, `alert` and `dashboard`
//! (`docs/PROTOCOL.md` is the contract), encoded straight from the engine's own types.
//!
//! The transport frames the session around them (`welcome`, `snapshot`, `error`, ...) and
//! never looks inside. Each frame is encoded once per publish, inside
//! [`Hub::publish_with`](rtdash_fanout::Hub::publish_with) so it carries the hub's `seq`,
//! and shared by every subscriber.

use std::fmt::Write as _;

use rtdash_core::Uuid;
use rtdash_transport::{Frame, push_json_str};

use crate::{AlertEvent, WidgetState};

/// What happened to a dashboard, the `event` field of a `dashboard` frame
/// ([`encode_dashboard_event`]).
///
/// The [`Registry`](crate::Registry) publishes one on the dashboard's topic after each
/// change, so clients reload the dashboard's definition.
///
/// # Examples
///
/// ```
/// use rtdash::fanout::Event;
/// use rtdash::{DashboardDoc, DashboardEvent, Engine, EngineConfig, MemoryStore};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let dashboards = engine.dashboards();
/// dashboards.create(DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?)?;
/// let sub = engine.subscribe("ops")?;
/// dashboards.put(DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations EU"}"#)?)?;
///
/// assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { .. })));
/// let Ok(Event::Message { msg, .. }) = sub.try_recv() else { panic!("no notice") };
/// assert!(msg.as_str().starts_with(r#"{"type":"dashboard","topic":"ops""#));
/// assert!(msg.as_str().ends_with(r#""event":"updated"}"#));
/// assert_eq!(DashboardEvent::Updated.as_str(), "updated");
/// # Ok::<(), rtdash::Error>(())
/// ```
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

/// Encodes one `update` frame carrying the new values of several widgets of the
/// dashboard published on `topic`.
///
/// `sent_at` is the server time at encoding, ms since the Unix epoch. Values that are
/// `None`, NaN or infinite are sent as `null`; `groups` is sent only for `group_by`
/// widgets. The frame is tagged ([`Frame::event_time`]) with the newest event time among
/// the values that are not stale, so the transport can measure event → socket latency.
///
/// # Examples
///
/// ```
/// use rtdash::{GroupValue, Timestamp, Uuid, WidgetState, encode_update};
///
/// let groups = vec![GroupValue {
///     group: "eu".into(),
///     value: Some(3.0),
///     count: 2,
///     last_event_time: Some(Timestamp::from_millis(1_700_000_000_100)),
///     stale: false,
/// }];
/// let state = WidgetState {
///     dashboard_id: "ops".into(),
///     widget_id: Uuid::from_u128(1),
///     value: Some(12.5),
///     count: 5,
///     window_start: Timestamp::from_millis(1_699_999_940_000),
///     window_end: Timestamp::from_millis(1_700_000_000_000),
///     last_event_time: Some(Timestamp::from_millis(1_700_000_000_100)),
///     stale: false,
///     groups: Some(groups),
///     evaluated_at: Timestamp::from_millis(1_700_000_000_120),
/// };
/// let frame = encode_update("ops", 42, 1_700_000_000_120, &[state]);
/// assert_eq!(
///     frame.as_str(),
///     concat!(
///         r#"{"type":"update","topic":"ops","seq":42,"sent_at":1700000000120,"items":["#,
///         r#"{"widget":"00000000-0000-0000-0000-000000000001","value":12.5,"#,
///         r#""window_end":1700000000000,"event_time":1700000000100,"#,
///         r#""stale":false,"count":5,"groups":[{"group":"eu","value":3.0,"#,
///         r#""event_time":1700000000100,"stale":false,"count":2}]}]}"#,
///     )
/// );
/// assert_eq!(frame.event_time(), Some(1_700_000_000_100));
/// ```
#[must_use]
pub fn encode_update(topic: &str, seq: u64, sent_at: i64, items: &[WidgetState]) -> Frame {
    let groups: usize = items
        .iter()
        .map(|i| i.groups.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = String::with_capacity(96 + topic.len() + items.len() * 160 + groups * 96);
    out.push_str(r#"{"type":"update","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(out, r#","seq":{seq},"sent_at":{sent_at},"items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_update_item(&mut out, item);
    }
    out.push_str("]}");
    Frame::from_string(out).with_event_time(newest_event_time(items))
}

/// The newest event among the fresh values: what a client sees as "now" (the frame's
/// [`event_time`](Frame::event_time) tag).
pub(crate) fn newest_event_time(items: &[WidgetState]) -> Option<i64> {
    items
        .iter()
        .filter(|i| !i.stale)
        .filter_map(|i| i.last_event_time)
        .max()
        .map(|t| t.as_millis())
}

/// Writes one item of an `update` frame's `items`.
pub(crate) fn push_update_item(out: &mut String, item: &WidgetState) {
    out.push_str(r#"{"widget":"#);
    push_uuid(out, item.widget_id);
    out.push_str(r#","value":"#);
    push_json_num(out, item.value);
    let _ = write!(
        out,
        r#","window_end":{},"event_time":"#,
        item.window_end.as_millis()
    );
    push_json_int(out, item.last_event_time.map(|t| t.as_millis()));
    let _ = write!(out, r#","stale":{},"count":{}"#, item.stale, item.count);
    if let Some(groups) = &item.groups {
        out.push_str(r#","groups":["#);
        for (j, g) in groups.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"group":"#);
            push_json_str(out, &g.group);
            out.push_str(r#","value":"#);
            push_json_num(out, g.value);
            out.push_str(r#","event_time":"#);
            push_json_int(out, g.last_event_time.map(|t| t.as_millis()));
            let _ = write!(out, r#","stale":{},"count":{}}}"#, g.stale, g.count);
        }
        out.push(']');
    }
    out.push('}');
}

/// Encodes one `alert` frame: an alert rule of the dashboard published on `topic` started
/// or stopped firing.
///
/// Like [`encode_update`], call it once per publish. A `None`, NaN or infinite `value` or
/// `threshold` is sent as `null`; `group` is sent only when the event has one. The frame
/// carries no event time (alerts are not counted in the push latency).
///
/// # Examples
///
/// ```
/// use rtdash::{AlertCondition, AlertEvent, AlertSeverity, AlertState, Timestamp, Uuid, encode_alert};
///
/// let alert = AlertEvent {
///     rule_id: Uuid::from_u128(9),
///     dashboard_id: "ops".into(),
///     widget_id: Uuid::from_u128(1),
///     state: AlertState::Firing,
///     value: Some(97.5),
///     condition: AlertCondition::Above,
///     threshold: 90.0,
///     severity: AlertSeverity::Critical,
///     group: None,
///     at: Timestamp::from_millis(1_700_000_000_000),
///     message: "cpu above 90".into(),
/// };
/// let frame = encode_alert("ops", 7, 1_700_000_000_120, &alert);
/// assert_eq!(
///     frame.as_str(),
///     concat!(
///         r#"{"type":"alert","topic":"ops","seq":7,"sent_at":1700000000120,"#,
///         r#""rule_id":"00000000-0000-0000-0000-000000000009","#,
///         r#""widget":"00000000-0000-0000-0000-000000000001","state":"firing","value":97.5,"#,
///         r#""condition":"above","threshold":90.0,"severity":"critical","at":1700000000000,"#,
///         r#""message":"cpu above 90"}"#,
///     )
/// );
/// ```
#[must_use]
pub fn encode_alert(topic: &str, seq: u64, sent_at: i64, alert: &AlertEvent) -> Frame {
    let mut out = String::with_capacity(272 + topic.len() + alert.message.len());
    out.push_str(r#"{"type":"alert","topic":"#);
    push_json_str(&mut out, topic);
    let _ = write!(out, r#","seq":{seq},"sent_at":{sent_at},"rule_id":"#);
    push_uuid(&mut out, alert.rule_id);
    out.push_str(r#","widget":"#);
    push_uuid(&mut out, alert.widget_id);
    let _ = write!(out, r#","state":"{}","value":"#, alert.state.as_str());
    push_json_num(&mut out, alert.value);
    let _ = write!(
        out,
        r#","condition":"{}","threshold":"#,
        alert.condition.as_str()
    );
    push_json_num(&mut out, Some(alert.threshold));
    let _ = write!(out, r#","severity":"{}""#, alert.severity.as_str());
    if let Some(g) = &alert.group {
        out.push_str(r#","group":"#);
        push_json_str(&mut out, g);
    }
    let _ = write!(out, r#","at":{},"message":"#, alert.at.as_millis());
    push_json_str(&mut out, &alert.message);
    out.push('}');
    Frame::from_string(out)
}

/// Encodes one `dashboard` frame: the dashboard published on `topic` was created, changed
/// or deleted, so clients should reload its definition.
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardEvent, encode_dashboard_event};
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

/// Appends `id` as a JSON string in its hyphenated lower-case form (as `Display` writes
/// it; nothing in it needs escaping).
fn push_uuid(out: &mut String, id: Uuid) {
    out.push('"');
    out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    out.push('"');
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertCondition, AlertSeverity, AlertState, GroupValue};
    use proptest::prelude::*;
    use rtdash_core::Timestamp;

    fn ms(t: i64) -> Timestamp {
        Timestamp::from_millis(t)
    }

    fn state(id: u128, value: Option<f64>, event_time: Option<i64>, stale: bool) -> WidgetState {
        WidgetState {
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(id),
            value,
            count: 0,
            window_start: ms(0),
            window_end: ms(5),
            last_event_time: event_time.map(ms),
            stale,
            groups: None,
            evaluated_at: ms(5),
        }
    }

    fn group(name: &str, value: Option<f64>, event_time: Option<i64>, stale: bool) -> GroupValue {
        GroupValue {
            group: name.into(),
            value,
            count: 0,
            last_event_time: event_time.map(ms),
            stale,
        }
    }

    fn alert() -> AlertEvent {
        AlertEvent {
            rule_id: Uuid::from_u128(9),
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(1),
            state: AlertState::Resolved,
            value: Some(f64::NAN),
            condition: AlertCondition::Below,
            threshold: f64::NEG_INFINITY,
            severity: AlertSeverity::Info,
            group: None,
            at: ms(-3),
            message: "line\nbreak \"q\"".into(),
        }
    }

    fn parse(f: &Frame) -> serde_json::Value {
        serde_json::from_str(f.as_str()).unwrap()
    }

    /// The `update` example of `docs/PROTOCOL.md`, byte for byte (without its spaces).
    #[test]
    fn update_matches_the_protocol_example() {
        let id = |s: &str| Uuid::parse_str(s).unwrap();
        let mut a = state(0, Some(12.5), Some(1_700_000_000_100), false);
        a.widget_id = id("6f1c2a9e-0b7d-4c1e-9a51-2f3d4e5a6b7c");
        a.window_end = ms(1_700_000_000_000);
        a.count = 18;
        let mut b = state(0, None, None, true);
        b.widget_id = id("0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a");
        b.window_end = ms(1_700_000_000_000);
        let mut c = state(0, None, Some(1_700_000_000_090), false);
        c.widget_id = id("9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d");
        c.window_end = ms(1_700_000_000_000);
        c.count = 7;
        let mut eu = group("eu", Some(41.0), Some(1_700_000_000_090), false);
        eu.count = 5;
        let mut us = group("us", Some(3.5), Some(1_699_999_990_000), true);
        us.count = 2;
        c.groups = Some(vec![eu, us]);
        let f = encode_update("dash-ops", 42, 1_700_000_000_120, &[a, b, c]);
        assert_eq!(
            f.as_str(),
            concat!(
                r#"{"type":"update","topic":"dash-ops","seq":42,"sent_at":1700000000120,"items":["#,
                r#"{"widget":"6f1c2a9e-0b7d-4c1e-9a51-2f3d4e5a6b7c","value":12.5,"#,
                r#""window_end":1700000000000,"event_time":1700000000100,"stale":false,"count":18},"#,
                r#"{"widget":"0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a","value":null,"#,
                r#""window_end":1700000000000,"event_time":null,"stale":true,"count":0},"#,
                r#"{"widget":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","value":null,"#,
                r#""window_end":1700000000000,"event_time":1700000000090,"stale":false,"count":7,"#,
                r#""groups":[{"group":"eu","value":41.0,"event_time":1700000000090,"stale":false,"count":5},"#,
                r#"{"group":"us","value":3.5,"event_time":1699999990000,"stale":true,"count":2}]}]}"#,
            )
        );
    }

    #[test]
    fn update_is_valid_json_with_nulls_for_non_finite() {
        let f = encode_update(
            "a\"b",
            1,
            2,
            &[
                state(1, Some(f64::NAN), Some(4), false),
                state(2, None, Some(-6), false),
                state(3, Some(1e300), Some(6), false),
            ],
        );
        let v = parse(&f);
        assert_eq!(v["topic"], "a\"b");
        assert_eq!(v["items"][0]["widget"], Uuid::from_u128(1).to_string());
        assert!(v["items"][0]["value"].is_null());
        assert!(v["items"][1]["value"].is_null());
        assert_eq!(v["items"][1]["event_time"], -6);
        assert_eq!(v["items"][2]["value"], 1e300);
        assert!(!f.as_str().contains(['\n', '\r']));
    }

    #[test]
    fn update_carries_stale_count_and_groups() {
        let mut w = state(1, None, None, true);
        w.groups = Some(vec![
            group("e\"u\n", Some(f64::INFINITY), None, true),
            GroupValue {
                count: 4,
                ..group("us", Some(2.5), Some(9), false)
            },
        ]);
        let mut x = state(2, Some(1.0), Some(8), false);
        x.count = 7;
        let f = encode_update("t", 1, 2, &[w, x.clone()]);
        let v = parse(&f);
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
        assert!(!f.as_str().contains(['\n', '\r']));
        x.groups = Some(Vec::new());
        let empty = encode_update("t", 1, 2, &[x]);
        assert!(empty.as_str().contains(r#""groups":[]"#));
    }

    #[test]
    fn update_groups_stay_with_their_widget() {
        let mut a = state(1, None, None, false);
        a.groups = Some(vec![
            group("eu", None, Some(5), false),
            group("us", None, None, false),
        ]);
        let b = state(2, None, None, false);
        let mut c = state(3, None, None, false);
        c.groups = Some(vec![group("ap", None, Some(7), false)]);
        let v = parse(&encode_update("o\"ps", 7, 9, &[a, b, c]));
        let it = &v["items"];
        assert_eq!(it[0]["groups"][0]["group"], "eu");
        assert_eq!(it[0]["groups"][0]["event_time"], 5);
        assert_eq!(it[0]["groups"][1]["group"], "us");
        assert!(it[1].get("groups").is_none());
        assert_eq!(it[2]["widget"], Uuid::from_u128(3).to_string());
        assert_eq!(it[2]["groups"].as_array().map(Vec::len), Some(1));
        assert_eq!(it[2]["groups"][0]["group"], "ap");
    }

    #[test]
    fn update_frames_carry_the_newest_fresh_event_time() {
        let f = encode_update(
            "t",
            1,
            0,
            &[
                state(1, None, Some(5), false),
                state(2, None, Some(9), false),
            ],
        );
        assert_eq!(f.event_time(), Some(9));
        // A stale value's old event does not count; nor does a value without one.
        let f = encode_update(
            "t",
            1,
            0,
            &[state(1, None, Some(9), true), state(2, None, None, false)],
        );
        assert_eq!(f.event_time(), None);
    }

    #[test]
    fn alert_frame_fields_and_optional_group() {
        let mut a = alert();
        let f = encode_alert("o\"ps", 5, 6, &a);
        let v = parse(&f);
        assert_eq!(v["type"], "alert");
        assert_eq!(v["topic"], "o\"ps");
        assert_eq!(v["seq"], 5);
        assert_eq!(v["sent_at"], 6);
        assert_eq!(v["rule_id"], Uuid::from_u128(9).to_string());
        assert_eq!(v["widget"], Uuid::from_u128(1).to_string());
        assert_eq!(v["state"], "resolved");
        assert_eq!(v["condition"], "below");
        assert!(v["value"].is_null());
        assert!(v["threshold"].is_null());
        assert!(v.get("group").is_none());
        assert_eq!(v["at"], -3);
        assert_eq!(v["message"], "line\nbreak \"q\"");
        assert!(!f.as_str().contains(['\n', '\r']));
        assert_eq!(f.event_time(), None);
        a.group = Some("eu".into());
        a.state = AlertState::Firing;
        a.condition = AlertCondition::Above;
        let v = parse(&encode_alert("ops", 5, 6, &a));
        assert_eq!(v["group"], "eu");
        assert_eq!(v["state"], "firing");
        assert_eq!(v["condition"], "above");
    }

    #[test]
    fn dashboard_frames_name_the_event() {
        for (e, name) in [
            (DashboardEvent::Created, "created"),
            (DashboardEvent::Updated, "updated"),
            (DashboardEvent::Deleted, "deleted"),
        ] {
            let v = parse(&encode_dashboard_event("a\u{1}b", 3, 4, e));
            assert_eq!(v["type"], "dashboard");
            assert_eq!(v["topic"], "a\u{1}b");
            assert_eq!(v["event"], name);
            assert_eq!(
                (v["seq"].as_u64(), v["sent_at"].as_i64()),
                (Some(3), Some(4))
            );
        }
    }

    proptest! {
        #[test]
        fn update_frames_parse_back(
            topic in "\\PC{0,20}",
            seq in any::<u64>(),
            value in proptest::option::of(any::<f64>()),
            t in any::<i64>(),
        ) {
            let f = encode_update(&topic, seq, t, &[WidgetState {
                window_end: ms(t),
                ..state(1, value, Some(t), false)
            }]);
            let v = parse(&f);
            prop_assert_eq!(v["topic"].as_str(), Some(topic.as_str()));
            prop_assert_eq!(v["seq"].as_u64(), Some(seq));
            prop_assert_eq!(v["items"][0]["event_time"].as_i64(), Some(t));
            prop_assert_eq!(v["items"][0]["window_end"].as_i64(), Some(t));
            match value {
                // serde_json's default float parser may be 1 ULP off on subnormals, so
                // check the exact text (Rust's shortest round-trip form) instead.
                Some(x) if x.is_finite() => {
                    let text = format!("\"value\":{x:?},");
                    prop_assert!(f.as_str().contains(&text));
                    prop_assert_eq!(format!("{x:?}").parse::<f64>().ok(), Some(x));
                    prop_assert!(v["items"][0]["value"].is_number());
                }
                _ => prop_assert!(v["items"][0]["value"].is_null()),
            }
        }
    }
}
