//! Helpers shared by the facade's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use rtdash::fanout::Event;
use rtdash::{
    Aggregation, ChartType, Dashboard, DashboardDoc, DashboardId, DisplayConfig, Frame, GridPos,
    TagFilter, Timestamp, Topic, Uuid, Widget, WidgetKey,
};
use serde_json::Value;

/// A fixed start time for tests (2023-11-14T22:13:20Z).
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn t(ms_after_t0: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms_after_t0)
}

pub(crate) fn secs(s: i64) -> Timestamp {
    t(s * 1000)
}

/// A widget of dashboard `dash` at column `x`.
pub(crate) fn widget(
    dash: &str,
    metric: &str,
    aggregation: Aggregation,
    window_seconds: u32,
    refresh_seconds: f64,
    x: u32,
) -> Widget {
    Widget {
        widget_id: Uuid::new_v4(),
        dashboard_id: DashboardId::new(dash).unwrap(),
        title: format!("{metric} {aggregation}"),
        metric_name: metric.to_owned(),
        aggregation,
        window_seconds,
        refresh_interval_seconds: refresh_seconds,
        tag_filter: TagFilter::new(),
        group_by: None,
        display: DisplayConfig::new(ChartType::Stat, GridPos::new(x, 0, 1, 1)),
    }
}

pub(crate) fn dashboard(id: &str, widgets: Vec<Widget>) -> DashboardDoc {
    let mut d = Dashboard::new(DashboardId::new(id).unwrap(), format!("Dashboard {id}"));
    d.widgets = widgets;
    DashboardDoc::new(d)
}

/// A JSON batch of `(metric, value, ms after T0)` events.
pub(crate) fn batch(events: &[(&str, f64, i64)]) -> Vec<u8> {
    let items: Vec<Value> = events
        .iter()
        .map(|(m, v, at)| serde_json::json!({"metric_name": m, "value": v, "event_time": T0 + at}))
        .collect();
    serde_json::to_vec(&items).unwrap()
}

/// Every frame queued for a subscription now, parsed; snapshots are flattened into their
/// embedded frames (tagged with `"_snapshot": true`).
pub(crate) fn drain(sub: &rtdash::fanout::Subscription<Topic, WidgetKey, Frame>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(ev) = sub.try_recv() {
        match ev {
            Event::Message { msg, .. } => out.push(serde_json::from_str(msg.as_str()).unwrap()),
            Event::Snapshot { messages, .. } => {
                for m in messages {
                    let mut v: Value = serde_json::from_str(m.msg.as_str()).unwrap();
                    v["_snapshot"] = Value::Bool(true);
                    out.push(v);
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    out
}

/// The update frames among `frames`.
pub(crate) fn updates(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f["type"] == "update").collect()
}

/// The item of widget `id` in an update frame.
pub(crate) fn item(frame: &Value, id: Uuid) -> Option<&Value> {
    frame["items"]
        .as_array()?
        .iter()
        .find(|i| i["widget"] == id.to_string())
}

pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// Serves `engine`'s HTTP API on 127.0.0.1:0 (any token is accepted); returns the base URL.
#[cfg(feature = "http")]
pub(crate) async fn serve(engine: rtdash::Engine) -> String {
    serve_app(rtdash::http::router(
        engine,
        rtdash::AllowAll,
        rtdash::TransportConfig::default(),
    ))
    .await
}

/// Serves `app` on 127.0.0.1:0; returns the base URL.
#[cfg(feature = "http")]
pub(crate) async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}
