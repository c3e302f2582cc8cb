//! `PostgresStore` against the real PostgreSQL of the machine (127.0.0.1:5432, user
//! `postgres`; CI's services start it), each test in a fresh database of its own, dropped
//! at the end. A missing server fails the tests, it never skips them.
#![cfg(feature = "postgres")]

use std::time::Duration;

use rtdash::postgres::{PostgresStore, PostgresStoreConfig};
use rtdash::{
    AlertRule, DashboardDoc, DashboardId, DashboardStore, Engine, EngineConfig, Error, Widget,
};

mod common;

use common::pg::{Database, SERVER};

/// Runs `statements` on the test database.
fn sql(db: &Database, statements: &str) {
    db.client()
        .batch_execute(statements)
        .expect("SQL on the test database");
}

fn doc(id: &str, title: &str) -> DashboardDoc {
    let w = Widget::new(title, "http.requests", rtdash::Aggregation::Count, 60);
    let rule = AlertRule::above(w.widget_id, 100.0);
    DashboardDoc::new(id, "Operations")
        .unwrap()
        .with_widget(w)
        .with_alert_rule(rule)
}

#[test]
fn documents_round_trip_replace_and_delete() {
    let db = Database::new();
    let store = PostgresStore::connect(&db.url(), PostgresStoreConfig::default()).unwrap();
    assert!(store.load_all().unwrap().dashboards.is_empty());
    let ops = doc("ops", "Requests");
    store.put(&ops).unwrap();
    store.put(&doc("sales", "Orders")).unwrap();
    // Replace: one row per id, the newest document.
    let ops2 = doc("ops", "Requests per second");
    store.put(&ops2).unwrap();
    let loaded = store.load_all().unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let ids: Vec<&str> = loaded.dashboards.iter().map(DashboardDoc::id).collect();
    assert_eq!(ids, ["ops", "sales"]);
    assert_eq!(loaded.dashboards[0], ops2);
    store.delete(&DashboardId::new("sales").unwrap()).unwrap();
    // Deleting what is not there is no error.
    store.delete(&DashboardId::new("sales").unwrap()).unwrap();
    assert_eq!(store.load_all().unwrap().dashboards, [ops2]);
}

#[test]
fn two_engines_share_one_store_from_inside_a_runtime() {
    let db = Database::new();
    let url = db.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Built and used inside a tokio runtime: the store's calls run on its own thread.
        let a = Engine::builder(EngineConfig::default())
            .store(PostgresStore::connect(&url, PostgresStoreConfig::default()).unwrap())
            .build()
            .unwrap();
        a.dashboards().create(doc("ops", "Requests")).unwrap();
        // A second node, started later, sees the dashboard and its alert rule.
        let b = Engine::builder(EngineConfig::default())
            .store(PostgresStore::connect(&url, PostgresStoreConfig::default()).unwrap())
            .build()
            .unwrap();
        let seen = b.dashboards().get("ops").unwrap();
        assert_eq!(seen.alert_rules.len(), 1);
        assert_eq!(seen.dashboard.widgets[0].title, "Requests");
    });
}

#[test]
fn rows_that_do_not_decode_are_reported_and_skipped() {
    let db = Database::new();
    let store = PostgresStore::connect(&db.url(), PostgresStoreConfig::default()).unwrap();
    store.put(&doc("ops", "Requests")).unwrap();
    sql(
        &db,
        r#"INSERT INTO rtdash_dashboards (id, doc) VALUES
             ('broken', '{"id": "broken"}'),
             ('elsewhere', '{"id": "other", "name": "Other"}'),
             ('bad-widget', '{"id": "bad-widget", "name": "B", "widgets": [{"title": 5}]}')"#,
    );
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.dashboards.len(), 1);
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/broken") && p.contains("name")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/elsewhere") && p.contains("other")),
        "{problems:#?}"
    );
    // An engine starts anyway and lists them.
    let engine = Engine::builder(EngineConfig::default())
        .store(store)
        .build()
        .unwrap();
    assert_eq!(engine.dashboards().load_problems().len(), 3);
    assert!(engine.dashboards().contains("ops"));
}

#[test]
fn bad_settings_and_an_unreachable_server_are_clear_errors() {
    for (url, config, field) in [
        (
            "postgres://x@127.0.0.1/db",
            PostgresStoreConfig {
                table: "a;b".into(),
                ..PostgresStoreConfig::default()
            },
            "table",
        ),
        (
            "postgres://x@127.0.0.1/db",
            PostgresStoreConfig {
                timeout: Duration::ZERO,
                ..PostgresStoreConfig::default()
            },
            "timeout",
        ),
        (
            "postgres://x@127.0.0.1:notaport/db",
            PostgresStoreConfig::default(),
            "url",
        ),
    ] {
        let err = PostgresStore::connect(url, config).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: f, .. } if *f == field),
            "{err}"
        );
    }
    // Nothing listens on port 1: a prompt `store_failed`, the password never shown.
    let started = std::time::Instant::now();
    let err = PostgresStore::connect(
        "postgres://me:s3cret@127.0.0.1:1/db",
        PostgresStoreConfig {
            timeout: Duration::from_secs(2),
            ..PostgresStoreConfig::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "store_failed", "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_restarted_connection_is_made_again() {
    let db = Database::new();
    let store = PostgresStore::connect(&db.url(), PostgresStoreConfig::default()).unwrap();
    store.put(&doc("ops", "Requests")).unwrap();
    // The server ends every session of the database (as a restart would).
    postgres::Client::connect(&format!("{SERVER}/postgres"), postgres::NoTls)
        .and_then(|mut c| {
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db.name],
            )
        })
        .unwrap();
    // The first call after may fail (the connection was cut under it); the store
    // connects again and the next ones work, with nothing lost.
    let first = store.load_all();
    let loaded = match first {
        Ok(l) => l,
        Err(e) => {
            assert_eq!(e.code(), "store_failed", "{e}");
            store.load_all().unwrap()
        }
    };
    assert_eq!(loaded.dashboards.len(), 1);
    store.put(&doc("sales", "Orders")).unwrap();
    assert_eq!(store.load_all().unwrap().dashboards.len(), 2);
}
