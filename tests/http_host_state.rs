//! Issue #12 point 1: the router is a `Router<S>` for the host's state `S`, so a host nests
//! it under a prefix of its own stateful router without `.with_state` first; the host's
//! routes, the API and the WebSocket stream all answer under one server. A writer layer the
//! host puts outside the nest (where paths carry the prefix) still scopes every change.
#![cfg(feature = "http")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use common::{Ws, read_json, serve_app};
use futures::StreamExt;
use reqwest::{Client, Method, StatusCode};
use rtdash::http::RequireWriters;
use rtdash::transport::{Principal, StaticTokens, TopicAccess};
use rtdash::{AllowAll, Engine, TransportConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// The host's own state.
#[derive(Clone)]
struct AppState {
    name: &'static str,
    hits: Arc<AtomicUsize>,
}

/// The host's own route, reading its state.
async fn hello(State(s): State<AppState>) -> String {
    let n = s.hits.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{} {n}", s.name)
}

fn state() -> AppState {
    AppState {
        name: "host",
        hits: Arc::new(AtomicUsize::new(0)),
    }
}

/// An engine with dashboards `ops` and `billing`.
fn engine() -> Engine {
    common::engine_with_dashboards(&["ops", "billing"])
}

/// The next text frame of `ws`, parsed.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn nested_under_a_prefix_beside_the_hosts_stateful_routes() {
    let engine = engine();
    let tokens = StaticTokens::new().with_token(
        "ops-reader",
        Principal::new("ops-reader", TopicAccess::topics(["ops"])),
    );
    // No `.with_state` on rtdash's router: it takes the host's state type.
    let app: Router<AppState> = Router::<AppState>::new().route("/hello", get(hello)).nest(
        "/rt",
        rtdash::http::router(engine.clone(), tokens, TransportConfig::default()),
    );
    let base = serve_app(app.with_state(state())).await;
    let c = Client::new();

    // The host's route, with its state.
    for n in 1..=2 {
        let resp = c.get(format!("{base}/hello")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), format!("host {n}"));
    }

    // rtdash's API under the prefix, with its token checks.
    let (status, body) = read_json(
        c.get(format!("{base}/rt/dashboards/ops"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = read_json(
        c.get(format!("{base}/rt/dashboards/ops"))
            .bearer_auth("ops-reader")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some("ops")));
    let (status, _) = read_json(
        c.get(format!("{base}/rt/dashboards/billing"))
            .bearer_auth("ops-reader")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = read_json(c.get(format!("{base}/rt/health")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let events = json!([{"metric_name": "req", "value": 1.0, "event_time": rtdash::Timestamp::now().as_millis()}]);
    let (status, report) = read_json(
        c.post(format!("{base}/rt/ingest"))
            .json(&events)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, report["accepted"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    // Under the prefix, unknown paths get the API's JSON 404; the API is not at the root.
    let (status, body) = read_json(c.get(format!("{base}/rt/nope")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let status = c
        .get(format!("{base}/dashboards/ops"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The WebSocket stream under the prefix: welcome, then the dashboard's snapshot.
    let url = format!(
        "{}/rt/stream/ops?token=ops-reader",
        base.replace("http://", "ws://")
    );
    let (mut ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 101);
    let welcome = next_json(&mut ws).await;
    assert_eq!(
        (welcome["type"].as_str(), welcome["subject"].as_str()),
        (Some("welcome"), Some("ops-reader")),
        "{welcome}"
    );
    let snapshot = next_json(&mut ws).await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["topic"].as_str()),
        (Some("snapshot"), Some("ops")),
        "{snapshot}"
    );
    // A dashboard outside the token's grant closes the session with 4003.
    let url = format!(
        "{}/rt/stream/billing?token=ops-reader",
        base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(Message::Text(t))) => panic!("data before the close: {t}"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 4003);
    engine.close_sessions().await;
}

#[tokio::test]
async fn a_writer_layer_outside_the_nest_still_scopes_changes() {
    let engine = engine();
    let writers = StaticTokens::new().with_token(
        "ops-writer",
        Principal::new("ops-team", TopicAccess::topics(["ops"])),
    );
    // The layer sees `/rt/dashboards/…`, not `/dashboards/…`: rtdash's handlers check the
    // writer it admitted.
    let app = Router::<AppState>::new()
        .route("/hello", get(hello))
        .nest(
            "/rt",
            rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default()),
        )
        .layer(RequireWriters::new(writers))
        .with_state(state());
    let base = serve_app(app).await;
    let c = Client::new();
    let send = |method: Method, path: &str, token: Option<&str>| {
        let mut req = c.request(method, format!("{base}{path}")).json(&json!({}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { read_json(req.send().await.unwrap()).await }
    };
    for (method, path) in [
        (Method::DELETE, "/rt/dashboards/billing"),
        (Method::PUT, "/rt/dashboards/billing"),
        (Method::PUT, "/rt/dashboards/billing/alert-rules"),
        (Method::PATCH, "/rt/dashboards/billing/widgets"),
    ] {
        let (status, body) = send(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        let (status, body) = send(method.clone(), path, Some("ops-writer")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {path}: {body}"
        );
    }
    let create = c
        .post(format!("{base}/rt/dashboards"))
        .bearer_auth("ops-writer")
        .json(&json!({"id": "payroll", "name": "Payroll"}));
    let (status, _) = read_json(create.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(engine.dashboards().len(), 2);
    assert!(engine.dashboards().contains("billing"));
    // Inside the grant the change is made; the host's GET route is untouched.
    let (status, _) = send(Method::DELETE, "/rt/dashboards/ops", Some("ops-writer")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!engine.dashboards().contains("ops"));
    let resp = c.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "host 1");
}
