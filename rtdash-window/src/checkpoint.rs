//! [`Checkpoint`]: the whole store as a serde value, with the caller's source offset.

use std::collections::VecDeque;
use std::time::Duration;

use rtdash_core::{SeriesId, SeriesInterner, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::{Layout, Rollup, WindowConfig};
use crate::error::WindowError;
use crate::ring::{BucketState, Ring};
use crate::series::Series;
use crate::sketch::{Bins, BucketBins};
use crate::store::{LateSample, MAX_ABS_EVENT_TIME_MS, WindowStore};

/// Version 2: buckets hold their own count and sum (version 1 held running prefixes) and
/// lateness is per series (from each series' newest event time).
const FORMAT: &str = "rtdash-window/checkpoint/2";

/// A snapshot of a whole [`WindowStore`] (configuration, series keys and ids, buckets,
/// per-series newest event times and so watermarks, late buffer and counters) together with a caller-supplied source offset, e.g.
/// the id of the last Redis Stream entry applied.
///
/// Made by [`WindowStore::checkpoint`], turned back into a store by
/// [`WindowStore::restore`], which answers every query bit-for-bit as the original did. Any
/// serde format works: floating-point state is stored as IEEE-754 bit patterns (`u64`), so
/// no float is ever re-parsed. Only non-empty buckets are stored.
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, TagFilter, Timestamp};
/// use rtdash_window::{Checkpoint, WindowConfig, WindowStore};
/// use std::time::Duration;
///
/// let mut store = WindowStore::new(WindowConfig::default())?;
/// let id = store.series_id("cpu", [("host", "a")])?;
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// store.record(id, now, 0.25)?;
///
/// let json = serde_json::to_string(&store.checkpoint("stream-offset-42")).unwrap();
/// let checkpoint: Checkpoint<String> = serde_json::from_str(&json).unwrap();
/// let (restored, offset) = WindowStore::restore(checkpoint)?;
/// assert_eq!(offset, "stream-offset-42");
/// let q = |s: &WindowStore| s.query("cpu", &TagFilter::new(), Aggregation::Avg, Duration::from_secs(60), now);
/// assert_eq!(q(&restored)?, q(&store)?);
/// # Ok::<(), rtdash_window::WindowError>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint<O = String> {
    format: String,
    source_offset: O,
    config: ConfigRepr,
    series_keys: SeriesInterner,
    max_event_time: Option<i64>,
    accepted: u64,
    late_total: u64,
    late_dropped: u64,
    late: Vec<LateRepr>,
    series: Vec<Option<SeriesRepr>>,
}

impl<O> Checkpoint<O> {
    /// The source offset stored beside the state.
    pub fn source_offset(&self) -> &O {
        &self.source_offset
    }

    /// The window configuration the checkpoint was taken with (and that
    /// [`WindowStore::restore`] will build). Compare it with your own before restoring a
    /// checkpoint you do not fully trust: it decides how much memory the restore allocates.
    #[must_use]
    pub fn config(&self) -> WindowConfig {
        self.config.to_config()
    }

    /// Number of series in the checkpoint.
    #[must_use]
    pub fn series_count(&self) -> usize {
        self.series_keys.len()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigRepr {
    bucket_width_ms: u64,
    retention_ms: u64,
    grace_ms: u64,
    rollup: Option<RollupRepr>,
    percentiles: bool,
    percentile_precision: u8,
    late_buffer_capacity: usize,
    max_series: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollupRepr {
    width_ms: u64,
    fine_span_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LateRepr {
    series: SeriesId,
    event_time: i64,
    value: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesRepr {
    last_event_time: i64,
    sealed_below: i64,
    fine: RingRepr,
    coarse: Option<RingRepr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingRepr {
    head: i64,
    buckets: Vec<BucketRepr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketRepr {
    index: i64,
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bins: Vec<(u32, u32)>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ConfigRepr {
    fn of(c: &WindowConfig) -> Self {
        Self {
            bucket_width_ms: ms(c.bucket_width),
            retention_ms: ms(c.retention),
            grace_ms: ms(c.grace),
            rollup: c.rollup.map(|r| RollupRepr {
                width_ms: ms(r.width),
                fine_span_ms: ms(r.fine_span),
            }),
            percentiles: c.percentiles,
            percentile_precision: c.percentile_precision,
            late_buffer_capacity: c.late_buffer_capacity,
            max_series: c.max_series,
        }
    }

    fn to_config(&self) -> WindowConfig {
        WindowConfig::default()
            .with_bucket_width(Duration::from_millis(self.bucket_width_ms))
            .with_retention(Duration::from_millis(self.retention_ms))
            .with_grace(Duration::from_millis(self.grace_ms))
            .with_rollup(self.rollup.as_ref().map(|r| {
                Rollup::new(
                    Duration::from_millis(r.width_ms),
                    Duration::from_millis(r.fine_span_ms),
                )
            }))
            .with_percentiles(self.percentiles)
            .with_percentile_precision(self.percentile_precision)
            .with_late_buffer_capacity(self.late_buffer_capacity)
            .with_max_series(self.max_series)
    }
}

fn ring_repr(ring: &Ring) -> RingRepr {
    RingRepr {
        head: ring.head(),
        buckets: ring
            .non_empty()
            .map(|b| BucketRepr {
                index: b.index,
                count: b.count,
                sum: b.sum.to_bits(),
                min: b.min.to_bits(),
                max: b.max.to_bits(),
                bins: canonical_bins(&b.bins),
            })
            .collect(),
    }
}

/// A bucket's bins sorted by bin, one entry per bin (split only past `u32::MAX`), so equal
/// states give equal checkpoints whatever the hash-table layout.
fn canonical_bins(bins: &BucketBins) -> Vec<(u32, u32)> {
    let mut all: Vec<(u32, u32)> = bins.iter().collect();
    all.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(all.len());
    for (bin, mut count) in all {
        if let Some(last) = out.last_mut()
            && last.0 == bin
        {
            let room = (u32::MAX - last.1).min(count);
            last.1 += room;
            count -= room;
        }
        if count > 0 {
            out.push((bin, count));
        }
    }
    out
}

impl WindowStore {
    /// A snapshot of the whole store with `source_offset` stored beside it (anything
    /// serializable: a stream id, a byte offset, a struct).
    ///
    /// Take it between two events of the source; after a crash, [`restore`](Self::restore)
    /// it and replay the source from the offset.
    pub fn checkpoint<O>(&self, source_offset: O) -> Checkpoint<O> {
        let parts = self.parts();
        Checkpoint {
            format: FORMAT.to_owned(),
            source_offset,
            config: ConfigRepr::of(self.config()),
            series_keys: parts.interner.clone(),
            max_event_time: parts.max_seen,
            accepted: parts.accepted,
            late_total: parts.late_total,
            late_dropped: parts.late_dropped,
            late: parts
                .late
                .iter()
                .map(|e| LateRepr {
                    series: e.series,
                    event_time: e.event_time.as_millis(),
                    value: e.value.to_bits(),
                })
                .collect(),
            series: parts
                .series
                .iter()
                .map(|s| {
                    s.as_ref().map(|s| SeriesRepr {
                        last_event_time: s.last_event,
                        sealed_below: s.sealed_below,
                        fine: ring_repr(&s.fine),
                        coarse: s.coarse.as_ref().map(ring_repr),
                    })
                })
                .collect(),
        }
    }

    /// Rebuilds a store from a checkpoint and hands back its source offset. The store
    /// answers every query exactly as the one checkpointed did, and evolves identically
    /// under the same further input.
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidCheckpoint`] when the checkpoint is of another format version,
    /// holds an invalid configuration, or its state is inconsistent (the message gives the
    /// path of the first problem, e.g. `series[3].fine.buckets[2]`).
    pub fn restore<O>(checkpoint: Checkpoint<O>) -> Result<(Self, O), WindowError> {
        let cp = checkpoint;
        if cp.format != FORMAT {
            return Err(invalid(format!(
                "format is `{}`, expected `{FORMAT}`",
                clip(&cp.format)
            )));
        }
        let config = cp.config.to_config();
        let layout = Layout::new(&config).map_err(|e| invalid(format!("config: {e}")))?;
        let mut interner = cp.series_keys;
        if interner.len() > layout.max_series {
            return Err(invalid(format!(
                "holds {} series, more than max_series ({})",
                interner.len(),
                layout.max_series
            )));
        }
        interner.set_max_series(layout.max_series);
        if cp.series.len() != interner.len() {
            return Err(invalid(format!(
                "series: {} entries for {} series keys",
                cp.series.len(),
                interner.len()
            )));
        }
        let max_seen = match cp.max_event_time {
            Some(m) if !in_range(m) => {
                return Err(invalid(format!("max_event_time: {m} ms is out of range")));
            }
            m => m,
        };
        if cp.late_dropped > cp.late_total {
            return Err(invalid(format!(
                "late_dropped ({}) exceeds late_total ({})",
                cp.late_dropped, cp.late_total
            )));
        }
        if cp.late.len() > layout.late_capacity {
            return Err(invalid(format!(
                "late: {} buffered events exceed late_buffer_capacity ({})",
                cp.late.len(),
                layout.late_capacity
            )));
        }
        let mut late = VecDeque::with_capacity(cp.late.len());
        for (i, e) in cp.late.iter().enumerate() {
            let value = f64::from_bits(e.value);
            if e.series.index() >= interner.len() || !value.is_finite() || !in_range(e.event_time) {
                return Err(invalid(format!(
                    "late[{i}]: unknown series, non-finite value or time out of range"
                )));
            }
            late.push_back(LateSample {
                series: e.series,
                event_time: Timestamp::from_millis(e.event_time),
                value,
            });
        }
        let mut series = Vec::with_capacity(cp.series.len());
        for (i, s) in cp.series.into_iter().enumerate() {
            let restored = match s {
                None => None,
                Some(s) => Some(
                    restore_series(&layout, s, max_seen)
                        .map_err(|e| invalid(format!("series[{i}].{e}")))?,
                ),
            };
            series.push(restored);
        }
        let store = Self::from_parts(
            config,
            layout,
            interner,
            series,
            max_seen,
            late,
            (cp.late_total, cp.late_dropped, cp.accepted),
        );
        Ok((store, cp.source_offset))
    }
}

fn invalid(reason: String) -> WindowError {
    WindowError::InvalidCheckpoint { reason }
}

fn clip(s: &str) -> &str {
    &s[..s.floor_char_boundary(64)]
}

fn in_range(ms: i64) -> bool {
    (-MAX_ABS_EVENT_TIME_MS..=MAX_ABS_EVENT_TIME_MS).contains(&ms)
}

fn restore_series(layout: &Layout, s: SeriesRepr, max_seen: Option<i64>) -> Result<Series, String> {
    let Some(max_seen) = max_seen else {
        return Err("fine: series data without max_event_time".into());
    };
    if !in_range(s.last_event_time) || s.last_event_time > max_seen {
        return Err(format!(
            "last_event_time: {} ms is out of range or after max_event_time",
            s.last_event_time
        ));
    }
    let head = s.last_event_time.div_euclid(layout.wf);
    if s.fine.head != head {
        return Err(format!(
            "fine.head: {} is not the bucket of last_event_time ({head})",
            s.fine.head
        ));
    }
    let fine = restore_ring(layout, layout.fine_slots, s.fine).map_err(|e| format!("fine.{e}"))?;
    let coarse = match (layout.rollup, s.coarse) {
        (false, None) => None,
        (true, Some(c)) => {
            let limit = (fine.oldest() - 1).div_euclid(layout.k);
            if c.head > limit {
                return Err(format!(
                    "coarse.head: {} overlaps the fine buckets (at most {limit})",
                    c.head
                ));
            }
            if c.head < -MAX_ABS_EVENT_TIME_MS {
                return Err("coarse.head: out of range".into());
            }
            Some(restore_ring(layout, layout.coarse_slots, c).map_err(|e| format!("coarse.{e}"))?)
        }
        (true, None) => return Err("coarse: missing, but the config has a roll-up".into()),
        (false, Some(_)) => return Err("coarse: present, but the config has no roll-up".into()),
    };
    Ok(Series::from_parts(
        layout,
        fine,
        coarse,
        s.sealed_below,
        s.last_event_time,
    ))
}

fn restore_ring(layout: &Layout, n: usize, r: RingRepr) -> Result<Ring, String> {
    let mut prev_index = r.head - (n as i64 - 1) - 1;
    let mut buckets = Vec::with_capacity(r.buckets.len());
    for (i, b) in r.buckets.into_iter().enumerate() {
        let at = |what: &str| format!("buckets[{i}]: {what}");
        if b.index <= prev_index || b.index > r.head {
            return Err(at("index out of order or outside the ring"));
        }
        if b.count == 0 {
            return Err(at("count is 0 (an empty bucket is not stored)"));
        }
        let (sum, min, max) = (
            f64::from_bits(b.sum),
            f64::from_bits(b.min),
            f64::from_bits(b.max),
        );
        // A sum may be ±infinity (values near f64::MAX add up past it) or, in a roll-up
        // bucket, NaN (fine buckets of +∞ and −∞ merged): it is kept as it is.
        if !min.is_finite() || !max.is_finite() || min > max {
            return Err(at("min/max are not finite with min <= max"));
        }
        if b.count == 1 && !(sum == min && min == max) {
            return Err(at("a bucket of one value must have sum = min = max"));
        }
        let bins = restore_bins(layout.bins, &b.bins, b.count).map_err(|e| at(&e))?;
        buckets.push(BucketState {
            index: b.index,
            count: b.count,
            sum,
            min,
            max,
            bins,
        });
        prev_index = b.index;
    }
    Ok(Ring::restore(n, r.head, layout.bins.is_some(), buckets))
}

fn restore_bins(
    bins: Option<Bins>,
    entries: &[(u32, u32)],
    own: u64,
) -> Result<BucketBins, String> {
    let mut out = BucketBins::default();
    let Some(bins) = bins else {
        return if entries.is_empty() {
            Ok(out)
        } else {
            Err("histogram bins present, but the config tracks no percentiles".into())
        };
    };
    let mut total = 0u64;
    for &(bin, count) in entries {
        if !bins.is_valid(bin) || count == 0 {
            return Err(format!("histogram bin {bin} is invalid or has count 0"));
        }
        total = total
            .checked_add(u64::from(count))
            .ok_or("histogram counts overflow u64")?;
        out.add(bin, count);
    }
    if total != own {
        return Err(format!(
            "histogram holds {total} values, the bucket counts {own}"
        ));
    }
    out.pack();
    Ok(out)
}
