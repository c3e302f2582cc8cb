//! The refresh scheduler: values go out at their refresh interval, only when they changed,
//! widgets sharing a query are computed once, and the changes of one dashboard in one tick
//! go out as one frame.

mod common;

use common::{batch, dashboard, drain, item, t, updates, widget};
use rtdash::{Aggregation, Engine, EngineConfig, MemoryStore};

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap()
}

#[test]
fn published_at_interval_only_on_change_and_shared() {
    let engine = engine();
    // a and b share one query; c has its own and refreshes every 2 s.
    let a = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let b = widget("ops", "req", Aggregation::Count, 60, 1.0, 1);
    let c = widget("ops", "req", Aggregation::Sum, 60, 2.0, 2);
    let (ia, ib, ic) = (a.widget_id, b.widget_id, c.widget_id);
    engine
        .dashboards()
        .create(dashboard("ops", vec![a, b, c]))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    assert!(updates(&drain(&sub)).is_empty(), "nothing computed yet");

    let r = engine
        .ingest_json_at(&batch(&[("req", 2.0, -100), ("req", 3.0, -50)]), t(0))
        .unwrap();
    assert_eq!(r.accepted, 2);

    // First evaluation: every widget, two distinct queries, one frame.
    let tick = engine.tick(t(0));
    assert_eq!(tick.widgets_evaluated, 3);
    assert_eq!(tick.queries_computed, 2);
    assert_eq!(tick.values_published, 3);
    assert_eq!(tick.frames_published, 1);
    let frames = drain(&sub);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(item(&frames[0], ia).unwrap()["value"], 2.0);
    assert_eq!(item(&frames[0], ib).unwrap()["value"], 2.0);
    assert_eq!(item(&frames[0], ic).unwrap()["value"], 5.0);

    // Before the interval: nothing is evaluated.
    let tick = engine.tick(t(500));
    assert_eq!(tick.widgets_evaluated, 0);

    // At 1 s: a and b are due (one shared query), unchanged → nothing published.
    let tick = engine.tick(t(1000));
    assert_eq!((tick.widgets_evaluated, tick.queries_computed), (2, 1));
    assert_eq!(tick.frames_published, 0);
    assert!(drain(&sub).is_empty());

    // New data between refreshes is not pushed before the widgets are due again.
    engine
        .ingest_json_at(&batch(&[("req", 10.0, 1200)]), t(1200))
        .unwrap();
    let tick = engine.tick(t(1500));
    assert_eq!(tick.widgets_evaluated, 0);
    assert!(drain(&sub).is_empty());

    // At 2 s every widget is due and changed: still one frame for the dashboard.
    let tick = engine.tick(t(2000));
    assert_eq!((tick.widgets_evaluated, tick.queries_computed), (3, 2));
    assert_eq!((tick.values_published, tick.frames_published), (3, 1));
    let frames = drain(&sub);
    assert_eq!(frames.len(), 1);
    assert_eq!(item(&frames[0], ia).unwrap()["value"], 3.0);
    assert_eq!(item(&frames[0], ic).unwrap()["value"], 15.0);
    assert_eq!(item(&frames[0], ia).unwrap()["stale"], false);

    let stats = engine.stats();
    assert_eq!(stats.widget_evaluations, 8);
    assert_eq!(stats.query_evaluations, 5);
}

#[test]
fn each_dashboard_gets_its_own_frame_and_sharing_spans_dashboards() {
    let engine = engine();
    let a = widget("one", "req", Aggregation::Count, 60, 1.0, 0);
    let b = widget("two", "req", Aggregation::Count, 60, 1.0, 0);
    engine
        .dashboards()
        .create(dashboard("one", vec![a]))
        .unwrap();
    engine
        .dashboards()
        .create(dashboard("two", vec![b]))
        .unwrap();
    let s1 = engine.subscribe("one").unwrap();
    let s2 = engine.subscribe("two").unwrap();
    drain(&s1);
    drain(&s2);
    engine
        .ingest_json_at(&batch(&[("req", 1.0, 0)]), t(0))
        .unwrap();
    let tick = engine.tick(t(0));
    assert_eq!((tick.widgets_evaluated, tick.queries_computed), (2, 1));
    assert_eq!(tick.frames_published, 2);
    assert_eq!(updates(&drain(&s1)).len(), 1);
    assert_eq!(updates(&drain(&s2)).len(), 1);
}

#[test]
fn a_late_subscriber_gets_the_current_values_in_its_snapshot() {
    let engine = engine();
    let a = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let id = a.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![a]))
        .unwrap();
    engine
        .ingest_json_at(&batch(&[("req", 1.0, 0)]), t(0))
        .unwrap();
    engine.tick(t(0));
    let sub = engine.subscribe("ops").unwrap();
    let frames = drain(&sub);
    let snap: Vec<_> = updates(&frames)
        .into_iter()
        .filter(|f| f["_snapshot"] == true)
        .collect();
    assert_eq!(snap.len(), 1);
    assert_eq!(item(snap[0], id).unwrap()["value"], 1.0);
}

#[test]
fn a_changed_widget_is_re_evaluated_at_once() {
    let engine = engine();
    let a = widget("ops", "req", Aggregation::Count, 60, 10.0, 0);
    let id = a.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![a.clone()]))
        .unwrap();
    engine
        .ingest_json_at(&batch(&[("req", 4.0, 0)]), t(0))
        .unwrap();
    engine.tick(t(0));
    assert_eq!(engine.tick(t(1000)).widgets_evaluated, 0);

    let mut changed = a;
    changed.aggregation = Aggregation::Sum;
    engine.dashboards().update_widget("ops", changed).unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    let tick = engine.tick(t(1100));
    assert_eq!(tick.widgets_evaluated, 1);
    let frames = drain(&sub);
    let ups = updates(&frames);
    assert_eq!(item(ups[0], id).unwrap()["value"], 4.0);
}

#[test]
fn group_by_widgets_carry_one_value_per_group() {
    let engine = engine();
    let mut w = widget("ops", "lat", Aggregation::Max, 60, 1.0, 0);
    w.group_by = Some("region".into());
    let id = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();
    let body = br#"[
      {"metric_name":"lat","value":5,"tags":{"region":"eu"},"event_time":1700000000000},
      {"metric_name":"lat","value":9,"tags":{"region":"us"},"event_time":1700000000000}]"#;
    engine.ingest_json_at(body, t(0)).unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    engine.tick(t(0));
    let frames = drain(&sub);
    let it = item(updates(&frames)[0], id).unwrap();
    assert_eq!(it["groups"][0]["group"], "eu");
    assert_eq!(it["groups"][0]["value"], 5.0);
    assert_eq!(it["groups"][1]["group"], "us");
    assert_eq!(it["groups"][1]["value"], 9.0);
    assert_eq!(it["count"], 2);
}

/// The widget ids of the items of `frames`' update frames, sorted, once each.
fn widget_ids<'a>(frames: impl IntoIterator<Item = &'a serde_json::Value>) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = frames
        .into_iter()
        .filter(|f| f["type"] == "update")
        .flat_map(|f| f["items"].as_array().into_iter().flatten())
        .map(|i| i["widget"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The widget ids whose values a new subscriber's snapshot carries.
fn snapshot_widgets(engine: &Engine, dashboard: &str) -> Vec<uuid::Uuid> {
    let sub = engine.subscribe(dashboard).unwrap();
    widget_ids(&drain(&sub))
}

#[test]
fn removed_redefined_and_deleted_widgets_leave_the_snapshot() {
    let engine = engine();
    let a = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let b = widget("ops", "req", Aggregation::Sum, 60, 1.0, 1);
    let (ia, ib) = (a.widget_id, b.widget_id);
    engine
        .dashboards()
        .create(dashboard("ops", vec![a.clone(), b]))
        .unwrap();
    engine
        .ingest_json_at(&batch(&[("req", 2.0, -100)]), t(0))
        .unwrap();
    engine.tick(t(0));
    let mut both = vec![ia, ib];
    both.sort_unstable();
    assert_eq!(snapshot_widgets(&engine, "ops"), both);

    // Removing b: its last value no longer reaches new subscribers.
    engine.dashboards().remove_widget("ops", ib).unwrap();
    engine.tick(t(100));
    assert_eq!(snapshot_widgets(&engine, "ops"), vec![ia]);

    // Redefining a (count -> max): the old definition's value goes at once,
    // and the new one's comes with its first evaluation.
    let mut a_max = a.clone();
    a_max.aggregation = Aggregation::Max;
    engine
        .dashboards()
        .put(dashboard("ops", vec![a_max]))
        .unwrap();
    engine.tick(t(100));
    let sub = engine.subscribe("ops").unwrap();
    let frames = drain(&sub);
    let values: Vec<f64> = updates(&frames)
        .iter()
        .filter_map(|f| item(f, ia))
        .filter_map(|i| i["value"].as_f64())
        .collect();
    assert_eq!(values, vec![2.0], "only the max, never the old count");

    // Deleting the dashboard and creating another with the same id but a new
    // widget: nothing of the old one shows.
    engine.dashboards().delete("ops").unwrap();
    engine.tick(t(200));
    assert_eq!(
        snapshot_widgets_after_delete(&engine),
        Vec::<uuid::Uuid>::new()
    );
    let c = widget("ops", "other", Aggregation::Sum, 60, 1.0, 0);
    let ic = c.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![c]))
        .unwrap();
    engine.tick(t(300));
    assert_eq!(snapshot_widgets(&engine, "ops"), vec![ic]);
}

/// What the hub still caches for the deleted dashboard "ops".
fn snapshot_widgets_after_delete(engine: &Engine) -> Vec<uuid::Uuid> {
    let topic = engine.topic("ops");
    let frames: Vec<serde_json::Value> = engine
        .hub()
        .snapshot(&topic)
        .messages
        .iter()
        .map(|m| serde_json::from_str(m.msg.as_str()).unwrap())
        .collect();
    widget_ids(&frames)
}
