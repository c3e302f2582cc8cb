//! `GET /openapi.json` describes the router (issue #11): an OpenAPI 3 document listing
//! every route with exactly the methods the router answers, and for each operation the
//! refusals it can answer.
#![cfg(feature = "http")]

mod common;

use std::collections::BTreeSet;

use common::{read_json, serve_app};
use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
use serde_json::Value;

/// Every route of `rtdash::http::router`, with its methods (HEAD, which axum answers for
/// every GET, aside).
const ROUTES: &[(&str, &[&str])] = &[
    ("/ingest", &["post"]),
    ("/dashboards", &["get", "post"]),
    ("/dashboards/{id}", &["delete", "get", "put"]),
    ("/dashboards/{id}/widgets", &["patch"]),
    ("/dashboards/{id}/widgets/{widget_id}/snapshot", &["get"]),
    ("/dashboards/{id}/widgets/{widget_id}/history", &["get"]),
    ("/dashboards/{id}/history", &["get"]),
    ("/dashboards/{id}/alerts", &["get"]),
    ("/dashboards/{id}/alert-rules", &["get", "put"]),
    ("/dashboards/{id}/alert-history", &["get"]),
    ("/catalog", &["get"]),
    ("/preview", &["post"]),
    ("/stream/{id}", &["get"]),
    ("/sse/{id}", &["get"]),
    ("/metrics", &["get"]),
    ("/health", &["get"]),
    ("/openapi.json", &["get"]),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn start() -> (String, reqwest::Client) {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let app = rtdash::http::router(engine, AllowAll, TransportConfig::default());
    (serve_app(app).await, reqwest::Client::new())
}

async fn fetch_doc(base: &str, client: &reqwest::Client) -> Value {
    let resp = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let (_, doc) = read_json(resp).await;
    doc
}

/// The operations of `doc`: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// The documented statuses of `op`.
fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// `path` with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "ops")
        .replace("{widget_id}", "0a5e7d3c-0001-4b6e-9a3f-5c2d0e000001")
}

#[tokio::test]
async fn the_document_lists_every_route_with_its_methods() {
    let (base, client) = start().await;
    let doc = fetch_doc(&base, &client).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "openapi {version}");
    assert_eq!(doc["info"]["title"], "rtdash HTTP API");
    assert_eq!(doc.to_string(), {
        let direct: Value = serde_json::from_str(&rtdash::http::openapi_json()).unwrap();
        direct.to_string()
    });

    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routes: BTreeSet<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    assert_eq!(documented, routes);

    for (path, methods) in ROUTES {
        let item = doc["paths"][path].as_object().unwrap();
        let got: BTreeSet<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| METHODS.contains(k))
            .collect();
        let want: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(got, want, "methods of {path}");
        for method in *methods {
            let op = &item[*method];
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            // Every path parameter of the route is documented, as required.
            for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                let p = op["parameters"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                    .unwrap_or_else(|| panic!("{method} {path} lacks parameter {name}"));
                assert_eq!(p["in"], "path");
                assert_eq!(p["required"], true);
            }
        }
    }
}

/// The router's own answer (`405` with `Allow`) to a method no route takes names exactly
/// the documented methods of each path: the document and the router agree.
#[tokio::test]
async fn the_router_answers_exactly_the_documented_methods() {
    let (base, client) = start().await;
    let doc = fetch_doc(&base, &client).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let resp = client
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}{}", concrete(path)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allow: BTreeSet<String> = resp.headers()[ALLOW]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m != "head")
            .collect();
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.contains(&k.as_str()))
            .cloned()
            .collect();
        assert_eq!(allow, documented, "{path}");
        let (_, body) = read_json(resp).await;
        assert_eq!(body["error"]["code"], "method_not_allowed", "{path}");
    }
}

/// Each operation documents the refusals its route can answer, with the error bodies.
#[tokio::test]
async fn every_operation_documents_its_refusals() {
    let (base, client) = start().await;
    let doc = fetch_doc(&base, &client).await;
    let ops = operations(&doc);
    assert_eq!(
        ops.len(),
        ROUTES.iter().map(|(_, m)| m.len()).sum::<usize>()
    );
    for (path, method, op) in &ops {
        let at = format!("{method} {path}");
        let s = statuses(op);
        if op.get("requestBody").is_some() {
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(body.is_object(), "{at}: request body schema");
            for status in ["400", "401", "413", "415", "422", "503"] {
                assert!(s.contains(status), "{at} does not document {status}");
            }
        }
        let secured = op["security"]
            .as_array()
            .is_some_and(|r| r.iter().any(|req| req.get("bearer").is_some()));
        let open = ["/health", "/openapi.json"].contains(&path.as_str());
        assert_eq!(secured, !open, "{at}: security");
        if method == "get" && !open {
            let token = op["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "token"))
                .unwrap_or_else(|| panic!("{at} lacks the token parameter"));
            assert_eq!(token["in"], "query");
            assert_eq!(token["required"], false);
            // The WebSocket route checks tokens after the upgrade, not with a 401.
            if path != "/stream/{id}" {
                assert!(s.contains("401"), "{at} does not document 401");
            }
        }
        if path.contains("{id}") {
            assert!(s.contains("404"), "{at} does not document 404");
        }
        if path.starts_with("/dashboards/{id}") {
            assert!(s.contains("403"), "{at} does not document 403");
        }
        // Every refusal has a body, and one shape: the API's error, the streams' included.
        for status in s
            .iter()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
        {
            let content = &op["responses"][status]["content"];
            assert!(content.is_object(), "{at} {status} has no body");
            assert_eq!(
                content.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["application/json"],
                "{at} {status}"
            );
            let json = &content["application/json"]["schema"]["$ref"];
            assert_eq!(json, "#/components/schemas/ErrorBody", "{at} {status}");
        }
    }
    let ws = &doc["paths"]["/stream/{id}"]["get"]["responses"];
    assert!(ws["101"].is_object());
    let sse = &doc["paths"]["/sse/{id}"]["get"]["responses"];
    assert!(sse["200"]["content"]["text/event-stream"].is_object());
}

/// Every `$ref` of the document names a component it has.
#[tokio::test]
async fn every_reference_resolves() {
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let pointer = r.strip_prefix('#').expect("a local reference");
                    assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    *seen += 1;
                }
                m.values().for_each(|v| walk(v, doc, seen));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let (base, client) = start().await;
    let doc = fetch_doc(&base, &client).await;
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 50, "{seen} references");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
