//! Ingest through the engine: per-element verdicts, late events, replays, limits.

mod common;

use std::time::Duration;

use common::{T0, batch, t};
use rtdash::{
    Engine, EngineConfig, Error, IngestOutcome, MemoryStore, MetricEvent, MetricsSink, WindowConfig,
};

fn engine() -> Engine {
    Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        MemoryStore::new(),
    )
    .unwrap()
}

#[test]
fn bad_elements_are_reported_by_index_and_do_not_spoil_the_batch() {
    let engine = engine();
    let body = format!(
        r#"[{{"metric_name":"a","value":1,"event_time":{T0}}},
            {{"metric_name":"a","value":1e999,"event_time":{T0}}},
            {{"metric_name":"a","value":"NaN","event_time":{T0}}},
            {{"metric_name":"","value":1,"event_time":{T0}}},
            {{"metric_name":"a","value":2,"event_time":{T0}}},
            7]"#
    );
    let r = engine.ingest_json_at(body.as_bytes(), t(0)).unwrap();
    assert_eq!((r.accepted, r.rejected, r.late, r.duplicates), (2, 4, 0, 0));
    let idx: Vec<_> = r.errors.iter().map(|e| e.index).collect();
    assert_eq!(idx, [1, 2, 3, 5]);
    assert_eq!(r.errors[0].field, "value");
    assert!(
        r.errors[0].message.contains("1e999"),
        "{}",
        r.errors[0].message
    );
    assert_eq!(r.errors[1].field, "value");
    assert_eq!(r.errors[2].field, "metric_name");
    assert_eq!(engine.stats().accepted, 2);
    assert_eq!(engine.stats().rejected, 4);
}

#[test]
fn malformed_and_oversized_bodies_are_errors() {
    let engine = Engine::new(
        EngineConfig::default().with_max_body_bytes(64),
        MemoryStore::new(),
    )
    .unwrap();
    assert!(matches!(
        engine.ingest_json_at(b"[{\"metric_name\":", t(0)),
        Err(Error::MalformedJson { .. })
    ));
    assert!(matches!(
        engine.ingest_json_at(b"", t(0)),
        Err(Error::MalformedJson { .. })
    ));
    assert!(matches!(
        engine.ingest_json_at(b"\"hello\"", t(0)),
        Err(Error::WrongShape { .. })
    ));
    let big = vec![b' '; 65];
    assert!(matches!(
        engine.ingest_json_at(&big, t(0)),
        Err(Error::PayloadTooLarge {
            size: 65,
            limit: 64
        })
    ));
}

#[test]
fn late_events_go_to_the_side_channel_and_are_counted() {
    let engine = Engine::new(
        EngineConfig::default().with_window(
            WindowConfig::default()
                .with_grace(Duration::from_secs(5))
                .with_late_buffer_capacity(1),
        ),
        MemoryStore::new(),
    )
    .unwrap();
    engine
        .ingest_json_at(&batch(&[("a", 1.0, 60_000)]), t(60_000))
        .unwrap();
    let r = engine
        .ingest_json_at(&batch(&[("a", 2.0, 0), ("a", 3.0, 1)]), t(60_000))
        .unwrap();
    assert_eq!((r.accepted, r.late), (0, 2));
    let one = MetricEvent::new("a", 4.0, t(2));
    assert_eq!(
        engine.ingest_at(one, t(60_000)).unwrap(),
        IngestOutcome::LateDropped
    );
    // Lateness is per series: another series of the same metric has its own watermark.
    let other = MetricEvent::new("a", 5.0, t(2)).with_tag("k", "v");
    assert_eq!(
        engine.ingest_at(other, t(60_000)).unwrap(),
        IngestOutcome::Accepted
    );
    let late = engine.drain_late();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].metric_name, "a");
    assert_eq!(late[0].value, 2.0);
    assert_eq!(engine.stats().late, 3);
    assert_eq!(engine.window_stats().late_dropped, 2);
}

#[test]
fn replayed_events_are_not_counted_twice() {
    let engine = engine();
    let body = format!(
        r#"[{{"metric_name":"a","value":1,"event_time":{T0},"id":"p:1"}},
            {{"metric_name":"a","value":1,"event_time":{T0},"id":"p:1"}},
            {{"metric_name":"a","value":1,"event_time":{T0},"id":"p:2"}}]"#
    );
    let r = engine.ingest_json_at(body.as_bytes(), t(0)).unwrap();
    assert_eq!((r.accepted, r.duplicates), (2, 1));
    let r = engine.ingest_json_at(body.as_bytes(), t(0)).unwrap();
    assert_eq!((r.accepted, r.duplicates), (0, 3));
}

#[test]
fn single_events_are_validated() {
    let engine = engine();
    let e = engine
        .ingest_at(MetricEvent::new("a", f64::NAN, t(0)), t(0))
        .unwrap_err();
    assert_eq!(e.to_string(), "value: NaN is not a finite number");
    let future = MetricEvent::new("a", 1.0, t(3_600_000));
    let e = engine.ingest_at(future, t(0)).unwrap_err();
    assert!(matches!(e, Error::InvalidEvent { ref field, .. } if field == "event_time"));
    assert!(e.to_string().contains("max_future_skew"), "{e}");
    // Both refusals are counted, by reason.
    let text = engine.render_metrics().unwrap();
    for needle in [
        "rtdash_ingest_rejected_total 2",
        "rtdash_events_rejected_total{reason=\"value\"} 1",
        "rtdash_events_rejected_total{reason=\"future\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert_eq!(
        engine
            .ingest_at(MetricEvent::new("a", 1.0, t(0)), t(0))
            .unwrap(),
        IngestOutcome::Accepted
    );
}

#[test]
fn metrics_are_rendered_for_prometheus() {
    let engine = engine();
    engine
        .ingest_json_at(
            br#"[{"metric_name":"a","value":1,"event_time":1700000000000}, 3]"#,
            t(0),
        )
        .unwrap();
    let text = engine.render_metrics().unwrap();
    for needle in [
        "rtdash_ingest_events_total 1",
        "rtdash_ingest_rejected_total 1",
        "rtdash_ingest_late_total 0",
        "rtdash_active_connections 0",
        "rtdash_fanout_conflated_total 0",
        "rtdash_fanout_dropped_total 0",
        "rtdash_fanout_evicted_total 0",
        "# TYPE rtdash_aggregation_seconds histogram",
        "# TYPE rtdash_push_latency_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // Two isolated engines do not share metrics.
    let other = self::engine();
    assert!(
        other
            .render_metrics()
            .unwrap()
            .contains("rtdash_ingest_events_total 0")
    );
    // By default they go to the host's recorder: nothing to render here.
    let hosted = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    assert_eq!(hosted.render_metrics(), None);
}
