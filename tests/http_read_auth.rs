//! Every read of dashboard data is guarded by the router's authenticator (issue #11, hole
//! 0): without a token `401` and no data; with a token for another dashboard `403` and no
//! data (before the dashboard is looked up, so ids cannot be probed); the lists show only
//! what the token may see.
#![cfg(feature = "http")]

mod common;

use common::{dashboard, read_json, serve_app, widget};
use reqwest::StatusCode;
use rtdash::transport::{Principal, StaticTokens, TopicAccess};
use rtdash::{
    Aggregation, AlertRule, Engine, EngineConfig, MemoryStore, MetricsSink, TransportConfig,
};
use serde_json::Value;

struct Server {
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read_json(req.send().await.unwrap()).await
    }

    async fn get_text(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
}

/// Dashboards `ops` (one widget with a value and an alert rule) and `billing`; tokens
/// `ops-reader` (sees `ops`), `all-reader` (sees everything), `expired`.
async fn start() -> (Server, String) {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        MemoryStore::new(),
    )
    .unwrap();
    let w = widget("ops", "req", Aggregation::Sum, 60, 1.0, 0);
    let wid = w.widget_id;
    let mut doc = dashboard("ops", vec![w]);
    doc.alert_rules.push(AlertRule::above(wid, 1.0));
    engine.dashboards().create(doc).unwrap();
    engine
        .dashboards()
        .create(dashboard(
            "billing",
            vec![widget("billing", "req", Aggregation::Count, 60, 1.0, 0)],
        ))
        .unwrap();
    let now = rtdash::Timestamp::now().as_millis();
    let body = format!(r#"{{"metric_name":"req","value":5,"event_time":{now}}}"#);
    assert_eq!(engine.ingest_json(body.as_bytes()).unwrap().accepted, 1);
    let tokens = StaticTokens::new()
        .with_token(
            "ops-reader",
            Principal::new("ops-reader", TopicAccess::topics(["ops"])),
        )
        .with_token(
            "all-reader",
            Principal::new("all-reader", TopicAccess::all()),
        )
        .with_token(
            "expired",
            Principal::new("old", TopicAccess::all())
                .with_expires_at(std::time::SystemTime::UNIX_EPOCH),
        );
    let app = rtdash::http::router(engine, tokens, TransportConfig::default());
    let base = serve_app(app).await;
    (
        Server {
            base,
            client: reqwest::Client::new(),
        },
        wid.to_string(),
    )
}

#[tokio::test]
async fn every_read_needs_a_token_and_the_dashboard_in_its_scope() {
    let (s, wid) = start().await;
    let routes = [
        "/dashboards/ops".to_owned(),
        format!("/dashboards/ops/widgets/{wid}/snapshot"),
        "/dashboards/ops/alerts".to_owned(),
        "/dashboards/ops/alert-rules".to_owned(),
    ];
    for path in &routes {
        // No token, a wrong one, an expired one: 401, and nothing of the dashboard.
        for token in [None, Some("wrong"), Some("expired")] {
            let (status, body) = s.get(path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {token:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized", "{path}");
            assert!(body.get("id").is_none() && body.get("value").is_none());
        }
        // A token for another dashboard: 403.
        let other = path.replace("/ops", "/billing");
        let (status, body) = s.get(&other, Some("ops-reader")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{other}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
        // The right token: the data.
        let (status, body) = s.get(path, Some("ops-reader")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // The snapshot's value really is served to the right reader.
    let (_, snap) = s.get(&routes[1], Some("ops-reader")).await;
    assert_eq!(snap["value"], 5.0);
    // `?token=` works as the header does.
    let (status, _) = s.get("/dashboards/ops?token=ops-reader", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ids_cannot_be_probed_and_lists_are_scoped() {
    let (s, _) = start().await;
    // An unknown id outside the reader's scope answers as a known one does: 403, not 404.
    for id in ["billing", "no-such-dashboard"] {
        let (status, _) = s
            .get(&format!("/dashboards/{id}"), Some("ops-reader"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{id}");
        let (status, _) = s.get(&format!("/dashboards/{id}"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}");
    }
    // The list: 401 without a token, only `ops` for its reader, both for `all-reader`.
    let (status, _) = s.get("/dashboards", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let ids = |v: &Value| -> Vec<String> {
        v["dashboards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, list) = s.get("/dashboards", Some("ops-reader")).await;
    assert_eq!(ids(&list), ["ops"]);
    let (_, list) = s.get("/dashboards", Some("all-reader")).await;
    assert_eq!(ids(&list), ["billing", "ops"]);
}

#[tokio::test]
async fn metrics_need_a_reader_of_every_dashboard() {
    let (s, _) = start().await;
    let (status, body) = s.get_text("/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("rtdash_"), "{body}");
    let (status, body) = s.get_text("/metrics", Some("ops-reader")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("rtdash_"), "{body}");
    let (status, body) = s.get_text("/metrics", Some("all-reader")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("rtdash_ingest_events_total"), "{body}");
    // Health stays open.
    let (status, _) = s.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
}
