//! Roll-up buckets handed out for long-range history: [`WindowStore::take_rollups`] gives
//! each complete roll-up bucket of every series once (to be archived, e.g. in PostgreSQL),
//! [`WindowStore::series_rollups`] reads the roll-up buckets a series holds, and
//! [`WindowStore::memory_since`] says from when the store holds a series in full, so that a
//! reader can take older buckets from the archive and newer ones from here with no overlap
//! and no gap.

use std::time::Duration;

use rtdash_core::{SeriesId, Timestamp};

use crate::error::WindowError;
use crate::ring::Agg;
use crate::sketch::{DenseBins, LogHistogram};
use crate::store::WindowStore;

/// One series' aggregate over one roll-up bucket ([`Rollup::width`](crate::Rollup::width),
/// default one minute): everything needed to compute count, sum, avg, min, max and any
/// percentile over a range of such buckets exactly as a live window would.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RollupBucket {
    /// The series (see [`WindowStore::series_key`]).
    pub series: SeriesId,
    /// Start of the bucket, inclusive.
    pub start: Timestamp,
    /// Width of the bucket.
    pub width: Duration,
    /// Number of events (at least one: empty buckets are not handed out).
    pub count: u64,
    /// Sum of the values (`±inf` or NaN when the values overflow, as for live sums).
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// The values' histogram, when the store keeps percentiles.
    pub histogram: Option<LogHistogram>,
}

impl RollupBucket {
    fn new(series: SeriesId, start: i64, width: i64, agg: Agg, hist: Option<DenseBins>) -> Self {
        Self {
            series,
            start: Timestamp::from_millis(start),
            width: Duration::from_millis(u64::try_from(width).unwrap_or(0)),
            count: agg.count,
            sum: agg.sum,
            min: agg.min,
            max: agg.max,
            histogram: hist.map(|d| LogHistogram::from_dense(d, agg.count)),
        }
    }
}

impl WindowStore {
    fn rollup_width(&self) -> Result<i64, WindowError> {
        if self.layout.rollup {
            Ok(self.layout.wc)
        } else {
            Err(WindowError::InvalidConfig {
                field: "rollup",
                reason: "roll-up buckets need a roll-up tier (WindowConfig::rollup is None)"
                    .to_owned(),
            })
        }
    }

    /// Every complete roll-up bucket not handed out before, of every series, oldest first
    /// per series. A roll-up bucket is complete once all its fine buckets have left the fine
    /// ring (about [`Rollup::fine_span`](crate::Rollup::fine_span) plus the grace period
    /// after its end, once later events of the series arrive): no event can change it any
    /// more. Until then the store holds it (see [`memory_since`](Self::memory_since)).
    ///
    /// After a [`restore`](Self::restore) every complete bucket still held is handed out
    /// again (the store does not know which were), so an archive must keep one copy of a
    /// bucket written twice.
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidConfig`] naming `rollup` when the store has no roll-up tier.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rtdash_core::Timestamp;
    /// use rtdash_window::{WindowConfig, WindowStore};
    ///
    /// let mut store = WindowStore::new(WindowConfig::default())?; // 1 min roll-ups after 5 min
    /// let cpu = store.series_id("cpu", [("host", "a")])?;
    /// let t0 = 1_700_000_040_000; // a minute boundary
    /// for s in 0..600 {
    ///     store.record(cpu, Timestamp::from_millis(t0 + s * 1000), 1.0)?;
    /// }
    /// let taken = store.take_rollups()?;
    /// // Ten minutes of events; the first four minutes have left the fine buckets.
    /// assert_eq!(taken.len(), 4);
    /// assert_eq!((taken[0].start.as_millis(), taken[0].count), (t0, 60));
    /// assert!(store.take_rollups()?.is_empty()); // each bucket once
    /// # Ok::<(), rtdash_window::WindowError>(())
    /// ```
    pub fn take_rollups(&mut self) -> Result<Vec<RollupBucket>, WindowError> {
        self.take(false)
    }

    /// Every roll-up bucket not handed out before, complete or not: for a store about to
    /// go away (a host shutting down), so an archive keeps what it would otherwise lose.
    /// A bucket handed out incomplete is not handed out again, even if events still
    /// change it.
    ///
    /// # Errors
    ///
    /// As [`take_rollups`](Self::take_rollups).
    pub fn take_all_rollups(&mut self) -> Result<Vec<RollupBucket>, WindowError> {
        self.take(true)
    }

    fn take(&mut self, all: bool) -> Result<Vec<RollupBucket>, WindowError> {
        let wc = self.rollup_width()?;
        self.layout.exporting = true;
        let bins = self.layout.bins;
        let layout = self.layout;
        let mut out = Vec::new();
        for (i, slot) in self.series.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let complete = s.complete_rollups();
            let end = if all {
                s.fine.head().div_euclid(layout.k) + 1
            } else {
                complete.end
            };
            let from = complete
                .start
                .max(s.exported_below)
                .max(s.since.div_euclid(wc));
            let Some(id) = SeriesId::from_index(i) else {
                continue;
            };
            for e in s.evicted.drain(..) {
                let agg = Agg {
                    count: e.count,
                    sum: e.sum,
                    min: e.min,
                    max: e.max,
                };
                let hist = bins.map(|b| {
                    let mut dense = DenseBins::new(b);
                    dense.add_bucket(&e.bins);
                    dense
                });
                out.push(RollupBucket::new(id, e.index * wc, wc, agg, hist));
            }
            for c in from..end {
                if let Some((agg, hist)) = s.rollup_bucket(&layout, c, bins) {
                    out.push(RollupBucket::new(id, c * wc, wc, agg, hist));
                }
            }
            s.exported_below = s.exported_below.max(end);
        }
        Ok(out)
    }

    /// The roll-up buckets of series `id` that this store holds and that start in
    /// `[from, to)`, oldest first, complete or not (the newest are still filling); empty
    /// buckets are left out. Only buckets from [`memory_since`](Self::memory_since) on are
    /// held in full.
    ///
    /// # Errors
    ///
    /// [`WindowError::UnknownSeries`]; [`WindowError::InvalidConfig`] naming `rollup`
    /// without a roll-up tier.
    pub fn series_rollups(
        &self,
        id: SeriesId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupBucket>, WindowError> {
        let wc = self.rollup_width()?;
        let Some(slot) = self.series.get(id.index()) else {
            return Err(WindowError::UnknownSeries { id });
        };
        let Some(s) = slot else {
            return Ok(Vec::new());
        };
        let first = s.memory_since(&self.layout).div_euclid(wc);
        let head = s.fine.head().div_euclid(self.layout.k);
        let a = from.as_millis().div_euclid(wc).max(first);
        let b = (to.as_millis() - 1).div_euclid(wc).min(head);
        let bins = self.layout.bins;
        Ok((a..=b)
            .filter_map(|c| {
                let (agg, hist) = s.rollup_bucket(&self.layout, c, bins)?;
                Some(RollupBucket::new(id, c * wc, wc, agg, hist))
            })
            .collect())
    }

    /// From when this store holds series `id` in full: every event of the series at or
    /// after this time that was accepted is in the store, and nothing before it is. `None`
    /// when the series is unknown or has no event yet.
    ///
    /// For a series first seen by this store, that is its first event's time less the
    /// grace period (rounded down to a roll-up bucket); once data leaves the retention, the
    /// start of the oldest bucket held. A reader takes buckets before it from an archive
    /// (filled by [`take_rollups`](Self::take_rollups)) and the rest from here.
    #[must_use]
    pub fn memory_since(&self, id: SeriesId) -> Option<Timestamp> {
        let s = self.series.get(id.index())?.as_ref()?;
        Some(Timestamp::from_millis(s.memory_since(&self.layout)))
    }
}
