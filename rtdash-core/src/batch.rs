//! Decoding JSON batches of events, one verdict per element.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::error::{CoreError, clip};
use crate::event::{EventId, MetricEvent, Tags, ValidationLimits, tag_field};
use crate::fast::Wire;
use crate::time::Timestamp;

/// The outcome of [`decode_batch`]: the valid events, and a per-index error for every other
/// element.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedBatch {
    /// Events that decoded and passed validation, in input order.
    pub accepted: Vec<MetricEvent>,
    /// Elements that did not, in input order, each with its index in the input array.
    pub rejected: Vec<RejectedEvent>,
}

impl DecodedBatch {
    /// Number of elements in the input (accepted + rejected).
    #[must_use]
    pub fn len(&self) -> usize {
        self.accepted.len() + self.rejected.len()
    }

    /// Whether the input array was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One element of a batch that was not accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedEvent {
    /// Index of the element in the input array (0 for a single-object input).
    pub index: usize,
    /// Why it was rejected: always [`CoreError::InvalidEvent`] naming the field.
    pub error: CoreError,
}

impl fmt::Display for RejectedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event [{}]: {}", self.index, self.error)
    }
}

/// Decodes a JSON batch of metric events and validates each against `limits` and `now`.
///
/// The input is a JSON array of event objects (see [`MetricEvent`] for the form). As a
/// convenience a single event object is accepted too and treated as a batch of one (index 0).
///
/// One bad element never spoils the others: an element that is not an event object (wrong
/// type of a field, missing field, unknown field, `"value": null` or a string, a number such
/// as `1e999` that overflows an `f64`, ...) or that fails [`MetricEvent::validate`] lands in
/// [`DecodedBatch::rejected`] with its index and a [`CoreError::InvalidEvent`] naming the
/// field; every other element lands in [`DecodedBatch::accepted`].
///
/// # Errors
///
/// Only when the input as a whole is unusable:
/// - [`CoreError::MalformedJson`] with line and column for a syntax error, truncated or
///   empty input, or invalid UTF-8;
/// - [`CoreError::NotABatch`] for well-formed JSON whose top level is a string, number,
///   boolean or `null`.
///
/// # Examples
///
/// ```
/// use rtdash_core::{decode_batch, Timestamp, ValidationLimits};
///
/// let json = br#"[
///   {"metric_name": "api.latency", "value": 12.5, "event_time": 1700000000000},
///   {"metric_name": "api.latency", "value": "fast", "event_time": 1700000000000}
/// ]"#;
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let batch = decode_batch(json, &ValidationLimits::default(), now)?;
/// assert_eq!(batch.accepted.len(), 1);
/// assert_eq!(batch.rejected[0].index, 1);
/// assert_eq!(
///     batch.rejected[0].to_string(),
///     "event [1]: value: expected a number, found a string"
/// );
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
pub fn decode_batch(
    json: &[u8],
    limits: &ValidationLimits,
    now: Timestamp,
) -> Result<DecodedBatch, CoreError> {
    let BorrowedBatch {
        items,
        tags,
        rejected,
    } = decode_batch_borrowed(json, limits, now)?;
    let accepted = items
        .into_iter()
        .map(|item| into_event(item, &tags))
        .collect();
    Ok(DecodedBatch { accepted, rejected })
}

/// `item` as an owned event; `tags` are its batch's.
fn into_event(item: BorrowedEvent<'_>, tags: &[(&str, &str)]) -> MetricEvent {
    match item {
        BorrowedEvent::Borrowed {
            metric,
            tags: range,
            event_time,
            value,
            id,
            ..
        } => MetricEvent {
            metric_name: metric.to_owned(),
            value,
            tags: tags[range]
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Tags>(),
            event_time,
            id: id.map(EventId::from_checked),
        },
        BorrowedEvent::Owned { event, .. } => event,
    }
}

/// A valid event of a [`BorrowedBatch`].
#[derive(Clone, Debug, PartialEq)]
pub enum BorrowedEvent<'a> {
    /// The common shape, its strings borrowed from the input.
    Borrowed {
        /// Index of the element in the input array.
        index: usize,
        /// Metric name.
        metric: &'a str,
        /// Its tags: [`BorrowedBatch::tags`] of this range, in input order, each key once.
        tags: Range<usize>,
        /// Event time.
        event_time: Timestamp,
        /// The value (finite).
        value: f64,
        /// The event id, if any (a valid [`EventId`]).
        id: Option<&'a str>,
    },
    /// Any other valid element (escape sequences in strings, an RFC 3339 time, many tags...),
    /// decoded into an owned event.
    Owned {
        /// Index of the element in the input array.
        index: usize,
        /// The event.
        event: MetricEvent,
    },
}

impl BorrowedEvent<'_> {
    /// Index of the element in the input array.
    #[must_use]
    pub fn index(&self) -> usize {
        match self {
            Self::Borrowed { index, .. } | Self::Owned { index, .. } => *index,
        }
    }
}

/// The outcome of [`decode_batch_borrowed`]: like [`DecodedBatch`], but the valid events
/// borrow their strings from the input where they can, so decoding allocates only a few
/// vectors per batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BorrowedBatch<'a> {
    /// Events that decoded and passed validation, in input order.
    pub items: Vec<BorrowedEvent<'a>>,
    /// Tags of the [`BorrowedEvent::Borrowed`] items; each owns a range of this.
    pub tags: Vec<(&'a str, &'a str)>,
    /// Elements that were not accepted, in input order, exactly as by [`decode_batch`].
    pub rejected: Vec<RejectedEvent>,
}

impl BorrowedBatch<'static> {
    /// A batch of owned, already validated events (e.g. read back from a log), indexed
    /// in order from 0.
    #[must_use]
    pub fn from_events(events: impl IntoIterator<Item = MetricEvent>) -> Self {
        Self {
            items: events
                .into_iter()
                .enumerate()
                .map(|(index, event)| BorrowedEvent::Owned { index, event })
                .collect(),
            ..Self::default()
        }
    }
}

impl<'a> BorrowedBatch<'a> {
    /// The tags of a range (from [`BorrowedEvent::Borrowed::tags`]).
    ///
    /// # Panics
    ///
    /// When `range` is not within [`tags`](Self::tags), i.e. not from this batch.
    #[must_use]
    pub fn tags(&self, range: Range<usize>) -> &[(&'a str, &'a str)] {
        &self.tags[range]
    }

    /// An owned copy of `item`, one of this batch's events: for a log that stores events
    /// beyond the life of the input.
    ///
    /// # Panics
    ///
    /// When `item` is not from this batch (its tag range is not within
    /// [`tags`](Self::tags)).
    #[must_use]
    pub fn to_event(&self, item: &BorrowedEvent<'a>) -> MetricEvent {
        into_event(item.clone(), &self.tags)
    }

    /// Number of elements in the input (accepted + rejected).
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len() + self.rejected.len()
    }

    /// Whether the input array was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`decode_batch`] without copying: the same verdicts, errors and messages, but valid
/// events of the common shape borrow their strings from `json`.
///
/// # Errors
///
/// As [`decode_batch`].
///
/// # Examples
///
/// ```
/// use rtdash_core::{BorrowedEvent, Timestamp, ValidationLimits, decode_batch_borrowed};
///
/// let json = br#"[{"metric_name": "api.latency", "value": 12.5, "tags": {"region": "eu"},
///                  "event_time": 1700000000000}]"#;
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let batch = decode_batch_borrowed(json, &ValidationLimits::default(), now)?;
/// let BorrowedEvent::Borrowed { metric, tags, .. } = &batch.items[0] else {
///     panic!("expected the fast path");
/// };
/// assert_eq!(*metric, "api.latency");
/// assert_eq!(batch.tags(tags.clone()), [("region", "eu")]);
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
pub fn decode_batch_borrowed<'a>(
    json: &'a [u8],
    limits: &ValidationLimits,
    now: Timestamp,
) -> Result<BorrowedBatch<'a>, CoreError> {
    let elements = elements(json)?;
    let mut out = BorrowedBatch {
        items: Vec::with_capacity(elements.len()),
        tags: Vec::with_capacity(elements.len() * 2),
        rejected: Vec::new(),
    };
    for (index, raw) in elements.into_iter().enumerate() {
        if let Some(w) = Wire::decode(raw.get())
            && w.valid(limits, now)
        {
            let start = out.tags.len();
            out.tags.extend_from_slice(w.tags());
            out.items.push(BorrowedEvent::Borrowed {
                index,
                metric: w.metric_name,
                tags: start..out.tags.len(),
                event_time: Timestamp::from_millis(w.event_time),
                value: w.value,
                id: w.id,
            });
            continue;
        }
        match decode_one(raw).and_then(|event| event.validate(limits, now).map(|()| event)) {
            Ok(event) => out.items.push(BorrowedEvent::Owned { index, event }),
            Err(error) => out.rejected.push(RejectedEvent { index, error }),
        }
    }
    Ok(out)
}

/// The elements of a batch (an array, or one object as a batch of one).
fn elements(json: &[u8]) -> Result<Vec<&RawValue>, CoreError> {
    let first = json
        .iter()
        .copied()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'[') => serde_json::from_slice(json).map_err(|e| CoreError::from_json(&e)),
        Some(b'{') => Ok(vec![
            serde_json::from_slice(json).map_err(|e| CoreError::from_json(&e))?,
        ]),
        None => Err(CoreError::MalformedJson {
            line: 0,
            column: 0,
            message: "the input is empty; expected a JSON array of metric events".into(),
        }),
        Some(_) => {
            let raw: &RawValue =
                serde_json::from_slice(json).map_err(|e| CoreError::from_json(&e))?;
            Err(CoreError::NotABatch {
                found: kind(raw.get()),
            })
        }
    }
}

/// Decodes and validates one JSON event object.
///
/// # Errors
///
/// [`CoreError::MalformedJson`] when `json` is not well-formed JSON; otherwise
/// [`CoreError::InvalidEvent`] naming the field, as for an element of [`decode_batch`].
pub fn decode_event(
    json: &[u8],
    limits: &ValidationLimits,
    now: Timestamp,
) -> Result<MetricEvent, CoreError> {
    let raw: &RawValue = serde_json::from_slice(json).map_err(|e| CoreError::from_json(&e))?;
    let event = decode_one(raw)?;
    event.validate(limits, now)?;
    Ok(event)
}

fn decode_one(raw: &RawValue) -> Result<MetricEvent, CoreError> {
    // Fast path: straight into the struct. Only on failure is the element taken apart again
    // to say which field is wrong.
    serde_json::from_str::<MetricEvent>(raw.get()).map_err(|e| diagnose(raw.get(), &e))
}

/// JSON kind of a raw value, from its first byte.
fn kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

const FIELDS: &str = "metric_name, value, tags, event_time, id";

/// Finds which field of an element made direct decoding fail, and says why.
fn diagnose(text: &str, fallback: &serde_json::Error) -> CoreError {
    let first = text.as_bytes().first().copied();
    if first != Some(b'{') {
        return CoreError::event(
            "event",
            format!("expected a JSON object, found {}", kind(text)),
        );
    }
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) else {
        return generic(fallback);
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.split(", ").any(|f| f == *k)) {
        return CoreError::event(
            clip(unknown, 64),
            format!("unknown field; an event has only {FIELDS}"),
        );
    }
    let field = |name: &str| fields.get(name).map(|r| r.get());
    // metric_name
    match field("metric_name") {
        None => return missing("metric_name", "a string such as \"api.request.latency\""),
        Some(t) if serde_json::from_str::<String>(t).is_err() => {
            return CoreError::event(
                "metric_name",
                format!("expected a string, found {}", kind(t)),
            );
        }
        Some(_) => {}
    }
    // value
    match field("value") {
        None => return missing("value", "a finite number"),
        Some("null") => {
            return CoreError::event(
                "value",
                "is null; expected a finite number (JSON has no NaN or infinity, and many \
                 encoders write them as null)",
            );
        }
        Some(t) if kind(t) != "a number" => {
            return CoreError::event("value", format!("expected a number, found {}", kind(t)));
        }
        Some(t) if serde_json::from_str::<f64>(t).is_err() => {
            return CoreError::event(
                "value",
                format!(
                    "{} is out of the range of a 64-bit float (it would be infinite)",
                    clip(t, 40)
                ),
            );
        }
        Some(_) => {}
    }
    // tags
    if let Some(t) = field("tags") {
        match serde_json::from_str::<BTreeMap<String, &RawValue>>(t) {
            Err(_) if t != "null" => {
                return CoreError::event(
                    "tags",
                    format!("expected an object of string values, found {}", kind(t)),
                );
            }
            Err(_) => {
                return CoreError::event(
                    "tags",
                    "is null; omit `tags` or send {} for an event without tags",
                );
            }
            Ok(tags) => {
                if let Some((k, v)) = tags.iter().find(|(_, v)| kind(v.get()) != "a string") {
                    return CoreError::event(
                        tag_field(k),
                        format!("expected a string value, found {}", kind(v.get())),
                    );
                }
            }
        }
    }
    // event_time
    match field("event_time") {
        None => return missing("event_time", "integer milliseconds since the Unix epoch"),
        Some(t) => {
            if let Err(e) = serde_json::from_str::<Timestamp>(t) {
                let msg = if kind(t) == "a number" || kind(t) == "a string" {
                    strip_position(&e)
                } else {
                    format!(
                        "expected integer milliseconds since the Unix epoch (or an RFC 3339 \
                         string), found {}",
                        kind(t)
                    )
                };
                return CoreError::event("event_time", msg);
            }
        }
    }
    // id
    if let Some(t) = field("id") {
        if t == "null" {
            // `null` is accepted as "no id" by the derived decoder; nothing to report.
        } else {
            match serde_json::from_str::<String>(t) {
                Err(_) => {
                    return CoreError::event("id", format!("expected a string, found {}", kind(t)));
                }
                Ok(s) => {
                    if let Err(e) = EventId::new(s) {
                        return CoreError::event("id", e.to_string());
                    }
                }
            }
        }
    }
    generic(fallback)
}

fn missing(field: &str, expected: &str) -> CoreError {
    CoreError::event(field, format!("missing; expected {expected}"))
}

fn generic(err: &serde_json::Error) -> CoreError {
    CoreError::event("event", strip_position(err))
}

fn strip_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000)
    }

    #[test]
    fn to_event_gives_the_owned_decoder_s_events() {
        let json = br#"[{"metric_name":"a","value":1,"event_time":1700000000000,"tags":{"h":"x","r":"eu"},"id":"e1"},
                        {"metric_name":"b\u0041","value":2,"event_time":"2023-11-14T22:13:20Z"},
                        {"metric_name":"c","value":"bad","event_time":1700000000000}]"#;
        let limits = ValidationLimits::default();
        let owned = decode_batch(json, &limits, now()).unwrap();
        let borrowed = decode_batch_borrowed(json, &limits, now()).unwrap();
        let events: Vec<MetricEvent> = borrowed
            .items
            .iter()
            .map(|i| borrowed.to_event(i))
            .collect();
        assert_eq!(events, owned.accepted);
        assert_eq!(events[0].id.as_ref().map(EventId::as_str), Some("e1"));
        assert_eq!(events[0].tags.len(), 2);
    }

    fn one(json: &str) -> CoreError {
        let batch = decode_batch(json.as_bytes(), &ValidationLimits::default(), now()).unwrap();
        assert!(batch.accepted.is_empty(), "{json}");
        batch.rejected.into_iter().next().unwrap().error
    }

    #[test]
    fn out_of_range_number_is_per_element() {
        let e = one(r#"[{"metric_name":"a","value":1e999,"event_time":1}]"#);
        assert_eq!(
            e.to_string(),
            "value: 1e999 is out of the range of a 64-bit float (it would be infinite)"
        );
    }

    #[test]
    fn names_the_field() {
        let cases = [
            (r#"[3]"#, "event: expected a JSON object, found a number"),
            (
                r#"[{"value":1,"event_time":1}]"#,
                "metric_name: missing; expected a string such as \"api.request.latency\"",
            ),
            (
                r#"[{"metric_name":7,"value":1,"event_time":1}]"#,
                "metric_name: expected a string, found a number",
            ),
            (
                r#"[{"metric_name":"a","event_time":1}]"#,
                "value: missing; expected a finite number",
            ),
            (
                r#"[{"metric_name":"a","value":[1],"event_time":1}]"#,
                "value: expected a number, found an array",
            ),
            (
                r#"[{"metric_name":"a","value":1,"tags":[],"event_time":1}]"#,
                "tags: expected an object of string values, found an array",
            ),
            (
                r#"[{"metric_name":"a","value":1,"tags":{"k":1},"event_time":1}]"#,
                "tags[\"k\"]: expected a string value, found a number",
            ),
            (
                r#"[{"metric_name":"a","value":1}]"#,
                "event_time: missing; expected integer milliseconds since the Unix epoch",
            ),
            (
                r#"[{"metric_name":"a","value":1,"event_time":true}]"#,
                "event_time: expected integer milliseconds since the Unix epoch (or an RFC 3339 string), found a boolean",
            ),
            (
                r#"[{"metric_name":"a","value":1,"event_time":1,"id":5}]"#,
                "id: expected a string, found a number",
            ),
            (
                r#"[{"metric_name":"a","value":1,"event_time":1,"id":""}]"#,
                "id: invalid event id: the id is empty; omit `id` instead of sending an empty one",
            ),
            (
                r#"[{"metric_name":"a","value":1,"event_time":1,"tag":{}}]"#,
                "tag: unknown field; an event has only metric_name, value, tags, event_time, id",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(one(json).to_string(), want, "{json}");
        }
    }

    #[test]
    fn duplicate_field_falls_back_to_parser_message() {
        let e = one(r#"[{"metric_name":"a","value":1,"value":2,"event_time":1}]"#);
        assert_eq!(e.to_string(), "event: duplicate field `value`");
    }
}
