//! Plain data types of the engine's API.

use rtdash_core::{Tags, Timestamp, Uuid};
use serde::Serialize;

use crate::AlertEvent;

/// The conflation key of the engine's hub within a dashboard topic: a widget's value, or
/// an alert rule's state. The hub's last-value cache keeps the newest frame per key, so a
/// client that subscribes gets every widget's current value and every rule's last alert
/// state at once.
///
/// # Examples
///
/// ```
/// use rtdash::{Frame, FrameHub, Topic, Uuid, WidgetKey};
///
/// // A hub like the engine's: its cache keeps the newest frame per key of each topic.
/// let hub: FrameHub<WidgetKey> = FrameHub::default();
/// let topic: Topic = "ops".into();
/// let cpu = WidgetKey::Widget(Uuid::from_u128(1));
/// hub.publish(&topic, cpu, Frame::from_static(r#"{"type":"update","value":41}"#));
/// hub.publish(&topic, cpu, Frame::from_static(r#"{"type":"update","value":42}"#));
/// let rule = WidgetKey::Alert(Uuid::from_u128(9));
/// hub.publish(&topic, rule, Frame::from_static(r#"{"type":"alert","state":"firing"}"#));
///
/// // A new subscriber's snapshot: one frame per widget and per rule.
/// let snapshot = hub.snapshot(&topic);
/// assert_eq!(snapshot.messages.len(), 2);
/// assert_eq!(snapshot.messages[0].msg.as_str(), r#"{"type":"update","value":42}"#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WidgetKey {
    /// The value of a widget.
    Widget(Uuid),
    /// The state of an alert rule.
    Alert(Uuid),
}

/// The current value of a widget, as computed by the refresh scheduler or by
/// [`Engine::widget_value`](crate::Engine::widget_value).
///
/// Serialized (HTTP snapshot endpoint) as `{"dashboard_id", "widget", "value", "count",
/// "window_start", "window_end", "event_time", "stale", "groups"?, "evaluated_at"}`, times
/// in ms since the Unix epoch.
///
/// # Examples
///
/// ```
/// use rtdash::{Timestamp, Uuid, WidgetState};
///
/// let state = WidgetState {
///     dashboard_id: "ops".into(),
///     widget_id: Uuid::from_u128(1),
///     value: Some(2.0),
///     count: 2,
///     window_start: Timestamp::from_millis(1_699_999_941_000),
///     window_end: Timestamp::from_millis(1_700_000_001_000),
///     last_event_time: Some(Timestamp::from_millis(1_700_000_000_500)),
///     stale: false,
///     groups: None,
///     evaluated_at: Timestamp::from_millis(1_700_000_000_000),
/// };
/// let json = serde_json::to_value(&state)?;
/// assert_eq!(json["widget"], "00000000-0000-0000-0000-000000000001");
/// assert_eq!(json["event_time"], 1_700_000_000_500_i64);
/// assert_eq!(json["window_end"], 1_700_000_001_000_i64);
/// assert!(json.get("groups").is_none()); // only for `group_by` widgets
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidgetState {
    /// The dashboard.
    pub dashboard_id: String,
    /// The widget.
    #[serde(rename = "widget")]
    pub widget_id: Uuid,
    /// The aggregate over all matching series. Over a window with no event: `Some(0.0)` for
    /// a count or sum, `None` for the other aggregations (see
    /// [`Aggregation`](crate::Aggregation)). `None` also when the query failed (e.g.
    /// percentiles disabled), and for `group_by` widgets (see `groups`). A value that is
    /// not a finite number (a sum that overflowed) is encoded as JSON `null`.
    pub value: Option<f64>,
    /// Events in the window.
    pub count: u64,
    /// Start of the window (inclusive): `window_seconds` before `window_end`, rounded up to
    /// whole buckets; for windows longer than the window store's fine span (5 min by
    /// default), moved back to a roll-up boundary (1 min by default).
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub window_start: Timestamp,
    /// End of the window (exclusive): the end of the time bucket holding `evaluated_at`
    /// (up to one bucket, 1 s by default, after it).
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub window_end: Timestamp,
    /// Newest event time of any matching series (`None`: no data at all).
    #[serde(rename = "event_time")]
    #[cfg_attr(feature = "http", schema(value_type = Option<i64>))]
    pub last_event_time: Option<Timestamp>,
    /// Whether the value must not be shown as fresh: the series had no data for longer
    /// than the widget's [`stale_after_seconds`](crate::Widget::stale_after_seconds), or,
    /// when it sets none, than
    /// [`stale_after_intervals`](crate::EngineConfig::stale_after_intervals) refresh
    /// intervals; there was never any data; or the source is marked unhealthy
    /// ([`Engine::set_source_health`](crate::Engine::set_source_health)). For `group_by`
    /// widgets: when every group is stale.
    pub stale: bool,
    /// For a widget with `group_by`: one value per tag value, sorted by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupValue>>,
    /// When it was computed.
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub evaluated_at: Timestamp,
}

/// One group's value of a `group_by` widget.
///
/// # Examples
///
/// ```
/// use rtdash::fanout::Event;
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore, MetricEvent, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// // Widget 1: requests of the last minute, one value per `region` tag.
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "Requests", "metric_name": "api.requests", "aggregation": "count",
///      "window_seconds": 60, "refresh_interval_seconds": 1, "group_by": "region",
///      "display_config": {"chart": "table", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}]}"#)?;
/// engine.dashboards().create(doc)?;
/// let sub = engine.subscribe("ops")?;
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// for region in ["us", "eu", "us"] {
///     let event = MetricEvent::new("api.requests", 1.0, now).with_tag("region", region);
///     engine.ingest_at(event, now)?;
/// }
/// engine.tick(now);
///
/// assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { .. })));
/// let Ok(Event::Message { msg, .. }) = sub.try_recv() else { panic!("no update") };
/// let update: serde_json::Value = serde_json::from_str(msg.as_str())?;
/// let groups = &update["items"][0]["groups"]; // one per region, sorted
/// assert_eq!(groups[0]["group"], "eu");
/// assert_eq!(groups[0]["value"], 1.0);
/// assert_eq!(groups[1]["group"], "us");
/// assert_eq!(groups[1]["value"], 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupValue {
    /// The tag value (e.g. the region).
    pub group: String,
    /// The aggregate of the group's series, with the same empty-window rule as
    /// [`WidgetState::value`].
    pub value: Option<f64>,
    /// Events in the window.
    pub count: u64,
    /// Newest event time of the group's series.
    #[serde(rename = "event_time")]
    #[cfg_attr(feature = "http", schema(value_type = Option<i64>))]
    pub last_event_time: Option<Timestamp>,
    /// Whether this group's value is stale.
    pub stale: bool,
}

/// What [`Engine::ingest`](crate::Engine::ingest) did with one valid event.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::{
///     Engine, EngineConfig, EventId, IngestOutcome, MemoryStore, MetricEvent, Timestamp,
/// };
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let event = MetricEvent::new("cpu", 41.0, now).with_id(EventId::new("host-a:17")?);
/// assert_eq!(engine.ingest_at(event.clone(), now)?, IngestOutcome::Accepted);
/// assert_eq!(engine.ingest_at(event, now)?, IngestOutcome::Duplicate);
///
/// // A minute older than the newest `cpu` event: past the grace period (30 s).
/// let old = MetricEvent::new("cpu", 12.0, now.saturating_sub(Duration::from_secs(60)));
/// assert_eq!(engine.ingest_at(old, now)?, IngestOutcome::Late);
/// assert_eq!(engine.drain_late().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IngestOutcome {
    /// Aggregated into its window.
    Accepted,
    /// Later than the grace period: not aggregated, put in the late side channel
    /// ([`Engine::drain_late`](crate::Engine::drain_late)).
    Late,
    /// Later than the grace period and the side channel was full: counted and dropped.
    LateDropped,
    /// Its `id` was seen before: a replay, not counted again.
    Duplicate,
}

/// The answer to a JSON batch ([`Engine::ingest_json`](crate::Engine::ingest_json), `POST
/// /ingest`): counts, and one error per refused element with its index in the batch.
///
/// Every element is counted exactly once: `accepted + rejected + late + duplicates ==`
/// number of elements.
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let body = br#"[
///     {"metric_name": "cpu", "value": 41, "event_time": 1700000000000, "id": "host-a:17"},
///     {"metric_name": "cpu", "value": 41, "event_time": 1700000000000, "id": "host-a:17"},
///     {"metric_name": "cpu", "value": 12, "event_time": 1699999900000},
///     {"metric_name": "", "value": 1, "event_time": 1700000000000}]"#;
/// let report = engine.ingest_json_at(body, Timestamp::from_millis(1_700_000_000_000))?;
/// // Accepted, replayed, older than the grace period, refused: each counted once.
/// assert_eq!((report.accepted, report.duplicates, report.late, report.rejected), (1, 1, 1, 1));
/// assert_eq!(report.errors[0].index, 3);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Events aggregated.
    pub accepted: usize,
    /// Elements refused (see `errors`).
    pub rejected: usize,
    /// Events later than the grace period (side channel, or dropped when it was full).
    pub late: usize,
    /// Events whose id was seen before.
    pub duplicates: usize,
    /// One entry per refused element, in batch order.
    pub errors: Vec<IngestError>,
}

/// Why one element of a batch was refused.
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let body = br#"[{"metric_name": "cpu", "value": 41, "event_time": 1700000000000},
///                 {"metric_name": "cpu", "value": 1e999, "event_time": 1700000000000}]"#;
/// let report = engine.ingest_json_at(body, Timestamp::from_millis(1_700_000_000_000))?;
/// let error = &report.errors[0];
/// assert_eq!((error.index, error.field.as_str()), (1, "value"));
/// assert!(error.message.contains("1e999"), "{}", error.message);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestError {
    /// Index of the element in the batch (0 for a single-object body).
    pub index: usize,
    /// The field at fault: `metric_name`, `value`, `tags["k"]`, `event_time`, `id`,
    /// `event` or `series`.
    pub field: String,
    /// What is wrong, e.g. `value: 1e999 is out of the range of a 64-bit float`.
    pub message: String,
}

/// An event that arrived after the grace period, from
/// [`Engine::drain_late`](crate::Engine::drain_late).
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// // The second event is a minute older than the first: past the grace period (30 s).
/// let body = br#"[{"metric_name": "cpu", "value": 41, "event_time": 1700000000000},
///                 {"metric_name": "cpu", "value": 12, "event_time": 1699999940000}]"#;
/// let report = engine.ingest_json_at(body, Timestamp::from_millis(1_700_000_000_000))?;
/// assert_eq!((report.accepted, report.late), (1, 1));
///
/// let late = engine.drain_late();
/// assert_eq!((late[0].metric_name.as_str(), late[0].value), ("cpu", 12.0));
/// assert_eq!(late[0].event_time, Timestamp::from_millis(1_699_999_940_000));
/// assert!(engine.drain_late().is_empty());
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LateEvent {
    /// The metric.
    pub metric_name: String,
    /// Its tags.
    pub tags: Tags,
    /// Its event time.
    pub event_time: Timestamp,
    /// Its value.
    pub value: f64,
}

/// What one [`Engine::tick`](crate::Engine::tick) did.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// // Two widgets of the same query (a stat and a line chart): computed once per tick.
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "CPU", "metric_name": "cpu", "aggregation": "avg", "window_seconds": 60,
///      "refresh_interval_seconds": 1,
///      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}},
///     {"widget_id": "00000000-0000-0000-0000-000000000002", "dashboard_id": "ops",
///      "title": "CPU over time", "metric_name": "cpu", "aggregation": "avg",
///      "window_seconds": 60, "refresh_interval_seconds": 1,
///      "display_config": {"chart": "line", "position": {"x": 4, "y": 0, "w": 8, "h": 2}}}]}"#)?;
/// engine.dashboards().create(doc)?;
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let event = br#"{"metric_name": "cpu", "value": 41, "event_time": 1700000000000}"#;
/// engine.ingest_json_at(event, now)?;
/// let tick = engine.tick(now);
/// assert_eq!((tick.widgets_evaluated, tick.queries_computed), (2, 1));
/// // Both values are new: they go out in one frame.
/// assert_eq!((tick.values_published, tick.frames_published), (2, 1));
/// // 100 ms later no refresh interval has elapsed: nothing to do.
/// assert_eq!(engine.tick(now.saturating_add(Duration::from_millis(100))).widgets_evaluated, 0);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TickReport {
    /// Widgets whose refresh interval had elapsed and that were evaluated.
    pub widgets_evaluated: usize,
    /// Distinct window queries computed for them (widgets sharing metric, filter,
    /// aggregation, window and grouping share one).
    pub queries_computed: usize,
    /// Widget values that changed and were published.
    pub values_published: usize,
    /// Update frames published (at most one per dashboard per tick).
    pub frames_published: usize,
    /// Alerts that fired or resolved.
    pub alerts: Vec<AlertEvent>,
}

/// Cumulative counters of an engine.
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// for body in [
///     r#"{"metric_name": "cpu", "value": 41, "event_time": 1700000000000}"#,
///     r#"{"metric_name": "cpu", "value": "high", "event_time": 1700000000000}"#,
///     r#"{"metric_name": "cpu", "value": 42, "event_time": 1700000000500}"#,
/// ] {
///     engine.ingest_json_at(body.as_bytes(), now)?;
/// }
/// let stats = engine.stats(); // since the engine was created, over every batch
/// assert_eq!((stats.accepted, stats.rejected), (2, 1));
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Events aggregated.
    pub accepted: u64,
    /// Events refused by validation.
    pub rejected: u64,
    /// Late events (side channel or dropped).
    pub late: u64,
    /// Replayed events dropped by id.
    pub duplicates: u64,
    /// Widget evaluations.
    pub widget_evaluations: u64,
    /// Window queries computed.
    pub query_evaluations: u64,
    /// Frames published (updates and alerts).
    pub frames_published: u64,
}
