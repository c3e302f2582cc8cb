//! [`WindowConfig`] and the bucket layout derived from it.

use std::time::Duration;

use crate::error::WindowError;
use crate::sketch::{Bins, check_precision};

/// Most buckets (fine and roll-up together) one series may hold; keeps a configuration
/// mistake such as 1 ms buckets over a day from allocating gigabytes per series.
pub const MAX_BUCKETS_PER_SERIES: usize = 1 << 20;

/// The coarser roll-up tier for long windows.
///
/// Buckets older than [`fine_span`](Self::fine_span) (plus the grace period) are merged into
/// buckets of [`width`](Self::width). A window longer than `fine_span` therefore starts on a
/// multiple of `width` (it is extended back to the previous one), so it covers whole roll-up
/// buckets and stays exact for count and sum. Windows up to `fine_span` keep the granularity
/// of [`WindowConfig::bucket_width`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rollup {
    /// Width of a roll-up bucket; a multiple of the bucket width, larger than it, and a divisor
    /// of the retention. Default 1 min.
    pub width: Duration,
    /// Longest window served from fine buckets; a multiple of the bucket width, shorter than
    /// the retention. Default 5 min.
    pub fine_span: Duration,
}

impl Default for Rollup {
    fn default() -> Self {
        Self {
            width: Duration::from_secs(60),
            fine_span: Duration::from_secs(300),
        }
    }
}

impl Rollup {
    /// A roll-up tier of buckets `width` wide serving windows longer than `fine_span`.
    #[must_use]
    pub fn new(width: Duration, fine_span: Duration) -> Self {
        Self { width, fine_span }
    }
}

/// Configuration of a [`WindowStore`](crate::WindowStore).
///
/// Every duration is whole milliseconds (event time has millisecond resolution).
///
/// # Examples
///
/// ```
/// use rtdash_window::{Rollup, WindowConfig};
/// use std::time::Duration;
///
/// let config = WindowConfig::default()
///     .with_bucket_width(Duration::from_millis(500))
///     .with_retention(Duration::from_secs(15 * 60))
///     .with_grace(Duration::from_secs(10))
///     .with_rollup(Some(Rollup::new(Duration::from_secs(30), Duration::from_secs(120))))
///     .with_percentile_precision(8);
/// assert!(config.validate().is_ok());
/// assert!(config.with_bucket_width(Duration::ZERO).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WindowConfig {
    /// Width of a fine time bucket. Default 1 s. Smaller buckets give finer window edges and
    /// cost memory: every series holds `(fine_span + grace) / bucket_width` of them.
    pub bucket_width: Duration,
    /// Longest window that can be queried; data older than this (plus one roll-up bucket and
    /// the grace period) is dropped. A multiple of the bucket width. Default 1 h.
    pub retention: Duration,
    /// How far behind its series' newest event time an event may be and still count: an
    /// event is *late* iff `event_time < newest event time of its series - grace`. Late events
    /// go to the side channel ([`WindowStore::drain_late`](crate::WindowStore::drain_late)). Default 30 s;
    /// at most the retention.
    pub grace: Duration,
    /// The roll-up tier for long windows, or `None` to keep fine buckets for the whole
    /// retention. Default `Some(Rollup::default())`: 1 min buckets beyond 5 min.
    pub rollup: Option<Rollup>,
    /// Whether values are kept in histograms so percentiles can be queried. Default `true`.
    /// Without them a bucket is 32 bytes and ingest is about twice as fast.
    pub percentiles: bool,
    /// Mantissa bits kept per histogram bin, `1..=12`: relative error `2^-(P+1)` (7 → 0.39 %,
    /// 10 → 0.049 %). Each extra bit doubles histogram memory. Default 7.
    pub percentile_precision: u8,
    /// Most late events held for [`drain_late`](crate::WindowStore::drain_late); beyond it
    /// late events are counted as dropped. Default 10,000.
    pub late_buffer_capacity: usize,
    /// Most series the store accepts (a guard against tags with unbounded values).
    /// Default 100,000.
    pub max_series: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            bucket_width: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            grace: Duration::from_secs(30),
            rollup: Some(Rollup::default()),
            percentiles: true,
            percentile_precision: 7,
            late_buffer_capacity: 10_000,
            max_series: 100_000,
        }
    }
}

impl WindowConfig {
    /// Sets [`bucket_width`](Self::bucket_width).
    #[must_use]
    pub fn with_bucket_width(mut self, width: Duration) -> Self {
        self.bucket_width = width;
        self
    }

    /// Sets [`retention`](Self::retention).
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`grace`](Self::grace).
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`rollup`](Self::rollup).
    #[must_use]
    pub fn with_rollup(mut self, rollup: Option<Rollup>) -> Self {
        self.rollup = rollup;
        self
    }

    /// Sets [`percentiles`](Self::percentiles).
    #[must_use]
    pub fn with_percentiles(mut self, track: bool) -> Self {
        self.percentiles = track;
        self
    }

    /// Sets [`percentile_precision`](Self::percentile_precision).
    #[must_use]
    pub fn with_percentile_precision(mut self, bits: u8) -> Self {
        self.percentile_precision = bits;
        self
    }

    /// Sets [`late_buffer_capacity`](Self::late_buffer_capacity).
    #[must_use]
    pub fn with_late_buffer_capacity(mut self, capacity: usize) -> Self {
        self.late_buffer_capacity = capacity;
        self
    }

    /// Sets [`max_series`](Self::max_series).
    #[must_use]
    pub fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }

    /// Checks every rule.
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidConfig`] naming the first field that breaks a rule:
    ///
    /// - `bucket_width`: at least 1 ms, whole milliseconds;
    /// - `retention`: whole milliseconds, a positive multiple of the bucket width (and of the
    ///   roll-up width);
    /// - `grace`: whole milliseconds, at most the retention;
    /// - `rollup.width`: a multiple of the bucket width, larger than it;
    /// - `rollup.fine_span`: a positive multiple of the bucket width, shorter than the
    ///   retention;
    /// - `percentile_precision`: `1..=12` (checked even when percentiles are off);
    /// - `max_series`: at least 1, at most 2^32;
    /// - `bucket_width` again: at most [`MAX_BUCKETS_PER_SERIES`] buckets per series.
    pub fn validate(&self) -> Result<(), WindowError> {
        Layout::new(self).map(|_| ())
    }
}

fn whole_ms(field: &'static str, d: Duration) -> Result<i64, WindowError> {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(WindowError::InvalidConfig {
            field,
            reason: format!("{d:?} is not a whole number of milliseconds"),
        });
    }
    // Keep every derived product well inside i64.
    i64::try_from(d.as_millis())
        .ok()
        .filter(|&ms| ms <= 1 << 50)
        .ok_or_else(|| WindowError::InvalidConfig {
            field,
            reason: format!("{d:?} is too long; the limit is 2^50 ms (about 35,000 years)"),
        })
}

fn bad(field: &'static str, reason: String) -> WindowError {
    WindowError::InvalidConfig { field, reason }
}

/// The validated configuration in milliseconds, with ring sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Fine bucket width, ms (>= 1).
    pub(crate) wf: i64,
    /// Roll-up bucket width, ms (a multiple of `wf`), or `wf` without roll-up.
    pub(crate) wc: i64,
    /// `wc / wf`.
    pub(crate) k: i64,
    pub(crate) retention: i64,
    pub(crate) grace: i64,
    /// Longest window served at fine granularity (= retention without roll-up).
    pub(crate) fine_span: i64,
    pub(crate) rollup: bool,
    pub(crate) fine_slots: usize,
    pub(crate) coarse_slots: usize,
    pub(crate) bins: Option<Bins>,
    pub(crate) late_capacity: usize,
    pub(crate) max_series: usize,
    /// Whether roll-up buckets are being handed out (`take_rollups` was called): complete
    /// buckets that leave the roll-up ring before they were taken are then kept for it.
    pub(crate) exporting: bool,
}

impl Layout {
    pub(crate) fn new(c: &WindowConfig) -> Result<Self, WindowError> {
        let wf = whole_ms("bucket_width", c.bucket_width)?;
        if wf < 1 {
            return Err(bad("bucket_width", "must be at least 1 ms".into()));
        }
        let retention = whole_ms("retention", c.retention)?;
        if retention < wf || retention % wf != 0 {
            return Err(bad(
                "retention",
                format!("{retention} ms must be a positive multiple of the bucket width ({wf} ms)"),
            ));
        }
        let grace = whole_ms("grace", c.grace)?;
        if grace > retention {
            return Err(bad(
                "grace",
                format!("{grace} ms is longer than the retention ({retention} ms)"),
            ));
        }
        let grace_buckets = (grace + wf - 1) / wf;
        let (wc, fine_span, fine_slots, coarse_slots) = match c.rollup {
            Some(r) => {
                let wc = whole_ms("rollup.width", r.width)?;
                if wc <= wf || wc % wf != 0 {
                    return Err(bad(
                        "rollup.width",
                        format!(
                            "{wc} ms must be a multiple of the bucket width ({wf} ms) and larger \
                             than it; use `rollup: None` for no roll-up"
                        ),
                    ));
                }
                if retention % wc != 0 {
                    return Err(bad(
                        "retention",
                        format!("{retention} ms must be a multiple of the roll-up width ({wc} ms)"),
                    ));
                }
                let fine_span = whole_ms("rollup.fine_span", r.fine_span)?;
                if fine_span < wf || fine_span % wf != 0 || fine_span >= retention {
                    return Err(bad(
                        "rollup.fine_span",
                        format!(
                            "{fine_span} ms must be a positive multiple of the bucket width \
                             ({wf} ms) and shorter than the retention ({retention} ms)"
                        ),
                    ));
                }
                // Fine ring: every non-late event lands in it, and it serves every window up
                // to `fine_span` queried at or after the watermark. See `Series` docs.
                let fine = grace_buckets + fine_span / wf + 2;
                let coarse = retention / wc + 2;
                (wc, fine_span, fine, coarse)
            }
            None => (wf, retention, grace_buckets + retention / wf + 2, 0),
        };
        let slots = fine_slots + coarse_slots;
        if slots > MAX_BUCKETS_PER_SERIES as i64 {
            return Err(bad(
                "bucket_width",
                format!(
                    "{slots} buckets per series (retention, fine span and grace over a bucket \
                     width of {wf} ms) exceed the limit of {MAX_BUCKETS_PER_SERIES}; widen the \
                     buckets or add a roll-up"
                ),
            ));
        }
        check_precision(c.percentile_precision)?;
        if c.max_series == 0 || c.max_series > 1 << 32 {
            return Err(bad(
                "max_series",
                format!("{} must be between 1 and 2^32", c.max_series),
            ));
        }
        Ok(Self {
            wf,
            wc,
            k: wc / wf,
            retention,
            grace,
            fine_span,
            rollup: c.rollup.is_some(),
            fine_slots: fine_slots as usize,
            coarse_slots: coarse_slots as usize,
            bins: c.percentiles.then(|| Bins::new(c.percentile_precision)),
            late_capacity: c.late_buffer_capacity,
            max_series: c.max_series,
            exporting: false,
        })
    }
}
