//! [`Aggregation`] and [`Percentile`]: what a widget computes over its window.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, clip};

/// A percentile rank in (0, 100], e.g. `99.9`.
///
/// Cannot hold an out-of-range or non-finite rank, which makes it `Eq` and `Hash`.
/// Serialized as a JSON number.
///
/// # Examples
///
/// ```
/// use rtdash_core::Percentile;
///
/// let p = Percentile::new(99.9)?;
/// assert_eq!(p.rank(), 99.9);
/// assert!((p.quantile() - 0.999).abs() < 1e-12);
/// assert!(Percentile::new(0.0).is_err());
/// assert!(Percentile::new(100.5).is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percentile(f64);

impl Percentile {
    /// The median.
    pub const P50: Self = Self(50.0);
    /// The 90th percentile.
    pub const P90: Self = Self(90.0);
    /// The 99th percentile.
    pub const P99: Self = Self(99.0);
    /// The 99.9th percentile.
    pub const P999: Self = Self(99.9);

    /// A percentile of rank `rank`.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidPercentile`] unless `0 < rank <= 100` (NaN is rejected).
    pub fn new(rank: f64) -> Result<Self, CoreError> {
        if rank > 0.0 && rank <= 100.0 {
            Ok(Self(rank))
        } else {
            Err(CoreError::InvalidPercentile { rank })
        }
    }

    /// The rank, in (0, 100].
    #[must_use]
    pub const fn rank(self) -> f64 {
        self.0
    }

    /// The rank as a quantile, in (0, 1].
    #[must_use]
    pub fn quantile(self) -> f64 {
        self.0 / 100.0
    }
}

impl Eq for Percentile {}

impl Hash for Percentile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Never NaN and never -0.0, so bit equality is value equality.
        self.0.to_bits().hash(state);
    }
}

impl TryFrom<f64> for Percentile {
    type Error = CoreError;

    fn try_from(rank: f64) -> Result<Self, Self::Error> {
        Self::new(rank)
    }
}

impl From<Percentile> for f64 {
    fn from(p: Percentile) -> Self {
        p.0
    }
}

impl fmt::Display for Percentile {
    /// `p` followed by the rank: `p50`, `p99.9`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// What a widget computes over its window.
///
/// Serialized as a string: `"count"`, `"sum"`, `"avg"`, `"min"`, `"max"`, or `"p"` followed by a
/// percentile rank such as `"p50"`, `"p99"`, `"p99.9"`. Parsing is case-insensitive and also
/// accepts `"mean"` for avg and `"median"` for p50.
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, Percentile};
///
/// let a: Aggregation = "p99.9".parse()?;
/// assert_eq!(a, Aggregation::Percentile(Percentile::P999));
/// assert_eq!(a.to_string(), "p99.9");
/// assert_eq!(serde_json::to_string(&Aggregation::Avg).unwrap(), r#""avg""#);
/// assert!("p0".parse::<Aggregation>().is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Aggregation {
    /// Number of events.
    Count,
    /// Sum of values.
    Sum,
    /// Arithmetic mean of values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// A percentile of the values.
    Percentile(Percentile),
}

impl Aggregation {
    /// Whether the aggregate needs a value histogram (only percentiles do).
    #[must_use]
    pub const fn needs_histogram(self) -> bool {
        matches!(self, Self::Percentile(_))
    }
}

impl FromStr for Aggregation {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" | "mean" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "median" => Self::Percentile(Percentile::P50),
            _ => {
                let rank = t
                    .strip_prefix('p')
                    .filter(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
                    .and_then(|r| r.parse::<f64>().ok())
                    .ok_or_else(|| CoreError::InvalidAggregation { input: clip(s, 64) })?;
                Self::Percentile(Percentile::new(rank)?)
            }
        })
    }
}

impl TryFrom<String> for Aggregation {
    type Error = CoreError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Aggregation> for String {
    fn from(a: Aggregation) -> Self {
        a.to_string()
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count => f.write_str("count"),
            Self::Sum => f.write_str("sum"),
            Self::Avg => f.write_str("avg"),
            Self::Min => f.write_str("min"),
            Self::Max => f.write_str("max"),
            Self::Percentile(p) => p.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        for s in [
            "count", "sum", "avg", "min", "max", "p50", "p99", "p99.9", "p100", "p0.001",
        ] {
            let a: Aggregation = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert_eq!("MEDIAN".parse::<Aggregation>().unwrap().to_string(), "p50");
        assert_eq!(" Mean ".parse::<Aggregation>().unwrap(), Aggregation::Avg);
    }

    #[test]
    fn rejects_bad_strings() {
        for s in [
            "",
            "p",
            "pnan",
            "p-1",
            "p1e2",
            "percentile",
            "average",
            "p99x",
        ] {
            assert!(
                matches!(
                    s.parse::<Aggregation>(),
                    Err(CoreError::InvalidAggregation { .. })
                ),
                "{s}"
            );
        }
        for s in ["p0", "p100.1", "p0.0", "p1000"] {
            assert!(
                matches!(
                    s.parse::<Aggregation>(),
                    Err(CoreError::InvalidPercentile { .. })
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn percentile_rejects_nan_and_infinities() {
        for r in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, -5.0] {
            assert!(Percentile::new(r).is_err());
        }
        assert!(Percentile::new(f64::MIN_POSITIVE).is_ok());
    }
}
