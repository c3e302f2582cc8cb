//! The window state of one series: a fine ring, an optional roll-up ring and a running
//! histogram of everything retained.
//!
//! Lateness is per series: the series' watermark is its own newest event time minus the
//! grace, so a producer with a fast clock moves only its own series' watermark.
//!
//! Invariants (with `H` the newest fine bucket of this series, `Nf` the fine ring size):
//!
//! - every accepted event lands in the fine ring: its bucket is at least the series'
//!   watermark bucket, which is at least `H - ceil(grace / width) - 1 > H - Nf`;
//! - a fine bucket leaves the ring only after it is sealed (no later event can reach it),
//!   and then merges into the roll-up bucket holding it, so fine and roll-up rings partition
//!   the retained data with no overlap: a roll-up bucket may hold only the older part of its
//!   time range while the rest is still fine;
//! - `total` is the sum of every bucket histogram in both rings.

use crate::config::Layout;
use crate::ring::{Agg, Expired, Ring};
use crate::sketch::{BucketBins, DenseBins};

/// Time range `[start, end)` of a query, in ms, and its bucket bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub(crate) fine: Ring,
    pub(crate) coarse: Option<Ring>,
    pub(crate) total: Option<DenseBins>,
    /// `[head_start, head_end)`: the time range of the fine head bucket, to skip a division.
    head_start: i64,
    head_end: i64,
    /// Fine buckets below this index have packed histograms.
    pub(crate) sealed_below: i64,
    /// Newest accepted event time.
    pub(crate) last_event: i64,
    /// `last_event - grace`: events before it are late.
    watermark: i64,
    /// Fine bucket of `watermark`.
    wm_bucket: i64,
    /// Watermark at which `wm_bucket` next changes.
    wm_next: i64,
    /// Start (ms) of the data this store holds all of for the series: the first event's
    /// time less the grace period, rounded down to a roll-up bucket (a restored series:
    /// `i64::MIN`, everything its rings hold).
    pub(crate) since: i64,
    /// Roll-up buckets below this index have been handed out by `take_rollups`.
    pub(crate) exported_below: i64,
    /// Complete roll-up buckets that left the roll-up ring before `take_rollups` handed
    /// them out (an event far ahead of the others), oldest first; empty unless exporting.
    pub(crate) evicted: Vec<Expired>,
}

/// Partial results of a query, accumulated over series.
#[derive(Debug)]
pub(crate) struct Acc {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) last_event: Option<i64>,
}

impl Acc {
    /// Adds a range's aggregate (min and max only when asked).
    #[inline]
    fn add(&mut self, r: Agg, min_max: bool) {
        self.count += r.count;
        self.sum += r.sum;
        if min_max {
            self.min = self.min.min(r.min);
            self.max = self.max.max(r.max);
        }
    }
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last_event: None,
        }
    }
}

/// One histogram term of a window: added or subtracted.
#[derive(Debug)]
pub(crate) enum Term<'a> {
    AddDense(&'a DenseBins),
    Add(&'a BucketBins),
    Sub(&'a BucketBins),
}

impl Series {
    /// A series whose first accepted event is in fine bucket `b`.
    pub(crate) fn new(layout: &Layout, b: i64) -> Self {
        let histograms = layout.bins.is_some();
        let fine = Ring::new(layout.fine_slots, b, histograms);
        let coarse = layout.rollup.then(|| {
            let oldest = fine.oldest();
            Ring::new(
                layout.coarse_slots,
                (oldest - 1).div_euclid(layout.k),
                histograms,
            )
        });
        Self {
            fine,
            coarse,
            total: layout.bins.map(DenseBins::new),
            head_start: b * layout.wf,
            head_end: (b + 1) * layout.wf,
            sealed_below: i64::MIN,
            last_event: i64::MIN,
            watermark: i64::MIN,
            wm_bucket: i64::MIN,
            wm_next: i64::MIN,
            since: (b * layout.wf)
                .saturating_sub(layout.grace)
                .div_euclid(layout.wc)
                .saturating_mul(layout.wc),
            exported_below: i64::MIN,
            evicted: Vec::new(),
        }
    }

    /// The watermark (`last_event - grace`): events before it are late.
    pub(crate) fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Rebuilds a series from checkpointed rings; recomputes the running histogram.
    pub(crate) fn from_parts(
        layout: &Layout,
        fine: Ring,
        coarse: Option<Ring>,
        sealed_below: i64,
        last_event: i64,
    ) -> Self {
        let mut total = layout.bins.map(DenseBins::new);
        if let Some(t) = &mut total {
            for b in fine.histograms(i64::MIN, i64::MAX, true) {
                t.add_bucket(b);
            }
            if let Some(c) = &coarse {
                for b in c.histograms(i64::MIN, i64::MAX, true) {
                    t.add_bucket(b);
                }
            }
        }
        let h = fine.head();
        let mut s = Self {
            fine,
            coarse,
            total,
            head_start: h * layout.wf,
            head_end: (h + 1) * layout.wf,
            sealed_below,
            last_event: i64::MIN,
            watermark: i64::MIN,
            wm_bucket: i64::MIN,
            wm_next: i64::MIN,
            since: i64::MIN,
            exported_below: i64::MIN,
            evicted: Vec::new(),
        };
        s.note_event_time(layout, last_event);
        let oldest = s.fine.oldest();
        s.fine.pack_range(oldest, sealed_below.saturating_sub(1));
        if let Some(c) = &mut s.coarse {
            let (oldest, head) = (c.oldest(), c.head());
            c.pack_range(oldest, head - 1);
        }
        s
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fine.heap_bytes()
            + self.coarse.as_ref().map_or(0, Ring::heap_bytes)
            + self.total.as_ref().map_or(0, DenseBins::heap_bytes)
    }

    /// Records an event: time `t` (ms), value `v`, histogram bin `bin` (when histograms are
    /// on). Returns `false` (and changes nothing) when the event is late for this series
    /// (`t < last_event - grace`), or its bucket is no longer held, which the lateness rule
    /// makes impossible.
    #[inline]
    pub(crate) fn record(&mut self, layout: &Layout, t: i64, v: f64, bin: Option<u32>) -> bool {
        if t < self.watermark {
            return false;
        }
        let b = if t >= self.head_start && t < self.head_end {
            self.fine.head()
        } else {
            let b = t.div_euclid(layout.wf);
            if b > self.fine.head() {
                self.advance(layout, b);
            } else if b < self.fine.oldest() {
                return false;
            }
            b
        };
        let s = self.fine.add(b, v);
        if let Some(bin) = bin {
            self.fine.insert_bin(s, bin);
            if let Some(total) = &mut self.total {
                total.add(bin, 1);
            }
        }
        if t > self.last_event {
            self.note_event_time(layout, t);
        }
        if self.wm_bucket > self.sealed_below {
            self.seal(self.wm_bucket);
        }
        true
    }

    /// `t` is the newest event time: move the watermark.
    #[inline]
    fn note_event_time(&mut self, layout: &Layout, t: i64) {
        self.last_event = t;
        self.watermark = t.saturating_sub(layout.grace);
        if self.watermark >= self.wm_next {
            self.move_watermark_bucket(layout);
        }
    }

    #[cold]
    fn move_watermark_bucket(&mut self, layout: &Layout) {
        self.wm_bucket = self.watermark.div_euclid(layout.wf);
        self.wm_next = (self.wm_bucket + 1).saturating_mul(layout.wf);
    }

    #[cold]
    fn advance(&mut self, layout: &Layout, b: i64) {
        let keep_from = self.exported_below.max(self.since.div_euclid(layout.wc));
        let Self {
            fine,
            coarse,
            total,
            evicted,
            ..
        } = self;
        let keep = layout.exporting.then_some((keep_from, evicted));
        let mut keep = keep;
        let turned = fine.advance(b, |e| roll_out(layout, coarse, total, keep.as_mut(), e));
        self.head_start = b * layout.wf;
        self.head_end = (b + 1) * layout.wf;
        // Trim the running histogram's empty pages about once per ring turn.
        if turned && let Some(t) = &mut self.total {
            t.trim();
        }
    }

    #[cold]
    fn seal(&mut self, wm_bucket: i64) {
        let from = self.sealed_below.max(self.fine.oldest());
        self.fine.pack_range(from, wm_bucket - 1);
        self.sealed_below = wm_bucket;
    }

    /// Adds this series' part of window `span` to `acc`; pushes its histogram terms to
    /// `terms` when given.
    pub(crate) fn query<'a>(
        &'a self,
        layout: &Layout,
        span: Span,
        want_min_max: bool,
        terms: Option<&mut Vec<Term<'a>>>,
        acc: &mut Acc,
    ) {
        acc.last_event = acc.last_event.max(Some(self.last_event));
        let fine_oldest = self.fine.oldest();
        let fa = span.start.div_euclid(layout.wf).max(fine_oldest);
        let fb = (span.end - 1).div_euclid(layout.wf);
        let f = self.fine.range(fa, fb);
        acc.add(f, want_min_max);
        // Roll-up buckets touching the span; they hold only data older than the fine ring.
        let coarse = self
            .coarse
            .as_ref()
            .filter(|_| span.start.div_euclid(layout.wf) < fine_oldest);
        let (ca, cb) = (
            span.start.div_euclid(layout.wc),
            (span.end - 1).div_euclid(layout.wc),
        );
        if let Some(ring) = coarse {
            acc.add(ring.range(ca, cb), want_min_max);
        }
        let (Some(terms), Some(total)) = (terms, &self.total) else {
            return;
        };
        // Merge the buckets inside the window, or take the running total minus the buckets
        // outside it: whichever touches fewer counters.
        let (ca, cb) = if coarse.is_some() { (ca, cb) } else { (1, 0) };
        let cost = |inside: bool| -> usize {
            let fine: usize = self
                .fine
                .histograms(fa, fb, inside)
                .map(BucketBins::entries)
                .sum();
            let coarse: usize = self.coarse.as_ref().map_or(0, |r| {
                r.histograms(ca, cb, inside).map(BucketBins::entries).sum()
            });
            fine + coarse
        };
        let inside = cost(true);
        let outside = cost(false) + total.dense_len();
        if inside <= outside {
            terms.extend(self.fine.histograms(fa, fb, true).map(Term::Add));
            if let Some(r) = &self.coarse {
                terms.extend(r.histograms(ca, cb, true).map(Term::Add));
            }
        } else {
            terms.push(Term::AddDense(total));
            terms.extend(self.fine.histograms(fa, fb, false).map(Term::Sub));
            if let Some(r) = &self.coarse {
                terms.extend(r.histograms(ca, cb, false).map(Term::Sub));
            }
        }
    }
}

impl Series {
    /// Start (ms) of the data held here in full for this series: older data left the rings
    /// (or, for a series new to this store, was never seen by it).
    pub(crate) fn memory_since(&self, layout: &Layout) -> i64 {
        let oldest = match &self.coarse {
            Some(c) => c.oldest().saturating_mul(layout.wc),
            None => self.fine.oldest().saturating_mul(layout.wf),
        };
        oldest.max(self.since)
    }

    /// Roll-up buckets (indices) that are complete: every fine bucket of theirs has left
    /// the fine ring, so no event can change them any more. Empty without a roll-up tier.
    pub(crate) fn complete_rollups(&self) -> std::ops::Range<i64> {
        match &self.coarse {
            Some(c) => c.oldest()..c.head(),
            None => 0..0,
        }
    }

    /// The aggregate of roll-up bucket `c` (fine and roll-up rings together), with its
    /// histogram when `bins` is given; `None` when it holds no event.
    pub(crate) fn rollup_bucket(
        &self,
        layout: &Layout,
        c: i64,
        bins: Option<crate::sketch::Bins>,
    ) -> Option<(Agg, Option<DenseBins>)> {
        let (fa, fb) = (
            c.saturating_mul(layout.k),
            (c + 1).saturating_mul(layout.k) - 1,
        );
        let mut agg = self.fine.range(fa, fb);
        if let Some(ring) = &self.coarse {
            agg = agg.combine(ring.range(c, c));
        }
        if agg.count == 0 {
            return None;
        }
        let hist = bins.map(|bins| {
            let mut dense = DenseBins::new(bins);
            if fb >= self.fine.oldest() {
                for b in self.fine.histograms(fa, fb, true) {
                    dense.add_bucket(b);
                }
            }
            if let Some(ring) = &self.coarse {
                for b in ring.histograms(c, c, true) {
                    dense.add_bucket(b);
                }
            }
            dense.trim();
            dense
        });
        Some((agg, hist))
    }
}

/// A fine bucket leaves the fine ring: merge it into its roll-up bucket, or drop it (and its
/// share of the running histogram) when there is no roll-up.
fn roll_out(
    layout: &Layout,
    coarse: &mut Option<Ring>,
    total: &mut Option<DenseBins>,
    keep: Option<&mut (i64, &mut Vec<Expired>)>,
    e: Expired,
) {
    let Some(ring) = coarse else {
        if let Some(t) = total {
            t.sub_bucket(&e.bins);
        }
        return;
    };
    let c = e.index.div_euclid(layout.k);
    if c > ring.head() {
        // The current roll-up head is complete: pack it, then expire what leaves.
        ring.pack_head();
        let mut keep = keep;
        ring.advance(c, |old| {
            if let Some(t) = total.as_mut() {
                t.sub_bucket(&old.bins);
            }
            // Complete and never handed out: keep it for `take_rollups`.
            if let Some((from, evicted)) = keep.as_mut()
                && old.index >= *from
            {
                evicted.push(old);
            }
        });
    }
    if c < ring.oldest() {
        // Older than the roll-up ring (cannot happen for data rolled in order): drop it.
        if let Some(t) = total {
            t.sub_bucket(&e.bins);
        }
        return;
    }
    ring.add_aggregate(c, e);
}
