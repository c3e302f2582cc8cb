//! [`Aggregation`] and [`Percentile`]: what a widget computes over its window.
//!
//! A percentile's rank is held as an integer number of millionths (p99.9 is
//! 99 900 000 millionths, i.e. the quantile 999/1000), so the one rank definition,
//! [`Percentile::nearest_rank`], is computed exactly in integers: no floating-point rounding
//! can move a value to the neighbouring rank.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, clip};

/// Millionths of a rank point in the rank 100.
const MAX_MILLIONTHS: u32 = 100_000_000;

/// A percentile rank in (0, 100] with at most 6 decimal places, e.g. `99.9`.
///
/// The rank is stored exactly, as an integer number of millionths (`99.9` is `99_900_000`), so
/// the quantile is the rational `millionths / 10^8` (p99.9 is 999/1000) and
/// [`nearest_rank`](Self::nearest_rank) — the rank definition every percentile in rtdash
/// uses (widgets, alerts, history, checkpoints) — is computed in integers.
///
/// Cannot hold an out-of-range, non-finite or over-precise rank; `Eq`, `Ord` and `Hash` compare
/// the integer. Serialized as a JSON number (`99.9`) and displayed as `p99.9`.
///
/// # Examples
///
/// ```
/// use rtdash_core::Percentile;
///
/// let p = Percentile::new(99.9)?;
/// assert_eq!(p, Percentile::P999);
/// assert_eq!(p.rank(), 99.9);
/// assert_eq!(p.millionths(), 99_900_000);
/// assert_eq!(p.to_string(), "p99.9");
/// // ⌈999/1000 · 1000⌉ = 999, computed exactly (in f64, 99.9 / 100 · 1000 is
/// // 999.0000000000001, whose ceiling is 1000).
/// assert_eq!(p.nearest_rank(1000), 999);
///
/// assert!(Percentile::new(0.0).is_err());
/// assert!(Percentile::new(100.5).is_err());
/// assert!(Percentile::new(0.0000001).is_err()); // more than 6 decimal places
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percentile(u32);

impl Percentile {
    /// The median.
    pub const P50: Self = Self(50_000_000);
    /// The 90th percentile.
    pub const P90: Self = Self(90_000_000);
    /// The 99th percentile.
    pub const P99: Self = Self(99_000_000);
    /// The 99.9th percentile.
    pub const P999: Self = Self(99_900_000);

    /// A percentile of rank `rank`, which must be in (0, 100] with at most 6 decimal places.
    ///
    /// `rank` is accepted when it is exactly the `f64` nearest to a decimal with at most 6
    /// decimal places — which is what parsing such a decimal (`"99.9"`, JSON `99.9`) gives —
    /// and then [`rank`](Self::rank) returns the very same `f64`. Ranks computed in floating
    /// point may miss (`0.1 + 0.2` is not `0.3`): build them with
    /// [`from_millionths`](Self::from_millionths) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::Percentile;
    ///
    /// assert_eq!(Percentile::new(0.000001)?.millionths(), 1);
    /// assert_eq!(Percentile::new(100.0)?.millionths(), 100_000_000);
    /// assert!(Percentile::new(99.99999999).is_err());
    /// assert!(Percentile::new(f64::NAN).is_err());
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidPercentile`] unless `0 < rank <= 100` with at most 6 decimal places
    /// (NaN and infinities are rejected).
    pub fn new(rank: f64) -> Result<Self, CoreError> {
        let invalid = || CoreError::InvalidPercentile { rank };
        // `!(a && b)` rather than `||`: NaN fails both comparisons and must be rejected.
        if !(rank > 0.0 && rank <= 100.0) {
            return Err(invalid());
        }
        // In [0, 1e8]: `rank * 1e6` is within a few ulps of an integer at most 1e8.
        let m = (rank * 1e6).round();
        // `m / 1e6` is the correctly rounded quotient of two exact integers, i.e. the f64
        // nearest to the decimal `m` millionths: equal to `rank` iff `rank` is that decimal.
        if m < 1.0 || m / 1e6 != rank {
            return Err(invalid());
        }
        // Lossless: an integer in [1, 1e8].
        Self::from_millionths(m as u32)
    }

    /// A percentile of rank `millionths / 10^6`, e.g. `99_900_000` for p99.9.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::Percentile;
    ///
    /// assert_eq!(Percentile::from_millionths(99_900_000)?, Percentile::P999);
    /// assert!(Percentile::from_millionths(0).is_err());
    /// assert!(Percentile::from_millionths(100_000_001).is_err());
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidPercentile`] unless `1 <= millionths <= 100_000_000`.
    pub fn from_millionths(millionths: u32) -> Result<Self, CoreError> {
        if (1..=MAX_MILLIONTHS).contains(&millionths) {
            Ok(Self(millionths))
        } else {
            Err(CoreError::InvalidPercentile {
                rank: f64::from(millionths) / 1e6,
            })
        }
    }

    /// The rank in millionths, in `1..=100_000_000` (`99_900_000` for p99.9): exact.
    #[must_use]
    pub const fn millionths(self) -> u32 {
        self.0
    }

    /// The rank, in (0, 100]: the `f64` nearest to the decimal rank (`99.9` for p99.9), the
    /// same `f64` that [`new`](Self::new) accepted.
    #[must_use]
    pub const fn rank(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The rank as a quantile in (0, 1], rounded to the nearest `f64` (`0.999` for p99.9).
    ///
    /// For display and for APIs that take an `f64` quantile only: never compute a rank from
    /// it — for p3.5 and 200 values, `0.035 * 200.0` is `7.000000000000001`, whose ceiling is
    /// the wrong rank 8. Use [`nearest_rank`](Self::nearest_rank).
    #[must_use]
    pub const fn quantile(self) -> f64 {
        self.0 as f64 / 1e8
    }

    /// The 1-based rank of this percentile's value among `n` sorted values, under the
    /// nearest-rank convention: `⌈q·n⌉` for the quantile `q = millionths / 10^8`, computed
    /// exactly in integers, clamped to `1..=n`.
    ///
    /// This is the one rank definition used for every percentile in rtdash (window queries,
    /// [widgets](crate::Widget), alerts, history, checkpoints).
    ///
    /// For `n = 0` it returns 0, which is not a rank: there is no percentile of no values, and
    /// callers must handle the empty case before asking for a rank.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::Percentile;
    ///
    /// assert_eq!(Percentile::P999.nearest_rank(1000), 999);
    /// assert_eq!(Percentile::P999.nearest_rank(1001), 1000);
    /// assert_eq!(Percentile::P50.nearest_rank(3), 2);
    /// assert_eq!(Percentile::P50.nearest_rank(4), 2);
    /// assert_eq!(Percentile::from_millionths(1)?.nearest_rank(7), 1);
    /// assert_eq!(Percentile::new(100.0)?.nearest_rank(7), 7);
    /// assert_eq!(Percentile::P99.nearest_rank(0), 0); // no values, no rank
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    #[must_use]
    pub const fn nearest_rank(self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // At most 1e8 · (2^64 - 1) < 2^91: no overflow.
        let r = (self.0 as u128 * n as u128).div_ceil(MAX_MILLIONTHS as u128);
        // 1 <= millionths <= 1e8 and n >= 1 put `r` in 1..=n already; the clamp only
        // documents it (and makes the narrowing cast lossless).
        if r < 1 {
            1
        } else if r > n as u128 {
            n
        } else {
            r as u64
        }
    }
}

impl fmt::Debug for Percentile {
    /// `Percentile(99.9)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Percentile({})", Rank(self.0))
    }
}

/// Exact decimal formatting of a rank in millionths: `99.9`, `50`, `0.000001`.
struct Rank(u32);

impl fmt::Display for Rank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 1_000_000, self.0 % 1_000_000);
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:06}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
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
        p.rank()
    }
}

impl fmt::Display for Percentile {
    /// `p` followed by the exact decimal rank: `p50`, `p99.9`, `p0.000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", Rank(self.0))
    }
}

/// What a widget computes over its window.
///
/// # Over a window with no event
///
/// One rule everywhere (window queries, widget values, update frames, the HTTP snapshot):
/// an aggregation that is defined over no values gives that value, the others give none
/// (`None`, JSON `null`):
///
/// | aggregation | no event in the window |
/// |---|---|
/// | [`Count`](Self::Count) | `0` (no events were counted) |
/// | [`Sum`](Self::Sum) | `0` (the empty sum) |
/// | [`Avg`](Self::Avg), [`Min`](Self::Min), [`Max`](Self::Max), [`Percentile`](Self::Percentile) | `None` / `null` (undefined over no values) |
///
/// [`defined_when_empty`](Self::defined_when_empty) tells which. Either way the number of
/// events is 0, and a value is marked stale by the age of its data, not by this rule.
///
/// # Serialization
///
/// Serialized as a string: `"count"`, `"sum"`, `"avg"`, `"min"`, `"max"`, or `"p"` followed by a
/// percentile rank in (0, 100] with at most 6 decimal places (see [`Percentile`]) such as
/// `"p50"`, `"p99"`, `"p99.9"`. Parsing is case-insensitive and also
/// accepts `"mean"` for avg and `"median"` for p50.
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, Percentile};
///
/// let a: Aggregation = "p99.9".parse()?;
/// assert_eq!(a, Aggregation::Percentile(Percentile::P999));
/// assert_eq!(a, Aggregation::P999);
/// assert_eq!(a.to_string(), "p99.9");
/// assert_eq!(serde_json::to_string(&Aggregation::Avg).unwrap(), r#""avg""#);
/// assert!("p0".parse::<Aggregation>().is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Aggregation {
    /// Number of events; 0 over an empty window.
    Count,
    /// Sum of values; 0 over an empty window.
    Sum,
    /// Arithmetic mean of values; none over an empty window.
    Avg,
    /// Smallest value; none over an empty window.
    Min,
    /// Largest value; none over an empty window.
    Max,
    /// A percentile of the values; none over an empty window.
    Percentile(Percentile),
}

impl Aggregation {
    /// The median, `p50`.
    pub const P50: Self = Self::Percentile(Percentile::P50);
    /// The 90th percentile, `p90`.
    pub const P90: Self = Self::Percentile(Percentile::P90);
    /// The 99th percentile, `p99`.
    pub const P99: Self = Self::Percentile(Percentile::P99);
    /// The 99.9th percentile, `p99.9`.
    pub const P999: Self = Self::Percentile(Percentile::P999);

    /// Whether the aggregate has a value over a window with no event: `true` for
    /// [`Count`](Self::Count) and [`Sum`](Self::Sum) (0), `false` for the others, whose
    /// value is then `None` (JSON `null`). See [the rule](Self#over-a-window-with-no-event).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::Aggregation;
    ///
    /// assert!(Aggregation::Count.defined_when_empty());
    /// assert!(Aggregation::Sum.defined_when_empty());
    /// assert!(!Aggregation::Avg.defined_when_empty());
    /// assert!(!Aggregation::P99.defined_when_empty());
    /// ```
    #[must_use]
    pub const fn defined_when_empty(self) -> bool {
        matches!(self, Self::Count | Self::Sum)
    }

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
    fn percentile_rejects_bad_ranks() {
        let ulp_above_99_9 = f64::from_bits(99.9f64.to_bits() + 1);
        for r in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            -5.0,
            -0.000001,
            100.000001,
            100.5,
            1000.0,
            1e-7,
            0.0000005,
            99.99999999,
            99.9999995,
            1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            0.1 + 0.2,
            ulp_above_99_9,
        ] {
            assert!(
                matches!(Percentile::new(r), Err(CoreError::InvalidPercentile { .. })),
                "{r:e}"
            );
        }
        for m in [0, 100_000_001, u32::MAX] {
            assert!(
                matches!(
                    Percentile::from_millionths(m),
                    Err(CoreError::InvalidPercentile { .. })
                ),
                "{m}"
            );
        }
        for s in ["p0.0000001", "p99.99999999", "p100.0000001", "p0.0000005"] {
            assert!(
                matches!(
                    s.parse::<Aggregation>(),
                    Err(CoreError::InvalidPercentile { .. })
                ),
                "{s}"
            );
        }
        // An exponent is not a rank: rejected by the syntax before the range check.
        assert!(matches!(
            "p1e-300".parse::<Aggregation>(),
            Err(CoreError::InvalidAggregation { .. })
        ));
        let msg = Percentile::new(1e-7).unwrap_err().to_string();
        assert!(
            msg.contains("(0, 100]") && msg.contains("at most 6 decimal places"),
            "{msg}"
        );
    }

    #[test]
    fn consts_and_display() {
        assert_eq!(Percentile::P50.millionths(), 50_000_000);
        assert_eq!(Percentile::P90.rank(), 90.0);
        assert_eq!(Percentile::P99.quantile(), 0.99);
        assert_eq!(Percentile::P999.quantile(), 0.999);
        assert_eq!(Percentile::new(99.9).unwrap(), Percentile::P999);
        assert_eq!(Percentile::P999.to_string(), "p99.9");
        assert_eq!(format!("{:?}", Percentile::P999), "Percentile(99.9)");
        assert_eq!(
            Percentile::from_millionths(1).unwrap().to_string(),
            "p0.000001"
        );
        assert_eq!(
            Percentile::from_millionths(100_000_000)
                .unwrap()
                .to_string(),
            "p100"
        );
        assert_eq!(
            Percentile::from_millionths(1_000_010).unwrap().to_string(),
            "p1.00001"
        );
        assert_eq!(serde_json::to_string(&Percentile::P999).unwrap(), "99.9");
        assert_eq!(
            serde_json::from_str::<Percentile>("99.9").unwrap(),
            Percentile::P999
        );
        assert!(serde_json::from_str::<Percentile>("99.99999999").is_err());
        assert!(Percentile::P99 < Percentile::P999);
    }

    #[test]
    fn nearest_rank_of_the_reported_bug() {
        // p99.9 of 1000 values is the 999th: ⌈999/1000 · 1000⌉. The rank used to be computed as
        // ⌈99.9 / 100 · 1000⌉ in f64, which is ⌈999.0000000000001⌉ = 1000.
        assert_eq!((99.9f64 / 100.0 * 1000.0).ceil(), 1000.0);
        assert_eq!(Percentile::P999.nearest_rank(1000), 999);
        // Even the correctly rounded quantile misses: 0.035 · 200 is 7.000000000000001 in f64.
        let p3_5 = Percentile::new(3.5).unwrap();
        assert_eq!((p3_5.quantile() * 200.0).ceil(), 8.0);
        assert_eq!(p3_5.nearest_rank(200), 7);
        assert_eq!(Percentile::P999.nearest_rank(0), 0);
        assert_eq!(
            Percentile::P999.nearest_rank(u64::MAX),
            u64::MAX - u64::MAX / 1000
        );
        assert_eq!(
            Percentile::from_millionths(1)
                .unwrap()
                .nearest_rank(u64::MAX),
            184_467_440_738
        );
        assert_eq!(
            Percentile::from_millionths(100_000_000)
                .unwrap()
                .nearest_rank(u64::MAX),
            u64::MAX
        );
    }

    /// Every one-decimal percentile p0.1 … p100.0, built by parsing its decimal string, at
    /// every `n` in `1..=5000`, against the definition of the nearest rank — the smallest `r`
    /// with `r / n >= tenths / 1000` — found by walking `r` up as `n` grows, and against a
    /// quotient-and-remainder ceiling in `u64`.
    #[test]
    fn nearest_rank_every_one_decimal_percentile_every_n_to_5000() {
        for tenths in 1u64..=1000 {
            let text = format!("p{}.{}", tenths / 10, tenths % 10);
            let Ok(Aggregation::Percentile(p)) = text.parse::<Aggregation>() else {
                panic!("{text} must parse as a percentile");
            };
            assert_eq!(u64::from(p.millionths()), tenths * 100_000, "{text}");
            let mut smallest = 1u64;
            for n in 1u64..=5000 {
                while 1000 * smallest < tenths * n {
                    smallest += 1;
                }
                let (q, rem) = (tenths * n / 1000, tenths * n % 1000);
                let by_division = q + u64::from(rem != 0);
                assert_eq!(smallest, by_division, "{text} n={n}");
                assert_eq!(p.nearest_rank(n), smallest, "{text} n={n}");
            }
        }
    }

    /// The decimal string of a rank in millionths, written from the integer (not from an f64).
    fn decimal(m: u32) -> String {
        format!("{}.{:06}", m / 1_000_000, m % 1_000_000)
    }

    fn assert_round_trip(m: u32) {
        let text = decimal(m);
        let rank: f64 = text.parse().unwrap();
        let p = Percentile::new(rank).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.millionths(), m, "{text}");
        assert_eq!(p.rank().to_bits(), rank.to_bits(), "{text}");
        assert_eq!(Percentile::from_millionths(m).unwrap(), p, "{text}");
        // Display is the exact decimal, and the shortest one that parses back to `rank`.
        assert_eq!(p.to_string(), format!("p{rank}"), "{text}");
        assert_eq!(
            p.to_string().parse::<Aggregation>().unwrap(),
            Aggregation::Percentile(p)
        );
    }

    #[test]
    fn new_round_trips_every_sampled_millionths() {
        for m in (1..=100_000).chain(99_900_000..=100_000_000) {
            assert_round_trip(m);
        }
        for m in (1..=100_000_000).step_by(997) {
            assert_round_trip(m);
        }
        for m in [
            1,
            9,
            10,
            999_999,
            1_000_000,
            1_000_001,
            12_345_678,
            33_333_333,
            50_000_000,
            66_666_667,
            99_000_000,
            99_900_000,
            99_990_000,
            99_999_000,
            99_999_900,
            99_999_990,
            99_999_999,
            100_000_000,
        ] {
            assert_round_trip(m);
        }
    }

    /// `⌈m·n / 10^8⌉` without `u128` and without a ceiling division: split `n = a·10^8 + b`,
    /// so `m·n / 10^8 = m·a + m·b / 10^8` with `m·b < 10^16`.
    fn oracle_rank(m: u64, n: u64) -> u64 {
        const E8: u64 = 100_000_000;
        let (a, b) = (n / E8, n % E8);
        let (q, rem) = (m * b / E8, m * b % E8);
        m * a + q + u64::from(rem > 0)
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn nearest_rank_matches_exact_oracle(m in 1u32..=100_000_000, n in 1u64..=1_000_000_000_000) {
                let p = Percentile::from_millionths(m).unwrap();
                let r = p.nearest_rank(n);
                prop_assert_eq!(r, oracle_rank(u64::from(m), n));
                prop_assert!((1..=n).contains(&r));
                // The definition: the smallest r with r / n >= m / 10^8.
                let (m, n, r) = (u128::from(m), u128::from(n), u128::from(r));
                prop_assert!(r * 100_000_000 >= m * n);
                prop_assert!((r - 1) * 100_000_000 < m * n);
            }

            #[test]
            fn nearest_rank_small_n(m in 1u32..=100_000_000, n in 1u64..=5000) {
                let r = Percentile::from_millionths(m).unwrap().nearest_rank(n);
                prop_assert_eq!(r, oracle_rank(u64::from(m), n));
            }

            /// `new` accepts exactly the ranks in (0, 100] whose shortest decimal form has at
            /// most 6 decimal places.
            #[test]
            fn new_accepts_exactly_six_decimal_ranks(
                rank in prop_oneof![
                    any::<f64>(),
                    0.0f64..=100.0,
                    (1u32..=100_000_000).prop_map(|m| f64::from(m) / 1e6),
                    ((1u32..=100_000_000), -2i64..=2).prop_map(|(m, ulps)| {
                        f64::from_bits((f64::from(m) / 1e6).to_bits().wrapping_add_signed(ulps))
                    }),
                ]
            ) {
                let text = format!("{rank}");
                let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
                let want = rank > 0.0 && rank <= 100.0 && decimals <= 6;
                let got = Percentile::new(rank);
                prop_assert_eq!(got.is_ok(), want, "{} ({:e})", text, rank);
                if let Ok(p) = got {
                    prop_assert_eq!(p.rank().to_bits(), rank.to_bits());
                    prop_assert_eq!(p.to_string(), format!("p{text}"));
                }
            }
        }
    }
}
