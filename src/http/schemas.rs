//! The JSON bodies of the HTTP API that are not the facade's own types, as OpenAPI schema
//! components: the response wrappers the handlers serialize, and schema-only mirrors of
//! the documents that rtdash-core (de)serializes (dashboards, widgets, metric events),
//! which do not depend on utoipa.
//!
//! The mirrors derive `Deserialize` with the same field rules as the types they describe
//! (unknown fields refused, the same defaults), and the tests below decode the real
//! types' JSON through them: a field added to or removed from rtdash-core's types fails
//! here, not in a client.

use std::collections::BTreeMap;

use rtdash_core::Uuid;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AlertEvent, AlertRule};

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok` while the server answers.
    #[schema(example = "ok")]
    pub(crate) status: &'static str,
    /// With a history archive: `up`, or `down` while it cannot write (ingest and live
    /// values go on; it catches up when it is back, and counts what it had to drop in
    /// `rtdash_history_archive_dropped_total`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "up")]
    pub(crate) history_archive: Option<&'static str>,
}

/// `GET /dashboards/{id}/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertList {
    /// The dashboard's alert history (firing and resolved), newest first.
    pub(crate) alerts: Vec<AlertEvent>,
    /// The alerts of the dashboard firing now.
    pub(crate) firing: Vec<AlertEvent>,
}

/// The alert rules of a dashboard (`GET`/`PUT /dashboards/{id}/alert-rules`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertRuleList {
    /// The rules, in document order.
    pub(crate) alert_rules: Vec<AlertRule>,
}

/// `GET /dashboards`: the dashboards the caller may see.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardList {
    /// The documents, ordered by id.
    dashboards: Vec<DashboardDocSchema>,
}

/// The body of `PUT /dashboards/{id}/alert-rules`: the list, or an object holding it.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum AlertRulesInput {
    /// `[rule, …]`.
    List(Vec<AlertRule>),
    /// `{"alert_rules": [rule, …]}` (other members are ignored).
    Object {
        /// The rules.
        alert_rules: Vec<AlertRule>,
    },
}

/// A dashboard document: the dashboard (id, name, grid, widgets) and its alert rules, as
/// stored and served (`DashboardDoc`). Unknown fields are refused. On input, the rules
/// checked after decoding (answered with `422` and every violation) are: `name` and
/// widget titles not blank and at most 200 bytes; `columns` 1 to 48; at most 100 widgets
/// with unique, non-nil ids whose `dashboard_id`, when given, is the dashboard's; windows
/// 1 s to the store's retention (1 h by default); refresh intervals at least 0.1 s;
/// positions inside the grid (at most 1,000 rows) and not overlapping; alert rules on
/// widgets of this dashboard, with unique ids. Before the rules are checked, a widget
/// without `dashboard_id` gets the dashboard's, and one without `position` is placed in the
/// first free grid cells (row by row, at its chart's default size), so stored and served
/// documents always have both.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DashboardDoc, example = json!({
    "id": "ops", "name": "Operations", "columns": 12,
    "widgets": [{
        "widget_id": "0a5e7d3c-0001-4b6e-9a3f-5c2d0e000001", "dashboard_id": "ops",
        "title": "Request rate", "metric_name": "http.requests.rate.all",
        "aggregation": "avg", "window_seconds": 5, "refresh_interval_seconds": 1,
        "display_config": {"chart": "stat", "unit": "req/s",
                           "position": {"x": 0, "y": 0, "w": 3, "h": 2}}
    }],
    "alert_rules": [{
        "id": "5b1d6a52-4c59-4a8e-9b0e-8f7f3c1b2a10",
        "widget_id": "0a5e7d3c-0001-4b6e-9a3f-5c2d0e000001",
        "condition": "above", "threshold": 250, "for_seconds": 30, "name": "traffic spike"
    }]
}))]
pub(crate) struct DashboardDocSchema {
    /// The dashboard's id: 1 to 128 bytes of `A-Z a-z 0-9 _ . -`.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$", example = "ops")]
    id: String,
    /// Display name; not blank, at most 200 bytes.
    name: String,
    /// Width of the grid in columns, 1 to 48.
    #[serde(default)]
    #[schema(default = 12)]
    columns: u32,
    /// The widgets, in display order.
    #[serde(default)]
    widgets: Vec<WidgetSchema>,
    /// Threshold alert rules on the dashboard's widgets (omitted when there are none).
    #[serde(default)]
    alert_rules: Option<Vec<AlertRule>>,
}

/// One widget: a metric aggregated over a sliding window, pushed at a refresh interval.
/// Unknown fields are refused.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Widget)]
pub(crate) struct WidgetSchema {
    /// Unique id of the widget in its dashboard; not the nil UUID.
    widget_id: Uuid,
    /// The dashboard the widget belongs to: when given, the containing dashboard's id;
    /// omitted, it is filled in.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$")]
    dashboard_id: Option<String>,
    /// Title shown above the widget; not blank, at most 200 bytes.
    title: String,
    /// The metric aggregated, e.g. `api.request.latency` (the rule of event metric names).
    metric_name: String,
    /// What is computed: `count`, `sum`, `avg`, `min`, `max` or a percentile `p<rank>`
    /// with a rank in (0, 100] and at most 6 decimal places (`p50`, `p99.9`). Read case
    /// insensitively; `mean` and `median` are accepted for `avg` and `p50`.
    #[schema(example = "p99")]
    aggregation: String,
    /// Length of the sliding window in whole seconds, 1 to the store's retention.
    window_seconds: u32,
    /// How often the value is pushed, in seconds (fractions allowed), at least 0.1.
    refresh_interval_seconds: f64,
    /// Which series of the metric are included: tag key → required value (all when empty
    /// or omitted).
    #[serde(default)]
    tag_filter: BTreeMap<String, String>,
    /// A tag key to split the value by (one value per tag value).
    #[serde(default)]
    group_by: Option<String>,
    /// Seconds without data after which the value is marked stale (positive, at most one
    /// day); omitted: after two refresh intervals.
    #[serde(default)]
    stale_after_seconds: Option<f64>,
    /// How the widget is drawn (also read from `display`).
    #[serde(alias = "display")]
    display_config: DisplayConfigSchema,
}

/// How a widget looks. Unknown fields are refused.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DisplayConfig)]
pub(crate) struct DisplayConfigSchema {
    /// Chart type.
    chart: ChartTypeSchema,
    /// Unit shown beside values, e.g. `ms`; at most 64 bytes.
    #[serde(default)]
    unit: Option<String>,
    /// Label of the x axis; at most 64 bytes.
    #[serde(default)]
    x_axis_label: Option<String>,
    /// Label of the y axis; at most 64 bytes.
    #[serde(default)]
    y_axis_label: Option<String>,
    /// Colour bands, in strictly ascending order of `value`; at most 16.
    #[serde(default)]
    thresholds: Vec<ThresholdSchema>,
    /// Main colour of the series, `#rrggbb`.
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: Option<String>,
    /// Lower end of the scale (gauges); finite, below `max`.
    #[serde(default)]
    min: Option<f64>,
    /// Upper end of the scale (gauges); finite.
    #[serde(default)]
    max: Option<f64>,
    /// Place and size on the grid. Omitted: placed in the first free cells, row by row, at
    /// the chart's default size (stat 3×2, gauge 3×3, others 6×4).
    #[serde(default)]
    position: Option<GridPosSchema>,
}

/// How a widget is drawn.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChartType)]
pub(crate) enum ChartTypeSchema {
    /// A time series line.
    Line,
    /// A time series line with the area below it filled.
    Area,
    /// A dial between `min` and `max`.
    Gauge,
    /// One big number.
    Stat,
    /// A table.
    Table,
    /// A heatmap.
    Heatmap,
}

/// A colour that applies from `value` upwards.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Threshold)]
pub(crate) struct ThresholdSchema {
    /// Lower bound of the band; finite.
    value: f64,
    /// Colour of the band, `#rrggbb`.
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    color: String,
}

/// Position and size of a widget on the grid, in cells: columns `x .. x + w`, rows
/// `y .. y + h`.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GridPos)]
pub(crate) struct GridPosSchema {
    /// Left column (0-based).
    x: u32,
    /// Top row (0-based).
    y: u32,
    /// Width in columns; at least 1.
    w: u32,
    /// Height in rows; at least 1.
    h: u32,
}

/// A batch of widget changes applied to one dashboard at once: widgets to add, widgets to
/// replace (matched by `widget_id`), widget ids to remove (their alert rules go with
/// them). Each list may be omitted; unknown fields are refused.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WidgetPatch)]
pub(crate) struct WidgetPatchSchema {
    /// Widgets to add; their ids must be new.
    #[serde(default)]
    add: Vec<WidgetSchema>,
    /// Widgets to replace, matched by `widget_id`.
    #[serde(default)]
    update: Vec<WidgetSchema>,
    /// Ids of widgets to remove.
    #[serde(default)]
    remove: Vec<Uuid>,
}

/// The body of `POST /ingest`: an array of metric events, or one event object.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = IngestBody)]
pub(crate) enum IngestBody {
    /// A batch.
    Batch(Vec<MetricEventSchema>),
    /// One event.
    One(MetricEventSchema),
}

/// One measurement. Unknown fields are refused. Each event is validated on its own (a
/// refused one is reported by index in the `IngestReport`): `metric_name` 1 to 200 bytes
/// of `A-Z a-z 0-9 _ . - : /` starting with a letter; `value` finite; at most 32 tags,
/// keys like metric names up to 128 bytes, values up to 256 bytes; `event_time` at most
/// 5 s ahead of the server's clock.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MetricEvent, example = json!({
    "metric_name": "api.request.latency", "value": 12.5,
    "tags": {"region": "eu", "host": "a"}, "event_time": 1_700_000_000_000_i64, "id": "p1:42"
}))]
pub(crate) struct MetricEventSchema {
    /// Metric name, e.g. `api.request.latency`.
    metric_name: String,
    /// The measured value; finite.
    value: f64,
    /// Labels of the series the event belongs to.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// When the measurement was taken (producer's clock).
    event_time: EventTime,
    /// A producer-chosen id (1 to 128 bytes) so that a replay is not counted twice.
    #[serde(default)]
    id: Option<String>,
}

/// A point in time: integer milliseconds since the Unix epoch, or an RFC 3339 string.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum EventTime {
    /// Milliseconds since the Unix epoch.
    Millis(i64),
    /// An RFC 3339 date and time, e.g. `2023-11-14T22:13:20Z`.
    #[schema(format = DateTime)]
    Rfc3339(String),
}

/// A widget's history (`GET /dashboards/{id}/widgets/{widget_id}/history`, and the
/// WebSocket `history` frame, which adds the request's `id`).
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = History, example = json!({
    "type": "history", "dashboard_id": "ops", "widget_id": "0a5e7d3c-0001-4b6e-9a3f-5c2d0e000001",
    "from": 1_700_000_000_000_i64, "to": 1_700_000_003_000_i64, "step_ms": 1000, "window_ms": 30000,
    "series": [{"group": null, "points": [[1_700_000_001_000_i64, 12.5, 25], [1_700_000_002_000_i64, null, 0], [1_700_000_003_000_i64, 13.0, 26]]}]
}))]
pub(crate) struct HistorySchema {
    /// Always `history`.
    #[serde(rename = "type")]
    #[schema(example = "history")]
    kind: String,
    /// The dashboard.
    dashboard_id: String,
    /// The widget.
    widget_id: Uuid,
    /// Start of the range, exclusive (unix ms).
    from: i64,
    /// End of the range, inclusive (unix ms).
    to: i64,
    /// Milliseconds between points.
    step_ms: u64,
    /// The widget's window, in milliseconds.
    window_ms: u64,
    /// One series (`group: null`), or one per group of a `group_by` widget, sorted by group.
    series: Vec<HistorySeriesSchema>,
}

/// The points of one series of a history.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HistorySeries)]
pub(crate) struct HistorySeriesSchema {
    /// The group (the tag value of the widget's `group_by` key), `null` for an ungrouped
    /// widget.
    group: Option<String>,
    /// The points, oldest first, one per step (a group absent at a step has no point
    /// there): `[time, value, count]` or `[time, value, count, start]`. `time` is the end
    /// of the point's window, exclusive (unix ms, the `window_end` of live update items);
    /// `value` the widget's aggregate over it (`null` for an average, minimum, maximum or
    /// percentile over no event); `count` the number of events; `start`, present only when
    /// the window does not start at `time - window_ms` (data kept at a coarser width), the
    /// window's start, inclusive.
    points: Vec<Vec<Option<f64>>>,
}

/// Every widget's history (`GET /dashboards/{id}/history`).
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DashboardHistory)]
pub(crate) struct DashboardHistorySchema {
    /// Always `dashboard_history`.
    #[serde(rename = "type")]
    #[schema(example = "dashboard_history")]
    kind: String,
    /// The dashboard.
    dashboard_id: String,
    /// Start of the range, exclusive (unix ms).
    from: i64,
    /// End of the range, inclusive (unix ms).
    to: i64,
    /// The history of each widget that has one, in the dashboard's widget order.
    widgets: Vec<HistorySchema>,
    /// Each widget without a history, and why.
    errors: Vec<HistoryErrorSchema>,
}

/// Why a widget of a dashboard history has none.
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HistoryError)]
pub(crate) struct HistoryErrorSchema {
    /// The widget.
    widget_id: Uuid,
    /// `not_owned` (another node aggregates its metric), `history_unavailable`, …
    code: String,
    /// What went wrong.
    message: String,
}

/// One Server-Sent Event of `GET /sse/{id}`: `data` is one frame of the WebSocket
/// protocol (`welcome`, `snapshot`, `update`, `alert`, `dashboard`, `closing`, …) as
/// JSON text; snapshot and update events carry an `id` to resume from (`Last-Event-ID`).
#[allow(dead_code, reason = "schema only: decoded in tests, never read")]
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SseEvent {
    /// The frame, JSON text.
    #[schema(content_media_type = "application/json")]
    data: String,
    /// Always `message`.
    #[schema(example = "message")]
    event: String,
    /// The resume position, `<epoch hex>:<seq>`.
    #[serde(default)]
    #[schema(nullable = false)]
    id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Aggregation, AlertRule, ChartType, Dashboard, DashboardDoc, DashboardId, DisplayConfig,
        GridPos, MetricEvent, Timestamp, Widget, WidgetPatch,
    };

    fn full_widget(dashboard: &DashboardId) -> Widget {
        let mut display = DisplayConfig::new(ChartType::Gauge)
            .with_unit("ms")
            .with_threshold(1.0, "#ff8800".parse().unwrap())
            .with_color("#00ff00".parse().unwrap())
            .with_range(0.0, 100.0)
            .with_position(GridPos::new(0, 0, 4, 2));
        display.x_axis_label = Some("time".into());
        display.y_axis_label = Some("latency".into());
        let mut w = Widget::new("p99", "api.latency", Aggregation::Count, 60)
            .with_filter("region", "eu")
            .with_group_by("host")
            .with_stale_after(std::time::Duration::from_secs(5))
            .with_display(display);
        w.dashboard_id = Some(dashboard.clone());
        w
    }

    /// Every field of the real documents, set, decodes through the mirrors (which refuse
    /// unknown fields), and so does the minimal form.
    #[test]
    fn mirrors_match_the_documents() {
        let id = DashboardId::new("ops").unwrap();
        let w = full_widget(&id);
        let rule = AlertRule::above(w.widget_id, 1.0).with_name("high");
        let minimal = Widget::new("n", "api.latency", Aggregation::Count, 60);
        let d = Dashboard::new(id.clone(), "Ops")
            .with_widget(w.clone())
            .with_widget(minimal.clone());
        let doc = DashboardDoc::from(d).with_alert_rule(rule);
        let json = doc.to_json();
        serde_json::from_str::<DashboardDocSchema>(&json).unwrap();
        let list = format!(r#"{{"dashboards":[{json}]}}"#);
        serde_json::from_str::<DashboardList>(&list).unwrap();
        serde_json::from_str::<DashboardDocSchema>(r#"{"id":"x","name":"X"}"#).unwrap();

        let patch =
            serde_json::json!({"add": [w, minimal], "update": [w], "remove": [w.widget_id]});
        serde_json::from_value::<WidgetPatchSchema>(patch.clone()).unwrap();
        WidgetPatch::from_json(patch.to_string().as_bytes()).unwrap();

        let event = MetricEvent::new("api.latency", 1.5, Timestamp::from_millis(1))
            .with_tag("region", "eu")
            .with_id(crate::EventId::new("p:1").unwrap());
        let one = serde_json::to_string(&event).unwrap();
        serde_json::from_str::<IngestBody>(&one).unwrap();
        serde_json::from_str::<IngestBody>(&format!("[{one}]")).unwrap();
        serde_json::from_str::<IngestBody>(
            r#"{"metric_name":"m","value":1,"event_time":"2023-11-14T22:13:20Z"}"#,
        )
        .unwrap();
    }

    /// A field the real documents refuse, the mirrors refuse too.
    #[test]
    fn mirrors_refuse_unknown_fields() {
        assert!(
            serde_json::from_str::<DashboardDocSchema>(r#"{"id":"x","name":"X","y":1}"#).is_err()
        );
        assert!(
            serde_json::from_str::<MetricEventSchema>(
                r#"{"metric_name":"m","value":1,"event_time":1,"tag":{}}"#
            )
            .is_err()
        );
    }

    /// The compact history the server writes decodes through its schema, points with and
    /// without `start`, null values, a grouped series; and a dashboard's histories too.
    #[test]
    fn history_mirrors_match_the_wire_form() {
        use crate::history::{History, HistoryPoint, HistoryRequest, HistorySeries};
        let t = |ms| Timestamp::from_millis(ms);
        let h = History {
            dashboard_id: "ops".into(),
            widget_id: Uuid::new_v4(),
            from: t(0),
            to: t(3000),
            step_ms: 1000,
            window_ms: 1000,
            series: vec![HistorySeries {
                group: Some("eu".into()),
                points: vec![
                    HistoryPoint {
                        time: t(1000),
                        start: t(0),
                        value: Some(1.5),
                        count: 2,
                    },
                    HistoryPoint {
                        time: t(2000),
                        start: t(0),
                        value: None,
                        count: 0,
                    },
                ],
            }],
        };
        let json = crate::history_wire::encode_history(&h, None);
        assert!(json.contains("[[1000,1.5,2],[2000,null,0,0]]"), "{json}");
        serde_json::from_str::<HistorySchema>(&json).unwrap();
        let req = HistoryRequest::new(t(0), t(3000));
        let all = vec![
            (h.widget_id, Ok(h.clone())),
            (
                Uuid::new_v4(),
                Err(crate::Error::NotOwned { metric: "m".into() }),
            ),
        ];
        let json = crate::history_wire::encode_dashboard_history("ops", &req, &all, None);
        serde_json::from_str::<DashboardHistorySchema>(&json).unwrap();
    }
}
