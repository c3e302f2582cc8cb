//! The store against a naive oracle that keeps every raw event.
//!
//! In the plain cases values are dyadic (multiples of 1/4 below 2^12 in magnitude), so every
//! sum of a few hundred of them is exact in `f64` in any order: count, sum, min and max must
//! be equal, avg within 1e-12 relative. In the adversarial cases some values are ±2^53,
//! ±1e300, ±f64::MAX or subnormal: count, min and max must still be equal, and a window's
//! sum must be within `2·n·ε·Σ|x|` of the oracle's, where `x` are the values inside that
//! window only (so an outlier outside it may not move it). Percentiles use the documented
//! nearest-rank convention (rank `⌈q·n⌉`, 1-based, in the sorted window) and must be within
//! `2^-(P+1)` relative error of the value at that rank.
//!
//! Lateness is per series: late events must be exactly those with
//! `event_time < newest event time of the same series - grace`. Series may have clocks
//! far apart (offsets of many retentions), and queries are made at each series' own time.

use std::time::Duration;

use proptest::prelude::*;
use rtdash_core::{Aggregation, Percentile, SeriesId, TagFilter, Timestamp};
use rtdash_window::{Checkpoint, Recorded, Rollup, WindowConfig, WindowError, WindowStore};

#[derive(Clone, Debug)]
struct Case {
    wf: u64,
    rollup: Option<(u64, u64)>, // (k, fine buckets)
    retention_units: u64,
    grace: u64,
    precision: u8,
    late_capacity: usize,
    series: usize,
    events: Vec<(usize, i64, f64)>, // (series, time, value)
    /// (after event #, window ms, now offset after the watermark)
    queries: Vec<(usize, u64, u64)>,
    checkpoint_at: usize,
    /// Whether values include huge, overflowing and subnormal magnitudes.
    adversarial: bool,
}

/// Values that break running sums: outliers, overflows, subnormals.
const ADVERSARIAL: [f64; 12] = [
    9_007_199_254_740_992.0,
    -9_007_199_254_740_992.0,
    1e300,
    -1e300,
    f64::MAX,
    -f64::MAX,
    1.7e308,
    5e-324,
    -5e-324,
    1e-310,
    2.2250738585072014e-308,
    1e9,
];

impl Case {
    fn config(&self) -> WindowConfig {
        let ms = Duration::from_millis;
        let (retention, rollup) = match self.rollup {
            Some((k, fine)) => {
                let wc = self.wf * k;
                let retention = wc * self.retention_units;
                let fine_span = (self.wf * fine).min(retention - self.wf);
                (retention, Some(Rollup::new(ms(wc), ms(fine_span))))
            }
            None => (self.wf * self.retention_units * 3, None),
        };
        WindowConfig::default()
            .with_bucket_width(ms(self.wf))
            .with_retention(ms(retention))
            .with_grace(ms(self.grace.min(retention)))
            .with_rollup(rollup)
            .with_percentile_precision(self.precision)
            .with_late_buffer_capacity(self.late_capacity)
            .with_max_series(16)
    }
}

fn case(out_of_order: bool, adversarial: bool) -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(1u64), Just(5), Just(10)],
        prop::option::of((2u64..6, 1u64..12)),
        2u64..30,
        0u64..120,
        2u8..10,
        0usize..12,
        1usize..4,
        any::<bool>(),
        // Per-series clock offsets: most agree, some are far ahead or behind.
        prop::collection::vec(
            prop_oneof![3 => Just(0i64), 1 => -5000i64..5000, 1 => Just(100_000i64)],
            4,
        ),
    )
        .prop_flat_map(
            move |(
                wf,
                rollup,
                retention_units,
                grace,
                precision,
                late,
                series,
                few_values,
                offsets,
            )| {
                let step = 0..(2 * wf as i64);
                let back = if out_of_order {
                    -(grace as i64 * 2 + 20)..(wf as i64 * 2)
                } else {
                    0..1
                };
                let events = prop::collection::vec(
                    (
                        0..series,
                        step,
                        back,
                        prop_oneof![9 => Just(0i64), 1 => 0i64..400],
                        if few_values {
                            // Few distinct values: a cheap running histogram, so queries take the
                            // "running total minus buckets outside the window" path.
                            prop::sample::select(vec![1.0, 2.0, 3.0, -1.0]).boxed()
                        } else {
                            prop_oneof![
                                8 => (-4000i32..4000).prop_map(|v| f64::from(v) / 4.0),
                                1 => Just(0.0),
                                1 => prop::sample::select(vec![0.25, -0.25, 4095.75, -4095.75]),
                            ]
                            .boxed()
                        },
                        prop::sample::select(ADVERSARIAL.to_vec()),
                        0u32..8,
                    ),
                    0..500,
                );
                let queries = prop::collection::vec((0usize..500, 1u64..2000, 0u64..40), 1..12);
                (events, queries, 0usize..500).prop_map(move |(evs, queries, cp)| {
                    let mut cursor = 1_000_000i64;
                    let events = evs
                        .into_iter()
                        .map(|(s, step, back, jump, v, odd, pick)| {
                            cursor += step + jump;
                            let v = if adversarial && pick == 0 { odd } else { v };
                            (s, cursor + back + offsets[s], v)
                        })
                        .collect();
                    Case {
                        wf,
                        rollup,
                        retention_units,
                        grace,
                        precision,
                        late_capacity: late,
                        series,
                        events,
                        queries,
                        checkpoint_at: cp,
                        adversarial,
                    }
                })
            },
        )
}

/// Every raw event that was accepted, and the lateness bookkeeping.
#[derive(Default)]
struct Oracle {
    accepted: Vec<(usize, i64, f64)>,
    late: Vec<(usize, i64, f64)>,
    /// Newest accepted event time of each series.
    max_seen: Vec<Option<i64>>,
}

impl Oracle {
    fn is_late(&self, s: usize, t: i64, grace: i64) -> bool {
        self.max_seen[s].is_some_and(|m| t < m - grace)
    }

    fn newest(&self) -> Option<i64> {
        self.max_seen.iter().flatten().copied().max()
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The documented window rule: whole buckets ending with the one holding `now`; moved back
/// to a roll-up boundary when longer than the fine span, or when it starts before the fine
/// buckets held by one of the queried series (`newest`: their newest event times), which are
/// the `⌈grace / w⌉ + fine_span / w + 2` buckets ending with the bucket of its newest event.
fn oracle_span(cfg: &WindowConfig, window: i64, now: i64, newest: &[i64]) -> (i64, i64) {
    let wf = ms(cfg.bucket_width);
    let w = (window + wf - 1) / wf * wf;
    let end = (now.div_euclid(wf) + 1) * wf;
    let mut start = end - w;
    if let Some(r) = cfg.rollup {
        let fine_buckets = (ms(cfg.grace) + wf - 1) / wf + ms(r.fine_span) / wf + 2;
        let zone = newest
            .iter()
            .map(|t| (t.div_euclid(wf) - fine_buckets + 1) * wf)
            .max()
            .unwrap_or(i64::MIN);
        if w > ms(r.fine_span) || start < zone {
            let wc = ms(r.width);
            start = start.div_euclid(wc) * wc;
        }
    }
    (start, end)
}

const RANKS: [f64; 8] = [1.0, 3.5, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0];

/// Checks a window's sum against the oracle's: equal for plain values (every order of
/// summation is exact), else within `2·n·ε·Σ|x|` over the window's own values (vacuous only
/// when `Σ|x|` itself overflows).
fn check_sum(got: Option<f64>, vals: &[f64], adversarial: bool, ctx: &str) {
    let n = vals.len();
    let sum: f64 = vals.iter().sum();
    // The empty sum is 0 (see `Aggregation::defined_when_empty`).
    if !adversarial {
        assert_eq!(got, Some(sum), "{ctx}");
        return;
    }
    if n == 0 {
        assert_eq!(got, Some(0.0), "{ctx}");
        return;
    }
    let got = got.unwrap_or_else(|| panic!("{ctx}: no sum"));
    let abs: f64 = vals.iter().map(|v| v.abs()).sum();
    if abs.is_finite() {
        let bound = 2.0 * n as f64 * f64::EPSILON * abs + f64::from_bits(1) * n as f64;
        assert!(
            (got - sum).abs() <= bound,
            "{ctx}: sum {got} vs {sum}, bound {bound}"
        );
    }
}

fn check_queries(
    store: &WindowStore,
    oracle: &Oracle,
    ids: &[SeriesId],
    adversarial: bool,
    (window, now_off): (u64, u64),
) {
    let cfg = store.config();
    let window = (window as i64).min(ms(cfg.retention));
    let dur = Duration::from_millis(window as u64);
    let all_newest: Vec<i64> = oracle.max_seen.iter().flatten().copied().collect();
    if let Some(&newest) = all_newest.iter().max() {
        let now = newest - ms(cfg.grace) + now_off as i64;
        let (start, end) = oracle_span(cfg, window, now, &all_newest);
        let (s, e) = store.window_span(dur, Timestamp::from_millis(now)).unwrap();
        assert_eq!((s.as_millis(), e.as_millis()), (start, end), "span");
    }
    let rel = 0.5 / f64::from(1u32 << cfg.percentile_precision);

    // Per series, then all series together, each at or after its own watermark (series
    // clocks may be far apart; a series keeps only the retention before its newest event).
    let mut selections: Vec<Option<usize>> = (0..ids.len()).map(Some).collect();
    selections.push(None);
    for sel in selections {
        let in_sel = |s: usize| sel.is_none_or(|i| i == s);
        let newest: Vec<i64> = (0..ids.len())
            .filter(|&s| in_sel(s))
            .filter_map(|s| oracle.max_seen[s])
            .collect();
        let Some(&anchor) = newest.iter().max() else {
            continue;
        };
        let now = anchor - ms(cfg.grace) + now_off as i64;
        let now_ts = Timestamp::from_millis(now);
        let (start, end) = oracle_span(cfg, window, now, &newest);
        let mut vals: Vec<f64> = oracle
            .accepted
            .iter()
            .filter(|&&(s, t, _)| in_sel(s) && t >= start && t < end)
            .map(|&(_, _, v)| v)
            .collect();
        vals.sort_by(f64::total_cmp);
        let n = vals.len();
        let run = |agg: Aggregation| match sel {
            Some(i) => store.query_series(ids[i], agg, dur, now_ts).unwrap(),
            None => store
                .query("m", &TagFilter::new(), agg, dur, now_ts)
                .unwrap(),
        };
        let ctx = format!("sel={sel:?} window=[{start},{end}) n={n}");
        let count = run(Aggregation::Count);
        assert_eq!(
            (count.window_start.as_millis(), count.window_end.as_millis()),
            (start, end),
            "{ctx} span"
        );
        assert_eq!(count.count, n as u64, "{ctx}");
        assert_eq!(count.value, Some(n as f64), "{ctx}");
        let sum = run(Aggregation::Sum).value;
        check_sum(sum, &vals, adversarial, &ctx);
        let avg = run(Aggregation::Avg).value;
        match avg {
            None => assert_eq!(n, 0, "{ctx}"),
            Some(a) => {
                let want = vals.iter().sum::<f64>() / n as f64;
                if adversarial {
                    let abs: f64 = vals.iter().map(|v| v.abs()).sum();
                    if abs.is_finite() {
                        // The sum's bound divided by n, plus the division's own rounding.
                        let bound = (2.0 * f64::EPSILON * abs + f64::from_bits(1))
                            + f64::EPSILON * want.abs();
                        assert!((a - want).abs() <= bound, "{ctx} avg {a} vs {want}");
                    }
                } else {
                    assert!(
                        (a - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{ctx} avg {a} vs {want}"
                    );
                }
            }
        }
        assert_eq!(run(Aggregation::Min).value, vals.first().copied(), "{ctx}");
        assert_eq!(run(Aggregation::Max).value, vals.last().copied(), "{ctx}");
        for rank in RANKS {
            let p = Percentile::new(rank).unwrap();
            let got = run(Aggregation::Percentile(p)).value;
            if n == 0 {
                assert_eq!(got, None, "{ctx}");
                continue;
            }
            // The nearest rank, exactly: the smallest r >= 1 with r / n >= millionths / 10^8.
            let m = p.millionths() as usize;
            let r = (1..=n).find(|&r| r * 100_000_000 >= m * n).unwrap();
            let want = vals[r - 1];
            let got = got.unwrap();
            // Subnormals are binned linearly: an absolute error below the smallest normal.
            assert!(
                (got - want).abs() <= rel * want.abs() + f64::MIN_POSITIVE,
                "{ctx} p{rank}: got {got}, value at rank {r} is {want}, rel error bound {rel}"
            );
        }
    }
}

fn snapshot(store: &WindowStore, ids: &[SeriesId], now: i64) -> Vec<String> {
    let mut out = Vec::new();
    for window in [1u64, 7, 60, 333, 1000, 5000] {
        let window = window.min(store.config().retention.as_millis() as u64);
        let dur = Duration::from_millis(window);
        for agg in ["count", "sum", "avg", "min", "max", "p50", "p99", "p99.9"] {
            let agg: Aggregation = agg.parse().unwrap();
            let now = Timestamp::from_millis(now);
            let all = store.query("m", &TagFilter::new(), agg, dur, now).unwrap();
            out.push(format!("{all:?} {:?}", all.value.map(f64::to_bits)));
            for &id in ids {
                let r = store.query_series(id, agg, dur, now).unwrap();
                out.push(format!("{r:?} {:?}", r.value.map(f64::to_bits)));
            }
            let g = store
                .group_by("m", &TagFilter::new(), "g", agg, dur, now)
                .unwrap();
            out.push(format!("{g:?}"));
        }
    }
    out.push(format!("{:?}", store.stats()));
    out
}

fn run_case(c: &Case) {
    let cfg = c.config();
    let grace = ms(cfg.grace);
    let mut store = WindowStore::new(cfg.clone()).unwrap();
    let ids: Vec<SeriesId> = (0..c.series)
        .map(|i| {
            let s = i.to_string();
            let g = (i % 2).to_string();
            store
                .series_id("m", [("s", s.as_str()), ("g", g.as_str())])
                .unwrap()
        })
        .collect();
    let mut oracle = Oracle {
        max_seen: vec![None; c.series],
        ..Oracle::default()
    };
    let mut restored: Option<WindowStore> = None;
    for (i, &(s, t, v)) in c.events.iter().enumerate() {
        if i == c.checkpoint_at {
            let json = serde_json::to_string(&store.checkpoint(i as u64)).unwrap();
            let cp: Checkpoint<u64> = serde_json::from_str(&json).unwrap();
            let (r, offset) = WindowStore::restore(cp).unwrap();
            assert_eq!(offset, i as u64);
            restored = Some(r);
        }
        let late = oracle.is_late(s, t, grace);
        let got = store.record(ids[s], Timestamp::from_millis(t), v).unwrap();
        if let Some(r) = &mut restored {
            assert_eq!(r.record(ids[s], Timestamp::from_millis(t), v).unwrap(), got);
        }
        if late {
            let expect = if oracle.late.len() < c.late_capacity {
                Recorded::LateBuffered
            } else {
                Recorded::LateDropped
            };
            assert_eq!(got, expect, "event {i} at {t} should be late");
            oracle.late.push((s, t, v));
        } else {
            assert_eq!(
                got,
                Recorded::Accepted,
                "event {i} at {t} should be accepted"
            );
            oracle.accepted.push((s, t, v));
            oracle.max_seen[s] = oracle.max_seen[s].max(Some(t));
        }
        for &(_, window, now_off) in c.queries.iter().filter(|q| q.0 == i) {
            check_queries(&store, &oracle, &ids, c.adversarial, (window, now_off));
        }
    }
    for &(_, window, now_off) in &c.queries {
        check_queries(&store, &oracle, &ids, c.adversarial, (window, now_off));
    }
    // The side channel holds exactly the first `capacity` late events; the rest are counted.
    let stats = store.stats();
    assert_eq!(stats.late_total, oracle.late.len() as u64);
    let buffered = oracle.late.len().min(c.late_capacity);
    assert_eq!(stats.late_dropped, (oracle.late.len() - buffered) as u64);
    assert_eq!(stats.accepted, oracle.accepted.len() as u64);
    let drained: Vec<(usize, i64, f64)> = store
        .drain_late()
        .map(|e| {
            let s = ids.iter().position(|&id| id == e.series).unwrap();
            (s, e.event_time.as_millis(), e.value)
        })
        .collect();
    assert_eq!(drained, oracle.late[..buffered].to_vec());

    // Checkpoint -> JSON -> restore answers identically, and so does a store restored
    // mid-stream and fed the rest of the events.
    let now = oracle.newest().unwrap_or(0);
    let json = serde_json::to_string(&store.checkpoint("end")).unwrap();
    let (back, offset) =
        WindowStore::restore(serde_json::from_str::<Checkpoint>(&json).unwrap()).unwrap();
    assert_eq!(offset, "end");
    let want = snapshot(&store, &ids, now);
    assert_eq!(snapshot(&back, &ids, now), want);
    if let Some(mut r) = restored {
        r.drain_late().for_each(drop);
        assert_eq!(snapshot(&r, &ids, now), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn in_order_streams_match_the_oracle(c in case(false, false)) {
        run_case(&c);
    }

    #[test]
    fn out_of_order_streams_match_the_oracle(c in case(true, false)) {
        run_case(&c);
    }

    #[test]
    fn adversarial_magnitudes_match_the_oracle(c in case(true, true)) {
        run_case(&c);
    }
}

#[test]
fn percentiles_off_refuses_percentile_queries() {
    let cfg = WindowConfig::default().with_percentiles(false);
    let mut store = WindowStore::new(cfg).unwrap();
    let id = store.series_id("m", []).unwrap();
    let t = Timestamp::from_millis(0);
    store.record(id, t, 3.0).unwrap();
    let w = Duration::from_secs(1);
    let p = Aggregation::Percentile(Percentile::P99);
    assert_eq!(
        store.query_series(id, p, w, t),
        Err(WindowError::PercentilesDisabled)
    );
    assert!(store.query_histogram("m", &TagFilter::new(), w, t).is_err());
    assert_eq!(
        store
            .query_series(id, Aggregation::Max, w, t)
            .unwrap()
            .value,
        Some(3.0)
    );
}
