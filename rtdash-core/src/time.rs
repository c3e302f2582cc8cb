//! Event time: [`Timestamp`], milliseconds since the Unix epoch.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CoreError, clip};

/// An instant in event time: whole milliseconds since the Unix epoch (1970-01-01T00:00:00Z),
/// UTC, no leap seconds.
///
/// Serialized as an integer. Deserialization from a human-readable format such as JSON
/// accepts that integer and, for convenience, an RFC 3339 string such as `"2024-05-01T12:00:00.250Z"` or `"2024-05-01T14:00:00+02:00"`
/// (fractions beyond milliseconds are truncated). A non-integer number such as `1.5` is
/// rejected. [`Display`](fmt::Display) prints the RFC 3339 form in UTC.
///
/// Pure logic in rtdash never reads the clock: callers pass a `Timestamp` in. [`Timestamp::now`]
/// is for hosts.
///
/// # Examples
///
/// ```
/// use rtdash_core::Timestamp;
/// use std::time::Duration;
///
/// let t = Timestamp::from_millis(1_700_000_000_000);
/// assert_eq!(t.saturating_add(Duration::from_secs(1)).as_millis(), 1_700_000_001_000);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.000Z");
/// assert_eq!("2023-11-14T22:13:20Z".parse::<Timestamp>().unwrap(), t);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);
    /// The earliest representable instant.
    pub const MIN: Self = Self(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Self = Self(i64::MAX);

    /// Creates a timestamp from milliseconds since the Unix epoch (negative is before it).
    #[must_use]
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + d`, clamped to [`Timestamp::MAX`]. Sub-millisecond parts of `d` are dropped.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, clamped to [`Timestamp::MIN`]. Sub-millisecond parts of `d` are dropped.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_millis(d)))
    }

    /// How long `self` is after `earlier`, or `None` when it is before it.
    #[must_use]
    pub fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        let diff = i128::from(self.0) - i128::from(earlier.0);
        u64::try_from(diff).ok().map(Duration::from_millis)
    }

    /// Reads the system clock.
    ///
    /// This is the only place rtdash-core reads the clock; it is meant for hosts, which pass
    /// the result into pure logic such as [`MetricEvent::validate`](crate::MetricEvent::validate).
    /// A clock set before 1970 gives a negative timestamp.
    #[must_use]
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Self(duration_millis(d)),
            Err(e) => Self(duration_millis(e.duration()).saturating_neg()),
        }
    }

    /// Parses an RFC 3339 date-time, e.g. `2024-05-01T12:00:00.250Z` or
    /// `2024-05-01T14:00:00+02:00` (a space or lower-case `t`/`z` is accepted too).
    ///
    /// Fractions of a second beyond milliseconds are truncated; a leap second `:60` counts as
    /// the first millisecond of the next minute.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidTimestamp`] naming the part that is wrong.
    pub fn parse_rfc3339(s: &str) -> Result<Self, CoreError> {
        parse_rfc3339(s).map_err(|reason| CoreError::InvalidTimestamp {
            input: clip(s, 64),
            reason: reason.to_owned(),
        })
    }
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl std::str::FromStr for Timestamp {
    type Err = CoreError;

    /// Parses either integer milliseconds since the epoch or an RFC 3339 date-time.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Self(ms));
        }
        Self::parse_rfc3339(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(TimestampVisitor)
        } else {
            // Binary formats are not self-describing: there it is always the integer.
            deserializer.deserialize_i64(TimestampVisitor)
        }
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("integer milliseconds since the Unix epoch, or an RFC 3339 date-time string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        Ok(Timestamp(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        i64::try_from(v)
            .map(Timestamp)
            .map_err(|_| E::custom(format!("timestamp {v} ms is beyond the year 292 million")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Err(E::custom(format!(
            "expected integer milliseconds since the Unix epoch, found the non-integer number {v}"
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse_rfc3339(v).map_err(E::custom)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, what: &[u8]) -> bool {
    b.get(at).is_some_and(|c| what.contains(c))
}

fn parse_rfc3339(s: &str) -> Result<Timestamp, &'static str> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4).ok_or("expected a four-digit year, as in 2024-05-01T12:00:00Z")?;
    if !expect(b, 4, b"-") || !expect(b, 7, b"-") {
        return Err("expected a date of the form YYYY-MM-DD");
    }
    let month = digits(b, 5, 2).ok_or("expected a two-digit month")?;
    let day = digits(b, 8, 2).ok_or("expected a two-digit day")?;
    if !(1..=12).contains(&month) {
        return Err("month must be 01 to 12");
    }
    let year = i64::from(year);
    let month_len = match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > month_len {
        return Err("day is out of range for its month");
    }
    if !expect(b, 10, b"Tt ") {
        return Err("expected `T` between date and time");
    }
    let hour = digits(b, 11, 2).ok_or("expected a two-digit hour")?;
    let minute = digits(b, 14, 2).filter(|_| expect(b, 13, b":"));
    let minute = minute.ok_or("expected `:MM` minutes")?;
    let second = digits(b, 17, 2).filter(|_| expect(b, 16, b":"));
    let second = second.ok_or("expected `:SS` seconds")?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day is out of range (hour 00-23, minute 00-59, second 00-60)");
    }
    let mut at = 19;
    let mut millis = 0u32;
    if expect(b, at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err("expected digits after the decimal point");
        }
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, at + 1, 2).ok_or("expected a two-digit offset hour")?;
            let om = digits(b, at + 4, 2).filter(|_| expect(b, at + 3, b":"));
            let om = om.ok_or("expected an offset of the form +HH:MM")?;
            if oh > 23 || om > 59 {
                return Err("offset is out of range");
            }
            at += 6;
            let off = i64::from(oh * 60 + om);
            if sign == b'-' { -off } else { off }
        }
        _ => return Err("expected a time zone: `Z` or an offset such as +02:00"),
    };
    if at != b.len() {
        return Err("unexpected text after the time zone");
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(Timestamp(secs * 1000 + i64::from(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            let m = u32::try_from(m).unwrap();
            let d = u32::try_from(d).unwrap();
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_rfc3339() {
        let t = Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(t, Timestamp::EPOCH);
        let t = Timestamp::parse_rfc3339("2024-02-29T23:59:59.5+01:00").unwrap();
        assert_eq!(t.to_string(), "2024-02-29T22:59:59.500Z");
        let t = Timestamp::parse_rfc3339("1969-12-31 23:59:59.999123z").unwrap();
        assert_eq!(t.as_millis(), -1);
    }

    #[test]
    fn rejects_bad_rfc3339() {
        for bad in [
            "",
            "2024",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+2:00",
            "2024-01-01T00:00:00Zjunk",
        ] {
            let err = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(
                matches!(err, CoreError::InvalidTimestamp { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn saturates() {
        assert_eq!(
            Timestamp::MAX.saturating_add(Duration::from_secs(1)),
            Timestamp::MAX
        );
        assert_eq!(
            Timestamp::MIN.saturating_sub(Duration::from_secs(1)),
            Timestamp::MIN
        );
        assert_eq!(
            Timestamp::EPOCH.saturating_add(Duration::MAX),
            Timestamp::MAX
        );
        let t = Timestamp::from_millis(10);
        assert_eq!(
            t.checked_duration_since(Timestamp::from_millis(4)),
            Some(Duration::from_millis(6))
        );
        assert_eq!(Timestamp::from_millis(4).checked_duration_since(t), None);
    }

    #[test]
    fn serde_forms() {
        let t: Timestamp = serde_json::from_str("1700000000000").unwrap();
        assert_eq!(t.as_millis(), 1_700_000_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000000");
        let s: Timestamp = serde_json::from_str("\"2023-11-14T22:13:20Z\"").unwrap();
        assert_eq!(s, t);
        let e = serde_json::from_str::<Timestamp>("1.5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-integer"), "{e}");
        assert!(serde_json::from_str::<Timestamp>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Timestamp>("null").is_err());
    }
}
