//! [`TagFilter`]: which series a widget or query selects.

use serde::{Deserialize, Serialize};

use crate::event::Tags;
use crate::series::SeriesKey;

/// An equality filter on tags: a series matches when every `(key, value)` of the filter is
/// among its tags. The empty filter matches every series.
///
/// Serialized as a JSON object, e.g. `{"region": "eu", "env": "prod"}`.
///
/// # Examples
///
/// ```
/// use rtdash_core::{SeriesKey, TagFilter};
///
/// let key = SeriesKey::new("cpu", [("region", "eu"), ("host", "a")])?;
/// assert!(TagFilter::new().matches(&key));
/// assert!(TagFilter::new().with("region", "eu").matches(&key));
/// assert!(!TagFilter::new().with("region", "us").matches(&key));
/// assert!(!TagFilter::new().with("env", "prod").matches(&key));
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagFilter(Tags);

impl TagFilter {
    /// The empty filter (matches everything).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the condition tag `key` = `value` (replacing an earlier one on the same key).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Whether the series `key` has every tag of this filter with the same value.
    #[must_use]
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.0.iter().all(|(k, v)| key.tag(k) == Some(v.as_str()))
    }

    /// Whether a tag set (e.g. an event's) has every tag of this filter with the same value.
    #[must_use]
    pub fn matches_tags(&self, tags: &Tags) -> bool {
        self.0.iter().all(|(k, v)| tags.get(k) == Some(v))
    }

    /// Whether the filter has no condition.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of conditions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The conditions, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The conditions as a tag map.
    #[must_use]
    pub fn as_tags(&self) -> &Tags {
        &self.0
    }
}

impl From<Tags> for TagFilter {
    fn from(tags: Tags) -> Self {
        Self(tags)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for TagFilter {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}
