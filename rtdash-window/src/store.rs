//! [`WindowStore`]: the multi-series store, its hot path and its queries.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rtdash_core::{
    Aggregation, CoreError, MetricEvent, SeriesId, SeriesInterner, SeriesKey, TagFilter, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::config::{Layout, WindowConfig};
use crate::error::WindowError;
use crate::series::{Acc, Series, Span, Term};
use crate::sketch::{DenseBins, LogHistogram};

/// Event times (and query times) must be within `±2^60` ms of the epoch (±36 million years),
/// so bucket arithmetic never overflows.
pub const MAX_ABS_EVENT_TIME_MS: i64 = 1 << 60;

/// What [`WindowStore::record`] did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Recorded {
    /// The event was aggregated into its bucket.
    Accepted,
    /// The event was late (`event_time < newest event time of its series - grace`) and went
    /// to the late buffer; see [`WindowStore::drain_late`].
    LateBuffered,
    /// The event was late and the late buffer was full: it was counted in
    /// [`WindowStats::late_dropped`] and discarded.
    LateDropped,
}

/// An event that arrived after the grace period, as held in the late buffer: its series
/// id, time and value (a host resolves the series with [`WindowStore::series_key`]; the
/// `rtdash` facade hands out `rtdash::LateEvent`s with the metric name and tags).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateSample {
    /// Its series (see [`WindowStore::series_key`]).
    pub series: SeriesId,
    /// Its event time.
    pub event_time: Timestamp,
    /// Its value.
    pub value: f64,
}

/// The answer to a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// The aggregate. Over a window with no event: `Some(0.0)` for [`Aggregation::Count`]
    /// and [`Aggregation::Sum`], `None` for the others (see
    /// [`Aggregation::defined_when_empty`]).
    pub value: Option<f64>,
    /// Number of events in the window, over all matched series.
    pub count: u64,
    /// Newest accepted event time of any matched series (inside the window or not); `None`
    /// when none has data. A host marks a value stale when this is old.
    pub last_event_time: Option<Timestamp>,
    /// Start of the time range covered, inclusive.
    pub window_start: Timestamp,
    /// End of the time range covered, exclusive.
    pub window_end: Timestamp,
    /// Number of series that matched the metric and filter (with or without data).
    pub series: usize,
}

/// Counters of a store.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash_core::Timestamp;
/// use rtdash_window::{Recorded, WindowConfig, WindowStore};
///
/// let mut store = WindowStore::new(WindowConfig::default())?; // 30 s grace
/// let cpu = store.series_id("cpu", [("host", "a")])?;
/// let t0 = Timestamp::from_millis(1_700_000_000_000);
/// assert_eq!(store.record(cpu, t0, 41.0)?, Recorded::Accepted);
/// // A minute older than the series' newest event: late, set aside, not aggregated.
/// let late = t0.saturating_sub(Duration::from_secs(60));
/// assert_eq!(store.record(cpu, late, 12.0)?, Recorded::LateBuffered);
///
/// let stats = store.stats();
/// assert_eq!((stats.series, stats.accepted), (1, 1));
/// assert_eq!((stats.late_total, stats.late_buffered, stats.late_dropped), (1, 1, 0));
/// assert_eq!(stats.max_event_time, Some(t0));
/// # Ok::<(), rtdash_window::WindowError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WindowStats {
    /// Number of series known.
    pub series: usize,
    /// Events aggregated since the store was created (checkpoints carry it).
    pub accepted: u64,
    /// Late events seen, buffered or dropped.
    pub late_total: u64,
    /// Late events dropped because the late buffer was full.
    pub late_dropped: u64,
    /// Late events waiting in the buffer.
    pub late_buffered: usize,
    /// Newest event time accepted in any series, `None` before the first accepted event.
    /// Lateness is per series: see [`WindowStore::watermark`].
    pub max_event_time: Option<Timestamp>,
}

/// Sliding-window aggregates of many series, keyed by [`SeriesId`] / [`SeriesKey`].
///
/// See the [crate documentation](crate) for the concepts: buckets, roll-up, watermark,
/// grace and the late side channel, error bounds and memory.
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, Percentile, TagFilter, Timestamp};
/// use rtdash_window::{Recorded, WindowConfig, WindowStore};
/// use std::time::Duration;
///
/// let mut store = WindowStore::new(WindowConfig::default())?;
/// let eu = store.series_id("api.latency", [("region", "eu")])?;
/// let us = store.series_id("api.latency", [("region", "us")])?;
/// let t0 = Timestamp::from_millis(1_700_000_000_000);
/// for i in 0..100 {
///     let t = t0.saturating_add(Duration::from_millis(i * 100));
///     store.record(eu, t, 10.0 + i as f64)?;
///     store.record(us, t, 20.0)?;
/// }
/// let now = t0.saturating_add(Duration::from_secs(10));
/// let all = TagFilter::new();
/// let minute = Duration::from_secs(60);
/// let r = store.query("api.latency", &all, Aggregation::Count, minute, now)?;
/// assert_eq!((r.value, r.series), (Some(200.0), 2));
/// let eu_only = TagFilter::new().with("region", "eu");
/// let r = store.query("api.latency", &eu_only, Aggregation::Max, minute, now)?;
/// assert_eq!(r.value, Some(109.0));
/// // Percentiles over several series merge histograms.
/// let p99 = Aggregation::Percentile(Percentile::P99);
/// let r = store.query("api.latency", &all, p99, minute, now)?;
/// assert!((r.value.unwrap() - 107.0).abs() <= 107.0 * 0.004);
///
/// // Events older than their series' newest minus the grace period (30 s) are late.
/// let old = t0.saturating_sub(Duration::from_secs(60));
/// assert_eq!(store.record(eu, old, 1.0)?, Recorded::LateBuffered);
/// assert_eq!(store.drain_late().count(), 1);
/// # Ok::<(), rtdash_window::WindowError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WindowStore {
    config: WindowConfig,
    pub(crate) layout: Layout,
    interner: SeriesInterner,
    /// One entry per interned series; `None` until its first accepted event.
    pub(crate) series: Vec<Option<Series>>,
    /// Newest event time accepted in any series, `i64::MIN` before any.
    max_seen: i64,
    late: VecDeque<LateSample>,
    late_total: u64,
    late_dropped: u64,
    accepted: u64,
}

impl WindowStore {
    /// An empty store.
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidConfig`] when `config` breaks a rule (see
    /// [`WindowConfig::validate`]).
    pub fn new(config: WindowConfig) -> Result<Self, WindowError> {
        let layout = Layout::new(&config)?;
        Ok(Self {
            interner: SeriesInterner::with_max_series(config.max_series),
            config,
            layout,
            series: Vec::new(),
            max_seen: i64::MIN,
            late: VecDeque::new(),
            late_total: 0,
            late_dropped: 0,
            accepted: 0,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The series interner (keys, ids, series of a metric).
    #[must_use]
    pub fn interner(&self) -> &SeriesInterner {
        &self.interner
    }

    /// The id of series (`metric`, `tags`), adding the series if it is new. Tags may come in
    /// any order. Does not allocate for a known series.
    ///
    /// # Errors
    ///
    /// [`WindowError::TooManySeries`] when the series is new and
    /// [`max_series`](WindowConfig::max_series) is reached; [`WindowError::InvalidSeries`]
    /// for an empty metric name or an empty or duplicate tag key.
    pub fn series_id<'a>(
        &mut self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<SeriesId, WindowError> {
        let id = self
            .interner
            .get_or_intern(metric, tags)
            .map_err(series_error)?;
        self.sync_series();
        Ok(id)
    }

    /// The id of an already known series, or `None`. Does not allocate.
    #[must_use]
    pub fn find_series<'a>(
        &self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        self.interner.get(metric, tags)
    }

    /// The key of a series id issued by this store.
    #[must_use]
    pub fn series_key(&self, id: SeriesId) -> Option<&SeriesKey> {
        self.interner.key(id)
    }

    fn sync_series(&mut self) {
        if self.series.len() < self.interner.len() {
            self.series.resize_with(self.interner.len(), || None);
        }
    }

    /// Records value `value` at event time `t` into series `id`: the hot path. Does not
    /// allocate once the series has received its first event (except for the first use of
    /// a histogram bin in a bucket).
    ///
    /// The event is *late* iff `t < newest event time of this series - grace` (the series'
    /// [`watermark`](Self::watermark)); a producer whose clock runs fast thus moves only its
    /// own series' watermark. A late event changes no aggregate and goes to the late buffer
    /// ([`drain_late`](Self::drain_late)), or is counted as dropped when the buffer is full.
    /// An event at or after the watermark updates its bucket in place, whatever its order.
    ///
    /// # Errors
    ///
    /// Nothing is recorded (nor counted) when:
    /// [`WindowError::NonFiniteValue`] for NaN or ±infinity;
    /// [`WindowError::UnknownSeries`] for an id this store did not issue;
    /// [`WindowError::TimestampOutOfRange`] for a time beyond ±2^60 ms.
    #[inline]
    pub fn record(
        &mut self,
        id: SeriesId,
        t: Timestamp,
        value: f64,
    ) -> Result<Recorded, WindowError> {
        if !value.is_finite() {
            return Err(WindowError::NonFiniteValue { value });
        }
        let t = t.as_millis();
        if !(-MAX_ABS_EVENT_TIME_MS..=MAX_ABS_EVENT_TIME_MS).contains(&t) {
            return Err(WindowError::TimestampOutOfRange { ms: t });
        }
        let idx = id.index();
        if idx >= self.series.len() {
            return Err(WindowError::UnknownSeries { id });
        }
        let layout = &self.layout;
        let bin = layout.bins.map(|b| b.index(value));
        let slot = &mut self.series[idx];
        let series = match slot {
            Some(s) => s,
            None => slot.insert(Series::new(layout, t.div_euclid(layout.wf))),
        };
        if series.record(layout, t, value, bin) {
            self.accepted += 1;
            if t > self.max_seen {
                self.max_seen = t;
            }
            Ok(Recorded::Accepted)
        } else {
            Ok(self.push_late(id, t, value))
        }
    }

    /// Records an event: adds its series (metric name and tags) if new, then
    /// [`record`](Self::record)s its value at its event time. Does not allocate for a known
    /// series. The event's `id` is not looked at (de-duplication is up to the host).
    ///
    /// # Errors
    ///
    /// As [`record`](Self::record) and [`series_id`](Self::series_id); a non-finite value is
    /// rejected before the series is added.
    pub fn record_event(&mut self, event: &MetricEvent) -> Result<Recorded, WindowError> {
        if !event.value.is_finite() {
            return Err(WindowError::NonFiniteValue { value: event.value });
        }
        let id = self.interner.intern_event(event).map_err(series_error)?;
        self.sync_series();
        self.record(id, event.event_time, event.value)
    }

    #[cold]
    fn push_late(&mut self, series: SeriesId, t: i64, value: f64) -> Recorded {
        self.late_total += 1;
        if self.late.len() < self.layout.late_capacity {
            self.late.push_back(LateSample {
                series,
                event_time: Timestamp::from_millis(t),
                value,
            });
            Recorded::LateBuffered
        } else {
            self.late_dropped += 1;
            Recorded::LateDropped
        }
    }

    /// Removes and returns the buffered late events, oldest arrival first.
    pub fn drain_late(&mut self) -> impl Iterator<Item = LateSample> + '_ {
        self.late.drain(..)
    }

    /// The watermark of series `id` (its newest accepted event time minus the grace): its
    /// events before it are late. `None` for an unknown series or one with no accepted event.
    #[must_use]
    pub fn watermark(&self, id: SeriesId) -> Option<Timestamp> {
        match self.series.get(id.index()) {
            Some(Some(s)) => Some(Timestamp::from_millis(s.watermark())),
            _ => None,
        }
    }

    /// Counters: series, accepted and late events, newest event time.
    #[must_use]
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            series: self.interner.len(),
            accepted: self.accepted,
            late_total: self.late_total,
            late_dropped: self.late_dropped,
            late_buffered: self.late.len(),
            max_event_time: (self.max_seen != i64::MIN)
                .then(|| Timestamp::from_millis(self.max_seen)),
        }
    }

    /// Estimated heap bytes of the window state: buckets, histograms, running totals, the
    /// late buffer (not the series keys).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.series.capacity() * size_of::<Option<Series>>()
            + self
                .series
                .iter()
                .flatten()
                .map(Series::heap_bytes)
                .sum::<usize>()
            + self.late.capacity() * size_of::<LateSample>()
    }

    /// The time range a query of length `window` at `now` covers.
    ///
    /// It ends at the end of the bucket holding `now`: `end = (⌊now / w⌋ + 1)·w` for bucket
    /// width `w`, and starts `⌈window / w⌉·w` before: a window always covers whole buckets.
    /// With a roll-up tier, a window longer than [`Rollup::fine_span`](crate::Rollup::fine_span)
    /// starts instead at the previous multiple of the roll-up width; so does one reaching
    /// before the fine buckets still held by a series in the query, which only happens when
    /// that series holds events more than the grace period after `now`.
    ///
    /// This is the span of a query over every series of the store; a query over fewer series
    /// (one metric, a filter) reports its own span in [`QueryResult`], which can only start
    /// later (less often moved back to a roll-up boundary).
    ///
    /// # Errors
    ///
    /// [`WindowError::EmptyWindow`] for a zero window, [`WindowError::WindowTooLong`] for one
    /// longer than the retention.
    pub fn window_span(
        &self,
        window: Duration,
        now: Timestamp,
    ) -> Result<(Timestamp, Timestamp), WindowError> {
        let s = self.span(window, now, || self.newest_zone_start())?;
        Ok((
            Timestamp::from_millis(s.start),
            Timestamp::from_millis(s.end),
        ))
    }

    /// Start (ms) of the fine ring of the series holding the newest event of the store: no
    /// series' fine ring starts later (a series' head bucket is that of its newest event), so
    /// this is [`zone_start`](Self::zone_start) over every series, in O(1).
    fn newest_zone_start(&self) -> i64 {
        if self.max_seen == i64::MIN {
            return i64::MIN;
        }
        let l = &self.layout;
        (self.max_seen.div_euclid(l.wf) - l.fine_slots as i64 + 1).saturating_mul(l.wf)
    }

    /// Start (ms) of the newest fine ring among the given series: a window starting before it
    /// must start on a roll-up boundary to be exact for every one of them.
    fn zone_start(&self, series: impl Iterator<Item = usize>) -> i64 {
        series
            .filter_map(|i| self.series.get(i).and_then(Option::as_ref))
            .map(|s| s.fine.oldest().saturating_mul(self.layout.wf))
            .max()
            .unwrap_or(i64::MIN)
    }

    /// The span of a query; `zone_start` gives [`zone_start`](Self::zone_start) of the
    /// queried series, called only when the window is short enough to need it and starts
    /// before [`newest_zone_start`](Self::newest_zone_start) (so the common query, whose
    /// series hold no events ahead of `now + grace`, walks its series once).
    fn span(
        &self,
        window: Duration,
        now: Timestamp,
        zone_start: impl FnOnce() -> i64,
    ) -> Result<Span, WindowError> {
        let l = &self.layout;
        let ms = window.as_nanos().div_ceil(1_000_000);
        if ms == 0 {
            return Err(WindowError::EmptyWindow);
        }
        if ms > l.retention as u128 {
            return Err(WindowError::WindowTooLong {
                window_ms: ms,
                retention_ms: l.retention as u64,
            });
        }
        // ms <= retention <= 2^50: fits.
        let w = (ms as i64 + l.wf - 1) / l.wf * l.wf;
        let now = now
            .as_millis()
            .clamp(-MAX_ABS_EVENT_TIME_MS, MAX_ABS_EVENT_TIME_MS);
        let end = (now.div_euclid(l.wf) + 1) * l.wf;
        let mut start = end - w;
        if l.rollup
            && (w > l.fine_span || (start < self.newest_zone_start() && start < zone_start()))
        {
            start = start.div_euclid(l.wc) * l.wc;
        }
        Ok(Span { start, end })
    }

    /// Aggregates `agg` over the series of `metric` matching `filter`, over the window of
    /// length `window` ending at `now` (see [`window_span`](Self::window_span) for the exact
    /// range).
    ///
    /// Count, sum, avg, min and max cost O(log buckets) per matched series, and a sum or avg
    /// depends only on the values inside the window (see the crate docs); a percentile merges histograms of the series (never averages
    /// percentiles) and is bounded by the number of buckets and histogram bins, not events.
    ///
    /// Percentiles use the nearest-rank convention: the value of rank `⌈q·n⌉` among the `n`
    /// values of the window, reported within `2^-(P+1)` relative error (clamped to the
    /// window's exact min and max).
    ///
    /// # Errors
    ///
    /// [`WindowError::EmptyWindow`], [`WindowError::WindowTooLong`], and
    /// [`WindowError::PercentilesDisabled`] for a percentile when they are not tracked.
    pub fn query(
        &self,
        metric: &str,
        filter: &TagFilter,
        agg: Aggregation,
        window: Duration,
        now: Timestamp,
    ) -> Result<QueryResult, WindowError> {
        let span = self.prepare(agg, window, now, || {
            self.zone_start(self.matched(metric, filter).map(SeriesId::index))
        })?;
        let mut part = Partial::default();
        for id in self.matched(metric, filter) {
            self.add_series(id, agg, span, &mut part);
        }
        Ok(self.finish(agg, span, &part))
    }

    /// Like [`query`](Self::query) for one series.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query), and [`WindowError::UnknownSeries`].
    pub fn query_series(
        &self,
        id: SeriesId,
        agg: Aggregation,
        window: Duration,
        now: Timestamp,
    ) -> Result<QueryResult, WindowError> {
        if id.index() >= self.series.len() {
            return Err(WindowError::UnknownSeries { id });
        }
        let span = self.prepare(agg, window, now, || {
            self.zone_start([id.index()].into_iter())
        })?;
        let mut part = Partial::default();
        self.add_series(id, agg, span, &mut part);
        Ok(self.finish(agg, span, &part))
    }

    /// Like [`query`](Self::query), with one result per distinct value of tag `tag_key`
    /// (e.g. one per region), sorted by that value. Series without the tag are left out.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    pub fn group_by(
        &self,
        metric: &str,
        filter: &TagFilter,
        tag_key: &str,
        agg: Aggregation,
        window: Duration,
        now: Timestamp,
    ) -> Result<Vec<(String, QueryResult)>, WindowError> {
        let grouped = || {
            self.matched(metric, filter).filter_map(move |id| {
                let value = self.interner.key(id)?.tag(tag_key)?;
                Some((id, value))
            })
        };
        let span = self.prepare(agg, window, now, || {
            self.zone_start(grouped().map(|(id, _)| id.index()))
        })?;
        let mut groups: BTreeMap<&str, Partial<'_>> = BTreeMap::new();
        for (id, value) in grouped() {
            self.add_series(id, agg, span, groups.entry(value).or_default());
        }
        Ok(groups
            .into_iter()
            .map(|(k, part)| (k.to_owned(), self.finish(agg, span, &part)))
            .collect())
    }

    /// The merged histogram of the window's values over the matching series, e.g. for a
    /// heatmap or to merge with another node's.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); [`WindowError::PercentilesDisabled`] when histograms are
    /// not tracked.
    pub fn query_histogram(
        &self,
        metric: &str,
        filter: &TagFilter,
        window: Duration,
        now: Timestamp,
    ) -> Result<LogHistogram, WindowError> {
        let Some(bins) = self.layout.bins else {
            return Err(WindowError::PercentilesDisabled);
        };
        let agg = Aggregation::Percentile(rtdash_core::Percentile::P50);
        let span = self.prepare(agg, window, now, || {
            self.zone_start(self.matched(metric, filter).map(SeriesId::index))
        })?;
        let mut part = Partial::default();
        for id in self.matched(metric, filter) {
            self.add_series(id, agg, span, &mut part);
        }
        let mut dense = DenseBins::new(bins);
        materialize(&mut dense, &part.terms);
        dense.trim();
        Ok(LogHistogram::from_dense(dense, part.acc.count))
    }

    /// The series of `metric` that match `filter`.
    fn matched<'a>(
        &'a self,
        metric: &str,
        filter: &'a TagFilter,
    ) -> impl Iterator<Item = SeriesId> + 'a {
        self.interner
            .series_of_metric(metric)
            .iter()
            .copied()
            .filter(|&id| self.interner.key(id).is_some_and(|k| filter.matches(k)))
    }

    fn prepare(
        &self,
        agg: Aggregation,
        window: Duration,
        now: Timestamp,
        zone_start: impl FnOnce() -> i64,
    ) -> Result<Span, WindowError> {
        if agg.needs_histogram() && self.layout.bins.is_none() {
            return Err(WindowError::PercentilesDisabled);
        }
        self.span(window, now, zone_start)
    }

    fn add_series<'a>(
        &'a self,
        id: SeriesId,
        agg: Aggregation,
        span: Span,
        part: &mut Partial<'a>,
    ) {
        part.series += 1;
        if let Some(Some(s)) = self.series.get(id.index()) {
            let want_min_max = !matches!(
                agg,
                Aggregation::Count | Aggregation::Sum | Aggregation::Avg
            );
            let terms = agg.needs_histogram().then_some(&mut part.terms);
            s.query(&self.layout, span, want_min_max, terms, &mut part.acc);
        }
    }

    fn finish(&self, agg: Aggregation, span: Span, part: &Partial<'_>) -> QueryResult {
        let acc = &part.acc;
        let n = acc.count;
        // The one empty-window rule (see `Aggregation`): count and sum are 0 over no
        // events, the others have no value.
        let value = match agg {
            Aggregation::Count => Some(n as f64),
            Aggregation::Sum if n == 0 => Some(0.0),
            _ if n == 0 => None,
            Aggregation::Sum => Some(acc.sum),
            Aggregation::Avg => Some(acc.sum / n as f64),
            Aggregation::Min => Some(acc.min),
            Aggregation::Max => Some(acc.max),
            Aggregation::Percentile(p) => self.percentile(p, n, acc, &part.terms),
        };
        QueryResult {
            value,
            count: n,
            last_event_time: acc.last_event.map(Timestamp::from_millis),
            window_start: Timestamp::from_millis(span.start),
            window_end: Timestamp::from_millis(span.end),
            series: part.series,
        }
    }

    fn percentile(
        &self,
        p: rtdash_core::Percentile,
        n: u64,
        acc: &Acc,
        terms: &[Term<'_>],
    ) -> Option<f64> {
        let bins = self.layout.bins?;
        let rank = p.nearest_rank(n);
        let bin = match terms {
            [Term::AddDense(total)] => total.bin_of_rank(rank),
            _ => {
                let mut dense = DenseBins::new(bins);
                materialize(&mut dense, terms);
                dense.bin_of_rank(rank)
            }
        }?;
        // Never outside the exact extremes (and never a panic, unlike `clamp`).
        Some(bins.value(bin).max(acc.min).min(acc.max))
    }

    // ---- for the checkpoint module ----

    pub(crate) fn parts(&self) -> StoreParts<'_> {
        StoreParts {
            interner: &self.interner,
            series: &self.series,
            max_seen: (self.max_seen != i64::MIN).then_some(self.max_seen),
            late: &self.late,
            late_total: self.late_total,
            late_dropped: self.late_dropped,
            accepted: self.accepted,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        config: WindowConfig,
        layout: Layout,
        interner: SeriesInterner,
        series: Vec<Option<Series>>,
        max_seen: Option<i64>,
        late: VecDeque<LateSample>,
        counters: (u64, u64, u64),
    ) -> Self {
        Self {
            config,
            layout,
            interner,
            series,
            max_seen: max_seen.unwrap_or(i64::MIN),
            late,
            late_total: counters.0,
            late_dropped: counters.1,
            accepted: counters.2,
        }
    }
}

/// Borrowed state for checkpointing.
pub(crate) struct StoreParts<'a> {
    pub(crate) interner: &'a SeriesInterner,
    pub(crate) series: &'a [Option<Series>],
    pub(crate) max_seen: Option<i64>,
    pub(crate) late: &'a VecDeque<LateSample>,
    pub(crate) late_total: u64,
    pub(crate) late_dropped: u64,
    pub(crate) accepted: u64,
}

#[derive(Debug, Default)]
struct Partial<'a> {
    acc: Acc,
    terms: Vec<Term<'a>>,
    series: usize,
}

fn materialize(dense: &mut DenseBins, terms: &[Term<'_>]) {
    for t in terms {
        match t {
            Term::AddDense(d) => dense.add_dense(d),
            Term::Add(b) => dense.add_bucket(b),
            Term::Sub(b) => dense.sub_bucket(b),
        }
    }
}

fn series_error(e: CoreError) -> WindowError {
    match e {
        CoreError::TooManySeries { limit, series } => WindowError::TooManySeries { limit, series },
        other => WindowError::InvalidSeries {
            reason: other.to_string(),
        },
    }
}
