//! Checkpoint → JSON → restore gives identical answers; malformed checkpoints are rejected
//! with a clear error.

use std::time::Duration;

use rtdash_core::{Aggregation, Percentile, TagFilter, Timestamp};
use rtdash_window::{Checkpoint, WindowConfig, WindowError, WindowStore};
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000_000;

fn filled() -> WindowStore {
    let cfg = WindowConfig::default().with_late_buffer_capacity(4);
    let mut s = WindowStore::new(cfg).unwrap();
    let a = s.series_id("lat", [("region", "eu")]).unwrap();
    let b = s.series_id("lat", [("region", "us")]).unwrap();
    // Two hours at 1 event / 700 ms, some out of order, so buckets have rolled up and
    // expired, and prefixes have been rebased.
    for i in 0..10_000i64 {
        let t = T0 + i * 700 - (i % 7) * 3_000;
        let v = 0.1 + (i % 101) as f64 * 1.37;
        s.record(if i % 3 == 0 { a } else { b }, Timestamp::from_millis(t), v)
            .unwrap();
    }
    s.record(a, Timestamp::from_millis(T0), 5.0).unwrap(); // late
    s
}

fn answers(s: &WindowStore) -> Vec<String> {
    let now = Timestamp::from_millis(T0 + 10_000 * 700);
    let mut out = vec![format!("{:?}", s.stats())];
    for secs in [1, 10, 60, 299, 300, 301, 1800, 3600] {
        for agg in [
            Aggregation::Count,
            Aggregation::Sum,
            Aggregation::Avg,
            Aggregation::Min,
            Aggregation::Max,
            Aggregation::Percentile(Percentile::P50),
            Aggregation::Percentile(Percentile::P999),
        ] {
            let w = Duration::from_secs(secs);
            let r = s.query("lat", &TagFilter::new(), agg, w, now).unwrap();
            out.push(format!("{r:?} bits={:?}", r.value.map(f64::to_bits)));
            let g = s
                .group_by("lat", &TagFilter::new(), "region", agg, w, now)
                .unwrap();
            out.push(format!("{g:?}"));
        }
    }
    out
}

fn to_json(s: &WindowStore) -> Value {
    serde_json::to_value(s.checkpoint(json!({"stream": "events", "id": "1700-0"}))).unwrap()
}

fn restore(v: Value) -> Result<(WindowStore, Value), WindowError> {
    let cp: Checkpoint<Value> =
        serde_json::from_value(v).map_err(|e| WindowError::InvalidCheckpoint {
            reason: e.to_string(),
        })?;
    WindowStore::restore(cp)
}

#[test]
fn round_trip_gives_identical_answers_and_evolution() {
    let mut original = filled();
    let text = serde_json::to_string(&to_json(&original)).unwrap();
    let (mut back, offset) = restore(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(offset, json!({"stream": "events", "id": "1700-0"}));
    assert_eq!(answers(&back), answers(&original));
    assert_eq!(
        back.drain_late().collect::<Vec<_>>(),
        original.drain_late().collect::<Vec<_>>()
    );
    // Same further input, same state.
    let id = original.find_series("lat", [("region", "eu")]).unwrap();
    assert_eq!(back.find_series("lat", [("region", "eu")]), Some(id));
    for i in 0..3000i64 {
        let t = Timestamp::from_millis(T0 + 7_000_000 + i * 333 - (i % 5) * 7_000);
        let v = (i % 13) as f64 / 3.0;
        assert_eq!(back.record(id, t, v), original.record(id, t, v));
    }
    assert_eq!(answers(&back), answers(&original));
    // The whole state is equal, not just the answers.
    assert!(
        to_json(&back) == to_json(&original),
        "checkpoints of the two stores differ"
    );
}

#[test]
fn empty_store_round_trips() {
    let s = WindowStore::new(WindowConfig::default().with_rollup(None)).unwrap();
    let (back, _) = restore(to_json(&s)).unwrap();
    assert_eq!(answers(&back), answers(&s));
}

fn reason(v: Value) -> String {
    match restore(v) {
        Err(WindowError::InvalidCheckpoint { reason }) => reason,
        Err(other) => panic!("expected InvalidCheckpoint, got {other}"),
        Ok(_) => panic!("a bad checkpoint was accepted"),
    }
}

/// The first non-null series with a roll-up bucket, as a JSON pointer.
fn first_series(v: &Value) -> String {
    let series = v["series"].as_array().unwrap();
    let i = series.iter().position(|s| !s.is_null()).unwrap();
    format!("/series/{i}")
}

#[test]
fn bad_checkpoints_are_rejected() {
    let good = to_json(&filled());
    let s = first_series(&good);
    let edit = |path: &str, value: Value| {
        let mut v = good.clone();
        *v.pointer_mut(path).unwrap_or_else(|| panic!("{path}")) = value;
        v
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!("garbage"), "invalid type"),
        (json!({}), "missing field"),
        (
            edit("/format", json!("rtdash-window/checkpoint/999")),
            "format",
        ),
        (edit("/config/bucket_width_ms", json!(0)), "bucket_width"),
        (edit("/config/retention_ms", json!(1234)), "retention"),
        (edit("/config/max_series", json!(1)), "max_series"),
        (edit("/late_dropped", json!(1_000_000)), "late_dropped"),
        (edit("/late/0/series", json!(99)), "late[0]"),
        (edit("/late/0/value", json!(f64::NAN.to_bits())), "late[0]"),
        (edit("/series", json!([])), "entries"),
        (edit("/max_event_time", Value::Null), "max_event_time"),
        (
            edit(&format!("{s}/last_event_time"), json!(T0 * 10)),
            "last_event_time",
        ),
        (edit(&format!("{s}/fine/head"), json!(7)), "fine.head"),
        (
            edit(&format!("{s}/fine/buckets/1/index"), json!(0)),
            "fine.buckets[1]",
        ),
        (
            edit(&format!("{s}/fine/buckets/1/count"), json!(0)),
            "fine.buckets[1]",
        ),
        (
            edit(
                &format!("{s}/fine/buckets/0/min"),
                json!(f64::NAN.to_bits()),
            ),
            "fine.buckets[0]",
        ),
        (
            edit(&format!("{s}/fine/buckets/0/bins"), json!([[0, 1]])),
            "fine.buckets[0]",
        ),
        (
            edit(&format!("{s}/fine/buckets/0/bins"), json!([])),
            "histogram holds 0 values",
        ),
        (edit(&format!("{s}/coarse"), Value::Null), "coarse"),
        (
            edit(&format!("{s}/coarse/head"), json!(i64::MAX / 2)),
            "coarse.head",
        ),
    ];
    let mut extra = good.clone();
    extra.pointer_mut(&s).unwrap()["unknown"] = json!(1);
    let mut cases = cases;
    cases.push((extra, "unknown field"));
    for (bad, expect) in cases {
        let r = reason(bad.clone());
        assert!(
            r.contains(expect),
            "expected `{expect}` in the error, got: {r}"
        );
    }
}

#[test]
fn bins_in_a_store_without_percentiles_are_rejected() {
    let mut s = WindowStore::new(WindowConfig::default().with_percentiles(false)).unwrap();
    let id = s.series_id("m", []).unwrap();
    s.record(id, Timestamp::from_millis(T0), 1.0).unwrap();
    let mut v = to_json(&s);
    v["series"][0]["fine"]["buckets"][0]["bins"] = json!([[300000, 1]]);
    assert!(reason(v).contains("no percentiles"));
}
