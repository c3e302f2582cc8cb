//! Stale marking: a value whose series had no data for longer than twice its refresh
//! interval (or than the widget's own `stale_after_seconds`), that never had data, or whose
//! source is unhealthy is sent marked stale.

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
    assert!(engine.widget_value_at("ops", id, t(3000)).unwrap().stale);

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
    assert!(engine.widget_value_at("ops", ia, t(3000)).unwrap().stale);

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

#[cfg(feature = "http")]
mod per_widget {
    use super::common::{Http, next_frame, widget_json};
    use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp, Uuid};
    use serde_json::{Value, json};

    async fn start() -> (Http, Engine) {
        let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
        (Http::start(engine.clone()).await, engine)
    }

    /// Widget `patient` (`stale_after_seconds: 5`) and widget `strict` (the default rule: 2 ×
    /// the 1 s refresh), both counting metric `beat` over 60 s.
    async fn two_widgets(http: &Http) -> (Uuid, Uuid) {
        let (patient, strict) = (Uuid::new_v4(), Uuid::new_v4());
        http.create_dashboard(
            "ops",
            vec![
                widget_json(
                    "ops",
                    patient,
                    "beat",
                    "count",
                    60,
                    1.0,
                    0,
                    json!({"stale_after_seconds": 5}),
                ),
                widget_json("ops", strict, "beat", "count", 60, 1.0, 1, json!({})),
            ],
        )
        .await;
        (patient, strict)
    }

    fn beat(at: i64) -> Value {
        json!([{"metric_name": "beat", "value": 1, "event_time": at}])
    }

    /// A metric sent every 2 s, arriving ~100 ms after its event time, on widgets refreshed
    /// every second: just before each event arrives the newest is 2.1 s old, so the widget
    /// on the default rule flickers stale; the one with `stale_after_seconds: 5` never does.
    #[tokio::test]
    async fn a_widget_stale_limit_stops_the_flicker_of_a_slower_metric() {
        let (http, engine) = start().await;
        let (patient, strict) = two_widgets(&http).await;
        let mut ws = http.ws("ops").await;

        // Scheduler time is stepped by hand, 30 s behind the wall clock.
        let base = Timestamp::now().as_millis() - 30_000;
        assert_eq!(http.ingest(&beat(base)).await["accepted"], 1);
        let mut seen: Vec<(Uuid, bool)> = Vec::new();
        for s in 1..=12 {
            let report = engine.tick(Timestamp::from_millis(base + s * 1000 + 100));
            for _ in 0..report.frames_published {
                let frame = next_frame(&mut ws).await;
                assert_eq!(frame["type"], "update", "{frame}");
                for it in frame["items"].as_array().unwrap() {
                    let id: Uuid = it["widget"].as_str().unwrap().parse().unwrap();
                    seen.push((id, it["stale"].as_bool().unwrap()));
                }
            }
            if s % 2 == 0 {
                assert_eq!(http.ingest(&beat(base + s * 1000)).await["accepted"], 1);
            }
        }
        let flags = |w: Uuid| -> Vec<bool> {
            seen.iter()
                .filter(|(id, _)| *id == w)
                .map(|&(_, s)| s)
                .collect()
        };
        let patient = flags(patient);
        assert!(!patient.is_empty(), "{seen:?}");
        assert!(
            patient.iter().all(|&s| !s),
            "patient went stale: {patient:?}"
        );
        let strict = flags(strict);
        assert_eq!(
            strict.iter().filter(|&&s| s).count(),
            6,
            "stale at 2.1 s, 4.1 s, …, 12.1 s: {strict:?}"
        );
        assert_eq!(
            strict.iter().filter(|&&s| !s).count(),
            6,
            "fresh again after each event: {strict:?}"
        );
        engine.close_sessions().await;
    }

    /// The snapshot endpoint applies the same rule: 3 s without data is stale by default
    /// (2 × 1 s), not with `stale_after_seconds: 5`.
    #[tokio::test]
    async fn the_snapshot_endpoint_uses_the_widget_stale_limit() {
        let (http, _engine) = start().await;
        let (patient, strict) = two_widgets(&http).await;
        let three_s_ago = Timestamp::now().as_millis() - 3_000;
        assert_eq!(http.ingest(&beat(three_s_ago)).await["accepted"], 1);
        let p = http.snapshot("ops", patient).await;
        assert_eq!(
            (&p["value"], &p["stale"]),
            (&json!(1.0), &json!(false)),
            "{p}"
        );
        let s = http.snapshot("ops", strict).await;
        assert_eq!(
            (&s["value"], &s["stale"]),
            (&json!(1.0), &json!(true)),
            "{s}"
        );
    }

    /// The field round-trips through the API (omitted when unset) and bad values are refused
    /// with a `422` naming `widgets[i].stale_after_seconds`.
    #[tokio::test]
    async fn stale_after_seconds_is_kept_and_validated() {
        let (http, _engine) = start().await;
        two_widgets(&http).await;
        let (_, doc) = http.get("/dashboards/ops").await;
        assert_eq!(doc["widgets"][0]["stale_after_seconds"], 5.0, "{doc}");
        assert!(
            doc["widgets"][1].get("stale_after_seconds").is_none(),
            "{doc}"
        );

        for bad in [json!(0), json!(-2.5), json!(1e9), json!("5")] {
            let w = widget_json(
                "bad",
                Uuid::new_v4(),
                "beat",
                "count",
                60,
                1.0,
                0,
                json!({"stale_after_seconds": bad}),
            );
            let body = json!({"id": "bad", "name": "Bad", "widgets": [w]});
            let (status, err) = http.post("/dashboards", &body).await;
            assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{err}");
            if bad.is_number() {
                assert_eq!(
                    err["error"]["violations"][0]["path"], "widgets[0].stale_after_seconds",
                    "{err}"
                );
            } else {
                let msg = err["error"]["message"].as_str().unwrap();
                assert!(msg.contains("expected f64"), "{msg}");
            }
        }
    }
}
