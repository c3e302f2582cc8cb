//! Bad input to `record`, `record_event`, `series_id` and queries: a clear error, nothing
//! stored, nothing counted.

use std::time::Duration;

use rtdash_core::{Aggregation, MetricEvent, SeriesId, TagFilter, Timestamp};
use rtdash_window::{MAX_ABS_EVENT_TIME_MS, Recorded, WindowConfig, WindowError, WindowStore};

fn store() -> (WindowStore, SeriesId) {
    let mut s = WindowStore::new(WindowConfig::default().with_max_series(2)).unwrap();
    let id = s.series_id("cpu", [("host", "a")]).unwrap();
    (s, id)
}

fn count(s: &WindowStore, id: SeriesId, now: i64) -> u64 {
    s.query_series(
        id,
        Aggregation::Count,
        Duration::from_secs(60),
        Timestamp::from_millis(now),
    )
    .unwrap()
    .count
}

#[test]
fn non_finite_values_are_rejected_and_not_stored() {
    let (mut s, id) = store();
    let t = Timestamp::from_millis(1_000);
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = s.record(id, t, v).unwrap_err();
        assert!(matches!(err, WindowError::NonFiniteValue { .. }), "{err}");
        assert!(err.to_string().contains("not a finite number"));
    }
    assert_eq!(count(&s, id, 1_000), 0);
    assert_eq!(s.stats().accepted, 0);
    assert_eq!(
        s.stats().max_event_time,
        None,
        "a rejected event moves no watermark"
    );

    // Through record_event, the series is not even added.
    let ev = MetricEvent::new("mem", f64::NAN, t);
    assert!(matches!(
        s.record_event(&ev),
        Err(WindowError::NonFiniteValue { .. })
    ));
    assert_eq!(s.find_series("mem", []), None);
}

#[test]
fn unknown_series_ids_are_rejected() {
    let (mut s, _) = store();
    let foreign = {
        let mut other = WindowStore::new(WindowConfig::default()).unwrap();
        for i in 0..5 {
            other
                .series_id("x", [("i", i.to_string().as_str())])
                .unwrap();
        }
        other.series_id("x", [("i", "last")]).unwrap()
    };
    let t = Timestamp::from_millis(0);
    assert_eq!(
        s.record(foreign, t, 1.0),
        Err(WindowError::UnknownSeries { id: foreign })
    );
    let w = Duration::from_secs(1);
    assert_eq!(
        s.query_series(foreign, Aggregation::Sum, w, t),
        Err(WindowError::UnknownSeries { id: foreign })
    );
    assert_eq!(s.stats().accepted, 0);
}

#[test]
fn timestamps_out_of_range_are_rejected() {
    let (mut s, id) = store();
    for ms in [
        i64::MIN,
        i64::MAX,
        MAX_ABS_EVENT_TIME_MS + 1,
        -MAX_ABS_EVENT_TIME_MS - 1,
    ] {
        assert_eq!(
            s.record(id, Timestamp::from_millis(ms), 1.0),
            Err(WindowError::TimestampOutOfRange { ms })
        );
    }
    // The extremes themselves are fine, and a query far away neither panics nor errs.
    let hi = Timestamp::from_millis(MAX_ABS_EVENT_TIME_MS);
    assert_eq!(s.record(id, hi, 1.0), Ok(Recorded::Accepted));
    let far = Timestamp::from_millis(i64::MIN);
    let r = s
        .query_series(id, Aggregation::Max, Duration::from_secs(60), far)
        .unwrap();
    assert_eq!(r.value, None);
    let r = s
        .query_series(
            id,
            Aggregation::Max,
            Duration::from_secs(60),
            Timestamp::MAX,
        )
        .unwrap();
    assert_eq!(r.value, Some(1.0));
}

#[test]
fn series_limit_and_bad_keys() {
    let (mut s, _) = store();
    s.series_id("cpu", [("host", "b")]).unwrap();
    let err = s.series_id("cpu", [("host", "c")]).unwrap_err();
    assert!(
        matches!(err, WindowError::TooManySeries { limit: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_series"));
    // Known series still work at the limit.
    assert!(s.series_id("cpu", [("host", "a")]).is_ok());
    let ev = MetricEvent::new("cpu", 1.0, Timestamp::from_millis(0)).with_tag("host", "z");
    assert!(matches!(
        s.record_event(&ev),
        Err(WindowError::TooManySeries { .. })
    ));

    let (mut s, _) = store();
    for bad in [s.series_id("", []), s.series_id("cpu", [("", "x")])] {
        assert!(
            matches!(bad, Err(WindowError::InvalidSeries { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        s.series_id("cpu", [("k", "1"), ("k", "2")]),
        Err(WindowError::InvalidSeries { .. })
    ));
}

#[test]
fn bad_query_windows() {
    let (s, id) = store();
    let t = Timestamp::from_millis(0);
    let all = TagFilter::new();
    assert_eq!(
        s.query("cpu", &all, Aggregation::Sum, Duration::ZERO, t),
        Err(WindowError::EmptyWindow)
    );
    let err = s
        .query_series(id, Aggregation::Sum, Duration::from_secs(3601), t)
        .unwrap_err();
    assert!(
        matches!(
            err,
            WindowError::WindowTooLong {
                window_ms: 3_601_000,
                retention_ms: 3_600_000
            }
        ),
        "{err}"
    );
    // A sub-millisecond window rounds up to one bucket.
    let (start, end) = s.window_span(Duration::from_nanos(1), t).unwrap();
    assert_eq!((start.as_millis(), end.as_millis()), (0, 1000));
    // Unknown metric: no series, no data.
    let r = s
        .query("nope", &all, Aggregation::Avg, Duration::from_secs(1), t)
        .unwrap();
    assert_eq!((r.value, r.count, r.series), (None, 0, 0));
    // Count and sum are defined over no events (0), the others are not (None).
    for agg in [Aggregation::Count, Aggregation::Sum] {
        let r = s
            .query("nope", &all, agg, Duration::from_secs(1), t)
            .unwrap();
        assert_eq!((r.value, r.count), (Some(0.0), 0), "{agg}");
    }
    for agg in [Aggregation::Min, Aggregation::Max, Aggregation::P99] {
        let r = s
            .query("nope", &all, agg, Duration::from_secs(1), t)
            .unwrap();
        assert_eq!((r.value, r.count), (None, 0), "{agg}");
    }
}

#[test]
fn late_events_overflowing_the_buffer_are_counted() {
    let cfg = WindowConfig::default()
        .with_late_buffer_capacity(2)
        .with_grace(Duration::from_secs(5));
    let mut s = WindowStore::new(cfg).unwrap();
    let id = s.series_id("cpu", []).unwrap();
    let t = |ms| Timestamp::from_millis(ms);
    assert_eq!(s.record(id, t(100_000), 1.0), Ok(Recorded::Accepted));
    // Exactly at the watermark: accepted; one ms before: late.
    assert_eq!(s.record(id, t(95_000), 2.0), Ok(Recorded::Accepted));
    assert_eq!(s.record(id, t(94_999), 3.0), Ok(Recorded::LateBuffered));
    assert_eq!(s.record(id, t(0), 4.0), Ok(Recorded::LateBuffered));
    assert_eq!(s.record(id, t(-5), 5.0), Ok(Recorded::LateDropped));
    let stats = s.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.late_total,
            stats.late_dropped,
            stats.late_buffered
        ),
        (2, 3, 1, 2)
    );
    assert_eq!(s.watermark(id), Some(t(95_000)));
    let late: Vec<_> = s.drain_late().map(|e| (e.event_time, e.value)).collect();
    assert_eq!(late, vec![(t(94_999), 3.0), (t(0), 4.0)]);
    // Late events changed nothing.
    let r = s
        .query_series(id, Aggregation::Sum, Duration::from_secs(60), t(100_000))
        .unwrap();
    assert_eq!((r.value, r.count), (Some(3.0), 2));
    // The buffer has room again.
    assert_eq!(s.record(id, t(1), 6.0), Ok(Recorded::LateBuffered));
}

#[test]
fn histogram_contents_from_outside_are_checked() {
    use rtdash_window::LogHistogram;
    // A bin that is no finite value's, counts that overflow, a precision out of range:
    // each refused with what is wrong, nothing built.
    let e = LogHistogram::from_bin_counts(7, [(u32::MAX, 1)]).unwrap_err();
    assert!(matches!(e, WindowError::InvalidHistogram { .. }), "{e}");
    assert!(e.to_string().contains("not a bin of a finite value"), "{e}");
    let mut one = LogHistogram::new(7).unwrap();
    one.record(1.0).unwrap();
    let bin = one.bin_counts().next().unwrap().0;
    let e = LogHistogram::from_bin_counts(7, [(bin, u64::MAX), (bin, 1)]).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    let e = LogHistogram::from_bin_counts(0, [(bin, 1)]).unwrap_err();
    assert!(
        matches!(
            e,
            WindowError::InvalidConfig {
                field: "percentile_precision",
                ..
            }
        ),
        "{e}"
    );
    // Good contents round-trip, a bin given twice adds up.
    let h = LogHistogram::from_bin_counts(7, [(bin, 2), (bin, 3)]).unwrap();
    assert_eq!(h.count(), 5);
    assert_eq!(h.bin_counts().collect::<Vec<_>>(), vec![(bin, 5)]);
}
