//! A ring of time buckets with a sum tree over it, the building block of both tiers.
//!
//! The ring holds the buckets with absolute indices `head - n + 1 ..= head`, each in a slot
//! (`index mod n`, rotated). Every bucket keeps its own count, sum, min and max, never a
//! running total: a window's sum must depend only on the values inside it, and a difference
//! of two running sums does not (one value of 2^53 or 1.7e308 before the window would
//! cancel or poison every later window).
//!
//! Range reads are O(log n) through a bottom-up segment tree over the slots: node `i < n`
//! holds the combination (counts and sums added, min of mins, max of maxes) of nodes `2i` and
//! `2i + 1`, and the leaves `n..2n` are the buckets. A range of slots is covered by at most
//! `2·log2(n)` nodes, each the float sum of buckets inside the range only, so the error of a
//! window's sum is bounded by `(log2(n) + k)·ε·Σ|x|` over the window's own values (`k` values
//! per bucket) and an infinity or overflow affects only the windows that contain it.
//!
//! - A value added to the head bucket (the in-order case) writes its leaf only: the tree
//!   nodes above the head leaf are not kept current, and reads never use them (a read takes
//!   the head leaf itself and the tree for the rest).
//! - A value added to an older bucket (out of order, within grace) recomputes the nodes on
//!   its leaf's path to the root: `log2(n)` combinations, each from its two children.
//! - Advancing the head hands the oldest buckets to the caller (roll-up or expiry), clears
//!   their leaves and recomputes their paths and the old head's.
//!
//! Every node that does not cover the head leaf therefore equals the combination of its
//! children, which is all a read needs.

use crate::sketch::BucketBins;

/// The content of a bucket leaving the ring.
#[derive(Debug, Clone)]
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
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) bins: BucketBins,
}

/// Count, sum, min and max of a set of values: a bucket, a tree node or a range.
/// 32 bytes, so an update touches one cache line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Agg {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Agg {
    pub(crate) const EMPTY: Self = Self {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    #[inline]
    pub(crate) fn combine(self, o: Self) -> Self {
        Self {
            count: self.count + o.count,
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

/// Slot of bucket `b` in a ring of `n`.
fn slot_of(b: i64, n: usize) -> usize {
    // n <= MAX_BUCKETS_PER_SERIES: fits in i64, and the remainder in usize.
    b.rem_euclid(n as i64) as usize
}

#[derive(Clone, Debug)]
pub(crate) struct Ring {
    /// Absolute index of the newest bucket.
    head: i64,
    /// Slot of `head`.
    head_slot: usize,
    /// The segment tree: `2n` nodes, leaf of slot `s` at `n + s`, node 0 unused. Bucket `b`
    /// is in slot `b mod n`, so the tree's shape over the buckets, and with it the order in
    /// which a range's sum is added up, depends only on the indices: a restored ring sums
    /// bit for bit as the original.
    tree: Box<[Agg]>,
    /// Empty when histograms are off, else one per slot.
    bins: Box<[BucketBins]>,
    /// Advances since the ring last turned once.
    since_turn: u32,
    /// Histogram entries of the last bucket that was head: the size to reserve for the next.
    entries_hint: u32,
}

impl Ring {
    pub(crate) fn new(n: usize, head: i64, histograms: bool) -> Self {
        debug_assert!(n >= 2);
        Self {
            head,
            head_slot: slot_of(head, n),
            tree: vec![Agg::EMPTY; 2 * n].into_boxed_slice(),
            bins: if histograms {
                (0..n).map(|_| BucketBins::default()).collect()
            } else {
                Box::default()
            },
            since_turn: 0,
            entries_hint: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tree.len() / 2
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

    #[inline]
    fn leaf(&self, s: usize) -> &Agg {
        &self.tree[self.len() + s]
    }

    #[inline]
    fn leaf_mut(&mut self, s: usize) -> &mut Agg {
        let n = self.len();
        &mut self.tree[n + s]
    }

    /// Recomputes the nodes above slot `s`'s leaf from their children.
    fn fix(&mut self, s: usize) {
        let mut i = (self.len() + s) / 2;
        while i >= 1 {
            self.tree[i] = self.tree[2 * i].combine(self.tree[2 * i + 1]);
            i /= 2;
        }
    }

    /// Recomputes every inner node.
    fn rebuild(&mut self) {
        for i in (1..self.len()).rev() {
            self.tree[i] = self.tree[2 * i].combine(self.tree[2 * i + 1]);
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let n = self.len();
        2 * n * size_of::<Agg>()
            + if self.bins.is_empty() {
                0
            } else {
                n * size_of::<BucketBins>()
            }
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
        let c = self.leaf_mut(s);
        c.count += 1;
        c.sum += v;
        c.min = c.min.min(v);
        c.max = c.max.max(v);
        if s != self.head_slot {
            self.fix(s);
        }
        s
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
        let c = self.leaf_mut(s);
        *c = c.combine(Agg {
            count: e.count,
            sum: e.sum,
            min: e.min,
            max: e.max,
        });
        if s != self.head_slot {
            self.fix(s);
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
    /// ring to `expire`, oldest first. Returns whether the ring completed a turn since the
    /// last time it said so (a cue for periodic upkeep).
    pub(crate) fn advance(&mut self, h: i64, mut expire: impl FnMut(Expired)) -> bool {
        let n = self.len();
        if let Some(b) = self.bins.get(self.head_slot)
            && !b.is_empty()
        {
            self.entries_hint = u32::try_from(b.entries()).unwrap_or(u32::MAX);
        }
        let steps = (h.wrapping_sub(self.head) as u64).min(n as u64) as usize;
        let old_head_slot = self.head_slot;
        for _ in 0..steps {
            let s = self.next(self.head_slot);
            let old = *self.leaf(s);
            if old.count > 0 {
                expire(Expired {
                    index: self.head - (n as i64 - 1),
                    count: old.count,
                    sum: old.sum,
                    min: old.min,
                    max: old.max,
                    bins: self.bins.get_mut(s).map(std::mem::take).unwrap_or_default(),
                });
            } else if let Some(b) = self.bins.get_mut(s)
                && !b.is_empty()
            {
                *b = BucketBins::default();
            }
            *self.leaf_mut(s) = Agg::EMPTY;
            self.head_slot = s;
            self.head += 1;
        }
        // A jump of more than `n`: every slot is now empty; put the head in its own slot.
        self.head = h;
        self.head_slot = slot_of(h, n);
        // Bring the tree up to date for every leaf that changed and is no longer the head.
        let depth = usize::BITS - n.leading_zeros();
        if steps.saturating_mul(depth as usize) >= n {
            self.rebuild();
        } else {
            self.fix(old_head_slot);
            let mut s = old_head_slot;
            for _ in 0..steps {
                s = self.next(s);
                self.fix(s);
            }
        }
        self.since_turn = self.since_turn.saturating_add(steps as u32);
        if self.since_turn as usize >= n {
            self.since_turn = 0;
            true
        } else {
            false
        }
    }

    /// Combination of the slots `l..r` (`l <= r <= n`) through the tree. The range must not
    /// hold the head slot.
    #[inline]
    fn tree_range(&self, l: usize, r: usize) -> Agg {
        let n = self.len();
        let (mut l, mut r) = (l + n, r + n);
        let mut acc = Agg::EMPTY;
        while l < r {
            if l & 1 == 1 {
                acc = acc.combine(self.tree[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                acc = acc.combine(self.tree[r]);
            }
            l >>= 1;
            r >>= 1;
        }
        acc
    }

    /// Count, sum, min and max of the buckets `a..=b` (any indices; outside the ring counts
    /// as empty). O(log n); the sum is a float sum of those buckets' values only.
    #[inline]
    pub(crate) fn range(&self, a: i64, b: i64) -> Agg {
        let lo = a.max(self.oldest());
        let mut hi = b.min(self.head);
        if lo > hi {
            return Agg::EMPTY;
        }
        let mut acc = Agg::EMPTY;
        if hi == self.head {
            acc = *self.leaf(self.head_slot);
            hi -= 1;
        }
        if lo <= hi {
            let len = (hi - lo) as usize + 1;
            let s = self.slot(lo);
            let n = self.len();
            acc = if s + len <= n {
                acc.combine(self.tree_range(s, s + len))
            } else {
                acc.combine(self.tree_range(s, n))
                    .combine(self.tree_range(0, s + len - n))
            };
        }
        acc
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

    /// Non-empty buckets, oldest first.
    pub(crate) fn non_empty(&self) -> impl Iterator<Item = BucketState> + '_ {
        let oldest = self.oldest();
        (0..self.len()).filter_map(move |i| {
            let idx = oldest + i as i64;
            let s = self.slot(idx);
            let c = *self.leaf(s);
            (c.count > 0).then(|| BucketState {
                index: idx,
                count: c.count,
                sum: c.sum,
                min: c.min,
                max: c.max,
                bins: self.bins.get(s).cloned().unwrap_or_default(),
            })
        })
    }

    /// Rebuilds a ring from checkpointed parts. `buckets` must be non-empty buckets with
    /// increasing indices within the ring; the caller has checked this.
    pub(crate) fn restore(
        n: usize,
        head: i64,
        histograms: bool,
        buckets: Vec<BucketState>,
    ) -> Self {
        let mut ring = Self::new(n, head, histograms);
        for b in buckets {
            let s = ring.slot(b.index);
            *ring.leaf_mut(s) = Agg {
                count: b.count,
                sum: b.sum,
                min: b.min,
                max: b.max,
            };
            if let Some(target) = ring.bins.get_mut(s) {
                *target = b.bins;
            }
        }
        ring.rebuild();
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(r: &Ring) -> Vec<(i64, u64)> {
        r.non_empty().map(|b| (b.index, b.count)).collect()
    }

    fn cs(r: &Ring, a: i64, b: i64) -> (u64, f64) {
        let x = r.range(a, b);
        (x.count, x.sum)
    }

    #[test]
    fn ranges_and_out_of_order() {
        let mut r = Ring::new(4, 10, false);
        r.add(10, 1.0);
        r.advance(12, |_| panic!("nothing expires"));
        r.add(12, 4.0);
        r.add(11, 2.0);
        r.add(10, 8.0);
        assert_eq!(cs(&r, 10, 12), (4, 15.0));
        assert_eq!(cs(&r, 11, 11), (1, 2.0));
        assert_eq!(cs(&r, 11, 100), (2, 6.0));
        assert_eq!(cs(&r, -5, 10), (2, 9.0));
        let x = r.range(10, 11);
        assert_eq!((x.min, x.max), (1.0, 8.0));
        assert_eq!(counts(&r), vec![(10, 2), (11, 1), (12, 1)]);
    }

    #[test]
    fn advance_expires_in_order() {
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
        assert_eq!(cs(&r, 0, 19), (3, 17.0 + 18.0 + 19.0));
        // A long jump expires everything.
        r.advance(1000, |e| out.push((e.index, e.count, e.sum)));
        assert_eq!(out.len(), 20);
        assert_eq!(cs(&r, 0, 2000), (0, 0.0));
        assert_eq!(r.oldest(), 998);
    }

    /// A huge value leaving the ring leaves no trace in the sums of later ranges.
    #[test]
    fn expired_outlier_does_not_cancel_later_sums() {
        let mut r = Ring::new(8, 0, false);
        r.add(0, 2f64.powi(53));
        r.add(0, f64::MAX);
        r.advance(1, |_| {});
        r.add(1, f64::MAX);
        for b in 2..30 {
            r.advance(b, |_| {});
            r.add(b, 1.0);
            r.add(b - 1, 0.01);
        }
        assert_eq!(cs(&r, 25, 29), (5 + 4, 5.0 + 0.01 * 4.0));
        assert!(r.range(22, 29).sum.is_finite());
    }

    /// Every range of every ring size against a scan of the buckets, with out-of-order adds,
    /// jumps and long advances.
    #[test]
    fn tree_matches_a_scan_for_every_size() {
        for n in 2..40usize {
            let mut r = Ring::new(n, 0, false);
            let mut raw: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
            let mut x = 7u64;
            for step in 0..(6 * n as i64) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jump = if x >> 60 == 0 {
                    (x >> 40) as i64 % (2 * n as i64)
                } else {
                    1
                };
                let h = r.head() + jump;
                r.advance(h, |_| {});
                for k in 0..3 {
                    let back = ((x >> (8 * k)) as i64 & 0xff) % n as i64;
                    let b = (h - back).max(r.oldest());
                    let v = ((x >> (16 + k)) & 0xff) as f64 - 100.0;
                    r.add(b, v);
                    raw.entry(b).or_default().push(v);
                }
                let oldest = r.oldest();
                raw.retain(|&b, _| b >= oldest);
                if step % 3 == 0 {
                    for a in oldest - 2..=h + 1 {
                        for b in a..=h + 2 {
                            let vals: Vec<f64> = raw
                                .range(a..=b)
                                .flat_map(|(_, v)| v.iter().copied())
                                .collect();
                            let got = r.range(a, b);
                            assert_eq!(got.count, vals.len() as u64, "n={n} [{a},{b}]");
                            // Small integers: every order of summation is exact.
                            assert_eq!(got.sum, vals.iter().sum::<f64>(), "n={n} [{a},{b}]");
                            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                            assert_eq!((got.min, got.max), (lo, hi), "n={n} [{a},{b}]");
                        }
                    }
                }
            }
        }
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
        let back = Ring::restore(5, r.head(), false, parts);
        for a in 0..8 {
            for b in a..8 {
                assert_eq!(r.range(a, b), back.range(a, b));
            }
        }
    }
}
