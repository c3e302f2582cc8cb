//! Issue #12 point 3: `http::Routes` mounts only the chosen groups of the API; the others
//! are not there (`404`), and the router can join a host's router that has a fallback.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use axum::Router;
use common::{dashboard, read_json, serve_app, widget};
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use rtdash::http::Routes;
use rtdash::{Aggregation, AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

fn engine() -> Engine {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    engine
        .dashboards()
        .create(dashboard(
            "ops",
            vec![widget("ops", "req", Aggregation::Count, 60, 1.0, 0)],
        ))
        .unwrap();
    engine
}

fn events() -> Value {
    json!([{"metric_name": "req", "value": 1.0, "event_time": rtdash::Timestamp::now().as_millis()}])
}

#[tokio::test]
async fn only_the_streams_and_ingest() {
    let engine = engine();
    let app: Router = Routes::new(engine.clone(), AllowAll, TransportConfig::default())
        .dashboards(false)
        .metrics(false)
        .health(false)
        .openapi(false)
        .build();
    let base = serve_app(app).await;
    let c = Client::new();
    // The groups left out are not there.
    for path in [
        "/dashboards",
        "/dashboards/ops",
        "/metrics",
        "/health",
        "/openapi.json",
    ] {
        let (status, body) = read_json(c.get(format!("{base}{path}")).send().await.unwrap()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}: {body}"
        );
    }
    // Ingest and the streams are.
    let (status, report) = read_json(
        c.post(format!("{base}/ingest"))
            .json(&events())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let url = format!(
        "{}/stream/ops?token=viewer",
        base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                kinds.push(v["type"].as_str().unwrap().to_owned());
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(kinds, ["welcome", "snapshot"]);
    let resp = c
        .get(format!("{base}/sse/ops?token=viewer"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    engine.close_sessions().await;
}

#[tokio::test]
async fn without_metrics_and_health_the_rest_stays_guarded() {
    let tokens = rtdash::transport::StaticTokens::new().with_token(
        "reader",
        rtdash::transport::Principal::new("r", rtdash::transport::TopicAccess::all()),
    );
    let app: Router = Routes::new(engine(), tokens, TransportConfig::default())
        .metrics(false)
        .health(false)
        .build();
    let base = serve_app(app).await;
    let c = Client::new();
    for path in ["/metrics", "/health"] {
        let status = c
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let status = c
        .get(format!("{base}/dashboards/ops"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = c
        .get(format!("{base}/dashboards/ops"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let status = c
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_its_fallback_it_merges_into_a_host_router_with_one() {
    let rt = Routes::new(engine(), AllowAll, TransportConfig::default()).fallback(false);
    let app: Router = Router::new()
        .fallback(|| async { (StatusCode::NOT_FOUND, "the host's page") })
        .merge(rt.build());
    let base = serve_app(app).await;
    let c = Client::new();
    let resp = c.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.unwrap(), "the host's page");
    let (status, body) = read_json(c.get(format!("{base}/health")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = read_json(
        c.get(format!("{base}/dashboards/ops"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some("ops")));
}
