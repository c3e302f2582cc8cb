//! The HTTP API refuses bad input with the right status and a JSON error naming what is
//! wrong: malformed JSON, oversized bodies, unknown dashboards and widgets, invalid widgets,
//! NaN values, wrong content types.
#![cfg(feature = "http")]

mod common;

use common::{T0, dashboard, serve, widget};
use reqwest::{Client, StatusCode};
use rtdash::{Aggregation, Engine, EngineConfig, MemoryStore};
use serde_json::{Value, json};

struct Api {
    base: String,
    client: Client,
}

impl Api {
    async fn start(config: EngineConfig) -> (Self, Engine) {
        let engine = Engine::new(config, MemoryStore::new()).unwrap();
        let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
        engine
            .dashboards()
            .create(dashboard("ops", vec![w]))
            .unwrap();
        let base = serve(engine.clone()).await;
        (
            Self {
                base,
                client: Client::new(),
            },
            engine,
        )
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(m, format!("{}{path}", self.base))
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        common::read_json(req.send().await.unwrap()).await
    }

    async fn json(&self, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(
            method,
            path,
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
        .await
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (api, _) = Api::start(EngineConfig::default()).await;
    let (s, v) = api
        .json("POST", "/ingest", r#"[{"metric_name": "a", "value""#)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "malformed_json");
    assert!(v["error"]["position"]["line"].is_number());
    let (s, v) = api.json("POST", "/dashboards", "{oops").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "malformed_json");
    let (s, v) = api.json("POST", "/ingest", "42").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "wrong_shape");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let (api, engine) = Api::start(EngineConfig::default().with_max_body_bytes(1024)).await;
    let one = json!({"metric_name": "req", "value": 1, "event_time": T0});
    let body = serde_json::to_vec(&vec![one; 100]).unwrap();
    assert!(body.len() > 1024);
    let (s, v) = api
        .send("POST", "/ingest", Some("application/json"), body)
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_eq!(engine.stats().accepted, 0);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (api, _) = Api::start(EngineConfig::default()).await;
    let body = format!(r#"[{{"metric_name":"req","value":1,"event_time":{T0}}}]"#);
    let (s, v) = api
        .send(
            "POST",
            "/ingest",
            Some("text/plain"),
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/plain")
    );
    let (s, _) = api
        .send("POST", "/ingest", None, body.clone().into_bytes())
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = api
        .send(
            "POST",
            "/ingest",
            Some("application/json; charset=utf-8"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn nan_and_out_of_range_values_are_refused_per_event() {
    let (api, engine) = Api::start(EngineConfig::default()).await;
    let body = format!(
        r#"[{{"metric_name":"req","value":1e999,"event_time":{T0}}},
            {{"metric_name":"req","value":"NaN","event_time":{T0}}},
            {{"metric_name":"req","value":null,"event_time":{T0}}},
            {{"metric_name":"req","value":3,"event_time":{T0}}}]"#
    );
    let (s, v) = api.json("POST", "/ingest", &body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"], 3);
    let errors = v["errors"].as_array().unwrap();
    for (e, index) in errors.iter().zip([0, 1, 2]) {
        assert_eq!(e["index"], index);
        assert_eq!(e["field"], "value");
    }
    assert!(errors[0]["message"].as_str().unwrap().contains("1e999"));
    assert_eq!(engine.stats().accepted, 1);
}

#[tokio::test]
async fn unknown_dashboard_and_widget_are_404() {
    let (api, _) = Api::start(EngineConfig::default()).await;
    for (method, path) in [
        ("GET", "/dashboards/nope"),
        ("DELETE", "/dashboards/nope"),
        ("GET", "/dashboards/nope/alerts"),
        (
            "GET",
            "/dashboards/nope/widgets/6f1c9a36-52a4-4c49-9b8e-3f1d1f0a7c01/snapshot",
        ),
    ] {
        let (s, v) = api.send(method, path, None, Vec::new()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(v["error"]["code"], "unknown_dashboard", "{method} {path}");
    }
    let (s, v) = api
        .json("PATCH", "/dashboards/nope/widgets", r#"{"remove": []}"#)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_dashboard");
    let (s, v) = api
        .send(
            "GET",
            "/dashboards/ops/widgets/6f1c9a36-52a4-4c49-9b8e-3f1d1f0a7c01/snapshot",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_widget");
    let (s, v) = api
        .send(
            "GET",
            "/dashboards/ops/widgets/not-a-uuid/snapshot",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_widget");
    let (s, v) = api.send("GET", "/no/such/route", None, Vec::new()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn invalid_widgets_and_dashboards_are_422_naming_the_field() {
    let (api, engine) = Api::start(EngineConfig::default()).await;
    let mut bad =
        serde_json::to_value(widget("ops", "req", Aggregation::Count, 0, 1.0, 1)).unwrap();
    bad["refresh_interval_seconds"] = json!(-1);
    let (s, v) = api
        .json(
            "PATCH",
            "/dashboards/ops/widgets",
            &json!({"add": [bad]}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_widget");
    let paths: Vec<_> = v["error"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "widgets[1].window_seconds",
            "widgets[1].refresh_interval_seconds"
        ]
    );
    assert_eq!(
        engine
            .dashboards()
            .get("ops")
            .unwrap()
            .dashboard
            .widgets
            .len(),
        1
    );

    // A wrongly typed field, an unknown aggregation, an unknown field.
    let mut typo =
        serde_json::to_value(widget("ops", "req", Aggregation::Count, 60, 1.0, 2)).unwrap();
    typo["aggregation"] = json!("p0");
    let (s, v) = api
        .json(
            "PATCH",
            "/dashboards/ops/widgets",
            &json!({"add": [typo]}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("percentile"),
        "{v}"
    );
    let (s, v) = api
        .json("PATCH", "/dashboards/ops/widgets", r#"{"addd": []}"#)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("addd"),
        "{v}"
    );

    let (s, v) = api
        .json("POST", "/dashboards", r#"{"id": "new", "name": ""}"#)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_dashboard");
    assert_eq!(v["error"]["violations"][0]["path"], "name");

    let (s, v) = api
        .json("PUT", "/dashboards/ops", r#"{"id": "other", "name": "x"}"#)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["violations"][0]["path"], "id");

    let (s, v) = api
        .json("POST", "/dashboards", r#"{"id": "ops", "name": "again"}"#)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "dashboard_exists");

    let (s, v) = api
        .json(
            "PUT",
            "/dashboards/ops/alert-rules",
            r#"[{"widget_id": "6f1c9a36-52a4-4c49-9b8e-3f1d1f0a7c01", "condition": "above", "threshold": 1}]"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_alert_rule");
    assert_eq!(
        v["error"]["violations"][0]["path"],
        "alert_rules[0].widget_id"
    );
}
