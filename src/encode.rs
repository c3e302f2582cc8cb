//! Glue from the facade's types onto the transport's frame encoders
//! ([`rtdash_transport::encode_update`], [`rtdash_transport::encode_alert`]). The wire
//! format is written only by `rtdash-transport` (see `docs/PROTOCOL.md`); each frame is
//! encoded once per publish and shared by every subscriber.

use std::ops::Range;

use rtdash_core::Uuid;
use rtdash_transport::{self as wire, Frame};

use crate::{AlertCondition, AlertEvent, AlertState, WidgetState};

/// Appends `id` in its hyphenated lower-case form (as `Display` writes it) to `buf` and
/// returns where it went.
fn push_id(buf: &mut String, id: Uuid) -> Range<usize> {
    let start = buf.len();
    buf.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    start..buf.len()
}

/// The update frame of one dashboard's changed widgets.
pub(crate) fn update(topic: &str, seq: u64, sent_at: i64, items: &[WidgetState]) -> Frame {
    let mut ids = String::with_capacity(items.len() * 36);
    let id_ranges: Vec<Range<usize>> = items
        .iter()
        .map(|s| push_id(&mut ids, s.widget_id))
        .collect();
    // All groups of all items in one buffer; each item borrows its run of it.
    let groups: Vec<wire::GroupValue<'_>> = items
        .iter()
        .flat_map(|s| s.groups.as_deref().unwrap_or_default())
        .map(|g| wire::GroupValue {
            group: &g.group,
            value: g.value,
            event_time: g.last_event_time.map(|t| t.as_millis()),
            stale: g.stale,
            count: g.count,
        })
        .collect();
    let mut next_group = 0;
    let values: Vec<wire::WidgetValue<'_>> = items
        .iter()
        .zip(id_ranges)
        .map(|(s, id)| wire::WidgetValue {
            widget: &ids[id],
            value: s.value,
            window_end: s.window_end.as_millis(),
            event_time: s.last_event_time.map(|t| t.as_millis()),
            stale: s.stale,
            count: s.count,
            groups: s.groups.as_ref().map(|g| {
                let run = &groups[next_group..next_group + g.len()];
                next_group += g.len();
                run
            }),
        })
        .collect();
    wire::encode_update(topic, seq, sent_at, &values)
}

/// The alert frame of one alert transition.
pub(crate) fn alert(topic: &str, seq: u64, sent_at: i64, a: &AlertEvent) -> Frame {
    let mut ids = String::with_capacity(72);
    let rule = push_id(&mut ids, a.rule_id);
    let widget = push_id(&mut ids, a.widget_id);
    let value = wire::AlertValue {
        rule_id: &ids[rule],
        widget: &ids[widget],
        state: match a.state {
            AlertState::Firing => wire::AlertState::Firing,
            AlertState::Resolved => wire::AlertState::Resolved,
        },
        value: a.value,
        condition: match a.condition {
            AlertCondition::Above => wire::AlertCondition::Above,
            AlertCondition::Below => wire::AlertCondition::Below,
        },
        threshold: a.threshold,
        group: a.group.as_deref(),
        at: a.at.as_millis(),
        message: &a.message,
    };
    wire::encode_alert(topic, seq, sent_at, &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupValue;
    use rtdash_core::Timestamp;

    fn state(id: u128, groups: Option<Vec<GroupValue>>) -> WidgetState {
        WidgetState {
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(id),
            value: Some(1.5),
            count: 3,
            window_start: Timestamp::from_millis(0),
            window_end: Timestamp::from_millis(1000),
            last_event_time: None,
            stale: true,
            groups,
            evaluated_at: Timestamp::from_millis(1000),
        }
    }

    fn group(name: &str, t: i64) -> GroupValue {
        GroupValue {
            group: name.into(),
            value: None,
            count: 0,
            last_event_time: Some(Timestamp::from_millis(t)),
            stale: false,
        }
    }

    #[test]
    fn update_frame_is_json() {
        let items = [
            state(1, Some(vec![group("e\"u", 5), group("us", 6)])),
            state(2, None),
            state(3, Some(vec![group("ap", 7)])),
        ];
        let f = update("o\"ps", 7, 9, &items);
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        assert_eq!(v["topic"], "o\"ps");
        let it = &v["items"];
        assert_eq!(it[0]["widget"], Uuid::from_u128(1).to_string());
        assert_eq!(it[0]["stale"], true);
        assert_eq!(it[0]["count"], 3);
        assert_eq!(it[0]["event_time"], serde_json::Value::Null);
        assert_eq!(it[0]["groups"][0]["group"], "e\"u");
        assert_eq!(it[0]["groups"][0]["event_time"], 5);
        assert_eq!(it[0]["groups"][1]["group"], "us");
        assert!(it[1].get("groups").is_none());
        assert_eq!(it[2]["widget"], Uuid::from_u128(3).to_string());
        assert_eq!(it[2]["groups"].as_array().map(Vec::len), Some(1));
        assert_eq!(it[2]["groups"][0]["group"], "ap");
    }

    #[test]
    fn alert_frame_is_json() {
        let a = AlertEvent {
            rule_id: Uuid::from_u128(9),
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(1),
            state: AlertState::Firing,
            value: Some(97.5),
            condition: AlertCondition::Above,
            threshold: 90.0,
            group: Some("eu".into()),
            at: Timestamp::from_millis(1000),
            message: "cpu \"high\"".into(),
        };
        let f = alert("ops", 3, 4, &a);
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        assert_eq!(v["type"], "alert");
        assert_eq!(v["rule_id"], Uuid::from_u128(9).to_string());
        assert_eq!(v["widget"], Uuid::from_u128(1).to_string());
        assert_eq!(v["state"], "firing");
        assert_eq!(v["condition"], "above");
        assert_eq!(v["threshold"], 90.0);
        assert_eq!(v["group"], "eu");
        assert_eq!(v["at"], 1000);
        assert_eq!(v["message"], "cpu \"high\"");
    }
}
