//! `http::RequireWriters`: the routes that change state need a writer's bearer token,
//! scoped to the dashboards its principal may see; reads and streams are untouched, and a
//! refused request changes nothing.
#![cfg(feature = "http")]

mod common;

use std::time::{Duration, SystemTime};

use common::serve_app;
use reqwest::{Client, RequestBuilder, StatusCode};
use rtdash::http::RequireWriters;
use rtdash::transport::{Principal, StaticTokens, TopicAccess};
use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
use serde_json::{Value, json};

fn dashboard(id: &str) -> Value {
    json!({"id": id, "name": id, "widgets": []})
}

async fn start() -> (String, Engine) {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(rtdash::MetricsSink::Isolated),
        MemoryStore::new(),
    )
    .unwrap();
    let writers = StaticTokens::new()
        .with_token(
            "ops-writer",
            Principal::new("ops-team", TopicAccess::topics(["ops"])),
        )
        .with_token(
            "old-writer",
            Principal::new("old", TopicAccess::all())
                .with_expires_at(SystemTime::now() - Duration::from_secs(5)),
        );
    let app = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default())
        .layer(RequireWriters::new(writers));
    (serve_app(app).await, engine)
}

/// Sends; returns the status, the `WWW-Authenticate` header and the JSON error code.
async fn send(req: RequestBuilder) -> (StatusCode, Option<String>, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, challenge, body["error"]["code"].clone())
}

#[tokio::test]
async fn writes_need_a_writer_token_scoped_to_the_dashboard() {
    let (base, engine) = start().await;
    let c = Client::new();
    let create = |token: Option<&str>, id: &str| {
        let r = c.post(format!("{base}/dashboards")).json(&dashboard(id));
        match token {
            Some(t) => r.header("authorization", t),
            None => r,
        }
    };

    // No token, a malformed header, an unknown token, an expired one: 401, nothing made.
    for header in [
        None,
        Some("ops-writer"),
        Some("Basic b3Bz"),
        Some("Bearer nope"),
        Some("Bearer old-writer"),
        Some("Bearer "),
    ] {
        let (status, challenge, code) = send(create(header, "ops")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{header:?}");
        assert_eq!(code, "unauthorized", "{header:?}");
    }
    assert!(engine.dashboards().is_empty());

    // The writer may create `ops` (the scheme is case-insensitive) but not `billing`.
    let (status, _, _) = send(create(Some("bearer ops-writer"), "ops")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, code) = send(create(Some("Bearer ops-writer"), "billing")).await;
    assert_eq!((status, code), (StatusCode::FORBIDDEN, json!("forbidden")));
    assert!(!engine.dashboards().contains("billing"));

    // Path-scoped routes: refused outside the grant before the handler runs.
    engine
        .dashboards()
        .create(
            rtdash::DashboardDoc::from_json(dashboard("billing").to_string().as_bytes()).unwrap(),
        )
        .unwrap();
    for (method, path) in [
        (reqwest::Method::DELETE, "/dashboards/billing"),
        (reqwest::Method::PUT, "/dashboards/billing/alert-rules"),
        (reqwest::Method::PATCH, "/dashboards/billing/widgets"),
        // An escaped id matches no grant.
        (reqwest::Method::DELETE, "/dashboards/%6Fps"),
    ] {
        let r = c
            .request(method.clone(), format!("{base}{path}"))
            .header("authorization", "Bearer ops-writer")
            .json(&json!({}));
        let (status, _, code) = send(r).await;
        assert_eq!(
            (status, code),
            (StatusCode::FORBIDDEN, json!("forbidden")),
            "{method} {path}"
        );
    }
    assert_eq!(engine.dashboards().len(), 2);

    // Inside the grant: deleting `ops` works; any writer may ingest.
    let r = c
        .delete(format!("{base}/dashboards/ops"))
        .header("authorization", "Bearer ops-writer");
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let events = json!([{"metric_name": "m", "value": 1.0, "event_time": 1_700_000_000_000_i64}]);
    let (status, _, _) = send(c.post(format!("{base}/ingest")).json(&events)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = c
        .post(format!("{base}/ingest"))
        .header("authorization", "Bearer ops-writer")
        .json(&events);
    let report: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(report["accepted"], 1);
}

#[tokio::test]
async fn reads_and_streams_need_no_writer_token() {
    let (base, engine) = start().await;
    engine
        .dashboards()
        .create(rtdash::DashboardDoc::from_json(dashboard("ops").to_string().as_bytes()).unwrap())
        .unwrap();
    let c = Client::new();
    for path in ["/dashboards", "/dashboards/ops", "/health", "/metrics"] {
        let status = c
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // The WebSocket stream takes the viewers' token (here AllowAll), not a writer's.
    let ws = format!(
        "{}/stream/ops?token=viewer",
        base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    use futures::StreamExt;
    let first = ws.next().await.unwrap().unwrap();
    assert!(
        first.to_text().unwrap().contains("\"welcome\""),
        "{first:?}"
    );
}
