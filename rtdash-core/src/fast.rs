//! The batch decoder's fast path: the common event shape decoded straight from the input
//! without allocating (borrowed strings, tags in a fixed array).
//!
//! It only ever *accepts*: an element it decodes and that passes the same rule functions as
//! [`MetricEvent::validate`](crate::MetricEvent::validate). Everything else (an escape
//! sequence in a string, an RFC 3339 time, more than [`MAX_FAST_TAGS`] tags, a duplicate key,
//! any invalid value...) goes to the full decoder, which gives the verdict and the message.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::event::{ValidationLimits, check_event_id, validate_parts};
use crate::time::Timestamp;

/// Most tags an event may have to take the fast path.
pub(crate) const MAX_FAST_TAGS: usize = 16;

/// One event as it appears on the wire, borrowed from the input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Wire<'a> {
    pub(crate) metric_name: &'a str,
    pub(crate) value: f64,
    #[serde(default, borrow)]
    tags: WireTags<'a>,
    pub(crate) event_time: i64,
    #[serde(default)]
    pub(crate) id: Option<&'a str>,
}

struct WireTags<'a> {
    n: usize,
    items: [(&'a str, &'a str); MAX_FAST_TAGS],
}

impl Default for WireTags<'_> {
    fn default() -> Self {
        Self {
            n: 0,
            items: [("", ""); MAX_FAST_TAGS],
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireTags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = WireTags<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tags = WireTags::default();
                while let Some((k, v)) = map.next_entry::<&'de str, &'de str>()? {
                    if tags.n == MAX_FAST_TAGS {
                        return Err(de::Error::custom("too many tags for the fast path"));
                    }
                    tags.items[tags.n] = (k, v);
                    tags.n += 1;
                }
                Ok(tags)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<'a> Wire<'a> {
    /// Decodes one element, or `None` when it is not of the common shape.
    pub(crate) fn decode(raw: &'a str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// The tags, in input order, each key once (see [`Wire::valid`]).
    pub(crate) fn tags(&self) -> &[(&'a str, &'a str)] {
        &self.tags.items[..self.tags.n]
    }

    /// Whether the event passes validation, by the rules of
    /// [`MetricEvent::validate`](crate::MetricEvent::validate) and [`EventId::new`](crate::EventId::new).
    ///
    /// A duplicate tag key makes it `false` too (the full decoder decides what that means).
    pub(crate) fn valid(&self, limits: &ValidationLimits, now: Timestamp) -> bool {
        let tags = self.tags();
        let distinct = tags
            .iter()
            .enumerate()
            .all(|(i, (k, _))| !tags[..i].iter().any(|(k2, _)| k2 == k));
        distinct
            && self.id.is_none_or(|id| check_event_id(id).is_ok())
            && validate_parts(
                self.metric_name,
                self.value,
                tags.len(),
                tags.iter().copied(),
                Timestamp::from_millis(self.event_time),
                limits,
                now,
            )
            .is_ok()
    }
}
