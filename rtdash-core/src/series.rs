//! Series identity: [`SeriesKey`] (metric name + canonical tag set), [`SeriesId`] and the
//! [`SeriesInterner`] that maps one to the other.

use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
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
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey(Arc<KeyInner>);

/// A key in one string: the metric name, then each tag's key and value, concatenated (three
/// allocations per key whatever the number of tags: the `Arc`, the text, the offsets).
#[derive(PartialEq, Eq, Hash)]
struct KeyInner {
    text: Box<str>,
    /// Where the metric name ends in `text`.
    metric_end: u32,
    /// Where each tag's key and value end in `text`: `[key0, value0, key1, value1, …]`,
    /// tags sorted by key, keys unique.
    ends: Box<[u32]>,
}

impl KeyInner {
    /// Tag `i` (`i < ends.len() / 2`).
    #[inline]
    fn tag_at(&self, i: usize) -> (&str, &str) {
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends[2 * prev + 1],
            None => self.metric_end,
        };
        let (k_end, v_end) = (self.ends[2 * i], self.ends[2 * i + 1]);
        let text = &*self.text;
        (
            text.get(start as usize..k_end as usize).unwrap_or_default(),
            text.get(k_end as usize..v_end as usize).unwrap_or_default(),
        )
    }
}

impl SeriesKey {
    /// Builds a key from a metric name and tags given in any order.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSeriesKey`] when the metric name or a tag key is empty, when a
    /// tag key appears twice, or when the key is longer than 4 GiB.
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
        let mut pairs: Vec<(K, V)> = tags.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        if pairs.first().is_some_and(|(k, _)| k.as_ref().is_empty()) {
            return Err(CoreError::InvalidSeriesKey {
                reason: format!("metric `{}` has a tag with an empty key", clip(metric, 64)),
            });
        }
        if let Some(w) = pairs
            .windows(2)
            .find(|w| w[0].0.as_ref() == w[1].0.as_ref())
        {
            return Err(CoreError::InvalidSeriesKey {
                reason: format!(
                    "metric `{}` has the tag key `{}` more than once",
                    clip(metric, 64),
                    clip(w[0].0.as_ref(), 64)
                ),
            });
        }
        let len = pairs.iter().fold(metric.len(), |n, (k, v)| {
            n.saturating_add(k.as_ref().len())
                .saturating_add(v.as_ref().len())
        });
        if u32::try_from(len).is_err() {
            return Err(CoreError::InvalidSeriesKey {
                reason: format!(
                    "the key of metric `{}` is longer than 4 GiB",
                    clip(metric, 64)
                ),
            });
        }
        // In range: every offset is at most `len`, which fits in a `u32`.
        let offset = |text: &String| text.len() as u32;
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(2 * pairs.len());
        text.push_str(metric);
        let metric_end = offset(&text);
        for (k, v) in &pairs {
            text.push_str(k.as_ref());
            ends.push(offset(&text));
            text.push_str(v.as_ref());
            ends.push(offset(&text));
        }
        Ok(Self(Arc::new(KeyInner {
            text: text.into_boxed_str(),
            metric_end,
            ends: ends.into_boxed_slice(),
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
        self.0
            .text
            .get(..self.0.metric_end as usize)
            .unwrap_or_default()
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        let inner = &*self.0;
        (0..inner.ends.len() / 2).map(move |i| inner.tag_at(i))
    }

    /// Number of tags.
    #[must_use]
    pub fn tag_count(&self) -> usize {
        self.0.ends.len() / 2
    }

    /// The value of tag `key`, if the series has it.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        let (mut lo, mut hi) = (0, self.tag_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, v) = self.0.tag_at(mid);
            match k.cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(v),
            }
        }
        None
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
        if self.metric() != metric {
            return false;
        }
        // Fast path: input in canonical order (e.g. iterated from a `BTreeMap`).
        let mut mine = self.tags();
        let mut in_order = true;
        for pair in tags.clone() {
            if mine.next() != Some(pair) {
                in_order = false;
                break;
            }
        }
        if in_order {
            return mine.len() == 0;
        }
        // Any order: every one of our pairs is in the input and the counts agree. Our keys
        // are distinct, so the input holds exactly our pairs.
        tags.clone().into_iter().count() == self.tag_count()
            && self
                .tags()
                .all(|mine| tags.clone().into_iter().any(|pair| pair == mine))
    }
}

/// Ordered by metric name, then tag by tag (key, then value); a key whose tags are a prefix
/// of another's comes first.
impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.metric()
            .cmp(other.metric())
            .then_with(|| self.tags().cmp(other.tags()))
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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

/// Separates tag pairs in the arena encoding (never a byte of UTF-8).
const PAIR: u8 = 0xff;
/// Separates a tag key from its value in the arena encoding (never a byte of UTF-8).
const KV: u8 = 0xfe;
/// Ends a record in the arena encoding (never a byte of UTF-8).
const END: u8 = 0xfd;
/// Arena records start at multiples of this, so a 32-bit slot addresses 16 GiB of keys.
const ALIGN: usize = 4;
/// Length of the id that opens every arena record.
const ID_LEN: usize = 4;
/// Lookups with up to this many tags collect them on the stack once instead of walking the
/// caller's iterator (e.g. a `BTreeMap`) twice.
const INLINE_TAGS: usize = 8;
/// The high half of a hash, kept in a slot as its tag.
const TAG: u64 = 0xffff_ffff_0000_0000;

/// The lookup index: an insert-only, linear-probing open-addressing table of `u64` slots.
///
/// A slot holds the high 32 bits of the series' hash (its tag) and, in the low 32 bits,
/// `1 +` the position of the series' arena record in units of [`ALIGN`]; `0` is empty. The
/// probe starts at the top `log2(capacity)` bits of the hash, which are bits of the tag
/// (the capacity stays at most 2^32: records take at least 8 bytes of the at most 16 GiB
/// arena, so there are at most 2^31 series at a load factor of at most 5/8), so growing needs
/// neither the keys nor their hashes. One 8-byte load per probe both rejects other series (a
/// 32-bit tag mismatch) and locates the record: a lookup touches one slot line and the
/// record's line(s), nothing else.
#[derive(Clone, Default)]
struct Index {
    /// Power-of-two length (or empty).
    slots: Vec<u64>,
    len: usize,
    /// `64 - log2(slots.len())`.
    shift: u32,
}

impl Index {
    /// Probes for `hash`, calling `eq` with the arena position of each record whose tag
    /// matches until it returns `true`.
    #[inline]
    fn find(&self, hash: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = hash & TAG;
        let mut i = (hash >> self.shift) as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot & TAG == tag {
                let at = ((slot & !TAG) - 1) as usize * ALIGN;
                if eq(at) {
                    return Some(at);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a series known to be absent. `unit` is its arena position / [`ALIGN`], below
    /// `u32::MAX`.
    fn insert(&mut self, hash: u64, unit: u32) {
        // Load factor at most 5/8: short probe runs (1.8 probes on average for a hit when
        // full), and at most 3.2 slots (26 bytes) per series right after a doubling.
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        self.put(hash & TAG | (u64::from(unit) + 1));
        self.len += 1;
    }

    fn put(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = (slot >> self.shift) as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![0; cap]);
        self.shift = 64 - cap.trailing_zeros();
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.put(slot);
        }
    }
}

/// The interner's hash of series keys, keyed with per-interner random seeds.
///
/// Each string is read as two overlapping words (the whole of any string up to 16 bytes) and
/// mixed with one folded multiply (the 128-bit product's halves XORed), the construction of
/// foldhash's fast hasher without its general-purpose plumbing. A tag pair chains its key
/// into its value; the pairs are summed, so the hash does not depend on the order of the
/// tags and needs no sorting.
#[derive(Clone)]
struct KeyHasher {
    seeds: [u64; 4],
}

impl KeyHasher {
    fn random() -> Self {
        let state = RandomState::default();
        Self {
            seeds: [1u64, 2, 3, 4].map(|i| state.hash_one(i)),
        }
    }

    /// Hash of one string, chained from `seed`.
    #[inline(always)]
    fn piece(&self, p: &[u8], seed: u64) -> u64 {
        let n = p.len();
        let (a, b) = if n >= 8 {
            if n > 16 {
                return self.long(p, seed);
            }
            (load8(p, 0), load8(p, n - 8))
        } else if n >= 4 {
            (u64::from(load4(p, 0)), u64::from(load4(p, n - 4)))
        } else if n > 0 {
            (
                u64::from(p[0]),
                u64::from(p[n / 2]) << 8 | u64::from(p[n - 1]),
            )
        } else {
            (0, 0)
        };
        fold(a ^ seed, b ^ self.seeds[1] ^ n as u64)
    }

    /// [`piece`](Self::piece) for strings over 16 bytes: 16 bytes per multiply.
    #[inline(never)]
    fn long(&self, p: &[u8], seed: u64) -> u64 {
        let mut h = seed;
        let mut chunks = p.chunks_exact(16);
        for c in &mut chunks {
            h = fold(load8(c, 0) ^ h, load8(c, 8) ^ self.seeds[2]);
        }
        if !chunks.remainder().is_empty() {
            let n = p.len();
            h = fold(load8(p, n - 16) ^ h, load8(p, n - 8) ^ self.seeds[3]);
        }
        fold(h, self.seeds[1] ^ p.len() as u64)
    }

    /// Hash of one tag pair.
    #[inline(always)]
    fn pair(&self, k: &[u8], v: &[u8]) -> u64 {
        self.piece(v, self.piece(k, self.seeds[0]))
    }

    /// Hash of a series from its metric name and the sum of its pair hashes.
    #[inline(always)]
    fn finish(&self, metric: &[u8], pairs: u64) -> u64 {
        fold(self.piece(metric, self.seeds[3]) ^ pairs, self.seeds[2])
    }
}

/// The folded multiply: the 128-bit product of `a` and `b`, its halves XORed.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ (p >> 64) as u64
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

/// Whether `rec[pos..]` is `p` followed by the byte `sep`; if so, the position after both.
#[inline(always)]
fn piece(rec: &[u8], pos: usize, p: &[u8], sep: u8) -> Option<usize> {
    let end = pos + p.len();
    match rec.get(pos..=end) {
        Some(s) if s[p.len()] == sep && eq_short(&s[..p.len()], p) => Some(end + 1),
        _ => None,
    }
}

/// Compares `rec`, the body of an arena record (`metric PAIR (key KV value PAIR)* END`, tags
/// sorted by key, then whatever follows in the arena), with `metric` and `tags` taken in
/// the order given, in one pass over contiguous bytes. `Some(true)`: a match; `Some(false)`:
/// the metric differs, so no order of the tags matches; `None`: the tags differ as given
/// (another order may match).
#[inline]
fn matches_in_order<'a>(
    rec: &[u8],
    metric: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<bool> {
    let Some(mut pos) = piece(rec, 0, metric.as_bytes(), PAIR) else {
        return Some(false);
    };
    for (k, v) in tags {
        pos = piece(rec, pos, k.as_bytes(), KV).and_then(|p| piece(rec, p, v.as_bytes(), PAIR))?;
    }
    (rec.get(pos) == Some(&END)).then_some(true)
}

/// Whether `rec` (as in [`matches_in_order`]) encodes exactly `metric` with `tags` in any
/// order.
fn record_matches<'a>(
    rec: &[u8],
    metric: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    match matches_in_order(rec, metric, tags.clone()) {
        Some(found) => found,
        None => rec
            .get(metric.len() + 1..)
            .is_some_and(|tag_part| unordered_matches(tag_part, tags)),
    }
}

/// The slow path of [`record_matches`]: `tags` in another order (or not matching).
/// `tag_part` is the record after `metric PAIR`. Quadratic in the number of tags.
fn unordered_matches<'a>(
    tag_part: &[u8],
    tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    let Some(end) = tag_part.iter().position(|&b| b == END) else {
        return false;
    };
    let mut stored = 0usize;
    if let Some(pairs) = tag_part[..end].strip_suffix(&[PAIR]) {
        // Every stored pair is in the input and the counts agree. Stored keys are distinct,
        // so the input holds exactly the stored pairs.
        for seg in pairs.split(|&b| b == PAIR) {
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
    }
    stored == tags.into_iter().count()
}

/// Maps [`SeriesKey`]s to dense, copyable [`SeriesId`]s and back.
///
/// Looking up a series that is already known ([`get`](Self::get),
/// [`get_or_intern`](Self::get_or_intern), [`intern_event`](Self::intern_event)) does not
/// allocate. Only a new series allocates.
///
/// # Lookup cost
///
/// A lookup walks the caller's tags once, hashing each pair (a hash that does not depend on
/// the order of the tags, so nothing is sorted) and keeping up to 8 pairs on the stack. The
/// hash selects a slot in an open-addressing table of 8-byte slots; each slot carries 32 bits
/// of its series' hash, so other series are rejected without touching their keys, and the
/// position of the series' record in one contiguous arena of encoded keys. The record is
/// then compared byte for byte with the query, piece by piece: no pointer per string is
/// chased. A lookup therefore reads the caller's strings, one table slot and one run of
/// arena bytes (one or two cache lines), and nothing else.
///
/// Tags in canonical (sorted) order, as iterated from [`Tags`], are compared in one pass;
/// other orders fall back to a pairwise comparison (quadratic in the tag count).
///
/// Measured on a shared 2-core machine, 10,000 series with 3 tags (`benches/interner.rs`):
/// about 35 ns per lookup when the data is in cache and 70 ns in a scrambled order over all
/// series, where cache misses on the caller's strings and on the table dominate.
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
/// Per series: the [`SeriesKey`] (three allocations: the `Arc`, the key text and its tag
/// offsets, about 100 bytes plus the key text for a few short tags), the arena record (the
/// key text plus 2 bytes per tag and 6 to 9 bytes), 13 to 26 bytes of table slots (8-byte
/// slots at a load factor between 5/16 and 5/8), an 8-byte entry in the id-to-key list and
/// a 4-byte entry in the per-metric index.
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
#[derive(Clone)]
pub struct SeriesInterner {
    keys: Vec<SeriesKey>,
    /// Every key encoded contiguously as a record `id metric PAIR (key KV value PAIR)* END`
    /// (`id`: 4 bytes little-endian; records start at multiples of [`ALIGN`]), so a lookup
    /// compares against one run of bytes instead of chasing a pointer per string.
    arena: Vec<u8>,
    index: Index,
    by_metric: HashMap<Box<str>, Vec<SeriesId>, RandomState>,
    hasher: KeyHasher,
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
            index: Index::default(),
            by_metric: HashMap::default(),
            hasher: KeyHasher::random(),
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

    /// The id of the series with `hash` whose arena record `matches`.
    #[inline]
    fn find(&self, hash: u64, mut matches: impl FnMut(&[u8]) -> bool) -> Option<SeriesId> {
        let arena = &self.arena;
        let at = self.index.find(hash, |at| {
            arena.get(at + ID_LEN..).is_some_and(&mut matches)
        })?;
        let id: [u8; ID_LEN] = arena.get(at..at + ID_LEN)?.try_into().ok()?;
        Some(SeriesId(u32::from_le_bytes(id)))
    }

    /// The hash of (`metric`, `tags`) and its id if it is interned. Walks `tags` once,
    /// hashing each pair and keeping the first [`INLINE_TAGS`] on the stack for the
    /// comparison (sorting them there if they do not match as given); walks it again only
    /// when there are more.
    #[inline]
    fn lookup<'a>(
        &self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> (u64, Option<SeriesId>) {
        let mut buf = [("", ""); INLINE_TAGS];
        let mut n = 0;
        let mut pairs = 0u64;
        for (k, v) in tags.clone() {
            pairs = pairs.wrapping_add(self.hasher.pair(k.as_bytes(), v.as_bytes()));
            if let Some(slot) = buf.get_mut(n) {
                *slot = (k, v);
            }
            n += 1;
        }
        let hash = self.hasher.finish(metric.as_bytes(), pairs);
        #[cfg(test)]
        let hash = if self.degenerate_hash { 7 << 60 } else { hash };
        let found = match buf.get_mut(..n) {
            Some(inline) => {
                // Compared as given first (the usual case: sorted, e.g. from `Tags`); on a
                // mismatch of the tags, sorted once and compared again.
                let mut sorted = false;
                let mut duplicate = false;
                self.find(hash, |rec| {
                    match matches_in_order(rec, metric, inline.iter().copied()) {
                        Some(found) => found,
                        None if !sorted => {
                            sorted = true;
                            inline.sort_unstable_by(|a, b| a.0.cmp(b.0));
                            duplicate = inline.windows(2).any(|w| w[0].0 == w[1].0);
                            !duplicate
                                && matches_in_order(rec, metric, inline.iter().copied())
                                    == Some(true)
                        }
                        None => false,
                    }
                })
            }
            None => self.find(hash, |rec| record_matches(rec, metric, tags.clone())),
        };
        (hash, found)
    }

    /// The id of series (`metric`, `tags`), with tags in any order, if it is interned.
    /// Does not allocate.
    ///
    /// Tags with a duplicated key never match.
    #[inline]
    pub fn get<'a>(
        &self,
        metric: &str,
        tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<SeriesId> {
        self.lookup(metric, tags).1
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
        let (hash, found) = self.lookup(metric, tags.clone());
        if let Some(id) = found {
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
        let (hash, found) = self.lookup(key.metric(), key.tags());
        if let Some(id) = found {
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
        let start = self.arena.len().next_multiple_of(ALIGN);
        let unit = u32::try_from(start / ALIGN)
            .ok()
            .filter(|&u| u < u32::MAX)
            .ok_or_else(|| CoreError::TooManySeries {
                // The key storage (16 GiB) is full: no more series fit, whatever the guard.
                limit: self.keys.len(),
                series: key.to_string(),
            })?;
        self.arena.resize(start, 0);
        self.arena.extend_from_slice(&raw.to_le_bytes());
        self.arena.extend_from_slice(key.metric().as_bytes());
        self.arena.push(PAIR);
        for (k, v) in key.tags() {
            self.arena.extend_from_slice(k.as_bytes());
            self.arena.push(KV);
            self.arena.extend_from_slice(v.as_bytes());
            self.arena.push(PAIR);
        }
        self.arena.push(END);
        self.index.insert(hash, unit);
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
        let a = i.lookup("m", [("x", "1"), ("y", "2"), ("z", "3")]).0;
        let b = i.lookup("m", [("z", "3"), ("x", "1"), ("y", "2")]).0;
        assert_eq!(a, b);
        assert_ne!(a, i.lookup("m", [("x", "1"), ("y", "2")]).0);
    }

    #[test]
    fn many_tags_and_long_strings_under_collisions() {
        // Every key collides: lookups must tell series apart by comparing records, on the
        // inline path (up to 8 tags) and the iterator path (more), for strings around the
        // 8- and 16-byte word boundaries of the hash and the comparison.
        let mut i = degenerate();
        let long = |n: usize, c: char| -> String {
            std::iter::repeat_n('x', n.saturating_sub(1))
                .chain([c])
                .collect()
        };
        let mut keys = Vec::new();
        for n in [1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40] {
            for tags in [2, 8, 9, 12] {
                let pairs: Vec<(String, String)> = (0..tags)
                    .map(|t| (format!("k{t:02}"), long(n, char::from(b'a' + t as u8))))
                    .collect();
                keys.push((long(n, 'm'), pairs));
            }
        }
        let ids: Vec<SeriesId> = keys
            .iter()
            .map(|(m, pairs)| {
                i.get_or_intern(m, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .unwrap()
            })
            .collect();
        assert_eq!(i.len(), keys.len());
        for ((m, pairs), id) in keys.iter().zip(&ids) {
            let fwd = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            assert_eq!(i.get(m, fwd.clone()), Some(*id));
            assert_eq!(i.get(m, fwd.clone().rev()), Some(*id));
            // One byte changed, one pair missing, one pair too many: all unknown.
            let mut changed: Vec<(&str, String)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            changed[1].1.replace_range(0..1, "y");
            assert_eq!(
                i.get(m, changed.iter().map(|(k, v)| (*k, v.as_str()))),
                None
            );
            assert_eq!(i.get(m, fwd.clone().skip(1)), None);
            assert_eq!(i.get(m, fwd.clone().chain([("zz", "1")])), None);
            assert_eq!(i.get(&format!("{m}x"), fwd.clone()), None);
            assert_eq!(i.get(&m[1..], fwd), None);
        }
    }

    #[test]
    fn index_grows_without_losing_series() {
        let mut i = SeriesInterner::new();
        let ids: Vec<SeriesId> = (0..5000)
            .map(|n| {
                let host = n.to_string();
                i.get_or_intern("cpu", [("host", host.as_str())]).unwrap()
            })
            .collect();
        assert!(i.index.slots.len().is_power_of_two());
        assert!(i.index.len * 8 <= i.index.slots.len() * 5);
        for (n, id) in ids.iter().enumerate() {
            let host = n.to_string();
            assert_eq!(i.get("cpu", [("host", host.as_str())]), Some(*id));
            assert_eq!(id.index(), n);
        }
    }

    #[test]
    fn records_are_aligned_and_end_marked() {
        let mut i = SeriesInterner::new();
        let a = i.get_or_intern("cpu", [("b", "2"), ("a", "1")]).unwrap();
        let b = i.get_or_intern("m", []).unwrap();
        assert_eq!(&i.arena[..4], &a.0.to_le_bytes());
        assert_eq!(&i.arena[4..20], b"cpu\xffa\xfe1\xffb\xfe2\xff\xfd\0\0\0");
        assert_eq!(&i.arena[20..24], &b.0.to_le_bytes());
        assert_eq!(&i.arena[24..], b"m\xff\xfd");
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
