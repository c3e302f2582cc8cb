//! The dashboard registry: bad dashboards, widgets and alert rules are refused with errors
//! naming the field; nothing changes when a change is refused.

mod common;

use common::{dashboard, widget};
use rtdash::{
    Aggregation, AlertRule, DashboardDoc, Engine, EngineConfig, Error, MemoryStore, Uuid,
    WidgetPatch,
};

fn engine() -> (Engine, MemoryStore) {
    let store = MemoryStore::new();
    (
        Engine::new(EngineConfig::default(), store.clone()).unwrap(),
        store,
    )
}

fn paths(e: &Error) -> Vec<String> {
    match e {
        Error::Invalid { violations, .. } => violations.iter().map(|v| v.path.clone()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn crud_is_persisted() {
    let (engine, store) = engine();
    let reg = engine.dashboards();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    reg.create(dashboard("ops", vec![w.clone()])).unwrap();
    assert_eq!(store.get("ops").unwrap().dashboard.widgets.len(), 1);
    assert!(matches!(
        reg.create(dashboard("ops", vec![])),
        Err(Error::DashboardExists { .. })
    ));

    let w2 = widget("ops", "err", Aggregation::Sum, 60, 1.0, 1);
    reg.add_widget("ops", w2.clone()).unwrap();
    assert_eq!(store.get("ops").unwrap().dashboard.widgets.len(), 2);
    reg.remove_widget("ops", w.widget_id).unwrap();
    let doc = reg.get("ops").unwrap();
    assert_eq!(doc.dashboard.widgets, vec![w2]);

    let (_, created) = reg.put(dashboard("ops", vec![])).unwrap();
    assert!(!created);
    reg.delete("ops").unwrap();
    assert!(store.is_empty());
    assert!(matches!(
        reg.get("ops"),
        Err(Error::UnknownDashboard { .. })
    ));
    assert!(matches!(
        reg.delete("ops"),
        Err(Error::UnknownDashboard { .. })
    ));
}

#[test]
fn bad_dashboards_are_refused_naming_every_field() {
    let (engine, store) = engine();
    let mut too_long = widget("ops", "req", Aggregation::Count, 7200, 1.0, 0);
    too_long.title = " ".into();
    let fast = widget("ops", "req", Aggregation::Count, 60, 0.01, 1);
    let overlapping = widget("ops", "req", Aggregation::Count, 60, 1.0, 1);
    let e = engine
        .dashboards()
        .create(dashboard("ops", vec![too_long, fast, overlapping]))
        .unwrap_err();
    assert_eq!(e.code(), "invalid_dashboard");
    assert_eq!(
        paths(&e),
        [
            "widgets[0].title",
            "widgets[0].window_seconds",
            "widgets[1].refresh_interval_seconds",
            "widgets[2].display_config.position",
        ]
    );
    let msg = e.to_string();
    assert!(msg.contains("retention"), "{msg}");
    assert!(store.is_empty(), "nothing stored");
    assert!(engine.dashboards().is_empty());
}

#[test]
fn a_widget_of_another_dashboard_is_refused() {
    let (engine, _) = engine();
    engine
        .dashboards()
        .create(dashboard("ops", vec![]))
        .unwrap();
    let stray = widget("sales", "req", Aggregation::Count, 60, 1.0, 0);
    let e = engine.dashboards().add_widget("ops", stray).unwrap_err();
    assert_eq!(e.code(), "invalid_widget");
    assert_eq!(paths(&e), ["widgets[0].dashboard_id"]);
    assert!(
        engine
            .dashboards()
            .get("ops")
            .unwrap()
            .dashboard
            .widgets
            .is_empty()
    );
}

#[test]
fn patches_are_all_or_nothing() {
    let (engine, _) = engine();
    let a = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    engine
        .dashboards()
        .create(dashboard("ops", vec![a.clone()]))
        .unwrap();
    let good = widget("ops", "x", Aggregation::Count, 60, 1.0, 1);
    let bad = widget("ops", "x", Aggregation::Count, 0, 1.0, 2);
    let patch = WidgetPatch {
        add: vec![good, bad],
        remove: vec![a.widget_id],
        ..WidgetPatch::default()
    };
    let e = engine
        .dashboards()
        .patch_widgets("ops", &patch)
        .unwrap_err();
    assert_eq!(paths(&e), ["widgets[1].window_seconds"]);
    assert_eq!(
        engine.dashboards().get("ops").unwrap().dashboard.widgets,
        vec![a]
    );

    let unknown = WidgetPatch {
        remove: vec![Uuid::new_v4()],
        ..WidgetPatch::default()
    };
    assert!(matches!(
        engine.dashboards().patch_widgets("ops", &unknown),
        Err(Error::UnknownWidget { .. })
    ));
    assert!(matches!(
        engine.dashboards().patch_widgets("nope", &unknown),
        Err(Error::UnknownDashboard { .. })
    ));
}

#[test]
fn bad_alert_rules_are_refused() {
    let (engine, _) = engine();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let wid = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();
    let mut nan = AlertRule::above(wid, f64::NAN);
    nan.for_seconds = -3.0;
    let stray = AlertRule::below(Uuid::new_v4(), 1.0);
    let e = engine
        .dashboards()
        .set_alert_rules("ops", vec![nan, stray])
        .unwrap_err();
    assert_eq!(e.code(), "invalid_alert_rule");
    assert_eq!(
        paths(&e),
        [
            "alert_rules[0].threshold",
            "alert_rules[0].for_seconds",
            "alert_rules[1].widget_id"
        ]
    );
    // Removing a widget removes its rules.
    engine
        .dashboards()
        .add_alert_rule("ops", AlertRule::above(wid, 5.0))
        .unwrap();
    engine.dashboards().remove_widget("ops", wid).unwrap();
    assert!(
        engine
            .dashboards()
            .get("ops")
            .unwrap()
            .alert_rules
            .is_empty()
    );
}

#[test]
fn documents_round_trip_and_bad_json_is_reported() {
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let doc = dashboard("ops", vec![w.clone()]).with_alert_rule(AlertRule::above(w.widget_id, 3.0));
    let back = DashboardDoc::from_json(doc.to_json().as_bytes()).unwrap();
    assert_eq!(back, doc);

    let e = DashboardDoc::from_json(b"{\"id\": \"ops\",").unwrap_err();
    assert_eq!(e.code(), "malformed_json");
    let e = DashboardDoc::from_json(br#"{"id": "ops", "name": "x", "colour": 1}"#).unwrap_err();
    assert_eq!(e.code(), "invalid_dashboard");
    assert!(e.to_string().contains("colour"), "{e}");
    let e = DashboardDoc::from_json(br#"{"id": "o ps", "name": "x"}"#).unwrap_err();
    assert!(e.to_string().contains("o ps"), "{e}");
    let e = DashboardDoc::from_json(b"[1]").unwrap_err();
    assert_eq!(e.code(), "wrong_shape");
}

#[test]
fn invalid_stored_dashboards_are_skipped_and_reported() {
    let w = widget("ops", "req", Aggregation::Count, 7200, 1.0, 0);
    let store = MemoryStore::new()
        .with_dashboard(dashboard("ops", vec![w]))
        .with_dashboard(dashboard("fine", vec![]));
    let engine = Engine::new(EngineConfig::default(), store).unwrap();
    assert_eq!(engine.dashboards().len(), 1);
    let problems = engine.dashboards().load_problems();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].reason.contains("window_seconds"),
        "{}",
        problems[0]
    );
}

#[test]
fn built_and_bare_documents_are_completed_when_stored() {
    use rtdash::{GridPos, Widget};

    let (engine, store) = engine();
    let reg = engine.dashboards();
    // Built in code: one widget with a position, two without.
    let doc = DashboardDoc::new("ops", "Operations")
        .unwrap()
        .with_widget(
            Widget::new("Errors", "http.errors", Aggregation::Sum, 60)
                .with_position(GridPos::new(0, 0, 3, 2)),
        )
        .with_widget(Widget::new("p99", "http.latency_ms", Aggregation::P99, 30))
        .with_widget(Widget::new(
            "Requests",
            "http.requests",
            Aggregation::Count,
            60,
        ));
    let stored = reg.create(doc).unwrap();
    let at: Vec<Option<GridPos>> = stored
        .dashboard
        .widgets
        .iter()
        .map(|w| w.display.position)
        .collect();
    let want = [
        Some(GridPos::new(0, 0, 3, 2)),
        Some(GridPos::new(3, 0, 6, 4)),
        Some(GridPos::new(9, 0, 3, 2)),
    ];
    assert_eq!(at, want);
    // What the store holds (and clients are served) is complete.
    let json = store.get("ops").unwrap().to_json();
    assert_eq!(json.matches(r#""dashboard_id":"ops""#).count(), 3, "{json}");
    assert_eq!(json.matches(r#""position""#).count(), 3, "{json}");

    // A widget added later without a position takes the first free cells.
    let doc = reg
        .add_widget(
            "ops",
            Widget::new("Max", "http.latency_ms", Aggregation::Max, 30),
        )
        .unwrap();
    assert_eq!(
        doc.dashboard.widgets[3].display.position,
        Some(GridPos::new(0, 4, 6, 4))
    );

    // JSON without dashboard ids or positions is completed the same way.
    let bare = br#"{"id": "sales", "name": "Sales", "widgets": [
        {"widget_id": "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c01", "title": "Orders",
         "metric_name": "orders", "aggregation": "count", "window_seconds": 60,
         "refresh_interval_seconds": 1, "display_config": {"chart": "stat"}}]}"#;
    let stored = reg.create(DashboardDoc::from_json(bare).unwrap()).unwrap();
    let w = &stored.dashboard.widgets[0];
    assert_eq!(w.dashboard_id.as_ref().map(|d| d.as_str()), Some("sales"));
    assert_eq!(w.display.position, Some(GridPos::new(0, 0, 3, 2)));

    // A bad id is refused by the constructor; the other rules when the document is created.
    let e = DashboardDoc::new("no spaces", "x").unwrap_err();
    assert_eq!(paths(&e), ["id"]);
    let e = reg
        .create(
            DashboardDoc::new("bad", " ")
                .unwrap()
                .with_widget(Widget::new("w", "m", Aggregation::Avg, 0)),
        )
        .unwrap_err();
    assert_eq!(paths(&e), ["name", "widgets[0].window_seconds"]);
}
