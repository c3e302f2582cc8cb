//! [`MetricEvent`], its id and tags, and the validation rules of [`ValidationLimits`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, clip};
use crate::time::Timestamp;

/// A canonical (sorted by key) tag set: string labels used to filter and group series.
///
/// # Examples
///
/// ```
/// use rtdash_core::{MetricEvent, Tags, Timestamp};
///
/// let event = MetricEvent::new("http.requests", 1.0, Timestamp::from_millis(1_700_000_000_000))
///     .with_tag("region", "eu")
///     .with_tag("host", "a");
/// let tags: &Tags = &event.tags;
/// // Sorted by key, whatever the order they were added in.
/// assert_eq!(tags.keys().collect::<Vec<_>>(), ["host", "region"]);
/// ```
pub type Tags = BTreeMap<String, String>;

/// A producer-chosen event id, so a replayed event can be recognised and not counted twice.
///
/// Any non-empty string of at most [`EventId::MAX_LEN`] bytes. Serialized as a JSON string.
///
/// # Examples
///
/// ```
/// use rtdash_core::EventId;
///
/// let id = EventId::new("producer-7:42")?;
/// assert_eq!(id.as_str(), "producer-7:42");
/// assert!(EventId::new("").is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(Box<str>);

impl EventId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Creates an id.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidEventId`] when `id` is empty or longer than [`EventId::MAX_LEN`] bytes.
    pub fn new(id: impl Into<String>) -> Result<Self, CoreError> {
        let id = id.into();
        check_event_id(&id)?;
        Ok(Self(id.into_boxed_str()))
    }

    /// An id already checked by [`check_event_id`].
    pub(crate) fn from_checked(id: &str) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rule for an event id: non-empty, at most [`EventId::MAX_LEN`] bytes.
pub(crate) fn check_event_id(id: &str) -> Result<(), CoreError> {
    if id.is_empty() {
        return Err(CoreError::InvalidEventId {
            reason: "the id is empty; omit `id` instead of sending an empty one".into(),
        });
    }
    if id.len() > EventId::MAX_LEN {
        return Err(CoreError::InvalidEventId {
            reason: format!(
                "the id is {} bytes, the limit is {}",
                id.len(),
                EventId::MAX_LEN
            ),
        });
    }
    Ok(())
}

impl TryFrom<String> for EventId {
    type Error = CoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0.into_string()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One measurement: a value of a named metric, labelled by tags, at an event time.
///
/// JSON form (`tags` and `id` may be omitted; unknown fields are rejected so that a typo such
/// as `"tag"` is reported rather than silently ignored):
///
/// ```json
/// {"metric_name": "api.request.latency", "value": 12.5,
///  "tags": {"region": "eu", "host": "a"}, "event_time": 1700000000000, "id": "p1:42"}
/// ```
///
/// `event_time` is integer milliseconds since the Unix epoch (an RFC 3339 string is accepted
/// too, see [`Timestamp`]). Deserializing checks types only; call
/// [`validate`](MetricEvent::validate) (or decode with [`decode_batch`](crate::decode_batch),
/// which does) before trusting an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEvent {
    /// Metric name, e.g. `api.request.latency`.
    pub metric_name: String,
    /// The measured value; must be finite.
    pub value: f64,
    /// Labels of the series this event belongs to.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// When the measurement was taken (producer's clock).
    pub event_time: Timestamp,
    /// Optional producer-chosen id for de-duplication of replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<EventId>,
}

impl MetricEvent {
    /// An event without tags or id.
    #[must_use]
    pub fn new(metric_name: impl Into<String>, value: f64, event_time: Timestamp) -> Self {
        Self {
            metric_name: metric_name.into(),
            value,
            tags: Tags::new(),
            event_time,
            id: None,
        }
    }

    /// Adds (or replaces) tag `key` = `value`.
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the event id.
    #[must_use]
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = Some(id);
        self
    }

    /// Checks the event against `limits`, with `now` as the reference for event-time rules.
    ///
    /// The rules, in the order they are checked (the first broken one is reported):
    ///
    /// 1. `metric_name`: see [`check_metric_name`]; at most
    ///    [`max_metric_name_len`](ValidationLimits::max_metric_name_len) bytes.
    /// 2. `value`: finite (NaN and ±infinity are rejected).
    /// 3. `tags`: at most [`max_tags`](ValidationLimits::max_tags) entries; each key
    ///    follows [`check_tag_key`] and is at most
    ///    [`max_tag_key_len`](ValidationLimits::max_tag_key_len) bytes; each value is at most
    ///    [`max_tag_value_len`](ValidationLimits::max_tag_value_len) bytes (any UTF-8, may be
    ///    empty).
    /// 4. `event_time`: not more than [`max_future_skew`](ValidationLimits::max_future_skew)
    ///    after `now`, and, when [`max_age`](ValidationLimits::max_age) is set, not more than
    ///    that before `now`.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidEvent`] naming the field and the limit, e.g.
    /// `tags["region"]: value is 300 bytes, the limit is 256`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::{MetricEvent, Timestamp, ValidationLimits};
    ///
    /// let now = Timestamp::from_millis(1_700_000_000_000);
    /// let ok = MetricEvent::new("api.latency", 12.5, now).with_tag("region", "eu");
    /// assert!(ok.validate(&ValidationLimits::default(), now).is_ok());
    ///
    /// let bad = MetricEvent::new("api.latency", f64::NAN, now);
    /// let err = bad.validate(&ValidationLimits::default(), now).unwrap_err();
    /// assert_eq!(err.to_string(), "value: NaN is not a finite number");
    /// ```
    pub fn validate(&self, limits: &ValidationLimits, now: Timestamp) -> Result<(), CoreError> {
        validate_parts(
            &self.metric_name,
            self.value,
            self.tags.len(),
            self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.event_time,
            limits,
            now,
        )
    }
}

/// The validation rules of [`MetricEvent::validate`], on an event's parts, so that an owned
/// event and a borrowed one (the batch decoder's fast path) are checked by the same code.
///
/// `tag_count` is the number of distinct tag keys; `tags` yields each once.
pub(crate) fn validate_parts<'t>(
    metric_name: &str,
    value: f64,
    tag_count: usize,
    tags: impl Iterator<Item = (&'t str, &'t str)>,
    event_time: Timestamp,
    limits: &ValidationLimits,
    now: Timestamp,
) -> Result<(), CoreError> {
    check_metric_name(metric_name, limits.max_metric_name_len)
        .map_err(|reason| CoreError::event("metric_name", reason))?;
    if !value.is_finite() {
        return Err(CoreError::event(
            "value",
            format!("{} is not a finite number", value),
        ));
    }
    if tag_count > limits.max_tags {
        return Err(CoreError::event(
            "tags",
            format!(
                "{} tags, the limit is {}; move high-cardinality data out of tags",
                tag_count, limits.max_tags
            ),
        ));
    }
    for (key, tag_value) in tags {
        check_tag_key(key, limits.max_tag_key_len)
            .map_err(|reason| CoreError::event(tag_field(key), reason))?;
        if tag_value.len() > limits.max_tag_value_len {
            return Err(CoreError::event(
                tag_field(key),
                format!(
                    "value is {} bytes, the limit is {}",
                    tag_value.len(),
                    limits.max_tag_value_len
                ),
            ));
        }
    }
    let latest = now.saturating_add(limits.max_future_skew);
    if event_time > latest {
        let ahead = i128::from(event_time.as_millis()) - i128::from(now.as_millis());
        return Err(CoreError::event(
            "event_time",
            format!(
                "{} ({}) is {ahead} ms ahead of now ({}), the limit (max_future_skew) is {} ms; \
                     check the producer's clock and that event_time is in milliseconds",
                event_time.as_millis(),
                event_time,
                now,
                limits.max_future_skew.as_millis()
            ),
        ));
    }
    if let Some(max_age) = limits.max_age {
        let earliest = now.saturating_sub(max_age);
        if event_time < earliest {
            let behind = i128::from(now.as_millis()) - i128::from(event_time.as_millis());
            return Err(CoreError::event(
                "event_time",
                format!(
                    "{} ({}) is {behind} ms before now ({}), the limit (max_age) is {} ms",
                    event_time.as_millis(),
                    event_time,
                    now,
                    max_age.as_millis()
                ),
            ));
        }
    }
    Ok(())
}

/// The field name of tag `key` in error messages: `tags["key"]`.
pub(crate) fn tag_field(key: &str) -> String {
    format!("tags[{:?}]", clip(key, 64))
}

/// Limits checked by [`MetricEvent::validate`] and [`decode_batch`](crate::decode_batch).
///
/// Build with [`Default`] and the `with_*` setters; every field is also public to read.
///
/// # Examples
///
/// ```
/// use rtdash_core::ValidationLimits;
/// use std::time::Duration;
///
/// let limits = ValidationLimits::default()
///     .with_max_tags(8)
///     .with_max_age(Some(Duration::from_secs(3600)));
/// assert_eq!(limits.max_tags, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationLimits {
    /// Longest metric name, in bytes. Default 200.
    pub max_metric_name_len: usize,
    /// Most tags per event. Default 32.
    pub max_tags: usize,
    /// Longest tag key, in bytes. Default 128.
    pub max_tag_key_len: usize,
    /// Longest tag value, in bytes. Default 256.
    pub max_tag_value_len: usize,
    /// How far an event time may be ahead of `now` (producer clocks drift). Default 30 s.
    ///
    /// Why so little: with lateness judged per series, a producer whose clock runs fast
    /// harms only its own series — but it does harm it. An event from the future holds that
    /// series' watermark (its newest event time minus the grace period) ahead of real time,
    /// and the series' later events with correct times (once the clock is fixed, or from
    /// another producer of the same series) count as late until real time catches up. The
    /// default equals the window store's default grace period (30 s), so an accepted event
    /// moves its series' watermark at most up to the server's clock: events stamped with
    /// the current time are never late because of it. Raise it only together with the grace
    /// period.
    pub max_future_skew: Duration,
    /// How far an event time may be behind `now`; `None` (the default) accepts any age. Events
    /// older than the window store's retention are better routed to its late side channel
    /// than rejected here, so set this only to refuse clearly absurd times.
    pub max_age: Option<Duration>,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_metric_name_len: 200,
            max_tags: 32,
            max_tag_key_len: 128,
            max_tag_value_len: 256,
            max_future_skew: Duration::from_secs(30),
            max_age: None,
        }
    }
}

impl ValidationLimits {
    /// Sets [`max_metric_name_len`](Self::max_metric_name_len).
    #[must_use]
    pub fn with_max_metric_name_len(mut self, bytes: usize) -> Self {
        self.max_metric_name_len = bytes;
        self
    }

    /// Sets [`max_tags`](Self::max_tags).
    #[must_use]
    pub fn with_max_tags(mut self, count: usize) -> Self {
        self.max_tags = count;
        self
    }

    /// Sets [`max_tag_key_len`](Self::max_tag_key_len).
    #[must_use]
    pub fn with_max_tag_key_len(mut self, bytes: usize) -> Self {
        self.max_tag_key_len = bytes;
        self
    }

    /// Sets [`max_tag_value_len`](Self::max_tag_value_len).
    #[must_use]
    pub fn with_max_tag_value_len(mut self, bytes: usize) -> Self {
        self.max_tag_value_len = bytes;
        self
    }

    /// Sets [`max_future_skew`](Self::max_future_skew).
    #[must_use]
    pub fn with_max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// Sets [`max_age`](Self::max_age) (`None` accepts any age).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }
}

/// Checks a metric name: 1 to `max_len` bytes of ASCII letters, digits, `_`, `.`, `:` and `-`
/// (`[A-Za-z][A-Za-z0-9_.:-]*`), starting with a letter.
///
/// # Errors
///
/// A message saying what is wrong (without the field name), e.g.
/// `character ' ' at byte 3 is not allowed; use only A-Z a-z 0-9 _ . : -`.
pub fn check_metric_name(name: &str, max_len: usize) -> Result<(), String> {
    check_identifier(
        name,
        max_len,
        b"_.:-",
        |c| c.is_ascii_alphabetic(),
        "a letter",
    )
}

/// Checks a tag key: 1 to `max_len` bytes of ASCII letters, digits, `_`, `.` and `-`
/// (`[A-Za-z_][A-Za-z0-9_.-]*`), starting with a letter or `_`.
///
/// # Errors
///
/// A message saying what is wrong (without the field name).
pub fn check_tag_key(key: &str, max_len: usize) -> Result<(), String> {
    check_identifier(
        key,
        max_len,
        b"_.-",
        |c| c.is_ascii_alphabetic() || c == b'_',
        "a letter or `_`",
    )
}

fn check_identifier(
    s: &str,
    max_len: usize,
    extra: &[u8],
    first_ok: fn(u8) -> bool,
    first: &str,
) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > max_len {
        return Err(format!("is {} bytes, the limit is {max_len}", s.len()));
    }
    let allowed = |c: u8| c.is_ascii_alphanumeric() || extra.contains(&c);
    if let Some((i, c)) = s
        .char_indices()
        .find(|&(_, c)| !u8::try_from(c).is_ok_and(allowed))
    {
        let set: Vec<String> = extra.iter().map(|&b| char::from(b).to_string()).collect();
        return Err(format!(
            "character {c:?} at byte {i} is not allowed; use only A-Z a-z 0-9 {}",
            set.join(" ")
        ));
    }
    let c0 = s.as_bytes()[0];
    if !first_ok(c0) {
        return Err(format!(
            "must start with {first}, found {:?}",
            char::from(c0)
        ));
    }
    Ok(())
}
