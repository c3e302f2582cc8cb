//! `Engine::spawn`: the scheduler runs in the background, and one `shutdown` stops it and
//! closes every stream with 1001, over real sockets.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const WIDGET: &str = "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c02";

#[tokio::test]
async fn spawn_runs_the_scheduler_and_shutdown_closes_streams_with_1001() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let doc = json!({"id": "ops", "name": "Operations", "widgets": [{
        "widget_id": WIDGET, "dashboard_id": "ops", "title": "Requests",
        "metric_name": "api.requests", "aggregation": "sum", "window_seconds": 60,
        "refresh_interval_seconds": 0.1,
        "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 3, "h": 2}}}]});
    engine
        .dashboards()
        .create(rtdash::DashboardDoc::from_json(doc.to_string().as_bytes()).unwrap())
        .unwrap();
    let base = common::serve(engine.clone()).await;
    let task = engine.spawn();

    let url = format!("{}/stream/ops?token=t", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(common::next_frame(&mut ws).await["type"], "welcome");
    assert_eq!(common::next_frame(&mut ws).await["type"], "snapshot");

    // No `tick` by hand: the spawned scheduler publishes the value.
    engine
        .ingest_json(
            json!([{"metric_name": "api.requests", "value": 7, "event_time": Timestamp::now().as_millis()}])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    let value = loop {
        let frame = common::next_frame(&mut ws).await;
        if frame["type"] == "update" && frame["items"][0]["value"] == 7.0 {
            break frame["items"][0]["value"].clone();
        }
    };
    assert_eq!(value, 7.0);

    task.shutdown().await;
    // The stream ends with a close frame 1001 (going away).
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(f))) => return Some(u16::from(f.code)),
                Ok(Message::Close(None)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    })
    .await
    .expect("the stream was not closed");
    assert_eq!(code, Some(1001));

    // The scheduler stopped: new data is no longer published.
    let published = engine.hub().stats().published;
    engine
        .ingest_json(
            json!([{"metric_name": "api.requests", "value": 1, "event_time": Timestamp::now().as_millis()}])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(engine.hub().stats().published, published);
}
