//! Grid overlap detection for [`Dashboard::validate`](crate::Dashboard::validate): for every
//! widget, the first earlier widget whose rectangle shares a cell with it, in
//! O(n log n + cells) instead of comparing every pair; and automatic placement
//! ([`place`], for [`Dashboard::place_widgets`](crate::Dashboard::place_widgets)).
//!
//! # How
//!
//! The rectangles' edges are compressed (sorted, deduplicated), which turns the grid into at
//! most `(2n)²` compressed cells, and usually far fewer: a 12-column dashboard has at most 13
//! distinct column edges. Two rectangles overlap exactly when they share a compressed cell.
//!
//! 1. *Paint*: in document order, each widget claims the cells of its rectangle that no
//!    earlier widget claimed. A per-line "next unclaimed cell" forest (union–find with path
//!    halving) skips claimed cells, so every cell is written once and a widget costs one
//!    find per line it spans. Lines run along the longer axis, so a widget spans at most
//!    `sqrt(cells)` of them.
//! 2. *Query*: each cell now holds the smallest index of a widget covering it. The smallest
//!    index over a widget's rectangle (a two-dimensional range minimum, answered by a
//!    two-dimensional segment tree in O(log² cells)) is the first widget that overlaps it,
//!    when it is below its own index.
//!
//! # Cost and the fallbacks
//!
//! Time O(n · (log n + s + log² cells) + cells), where `s <= sqrt(cells)` is the number of
//! lines a widget spans; memory about 20 bytes per compressed cell, with the cells bounded
//! by [`CELL_BUDGET`]:
//!
//! - If the compressed grid of all rectangles fits the budget (always with at most 512
//!   widgets, and for every layout inside the default limits' 48 × 1000 grid), the answer is
//!   exactly that of the pairwise comparison.
//! - Otherwise, rectangles are first clipped to the grid the limits allow (the dashboard's
//!   columns, at most `max_columns`, by `max_rows` rows). Only overlaps inside it are found:
//!   a widget reaching outside it is reported for that already (`position`), and for such a
//!   widget the pair named may be a later one than the pairwise check would name.
//! - If even that grid exceeds the budget (only with [`SchemaLimits`](crate::SchemaLimits)
//!   raised past `max_columns × max_rows` = 2²⁰ cells), the pairwise comparison runs.

use crate::schema::GridPos;

/// Most compressed cells the overlap check allocates for (about 20 MiB at most), and most
/// cells automatic placement searches.
pub(crate) const CELL_BUDGET: u64 = 1 << 20;

/// A widget as automatic placement sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A widget with a position: it keeps it, and its cells are taken.
    Fixed(GridPos),
    /// A widget to place, `w` × `h` cells (`w` is cut to the grid's width, both are at
    /// least 1).
    Auto { w: u32, h: u32 },
}

/// Places every [`Slot::Auto`] and returns every widget's position, in order.
///
/// In order, each widget to place goes to the first position, row by row from the top
/// left (smallest row, then smallest column), where its rectangle lies inside `columns`
/// and shares no cell with a fixed widget or one placed before it. Rows are searched up to
/// `max_rows`, and up to `budget` cells; a widget that finds no room there goes below,
/// at column 0, each one under the previous such widget.
///
/// Cost: the fixed widgets are painted into a bitmap of the rows that can be needed (at
/// most their lowest edge plus the heights to place, and the budget); then each size has a
/// cursor that only moves forward (a later widget of the same size never fits before an
/// earlier one, as the grid only fills up), so the search is O(cells × h) per distinct
/// size, whatever the number of widgets.
pub(crate) fn place(slots: &[Slot], columns: u32, max_rows: u32, budget: u64) -> Vec<GridPos> {
    let cols = columns.max(1);
    let bound = u64::from(max_rows).min(budget / u64::from(cols));
    // Below every fixed widget and every widget placed before, there is always room: a
    // widget never needs rows past the fixed widgets' lowest edge plus the heights placed.
    let fixed_bottom = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Fixed(p) if p.w > 0 && p.h > 0 && p.x < cols => {
                Some(u64::from(p.y) + u64::from(p.h))
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let auto_rows: u64 = slots
        .iter()
        .map(|s| match s {
            Slot::Auto { h, .. } => u64::from((*h).max(1)),
            Slot::Fixed(_) => 0,
        })
        .sum();
    // At most `budget` cells, so it fits `usize`.
    let rows = usize::try_from(bound.min(fixed_bottom.saturating_add(auto_rows))).unwrap_or(0);
    let mut grid = Occupancy::new(cols as usize, rows);
    for s in slots {
        if let Slot::Fixed(p) = s
            && p.w > 0
            && p.h > 0
            && p.x < cols
            && (p.y as usize) < rows
        {
            let x1 = (u64::from(p.x) + u64::from(p.w)).min(u64::from(cols)) as usize;
            let y1 = (u64::from(p.y) + u64::from(p.h)).min(rows as u64) as usize;
            for r in p.y as usize..y1 {
                grid.paint(r, p.x as usize, x1 - p.x as usize);
            }
        }
    }
    // Per size, where its search resumes: (row, column).
    let mut cursors: Vec<((usize, usize), (usize, usize))> = Vec::new();
    let mut below = bound;
    slots
        .iter()
        .map(|s| match *s {
            Slot::Fixed(p) => p,
            Slot::Auto { w, h } => {
                let (w, h) = (w.clamp(1, cols), h.max(1));
                let size = (w as usize, h as usize);
                let i = match cursors.iter().position(|(k, _)| *k == size) {
                    Some(i) => i,
                    None => {
                        cursors.push((size, (0, 0)));
                        cursors.len() - 1
                    }
                };
                match grid.first_fit(size, cursors[i].1) {
                    Some((y, x)) => {
                        cursors[i].1 = (y, x);
                        for r in y..y + size.1 {
                            grid.paint(r, x, size.0);
                        }
                        // Both fit u32: `x < cols`, `y < rows <= max_rows`.
                        GridPos::new(x as u32, y as u32, w, h)
                    }
                    None => {
                        let y = u32::try_from(below).unwrap_or(u32::MAX);
                        below = below.saturating_add(u64::from(h));
                        GridPos::new(0, y, w, h)
                    }
                }
            }
        })
        .collect()
}

/// Which cells of the top `rows` rows of a `cols`-wide grid are taken, one bit per cell.
struct Occupancy {
    bits: Vec<u64>,
    /// Words per row.
    stride: usize,
    cols: usize,
    rows: usize,
}

impl Occupancy {
    fn new(cols: usize, rows: usize) -> Self {
        let stride = cols.div_ceil(64);
        Self {
            bits: vec![0; stride * rows],
            stride,
            cols,
            rows,
        }
    }

    /// The words and masks covering cells `x .. x + w` of row `r`.
    fn masks(&self, r: usize, x: usize, w: usize) -> impl Iterator<Item = (usize, u64)> {
        let base = r * self.stride;
        let end = x + w;
        let mut at = x;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let bit = at % 64;
            let n = (64 - bit).min(end - at);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            let word = base + at / 64;
            at += n;
            Some((word, mask))
        })
    }

    fn is_free(&self, r: usize, x: usize, w: usize) -> bool {
        self.masks(r, x, w).all(|(i, m)| self.bits[i] & m == 0)
    }

    fn paint(&mut self, r: usize, x: usize, w: usize) {
        let masks: Vec<(usize, u64)> = self.masks(r, x, w).collect();
        for (i, m) in masks {
            self.bits[i] |= m;
        }
    }

    /// The first free `(w, h)` rectangle's top left `(row, column)` at or after `from` in
    /// row-major order.
    fn first_fit(&self, (w, h): (usize, usize), from: (usize, usize)) -> Option<(usize, usize)> {
        if w > self.cols || h > self.rows {
            return None;
        }
        for y in from.0..=self.rows - h {
            let x0 = if y == from.0 { from.1 } else { 0 };
            for x in x0..=self.cols - w {
                if (y..y + h).all(|r| self.is_free(r, x, w)) {
                    return Some((y, x));
                }
            }
        }
        None
    }
}

/// A non-empty rectangle, half-open on both axes: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rect {
    x0: u64,
    x1: u64,
    y0: u64,
    y1: u64,
}

impl Rect {
    /// The rectangle of `p`, or `None` when it has no cell (a zero width or height, which
    /// validation reports on its own).
    fn of(p: &GridPos) -> Option<Self> {
        (p.w > 0 && p.h > 0).then(|| Self {
            x0: u64::from(p.x),
            x1: u64::from(p.x) + u64::from(p.w),
            y0: u64::from(p.y),
            y1: u64::from(p.y) + u64::from(p.h),
        })
    }

    /// The part inside `0..cols` × `0..rows`, if any.
    fn clip(self, cols: u64, rows: u64) -> Option<Self> {
        let r = Self {
            x0: self.x0,
            x1: self.x1.min(cols),
            y0: self.y0,
            y1: self.y1.min(rows),
        };
        (r.x0 < r.x1 && r.y0 < r.y1).then_some(r)
    }

    fn overlaps(&self, o: &Self) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// For each position, the index of the first earlier position that shares a cell with it.
///
/// `region` is the grid the limits allow (columns, rows); it is used only when the exact
/// check would need more than `budget` cells (see the module documentation).
pub(crate) fn first_overlaps(
    positions: &[GridPos],
    region: (u32, u32),
    budget: u64,
) -> Vec<Option<usize>> {
    let rects: Vec<Option<Rect>> = positions.iter().map(Rect::of).collect();
    if u32::try_from(positions.len()).is_ok_and(|n| n < u32::MAX) {
        if let Some(grid) = Compressed::new(&rects, budget) {
            return grid.first_overlaps();
        }
        let (cols, rows) = (u64::from(region.0), u64::from(region.1));
        let clipped: Vec<Option<Rect>> = rects
            .iter()
            .map(|r| r.and_then(|r| r.clip(cols, rows)))
            .collect();
        if let Some(grid) = Compressed::new(&clipped, budget) {
            return grid.first_overlaps();
        }
    }
    pairwise(&rects)
}

/// The pairwise comparison: O(n²), used only past the budget.
fn pairwise(rects: &[Option<Rect>]) -> Vec<Option<usize>> {
    rects
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let r = r.as_ref()?;
            rects[..i]
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.overlaps(r)))
        })
        .collect()
}

/// Rectangles in compressed coordinates, transposed when needed so that lines (`y`) are
/// the shorter axis: `lines <= len`.
struct Compressed {
    /// Per input position: `(x0, x1, y0, y1)` in compressed cells.
    rects: Vec<Option<[u32; 4]>>,
    /// Number of lines (compressed rows, or columns when transposed).
    lines: usize,
    /// Number of cells per line.
    len: usize,
}

impl Compressed {
    /// `None` when the compressed grid has more than `budget` cells.
    fn new(rects: &[Option<Rect>], budget: u64) -> Option<Self> {
        let edges = |lo: fn(&Rect) -> u64, hi: fn(&Rect) -> u64| {
            let mut v: Vec<u64> = rects
                .iter()
                .flatten()
                .flat_map(|r| [lo(r), hi(r)])
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let xs = edges(|r| r.x0, |r| r.x1);
        let ys = edges(|r| r.y0, |r| r.y1);
        let (nx, ny) = (xs.len().saturating_sub(1), ys.len().saturating_sub(1));
        let cells = (nx as u64).checked_mul(ny as u64)?;
        if cells > budget {
            return None;
        }
        // With any rectangle, both axes have a segment, so each has at most `budget` (< 2^32)
        // segments and every edge position fits u32.
        let at = |edges: &[u64], v: u64| -> u32 {
            let i = edges.partition_point(|&e| e < v);
            u32::try_from(i).unwrap_or(u32::MAX)
        };
        let transpose = nx < ny;
        let rects = rects
            .iter()
            .map(|r| {
                r.map(|r| {
                    let (x0, x1) = (at(&xs, r.x0), at(&xs, r.x1));
                    let (y0, y1) = (at(&ys, r.y0), at(&ys, r.y1));
                    if transpose {
                        [y0, y1, x0, x1]
                    } else {
                        [x0, x1, y0, y1]
                    }
                })
            })
            .collect();
        let (len, lines) = if transpose { (ny, nx) } else { (nx, ny) };
        Some(Self { rects, lines, len })
    }

    fn first_overlaps(&self) -> Vec<Option<usize>> {
        let mut tree = MinTree::new(self.lines, self.len);
        let mut free = Unclaimed::new(self.lines, self.len);
        for (i, r) in self.rects.iter().enumerate() {
            let Some([x0, x1, y0, y1]) = *r else { continue };
            // `i` fits u32: `first_overlaps` checked the number of positions.
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            for line in y0 as usize..y1 as usize {
                let mut at = free.find(line, x0 as usize);
                while at < x1 as usize {
                    tree.set_leaf(line, at, index);
                    free.claim(line, at);
                    at = free.find(line, at + 1);
                }
            }
        }
        tree.build();
        self.rects
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let [x0, x1, y0, y1] = (*r)?;
                let first = tree.min(y0 as usize..y1 as usize, x0 as usize..x1 as usize) as usize;
                (first < i).then_some(first)
            })
            .collect()
    }
}

/// Per line, the first unclaimed cell at or after a position: a union–find forest where a
/// claimed cell points to the cell after it (index `len` means "none left").
struct Unclaimed {
    next: Vec<u32>,
    stride: usize,
}

impl Unclaimed {
    fn new(lines: usize, len: usize) -> Self {
        let stride = len + 1;
        let next = (0..lines)
            .flat_map(|_| 0..stride)
            .map(|c| u32::try_from(c).unwrap_or(u32::MAX))
            .collect();
        Self { next, stride }
    }

    /// The first unclaimed cell of `line` at or after `at` (`len` when there is none).
    fn find(&mut self, line: usize, at: usize) -> usize {
        let base = line * self.stride;
        let mut c = at;
        loop {
            let parent = self.next[base + c] as usize;
            if parent == c {
                return c;
            }
            // Path halving: point to the grandparent.
            let grand = self.next[base + parent];
            self.next[base + c] = grand;
            c = grand as usize;
        }
    }

    /// Marks cell `at` of `line` as claimed.
    fn claim(&mut self, line: usize, at: usize) {
        self.next[line * self.stride + at] = u32::try_from(at + 1).unwrap_or(u32::MAX);
    }
}

/// A two-dimensional segment tree of minima over a `lines` × `len` grid of `u32`: node
/// `(r, c)` is at `r * 2·len + c`, leaves at `r >= lines`, `c >= len` (the usual bottom-up
/// layout on each axis; any size works because `min` is commutative).
struct MinTree {
    t: Vec<u32>,
    lines: usize,
    len: usize,
}

impl MinTree {
    fn new(lines: usize, len: usize) -> Self {
        Self {
            t: vec![u32::MAX; 4 * lines * len],
            lines,
            len,
        }
    }

    fn width(&self) -> usize {
        2 * self.len
    }

    fn set_leaf(&mut self, line: usize, at: usize, v: u32) {
        let w = self.width();
        self.t[(self.lines + line) * w + self.len + at] = v;
    }

    /// Fills the inner nodes from the leaves.
    fn build(&mut self) {
        let (w, n) = (self.width(), self.len);
        for r in self.lines..2 * self.lines {
            let row = &mut self.t[r * w..(r + 1) * w];
            for c in (1..n).rev() {
                row[c] = row[2 * c].min(row[2 * c + 1]);
            }
        }
        for r in (1..self.lines).rev() {
            for c in 1..w {
                self.t[r * w + c] = self.t[2 * r * w + c].min(self.t[(2 * r + 1) * w + c]);
            }
        }
    }

    /// The minimum over lines `ys` and cells `xs` (`u32::MAX` when empty).
    fn min(&self, ys: std::ops::Range<usize>, xs: std::ops::Range<usize>) -> u32 {
        let mut best = u32::MAX;
        let (mut a, mut b) = (ys.start + self.lines, ys.end + self.lines);
        while a < b {
            if a & 1 == 1 {
                best = best.min(self.min_in_row(a, &xs));
                a += 1;
            }
            if b & 1 == 1 {
                b -= 1;
                best = best.min(self.min_in_row(b, &xs));
            }
            a >>= 1;
            b >>= 1;
        }
        best
    }

    fn min_in_row(&self, r: usize, xs: &std::ops::Range<usize>) -> u32 {
        let row = &self.t[r * self.width()..(r + 1) * self.width()];
        let mut best = u32::MAX;
        let (mut a, mut b) = (xs.start + self.len, xs.end + self.len);
        while a < b {
            if a & 1 == 1 {
                best = best.min(row[a]);
                a += 1;
            }
            if b & 1 == 1 {
                b -= 1;
                best = best.min(row[b]);
            }
            a >>= 1;
            b >>= 1;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(x: u32, y: u32, w: u32, h: u32) -> GridPos {
        GridPos::new(x, y, w, h)
    }

    /// The pairwise definition, on the original positions.
    fn oracle(ps: &[GridPos]) -> Vec<Option<usize>> {
        ps.iter()
            .enumerate()
            .map(|(i, a)| {
                if a.w == 0 || a.h == 0 {
                    return None;
                }
                ps[..i]
                    .iter()
                    .position(|b| b.w > 0 && b.h > 0 && b.overlaps(a))
            })
            .collect()
    }

    #[test]
    fn finds_the_first_earlier_overlap() {
        let ps = [
            p(0, 0, 6, 4),
            p(6, 0, 6, 4),
            p(5, 3, 2, 2), // overlaps both: the first is named
            p(0, 4, 12, 1),
            p(3, 4, 0, 9), // no cell: never overlaps
            p(11, 0, 1, 1),
        ];
        assert_eq!(
            first_overlaps(&ps, (12, 1000), CELL_BUDGET),
            [None, None, Some(0), Some(2), None, Some(1)]
        );
    }

    #[test]
    fn far_apart_and_huge_positions() {
        let max = u32::MAX;
        let ps = [
            p(max, max, max, max),
            p(0, 0, 1, 1),
            p(max - 1, max - 1, 2, 2),
        ];
        assert_eq!(first_overlaps(&ps, (12, 1000), CELL_BUDGET), oracle(&ps));
        assert_eq!(oracle(&ps), [None, None, Some(0)]);
    }

    #[test]
    fn past_the_budget_overlaps_are_checked_inside_the_grid() {
        // Two widgets overlapping only beyond the grid's 4 columns, and two inside it.
        let ps = [p(10, 0, 2, 1), p(11, 0, 2, 1), p(0, 0, 2, 2), p(1, 1, 2, 2)];
        assert_eq!(oracle(&ps), [None, Some(0), None, Some(2)]);
        // A budget of 10 cells: the exact grid (7 x 3 compressed cells) is too big, the
        // 4 x 3 region's (3 x 3) is not.
        assert_eq!(first_overlaps(&ps, (4, 3), 10), [None, None, None, Some(2)]);
        // A budget too small even for the region: the pairwise comparison, exact.
        assert_eq!(first_overlaps(&ps, (4, 3), 2), oracle(&ps));
    }

    #[test]
    fn past_the_budget_overlaps_beyond_max_rows_are_not_named() {
        // A staircase of 600 2 x 2 widgets, each overlapping the one before: 601 x 601
        // compressed cells, over a budget of 2^18. Clipped to 100 rows it fits; widgets
        // below row 100 (reported by `position` already) are not checked for overlap.
        let ps: Vec<GridPos> = (0..600).map(|i| p(i, i, 2, 2)).collect();
        let got = first_overlaps(&ps, (600, 100), 1 << 18);
        let want: Vec<Option<usize>> = (0..600)
            .map(|i| (1..100).contains(&i).then(|| i - 1))
            .collect();
        assert_eq!(got, want);
        assert_eq!(oracle(&ps)[300], Some(299));
    }

    /// Placement by its definition: try every position in row-major order, compare with
    /// every widget so far.
    fn place_oracle(slots: &[Slot], columns: u32, max_rows: u32) -> Vec<GridPos> {
        let cols = columns.max(1);
        let mut out: Vec<GridPos> = Vec::new();
        let mut below = max_rows;
        let taken = |q: &GridPos| q.w > 0 && q.h > 0;
        for (i, s) in slots.iter().enumerate() {
            let pos = match *s {
                Slot::Fixed(q) => q,
                Slot::Auto { w, h } => {
                    let (w, h) = (w.clamp(1, cols), h.max(1));
                    let others: Vec<GridPos> = out
                        .iter()
                        .copied()
                        .chain(slots[i..].iter().filter_map(|s| match s {
                            Slot::Fixed(q) => Some(*q),
                            Slot::Auto { .. } => None,
                        }))
                        .filter(taken)
                        .collect();
                    let fits = |x: u32, y: u32| {
                        let c = p(x, y, w, h);
                        !others.iter().any(|o| o.overlaps(&c))
                    };
                    let found = (0..=max_rows.saturating_sub(h))
                        .filter(|_| h <= max_rows)
                        .flat_map(|y| (0..=cols - w).map(move |x| (x, y)))
                        .find(|&(x, y)| fits(x, y));
                    match found {
                        Some((x, y)) => p(x, y, w, h),
                        None => {
                            let y = below;
                            below += h;
                            p(0, y, w, h)
                        }
                    }
                }
            };
            out.push(pos);
        }
        out
    }

    fn slots() -> impl Strategy<Value = Vec<Slot>> {
        let slot = prop_oneof![
            (0u32..14, 0u32..12, 0u32..6, 0u32..5)
                .prop_map(|(x, y, w, h)| Slot::Fixed(p(x, y, w, h))),
            (0u32..8, 0u32..5).prop_map(|(w, h)| Slot::Auto { w, h }),
        ];
        prop::collection::vec(slot, 0..16)
    }

    #[test]
    fn placement_fills_gaps_row_by_row() {
        let auto = |w, h| Slot::Auto { w, h };
        let slots = [
            Slot::Fixed(p(2, 0, 2, 1)),
            auto(2, 1),
            auto(3, 2),
            auto(1, 1),
            auto(20, 1), // wider than the grid: cut to 6
            Slot::Fixed(p(0, 9, 6, 1)),
        ];
        let got = place(&slots, 6, 10, CELL_BUDGET);
        assert_eq!(
            got,
            [
                p(2, 0, 2, 1),
                p(0, 0, 2, 1),
                p(0, 1, 3, 2),
                p(4, 0, 1, 1),
                p(0, 3, 6, 1),
                p(0, 9, 6, 1),
            ]
        );
        assert_eq!(got, place_oracle(&slots, 6, 10));
    }

    #[test]
    fn without_room_widgets_go_below_the_grid() {
        let slots = [
            Slot::Fixed(p(0, 0, 4, 3)),
            Slot::Auto { w: 2, h: 2 },
            Slot::Auto { w: 1, h: 1 },
            Slot::Auto { w: 3, h: 1 },
        ];
        // 4 x 3: full. The widgets stack under row 3.
        let got = place(&slots, 4, 3, CELL_BUDGET);
        assert_eq!(got[1..], [p(0, 3, 2, 2), p(0, 5, 1, 1), p(0, 6, 3, 1)]);
        assert_eq!(got, place_oracle(&slots, 4, 3));
        // Fixed widgets far outside the grid cost nothing.
        let slots = [
            Slot::Fixed(p(u32::MAX, u32::MAX, u32::MAX, u32::MAX)),
            Slot::Auto { w: 3, h: 2 },
        ];
        assert_eq!(place(&slots, 12, 1000, CELL_BUDGET)[1], p(0, 0, 3, 2));
    }

    fn layout() -> impl Strategy<Value = Vec<GridPos>> {
        prop::collection::vec((0u32..14, 0u32..10, 0u32..6, 0u32..5), 0..40)
            .prop_map(|v| v.into_iter().map(|(x, y, w, h)| p(x, y, w, h)).collect())
    }

    proptest! {
        /// Placement agrees with its definition, stays in the grid's columns, and a placed
        /// widget inside the rows shares no cell with any other widget.
        #[test]
        fn placement_matches_the_oracle_and_never_overlaps(
            slots in slots(),
            columns in 1u32..10,
            max_rows in 0u32..12,
        ) {
            let got = place(&slots, columns, max_rows, CELL_BUDGET);
            prop_assert_eq!(&got, &place_oracle(&slots, columns, max_rows));
            for (i, (s, q)) in slots.iter().zip(&got).enumerate() {
                if let Slot::Auto { .. } = s {
                    prop_assert!(q.x + q.w <= columns && q.w >= 1 && q.h >= 1);
                    if q.y + q.h <= max_rows {
                        for (j, o) in got.iter().enumerate() {
                            prop_assert!(
                                i == j || o.w == 0 || o.h == 0 || !o.overlaps(q),
                                "{:?} overlaps widget {} at {:?}", q, j, o
                            );
                        }
                    }
                }
            }
        }

        #[test]
        fn same_as_the_pairwise_oracle(ps in layout()) {
            prop_assert_eq!(first_overlaps(&ps, (12, 8), CELL_BUDGET), oracle(&ps));
        }

        #[test]
        fn the_region_path_is_exact_inside_the_region(ps in layout()) {
            let mut all: Vec<GridPos> = ps
                .into_iter()
                .filter(|q| q.x + q.w <= 14 && q.y + q.h <= 10)
                .collect();
            let inside = all.len();
            // 20 far-away widgets make the exact grid over 40 x 40 compressed cells, past the
            // budget of 1,000; the 14 x 10 region fits it.
            all.extend((0..20).map(|k| p(1000 + 7 * k, 1000 + 7 * k, 1, 1)));
            let got = first_overlaps(&all, (14, 10), 1000);
            prop_assert_eq!(&got[..inside], &oracle(&all[..inside])[..]);
            prop_assert!(got[inside..].iter().all(Option::is_none));
        }
    }
}
