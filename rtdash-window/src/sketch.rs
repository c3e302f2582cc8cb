//! The log-linear value histogram behind percentiles.
//!
//! A finite `f64` is mapped to a bin by its bit pattern: the sign, the 11 exponent bits and the
//! top `P` mantissa bits. Every binade `[2^e, 2^(e+1))` is thus split into `2^P` bins of equal
//! width `2^(e-P)`; the bin's midpoint is within `2^-(P+1)` of every value in it, relative to
//! that value. Bin numbers are ordered like the values they hold, so a rank search is a scan in
//! bin order.
//!
//! Three stores of bin counts live here:
//!
//! - [`BucketBins`]: the counts of one time bucket. An open-addressing table while the bucket
//!   can still receive events (insert is a multiply, a shift and a probe), packed into a plain
//!   list of `(bin, count)` pairs once it is sealed. An empty bucket costs no heap.
//! - [`DenseBins`]: a paged dense array, one page of `2^P` counters per binade that has been
//!   seen. Used for the per-series running total and as the scratch space of a query; adding,
//!   subtracting and rank search are plain array walks.
//! - [`LogHistogram`]: the public, serializable sketch built on [`DenseBins`].

use std::fmt;

use rtdash_core::Percentile;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::WindowError;

/// Smallest accepted precision (bits of mantissa kept per bin).
pub(crate) const MIN_PRECISION: u8 = 1;
/// Largest accepted precision: a dense page is then `2^12` counters (32 KiB).
pub(crate) const MAX_PRECISION: u8 = 12;

/// The value-to-bin mapping for one precision `P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bins {
    p: u32,
}

impl Bins {
    /// The mapping for precision `p`; the caller has checked the range.
    pub(crate) fn new(p: u8) -> Self {
        debug_assert!((MIN_PRECISION..=MAX_PRECISION).contains(&p));
        Self { p: u32::from(p) }
    }

    /// The precision `P`.
    pub(crate) fn precision(self) -> u8 {
        // Always <= MAX_PRECISION.
        self.p as u8
    }

    /// Bin number of the first non-negative bin (the one holding `0.0`).
    #[inline]
    fn zero(self) -> u32 {
        0x800 << self.p
    }

    /// Number of counters in one dense page (one binade).
    #[inline]
    pub(crate) fn page_len(self) -> usize {
        1 << self.p
    }

    /// The bin of a finite value. `-0.0` shares the bin of `0.0`.
    #[inline]
    pub(crate) fn index(self, v: f64) -> u32 {
        let bits = (v + 0.0).to_bits();
        let magnitude = bits & !(1 << 63);
        // At most 11 + 12 bits: fits.
        let k = (magnitude >> (52 - self.p)) as u32;
        if bits >> 63 == 0 {
            self.zero() + k
        } else {
            self.zero() - 1 - k
        }
    }

    /// Whether `idx` is the bin of some finite value.
    pub(crate) fn is_valid(self, idx: u32) -> bool {
        // Finite magnitudes have an exponent field below 0x7FF.
        let max_k = (0x7FF << self.p) - 1;
        let zero = self.zero();
        if idx >= zero {
            idx - zero <= max_k
        } else {
            zero - 1 - idx <= max_k
        }
    }

    /// The value reported for bin `idx`: its midpoint, or `0.0` for the bin holding zero.
    pub(crate) fn value(self, idx: u32) -> f64 {
        let zero = self.zero();
        let (negative, k) = if idx >= zero {
            (false, idx - zero)
        } else {
            (true, zero - 1 - idx)
        };
        if k == 0 {
            return 0.0;
        }
        let shift = 52 - self.p;
        let bits = (u64::from(k) << shift) | (1 << (shift - 1));
        let v = f64::from_bits(bits);
        if negative { -v } else { v }
    }

    /// Upper bound of the relative error of [`value`](Self::value): `2^-(P+1)`.
    pub(crate) fn relative_error(self) -> f64 {
        0.5 / f64::from(1u32 << self.p)
    }
}

/// A packed `(bin, count)` pair: bin in the high 32 bits, count in the low 32. Zero marks a
/// free table slot (bin 0 is never used by a finite value).
#[inline]
fn pack(bin: u32, count: u32) -> u64 {
    (u64::from(bin) << 32) | u64::from(count)
}

#[inline]
fn unpack(entry: u64) -> (u32, u32) {
    ((entry >> 32) as u32, entry as u32)
}

/// Bin counts of one time bucket.
///
/// - `Empty`: nothing recorded, no heap.
/// - `One`: a single distinct bin, stored inline (no heap): the common case of a quiet series.
/// - `Table`: while the bucket is open, a linear-probing hash table of packed entries with
///   load factor at most 3/4 (an insert is a multiply, a shift and a probe or two).
/// - `Packed`: once sealed, exactly the occupied entries in no particular order.
///
/// A count that would pass `u32::MAX` continues in a second entry for the same bin, so counts
/// are exact at any rate.
#[derive(Clone, Default)]
pub(crate) enum BucketBins {
    #[default]
    Empty,
    One(u64),
    Table {
        slots: Box<[u64]>,
        len: u32,
    },
    Packed(Box<[u64]>),
}

impl fmt::Debug for BucketBins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketBins")
            .field("entries", &self.entries())
            .field("packed", &matches!(self, Self::Packed(_)))
            .finish()
    }
}

const HASH_MUL: u32 = 0x9E37_79B9;
const MIN_TABLE: usize = 8;

/// Table capacity for `entries` bins at load factor at most 3/4.
fn capacity_for(entries: usize) -> usize {
    (entries.min(1 << 16) * 4 / 3 + 2)
        .next_power_of_two()
        .max(MIN_TABLE)
}

impl BucketBins {
    /// Whether no value was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries() == 0
    }

    /// Number of stored entries (the cost of merging this bucket somewhere).
    pub(crate) fn entries(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(_) => 1,
            Self::Table { len, .. } => *len as usize,
            Self::Packed(p) => p.len(),
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Empty | Self::One(_) => 0,
            Self::Table { slots, .. } => slots.len() * size_of::<u64>(),
            Self::Packed(p) => p.len() * size_of::<u64>(),
        }
    }

    /// The raw entries, zeros (free table slots) included.
    fn raw(&self) -> &[u64] {
        match self {
            Self::Empty => &[],
            Self::One(e) => std::slice::from_ref(e),
            Self::Table { slots, .. } => slots,
            Self::Packed(p) => p,
        }
    }

    /// Adds one value in bin `bin`; `hint` is the expected number of distinct bins, used when
    /// a table has to be made.
    #[inline]
    pub(crate) fn insert(&mut self, bin: u32, hint: usize) {
        match self {
            Self::Table { slots, len } => {
                let cap = slots.len();
                let shift = 32 - cap.trailing_zeros();
                let mut pos = (bin.wrapping_mul(HASH_MUL) >> shift) as usize;
                loop {
                    let entry = slots[pos];
                    if entry == 0 {
                        if (*len as usize + 1) * 4 > cap * 3 {
                            break;
                        }
                        slots[pos] = pack(bin, 1);
                        *len += 1;
                        return;
                    }
                    if (entry >> 32) as u32 == bin && (entry as u32) < u32::MAX {
                        slots[pos] = entry + 1;
                        return;
                    }
                    pos = (pos + 1) & (cap - 1);
                }
                self.add(bin, 1);
            }
            Self::Empty => *self = Self::One(pack(bin, 1)),
            Self::One(e) if (*e >> 32) as u32 == bin && (*e as u32) < u32::MAX => *e += 1,
            _ => self.spill(bin, hint),
        }
    }

    #[cold]
    fn spill(&mut self, bin: u32, hint: usize) {
        if let Self::One(e) = *self {
            self.make_table(capacity_for(hint.max(2)), &[e]);
        }
        self.add(bin, 1);
    }

    /// Replaces the content by a table of capacity `cap` holding `entries`.
    fn make_table(&mut self, cap: usize, entries: &[u64]) {
        *self = Self::Table {
            slots: vec![0; cap].into_boxed_slice(),
            len: 0,
        };
        for &entry in entries.iter().filter(|&&e| e != 0) {
            let (b, c) = unpack(entry);
            self.add(b, c);
        }
    }

    /// Adds `n` values in bin `bin`.
    pub(crate) fn add(&mut self, bin: u32, mut n: u32) {
        if n == 0 {
            return;
        }
        let (slots, len) = match self {
            Self::Table { slots, len } if (*len as usize + 1) * 4 <= slots.len() * 3 => {
                (slots, len)
            }
            Self::Empty => {
                *self = Self::One(pack(bin, n));
                return;
            }
            _ => {
                self.grow();
                return self.add(bin, n);
            }
        };
        let cap = slots.len();
        let shift = 32 - cap.trailing_zeros();
        let mut pos = (bin.wrapping_mul(HASH_MUL) >> shift) as usize;
        loop {
            let entry = slots[pos];
            if entry == 0 {
                slots[pos] = pack(bin, n);
                *len += 1;
                return;
            }
            let (b, c) = unpack(entry);
            if b == bin {
                let room = u32::MAX - c;
                if n <= room {
                    slots[pos] = entry + u64::from(n);
                    return;
                }
                // Saturate this entry; the rest goes to a new entry further on.
                slots[pos] = entry + u64::from(room);
                n -= room;
            }
            pos = (pos + 1) & (cap - 1);
        }
    }

    /// Makes room for at least one more entry (turning any other form into a table).
    #[cold]
    fn grow(&mut self) {
        let old = std::mem::take(self);
        let cap = match &old {
            Self::Table { slots, .. } => (slots.len() * 2).max(MIN_TABLE),
            other => capacity_for(other.entries() + 1),
        };
        self.make_table(cap, old.raw());
    }

    /// Turns the bucket into a table with room for at least `entries` bins, ready for
    /// merges.
    #[cold]
    pub(crate) fn unpack_to(&mut self, entries: usize) {
        let old = std::mem::take(self);
        self.make_table(capacity_for(entries.max(old.entries() + 1)), old.raw());
    }

    /// Shrinks a table less than 2/3 full to exactly its occupied entries (a fuller one is
    /// kept: packing would save too little to pay for the copy); the bucket stays usable (a
    /// later insert turns it back into a table).
    pub(crate) fn pack(&mut self) {
        self.pack_if(|len, cap| len * 3 < cap * 2);
    }

    /// Shrinks a table to exactly its occupied entries, however full (for long-lived
    /// buckets).
    pub(crate) fn pack_exact(&mut self) {
        self.pack_if(|_, _| true);
    }

    fn pack_if(&mut self, worth_it: impl Fn(usize, usize) -> bool) {
        if let Self::Table { slots, len } = self
            && worth_it(*len as usize, slots.len())
        {
            let mut packed = Vec::with_capacity(*len as usize);
            packed.extend(slots.iter().copied().filter(|&e| e != 0));
            *self = if packed.is_empty() {
                Self::Empty
            } else {
                Self::Packed(packed.into_boxed_slice())
            };
        }
    }

    /// Adds every entry of `other`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (b, c) in other.iter() {
            self.add(b, c);
        }
    }

    /// The `(bin, count)` entries; a bin may appear more than once (counts past `u32::MAX`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.raw().iter().copied().filter(|&e| e != 0).map(unpack)
    }

    /// Total count.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.iter().map(|(_, c)| u64::from(c)).sum()
    }
}

/// Paged dense bin counts: one page of `2^P` counters per binade in use.
///
/// Counters use wrapping arithmetic, so adds and subtracts may come in any order as long as
/// the final counts are true counts.
#[derive(Clone)]
pub(crate) struct DenseBins {
    bins: Bins,
    /// Page number of `pages[0]`.
    first: u32,
    pages: Vec<Option<Box<[u64]>>>,
}

impl fmt::Debug for DenseBins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DenseBins")
            .field("precision", &self.bins.precision())
            .field("pages", &self.pages.iter().filter(|p| p.is_some()).count())
            .finish()
    }
}

impl DenseBins {
    pub(crate) fn new(bins: Bins) -> Self {
        Self {
            bins,
            first: 0,
            pages: Vec::new(),
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let page = self.bins.page_len() * size_of::<u64>();
        self.pages.capacity() * size_of::<Option<Box<[u64]>>>()
            + self.pages.iter().filter(|p| p.is_some()).count() * page
    }

    /// Number of counters held (the cost of adding this store somewhere else).
    pub(crate) fn dense_len(&self) -> usize {
        self.pages.iter().filter(|p| p.is_some()).count() * self.bins.page_len()
    }

    /// Adds `n` to bin `idx`.
    #[inline]
    pub(crate) fn add(&mut self, idx: u32, n: u64) {
        let mask = (1u32 << self.bins.p) - 1;
        let rel = (idx >> self.bins.p).wrapping_sub(self.first) as usize;
        if let Some(Some(page)) = self.pages.get_mut(rel)
            && let Some(c) = page.get_mut((idx & mask) as usize)
        {
            *c = c.wrapping_add(n);
            return;
        }
        self.add_slow(idx, n);
    }

    /// Subtracts `n` from bin `idx`.
    #[inline]
    pub(crate) fn sub(&mut self, idx: u32, n: u64) {
        self.add(idx, n.wrapping_neg());
    }

    #[cold]
    fn add_slow(&mut self, idx: u32, n: u64) {
        let page_no = idx >> self.bins.p;
        let len = self.bins.page_len();
        if self.pages.is_empty() {
            self.first = page_no;
            self.pages.push(None);
        } else if page_no < self.first {
            let extra = (self.first - page_no) as usize;
            self.pages.splice(0..0, std::iter::repeat_n(None, extra));
            self.first = page_no;
        } else {
            let rel = (page_no - self.first) as usize;
            if rel >= self.pages.len() {
                self.pages.resize(rel + 1, None);
            }
        }
        let rel = (page_no - self.first) as usize;
        let page = self.pages[rel].get_or_insert_with(|| vec![0; len].into_boxed_slice());
        let c = &mut page[(idx as usize) & (len - 1)];
        *c = c.wrapping_add(n);
    }

    /// Adds every entry of a bucket.
    pub(crate) fn add_bucket(&mut self, bucket: &BucketBins) {
        for (b, c) in bucket.iter() {
            self.add(b, u64::from(c));
        }
    }

    /// Subtracts every entry of a bucket.
    pub(crate) fn sub_bucket(&mut self, bucket: &BucketBins) {
        for (b, c) in bucket.iter() {
            self.sub(b, u64::from(c));
        }
    }

    /// Adds every counter of `other` (same precision).
    pub(crate) fn add_dense(&mut self, other: &Self) {
        debug_assert_eq!(self.bins, other.bins);
        let p = self.bins.p;
        for (i, page) in other.pages.iter().enumerate() {
            let Some(page) = page else { continue };
            let page_no = other.first + i as u32;
            // Make the page exist here (`add_slow` of 0 allocates it), then add page to
            // page: one pass the compiler vectorizes.
            let rel = page_no.wrapping_sub(self.first) as usize;
            if !matches!(self.pages.get(rel), Some(Some(_))) {
                self.add_slow(page_no << p, 0);
            }
            let rel = page_no.wrapping_sub(self.first) as usize;
            if let Some(Some(mine)) = self.pages.get_mut(rel) {
                for (m, o) in mine.iter_mut().zip(page.iter()) {
                    *m = m.wrapping_add(*o);
                }
            }
        }
    }

    /// Subtracts every counter of `other` (same precision).
    pub(crate) fn sub_dense(&mut self, other: &Self) {
        debug_assert_eq!(self.bins, other.bins);
        for (b, c) in other.iter() {
            self.sub(b, c);
        }
    }

    /// Non-zero `(bin, count)` pairs in bin (= value) order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let len = self.bins.page_len() as u32;
        self.pages.iter().enumerate().flat_map(move |(i, page)| {
            let base = (self.first + i as u32) * len;
            page.iter().flat_map(move |p| {
                p.iter()
                    .enumerate()
                    .filter(|&(_, &c)| c != 0)
                    .map(move |(j, &c)| (base + j as u32, c))
            })
        })
    }

    /// Sum of all counters.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.pages
            .iter()
            .flatten()
            .flat_map(|p| p.iter())
            .fold(0u64, |a, &c| a.wrapping_add(c))
    }

    /// The bin holding the value of rank `rank` (1-based, in value order), or `None` when
    /// there are fewer values.
    pub(crate) fn bin_of_rank(&self, rank: u64) -> Option<u32> {
        let len = self.bins.page_len() as u32;
        let mut seen = 0u64;
        for (i, page) in self.pages.iter().enumerate() {
            let Some(page) = page else { continue };
            let page_sum = page.iter().fold(0u64, |a, &c| a.wrapping_add(c));
            if seen.wrapping_add(page_sum) < rank {
                seen = seen.wrapping_add(page_sum);
                continue;
            }
            let base = (self.first + i as u32) * len;
            for (j, &c) in page.iter().enumerate() {
                seen = seen.wrapping_add(c);
                if seen >= rank {
                    return Some(base + j as u32);
                }
            }
        }
        None
    }

    /// Frees pages whose counters are all zero and trims the page directory.
    pub(crate) fn trim(&mut self) {
        for page in &mut self.pages {
            if page.as_ref().is_some_and(|p| p.iter().all(|&c| c == 0)) {
                *page = None;
            }
        }
        let lead = self.pages.iter().take_while(|p| p.is_none()).count();
        if lead == self.pages.len() {
            self.pages = Vec::new();
            self.first = 0;
            return;
        }
        self.pages.drain(..lead);
        self.first += lead as u32;
        while self.pages.last().is_some_and(Option::is_none) {
            self.pages.pop();
        }
        self.pages.shrink_to_fit();
    }
}

/// A mergeable log-linear histogram of `f64` values with a bounded relative error.
///
/// Each binade `[2^e, 2^(e+1))` is split into `2^P` equal bins (`P` is the *precision*);
/// a percentile is reported as the midpoint of the bin holding the value of its rank
/// ([`Percentile::nearest_rank`], computed exactly in integers), which is
/// within [`relative_error`](Self::relative_error) `= 2^-(P+1)` of the true value (for
/// `|x| >= f64::MIN_POSITIVE`; zero is exact; subnormals are bucketed linearly). With the
/// default `P = 7` that is ±0.39 %.
///
/// Negative values, zero and values from `f64::MIN_POSITIVE` to `f64::MAX` are all accepted.
/// Merging and subtracting are exact (they add and subtract counts), so histograms from
/// several series, time buckets or nodes combine without loss — never average percentiles.
///
/// Memory: `2^P` 8-byte counters (1 KiB at `P = 7`) per binade that holds a value, plus a
/// pointer per binade between the smallest and largest seen.
///
/// Serialized as `{"precision": 7, "bins": [[bin, count], ...]}`.
///
/// # Examples
///
/// ```
/// use rtdash_core::Percentile;
/// use rtdash_window::LogHistogram;
///
/// let mut h = LogHistogram::new(7)?;
/// for v in 1..=1000 {
///     h.record(f64::from(v))?;
/// }
/// let p99 = h.percentile(Percentile::P99).unwrap(); // rank 990 of 1000
/// assert!((p99 - 990.0).abs() <= 990.0 * h.relative_error());
///
/// let mut other = LogHistogram::new(7)?;
/// other.record(-5.0)?;
/// h.merge(&other)?;
/// assert_eq!(h.count(), 1001);
/// let p0_01 = Percentile::new(0.01).expect("a valid rank"); // rank ⌈0.0001 · 1001⌉ = 1
/// assert_eq!(h.percentile(p0_01), Some(-5.015625)); // bin midpoint, within 0.39 %
/// # Ok::<(), rtdash_window::WindowError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LogHistogram {
    dense: DenseBins,
    count: u64,
}

impl LogHistogram {
    /// An empty histogram of precision `precision` (`1..=12` mantissa bits per bin).
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidConfig`] naming `percentile_precision` when out of range.
    pub fn new(precision: u8) -> Result<Self, WindowError> {
        check_precision(precision)?;
        Ok(Self::with_bins(Bins::new(precision)))
    }

    pub(crate) fn with_bins(bins: Bins) -> Self {
        Self {
            dense: DenseBins::new(bins),
            count: 0,
        }
    }

    pub(crate) fn from_dense(dense: DenseBins, count: u64) -> Self {
        Self { dense, count }
    }

    /// The precision `P` (mantissa bits kept per bin).
    #[must_use]
    pub fn precision(&self) -> u8 {
        self.dense.bins.precision()
    }

    /// The bound on the relative error of a reported quantile: `2^-(P+1)`.
    #[must_use]
    pub fn relative_error(&self) -> f64 {
        self.dense.bins.relative_error()
    }

    /// Number of values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether no value is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records one value.
    ///
    /// # Errors
    ///
    /// [`WindowError::NonFiniteValue`] for NaN or ±infinity (nothing is recorded).
    pub fn record(&mut self, value: f64) -> Result<(), WindowError> {
        self.record_n(value, 1)
    }

    /// Records `n` copies of one value.
    ///
    /// # Errors
    ///
    /// [`WindowError::NonFiniteValue`] for NaN or ±infinity (nothing is recorded).
    pub fn record_n(&mut self, value: f64, n: u64) -> Result<(), WindowError> {
        if !value.is_finite() {
            return Err(WindowError::NonFiniteValue { value });
        }
        self.dense.add(self.dense.bins.index(value), n);
        self.count = self.count.wrapping_add(n);
        Ok(())
    }

    /// Adds every value of `other`.
    ///
    /// # Errors
    ///
    /// [`WindowError::PrecisionMismatch`] when the precisions differ (nothing is changed).
    pub fn merge(&mut self, other: &Self) -> Result<(), WindowError> {
        self.check_same(other)?;
        self.dense.add_dense(&other.dense);
        self.count = self.count.wrapping_add(other.count);
        Ok(())
    }

    /// Removes every value of `other`, e.g. an expired part of a window that was merged in
    /// earlier.
    ///
    /// # Errors
    ///
    /// [`WindowError::PrecisionMismatch`] when the precisions differ, and
    /// [`WindowError::SubtractUnderflow`] when `other` holds a value this histogram does not
    /// (nothing is changed in either case).
    pub fn subtract(&mut self, other: &Self) -> Result<(), WindowError> {
        self.check_same(other)?;
        let mut result = self.dense.clone();
        result.sub_dense(&other.dense);
        if let Some((bin, _)) = other
            .dense
            .iter()
            .find(|&(bin, _)| self.count_of(bin) < other.count_of(bin))
        {
            return Err(WindowError::SubtractUnderflow {
                value: self.dense.bins.value(bin),
            });
        }
        result.trim();
        self.dense = result;
        self.count = self.count.wrapping_sub(other.count);
        Ok(())
    }

    fn count_of(&self, bin: u32) -> u64 {
        let len = self.dense.bins.page_len() as u32;
        let rel = (bin / len).wrapping_sub(self.dense.first) as usize;
        match self.dense.pages.get(rel) {
            Some(Some(page)) => page[(bin % len) as usize],
            _ => 0,
        }
    }

    fn check_same(&self, other: &Self) -> Result<(), WindowError> {
        if self.precision() == other.precision() {
            Ok(())
        } else {
            Err(WindowError::PrecisionMismatch {
                left: self.precision(),
                right: other.precision(),
            })
        }
    }

    /// The value of percentile `p` under the nearest-rank convention: the value of rank
    /// [`p.nearest_rank(n)`](Percentile::nearest_rank) — `⌈q·n⌉` computed exactly, 1-based —
    /// among the `n` recorded values, reported as its bin's midpoint (within
    /// [`relative_error`](Self::relative_error) of the value). `None` when empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::Percentile;
    /// use rtdash_window::LogHistogram;
    ///
    /// let mut h = LogHistogram::new(7)?;
    /// h.record_n(1.0, 999)?;
    /// h.record(1000.0)?;
    /// // p99.9 of 1000 values is the 999th value, exactly.
    /// assert_eq!(h.percentile(Percentile::P999), Some(1.0 + 1.0 / 256.0)); // bin midpoint
    /// let p100 = Percentile::new(100.0).expect("a valid rank");
    /// assert_eq!(h.percentile(p100), Some(1002.0)); // the midpoint of [1000, 1004)
    /// assert_eq!(LogHistogram::new(7)?.percentile(Percentile::P50), None);
    /// # Ok::<(), rtdash_window::WindowError>(())
    /// ```
    #[must_use]
    pub fn percentile(&self, p: Percentile) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = p.nearest_rank(self.count);
        self.dense
            .bin_of_rank(rank)
            .map(|bin| self.dense.bins.value(bin))
    }

    /// The non-empty bins in value order, as `(representative value, count)`; e.g. for a
    /// heatmap.
    pub fn bins(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bins = self.dense.bins;
        self.dense.iter().map(move |(b, c)| (bins.value(b), c))
    }

    /// Approximate heap bytes held.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.dense.heap_bytes()
    }
}

pub(crate) fn check_precision(precision: u8) -> Result<(), WindowError> {
    if (MIN_PRECISION..=MAX_PRECISION).contains(&precision) {
        Ok(())
    } else {
        Err(WindowError::InvalidConfig {
            field: "percentile_precision",
            reason: format!(
                "{precision} is out of range: it must be {MIN_PRECISION} to {MAX_PRECISION} \
                 mantissa bits (relative error 2^-(P+1): 7 gives 0.39 %, 10 gives 0.05 %)"
            ),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramRepr {
    precision: u8,
    bins: Vec<(u32, u64)>,
}

impl Serialize for LogHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        HistogramRepr {
            precision: self.precision(),
            bins: self.dense.iter().collect(),
        }
        .serialize(serializer)
    }
}

impl LogHistogram {
    /// The non-empty bins as `(bin number, count)`, in value order: the exact contents
    /// (what the serde form holds), e.g. to store the histogram compactly;
    /// [`from_bin_counts`](Self::from_bin_counts) makes it again.
    pub fn bin_counts(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.dense.iter()
    }

    /// The histogram of precision `precision` holding `pairs` of `(bin number, count)` as
    /// given by [`bin_counts`](Self::bin_counts) (in any order; a bin given twice adds up).
    ///
    /// # Errors
    ///
    /// [`WindowError::InvalidConfig`] naming `percentile_precision` for a precision out of
    /// range, [`WindowError::InvalidHistogram`] for a bin that is not a bin of a finite
    /// value at that precision or counts that overflow `u64` (nothing is built).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_window::LogHistogram;
    ///
    /// let mut h = LogHistogram::new(7)?;
    /// h.record_n(12.5, 3)?;
    /// h.record(-1.0)?;
    /// let pairs: Vec<(u32, u64)> = h.bin_counts().collect();
    /// let back = LogHistogram::from_bin_counts(7, pairs)?;
    /// assert_eq!(back.bins().collect::<Vec<_>>(), h.bins().collect::<Vec<_>>());
    /// assert!(LogHistogram::from_bin_counts(7, [(u32::MAX, 1)]).is_err());
    /// # Ok::<(), rtdash_window::WindowError>(())
    /// ```
    pub fn from_bin_counts(
        precision: u8,
        pairs: impl IntoIterator<Item = (u32, u64)>,
    ) -> Result<Self, WindowError> {
        check_precision(precision)?;
        let bins = Bins::new(precision);
        let mut h = Self::with_bins(bins);
        for (bin, count) in pairs {
            if !bins.is_valid(bin) {
                return Err(WindowError::InvalidHistogram {
                    reason: format!(
                        "bin {bin} is not a bin of a finite value at precision {precision}"
                    ),
                });
            }
            h.count = h
                .count
                .checked_add(count)
                .ok_or_else(|| WindowError::InvalidHistogram {
                    reason: "bin counts overflow u64".to_owned(),
                })?;
            h.dense.add(bin, count);
        }
        Ok(h)
    }
}

impl<'de> Deserialize<'de> for LogHistogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let repr = HistogramRepr::deserialize(deserializer)?;
        Self::from_bin_counts(repr.precision, repr.bins).map_err(|e| match e {
            WindowError::InvalidHistogram { reason } => D::Error::custom(reason),
            other => D::Error::custom(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_ordered_like_values() {
        let bins = Bins::new(7);
        let values = [
            -f64::MAX,
            -1e300,
            -3.5,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1e-300,
            1.0,
            1.0 + 1.0 / 64.0,
            3.5,
            1e300,
            f64::MAX,
        ];
        let idx: Vec<u32> = values.iter().map(|&v| bins.index(v)).collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
        assert_eq!(bins.index(-0.0), bins.index(0.0));
        assert!(idx.iter().all(|&i| i != 0 && bins.is_valid(i)));
        assert_eq!(bins.value(bins.index(0.0)), 0.0);
    }

    #[test]
    fn midpoint_is_within_bound() {
        for p in MIN_PRECISION..=MAX_PRECISION {
            let bins = Bins::new(p);
            for v in [1.0, 1.5, 2.0 - 1e-12, 123.456, 1e-200, 7e250, f64::MAX] {
                for v in [v, -v] {
                    let rep = bins.value(bins.index(v));
                    assert!(
                        (rep - v).abs() <= v.abs() * bins.relative_error(),
                        "p={p} v={v} rep={rep}"
                    );
                    assert!(rep.is_finite());
                }
            }
        }
    }

    #[test]
    fn bucket_table_counts_exactly() {
        let mut b = BucketBins::default();
        assert!(b.is_empty());
        assert_eq!(b.heap_bytes(), 0);
        for i in 0..1000u32 {
            b.insert(100 + i % 37, 0);
        }
        assert_eq!(b.total(), 1000);
        assert_eq!(b.entries(), 37);
        b.pack();
        assert_eq!(b.heap_bytes(), 37 * 8, "a table 37/64 full is packed");
        assert_eq!(b.total(), 1000);
        b.insert(5, 0);
        assert_eq!(b.total(), 1001);
        assert_eq!(b.entries(), 38);
    }

    #[test]
    fn bucket_counts_past_u32_split_entries() {
        let mut b = BucketBins::default();
        b.add(9, u32::MAX - 1);
        b.add(9, 5);
        b.add(9, u32::MAX);
        assert_eq!(b.total(), u64::from(u32::MAX) * 2 + 4);
        let mut dense = DenseBins::new(Bins::new(7));
        dense.add_bucket(&b);
        dense.add_bucket(&b);
        dense.sub_bucket(&b);
        assert_eq!(dense.total(), b.total());
    }

    #[test]
    fn dense_rank_search_and_trim() {
        let bins = Bins::new(4);
        let mut d = DenseBins::new(bins);
        let vals = [-100.0, -1.0, 0.0, 0.5, 2.0, 1e10];
        for &v in &vals {
            d.add(bins.index(v), 2);
        }
        assert_eq!(d.total(), 12);
        for (i, &v) in vals.iter().enumerate() {
            let bin = d.bin_of_rank(2 * i as u64 + 1).unwrap();
            assert_eq!(bin, bins.index(v));
            assert_eq!(d.bin_of_rank(2 * i as u64 + 2), Some(bin));
        }
        assert_eq!(d.bin_of_rank(13), None);
        d.sub(bins.index(1e10), 2);
        d.sub(bins.index(-100.0), 2);
        d.trim();
        assert_eq!(d.iter().count(), 4);
        assert_eq!(d.pages.len() as u32, (bins.index(2.0) >> 4) - d.first + 1);
    }

    #[test]
    fn histogram_merge_subtract() {
        let mut a = LogHistogram::new(7).unwrap();
        let mut b = LogHistogram::new(7).unwrap();
        for v in 1..=100 {
            a.record(f64::from(v)).unwrap();
        }
        for v in 1..=10 {
            b.record(f64::from(v)).unwrap();
        }
        let mut c = a.clone();
        c.subtract(&b).unwrap();
        assert_eq!(c.count(), 90);
        let lowest = Percentile::from_millionths(1).unwrap();
        assert_eq!(c.percentile(lowest), Some(11.0 + 1.0 / 32.0));
        c.merge(&b).unwrap();
        assert_eq!(c.count(), 100);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&a).unwrap()
        );
        assert!(matches!(
            b.subtract(&a),
            Err(WindowError::SubtractUnderflow { .. })
        ));
        assert_eq!(b.count(), 10);
        let other = LogHistogram::new(5).unwrap();
        assert!(matches!(
            a.merge(&other),
            Err(WindowError::PrecisionMismatch { left: 7, right: 5 })
        ));
        assert!(matches!(
            a.record(f64::NAN),
            Err(WindowError::NonFiniteValue { .. })
        ));
        assert!(LogHistogram::new(0).is_err());
        assert!(LogHistogram::new(13).is_err());
    }

    #[test]
    fn histogram_serde_rejects_bad_bins() {
        let h: LogHistogram =
            serde_json::from_str(r#"{"precision":3,"bins":[[16385,2]]}"#).expect("valid bin");
        assert_eq!(h.count(), 2);
        for bad in [
            r#"{"precision":3,"bins":[[0,2]]}"#,
            r#"{"precision":3,"bins":[[4294967295,2]]}"#,
            r#"{"precision":0,"bins":[]}"#,
            r#"{"precision":3,"bins":[[16385,18446744073709551615],[16386,1]]}"#,
            r#"{"precision":3}"#,
            r#"{"precision":3,"bins":[],"extra":1}"#,
        ] {
            assert!(serde_json::from_str::<LogHistogram>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn histogram_percentile_uses_the_exact_rank() {
        let mut h = LogHistogram::new(7).unwrap();
        h.record_n(1.0, 999).unwrap();
        h.record(1000.0).unwrap();
        // ⌈999/1000 · 1000⌉ = 999: the last 1.0 (its bin's midpoint), not 1000.
        assert_eq!(h.percentile(Percentile::P999), Some(1.0 + 1.0 / 256.0));
        h.record(1000.0).unwrap();
        // ⌈999/1000 · 1001⌉ = 1000: the first 1000.0.
        assert!(h.percentile(Percentile::P999).unwrap() > 990.0);
        let mut h = LogHistogram::new(7).unwrap();
        for v in 1..=3 {
            h.record(f64::from(v)).unwrap();
        }
        assert_eq!(h.percentile(Percentile::P50), Some(2.0 + 1.0 / 128.0));
        let top = Percentile::new(100.0).unwrap();
        assert_eq!(h.percentile(top), Some(3.0 + 1.0 / 128.0));
        let bottom = Percentile::from_millionths(1).unwrap();
        assert_eq!(h.percentile(bottom), Some(1.0 + 1.0 / 256.0));
    }
}
