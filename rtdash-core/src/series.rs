//! Series identity: [`SeriesKey`] (metric name + canonical tag set), [`SeriesId`] and the
//! [`SeriesInterner`] that maps one to the other.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::{HashMap, HashTable};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CoreError, clip};
use crate::event::{MetricEvent, Tags};

/// Copyable handle of an interned series.
///
/// Ids are dense: a [`SeriesInterner`] hands out `0, 1, 2, …` in interning order, so an id's
/// [`index`](SeriesId::index) can index a `Vec` of per-series state directly. An id is only
/// meaningful for the interner that issued it (or one restored from its serialized form).
/// Serialized as its index (a JSON integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeriesId(u32);

impl SeriesId {
    /// The dense index of this id (`0..interner.len()`).
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id with the given dense index, or `None` when it does not fit in the id space
    /// (`u32`). Whether a series with this id exists depends on the interner.
    #[must_use]
    pub fn from_index(index: usize) -> Option<Self> {
        u32::try_from(index).ok().map(Self)
    }
}

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "series#{}", self.0)
    }
}

/// The identity of one time series: a metric name plus a canonical (sorted by key) tag set.
///
/// Two keys built from the same metric and the same tags in any order are equal. Cloning is
/// cheap (the data sits behind an `Arc`). [`Display`](fmt::Display) prints the
/// Prometheus-like form `api.latency{host="a",region="eu"}`.
///
/// Serialized as `{"metric": "api.latency", "tags": {"host": "a"}}` (`tags` may be omitted
/// when empty).
///
/// A key checks only its structure (non-empty metric name and tag keys, no duplicate tag
/// keys); the charset and length rules of events live in
/// [`ValidationLimits`](crate::ValidationLimits).
///
/// # Examples
///
/// ```
/// use rtdash_core::SeriesKey;
///
/// let a = SeriesKey::new("api.latency", [("region", "eu"), ("host", "a")])?;
/// let b = SeriesKey::new("api.latency", [("host", "a"), ("region", "eu")])?;
/// assert_eq!(a, b);
/// assert_eq!(a.tag("region"), Some("eu"));
/// assert_eq!(a.to_string(), r#"api.latency{host="a",region="eu"}"#);
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(Arc<KeyInner>);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct KeyInner {
    metric: Box<str>,
    /// Sorted by key, keys unique.
    tags: Box<[(Box<str>, Box<str>)]>,
}

impl SeriesKey {
    /// Builds a key from a metric name and tags given in any order.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSeriesKey`] when the metric name or a tag key is empty, or when a
    /// tag key appears twice.
    pub fn new<K, V>(
        metric: &str,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, CoreError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        if metric.is_empty() {
            return Err(CoreError::InvalidSeriesKey {
                reason: "the metric name is empty".into(),
            });
        }
        let mut pairs: Vec<(Box<str>, Box<str>)> = tags
            .into_iter()
            .map(|(k, v)| (Box::from(k.as_ref()), Box::from(v.as_ref())))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if pairs.first().is_some_and(|(k, _)| k.is_empty()) {
            return Err(CoreError::InvalidSeriesKey {
                reason: format!("metric `{}` has a tag with an empty key", clip(metric, 64)),
            });
        }
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(CoreError::InvalidSeriesKey {
                reason: format!(
                    "metric `{}` has the tag key `{}` more than once",
                    clip(metric, 64),
                    clip(&w[0].0, 64)
                ),
            });
        }
        Ok(Self(Arc::new(KeyInner {
            metric: metric.into(),
            tags: pairs.into_boxed_slice(),
        })))
    }

    /// Builds the key of an event's series (its metric name and tags).
    ///
    /// # Errors
    ///
    /// As [`SeriesKey::new`]: only an empty metric name or an empty tag key can fail here.
    pub fn of_event(event: &MetricEvent) -> Result<Self, CoreError> {
        Self::new(&event.metric_name, &event.tags)
    }

    /// The metric name.
    #[must_use]
    pub fn metric(&self) -> &str {
        &self.0.metric
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.0.tags.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of tags.
    #[must_use]
    pub fn tag_count(&self) -> usize {
        self.0.tags.len()
    }

    /// The value of tag `key`, if the series has it.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.0
            .tags
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0.tags[i].1)
    }

    /// The tags as an owned map.
    #[must_use]
    pub fn to_tags(&self) -> Tags {
        self.tags()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Whether this key is `metric` with exactly `tags` (in any order), without allocating.
    ///
    /// Input with a duplicated tag key never matches.
    pub fn matches<'a>(
        &self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> bool {
        if *self.0.metric != *metric {
            return false;
        }
        let mine = &self.0.tags;
        // Fast path: input in canonical order (e.g. iterated from a `BTreeMap`).
        let mut n = 0;
        let mut in_order = true;
        for (k, v) in tags.clone() {
            match mine.get(n) {
                Some((mk, mv)) if **mk == *k && **mv == *v => n += 1,
                _ => {
                    in_order = false;
                    break;
                }
            }
        }
        if in_order {
            return n == mine.len();
        }
        // Any order: every one of our pairs is in the input and the counts agree. Our keys
        // are distinct, so the input holds exactly our pairs.
        tags.clone().into_iter().count() == mine.len()
            && mine.iter().all(|(mk, mv)| {
                tags.clone()
                    .into_iter()
                    .any(|(k, v)| **mk == *k && **mv == *v)
            })
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric())?;
        if self.tag_count() > 0 {
            f.write_str("{")?;
            for (i, (k, v)) in self.tags().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeriesKey({self})")
    }
}

#[derive(Serialize)]
struct KeyRef<'a> {
    metric: &'a str,
    tags: TagsRef<'a>,
}

struct TagsRef<'a>(&'a SeriesKey);

impl Serialize for TagsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.tags())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyOwned {
    metric: String,
    #[serde(default)]
    tags: Tags,
}

impl Serialize for SeriesKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyRef {
            metric: self.metric(),
            tags: TagsRef(self),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let owned = KeyOwned::deserialize(deserializer)?;
        Self::new(&owned.metric, &owned.tags).map_err(D::Error::custom)
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    hash: u64,
    /// Where the series' encoded key starts in the arena.
    start: usize,
    /// Length of the encoded key.
    len: u32,
    id: u32,
}

/// Separates tag pairs in the arena encoding (never a byte of UTF-8).
const PAIR: u8 = 0xff;
/// Separates a tag key from its value in the arena encoding (never a byte of UTF-8).
const KV: u8 = 0xfe;

/// `rest` without its prefix `p`, if it starts with `p`.
#[inline]
fn strip<'r>(rest: &'r [u8], p: &[u8]) -> Option<&'r [u8]> {
    let (head, tail) = rest.split_at_checked(p.len())?;
    eq_short(head, p).then_some(tail)
}

/// Equality of two byte slices, inlined with overlapping word loads: the strings compared
/// here are short, where a `memcmp` call costs more than the comparison itself.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if load8(a, i) != load8(b, i) {
                return false;
            }
            i += 8;
        }
        load8(a, n - 8) == load8(b, n - 8)
    } else if n >= 4 {
        load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4)
    } else if n > 0 {
        a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]
    } else {
        true
    }
}

#[inline]
fn load8(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline]
fn load4(s: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// Whether `rec` (an arena record: `metric (PAIR key KV value)*`, tags sorted by key) encodes
/// exactly `metric` with `tags` in any order.
fn record_matches<'a>(
    rec: &[u8],
    metric: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    let Some(tag_part) = strip(rec, metric.as_bytes()) else {
        return false;
    };
    if tag_part.first().is_some_and(|&b| b != PAIR) {
        return false; // `metric` is only a prefix of the stored metric name
    }
    // Fast path: input in canonical order, compared in one pass over contiguous bytes.
    let mut rest = tag_part;
    let mut in_order = true;
    for (k, v) in tags.clone() {
        let next = match rest.split_first() {
            Some((&PAIR, r)) => strip(r, k.as_bytes()).and_then(|r| match r.split_first() {
                Some((&KV, r)) => strip(r, v.as_bytes()),
                _ => None,
            }),
            _ => None,
        };
        match next {
            Some(r) => rest = r,
            None => {
                in_order = false;
                break;
            }
        }
    }
    if in_order {
        return rest.is_empty();
    }
    // Any order: every stored pair is in the input and the counts agree. Stored keys are
    // distinct, so the input holds exactly the stored pairs.
    let mut stored = 0usize;
    for seg in tag_part.split(|&b| b == PAIR).skip(1) {
        stored += 1;
        let Some(at) = seg.iter().position(|&b| b == KV) else {
            return false;
        };
        let (rk, rv) = (&seg[..at], &seg[at + 1..]);
        if !tags
            .clone()
            .into_iter()
            .any(|(k, v)| eq_short(k.as_bytes(), rk) && eq_short(v.as_bytes(), rv))
        {
            return false;
        }
    }
    stored == tags.into_iter().count()
}

/// Maps [`SeriesKey`]s to dense, copyable [`SeriesId`]s and back.
///
/// Looking up a series that is already known ([`get`](Self::get),
/// [`get_or_intern`](Self::get_or_intern), [`intern_event`](Self::intern_event)) does not
/// allocate: the (metric, tags) pair is hashed in place with a hash that does not depend on
/// the order of the tags, and the candidate is compared byte for byte with a compact copy of
/// the stored key. Only a new series allocates. Tags in canonical (sorted) order, as iterated
/// from [`Tags`], take the fastest path; other orders cost a few more comparisons.
///
/// Ids are handed out as `0, 1, 2, …` and never reused. Serialized as the list of keys in id
/// order, so a deserialized interner gives every key the same id again (the cardinality
/// guard is not serialized: a deserialized interner has none until
/// [`set_max_series`](Self::set_max_series)).
///
/// # Cardinality guard
///
/// [`with_max_series`](Self::with_max_series) caps the number of series; interning beyond it
/// fails with [`CoreError::TooManySeries`] instead of growing memory without bound when a
/// producer puts an id or a timestamp in a tag. [`new`](Self::new) is capped only by the id
/// space (`u32`).
///
/// # Memory
///
/// Per series: the [`SeriesKey`] (an `Arc` with the metric name and tags), a second compact
/// copy of the key bytes for lookups, a 24-byte hash table slot and a 4-byte entry in the
/// per-metric index.
///
/// # Examples
///
/// ```
/// use rtdash_core::SeriesInterner;
///
/// let mut interner = SeriesInterner::with_max_series(10_000);
/// let a = interner.get_or_intern("cpu", [("host", "a"), ("dc", "eu")])?;
/// let b = interner.get_or_intern("cpu", [("dc", "eu"), ("host", "a")])?;
/// assert_eq!(a, b);
/// assert_eq!(interner.get("cpu", [("host", "a"), ("dc", "eu")]), Some(a));
/// assert_eq!(interner.key(a).unwrap().tag("dc"), Some("eu"));
/// assert_eq!(interner.series_of_metric("cpu"), &[a]);
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
pub struct SeriesInterner {
    keys: Vec<SeriesKey>,
    /// Every key encoded contiguously (`metric (PAIR key KV value)*`), so a lookup compares
    /// against one run of bytes instead of chasing a pointer per string.
    arena: Vec<u8>,
    table: HashTable<Slot>,
    by_metric: HashMap<Box<str>, Vec<SeriesId>, RandomState>,
    state: RandomState,
    max_series: usize,
    /// Test-only: every key hashes to the same value, so every lookup goes through
    /// collision handling.
    #[cfg(test)]
    degenerate_hash: bool,
}

impl fmt::Debug for SeriesInterner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesInterner")
            .field("len", &self.keys.len())
            .field("max_series", &self.max_series)
            .finish_non_exhaustive()
    }
}

impl Default for SeriesInterner {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for SeriesInterner {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            arena: self.arena.clone(),
            table: self.table.clone(),
            by_metric: self.by_metric.clone(),
            state: self.state.clone(),
            max_series: self.max_series,
            #[cfg(test)]
            degenerate_hash: self.degenerate_hash,
        }
    }
}

/// The id space: at most `u32::MAX + 1` ids, capped to what `usize` holds.
const ID_SPACE: usize = if usize::BITS > 32 {
    1 << 32
} else {
    usize::MAX
};

impl SeriesInterner {
    /// An empty interner limited only by the id space (`u32`).
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_series(ID_SPACE)
    }

    /// An empty interner that refuses to intern more than `max` series.
    #[must_use]
    pub fn with_max_series(max: usize) -> Self {
        Self {
            keys: Vec::new(),
            arena: Vec::new(),
            table: HashTable::new(),
            by_metric: HashMap::default(),
            state: RandomState::default(),
            max_series: max.min(ID_SPACE),
            #[cfg(test)]
            degenerate_hash: false,
        }
    }

    /// Builds an interner holding `keys` with ids `0, 1, …` in iteration order, limited only by
    /// the id space.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSeriesKey`] when a key appears twice (ids would be ambiguous), or
    /// [`CoreError::TooManySeries`] when there are more keys than ids.
    pub fn from_keys(keys: impl IntoIterator<Item = SeriesKey>) -> Result<Self, CoreError> {
        let mut interner = Self::new();
        for key in keys {
            let before = interner.len();
            let id = interner.intern_key(&key)?;
            if id.index() < before {
                return Err(CoreError::InvalidSeriesKey {
                    reason: format!("`{key}` appears twice in the list of interned series"),
                });
            }
        }
        Ok(interner)
    }

    /// The cardinality guard: the most series this interner accepts.
    #[must_use]
    pub fn max_series(&self) -> usize {
        self.max_series
    }

    /// Changes the cardinality guard. Series already interned stay, even beyond `max`; only
    /// new ones are refused.
    pub fn set_max_series(&mut self, max: usize) {
        self.max_series = max.min(ID_SPACE);
    }

    fn hash_of<'a>(&self, metric: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
        #[cfg(test)]
        if self.degenerate_hash {
            return 7;
        }
        // Commutative combination of per-pair hashes: independent of tag order, no sorting.
        // `PAIR` cannot occur in UTF-8, so `key PAIR value` is unambiguous.
        let mut acc = 0u64;
        for (k, v) in tags {
            let mut h = self.state.build_hasher();
            h.write(k.as_bytes());
            h.write_u8(PAIR);
            h.write(v.as_bytes());
            acc = acc.wrapping_add(h.finish());
        }
        let mut h = self.state.build_hasher();
        h.write(metric.as_bytes());
        h.write_u8(PAIR);
        h.write_u64(acc);
        h.finish()
    }

    fn find<'a>(
        &self,
        hash: u64,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        let arena = &self.arena;
        self.table
            .find(hash, |slot| {
                slot.hash == hash
                    && arena
                        .get(slot.start..slot.start + slot.len as usize)
                        .is_some_and(|rec| record_matches(rec, metric, tags.clone()))
            })
            .map(|slot| SeriesId(slot.id))
    }

    /// The id of series (`metric`, `tags`), with tags in any order, if it is interned.
    /// Does not allocate.
    ///
    /// Tags with a duplicated key never match.
    pub fn get<'a>(
        &self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        let hash = self.hash_of(metric, tags.clone());
        self.find(hash, metric, tags)
    }

    /// The id of `key`, if it is interned. Does not allocate.
    #[must_use]
    pub fn get_key(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.get(key.metric(), key.tags())
    }

    /// The id of series (`metric`, `tags`), interning it first if it is new. Tags may come in
    /// any order. Does not allocate when the series is known.
    ///
    /// # Errors
    ///
    /// For a new series only: [`CoreError::InvalidSeriesKey`] (empty metric name or tag key,
    /// duplicate tag key) or [`CoreError::TooManySeries`] when the cardinality guard is reached.
    pub fn get_or_intern<'a>(
        &mut self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<SeriesId, CoreError> {
        let hash = self.hash_of(metric, tags.clone());
        if let Some(id) = self.find(hash, metric, tags.clone()) {
            return Ok(id);
        }
        let key = SeriesKey::new(metric, tags)?;
        self.insert_new(hash, key)
    }

    /// The id of `key`, interning it (sharing its `Arc`) if it is new.
    ///
    /// # Errors
    ///
    /// [`CoreError::TooManySeries`] when the key is new and the cardinality guard is reached.
    pub fn intern_key(&mut self, key: &SeriesKey) -> Result<SeriesId, CoreError> {
        let hash = self.hash_of(key.metric(), key.tags());
        if let Some(id) = self.find(hash, key.metric(), key.tags()) {
            return Ok(id);
        }
        self.insert_new(hash, key.clone())
    }

    /// The id of `event`'s series (metric name and tags), interning it if it is new. Does not
    /// allocate when the series is known.
    ///
    /// # Errors
    ///
    /// As [`get_or_intern`](Self::get_or_intern).
    pub fn intern_event(&mut self, event: &MetricEvent) -> Result<SeriesId, CoreError> {
        self.get_or_intern(
            &event.metric_name,
            event.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    fn insert_new(&mut self, hash: u64, key: SeriesKey) -> Result<SeriesId, CoreError> {
        if self.keys.len() >= self.max_series {
            return Err(CoreError::TooManySeries {
                limit: self.max_series,
                series: key.to_string(),
            });
        }
        let raw = u32::try_from(self.keys.len()).map_err(|_| CoreError::TooManySeries {
            limit: ID_SPACE,
            series: key.to_string(),
        })?;
        let id = SeriesId(raw);
        let start = self.arena.len();
        self.arena.extend_from_slice(key.metric().as_bytes());
        for (k, v) in key.tags() {
            self.arena.push(PAIR);
            self.arena.extend_from_slice(k.as_bytes());
            self.arena.push(KV);
            self.arena.extend_from_slice(v.as_bytes());
        }
        let Ok(len) = u32::try_from(self.arena.len() - start) else {
            self.arena.truncate(start);
            return Err(CoreError::InvalidSeriesKey {
                reason: format!(
                    "the key of metric `{}` is longer than 4 GiB",
                    clip(key.metric(), 64)
                ),
            });
        };
        let slot = Slot {
            hash,
            start,
            len,
            id: raw,
        };
        self.table.insert_unique(hash, slot, |slot| slot.hash);
        match self.by_metric.get_mut(key.metric()) {
            Some(ids) => ids.push(id),
            None => {
                self.by_metric.insert(key.metric().into(), vec![id]);
            }
        }
        self.keys.push(key);
        Ok(id)
    }

    /// The key of `id`, or `None` when this interner did not issue it.
    #[must_use]
    pub fn key(&self, id: SeriesId) -> Option<&SeriesKey> {
        self.keys.get(id.index())
    }

    /// Number of interned series.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no series is interned.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All series of one metric name, in id order (empty when the metric is unknown).
    #[must_use]
    pub fn series_of_metric(&self, metric: &str) -> &[SeriesId] {
        self.by_metric.get(metric).map_or(&[], Vec::as_slice)
    }

    /// The metric names seen so far, in no particular order.
    pub fn metrics(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_metric.keys().map(|m| &**m)
    }

    /// All series in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (SeriesId, &SeriesKey)> + '_ {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| (SeriesId(i as u32), k))
    }
}

impl Serialize for SeriesInterner {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.keys)
    }
}

impl<'de> Deserialize<'de> for SeriesInterner {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keys = Vec::<SeriesKey>::deserialize(deserializer)?;
        Self::from_keys(keys).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degenerate() -> SeriesInterner {
        let mut i = SeriesInterner::new();
        i.degenerate_hash = true;
        i
    }

    #[test]
    fn collisions_are_resolved_by_comparing_keys() {
        let mut i = degenerate();
        let mut ids = Vec::new();
        for n in 0..50 {
            let host = format!("h{n}");
            ids.push(
                i.get_or_intern("cpu", [("host", host.as_str()), ("dc", "eu")])
                    .unwrap(),
            );
        }
        let other = i
            .get_or_intern("mem", [("host", "h1"), ("dc", "eu")])
            .unwrap();
        let bare = i.get_or_intern("cpu", []).unwrap();
        let longer = i.get_or_intern("cpu2", []).unwrap();
        assert_eq!(i.len(), 53);
        for (n, id) in ids.iter().enumerate() {
            let host = format!("h{n}");
            assert_eq!(
                i.get("cpu", [("dc", "eu"), ("host", host.as_str())]),
                Some(*id)
            );
            assert_eq!(
                i.get("cpu", [("host", host.as_str()), ("dc", "eu")]),
                Some(*id)
            );
            assert_eq!(id.index(), n);
        }
        assert_eq!(i.get("mem", [("dc", "eu"), ("host", "h1")]), Some(other));
        assert_eq!(i.get("cpu", []), Some(bare));
        assert_eq!(i.get("cpu2", []), Some(longer));
        assert_eq!(i.get("cp", []), None);
        assert_eq!(i.get("cpu", [("host", "h1")]), None);
        assert_eq!(i.get("cpu", [("host", "h1"), ("dc", "us")]), None);
        assert_eq!(
            i.get("cpu", [("host", "h1"), ("dc", "eu"), ("x", "y")]),
            None
        );
        assert_eq!(i.get("cpu", [("hos", "th1"), ("dc", "eu")]), None);
    }

    #[test]
    fn duplicate_input_keys_never_match() {
        let mut i = degenerate();
        let id = i.get_or_intern("cpu", [("a", "1"), ("b", "2")]).unwrap();
        assert_eq!(i.get("cpu", [("b", "2"), ("a", "1")]), Some(id));
        assert_eq!(i.get("cpu", [("a", "1"), ("a", "1")]), None);
        assert_eq!(i.get("cpu", [("b", "2"), ("b", "2")]), None);
        assert!(i.get_or_intern("cpu", [("a", "1"), ("a", "1")]).is_err());
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn key_matches_handles_orders_and_counts() {
        let k = SeriesKey::new("m", [("b", "2"), ("a", "1"), ("c", "3")]).unwrap();
        assert!(k.matches("m", [("a", "1"), ("b", "2"), ("c", "3")]));
        assert!(k.matches("m", [("c", "3"), ("a", "1"), ("b", "2")]));
        assert!(!k.matches("m", [("a", "1"), ("b", "2")]));
        assert!(!k.matches("m", [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]));
        assert!(!k.matches("n", [("a", "1"), ("b", "2"), ("c", "3")]));
        assert!(!k.matches("m", [("c", "3"), ("a", "1"), ("a", "1")]));
    }

    #[test]
    fn hash_is_order_independent() {
        let i = SeriesInterner::new();
        let a = i.hash_of("m", [("x", "1"), ("y", "2"), ("z", "3")]);
        let b = i.hash_of("m", [("z", "3"), ("x", "1"), ("y", "2")]);
        assert_eq!(a, b);
        assert_ne!(a, i.hash_of("m", [("x", "1"), ("y", "2")]));
    }

    #[test]
    fn eq_short_agrees_with_slice_eq() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for len in 0..=text.len() {
            for other in [&text[..len], &text[1..=len.min(text.len() - 1)]] {
                assert_eq!(eq_short(&text[..len], other), text[..len] == *other);
            }
            for flip in 0..len {
                let mut b = text[..len].to_vec();
                b[flip] ^= 1;
                assert!(!eq_short(&text[..len], &b), "len {len} flip {flip}");
            }
        }
    }
}
