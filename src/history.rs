//! Widget history: the value a widget had at past times, computed from the window store's
//! buckets with the widget's own aggregation, window, filter and grouping, and from a
//! [`HistoryArchive`] (e.g. `postgres::PostgresArchive`) for times older than the window
//! store holds.
//!
//! # What a point is
//!
//! A history of a widget with window `W` over `(from, to]` at step `s` has one point per
//! multiple `t` of `s` in `(from, to]`. The point at `t` is the widget's aggregation over
//! the window ending at `t`: exactly what the live widget showed (or would have shown) at
//! `t`. A sliding `p99 over 30 s` point at `t` is the p99 of the 30 s ending at `t`, not
//! one bucket's p99.
//!
//! A window is made of whole buckets, as live windows are: where the data at a time is
//! kept only at a coarser width (the window store's roll-up buckets beyond its fine span,
//! the archive's one-minute or one-hour buckets), the window starts at the previous
//! boundary of that width, so it may be longer than `W`. Each [`HistoryPoint`] carries the
//! exact range it covers (`start` .. `time`).
//!
//! # Steps
//!
//! Without an explicit step the server chooses one from the range: the smallest of
//! 1 s, 2 s, 5 s, 10 s, 15 s, 30 s, 1 min, 2 min, 5 min, 10 min, 15 min, 30 min, 1 h, 2 h,
//! 3 h, 6 h, 12 h and 1 day that gives at most [`TARGET_POINTS`] points, at least the
//! bucket width of the data the range reaches (one point per bucket for the last 5 min,
//! one per minute for an hour, one per 5 min for a day). An explicit step must be a
//! multiple of the bucket width and give at most [`MAX_HISTORY_POINTS`] points.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use rtdash_core::{Aggregation, SeriesKey, Timestamp, Uuid};
use rtdash_window::{LogHistogram, QueryResult};
use serde::Serialize;

use crate::Error;

/// Most points a history may have, over all its series' time axis (one request).
pub const MAX_HISTORY_POINTS: usize = 2_000;

/// Points a server-chosen step aims at, at most.
pub const TARGET_POINTS: u64 = 300;

/// Longest range a history request may cover: 400 days.
pub const MAX_HISTORY_RANGE: Duration = Duration::from_secs(400 * 86_400);

/// The steps a server chooses from, in seconds.
const NICE_STEPS_S: [u64; 18] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200,
    86_400,
];

/// What a client asks of a widget's history: the range `(from, to]` and optionally the
/// step between points.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::{Timestamp, history::HistoryRequest};
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let last_hour = HistoryRequest::last(Duration::from_secs(3600), now);
/// assert_eq!(last_hour.to, now);
/// assert_eq!(last_hour.from, Timestamp::from_millis(1_699_996_400_000));
/// let every_10s = last_hour.with_step(Duration::from_secs(10));
/// assert_eq!(every_10s.step, Some(Duration::from_secs(10)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryRequest {
    /// Start of the range, exclusive.
    pub from: Timestamp,
    /// End of the range, inclusive (usually now).
    pub to: Timestamp,
    /// The step between points; `None` lets the server choose (see the module docs).
    pub step: Option<Duration>,
}

impl HistoryRequest {
    /// The range `(from, to]`, step chosen by the server.
    #[must_use]
    pub fn new(from: Timestamp, to: Timestamp) -> Self {
        Self {
            from,
            to,
            step: None,
        }
    }

    /// The `range` before `now`.
    #[must_use]
    pub fn last(range: Duration, now: Timestamp) -> Self {
        Self::new(now.saturating_sub(range), now)
    }

    /// Sets the step.
    #[must_use]
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = Some(step);
        self
    }
}

/// A widget's history: one [`HistorySeries`] (or, for a `group_by` widget, one per group).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct History {
    /// The dashboard.
    pub dashboard_id: String,
    /// The widget.
    pub widget_id: Uuid,
    /// Start of the range, exclusive (as asked).
    pub from: Timestamp,
    /// End of the range, inclusive (as asked).
    pub to: Timestamp,
    /// Milliseconds between points.
    pub step_ms: u64,
    /// The widget's window, in milliseconds.
    pub window_ms: u64,
    /// The series: one with `group: None`, or one per group sorted by group.
    pub series: Vec<HistorySeries>,
}

/// The points of one series of a [`History`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistorySeries {
    /// The group (tag value of the widget's `group_by` key), `None` for an ungrouped widget.
    pub group: Option<String>,
    /// The points, oldest first, one per step.
    pub points: Vec<HistoryPoint>,
}

/// The widget's value over one window of its history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// End of the window, exclusive: the time the point is drawn at.
    pub time: Timestamp,
    /// Start of the window, inclusive (see the module docs on coarser data).
    pub start: Timestamp,
    /// The aggregate; as for live values, `None` for an average, minimum, maximum or
    /// percentile over no event, and 0 for a count or sum.
    pub value: Option<f64>,
    /// Number of events in the window.
    pub count: u64,
}

impl HistoryPoint {
    pub(crate) fn of(r: &QueryResult) -> Self {
        Self {
            time: r.window_end,
            start: r.window_start,
            value: r.value,
            count: r.count,
        }
    }
}

/// One series' aggregate over one interval, as a [`HistoryArchive`] keeps it: everything
/// needed to compute any aggregation (including percentiles, and for widgets defined
/// later) over any range made of such intervals, exactly as live.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ArchivedBucket {
    /// The series (metric and tags).
    pub series: SeriesKey,
    /// Start of the interval, inclusive.
    pub start: Timestamp,
    /// Length of the interval (one minute as written; one hour once downsampled).
    pub width: Duration,
    /// Number of events.
    pub count: u64,
    /// Sum of the values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// The values' histogram, when the window store keeps percentiles.
    pub histogram: Option<LogHistogram>,
}

impl ArchivedBucket {
    /// End of the interval, exclusive.
    #[must_use]
    pub fn end(&self) -> Timestamp {
        self.start.saturating_add(self.width)
    }
}

/// The health of a [`HistoryArchive`], for `/healthz` and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ArchiveHealth {
    /// Whether the last write (or connection attempt) succeeded.
    pub connected: bool,
    /// Buckets waiting to be written.
    pub buffered: usize,
    /// Buckets written since start.
    pub written: u64,
    /// Buckets dropped because the buffer was full (the gap in stored history).
    pub dropped: u64,
}

/// The seam for long-range history: where finished roll-up buckets are kept once the
/// window store lets them go, and read back for history requests beyond its retention.
///
/// An implementation must never block or slow ingest: [`offer`](Self::offer) hands over
/// and returns at once; when the store is unreachable it buffers within a bound and
/// counts what it had to drop ([`ArchiveHealth::dropped`]). Writing a bucket twice (same
/// series, start and width) must keep one: replays after a failover offer buckets again.
pub trait HistoryArchive: Send + Sync + 'static {
    /// A short name for logs and errors, e.g. `postgres`.
    fn name(&self) -> &'static str;

    /// Hands finished buckets over to be written. Returns at once.
    fn offer(&self, buckets: Vec<ArchivedBucket>);

    /// The buckets of `metric` (every series of it) that overlap `[from, to)`, any width.
    fn read(
        &self,
        metric: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'static, Result<Vec<ArchivedBucket>, Error>>;

    /// The archive's health.
    fn health(&self) -> ArchiveHealth;
}

/// The validated plan of a history request: the point times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// First point's end time (ms).
    pub(crate) first: i64,
    /// Last point's end time (ms), `>= first` unless empty.
    pub(crate) last: i64,
    /// Step (ms).
    pub(crate) step: i64,
}

impl Plan {
    /// The point end times.
    pub(crate) fn times(self) -> impl Iterator<Item = i64> {
        let Self { first, last, step } = self;
        (0..)
            .map(move |k: i64| first + k * step)
            .take_while(move |&t| t <= last)
    }

    /// Number of points.
    pub(crate) fn len(self) -> usize {
        if self.last < self.first {
            0
        } else {
            usize::try_from((self.last - self.first) / self.step + 1).unwrap_or(usize::MAX)
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidHistoryRequest {
        field,
        reason: reason.into(),
    }
}

/// Validates `req` and chooses the step: `bucket_ms` is the finest bucket width, and
/// `coarse_ms(from)` the width of the coarsest data a window starting at `from` may need
/// (a step is never finer than the data it shows).
pub(crate) fn plan(
    req: &HistoryRequest,
    bucket_ms: i64,
    coarse_ms: impl Fn(i64) -> i64,
    window_ms: i64,
) -> Result<Plan, Error> {
    let (from, to) = (req.from.as_millis(), req.to.as_millis());
    if to <= from {
        return Err(invalid(
            "to",
            format!("the range is empty: `to` ({to}) must be after `from` ({from})"),
        ));
    }
    let range = to - from;
    if u128::try_from(range).unwrap_or(u128::MAX) > MAX_HISTORY_RANGE.as_millis() {
        return Err(invalid(
            "from",
            format!(
                "the range is {range} ms; the longest is {} days",
                MAX_HISTORY_RANGE.as_secs() / 86_400
            ),
        ));
    }
    let floor_ms = coarse_ms(from - window_ms).max(bucket_ms);
    let step = match req.step {
        Some(step) => {
            let ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
            if ms <= 0 || step.subsec_nanos() % 1_000_000 != 0 {
                return Err(invalid(
                    "step",
                    "the step must be a positive whole number of milliseconds",
                ));
            }
            if ms % bucket_ms != 0 {
                return Err(invalid(
                    "step",
                    format!("the step ({ms} ms) must be a multiple of the bucket width ({bucket_ms} ms)"),
                ));
            }
            ms
        }
        None => {
            let want = (range / TARGET_POINTS as i64).max(floor_ms);
            NICE_STEPS_S
                .iter()
                .map(|s| *s as i64 * 1000)
                .find(|&s| s >= want && s % floor_ms == 0)
                .unwrap_or_else(|| (want + floor_ms - 1) / floor_ms * floor_ms)
        }
    };
    let first = (from.div_euclid(step) + 1) * step;
    let last = to.div_euclid(step) * step;
    let p = Plan { first, last, step };
    if p.len() > MAX_HISTORY_POINTS {
        return Err(invalid(
            "step",
            format!(
                "{} points asked; at most {MAX_HISTORY_POINTS} per request: use a larger step or a shorter range",
                p.len()
            ),
        ));
    }
    Ok(p)
}

/// Merges partial aggregates of buckets into one value, by the rules of live windows.
#[derive(Debug, Clone)]
#[allow(dead_code)] // used by the archive path
pub(crate) struct Merge {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) histogram: Option<LogHistogram>,
}

#[allow(dead_code)]
impl Merge {
    pub(crate) fn new() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            histogram: None,
        }
    }

    pub(crate) fn add(&mut self, b: &ArchivedBucket) {
        self.count += b.count;
        self.sum += b.sum;
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        if let Some(h) = &b.histogram {
            match &mut self.histogram {
                None => self.histogram = Some(h.clone()),
                Some(acc) => {
                    // Precisions are equal within one store; a foreign bucket is skipped
                    // for the histogram only (its counts and extremes still add).
                    let _ = acc.merge(h);
                }
            }
        }
    }

    /// The aggregate, with the empty-window rule of live values.
    pub(crate) fn value(&self, agg: Aggregation) -> Option<f64> {
        let n = self.count;
        match agg {
            Aggregation::Count => Some(n as f64),
            Aggregation::Sum if n == 0 => Some(0.0),
            _ if n == 0 => None,
            Aggregation::Sum => Some(self.sum),
            Aggregation::Avg => Some(self.sum / n as f64),
            Aggregation::Min => Some(self.min),
            Aggregation::Max => Some(self.max),
            Aggregation::Percentile(p) => self
                .histogram
                .as_ref()
                .and_then(|h| h.percentile(p))
                .map(|v| v.max(self.min).min(self.max)),
        }
    }
}

/// Collects per-group points into series, sorted by group.
pub(crate) fn into_series(groups: BTreeMap<String, Vec<HistoryPoint>>) -> Vec<HistorySeries> {
    groups
        .into_iter()
        .map(|(g, points)| HistorySeries {
            group: Some(g),
            points,
        })
        .collect()
}

/// The memory half of a history: every point from the window store, by the same queries
/// as live values (a point at `t` is the query at `t - 1 ms`, whose window ends at `t`).
pub(crate) fn from_store(
    dashboard: &str,
    widget: &rtdash_core::Widget,
    req: &HistoryRequest,
    store: &std::sync::RwLock<rtdash_window::WindowStore>,
) -> Result<History, Error> {
    use std::sync::PoisonError;
    let read = || store.read().unwrap_or_else(PoisonError::into_inner);
    let window = widget.window();
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let p = {
        let s = read();
        let c = s.config();
        let bucket = ms_of(c.bucket_width);
        let (fine_span, width) = c
            .rollup
            .map_or((i64::MAX, bucket), |r| (ms_of(r.fine_span), ms_of(r.width)));
        let to = req.to.as_millis();
        plan(
            req,
            bucket,
            |x| if x < to.saturating_sub(fine_span) { width } else { bucket },
            window_ms,
        )?
    };
    let agg = widget.aggregation;
    let query_error = |e: rtdash_window::WindowError| Error::InvalidHistoryRequest {
        field: "widget",
        reason: e.to_string(),
    };
    let series = match &widget.group_by {
        None => {
            let mut points = Vec::with_capacity(p.len());
            for t in p.times() {
                let now = Timestamp::from_millis(t - 1);
                let r = read()
                    .query(&widget.metric_name, &widget.tag_filter, agg, window, now)
                    .map_err(query_error)?;
                points.push(HistoryPoint::of(&r));
            }
            vec![HistorySeries {
                group: None,
                points,
            }]
        }
        Some(key) => {
            let mut groups: BTreeMap<String, Vec<HistoryPoint>> = BTreeMap::new();
            for t in p.times() {
                let now = Timestamp::from_millis(t - 1);
                let rs = read()
                    .group_by(&widget.metric_name, &widget.tag_filter, key, agg, window, now)
                    .map_err(query_error)?;
                for (g, r) in rs {
                    groups.entry(g).or_default().push(HistoryPoint::of(&r));
                }
            }
            into_series(groups)
        }
    };
    Ok(History {
        dashboard_id: dashboard.to_owned(),
        widget_id: widget.widget_id,
        from: req.from,
        to: req.to,
        step_ms: u64::try_from(p.step).unwrap_or(0),
        window_ms: u64::try_from(window_ms).unwrap_or(0),
        series,
    })
}

fn ms_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: i64, to: i64) -> HistoryRequest {
        HistoryRequest::new(Timestamp::from_millis(from), Timestamp::from_millis(to))
    }

    #[test]
    fn the_server_chooses_one_point_per_bucket_for_five_minutes_and_per_minute_for_an_hour() {
        let now = 1_700_000_000_500;
        let fine = |_| 1000;
        let p = plan(&req(now - 300_000, now), 1000, fine, 30_000).expect("valid");
        assert_eq!((p.step, p.len()), (1000, 300));
        assert_eq!(p.last, 1_700_000_000_000);
        // An hour reaches the minute buckets.
        let coarse = |t: i64| if t < now - 330_000 { 60_000 } else { 1000 };
        let p = plan(&req(now - 3_600_000, now), 1000, coarse, 30_000).expect("valid");
        assert_eq!((p.step, p.len()), (60_000, 60));
        let p = plan(&req(now - 86_400_000, now), 1000, coarse, 30_000).expect("valid");
        assert_eq!((p.step, p.len()), (300_000, 288));
    }

    #[test]
    fn bad_requests_are_refused_naming_the_field() {
        let fine = |_| 1000;
        let e = plan(&req(5, 5), 1000, fine, 1000).unwrap_err();
        assert!(matches!(e, Error::InvalidHistoryRequest { field: "to", .. }), "{e}");
        let e = plan(&req(0, 3_600_000).with_step(Duration::from_millis(1500)), 1000, fine, 1)
            .unwrap_err();
        assert!(e.to_string().contains("multiple of the bucket width"), "{e}");
        let e = plan(&req(0, 3_600_000).with_step(Duration::from_secs(1)), 1000, fine, 1)
            .unwrap_err();
        assert!(e.to_string().contains("at most 2000"), "{e}");
        let e = plan(&req(0, 3_600_000).with_step(Duration::ZERO), 1000, fine, 1).unwrap_err();
        assert!(matches!(e, Error::InvalidHistoryRequest { field: "step", .. }));
        let e = plan(&req(i64::MIN / 4, 0), 1000, fine, 1).unwrap_err();
        assert!(matches!(e, Error::InvalidHistoryRequest { field: "from", .. }));
    }

    #[test]
    fn points_are_the_multiples_of_the_step_in_the_range() {
        let p = plan(
            &req(10_000, 15_000).with_step(Duration::from_secs(2)),
            1000,
            |_| 1000,
            1000,
        )
        .expect("valid");
        assert_eq!(p.times().collect::<Vec<_>>(), vec![12_000, 14_000]);
        // `to` itself is included when it is a multiple.
        let p = plan(&req(10_000, 14_000).with_step(Duration::from_secs(2)), 1000, |_| 1000, 1)
            .expect("valid");
        assert_eq!(p.times().collect::<Vec<_>>(), vec![12_000, 14_000]);
    }
}
