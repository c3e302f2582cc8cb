//! A ring of time buckets with prefix sums, the building block of both tiers.
//!
//! The ring holds the buckets with absolute indices `head - n + 1 ..= head`. For each it keeps
//! the *cumulative* count and sum of all buckets up to and including it (since the last
//! rebase), plus its own min, max and histogram. A bucket's own count is the difference of two
//! neighbouring prefixes, and so is the count or sum of any range of buckets: O(1) per read.
//!
//! - A value added to bucket `b` is added to the prefixes of `b..=head`: one slot for an
//!   in-order event, at most `grace / width + 1` for an out-of-order one.
//! - Advancing the head re-initialises the slot of the oldest bucket after handing its
//!   content to the caller (roll-up or expiry).
//! - Prefixes grow without bound, so every `n` advances they are rebased: the prefix before
//!   the oldest bucket (`base`) is subtracted from every slot. Sums are then taken over at
//!   most two retention spans, which bounds the cancellation error of a difference.
//!
//! An empty bucket's prefix is bit-for-bit the prefix of the bucket before it (both received
//! the same additions since the empty one was initialised from it), which lets checkpoints
//! store non-empty buckets only.

use crate::sketch::BucketBins;

/// The content of a bucket leaving the ring.
#[derive(Debug)]
pub(crate) struct Expired {
    pub(crate) index: i64,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) bins: BucketBins,
}

/// One bucket as stored in a checkpoint (non-empty buckets only).
#[derive(Debug, Clone)]
pub(crate) struct BucketState {
    pub(crate) index: i64,
    pub(crate) cum_count: u64,
    pub(crate) cum_sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) bins: BucketBins,
}

/// One bucket: cumulative count and sum (prefix up to and including it), own min and max.
/// 32 bytes, so an update touches one cache line.
#[derive(Clone, Copy, Debug)]
struct Cell {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Cell {
    const EMPTY: Self = Self {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
}

#[derive(Clone, Debug)]
pub(crate) struct Ring {
    /// Absolute index of the newest bucket.
    head: i64,
    /// Slot of `head`.
    head_slot: usize,
    base_count: u64,
    base_sum: f64,
    cells: Box<[Cell]>,
    /// Empty when histograms are off, else one per slot.
    bins: Box<[BucketBins]>,
    /// Advances since the last rebase.
    since_rebase: u32,
    /// Histogram entries of the last bucket that was head: the size to reserve for the next.
    entries_hint: u32,
}

impl Ring {
    pub(crate) fn new(n: usize, head: i64, histograms: bool) -> Self {
        debug_assert!(n >= 2);
        Self {
            head,
            head_slot: n - 1,
            base_count: 0,
            base_sum: 0.0,
            cells: vec![Cell::EMPTY; n].into_boxed_slice(),
            bins: if histograms {
                (0..n).map(|_| BucketBins::default()).collect()
            } else {
                Box::default()
            },
            since_rebase: 0,
            entries_hint: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    #[inline]
    pub(crate) fn head(&self) -> i64 {
        self.head
    }

    /// Absolute index of the oldest bucket held.
    #[inline]
    pub(crate) fn oldest(&self) -> i64 {
        self.head.saturating_sub(self.len() as i64 - 1)
    }

    /// Slot of bucket `b`, which must be within `oldest()..=head`.
    #[inline]
    fn slot(&self, b: i64) -> usize {
        let back = self.head.wrapping_sub(b) as usize;
        if back <= self.head_slot {
            self.head_slot - back
        } else {
            self.head_slot + self.len() - back
        }
    }

    #[inline]
    fn next(&self, s: usize) -> usize {
        if s + 1 == self.len() { 0 } else { s + 1 }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let n = self.len();
        n * (size_of::<Cell>()
            + if self.bins.is_empty() {
                0
            } else {
                size_of::<BucketBins>()
            })
            + self.bins.iter().map(BucketBins::heap_bytes).sum::<usize>()
    }

    /// Adds one value to bucket `b` (`oldest() <= b <= head`). Returns the slot.
    #[inline]
    pub(crate) fn add(&mut self, b: i64, v: f64) -> usize {
        let s = if b == self.head {
            self.head_slot
        } else {
            self.slot(b)
        };
        let c = &mut self.cells[s];
        c.count += 1;
        c.sum += v;
        c.min = c.min.min(v);
        c.max = c.max.max(v);
        if s != self.head_slot {
            self.propagate(s, 1, v);
        }
        s
    }

    /// Adds `count` and `sum` to the prefixes of the slots after `s` up to the head.
    #[cold]
    fn propagate(&mut self, mut s: usize, count: u64, sum: f64) {
        while s != self.head_slot {
            s = self.next(s);
            let c = &mut self.cells[s];
            c.count += count;
            c.sum += sum;
        }
    }

    /// Adds one value in histogram bin `bin` to slot `s` (no-op when histograms are off).
    #[inline]
    pub(crate) fn insert_bin(&mut self, s: usize, bin: u32) {
        let hint = self.entries_hint as usize;
        if let Some(b) = self.bins.get_mut(s) {
            b.insert(bin, hint);
        }
    }

    /// Adds a whole bucket's aggregate to bucket `b`, merging its histogram. `b` must be
    /// within `oldest()..=head`.
    pub(crate) fn add_aggregate(&mut self, b: i64, e: Expired) {
        let s = self.slot(b);
        let c = &mut self.cells[s];
        c.count += e.count;
        c.sum += e.sum;
        c.min = c.min.min(e.min);
        c.max = c.max.max(e.max);
        if s != self.head_slot {
            self.propagate(s, e.count, e.sum);
        }
        let hint = self.entries_hint as usize;
        if let Some(target) = self.bins.get_mut(s) {
            if target.is_empty() {
                *target = e.bins;
                if hint > target.entries() {
                    // More buckets will merge in: become a table of the expected size now.
                    target.unpack_to(hint);
                }
            } else {
                target.merge(&e.bins);
            }
        }
    }

    /// Moves the head forward to `h` (> head), handing every non-empty bucket that leaves the
    /// ring to `expire`, oldest first. Rebases when due.
    pub(crate) fn advance(&mut self, h: i64, mut expire: impl FnMut(Expired)) {
        let n = self.len();
        if let Some(b) = self.bins.get(self.head_slot)
            && !b.is_empty()
        {
            self.entries_hint = u32::try_from(b.entries()).unwrap_or(u32::MAX);
        }
        let steps = (h.wrapping_sub(self.head) as u64).min(n as u64);
        let last = self.cells[self.head_slot];
        for _ in 0..steps {
            let s = self.next(self.head_slot);
            let old = self.cells[s];
            let count = old.count - self.base_count;
            if count > 0 {
                expire(Expired {
                    index: self.head - (n as i64 - 1),
                    count,
                    sum: old.sum - self.base_sum,
                    min: old.min,
                    max: old.max,
                    bins: self.bins.get_mut(s).map(std::mem::take).unwrap_or_default(),
                });
            } else if let Some(b) = self.bins.get_mut(s)
                && !b.is_empty()
            {
                *b = BucketBins::default();
            }
            self.base_count = old.count;
            self.base_sum = old.sum;
            self.cells[s] = Cell {
                count: last.count,
                sum: last.sum,
                ..Cell::EMPTY
            };
            self.head_slot = s;
            self.head += 1;
        }
        // A jump of more than `n`: every slot is now empty with the same prefix, so any
        // index-to-slot mapping is right.
        self.head = h;
        self.since_rebase = self
            .since_rebase
            .saturating_add(u32::try_from(steps).unwrap_or(u32::MAX));
        if self.since_rebase as usize >= n {
            self.rebase();
        }
    }

    fn rebase(&mut self) {
        let (bc, bs) = (self.base_count, self.base_sum);
        for c in self.cells.iter_mut() {
            c.count -= bc;
            c.sum -= bs;
        }
        self.base_count = 0;
        self.base_sum = 0.0;
        self.since_rebase = 0;
    }

    /// The prefix (count, sum) of everything up to and including bucket `i`.
    #[inline]
    fn prefix(&self, i: i64) -> (u64, f64) {
        if i < self.oldest() {
            (self.base_count, self.base_sum)
        } else if i >= self.head {
            let c = &self.cells[self.head_slot];
            (c.count, c.sum)
        } else {
            let c = &self.cells[self.slot(i)];
            (c.count, c.sum)
        }
    }

    /// Count and sum of the buckets `a..=b` (any indices; outside the ring counts as empty).
    #[inline]
    pub(crate) fn range_count_sum(&self, a: i64, b: i64) -> (u64, f64) {
        if a > b {
            return (0, 0.0);
        }
        let (hc, hs) = self.prefix(b);
        let (lc, ls) = self.prefix(a.saturating_sub(1));
        (hc - lc, hs - ls)
    }

    /// The slots of the buckets in `a..=b` intersected with the ring, oldest first.
    fn slots_in(&self, a: i64, b: i64) -> impl Iterator<Item = usize> + '_ {
        let lo = a.max(self.oldest());
        let hi = b.min(self.head);
        let count = if lo > hi { 0 } else { (hi - lo) as usize + 1 };
        let first = if count == 0 { 0 } else { self.slot(lo) };
        let n = self.len();
        (0..count).map(move |i| {
            let s = first + i;
            if s >= n { s - n } else { s }
        })
    }

    /// Min and max over the buckets `a..=b` (infinities when empty).
    pub(crate) fn range_min_max(&self, a: i64, b: i64) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for s in self.slots_in(a, b) {
            lo = lo.min(self.cells[s].min);
            hi = hi.max(self.cells[s].max);
        }
        (lo, hi)
    }

    /// Histograms of the buckets in `a..=b` (`inside == true`) or of all other buckets of the
    /// ring (`inside == false`), skipping empty ones.
    pub(crate) fn histograms(
        &self,
        a: i64,
        b: i64,
        inside: bool,
    ) -> impl Iterator<Item = &BucketBins> + '_ {
        let (lo, hi) = (a.max(self.oldest()), b.min(self.head));
        let oldest = self.oldest();
        self.bins
            .iter()
            .enumerate()
            .filter(move |&(s, bins)| {
                if bins.is_empty() {
                    return false;
                }
                let back = if s <= self.head_slot {
                    self.head_slot - s
                } else {
                    self.head_slot + self.len() - s
                };
                let idx = self.head - back as i64;
                (idx >= lo && idx <= hi && idx >= oldest) == inside
            })
            .map(|(_, bins)| bins)
    }

    /// Packs the histograms of buckets `a..=b` (they will receive no more values).
    pub(crate) fn pack_range(&mut self, a: i64, b: i64) {
        if self.bins.is_empty() {
            return;
        }
        let slots: Vec<usize> = self.slots_in(a, b).collect();
        for s in slots {
            self.bins[s].pack();
        }
    }

    /// Packs the histogram of the head bucket exactly (roll-up buckets live long).
    pub(crate) fn pack_head(&mut self) {
        if let Some(b) = self.bins.get_mut(self.head_slot) {
            b.pack_exact();
        }
    }

    // ---- checkpoint support ----

    pub(crate) fn base(&self) -> (u64, f64) {
        (self.base_count, self.base_sum)
    }

    pub(crate) fn since_rebase(&self) -> u32 {
        self.since_rebase
    }

    /// Non-empty buckets, oldest first.
    pub(crate) fn non_empty(&self) -> impl Iterator<Item = BucketState> + '_ {
        let oldest = self.oldest();
        let mut prev = self.base_count;
        (0..self.len()).filter_map(move |i| {
            let idx = oldest + i as i64;
            let s = self.slot(idx);
            let c = self.cells[s];
            let non_empty = c.count != prev;
            prev = c.count;
            non_empty.then(|| BucketState {
                index: idx,
                cum_count: c.count,
                cum_sum: c.sum,
                min: c.min,
                max: c.max,
                bins: self.bins.get(s).cloned().unwrap_or_default(),
            })
        })
    }

    /// Rebuilds a ring from checkpointed parts. `buckets` must be non-empty buckets with
    /// increasing indices within the ring and increasing prefix counts above `base`; the
    /// caller has checked this.
    pub(crate) fn restore(
        n: usize,
        head: i64,
        base: (u64, f64),
        since_rebase: u32,
        histograms: bool,
        buckets: Vec<BucketState>,
    ) -> Self {
        let mut ring = Self::new(n, head, histograms);
        ring.base_count = base.0;
        ring.base_sum = base.1;
        ring.since_rebase = since_rebase;
        let oldest = ring.oldest();
        let mut it = buckets.into_iter().peekable();
        let (mut c, mut s) = base;
        for i in 0..n {
            let idx = oldest + i as i64;
            let slot = ring.slot(idx);
            if let Some(b) = it.next_if(|b| b.index == idx) {
                c = b.cum_count;
                s = b.cum_sum;
                ring.cells[slot].min = b.min;
                ring.cells[slot].max = b.max;
                if let Some(target) = ring.bins.get_mut(slot) {
                    *target = b.bins;
                }
            }
            ring.cells[slot].count = c;
            ring.cells[slot].sum = s;
        }
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(r: &Ring) -> Vec<(i64, u64)> {
        r.non_empty().map(|b| (b.index, b.cum_count)).collect()
    }

    #[test]
    fn prefix_ranges_and_out_of_order() {
        let mut r = Ring::new(4, 10, false);
        r.add(10, 1.0);
        r.advance(12, |_| panic!("nothing expires"));
        r.add(12, 4.0);
        r.add(11, 2.0);
        r.add(10, 8.0);
        assert_eq!(r.range_count_sum(10, 12), (4, 15.0));
        assert_eq!(r.range_count_sum(11, 11), (1, 2.0));
        assert_eq!(r.range_count_sum(11, 100), (2, 6.0));
        assert_eq!(r.range_count_sum(-5, 10), (2, 9.0));
        assert_eq!(r.range_min_max(10, 11), (1.0, 8.0));
        assert_eq!(counts(&r), vec![(10, 2), (11, 3), (12, 4)]);
    }

    #[test]
    fn advance_expires_in_order_and_rebases() {
        let mut r = Ring::new(3, 0, false);
        let mut out = Vec::new();
        for i in 0..20 {
            if i > 0 {
                r.advance(i, |e| out.push((e.index, e.count, e.sum)));
            }
            r.add(i, i as f64);
        }
        assert_eq!(out.len(), 17);
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, e)| *e == (i as i64, 1, i as f64))
        );
        assert_eq!(r.range_count_sum(0, 19), (3, 17.0 + 18.0 + 19.0));
        assert!(r.base().0 < 20);
        // A long jump expires everything.
        r.advance(1000, |e| out.push((e.index, e.count, e.sum)));
        assert_eq!(out.len(), 20);
        assert_eq!(r.range_count_sum(0, 2000), (0, 0.0));
        assert_eq!(r.oldest(), 998);
    }

    #[test]
    fn restore_round_trips() {
        let mut r = Ring::new(5, 3, false);
        for (b, v) in [(3, 1.5), (4, 2.5), (6, -1.0), (5, 7.0), (4, 0.25)] {
            if b > r.head() {
                r.advance(b, |_| {});
            }
            r.add(b, v);
        }
        let parts: Vec<BucketState> = r.non_empty().collect();
        let back = Ring::restore(5, r.head(), r.base(), r.since_rebase(), false, parts);
        for a in 0..8 {
            for b in a..8 {
                assert_eq!(r.range_count_sum(a, b), back.range_count_sum(a, b));
                assert_eq!(r.range_min_max(a, b), back.range_min_max(a, b));
            }
        }
    }
}
