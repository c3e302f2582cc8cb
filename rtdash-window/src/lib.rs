//! Sliding-window aggregation of metric series in event time: count, sum, avg, min, max and
//! percentiles over any window up to the retention, from pre-aggregated time buckets, with
//! no async runtime.
//!
//! # Concepts
//!
//! ## Buckets
//!
//! Each series keeps a ring of fine time buckets ([`WindowConfig::bucket_width`], default
//! 1 s). A bucket holds partial aggregates — count, sum, min, max and a histogram of values —
//! never raw events. Over the ring sits a segment tree (a binary tree of bucket aggregates):
//! count, sum, avg, min and max of *any* range of buckets combine at most `2·log2(n)` tree
//! nodes, about 30 for a 1 h window, whatever the window length or event rate. Percentiles
//! merge bucket histograms (or take the series' running histogram minus the buckets outside
//! the window, whichever is cheaper: histogram counts are integers, so that subtraction is
//! exact), so their cost is bounded by the number of buckets and bins, never by the number of
//! events.
//!
//! ## Sums depend only on the window's own values
//!
//! A window's sum is a float sum of the bucket sums *inside* the window, never a difference
//! of two running totals: with running totals, one value of 2^53 before the window cancels
//! the small values after it (a sum of eight 1.0 read as 0.0), and one overflow to infinity
//! poisons every later window. Here a value affects only the windows that contain it; the
//! error of a sum is within the usual `(k + log2 n)·ε·Σ|x|` over the window's own values
//! `x` (`k` values summed in a bucket, `n` buckets). A window holding values whose sum
//! overflows reads `±inf` (and a NaN sum, from `+inf` and `-inf` in one roll-up bucket, reads
//! NaN); hosts encode those as `null`. Roll-up buckets and values merged over several series
//! or groups follow the same rule.
//!
//! Why a segment tree and not a two-stack (DABA) sliding aggregate: every widget asks for a
//! window of its own length over the same series, and a two-stack aggregate answers one
//! window only; a tree answers any range in O(log n) with no subtraction. An in-order event
//! writes one leaf (the head bucket's ancestors are brought up to date when the head moves
//! on, and reads take the head bucket directly); an out-of-order one recomputes its leaf's
//! `log2(n)` ancestors from their children. Cost: 32 more bytes per bucket than the prefix
//! sums it replaces. Bucket `b` sits in slot `b mod n`, so the tree's shape, and with it the
//! order of every addition, depends only on the bucket indices: a restored store sums bit
//! for bit as the original.
//!
//! ## Roll-up
//!
//! With the default [`Rollup`], fine buckets are kept for [`Rollup::fine_span`] (5 min) plus
//! the grace period, then merged into roll-up buckets of [`Rollup::width`] (1 min) that are
//! kept for the retention (1 h). A 1 h window thus holds about 60 roll-up histograms and
//! 330 fine ones instead of 3,600. Windows are always whole buckets (a window never cuts a
//! bucket in two), so a window's count is exact and its sum is that of exactly its events:
//!
//! - a window of length `W` queried at `now` ends at the end of the fine bucket holding
//!   `now` and starts `⌈W / bucket_width⌉` buckets earlier;
//! - a window longer than `fine_span` starts instead at the previous multiple of the roll-up
//!   width, so it is up to one roll-up bucket longer than asked (a 1 h window covers 1 h to
//!   1 h 59 s); so does a shorter window that reaches before the fine buckets of a queried
//!   series (a series holds `⌈grace / width⌉ + fine_span / width + 2` fine buckets ending
//!   with the bucket of its newest event, so only a series whose events are more than the
//!   grace period ahead of the query time can cause this).
//!
//! [`WindowStore::window_span`] gives the exact range; every [`QueryResult`] carries it.
//!
//! ## Event time, watermark, grace and late events
//!
//! Time is event time (the producer's timestamp), passed in; nothing here reads a clock.
//! Each series tracks its own newest event time; its **watermark** is that minus
//! [`WindowConfig::grace`] (default 30 s). The rule is exact:
//!
//! > an event is **late** iff `event_time < newest event time of its series - grace`.
//!
//! Why per series and not per store (or per producer): with one store-wide watermark, one
//! producer whose clock runs four minutes fast made every other series' on-time events late.
//! Per series, a fast clock harms only the series it writes, and a series that pauses or lags
//! keeps accepting its own events. Per source would need a source id on every event, and a
//! source writing several series behaves per series anyway; so the series is the unit.
//! ([`WindowStore::watermark`] gives a series' watermark; checkpoints carry every series'
//! newest event time, so watermarks come back after a restore.)
//!
//! An event that is not late updates its bucket in place, in any order. A late event
//! changes no aggregate; it goes to a bounded side buffer that the host drains with
//! [`WindowStore::drain_late`], and when that buffer is full it is counted in
//! [`WindowStats::late_dropped`] — never dropped silently. Since buckets are only retired
//! after the watermark has passed them, a late or very old event can never reach (and
//! corrupt) a retired bucket.
//!
//! ## Percentiles and their error
//!
//! Values go into a log-linear histogram ([`LogHistogram`]): each binade `[2^e, 2^(e+1))` is
//! split into `2^P` bins, `P` = [`WindowConfig::percentile_precision`] (default 7). A
//! percentile uses the nearest-rank convention — the value of rank `⌈q·n⌉` among the `n`
//! values of the window, computed exactly in integers by
//! [`Percentile::nearest_rank`](rtdash_core::Percentile::nearest_rank) (p99.9 of 1000 values
//! is the 999th) — and is reported as the midpoint of its bin, clamped to the exact
//! min and max of the window. The relative error is at most `2^-(P+1)`: **±0.39 %** at
//! `P = 7` (for normal floats; zero is exact). Negative values, zero, tiny and huge values
//! are all handled. Percentiles over several series merge their histograms (exactly: counts
//! add), never average per-series percentiles.
//!
//! Why not `hdrhistogram`: it records `u64` only (values would need scaling and could not
//! be negative) and keeps a dense counts array of several KiB per histogram for a useful
//! range, which, times hundreds of buckets per series and thousands of series, is gigabytes.
//! The histogram here maps a float's bit pattern to its bin with two shifts, stores a bucket
//! as a small hash table while it is open and as a packed list of `(bin, count)` pairs once
//! sealed (8 bytes per distinct bin, nothing when empty), and merges and subtracts exactly.
//!
//! ## Memory
//!
//! Per series, with the default configuration (about 390 buckets: 332 fine, 62 roll-up):
//!
//! - always: 64 bytes per bucket (count, sum, min and max of the bucket, and a tree node of
//!   the same four) ≈ 25 KiB;
//! - with percentiles: 24 bytes of histogram header per bucket, plus 8 bytes per distinct
//!   histogram bin per bucket (a bucket with a single distinct value costs no heap), plus the
//!   running histogram, 1 KiB per binade of values seen.
//!
//! Measured with [`WindowStore::heap_bytes`] after a full hour of log-normal latency-like
//! values (`cargo run --release -p rtdash-window --example memory`):
//!
//! | events/s per series | with percentiles (P = 7) | without |
//! |---:|---:|---:|
//! | 1 | 69 KiB | 24.9 KiB |
//! | 10 | 232 KiB | 24.9 KiB |
//! | 100 | 712 KiB | 25.4 KiB |
//! | 1000 | 1.8 MiB | 25.4 KiB |
//!
//! Histogram memory grows with the number of distinct bins per bucket, which is bounded by
//! the value range and `2^P` per binade: `P = 5` (±1.6 %) takes 336 KiB at 100 events/s.
//! A wider roll-up width or a shorter fine span also cut it.
//!
//! ## Checkpoints
//!
//! [`WindowStore::checkpoint`] snapshots the whole store — series ids, buckets, each
//! series' newest event time (its watermark), late buffer and counters — with a caller-supplied source offset, as a serde
//! value ([`Checkpoint`]); [`WindowStore::restore`] rebuilds a store that answers
//! bit-for-bit the same. Restoring validates the shape and rejects a malformed checkpoint
//! with a clear error.
//!
//! # Example
//!
//! ```
//! use rtdash_core::{Aggregation, MetricEvent, Percentile, TagFilter, Timestamp};
//! use rtdash_window::{Recorded, WindowConfig, WindowStore};
//! use std::time::Duration;
//!
//! let mut store = WindowStore::new(WindowConfig::default())?;
//! let t0 = Timestamp::from_millis(1_700_000_000_000);
//!
//! // By name and tags (the series is added on first sight) ...
//! let event = MetricEvent::new("api.latency", 12.5, t0).with_tag("region", "eu");
//! assert_eq!(store.record_event(&event)?, Recorded::Accepted);
//!
//! // ... or, on the hot path, by a copyable id.
//! let us = store.series_id("api.latency", [("region", "us")])?;
//! for ms in 0..1000 {
//!     store.record(us, t0.saturating_add(Duration::from_millis(ms)), f64::from(ms as u32))?;
//! }
//!
//! let now = t0.saturating_add(Duration::from_secs(1));
//! let p99 = Aggregation::Percentile(Percentile::P99);
//! let all = TagFilter::new();
//! let r = store.query("api.latency", &all, p99, Duration::from_secs(60), now)?;
//! assert_eq!(r.count, 1001);
//! assert!((r.value.unwrap() - 989.0).abs() <= 989.0 * 0.0039);
//!
//! let per_region = store.group_by("api.latency", &all, "region", Aggregation::Count,
//!                                 Duration::from_secs(60), now)?;
//! assert_eq!(per_region[0].0, "eu");
//! assert_eq!(per_region[0].1.value, Some(1.0));
//! # Ok::<(), rtdash_window::WindowError>(())
//! ```

mod checkpoint;
mod config;
mod error;
mod ring;
mod rollup;
mod series;
mod sketch;
mod store;

pub use checkpoint::Checkpoint;
pub use config::{MAX_BUCKETS_PER_SERIES, Rollup, WindowConfig};
pub use error::WindowError;
pub use rollup::RollupBucket;
pub use sketch::LogHistogram;
pub use store::{
    LateSample, MAX_ABS_EVENT_TIME_MS, QueryResult, Recorded, WindowStats, WindowStore,
};
