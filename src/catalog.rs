//! The metric catalog: the metric names the window store has seen, with their tag keys and
//! values, for an editor's pickers ([`Engine::catalog`](crate::Engine::catalog), `GET
//! /catalog`). Bounded: a catalog lists at most [`MAX_CATALOG_METRICS`] metrics,
//! [`MAX_CATALOG_TAG_KEYS`] tag keys per metric and [`MAX_CATALOG_TAG_VALUES`] values per
//! key, and says when it left something out.
//!
//! # Examples
//!
//! ```
//! use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
//!
//! let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! engine.ingest_json_at(br#"[
//!     {"metric_name": "http.latency", "value": 12, "event_time": 1700000000000, "tags": {"region": "eu"}},
//!     {"metric_name": "http.latency", "value": 15, "event_time": 1700000000000, "tags": {"region": "us"}},
//!     {"metric_name": "cpu", "value": 0.5, "event_time": 1700000000000}]"#, now)?;
//!
//! let catalog = engine.catalog();
//! let names: Vec<_> = catalog.metrics.iter().map(|m| m.name.as_str()).collect();
//! assert_eq!(names, ["cpu", "http.latency"]);
//! assert_eq!(catalog.metrics[1].series, 2);
//! assert_eq!(catalog.metrics[1].tags["region"], ["eu", "us"]);
//! # Ok::<(), rtdash::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rtdash_core::SeriesKey;
use serde::{Deserialize, Serialize};

/// Most metrics a [`Catalog`] lists.
pub const MAX_CATALOG_METRICS: usize = 1000;
/// Most tag keys a [`CatalogMetric`] lists.
pub const MAX_CATALOG_TAG_KEYS: usize = 32;
/// Most values a [`CatalogMetric`] lists per tag key.
pub const MAX_CATALOG_TAG_VALUES: usize = 64;

/// The metrics seen, sorted by name.
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The metrics, sorted by name (the first [`MAX_CATALOG_METRICS`]).
    pub metrics: Vec<CatalogMetric>,
    /// Whether metrics were left out (more than [`MAX_CATALOG_METRICS`]).
    pub truncated: bool,
}

/// One metric of a [`Catalog`].
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogMetric {
    /// The metric name.
    pub name: String,
    /// How many series (distinct tag sets) it has.
    pub series: u64,
    /// Its tag keys with their values, sorted.
    pub tags: BTreeMap<String, Vec<String>>,
    /// Whether tag keys or values were left out.
    pub truncated: bool,
}

impl Catalog {
    /// The catalog of `keys` (in any order, possibly repeated across stores).
    pub(crate) fn of_keys<'a>(keys: impl IntoIterator<Item = &'a SeriesKey>) -> Self {
        let mut metrics: BTreeMap<&str, Building<'a>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        let mut truncated = false;
        for key in keys {
            if !seen.insert(key) {
                continue;
            }
            let name = key.metric();
            if !metrics.contains_key(name) {
                if metrics.len() == MAX_CATALOG_METRICS {
                    // Keep the first names in order: drop the largest if this one sorts
                    // before it.
                    truncated = true;
                    match metrics.last_key_value() {
                        Some((last, _)) if name < *last => {
                            metrics.pop_last();
                        }
                        _ => continue,
                    }
                }
                metrics.insert(name, Building::default());
            }
            if let Some(m) = metrics.get_mut(name) {
                m.add(key);
            }
        }
        Self {
            metrics: metrics
                .into_iter()
                .map(|(name, b)| b.finish(name))
                .collect(),
            truncated,
        }
    }
}

#[derive(Default)]
struct Building<'a> {
    series: u64,
    tags: BTreeMap<&'a str, BTreeSet<&'a str>>,
    truncated: bool,
}

impl<'a> Building<'a> {
    fn add(&mut self, key: &'a SeriesKey) {
        self.series += 1;
        for (k, v) in key.tags() {
            if !self.tags.contains_key(k) && self.tags.len() >= MAX_CATALOG_TAG_KEYS {
                self.truncated = true;
                continue;
            }
            let values = self.tags.entry(k).or_default();
            if !values.contains(v) && values.len() >= MAX_CATALOG_TAG_VALUES {
                self.truncated = true;
                continue;
            }
            values.insert(v);
        }
    }

    fn finish(self, name: &str) -> CatalogMetric {
        CatalogMetric {
            name: name.to_owned(),
            series: self.series,
            tags: self
                .tags
                .into_iter()
                .map(|(k, vs)| (k.to_owned(), vs.into_iter().map(str::to_owned).collect()))
                .collect(),
            truncated: self.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(metric: &str, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(metric, tags.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn bounds_hold_and_say_so() {
        let mut keys = Vec::new();
        for i in 0..(MAX_CATALOG_METRICS + 5) {
            keys.push(key(&format!("m{i:05}"), &[]));
        }
        for v in 0..(MAX_CATALOG_TAG_VALUES + 3) {
            keys.push(key("m00000", &[("host", &format!("h{v:03}"))]));
        }
        // The largest names come first: the catalog still keeps the smallest.
        keys.reverse();
        let c = Catalog::of_keys(&keys);
        assert!(c.truncated);
        assert_eq!(c.metrics.len(), MAX_CATALOG_METRICS);
        assert_eq!(c.metrics[0].name, "m00000");
        assert_eq!(c.metrics.last().map(|m| m.name.as_str()), Some("m00999"));
        let m0 = &c.metrics[0];
        assert!(m0.truncated);
        assert_eq!(m0.tags["host"].len(), MAX_CATALOG_TAG_VALUES);
        assert_eq!(
            m0.series,
            u64::try_from(MAX_CATALOG_TAG_VALUES + 4).unwrap_or(0)
        );
    }

    #[test]
    fn repeated_keys_count_once() {
        let a = key("cpu", &[("region", "eu")]);
        let c = Catalog::of_keys([&a, &a, &key("cpu", &[("region", "us")])]);
        assert_eq!(c.metrics[0].series, 2);
        assert!(!c.truncated && !c.metrics[0].truncated);
    }
}
