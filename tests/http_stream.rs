//! The happy path over real sockets: create a dashboard over HTTP, connect a WebSocket
//! client, ingest, and receive the snapshot then the update; SSE and metrics too.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use common::next_frame;
use reqwest::{Client, StatusCode};
use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
use serde_json::{Value, json};

const WIDGET: &str = "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c01";

fn dashboard_json() -> Value {
    json!({"id": "ops", "name": "Operations", "widgets": [{
        "widget_id": WIDGET, "dashboard_id": "ops", "title": "Requests",
        "metric_name": "api.requests", "aggregation": "count", "window_seconds": 60,
        "refresh_interval_seconds": 0.5,
        "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 3, "h": 2}}}],
      "alert_rules": [{"widget_id": WIDGET, "condition": "above", "threshold": 1, "name": "busy"}]})
}

#[tokio::test]
async fn create_ingest_and_stream_over_websocket() {
    let config = EngineConfig::default().with_metrics(rtdash::MetricsSink::Isolated);
    let engine = Engine::new(config, MemoryStore::new()).unwrap();
    let base = common::serve(engine.clone()).await;
    let client = Client::new();

    let resp = client
        .post(format!("{base}/dashboards"))
        .json(&dashboard_json())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["location"], "/dashboards/ops");
    let listed: Value = client
        .get(format!("{base}/dashboards"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["dashboards"][0]["id"], "ops");
    assert_eq!(listed["dashboards"][0]["alert_rules"][0]["name"], "busy");

    let ws_url = format!("{}/stream/ops?token=demo", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let welcome = next_frame(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let snapshot = next_frame(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["topic"], "ops");

    let now = Timestamp::now().as_millis();
    let events = json!([
        {"metric_name": "api.requests", "value": 1, "event_time": now},
        {"metric_name": "api.requests", "value": 1, "event_time": now, "tags": {"region": "eu"}},
    ]);
    let report: Value = client
        .post(format!("{base}/ingest"))
        .json(&events)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["accepted"], 2);

    engine.tick(Timestamp::now());
    let update = next_frame(&mut ws).await;
    assert_eq!(update["type"], "update");
    assert_eq!(update["topic"], "ops");
    assert_eq!(update["items"][0]["widget"], WIDGET);
    assert_eq!(update["items"][0]["value"], 2.0);
    assert_eq!(update["items"][0]["stale"], false);
    let alert = next_frame(&mut ws).await;
    assert_eq!(alert["type"], "alert");
    assert_eq!(alert["state"], "firing");

    // The snapshot endpoint and the alert history agree.
    let snap: Value = client
        .get(format!("{base}/dashboards/ops/widgets/{WIDGET}/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["value"], 2.0);
    let alerts: Value = client
        .get(format!("{base}/dashboards/ops/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["firing"][0]["state"], "firing");

    // A second client gets the current value in its snapshot at once.
    let ws_url = format!("{}/stream/ops?token=demo", base.replace("http://", "ws://"));
    let (mut ws2, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    assert_eq!(next_frame(&mut ws2).await["type"], "welcome");
    let snap2 = next_frame(&mut ws2).await;
    let frames = snap2["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "update" && f["items"][0]["value"] == 2.0)
    );

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rtdash_ingest_events_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("rtdash_active_connections 2"), "{metrics}");
    // One update frame was written to one client's socket; its latency was
    // observed, as was its publish.
    assert!(
        metrics.contains("rtdash_push_latency_seconds_count 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rtdash_publish_latency_seconds_count 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rtdash_dashboard_subscribers{dashboard=\"ops\"} 2"),
        "{metrics}"
    );

    // Deleting the dashboard tells its subscribers.
    let resp = client
        .delete(format!("{base}/dashboards/ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let notice = next_frame(&mut ws).await;
    assert_eq!(notice["type"], "dashboard");
    assert_eq!(notice["event"], "deleted");
    engine.close_sessions().await;
}

#[tokio::test]
async fn sse_streams_the_same_frames() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let base = common::serve(engine.clone()).await;
    let client = Client::new();
    let resp = client
        .put(format!("{base}/dashboards/ops"))
        .json(&dashboard_json())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut sse = client
        .get(format!("{base}/sse/ops?token=demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while !text.contains("\"type\":\"snapshot\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let now = Timestamp::now().as_millis();
    let ok = client
        .post(format!("{base}/ingest"))
        .json(&json!([{"metric_name": "api.requests", "value": 1, "event_time": now}]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    engine.tick(Timestamp::now());
    while !text.contains("\"type\":\"update\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), sse.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains(WIDGET));
    engine.close_sessions().await;
}
