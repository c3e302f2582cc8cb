//! Alert rules: fire after holding for their duration, resolve, are pushed to subscribers
//! and kept in the history.

mod common;

use std::time::Duration;

use common::{batch, dashboard, drain, secs, widget};
use rtdash::{Aggregation, AlertRule, AlertState, Engine, EngineConfig, MemoryStore};

#[test]
fn fire_hold_resolve() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let w = widget("ops", "cpu", Aggregation::Max, 2, 1.0, 0);
    let wid = w.widget_id;
    let rule = AlertRule::above(wid, 80.0)
        .with_for(Duration::from_secs(3))
        .with_name("CPU hot");
    let rule_id = rule.id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]).with_alert_rule(rule))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);

    let mut fired_at = None;
    // 90 % every second: breached from t=0, fires once it held for 3 s.
    for s in 0..=4 {
        engine
            .ingest_json_at(&batch(&[("cpu", 90.0, s * 1000)]), secs(s))
            .unwrap();
        let tick = engine.tick(secs(s));
        if !tick.alerts.is_empty() {
            assert!(fired_at.is_none(), "fires once");
            assert_eq!(tick.alerts[0].state, AlertState::Firing);
            fired_at = Some(s);
        }
    }
    assert_eq!(fired_at, Some(3), "fires after holding 3 s, not before");
    let frames = drain(&sub);
    let alert: Vec<_> = frames.iter().filter(|f| f["type"] == "alert").collect();
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0]["state"], "firing");
    assert_eq!(alert[0]["rule_id"], rule_id.to_string());
    assert_eq!(alert[0]["widget"], wid.to_string());
    assert_eq!(alert[0]["value"], 90.0);
    assert!(alert[0]["message"].as_str().unwrap().starts_with("CPU hot"));
    assert_eq!(engine.firing_alerts().len(), 1);

    // A new subscriber sees the firing alert in its snapshot.
    let late = engine.subscribe("ops").unwrap();
    let snap = drain(&late);
    assert!(
        snap.iter()
            .any(|f| f["type"] == "alert" && f["state"] == "firing" && f["_snapshot"] == true)
    );

    // The value drops: once the 90s leave the 2 s window, the alert resolves.
    let mut resolved_at = None;
    for s in 5..=9 {
        engine
            .ingest_json_at(&batch(&[("cpu", 50.0, s * 1000)]), secs(s))
            .unwrap();
        for a in engine.tick(secs(s)).alerts {
            assert_eq!(a.state, AlertState::Resolved);
            resolved_at = Some(s);
        }
    }
    assert_eq!(resolved_at, Some(6));
    assert!(engine.firing_alerts().is_empty());
    let history = engine.alerts();
    let states: Vec<_> = history.iter().map(|a| a.state).collect();
    assert_eq!(states, [AlertState::Firing, AlertState::Resolved]);
    let frames = drain(&sub);
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "alert" && f["state"] == "resolved")
    );
}

#[test]
fn a_short_breach_does_not_fire() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let w = widget("ops", "q", Aggregation::Max, 1, 1.0, 0);
    let rule = AlertRule::above(w.widget_id, 10.0).with_for(Duration::from_secs(5));
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]).with_alert_rule(rule))
        .unwrap();
    for (s, v) in [(0, 20.0), (1, 20.0), (2, 1.0), (3, 20.0), (4, 20.0)] {
        engine
            .ingest_json_at(&batch(&[("q", v, s * 1000)]), secs(s))
            .unwrap();
        assert!(engine.tick(secs(s)).alerts.is_empty());
    }
    assert!(engine.alerts().is_empty());
}

#[test]
fn history_is_bounded() {
    let engine = Engine::new(
        EngineConfig::default().with_alert_history(3),
        MemoryStore::new(),
    )
    .unwrap();
    let w = widget("ops", "q", Aggregation::Max, 1, 1.0, 0);
    let rule = AlertRule::above(w.widget_id, 10.0);
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]).with_alert_rule(rule))
        .unwrap();
    for s in 0..10 {
        let v = if s % 2 == 0 { 20.0 } else { 1.0 };
        engine
            .ingest_json_at(&batch(&[("q", v, s * 1000)]), secs(s))
            .unwrap();
        engine.tick(secs(s));
    }
    assert_eq!(engine.alerts().len(), 3);
}

#[test]
fn removing_a_firing_rule_resolves_it() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let w = widget("ops", "q", Aggregation::Max, 1, 1.0, 0);
    let rule = AlertRule::above(w.widget_id, 10.0);
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]).with_alert_rule(rule))
        .unwrap();
    engine
        .ingest_json_at(&batch(&[("q", 20.0, 0)]), secs(0))
        .unwrap();
    assert_eq!(engine.tick(secs(0)).alerts.len(), 1);
    engine
        .dashboards()
        .set_alert_rules("ops", Vec::new())
        .unwrap();
    let live = engine.subscribe("ops").unwrap();
    let before: Vec<_> = drain(&live);
    assert!(
        before
            .iter()
            .any(|f| f["type"] == "alert" && f["_snapshot"] == true),
        "the firing alert is in the snapshot: {before:?}"
    );
    let tick = engine.tick(secs(0).saturating_add(Duration::from_millis(100)));
    assert_eq!(tick.alerts.len(), 1);
    assert_eq!(tick.alerts[0].state, AlertState::Resolved);
    assert!(engine.firing_alerts().is_empty());
    // A subscriber sees the resolution; a later one sees no alert at all.
    assert!(drain(&live).iter().any(|f| f["type"] == "alert"));
    let late = engine.subscribe("ops").unwrap();
    let frames = drain(&late);
    assert!(frames.iter().all(|f| f["type"] != "alert"), "{frames:?}");
}
