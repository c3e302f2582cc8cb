//! The window store's answers depend only on each window's own events, and lateness is per
//! series: the regressions of issue #9, checked on the store directly.

use std::time::Duration;

use rtdash_core::{Aggregation, TagFilter, Timestamp};
use rtdash_window::{Checkpoint, Recorded, WindowConfig, WindowStore};

const NOW: i64 = 1_700_000_000_000;

fn t(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(NOW + offset_ms)
}

fn value(s: &WindowStore, agg: Aggregation, secs: u64, now: Timestamp) -> Option<f64> {
    s.query("m", &TagFilter::new(), agg, Duration::from_secs(secs), now)
        .unwrap()
        .value
}

/// One value of 2^53 (or 1e9) twenty seconds ago, then eight small values in the last 10 s.
#[test]
fn an_outlier_outside_the_window_does_not_change_its_sum() {
    for (outlier, small) in [(2f64.powi(53), 1.0), (1e9, 0.01)] {
        let mut s = WindowStore::new(WindowConfig::default()).unwrap();
        let id = s.series_id("m", []).unwrap();
        s.record(id, t(-20_000), outlier).unwrap();
        let mut want = 0.0;
        for i in 0..8 {
            s.record(id, t(-8_000 + i * 1000), small).unwrap();
            want += small;
        }
        assert_eq!(value(&s, Aggregation::Sum, 10, t(0)), Some(want));
        assert_eq!(value(&s, Aggregation::Avg, 10, t(0)), Some(want / 8.0));
        assert_eq!(value(&s, Aggregation::Count, 10, t(0)), Some(8.0));
        // The window that holds it sees it.
        assert_eq!(
            value(&s, Aggregation::Max, 60, t(0)),
            Some(outlier),
            "{outlier}"
        );
    }
}

/// Two values of 1.7e308 overflow their bucket's sum; windows without them stay right for as
/// long as the series lives.
#[test]
fn an_overflow_poisons_only_the_windows_that_hold_it() {
    let mut s = WindowStore::new(WindowConfig::default()).unwrap();
    let id = s.series_id("m", []).unwrap();
    s.record(id, t(-20_000), 1.7e308).unwrap();
    s.record(id, t(-20_000), 1.7e308).unwrap();
    for i in 0..8 {
        s.record(id, t(-8_000 + i * 1000), 1.0).unwrap();
    }
    assert_eq!(value(&s, Aggregation::Sum, 10, t(0)), Some(8.0));
    assert_eq!(value(&s, Aggregation::Avg, 10, t(0)), Some(1.0));
    assert_eq!(
        value(&s, Aggregation::Sum, 60, t(0)),
        Some(f64::INFINITY),
        "the window holding both overflows"
    );
    // 50 minutes later, one event a second: every 10 s window is exact.
    for sec in 1..=3000 {
        s.record(id, t(sec * 1000), 0.5).unwrap();
        if sec % 500 == 0 {
            let now = t(sec * 1000);
            assert_eq!(value(&s, Aggregation::Sum, 10, now), Some(5.0), "{sec}");
            assert_eq!(value(&s, Aggregation::Avg, 10, now), Some(0.5), "{sec}");
        }
    }
    // And so is a 1 h window once the overflow has left it (roll-up tier included): it
    // holds no event, and the empty sum is 0.
    assert_eq!(
        value(&s, Aggregation::Sum, 3600, t(3_000_000 + 3_700_000)),
        Some(0.0)
    );
    let hour = s
        .query(
            "m",
            &TagFilter::new(),
            Aggregation::Sum,
            Duration::from_secs(2900),
            t(3_000_000),
        )
        .unwrap();
    assert_eq!(hour.value, Some(0.5 * hour.count as f64), "{hour:?}");
}

/// A producer whose clock is 4 minutes fast moves only its own series' watermark.
#[test]
fn a_fast_clock_makes_only_its_own_series_late() {
    let mut s = WindowStore::new(WindowConfig::default()).unwrap();
    let fast = s.series_id("m", [("host", "fast")]).unwrap();
    let ok = s.series_id("m", [("host", "ok")]).unwrap();
    assert_eq!(s.record(fast, t(240_000), 1.0), Ok(Recorded::Accepted));
    for i in 0..10 {
        assert_eq!(
            s.record(ok, t(-5_000 + i * 500), 2.0),
            Ok(Recorded::Accepted)
        );
    }
    // The fast series' own old events are late for it.
    assert_eq!(s.record(fast, t(0), 1.0), Ok(Recorded::LateBuffered));
    assert_eq!(s.stats().late_total, 1);
    assert_eq!(s.watermark(ok), Some(t(-500 - 30_000)));
    assert_eq!(s.watermark(fast), Some(t(240_000 - 30_000)));
    let filter = TagFilter::new().with("host", "ok");
    let r = s
        .query(
            "m",
            &filter,
            Aggregation::Count,
            Duration::from_secs(10),
            t(0),
        )
        .unwrap();
    assert_eq!(r.value, Some(10.0));
    // A window at now covers 10 whole buckets even with the fast series in the query.
    let all = s
        .query(
            "m",
            &TagFilter::new(),
            Aggregation::Sum,
            Duration::from_secs(10),
            t(0),
        )
        .unwrap();
    assert_eq!(all.value, Some(20.0));
    assert_eq!(
        all.window_end.as_millis() - all.window_start.as_millis(),
        10_000
    );
}

/// After a restore the watermarks come back with the state: an event that was late before is
/// late after.
#[test]
fn watermarks_survive_a_checkpoint() {
    let mut s = WindowStore::new(WindowConfig::default()).unwrap();
    let a = s.series_id("m", [("host", "a")]).unwrap();
    let b = s.series_id("m", [("host", "b")]).unwrap();
    s.record(a, t(0), 1.0).unwrap();
    s.record(b, t(-120_000), 1.0).unwrap();
    let json = serde_json::to_string(&s.checkpoint(7u64)).unwrap();
    let cp: Checkpoint<u64> = serde_json::from_str(&json).unwrap();
    let (mut back, _) = WindowStore::restore(cp).unwrap();
    assert_eq!(back.watermark(a), s.watermark(a));
    assert_eq!(back.watermark(b), s.watermark(b));
    assert_eq!(back.record(a, t(-31_000), 1.0), Ok(Recorded::LateBuffered));
    assert_eq!(back.record(b, t(-140_000), 1.0), Ok(Recorded::Accepted));
}
