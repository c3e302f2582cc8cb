//! The longest widget window follows the window store's retention: raising the retention
//! alone admits longer windows, and a refused window's message names the setting to raise.

use std::time::Duration;

use rtdash::{
    Aggregation, DashboardDoc, Engine, EngineConfig, Error, MemoryStore, SchemaLimits, Widget,
    WindowConfig,
};

const HOUR: Duration = Duration::from_secs(3600);

fn doc(window_seconds: u32) -> DashboardDoc {
    DashboardDoc::new("ops", "Operations")
        .unwrap()
        .with_widget(Widget::new(
            "Requests",
            "req",
            Aggregation::Count,
            window_seconds,
        ))
}

/// The message of the refusal of a dashboard with one widget of `window_seconds`.
fn refusal(engine: &Engine, window_seconds: u32) -> String {
    match engine.dashboards().create(doc(window_seconds)) {
        Err(Error::Invalid { violations, .. }) => {
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!(violations[0].path, "widgets[0].window_seconds");
            violations[0].message.clone()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn raising_only_the_retention_admits_a_two_hour_window() {
    // The default retention (1 h) refuses 2 h, naming the retention.
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let msg = refusal(&engine, 7200);
    assert!(
        msg.contains("retention of 3600 s") && msg.contains("`window.retention`"),
        "{msg}"
    );
    assert!(!msg.contains("max_window"), "max_window is not set: {msg}");

    // 3 h of retention, nothing else: 2 h is admitted, 3 h + 1 s is not.
    let config =
        EngineConfig::default().with_window(WindowConfig::default().with_retention(3 * HOUR));
    assert_eq!(config.effective_schema().window_limit(), Some(3 * HOUR));
    let engine = Engine::new(config, MemoryStore::new()).unwrap();
    engine.dashboards().create(doc(7200)).unwrap();
    assert_eq!(engine.dashboards().limits().window_limit(), Some(3 * HOUR));
    engine.dashboards().delete("ops").unwrap();
    engine.dashboards().create(doc(3 * 3600)).unwrap();
    engine.dashboards().delete("ops").unwrap();
    let msg = refusal(&engine, 3 * 3600 + 1);
    assert!(
        msg.contains("retention of 10800 s") && msg.contains("`window.retention`"),
        "{msg}"
    );
}

#[test]
fn a_tighter_max_window_is_named_and_may_not_exceed_the_retention() {
    let config = EngineConfig::default()
        .with_window(WindowConfig::default().with_retention(3 * HOUR))
        .with_schema(SchemaLimits::default().with_max_window(HOUR));
    let engine = Engine::new(config, MemoryStore::new()).unwrap();
    engine.dashboards().create(doc(3600)).unwrap();
    engine.dashboards().delete("ops").unwrap();
    // Within the retention, over max_window: max_window is named.
    let msg = refusal(&engine, 7200);
    assert!(
        msg.contains("limit of 3600 s set by `schema.max_window`")
            && msg.contains("retention of 10800 s"),
        "{msg}"
    );
    // Over both: both are named.
    let msg = refusal(&engine, 4 * 3600);
    assert!(
        msg.contains("`schema.max_window`") && msg.contains("`window.retention`"),
        "{msg}"
    );

    // A max_window above the retention is a configuration error.
    let config =
        EngineConfig::default().with_schema(SchemaLimits::default().with_max_window(2 * HOUR));
    let err = Engine::new(config, MemoryStore::new()).unwrap_err();
    match &err {
        Error::InvalidConfig { field, reason } => {
            assert_eq!(*field, "schema.max_window");
            assert!(reason.contains("window.retention"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
