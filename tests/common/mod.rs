//! Helpers shared by the facade's integration tests.
#![allow(dead_code)]

#[cfg(all(feature = "http", feature = "redis", unix))]
pub(crate) mod cluster;
pub(crate) mod history;
#[cfg(feature = "postgres")]
pub(crate) mod pg;

use std::time::Duration;

use rtdash::fanout::Event;
use rtdash::{
    Aggregation, ChartType, Dashboard, DashboardDoc, DashboardId, Frame, GridPos, Timestamp, Topic,
    Uuid, Widget, WidgetKey,
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
    let mut w = Widget::new(
        format!("{metric} {aggregation}"),
        metric,
        aggregation,
        window_seconds,
    )
    .with_refresh(Duration::from_secs_f64(refresh_seconds))
    .with_chart(ChartType::Stat)
    .with_position(GridPos::new(x, 0, 1, 1));
    w.dashboard_id = Some(DashboardId::new(dash).unwrap());
    w
}

pub(crate) fn dashboard(id: &str, widgets: Vec<Widget>) -> DashboardDoc {
    let mut d = Dashboard::new(DashboardId::new(id).unwrap(), format!("Dashboard {id}"));
    d.widgets = widgets;
    DashboardDoc::from(d)
}

/// An engine (default configuration, memory store) with one dashboard per id, each with a
/// `count` widget over the metric `req`.
pub(crate) fn engine_with_dashboards(ids: &[&str]) -> rtdash::Engine {
    let engine =
        rtdash::Engine::new(rtdash::EngineConfig::default(), rtdash::MemoryStore::new()).unwrap();
    for id in ids {
        engine
            .dashboards()
            .create(dashboard(
                id,
                vec![widget(id, "req", rtdash::Aggregation::Count, 60, 1.0, 0)],
            ))
            .unwrap();
    }
    engine
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

/// A widget as the HTTP API takes it: `aggregation` as on the wire (`"sum"`, `"p99.9"`),
/// `extra` merged in (e.g. `{"tag_filter": {…}}` or `{"stale_after_seconds": 5}`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn widget_json(
    dash: &str,
    id: Uuid,
    metric: &str,
    aggregation: &str,
    window_seconds: u32,
    refresh_seconds: f64,
    x: u32,
    extra: Value,
) -> Value {
    let mut w = serde_json::json!({
        "widget_id": id, "dashboard_id": dash, "title": format!("{metric} {aggregation}"),
        "metric_name": metric, "aggregation": aggregation, "window_seconds": window_seconds,
        "refresh_interval_seconds": refresh_seconds,
        "display_config": {"chart": "stat", "position": {"x": x, "y": 0, "w": 1, "h": 1}},
    });
    if let (Value::Object(w), Value::Object(extra)) = (&mut w, extra) {
        w.extend(extra);
    }
    w
}

/// The value of the Prometheus sample `series` (name with its labels, as rendered) in the
/// text exposition `text`.
pub(crate) fn prometheus_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A client of a server started by [`Http::start`]: JSON requests, `/metrics`, WebSocket.
#[cfg(feature = "http")]
pub(crate) struct Http {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

/// The status and JSON body of a response (`Null` for an empty body); panics on a body that
/// is not JSON.
#[cfg(feature = "http")]
pub(crate) async fn read_json(resp: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, v)
}

/// A WebSocket client of `/stream/{id}`.
#[cfg(feature = "http")]
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[cfg(feature = "http")]
impl Http {
    /// Serves `engine`'s HTTP API on 127.0.0.1:0 (see [`serve`]).
    pub(crate) async fn start(engine: rtdash::Engine) -> Self {
        Self {
            base: serve(engine).await,
            client: reqwest::Client::new(),
        }
    }

    /// `method path` with a JSON body; the status and the JSON answer (`null` when empty).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(body);
        }
        read_json(req.send().await.unwrap()).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// Creates a dashboard (`POST /dashboards`), asserting `201`.
    pub(crate) async fn create_dashboard(&self, id: &str, widgets: Vec<Value>) {
        let doc =
            serde_json::json!({"id": id, "name": format!("Dashboard {id}"), "widgets": widgets});
        let (status, body) = self.post("/dashboards", &doc).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }

    /// `POST /ingest` of `events`, asserting `200`; the ingest report.
    pub(crate) async fn ingest(&self, events: &Value) -> Value {
        let (status, report) = self.post("/ingest", events).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{report}");
        report
    }

    /// The widget's current state from `GET /dashboards/{dash}/widgets/{id}/snapshot`.
    pub(crate) async fn snapshot(&self, dash: &str, id: Uuid) -> Value {
        let (status, v) = self
            .get(&format!("/dashboards/{dash}/widgets/{id}/snapshot"))
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{v}");
        v
    }

    /// The Prometheus text of `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A WebSocket session on dashboard `dash`, past its `welcome` and `snapshot` frames.
    pub(crate) async fn ws(&self, dash: &str) -> Ws {
        let url = format!(
            "{}/stream/{dash}?token=test",
            self.base.replace("http://", "ws://")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(next_frame(&mut ws).await["type"], "welcome");
        assert_eq!(next_frame(&mut ws).await["type"], "snapshot");
        ws
    }
}

/// The next JSON frame of a WebSocket session (10 s at most).
#[cfg(feature = "http")]
pub(crate) async fn next_frame(ws: &mut Ws) -> Value {
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("stream open")
            .expect("no error");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Builds example `name` with the cargo feature flags `features` (a no-op when `cargo
/// test` already built it alike) and returns the path of its binary.
pub(crate) fn build_example(name: &str, features: &[&str]) -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--example", name])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    // target/<profile>/deps/<test>-… → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

/// Every alert record of dashboard `dash` the engine holds (up to one page of 200), newest
/// first.
pub(crate) fn alert_records(engine: &rtdash::Engine, dash: &str) -> Vec<rtdash::AlertRecord> {
    engine
        .alert_history(
            dash,
            &rtdash::AlertHistoryQuery {
                limit: 200,
                ..rtdash::AlertHistoryQuery::default()
            },
        )
        .unwrap()
        .records
}
