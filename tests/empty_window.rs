//! The one empty-window rule, for every aggregation: over a window with no event, count and
//! sum are 0 (defined over no values), avg, min, max and percentiles are `null`; the item's
//! `count` is 0 either way, and the value is stale as before (by the age of the data).

mod common;

use common::{T0, batch, drain, item, t, updates};
use rtdash::{
    Aggregation, ChartType, DashboardDoc, Engine, EngineConfig, MemoryStore, Percentile, Uuid,
    Widget,
};
use serde_json::{Value, json};

/// Every kind of aggregation, with what it gives over an empty window.
fn aggregations() -> Vec<(Aggregation, Value)> {
    vec![
        (Aggregation::Count, json!(0.0)),
        (Aggregation::Sum, json!(0.0)),
        (Aggregation::Avg, Value::Null),
        (Aggregation::Min, Value::Null),
        (Aggregation::Max, Value::Null),
        (Aggregation::P50, Value::Null),
        (Aggregation::P999, Value::Null),
        (
            Aggregation::Percentile(Percentile::new(12.5).unwrap()),
            Value::Null,
        ),
    ]
}

/// Widget ids with the value each must show over an empty window.
type Expected = Vec<(Uuid, Value)>;

/// A dashboard with one 10 s widget per aggregation on `metric`, and one grouped by
/// `region` per aggregation; returns the engine, the plain and the grouped widgets.
fn setup(metric: &str) -> (Engine, Expected, Expected) {
    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let mut doc = DashboardDoc::new("ops", "Operations").unwrap();
    let (mut plain, mut grouped) = (Vec::new(), Vec::new());
    for (agg, want) in aggregations() {
        let w = Widget::new(format!("{agg}"), metric, agg, 10);
        plain.push((w.widget_id, want.clone()));
        doc = doc.with_widget(w);
        let g = Widget::new(format!("{agg} by region"), metric, agg, 10)
            .with_group_by("region")
            .with_chart(ChartType::Table);
        grouped.push((g.widget_id, want));
        doc = doc.with_widget(g);
    }
    engine.dashboards().create(doc).unwrap();
    (engine, plain, grouped)
}

#[test]
fn a_metric_without_events_gives_zero_for_count_and_sum_and_null_otherwise() {
    let (engine, plain, grouped) = setup("never.sent");
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    engine.tick(t(0));
    let frames = drain(&sub);
    let frame = updates(&frames)[0];
    for (id, want) in &plain {
        let it = item(frame, *id).unwrap();
        assert_eq!(&it["value"], want, "{it}");
        assert_eq!(it["count"], 0, "{it}");
        // Never any data: stale, whatever the value.
        assert_eq!(it["stale"], true, "{it}");
        // The value computed from the store (HTTP snapshot route) says the same.
        let now = engine.widget_value_at("ops", *id, t(0)).unwrap();
        let json = serde_json::to_value(&now).unwrap();
        assert_eq!(
            (&json["value"], &json["count"]),
            (want, &json!(0)),
            "{json}"
        );
    }
    // No series at all: a grouped widget has no group, and no value of its own.
    for (id, _) in &grouped {
        let it = item(frame, *id).unwrap();
        assert_eq!(it["value"], Value::Null, "{it}");
        assert_eq!(it["groups"], json!([]), "{it}");
        assert_eq!(
            (it["count"].clone(), it["stale"].clone()),
            (json!(0), json!(true))
        );
    }
}

#[test]
fn a_window_whose_events_have_left_follows_the_same_rule_per_group() {
    let (engine, plain, grouped) = setup("req");
    let body = serde_json::to_vec(&json!([
        {"metric_name": "req", "value": 4.0, "tags": {"region": "eu"}, "event_time": T0},
        {"metric_name": "req", "value": 6.0, "tags": {"region": "us"}, "event_time": T0},
    ]))
    .unwrap();
    assert_eq!(engine.ingest_json_at(&body, t(0)).unwrap().accepted, 2);
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);

    // While the events are in the window: values, not stale.
    engine.tick(t(100));
    let frames = drain(&sub);
    let it = item(updates(&frames)[0], plain[1].0).unwrap();
    assert_eq!(
        (it["value"].clone(), it["stale"].clone()),
        (json!(10.0), json!(false))
    );

    // 60 s later the 10 s windows are empty; the data is old, so every value is stale.
    engine.tick(t(60_000));
    let frames = drain(&sub);
    let frame = updates(&frames)[0];
    for (id, want) in &plain {
        let it = item(frame, *id).unwrap();
        assert_eq!(&it["value"], want, "{it}");
        assert_eq!(
            (it["count"].clone(), it["stale"].clone()),
            (json!(0), json!(true))
        );
        assert_eq!(it["event_time"], T0, "{it}");
    }
    for (id, want) in &grouped {
        let it = item(frame, *id).unwrap();
        assert_eq!(
            it["value"],
            Value::Null,
            "the groups carry the values: {it}"
        );
        assert_eq!(
            (it["count"].clone(), it["stale"].clone()),
            (json!(0), json!(true))
        );
        let groups = it["groups"].as_array().unwrap();
        let names: Vec<&str> = groups
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["eu", "us"], "{it}");
        for g in groups {
            assert_eq!(&g["value"], want, "{g}");
            assert_eq!(
                (g["count"].clone(), g["stale"].clone()),
                (json!(0), json!(true))
            );
        }
    }

    // Fresh data clears the stale mark as before.
    engine
        .ingest_json_at(&batch(&[("req", 1.0, 60_500)]), t(60_500))
        .unwrap();
    engine.tick(t(61_000));
    let frames = drain(&sub);
    let it = item(updates(&frames)[0], plain[1].0).unwrap();
    assert_eq!(
        (it["value"].clone(), it["stale"].clone()),
        (json!(1.0), json!(false))
    );
}
