//! Widget history over the wire (issue #15): `GET …/history` and the WebSocket `history`
//! request answer what `Engine::history` computes, refuse bad parameters naming them, keep
//! reads guarded, and bound the requests in flight per connection.
#![cfg(feature = "http")]

mod common;

use std::num::NonZeroUsize;
use std::time::Duration;

use common::{Ws, dashboard, next_frame, read_json, serve_app, widget};
use futures::SinkExt;
use reqwest::StatusCode;
use rtdash::history::HistoryRequest;
use rtdash::transport::{Principal, StaticTokens, TopicAccess};
use rtdash::{
    Aggregation, Engine, EngineConfig, MemoryStore, MetricEvent, MetricsSink, Timestamp,
    TransportConfig, Uuid,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Setup {
    engine: Engine,
    base: String,
    client: reqwest::Client,
    single: Uuid,
    grouped: Uuid,
    /// The end of the minute of data (whole seconds, the past).
    to: i64,
}

/// Dashboard `ops` with a `count` widget and an `avg by region` widget, a minute of
/// events, served with tokens `ops-reader` (sees `ops`) and `other` (sees `billing`).
async fn start(config: TransportConfig) -> Setup {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        MemoryStore::new(),
    )
    .unwrap();
    let single = widget("ops", "req", Aggregation::Count, 10, 1.0, 0);
    let grouped = widget("ops", "lat", Aggregation::Avg, 5, 1.0, 1).with_group_by("region");
    let (s, g) = (single.widget_id, grouped.widget_id);
    engine
        .dashboards()
        .create(dashboard("ops", vec![single, grouped]))
        .unwrap();
    let to = Timestamp::now().as_millis() / 1000 * 1000 - 1000;
    for k in 0..60 {
        let at = Timestamp::from_millis(to - 60_000 + k * 1000 + 500);
        engine
            .ingest_at(MetricEvent::new("req", 1.0, at), at)
            .unwrap();
        for (region, v) in [("eu", 10.0), ("us", 20.0 + k as f64)] {
            let e = MetricEvent::new("lat", v, at).with_tag("region", region);
            engine.ingest_at(e, at).unwrap();
        }
    }
    let tokens = StaticTokens::new()
        .with_token(
            "ops-reader",
            Principal::new("r", TopicAccess::topics(["ops"])),
        )
        .with_token(
            "other",
            Principal::new("o", TopicAccess::topics(["billing"])),
        );
    let base = serve_app(rtdash::http::router(engine.clone(), tokens, config)).await;
    Setup {
        engine,
        base,
        client: reqwest::Client::new(),
        single: s,
        grouped: g,
        to,
    }
}

impl Setup {
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read_json(req.send().await.unwrap()).await
    }

    async fn ws(&self) -> Ws {
        let url = format!(
            "{}/stream/ops?token=ops-reader",
            self.base.replace("http://", "ws://")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(next_frame(&mut ws).await["type"], "welcome");
        assert_eq!(next_frame(&mut ws).await["type"], "snapshot");
        ws
    }

    /// The engine's history of `widget` over the minute, as the wire's series.
    async fn expected(&self, widget: Uuid) -> Value {
        let req = HistoryRequest::new(
            Timestamp::from_millis(self.to - 60_000),
            Timestamp::from_millis(self.to),
        );
        let h = self.engine.history("ops", widget, req).await.unwrap();
        let series: Vec<Value> = h
            .series
            .iter()
            .map(|s| {
                let points: Vec<Value> = s
                    .points
                    .iter()
                    .map(|p| {
                        let t = p.time.as_millis();
                        let mut a = vec![json!(t), json!(p.value), json!(p.count)];
                        if p.start.as_millis() != t - h.window_ms as i64 {
                            a.push(json!(p.start.as_millis()));
                        }
                        Value::Array(a)
                    })
                    .collect();
                json!({"group": s.group, "points": points})
            })
            .collect();
        json!({"step_ms": h.step_ms, "window_ms": h.window_ms, "series": series})
    }
}

/// `v` with every number as a float: the wire writes `10` where serde writes `10.0`.
fn floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(floats).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), floats(v))).collect()),
        other => other.clone(),
    }
}

fn field_of(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn rest_history_matches_the_engine_for_a_single_and_a_grouped_widget() {
    let s = start(TransportConfig::default()).await;
    let range = format!("from={}&to={}", s.to - 60_000, s.to);
    for (w, groups) in [(s.single, 1), (s.grouped, 2)] {
        let (status, body) = s
            .get(
                &format!("/dashboards/ops/widgets/{w}/history?{range}"),
                Some("ops-reader"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["type"], "history");
        assert_eq!(body["widget_id"], w.to_string());
        assert_eq!(
            (body["from"].as_i64(), body["to"].as_i64()),
            (Some(s.to - 60_000), Some(s.to))
        );
        let want = s.expected(w).await;
        assert_eq!(body["step_ms"], want["step_ms"]);
        assert_eq!(body["window_ms"], want["window_ms"]);
        assert_eq!(floats(&body["series"]), floats(&want["series"]));
        let series = body["series"].as_array().unwrap();
        assert_eq!(series.len(), groups);
        assert_eq!(series[0]["points"].as_array().unwrap().len(), 60);
    }
    // The count over 10 s, one event a second, at the last point.
    let (_, body) = s
        .get(
            &format!("/dashboards/ops/widgets/{}/history?{range}", s.single),
            Some("ops-reader"),
        )
        .await;
    assert_eq!(
        floats(&body["series"][0]["points"][59]),
        floats(&json!([s.to, 10, 10]))
    );
    assert_eq!(body["series"][0]["group"], Value::Null);

    // The whole dashboard at once: the same histories.
    let (status, all) = s
        .get(
            &format!("/dashboards/ops/history?{range}"),
            Some("ops-reader"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["type"], "dashboard_history");
    assert_eq!(all["errors"], json!([]));
    let widgets = all["widgets"].as_array().unwrap();
    assert_eq!(widgets.len(), 2);
    assert_eq!(
        floats(&widgets[1]["series"]),
        floats(&s.expected(s.grouped).await["series"])
    );

    // Defaults: the last 5 minutes up to now; with a step of one bucket, 300 points.
    let path = format!("/dashboards/ops/widgets/{}/history", s.single);
    let (status, body) = s.get(&path, Some("ops-reader")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (from, to) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
    assert_eq!(to - from, 300_000);
    assert!((Timestamp::now().as_millis() - to).abs() < 10_000);
    let (status, body) = s
        .get(&format!("{path}?step=1000"), Some("ops-reader"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"][0]["points"].as_array().unwrap().len(), 300);
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_parameter() {
    let s = start(TransportConfig::default()).await;
    let w = s.single;
    for (query, field) in [
        (format!("from={}&to={}", s.to, s.to - 1000), "to"),
        ("from=yesterday".to_owned(), "from"),
        ("to=1e3x".to_owned(), "to"),
        ("step=1500".to_owned(), "step"),
        ("step=0".to_owned(), "step"),
        ("range=10800000&step=1000".to_owned(), "step"),
        ("range=-5".to_owned(), "range"),
        (format!("from={}&range=60000", s.to - 60_000), "range"),
    ] {
        let (status, body) = s
            .get(
                &format!("/dashboards/ops/widgets/{w}/history?{query}"),
                Some("ops-reader"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_history_request", "{query}");
        assert_eq!(field_of(&body), field, "{query}: {body}");
        let (status, body) = s
            .get(
                &format!("/dashboards/ops/history?{query}"),
                Some("ops-reader"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(field_of(&body), field, "{query}: {body}");
    }
    let unknown = Uuid::new_v4();
    for path in [
        format!("/dashboards/ops/widgets/{unknown}/history"),
        "/dashboards/ops/widgets/not-a-uuid/history".to_owned(),
    ] {
        let (status, body) = s.get(&path, Some("ops-reader")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unknown_widget");
    }
}

#[tokio::test]
async fn history_reads_need_a_token_that_may_see_the_dashboard() {
    let s = start(TransportConfig::default()).await;
    for path in [
        format!("/dashboards/ops/widgets/{}/history", s.single),
        "/dashboards/ops/history".to_owned(),
    ] {
        let (status, body) = s.get(&path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body.get("series").is_none() && body.get("widgets").is_none());
        let (status, body) = s.get(&path, Some("other")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let (status, _) = s.get(&path, Some("ops-reader")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // Forbidden before looked up: an unknown dashboard of another reader is a 403 too.
    let (status, _) = s.get("/dashboards/nope/history", Some("other")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_websocket_history_request_is_answered_with_its_id() {
    let s = start(TransportConfig::default()).await;
    let mut ws = s.ws().await;
    let req = json!({"type": "history", "id": 7, "dashboard": "ops", "widget": s.grouped,
        "from": s.to - 60_000, "to": s.to});
    ws.send(Message::text(req.to_string())).await.unwrap();
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["type"], "history", "{frame}");
    assert_eq!(frame["id"], 7);
    assert_eq!(
        floats(&frame["series"]),
        floats(&s.expected(s.grouped).await["series"])
    );

    // Without a widget: every widget of the dashboard.
    let req = json!({"type": "history", "id": "all", "dashboard": "ops", "range": 60_000});
    ws.send(Message::text(req.to_string())).await.unwrap();
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["type"], "dashboard_history", "{frame}");
    assert_eq!(frame["id"], "all");
    assert_eq!(frame["widgets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_bad_websocket_history_request_gets_an_error_frame_and_the_session_goes_on() {
    let s = start(TransportConfig::default()).await;
    let mut ws = s.ws().await;
    for (req, code, field) in [
        (
            json!({"type": "history", "id": 1, "dashboard": "ops", "widget": s.single, "step": "x"}),
            "bad_request",
            "step",
        ),
        (
            json!({"type": "history", "id": 2, "dashboard": "ops", "widget": s.single, "from": 5, "to": 5}),
            "bad_request",
            "to",
        ),
        (
            json!({"type": "history", "id": 3, "widget": s.single}),
            "bad_request",
            "dashboard",
        ),
        (
            json!({"type": "history", "id": 4, "dashboard": "ops", "widget": Uuid::new_v4()}),
            "not_found",
            "widget",
        ),
        (
            json!({"type": "history", "id": 5, "dashboard": "ops", "widget": "nope"}),
            "bad_request",
            "widget",
        ),
        (
            json!({"type": "history", "id": 6, "dashboard": "billing"}),
            "forbidden",
            "dashboard",
        ),
    ] {
        ws.send(Message::text(req.to_string())).await.unwrap();
        let frame = next_frame(&mut ws).await;
        assert_eq!(frame["type"], "error", "{req}: {frame}");
        assert_eq!(frame["id"], req["id"], "{frame}");
        assert_eq!(frame["code"], code, "{req}: {frame}");
        assert_eq!(frame["field"], field, "{req}: {frame}");
    }
    ws.send(Message::text(r#"{"type":"ping","t":1}"#))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_get_error_frames() {
    let limit = 2;
    let s = start(
        TransportConfig::default().with_max_requests_in_flight(NonZeroUsize::new(limit).unwrap()),
    )
    .await;
    let mut ws = s.ws().await;
    // One write: the session reads every request before it polls the answers.
    let n = 6;
    for id in 0..n {
        let req = json!({"type": "history", "id": id, "dashboard": "ops", "widget": s.single, "range": 60_000});
        ws.feed(Message::text(req.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut answered = vec![None; n];
    for _ in 0..n {
        let f = next_frame(&mut ws).await;
        let id = f["id"].as_u64().unwrap() as usize;
        assert!(answered[id].is_none(), "answered twice: {f}");
        answered[id] = Some(if f["type"] == "history" {
            "history".to_owned()
        } else {
            assert_eq!(f["type"], "error", "{f}");
            f["code"].as_str().unwrap().to_owned()
        });
    }
    for a in &answered[..limit] {
        assert_eq!(a.as_deref(), Some("history"));
    }
    assert!(
        answered
            .iter()
            .any(|a| a.as_deref() == Some("too_many_requests")),
        "{answered:?}"
    );
    // Once answered, the slots are free again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let req = json!({"type": "history", "id": 99, "dashboard": "ops", "widget": s.single});
    ws.send(Message::text(req.to_string())).await.unwrap();
    let f = next_frame(&mut ws).await;
    assert_eq!(
        (f["type"].as_str(), f["id"].as_u64()),
        (Some("history"), Some(99))
    );
}
