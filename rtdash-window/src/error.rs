//! The one error type of this crate.

use rtdash_core::SeriesId;

/// Everything that can go wrong in `rtdash-window`: bad configuration, bad input to
/// [`WindowStore::record`](crate::WindowStore::record), bad queries and bad checkpoints.
///
/// Every message names the field or limit at fault and what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A [`WindowConfig`](crate::WindowConfig) field breaks a rule.
    #[error("invalid window config `{field}`: {reason}")]
    InvalidConfig {
        /// The field at fault, e.g. `bucket_width` or `rollup.width`.
        field: &'static str,
        /// The rule broken and what to change.
        reason: String,
    },
    /// A value that is NaN or infinite; it was not recorded.
    #[error("value {value} is not a finite number; only finite values can be aggregated")]
    NonFiniteValue {
        /// The value that was given.
        value: f64,
    },
    /// A [`SeriesId`] this store did not issue.
    #[error(
        "unknown series {id}: this store has not issued it; get ids from `WindowStore::series_id`"
    )]
    UnknownSeries {
        /// The id that was given.
        id: SeriesId,
    },
    /// Adding one more series would exceed
    /// [`WindowConfig::max_series`](crate::WindowConfig::max_series).
    #[error(
        "too many series: adding `{series}` would exceed the limit of {limit} series; drop \
         high-cardinality tags (ids, timestamps) or raise `WindowConfig::max_series`"
    )]
    TooManySeries {
        /// The configured limit.
        limit: usize,
        /// The series that was refused, as `metric{key="value",...}`.
        series: String,
    },
    /// A metric name or tag set that cannot identify a series (empty name, empty or
    /// duplicate tag key).
    #[error("invalid series: {reason}")]
    InvalidSeries {
        /// What is wrong.
        reason: String,
    },
    /// An event time beyond ±2^60 ms from the epoch; nothing was recorded. (Query times
    /// beyond it are clamped instead.)
    #[error(
        "event time {ms} ms is out of range: it must be within ±2^60 ms (±36 million years) of the epoch"
    )]
    TimestampOutOfRange {
        /// The time given, in ms since the epoch.
        ms: i64,
    },
    /// A query window of zero length.
    #[error("the query window is empty: give a window of at least 1 ms")]
    EmptyWindow,
    /// A query window longer than the configured retention.
    #[error(
        "the query window of {window_ms} ms is longer than the retention of {retention_ms} ms; \
         shorten the window or raise `WindowConfig::retention`"
    )]
    WindowTooLong {
        /// The window asked for, in milliseconds.
        window_ms: u128,
        /// The configured retention, in milliseconds.
        retention_ms: u64,
    },
    /// A percentile was asked of a store that does not track percentiles.
    #[error(
        "percentiles are not tracked by this store; enable them with \
         `WindowConfig::with_percentiles(true)`"
    )]
    PercentilesDisabled,
    /// Two histograms of different precision cannot be combined.
    #[error(
        "histograms of precision {left} and {right} cannot be combined; build both with the same precision"
    )]
    PrecisionMismatch {
        /// Precision of the histogram being changed.
        left: u8,
        /// Precision of the other histogram.
        right: u8,
    },
    /// A subtraction would make a bin count negative: the subtracted histogram holds values
    /// that were never added.
    #[error(
        "cannot subtract: the subtracted histogram holds a value near {value} more often than this one"
    )]
    SubtractUnderflow {
        /// A value (bin midpoint) whose count would become negative.
        value: f64,
    },
    /// Histogram contents that are not a histogram of finite values (a stored or sent
    /// histogram, see [`LogHistogram::from_bin_counts`](crate::LogHistogram::from_bin_counts)).
    #[error("invalid histogram: {reason}")]
    InvalidHistogram {
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint that is malformed, inconsistent or from an incompatible version.
    #[error("invalid checkpoint: {reason}")]
    InvalidCheckpoint {
        /// What is wrong, with the path of the offending part, e.g. `series[3].fine.buckets[2]`.
        reason: String,
    },
}
