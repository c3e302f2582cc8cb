//! Engine checkpoints: checkpoint mid-stream, restore into a fresh engine, replay the rest
//! (with an overlap of events already counted, as a log replays from its stored offset)
//! and get exactly the answers of an engine that saw every event once.

mod common;

use std::time::Duration;

use common::{T0, dashboard, t, widget};
use proptest::prelude::*;
use rtdash::core::BorrowedBatch;
use rtdash::ingest::SourcePosition;
use rtdash::{
    Aggregation, Engine, EngineCheckpoint, EngineConfig, Error, EventId, IngestReport, MetricEvent,
    Percentile, Uuid, WindowConfig,
};

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), rtdash::MemoryStore::new()).unwrap()
}

/// Widgets over one metric: every aggregation, and a `group_by`.
fn widgets(engine: &Engine) -> Vec<Uuid> {
    let aggs = [
        Aggregation::Count,
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Percentile(Percentile::P99),
    ];
    let mut ws: Vec<_> = aggs
        .iter()
        .enumerate()
        .map(|(i, a)| widget("ops", "lat", *a, 60, 1.0, i as u32))
        .collect();
    let mut g = widget("ops", "lat", Aggregation::Sum, 300, 1.0, 6);
    g.group_by = Some("region".into());
    ws.push(g);
    // The same ids in every engine, so answers compare widget by widget.
    for (i, w) in ws.iter_mut().enumerate() {
        w.widget_id = Uuid::from_u128(i as u128 + 1);
    }
    let ids = ws.iter().map(|w| w.widget_id).collect();
    engine.dashboards().create(dashboard("ops", ws)).unwrap();
    ids
}

/// Event `i`: its own id, a region tag, a time that wanders back and forth (some events
/// arrive out of order, some later than the 30 s grace period).
fn event(i: usize, value: f64, back_ms: i64) -> MetricEvent {
    let at = T0 + (i as i64) * 250 - back_ms;
    MetricEvent::new("lat", value, rtdash::Timestamp::from_millis(at))
        .with_tag("region", ["eu", "us", "ap"][i % 3])
        .with_id(EventId::new(format!("e{i}")).unwrap())
}

/// Records `events` through the engine's recorder as one batch from source `log:0`, ending
/// at offset `end`.
fn record(engine: &Engine, events: &[MetricEvent], end: usize) -> IngestReport {
    let batch = BorrowedBatch::from_events(events.iter().cloned());
    let mut report = IngestReport::default();
    let offset = end.to_string();
    engine.recorder().record(
        &batch,
        Some(SourcePosition {
            source: "log:0",
            offset: &offset,
        }),
        &mut report,
    );
    report
}

/// Every widget's state (value, count, groups) at `now`, as JSON for a readable diff.
fn answers(engine: &Engine, ids: &[Uuid], now: rtdash::Timestamp) -> Vec<serde_json::Value> {
    ids.iter()
        .map(|id| {
            let mut s =
                serde_json::to_value(engine.widget_value_at("ops", *id, now).unwrap()).unwrap();
            // Evaluation time is the query's, equal by construction; keep it anyway.
            s["stale"] = serde_json::Value::Null;
            s
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn restore_then_replay_equals_seeing_every_event_once(
        values in prop::collection::vec((-1e6f64..1e6, prop_oneof![3 => Just(0i64), 1 => 0i64..5_000, 1 => 25_000i64..60_000]), 20..300),
        cut in 0.0f64..1.0,
        overlap in 0usize..40,
    ) {
        let events: Vec<MetricEvent> = values
            .iter()
            .enumerate()
            .map(|(i, (v, back))| event(i, *v, *back))
            .collect();
        let n = events.len();
        let k = ((n as f64) * cut) as usize;

        // The reference: every event once, in batches of 7.
        let reference = engine();
        let ids = widgets(&reference);
        for (c, chunk) in events.chunks(7).enumerate() {
            record(&reference, chunk, (c * 7 + chunk.len()).min(n));
        }

        // The first engine sees events up to k, then checkpoints.
        let first = engine();
        widgets(&first);
        for start in (0..k).step_by(7) {
            let end = (start + 7).min(k);
            record(&first, &events[start..end], end);
        }
        let bytes = first.checkpoint().to_json();

        // A fresh engine restores, and the log replays from a little before k.
        let second = engine();
        widgets(&second);
        let cp = EngineCheckpoint::from_json(&bytes).unwrap();
        if k > 0 {
            prop_assert_eq!(cp.positions().get("log:0").cloned(), Some(k.to_string()));
        }
        second.restore(cp).unwrap();
        let from = k.saturating_sub(overlap);
        let mut dups = 0;
        for start in (from..n).step_by(7) {
            let end = (start + 7).min(n);
            dups += record(&second, &events[start..end], end).duplicates;
        }
        prop_assert_eq!(dups, k - from, "the overlap is dropped by id, nothing else");

        for now in [t(n as i64 * 250), t(n as i64 * 250 + 20_000)] {
            prop_assert_eq!(answers(&second, &ids, now), answers(&reference, &ids, now));
        }
        let (a, b) = (second.window_stats(), reference.window_stats());
        prop_assert_eq!((a.accepted, a.late_dropped, a.late_buffered, a.series), (b.accepted, b.late_dropped, b.late_buffered, b.series));
        prop_assert_eq!(second.recorder().positions(), reference.recorder().positions());
        let (sa, sb) = (second.stats(), reference.stats());
        prop_assert_eq!((sa.accepted, sa.late), (sb.accepted, sb.late));
        prop_assert_eq!(sa.duplicates, (k - from) as u64);
    }
}

#[test]
fn a_bad_checkpoint_is_refused_and_changes_nothing() {
    let e = engine();
    let ids = widgets(&e);
    record(&e, &[event(0, 5.0, 0), event(1, 7.0, 0)], 2);
    let before = answers(&e, &ids, t(1000));

    for (bytes, expect) in [
        (&b""[..], "not a checkpoint document"),
        (b"[1,2]", "not a checkpoint document"),
        (b"{}", "missing field `format`"),
        (
            br#"{"format":"rtdash/engine-checkpoint/0"}"#,
            "format is `rtdash/engine-checkpoint/0`",
        ),
        (
            br#"{"format":"rtdash/engine-checkpoint/1","window":{}}"#,
            "missing field",
        ),
    ] {
        let err = EngineCheckpoint::from_json(bytes).unwrap_err();
        assert!(matches!(err, Error::InvalidCheckpoint { .. }), "{err:?}");
        assert!(
            err.to_string().contains(expect),
            "{err} should say {expect}"
        );
    }

    // A well-formed checkpoint whose window state is inconsistent.
    let mut doc: serde_json::Value = serde_json::from_slice(&e.checkpoint().to_json()).unwrap();
    doc["window"]["series"] = serde_json::json!([]);
    let cp = EngineCheckpoint::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = e.restore(cp).unwrap_err();
    assert!(err.to_string().contains("series"), "{err}");

    // A checkpoint of an engine with another window configuration.
    let mut config = EngineConfig::default();
    config.window = WindowConfig::default().with_grace(Duration::from_secs(10));
    let other = Engine::new(config, rtdash::MemoryStore::new()).unwrap();
    let err = e.restore(other.checkpoint()).unwrap_err();
    assert!(
        err.to_string().contains("window configuration differs"),
        "{err}"
    );

    assert_eq!(answers(&e, &ids, t(1000)), before, "nothing changed");
    assert_eq!(
        e.recorder().positions().get("log:0").map(String::as_str),
        Some("2")
    );
}
