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
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
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
    /// The values' histogram, when the window store keeps percentiles (shared: a bucket
    /// is read by many history requests).
    pub histogram: Option<std::sync::Arc<LogHistogram>>,
}

impl ArchivedBucket {
    /// An empty bucket of `series` over `[start, start + width)`: no event (count and sum
    /// 0, min `+∞`, max `-∞`, no histogram); set the public fields from there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rtdash::{Timestamp, core::SeriesKey, history::ArchivedBucket};
    ///
    /// let key = SeriesKey::new("api.latency", [("host", "a")])?;
    /// let mut b = ArchivedBucket::new(key, Timestamp::from_millis(60_000), Duration::from_secs(60));
    /// b.count = 2;
    /// b.sum = 3.0;
    /// assert_eq!(b.end(), Timestamp::from_millis(120_000));
    /// # Ok::<(), rtdash::CoreError>(())
    /// ```
    #[must_use]
    pub fn new(series: SeriesKey, start: Timestamp, width: Duration) -> Self {
        Self {
            series,
            start,
            width,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            histogram: None,
        }
    }

    /// The bucket of series `series` that the window store handed out as `r`.
    pub(crate) fn of_rollup(series: SeriesKey, r: rtdash_window::RollupBucket) -> Self {
        Self {
            series,
            start: r.start,
            width: r.width,
            count: r.count,
            sum: r.sum,
            min: r.min,
            max: r.max,
            histogram: r.histogram.map(std::sync::Arc::new),
        }
    }

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

    /// Waits until every bucket offered is stored, at most `timeout` (blocking: the engine
    /// calls it on a blocking thread at shutdown). The default does nothing (an archive
    /// that stores in `offer`).
    ///
    /// # Errors
    ///
    /// When buckets are still waiting after `timeout` (e.g. the database is down); they
    /// are lost with the process.
    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let _ = timeout;
        Ok(())
    }
}

/// An archive shared with the host (which keeps a handle, e.g. to flush it at shutdown).
impl<A: HistoryArchive> HistoryArchive for std::sync::Arc<A> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn offer(&self, buckets: Vec<ArchivedBucket>) {
        (**self).offer(buckets);
    }

    fn read(
        &self,
        metric: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'static, Result<Vec<ArchivedBucket>, Error>> {
        (**self).read(metric, from, to)
    }

    fn health(&self) -> ArchiveHealth {
        (**self).health()
    }

    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        (**self).flush(timeout)
    }
}

/// The in-process [`HistoryArchive`]: roll-up buckets kept in memory, at most
/// `capacity` of them (the oldest go first, counted in [`ArchiveHealth::dropped`]). It
/// extends history beyond the window store's retention on a single node (a day of
/// one-minute buckets for 100 series is 144,000 buckets) and is lost with the process; use
/// `postgres::PostgresArchive` (feature `postgres`) to keep history across restarts and
/// share it between nodes.
///
/// # Examples
///
/// ```
/// use rtdash::history::MemoryArchive;
/// use rtdash::{Engine, EngineConfig};
///
/// let engine = Engine::builder(EngineConfig::default())
///     .history_archive(MemoryArchive::new(200_000))
///     .build()?;
/// assert_eq!(engine.health().history_archive, Some(true));
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Debug)]
pub struct MemoryArchive {
    capacity: usize,
    inner: std::sync::Mutex<MemoryInner>,
}

/// Buckets of one metric by start, then series.
type MetricBuckets = BTreeMap<i64, std::collections::HashMap<SeriesKey, ArchivedBucket>>;

#[derive(Debug, Default)]
struct MemoryInner {
    /// By metric, start and series: one bucket each (a bucket offered again replaces it).
    metrics: std::collections::HashMap<String, MetricBuckets>,
    len: usize,
    /// Widest bucket held (ms): a bucket overlapping a time starts at most this before it.
    widest: i64,
    written: u64,
    dropped: u64,
}

impl MemoryArchive {
    /// An archive of at most `capacity` buckets (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Buckets held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no bucket is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HistoryArchive for MemoryArchive {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn offer(&self, buckets: Vec<ArchivedBucket>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        for b in buckets {
            inner.widest = inner.widest.max(ms_of(b.width));
            let metric = match inner.metrics.get_mut(b.series.metric()) {
                Some(m) => m,
                None => inner
                    .metrics
                    .entry(b.series.metric().to_owned())
                    .or_default(),
            };
            let at = metric.entry(b.start.as_millis()).or_default();
            let new = at.insert(b.series.clone(), b).is_none();
            inner.len += usize::from(new);
            inner.written += 1;
        }
        while inner.len > self.capacity {
            let excess = inner.len - self.capacity;
            // The metric holding the oldest bucket.
            let Some(name) = inner
                .metrics
                .iter()
                .filter_map(|(name, m)| Some((*m.keys().next()?, name)))
                .min()
                .map(|(_, name)| name.clone())
            else {
                break;
            };
            let Some(metric) = inner.metrics.get_mut(&name) else {
                break;
            };
            let Some(mut oldest) = metric.first_entry() else {
                inner.metrics.remove(&name);
                continue;
            };
            let group = oldest.get_mut();
            let n = if group.len() <= excess {
                let n = group.len();
                oldest.remove();
                n
            } else {
                let doomed: Vec<SeriesKey> = group.keys().take(excess).cloned().collect();
                for k in &doomed {
                    group.remove(k);
                }
                doomed.len()
            };
            if metric.is_empty() {
                inner.metrics.remove(&name);
            }
            inner.len -= n;
            inner.dropped += n as u64;
        }
    }

    fn read(
        &self,
        metric: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'static, Result<Vec<ArchivedBucket>, Error>> {
        let inner = self.lock();
        let (from, to) = (from.as_millis(), to.as_millis());
        let lo = from.saturating_sub(inner.widest);
        let out: Vec<ArchivedBucket> = match inner.metrics.get(metric) {
            Some(m) if lo < to => m
                .range(lo..to)
                .flat_map(|(_, group)| group.values())
                .filter(|b| b.end().as_millis() > from)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Box::pin(std::future::ready(Ok(out)))
    }

    fn health(&self) -> ArchiveHealth {
        let inner = self.lock();
        ArchiveHealth {
            connected: true,
            buffered: 0,
            written: inner.written,
            dropped: inner.dropped,
        }
    }
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
                    format!(
                        "the step ({ms} ms) must be a multiple of the bucket width ({bucket_ms} ms)"
                    ),
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
pub(crate) struct Merge {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) histogram: Option<LogHistogram>,
}

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
        self.add_parts(b.count, b.sum, b.min, b.max, b.histogram.as_deref());
    }

    /// Adds a bucket's parts, by the rules of live windows: counts and sums add, extremes
    /// are kept, histograms merge (one of another precision is left out: its counts and
    /// extremes still add).
    pub(crate) fn add_parts(
        &mut self,
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        histogram: Option<&LogHistogram>,
    ) {
        self.count = self.count.saturating_add(count);
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        if let Some(h) = histogram {
            match &mut self.histogram {
                None => self.histogram = Some(h.clone()),
                Some(acc) => {
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

/// Where a widget's history comes from: the window store of the metric, and the archive
/// for what the store no longer (or never) held.
pub(crate) struct Sources<'a> {
    pub(crate) store: &'a std::sync::RwLock<rtdash_window::WindowStore>,
    pub(crate) archive: Option<std::sync::Arc<dyn HistoryArchive>>,
}

/// A matched series as the store holds it.
struct Held {
    key: SeriesKey,
    id: rtdash_core::SeriesId,
    /// From when the store holds the series in full (ms).
    since: i64,
}

/// Computes a widget's history (see the module docs): each point whose window starts at
/// or after the time from which the store holds every matched series is the store's
/// query at that time, exactly the live computation; older points merge roll-up buckets,
/// from the archive before the store's start of each series and from the store after it.
pub(crate) async fn compute(
    dashboard: &str,
    widget: &rtdash_core::Widget,
    req: &HistoryRequest,
    src: Sources<'_>,
) -> Result<History, Error> {
    use std::sync::PoisonError;
    let read = || src.store.read().unwrap_or_else(PoisonError::into_inner);
    let window = widget.window();
    let window_ms = ms_of(window);
    let metric = widget.metric_name.as_str();
    let to = req.to.as_millis();
    // What the store holds, and from when.
    let (bucket, fine_span, fine_window, width, rollup, held) = {
        let s = read();
        let c = s.config();
        let bucket = ms_of(c.bucket_width);
        // Fine buckets are held for the fine span plus the grace period; a window longer
        // than the fine span is made of roll-up buckets.
        let (fine_span, fine_window, width) = c.rollup.map_or((i64::MAX, i64::MAX, bucket), |r| {
            let span = ms_of(r.fine_span);
            (span.saturating_add(ms_of(c.grace)), span, ms_of(r.width))
        });
        let held: Vec<Held> = s
            .interner()
            .series_of_metric(metric)
            .iter()
            .filter_map(|&id| {
                let key = s.series_key(id)?;
                if !widget.tag_filter.matches(key) {
                    return None;
                }
                let since = s.memory_since(id)?.as_millis();
                Some(Held {
                    key: key.clone(),
                    id,
                    since,
                })
            })
            .collect();
        (
            bucket,
            fine_span,
            fine_window,
            width,
            c.rollup.is_some(),
            held,
        )
    };
    // The store holds every matched series in full from `boundary` on.
    let boundary = held.iter().map(|h| h.since).max().unwrap_or(i64::MAX);
    let from = req.from.as_millis();
    let reach = from.saturating_sub(window_ms);
    let archived: Vec<ArchivedBucket> = match &src.archive {
        Some(archive) if rollup && reach < boundary => {
            let until = Timestamp::from_millis(boundary.min(to));
            // An hour before the reach: a downsampled bucket may start before it.
            let since = Timestamp::from_millis(reach.saturating_sub(3_600_000));
            archive
                .read(metric, since, until)
                .await?
                .into_iter()
                .filter(|b| widget.tag_filter.matches(&b.series) && b.count > 0)
                .collect()
        }
        _ => Vec::new(),
    };
    let archive_width = archived
        .iter()
        .map(|b| ms_of(b.width))
        .max()
        .unwrap_or(width)
        .max(width);
    let p = plan(
        req,
        bucket,
        |x| {
            if src.archive.is_some() && x < boundary {
                archive_width
            } else if x < to.saturating_sub(fine_span) || window_ms > fine_window {
                width
            } else {
                bucket
            }
        },
        window_ms,
    )?;
    let agg = widget.aggregation;
    let group_of = |key: &SeriesKey| -> Option<String> {
        match &widget.group_by {
            None => Some(String::new()),
            Some(k) => key.tag(k).map(str::to_owned),
        }
    };
    // Buckets for the points the store cannot answer alone: the archive's before each
    // series' start in the store, the store's roll-ups after it.
    let merged_until = src
        .archive
        .as_ref()
        .and_then(|_| p.times().take_while(|&t| t - window_ms < boundary).last());
    let mut buckets: Vec<(String, ArchivedBucket)> = Vec::new();
    if let Some(last) = merged_until {
        let since_of: std::collections::HashMap<&SeriesKey, i64> =
            held.iter().map(|h| (&h.key, h.since)).collect();
        for b in archived {
            let keep = since_of
                .get(&b.series)
                .is_none_or(|&since| b.end().as_millis() <= since);
            if keep && let Some(g) = group_of(&b.series) {
                buckets.push((g, b));
            }
        }
        let s = read();
        for h in &held {
            let Some(g) = group_of(&h.key) else { continue };
            let rollups = s
                .series_rollups(
                    h.id,
                    Timestamp::from_millis(h.since),
                    Timestamp::from_millis(last),
                )
                .map_err(|e| Error::HistoryUnavailable {
                    reason: e.to_string(),
                })?;
            for r in rollups {
                buckets.push((g.clone(), ArchivedBucket::of_rollup(h.key.clone(), r)));
            }
        }
        buckets.sort_by_key(|(_, b)| b.start);
    }
    let max_width = buckets
        .iter()
        .map(|(_, b)| ms_of(b.width))
        .max()
        .unwrap_or(width);
    let names: Vec<String> = if widget.group_by.is_none() {
        vec![String::new()]
    } else {
        let mut names: std::collections::BTreeSet<&str> = held
            .iter()
            .filter_map(|h| h.key.tag(widget.group_by.as_deref()?))
            .collect();
        names.extend(buckets.iter().map(|(g, _)| g.as_str()));
        names.into_iter().map(str::to_owned).collect()
    };
    let query_error = |e: rtdash_window::WindowError| Error::InvalidHistoryRequest {
        field: "widget",
        reason: e.to_string(),
    };
    let mut groups: BTreeMap<String, Vec<HistoryPoint>> = BTreeMap::new();
    for t in p.times() {
        if merged_until.is_some_and(|last| t <= last) {
            merge_point(
                &buckets,
                max_width,
                &names,
                (t, window_ms, agg),
                &mut groups,
            );
            continue;
        }
        let now = Timestamp::from_millis(t - 1);
        match &widget.group_by {
            None => {
                let r = read()
                    .query(metric, &widget.tag_filter, agg, window, now)
                    .map_err(query_error)?;
                groups
                    .entry(String::new())
                    .or_default()
                    .push(HistoryPoint::of(&r));
            }
            Some(key) => {
                let rs = read()
                    .group_by(metric, &widget.tag_filter, key, agg, window, now)
                    .map_err(query_error)?;
                for (g, r) in rs {
                    groups.entry(g).or_default().push(HistoryPoint::of(&r));
                }
            }
        }
    }
    let series = if widget.group_by.is_none() {
        vec![HistorySeries {
            group: None,
            points: groups.remove("").unwrap_or_default(),
        }]
    } else {
        into_series(groups)
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

/// The point at `t` of every group in `names` from `buckets` (sorted by start, none wider
/// than `max_width` ms): every bucket overlapping the window ending at `t`, the window's
/// start moved back to the earliest start of them (a window is whole buckets).
fn merge_point(
    buckets: &[(String, ArchivedBucket)],
    max_width: i64,
    names: &[String],
    point: (i64, i64, Aggregation),
    groups: &mut BTreeMap<String, Vec<HistoryPoint>>,
) {
    let (t, window_ms, agg) = point;
    let end = buckets.partition_point(|(_, b)| b.start.as_millis() < t);
    let mut start = t - window_ms;
    loop {
        let lo = buckets[..end].partition_point(|(_, b)| b.start.as_millis() < start - max_width);
        let earliest = buckets[lo..end]
            .iter()
            .filter(|(_, b)| b.end().as_millis() > start)
            .map(|(_, b)| b.start.as_millis())
            .min()
            .unwrap_or(start);
        if earliest >= start {
            break;
        }
        start = earliest;
    }
    let first = buckets[..end].partition_point(|(_, b)| b.start.as_millis() < start);
    let mut merged: BTreeMap<&str, Merge> = BTreeMap::new();
    for (g, b) in &buckets[first..end] {
        merged.entry(g.as_str()).or_insert_with(Merge::new).add(b);
    }
    let empty = Merge::new();
    for g in names {
        let m = merged.get(g.as_str()).unwrap_or(&empty);
        groups.entry(g.clone()).or_default().push(HistoryPoint {
            time: Timestamp::from_millis(t),
            start: Timestamp::from_millis(start),
            value: m.value(agg),
            count: m.count,
        });
    }
}

/// Offers every complete roll-up bucket of `store` not offered before to `archive`;
/// returns how many. The store's write lock is held while the buckets are collected
/// (one pass over the series), not while the archive takes them; inside a tokio runtime
/// the archive takes them on a blocking thread (an archive may encode them, which costs
/// microseconds per bucket), so the scheduler's tick never waits for it.
pub(crate) fn export(
    store: &std::sync::RwLock<rtdash_window::WindowStore>,
    archive: &std::sync::Arc<dyn HistoryArchive>,
) -> usize {
    let buckets = take(store, false);
    let n = buckets.len();
    if n > 0 {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let archive = std::sync::Arc::clone(archive);
                drop(rt.spawn_blocking(move || archive.offer(buckets)));
            }
            Err(_) => archive.offer(buckets),
        }
    }
    n
}

/// The roll-up buckets of `store` not taken before: the complete ones, or with `all` every
/// one (at shutdown), with their series keys.
pub(crate) fn take(
    store: &std::sync::RwLock<rtdash_window::WindowStore>,
    all: bool,
) -> Vec<ArchivedBucket> {
    use std::sync::PoisonError;
    {
        let mut s = store.write().unwrap_or_else(PoisonError::into_inner);
        let taken = if all {
            s.take_all_rollups()
        } else {
            s.take_rollups()
        };
        let Ok(taken) = taken else {
            return Vec::new();
        };
        taken
            .into_iter()
            .filter_map(|r| {
                let key = s.series_key(r.series)?.clone();
                Some(ArchivedBucket::of_rollup(key, r))
            })
            .collect()
    }
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
        assert!(
            matches!(e, Error::InvalidHistoryRequest { field: "to", .. }),
            "{e}"
        );
        let e = plan(
            &req(0, 3_600_000).with_step(Duration::from_millis(1500)),
            1000,
            fine,
            1,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("multiple of the bucket width"),
            "{e}"
        );
        let e = plan(
            &req(0, 3_600_000).with_step(Duration::from_secs(1)),
            1000,
            fine,
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at most 2000"), "{e}");
        let e = plan(&req(0, 3_600_000).with_step(Duration::ZERO), 1000, fine, 1).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidHistoryRequest { field: "step", .. }
        ));
        let e = plan(&req(i64::MIN / 4, 0), 1000, fine, 1).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidHistoryRequest { field: "from", .. }
        ));
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
        let p = plan(
            &req(10_000, 14_000).with_step(Duration::from_secs(2)),
            1000,
            |_| 1000,
            1,
        )
        .expect("valid");
        assert_eq!(p.times().collect::<Vec<_>>(), vec![12_000, 14_000]);
    }
}
