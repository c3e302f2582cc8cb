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
//! never raw events. Count and sum are stored as prefix sums over the ring, so the count or
//! sum of *any* range of buckets is the difference of two prefixes: a sum/count/avg read is
//! O(1) per series whatever the window length or event rate. Min and max scan the buckets of
//! the window; percentiles merge bucket histograms (or take the series' running histogram
//! minus the buckets outside the window, whichever is cheaper), so their cost is bounded by
//! the number of buckets and bins, never by the number of events.
//!
//! ## Roll-up
//!
//! With the default [`Rollup`], fine buckets are kept for [`Rollup::fine_span`] (5 min) plus
//! the grace period, then merged into roll-up buckets of [`Rollup::width`] (1 min) that are
//! kept for the retention (1 h). A 1 h window thus holds about 60 roll-up histograms and
//! 330 fine ones instead of 3,600. Windows are always whole buckets, so count and sum stay
//! exact:
//!
//! - a window of length `W` queried at `now` ends at the end of the fine bucket holding
//!   `now` and starts `⌈W / bucket_width⌉` buckets earlier;
//! - a window longer than `fine_span` starts instead at the previous multiple of the roll-up
//!   width, so it is up to one roll-up bucket longer than asked (a 1 h window covers 1 h to
//!   1 h 59 s).
//!
//! [`WindowStore::window_span`] gives the exact range; every [`QueryResult`] carries it.
//!
//! ## Event time, watermark, grace and late events
//!
//! Time is event time (the producer's timestamp), passed in; nothing here reads a clock.
//! The store tracks the newest event time seen over all series; the **watermark** is that
//! minus [`WindowConfig::grace`] (default 30 s). The rule is exact:
//!
//! > an event is **late** iff `event_time < max_event_time_seen - grace`.
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
//! - always: 32 bytes per bucket (count and sum prefixes, min, max) ≈ 12.6 KiB;
//! - with percentiles: 24 bytes of histogram header per bucket, plus 8 bytes per distinct
//!   histogram bin per bucket (a bucket with a single distinct value costs no heap), plus the
//!   running histogram, 1 KiB per binade of values seen.
//!
//! Measured with [`WindowStore::heap_bytes`] after a full hour of log-normal latency-like
//! values (`cargo run --release -p rtdash-window --example memory`):
//!
//! | events/s per series | with percentiles (P = 7) | without |
//! |---:|---:|---:|
//! | 1 | 56 KiB | 12.6 KiB |
//! | 10 | 219 KiB | 12.6 KiB |
//! | 100 | 700 KiB | 13.1 KiB |
//! | 1000 | 1.8 MiB | 13.1 KiB |
//!
//! Histogram memory grows with the number of distinct bins per bucket, which is bounded by
//! the value range and `2^P` per binade: `P = 5` (±1.6 %) takes 323 KiB at 100 events/s.
//! A wider roll-up width or a shorter fine span also cut it.
//!
//! ## Checkpoints
//!
//! [`WindowStore::checkpoint`] snapshots the whole store — series ids, buckets, prefix sums,
//! watermark, late buffer and counters — with a caller-supplied source offset, as a serde
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
mod series;
mod sketch;
mod store;

pub use checkpoint::Checkpoint;
pub use config::{MAX_BUCKETS_PER_SERIES, Rollup, WindowConfig};
pub use error::WindowError;
pub use sketch::LogHistogram;
pub use store::{
    LateEvent, MAX_ABS_EVENT_TIME_MS, QueryResult, Recorded, WindowStats, WindowStore,
};
