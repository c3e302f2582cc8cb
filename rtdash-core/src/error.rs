//! The one error type of this crate.

use std::fmt;

/// Everything that can go wrong in `rtdash-core`: invalid events, series keys, schema
/// documents and malformed JSON.
///
/// Every message names the field (or JSON path) at fault, the limit or rule it broke and,
/// where it is not obvious, what to change.
///
/// # Examples
///
/// ```
/// use rtdash_core::{CoreError, MetricEvent, Timestamp, ValidationLimits};
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let err = MetricEvent::new("cpu", f64::NAN, now)
///     .validate(&ValidationLimits::default(), now)
///     .unwrap_err();
/// assert!(matches!(err, CoreError::InvalidEvent { ref field, .. } if field == "value"));
/// assert!(err.to_string().starts_with("value:"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A metric event broke a validation rule, or one element of a batch could not be decoded
    /// into an event.
    ///
    /// Displayed as `{field}: {reason}`, e.g. `tags["region"]: value is 300 bytes, the limit is 256`.
    #[error("{field}: {reason}")]
    InvalidEvent {
        /// The field at fault: `metric_name`, `value`, `tags`, `tags["region"]`, `event_time`,
        /// `id`, or `event` when the element as a whole is wrong (e.g. not a JSON object).
        field: String,
        /// What is wrong and the limit that applies.
        reason: String,
    },
    /// A series key could not be built (empty metric name, empty or duplicate tag key).
    #[error("invalid series key: {reason}")]
    InvalidSeriesKey {
        /// What is wrong.
        reason: String,
    },
    /// Interning one more series would exceed the interner's cardinality guard.
    #[error(
        "too many series: interning `{series}` would exceed the limit of {limit} series; \
         drop high-cardinality tags (ids, timestamps) or raise the limit with `SeriesInterner::with_max_series`"
    )]
    TooManySeries {
        /// The configured maximum number of series.
        limit: usize,
        /// The series that was refused, as `metric{key="value",...}`.
        series: String,
    },
    /// A percentile rank outside (0, 100], not a number, or with more than 6 decimal places.
    #[error(
        "percentile rank {rank} is not accepted: it must be a number in (0, 100] with at most \
         6 decimal places, e.g. 50, 99, 99.9 or 99.999"
    )]
    InvalidPercentile {
        /// The rank that was given.
        rank: f64,
    },
    /// A string that names no aggregation.
    #[error(
        "unknown aggregation `{input}`: expected one of count, sum, avg, min, max, or `p` followed by a \
         percentile rank in (0, 100] such as p50, p99 or p99.9"
    )]
    InvalidAggregation {
        /// The string that was given.
        input: String,
    },
    /// A colour that is not of the form `#rrggbb`.
    #[error(
        "invalid colour `{input}`: expected `#rrggbb` with six hexadecimal digits, e.g. #ff8800"
    )]
    InvalidColor {
        /// The string that was given.
        input: String,
    },
    /// An event id that is empty or too long.
    #[error("invalid event id: {reason}")]
    InvalidEventId {
        /// What is wrong and the limit that applies.
        reason: String,
    },
    /// A dashboard id that is empty, too long or uses characters outside its charset.
    #[error("invalid dashboard id `{input}`: {reason}")]
    InvalidDashboardId {
        /// The id that was given (cut to 64 bytes).
        input: String,
        /// What is wrong and the rule that applies.
        reason: String,
    },
    /// A timestamp string that is not RFC 3339, or a time outside the representable range.
    #[error("invalid timestamp `{input}`: {reason}")]
    InvalidTimestamp {
        /// The text that was given (cut to 64 bytes).
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A dashboard or widget broke one or more schema rules; every violation is listed with
    /// its path, e.g. `widgets[2].window_seconds`.
    #[error("{}", SchemaErrorsDisplay(.violations))]
    InvalidSchema {
        /// All violations found, in document order. Never empty.
        violations: Vec<SchemaViolation>,
    },
    /// The JSON text as a whole could not be parsed (syntax error, truncated input), or it
    /// has the wrong shape (e.g. a dashboard field of the wrong type).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the error (0 when unknown, e.g. for empty input).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What the parser found wrong.
        message: String,
    },
    /// Well-formed JSON whose top level is neither an array of events nor one event object.
    #[error("expected a JSON array of metric events (or a single event object), found {found}")]
    NotABatch {
        /// What was found instead: `a string`, `a number`, `a boolean` or `null`.
        found: &'static str,
    },
}

/// One broken schema rule, located by a JSON path such as `widgets[2].display_config.position`.
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, Dashboard, DashboardId, SchemaLimits, Widget};
///
/// let dashboard = Dashboard::new(DashboardId::new("ops")?, "Ops")
///     .with_widget(Widget::new("", "http.requests", Aggregation::Count, 60));
/// let violations = dashboard.violations(&SchemaLimits::default());
/// assert_eq!(violations[0].path, "widgets[0].title");
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON path of the offending field, relative to the validated document (`name`,
    /// `widgets[0].window_seconds`, ...).
    pub path: String,
    /// What is wrong, the limit that applies and what to change.
    pub message: String,
}

impl SchemaViolation {
    /// Creates a violation at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct SchemaErrorsDisplay<'a>(&'a [SchemaViolation]);

impl fmt::Display for SchemaErrorsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid schema: {one}"),
            many => {
                write!(f, "invalid schema ({} problems): ", many.len())?;
                for (i, v) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary, for quoting user input in messages.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", &s[..s.floor_char_boundary(max)])
}

impl CoreError {
    pub(crate) fn event(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidEvent {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let message = err.to_string();
        // serde_json appends " at line L column C"; keep the message without it.
        let message = match message.rfind(" at line ") {
            Some(pos) if err.line() > 0 => message[..pos].to_owned(),
            _ => message,
        };
        Self::MalformedJson {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}
