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

/// Alert history in PostgreSQL (issue #17): a restarted engine reads its records back,
/// takes up the one still firing, a damaged row costs only itself, and the table keeps the
/// newest `alert_records`.
#[test]
fn alert_history_survives_a_restart_in_postgres() {
    use rtdash::{AlertHistoryQuery, AlertState, Timestamp};
    let db = Database::new();
    let connect = || PostgresStore::connect(&db.url(), PostgresStoreConfig::default()).unwrap();
    let t = |s: i64| Timestamp::from_millis(1_700_000_000_000 + s * 1000);
    let at = |engine: &Engine, s: i64, v: f64| {
        let body = format!(
            r#"{{"metric_name": "cpu", "value": {v}, "event_time": {}}}"#,
            t(s).as_millis()
        );
        engine.ingest_json_at(body.as_bytes(), t(s)).unwrap();
        engine.tick(t(s));
    };
    let config = || EngineConfig::default().with_alert_records(3);
    let first;
    {
        let engine = Engine::new(config(), connect()).unwrap();
        let w = Widget::new("CPU", "cpu", rtdash::Aggregation::Max, 5)
            .with_refresh(Duration::from_secs(1));
        let rule = AlertRule::above(w.widget_id, 80.0).with_name("CPU hot");
        engine
            .dashboards()
            .create(
                DashboardDoc::new("ops", "Ops")
                    .unwrap()
                    .with_widget(w)
                    .with_alert_rule(rule),
            )
            .unwrap();
        for i in 0..4 {
            at(&engine, i * 20, 90.0 + f64::from(u8::try_from(i).unwrap()));
            at(&engine, i * 20 + 10, 1.0);
        }
        at(&engine, 100, 99.0); // still firing when the engine goes
        engine.save_alert_records().unwrap();
        let page = engine
            .alert_history("ops", &AlertHistoryQuery::default())
            .unwrap();
        assert_eq!(page.records.len(), 3, "the engine keeps 3");
        first = page.records.clone();
    }
    // The table keeps the newest 3 too.
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM rtdash_dashboards_alerts", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
    // A damaged row (written by hand) is skipped.
    sql(
        &db,
        "INSERT INTO rtdash_dashboards_alerts VALUES ('x', 'ops', 1800000000000, '{\"id\": 1}')",
    );
    let engine = Engine::new(EngineConfig::default().with_alert_records(10), connect()).unwrap();
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    let ids = |p: &[rtdash::AlertRecord]| p.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&page.records), ids(&first));
    assert_eq!(page.records[0].state(), AlertState::Firing);
    assert_eq!(page.records[0].value, Some(99.0));
    assert_eq!(page.records[1].duration_ms, Some(10_000));
    // The restarted engine resolves the record it took up.
    at(&engine, 110, 2.0);
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records[0].id, first[0].id);
    assert_eq!(page.records[0].ended_at, Some(t(110)));
    engine.save_alert_records().unwrap();
    let ended: Option<i64> = db
        .client()
        .query_one(
            "SELECT (record->>'ended_at')::bigint FROM rtdash_dashboards_alerts WHERE id = $1",
            &[&first[0].id.to_string()],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, Some(t(110).as_millis()));
}
