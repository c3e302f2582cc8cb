//! Dashboard ids over HTTP: an id starting with `.` (`.`, `..`, `...`, `.hidden`) is refused
//! with a 4xx naming it, and every id that is accepted survives a restart of a server on a
//! `FileStore` (a dot-file used to be answered 201, then skipped when the store loaded).
#![cfg(feature = "http")]

mod common;

use common::Http;
use reqwest::StatusCode;
use rtdash::{Engine, EngineConfig, FileStore, MemoryStore};
use serde_json::json;

const DOT_IDS: [&str; 5] = [".", "..", "...", ".hidden", ".ops.json"];

#[tokio::test]
async fn ids_starting_with_a_dot_are_refused_and_named() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let http = Http::start(engine.clone()).await;
    for id in DOT_IDS {
        let (status, body) = http
            .post("/dashboards", &json!({"id": id, "name": "Hidden"}))
            .await;
        assert!(status.is_client_error(), "{id}: {status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("`{id}`")) && message.contains("may not start with a dot"),
            "{id}: {body}"
        );
    }
    assert!(engine.dashboards().list().is_empty());
}

#[tokio::test]
async fn every_accepted_id_survives_a_restart_on_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(128);
    let ids = [
        "ops", "v1.2", "a..b", "ops.", "ops.json", "x.tmp", "-x", "_x", "A", "a", &long,
    ];
    {
        let engine = Engine::new(
            EngineConfig::default(),
            FileStore::open(dir.path()).unwrap(),
        )
        .unwrap();
        let http = Http::start(engine).await;
        for id in ids {
            http.create_dashboard(id, vec![]).await;
        }
        for id in DOT_IDS {
            let (status, _) = http
                .post("/dashboards", &json!({"id": id, "name": "Hidden"}))
                .await;
            assert!(status.is_client_error(), "{id}: {status}");
        }
    }

    // A new server on the same directory: all accepted dashboards are there, nothing else.
    let engine = Engine::new(
        EngineConfig::default(),
        FileStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    assert_eq!(engine.dashboards().load_problems(), []);
    let http = Http::start(engine.clone()).await;
    for id in ids {
        let (status, body) = http.get(&format!("/dashboards/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
        assert_eq!(body["id"], id);
    }
    let mut listed: Vec<String> = engine
        .dashboards()
        .list()
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    listed.sort();
    let mut want: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(listed, want);
}
