//! Plain data types of the engine's API.

use rtdash_core::{Tags, Timestamp, Uuid};
use serde::Serialize;

use crate::AlertEvent;

/// The conflation key of the engine's hub within a dashboard topic: a widget's value, or
/// an alert rule's state. The hub's last-value cache keeps the newest frame per key, so a
/// client that subscribes gets every widget's current value and every rule's last alert
/// state at once.
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
