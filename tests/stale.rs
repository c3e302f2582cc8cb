//! Stale marking: a value whose series had no data for longer than twice its refresh
//! interval, that never had data, or whose source is unhealthy is sent marked stale.

mod common;

use common::{batch, dashboard, drain, item, t, updates, widget};
use rtdash::{Aggregation, Engine, EngineConfig, MemoryStore};

#[test]
fn no_data_for_two_intervals_marks_stale_and_fresh_data_clears_it() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let id = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);

    engine
        .ingest_json_at(&batch(&[("req", 1.0, 0)]), t(0))
        .unwrap();
    engine.tick(t(0));
    let f = drain(&sub);
    assert_eq!(item(updates(&f)[0], id).unwrap()["stale"], false);

    // 2 s without data is not yet "longer than twice the interval".
    engine.tick(t(1000));
    engine.tick(t(2000));
    assert!(drain(&sub).is_empty(), "unchanged and fresh: nothing sent");

    // 3 s: stale, sent although the value did not change.
    engine.tick(t(3000));
    let f = drain(&sub);
    let it = item(updates(&f)[0], id).unwrap();
    assert_eq!(it["stale"], true);
    assert_eq!(it["value"], 1.0);
    assert!(engine.widget_snapshot_at("ops", id, t(3000)).unwrap().stale);

    engine
        .ingest_json_at(&batch(&[("req", 1.0, 3500)]), t(3500))
        .unwrap();
    engine.tick(t(4000));
    let f = drain(&sub);
    let it = item(updates(&f)[0], id).unwrap();
    assert_eq!(it["stale"], false);
    assert_eq!(it["value"], 2.0);
}

#[test]
fn a_widget_that_never_had_data_is_stale() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let w = widget("ops", "nothing", Aggregation::Avg, 60, 1.0, 0);
    let id = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    engine.tick(t(0));
    let f = drain(&sub);
    let it = item(updates(&f)[0], id).unwrap();
    assert_eq!(it["stale"], true);
    assert!(it["value"].is_null());
}

#[test]
fn an_unhealthy_source_marks_fresh_values_stale() {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let a = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let b = widget("ops", "other", Aggregation::Count, 60, 1.0, 1);
    let (ia, ib) = (a.widget_id, b.widget_id);
    engine
        .dashboards()
        .create(dashboard("ops", vec![a, b]))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    for s in 0..3 {
        engine
            .ingest_json_at(
                &batch(&[("req", 1.0, s * 1000), ("other", 1.0, s * 1000)]),
                t(s * 1000),
            )
            .unwrap();
    }
    engine.tick(t(2000));
    drain(&sub);

    engine.set_source_health("req", false);
    engine.tick(t(3000));
    let f = drain(&sub);
    let up = updates(&f)[0];
    assert_eq!(item(up, ia).unwrap()["stale"], true);
    // `other` is healthy and unchanged: not in the frame.
    assert!(item(up, ib).is_none());
    assert!(engine.widget_snapshot_at("ops", ia, t(3000)).unwrap().stale);

    engine.set_source_health("req", true);
    engine.set_all_sources_health(false);
    engine.tick(t(4000));
    let f = drain(&sub);
    let up = updates(&f)[0];
    assert_eq!(item(up, ib).unwrap()["stale"], true);

    engine.set_all_sources_health(true);
    engine
        .ingest_json_at(&batch(&[("req", 1.0, 4500), ("other", 1.0, 4500)]), t(4500))
        .unwrap();
    engine.tick(t(5000));
    let f = drain(&sub);
    let up = updates(&f)[0];
    assert_eq!(item(up, ia).unwrap()["stale"], false);
    assert_eq!(item(up, ib).unwrap()["stale"], false);
}
