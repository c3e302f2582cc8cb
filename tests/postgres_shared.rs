//! Two engines sharing one `PostgresStore`: a change made on one is applied by the other
//! within a couple of seconds (`LISTEN`/`NOTIFY`), announced to its subscribers, and
//! survives a PostgreSQL restart and a listener cut off from the server (the resync). Runs
//! against the machine's PostgreSQL (127.0.0.1:5432, a fresh database per test) and a
//! private server the test kills (`common::pg::PrivatePg`). A missing server fails the
//! tests, it never skips them.
#![cfg(feature = "postgres")]

mod common;

use std::time::{Duration, Instant};

use common::pg::{Database, PrivatePg};
use rtdash::fanout::Event;
use rtdash::postgres::{PostgresStore, PostgresStoreConfig};
use rtdash::{
    Aggregation, AlertRule, DashboardDoc, Engine, EngineConfig, Frame, Topic, Widget, WidgetKey,
};
use serde_json::Value;

/// How long a change may take to reach the other engine.
const PROPAGATION: Duration = Duration::from_secs(3);

fn engine(url: &str) -> Engine {
    let store = PostgresStore::connect(url, PostgresStoreConfig::default())
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    Engine::builder(EngineConfig::default())
        .store(store)
        .build()
        .unwrap()
}

fn ops(title: &str) -> DashboardDoc {
    let w = Widget::new(title, "http.requests", Aggregation::Count, 60);
    let rule = AlertRule::above(w.widget_id, 100.0);
    DashboardDoc::new("ops", "Operations")
        .unwrap()
        .with_widget(w)
        .with_alert_rule(rule)
}

/// Waits until `done` holds, failing with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `event` of every `dashboard` frame queued for `sub` now.
fn dashboard_events(sub: &rtdash::Subscription<Topic, WidgetKey, Frame>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = sub.try_recv() {
        if let Event::Message { msg, .. } = ev {
            let v: Value = serde_json::from_str(msg.as_str()).unwrap();
            if v["type"] == "dashboard" {
                out.push(v["event"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

#[test]
fn changes_on_one_engine_reach_the_other_and_its_subscribers() {
    let db = Database::new();
    let (a, b) = (engine(&db.url()), engine(&db.url()));

    // Created on A: B has it, and evaluates its widget.
    a.dashboards().create(ops("Requests")).unwrap();
    wait_for("B sees the new dashboard", PROPAGATION, || {
        b.dashboards().contains("ops")
    });
    assert_eq!(
        *b.dashboards().get("ops").unwrap(),
        *a.dashboards().get("ops").unwrap()
    );
    let sub_a = a.subscribe("ops").unwrap();
    let sub_b = b.subscribe("ops").unwrap();
    dashboard_events(&sub_a);
    dashboard_events(&sub_b);

    // A widget added on A: B's subscribers are told, and B evaluates the new widget.
    let errors = Widget::new("Errors", "http.errors", Aggregation::Sum, 60);
    let errors_id = errors.widget_id;
    a.dashboards().add_widget("ops", errors).unwrap();
    wait_for("B sees the new widget", PROPAGATION, || {
        b.dashboards().widget("ops", errors_id).is_ok()
    });
    b.ingest_json(
        format!(
            r#"[{{"metric_name": "http.errors", "value": 3, "event_time": {}}}]"#,
            rtdash::Timestamp::now().as_millis()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(b.widget_value("ops", errors_id).unwrap().value, Some(3.0));
    wait_for("B's subscriber gets the frame", PROPAGATION, || {
        dashboard_events(&sub_b) == ["updated"]
    });

    // An alert rule's threshold changed on A.
    let mut rules = a.dashboards().get("ops").unwrap().alert_rules.clone();
    rules[0].threshold = 250.0;
    a.dashboards().set_alert_rules("ops", rules).unwrap();
    wait_for("B sees the new threshold", PROPAGATION, || {
        b.dashboards().get("ops").unwrap().alert_rules[0].threshold == 250.0
    });
    wait_for("B's subscriber gets the frame", PROPAGATION, || {
        dashboard_events(&sub_b) == ["updated"]
    });

    // A's subscriber got one frame per change of A, none for A's own notifications; B
    // has made no change, so A has nothing to apply.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dashboard_events(&sub_a), ["updated", "updated"]);
    assert_eq!(dashboard_events(&sub_b), Vec::<String>::new());
    assert!(a.dashboards().skipped_changes().is_empty());
    assert!(b.dashboards().skipped_changes().is_empty());

    // A change on B goes the other way.
    b.dashboards()
        .add_widget(
            "ops",
            Widget::new("Latency", "http.ms", Aggregation::Avg, 60),
        )
        .unwrap();
    wait_for("A sees B's widget", PROPAGATION, || {
        a.dashboards().get("ops").unwrap().dashboard.widgets.len() == 3
    });
    assert_eq!(dashboard_events(&sub_a), ["updated"]);

    // Deleted on A.
    a.dashboards().delete("ops").unwrap();
    wait_for("B drops the dashboard", PROPAGATION, || {
        !b.dashboards().contains("ops")
    });
    wait_for("B's subscriber gets the frame", PROPAGATION, || {
        dashboard_events(&sub_b).contains(&"deleted".to_owned())
    });
    assert!(b.widget_value("ops", errors_id).is_err());
}

#[test]
fn bad_rows_and_documents_over_the_limits_are_reported_and_skipped() {
    let db = Database::new();
    let a = engine(&db.url());
    // B allows shorter windows than A: a widget A accepts is over B's limits.
    let store = PostgresStore::connect(&db.url(), PostgresStoreConfig::default()).unwrap();
    let mut config = EngineConfig::default();
    config.schema.max_window = Some(Duration::from_secs(120));
    let b = Engine::builder(config).store(store).build().unwrap();
    a.dashboards().create(ops("Requests")).unwrap();
    wait_for("B sees the dashboard", PROPAGATION, || {
        b.dashboards().contains("ops")
    });

    // A row written by hand that does not decode (and notified, as the store's writes are).
    let mut client = db.client();
    client
        .batch_execute(
            r#"INSERT INTO rtdash_dashboards (id, doc) VALUES ('broken', '{"id": "broken"}');
               UPDATE rtdash_dashboards SET doc = '{"id": "ops", "widgets": 7}' WHERE id = 'ops';
               NOTIFY rtdash_dashboards, 'broken'; NOTIFY rtdash_dashboards, 'ops';"#,
        )
        .unwrap();
    wait_for("B reports both rows", PROPAGATION, || {
        b.dashboards().skipped_changes().len() == 2
    });
    let skipped: Vec<String> = b
        .dashboards()
        .skipped_changes()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        skipped[0].contains("/broken") && skipped[0].contains("name"),
        "{skipped:#?}"
    );
    assert!(skipped[1].contains("/ops"), "{skipped:#?}");
    // Nothing applied: B keeps its version of `ops` and has no `broken`.
    assert!(!b.dashboards().contains("broken"));
    assert_eq!(
        b.dashboards().get("ops").unwrap().dashboard.widgets[0].title,
        "Requests"
    );

    // A widget over B's limits: applied by A, skipped by B with the reason.
    a.dashboards()
        .put(ops("Requests"))
        .expect("A repairs the row");
    wait_for("B sees the repair", PROPAGATION, || {
        b.dashboards().get("ops").unwrap() == a.dashboards().get("ops").unwrap()
    });
    assert_eq!(b.dashboards().skipped_changes().len(), 2);
    let wide = Widget::new("Hourly", "http.requests", Aggregation::Count, 3600);
    let wide_id = wide.widget_id;
    a.dashboards().add_widget("ops", wide).unwrap();
    wait_for("B skips the wide widget", PROPAGATION, || {
        b.dashboards().skipped_changes().len() == 3
    });
    let last = b.dashboards().skipped_changes()[2].to_string();
    assert!(last.contains("window_seconds"), "{last}");
    assert!(b.dashboards().widget("ops", wide_id).is_err());

    // B keeps running: the next valid change arrives.
    a.dashboards().remove_widget("ops", wide_id).unwrap();
    a.dashboards()
        .add_widget(
            "ops",
            Widget::new("Errors", "http.errors", Aggregation::Sum, 60),
        )
        .unwrap();
    wait_for("B sees the next change", PROPAGATION, || {
        b.dashboards().get("ops").unwrap().dashboard.widgets.len() == 2
    });
}

#[test]
fn the_listener_survives_a_restart_and_resyncs_what_it_missed() {
    let mut pg = PrivatePg::start();
    let mut admin = postgres::Client::connect(&pg.url("postgres"), postgres::NoTls).unwrap();
    // B logs in as a role of its own, so the test can cut B off while A writes.
    admin
        .batch_execute("CREATE ROLE node_b SUPERUSER LOGIN")
        .and_then(|()| admin.batch_execute("CREATE DATABASE shared"))
        .unwrap();
    drop(admin);
    let url_a = pg.url("shared");
    let url_b = format!("postgres://node_b@127.0.0.1:{}/shared", pg.port);
    let (a, b) = (engine(&url_a), engine(&url_b));
    a.dashboards().create(ops("Requests")).unwrap();
    wait_for("B sees the dashboard", PROPAGATION, || {
        b.dashboards().contains("ops")
    });
    let sub_b = b.subscribe("ops").unwrap();

    // A crash and a restart; then a change through a fresh connection.
    pg.kill();
    pg.restart();
    postgres::Client::connect(&url_a, postgres::NoTls)
        .and_then(|mut c| {
            c.batch_execute(&format!(
                "UPDATE rtdash_dashboards SET doc = '{}' WHERE id = 'ops'; \
                 NOTIFY rtdash_dashboards, 'ops'",
                ops("After restart").to_json().replace('\'', "''")
            ))
        })
        .unwrap();
    wait_for(
        "B sees the change after the restart",
        Duration::from_secs(10),
        || b.dashboards().get("ops").unwrap().dashboard.widgets[0].title == "After restart",
    );

    // B cut off (its sessions ended, its role may not log in): A's changes meanwhile are
    // notified to nobody on B's side.
    let mut admin = postgres::Client::connect(&pg.url("postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "ALTER ROLE node_b NOLOGIN; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'node_b'",
        )
        .unwrap();
    let missed = |a: &Engine| {
        let updated = a.dashboards().put(ops("While B was away"));
        // A's own connection was not cut, but be lenient on the first call.
        updated.or_else(|_| a.dashboards().put(ops("While B was away")))
    };
    missed(&a).unwrap();
    a.dashboards()
        .create(DashboardDoc::new("sales", "Sales").unwrap())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        b.dashboards().get("ops").unwrap().dashboard.widgets[0].title,
        "After restart",
        "B cannot know yet"
    );
    // Let B in again: its listener connects, reads the table and applies the difference.
    admin.batch_execute("ALTER ROLE node_b LOGIN").unwrap();
    wait_for("B resyncs", Duration::from_secs(10), || {
        b.dashboards().contains("sales")
            && b.dashboards().get("ops").unwrap().dashboard.widgets[0].title == "While B was away"
    });
    assert!(dashboard_events(&sub_b).len() >= 2);
    // And it follows notifications again.
    a.dashboards().delete("sales").unwrap();
    wait_for("B follows again", PROPAGATION, || {
        !b.dashboards().contains("sales")
    });
}

#[test]
fn dropping_the_engine_ends_its_listener() {
    let db = Database::new();
    let mut client = db.client();
    let sessions = |c: &mut postgres::Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .unwrap()
        .get(0)
    };
    let a = engine(&db.url());
    // The store's connection and the listener's.
    assert_eq!(sessions(&mut client), 2);
    drop(a);
    wait_for("both sessions end", Duration::from_secs(3), || {
        sessions(&mut client) == 0
    });
}
