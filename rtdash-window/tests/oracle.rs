//! The store against a naive oracle that keeps every raw event.
//!
//! Values are dyadic (multiples of 1/4 below 2^12 in magnitude), so every sum of a few
//! hundred of them is exact in `f64` in any order: count, sum, min and max must be equal,
//! avg within 1e-12 relative. Percentiles use the documented nearest-rank convention (rank
//! `⌈q·n⌉`, 1-based, in the sorted window) and must be within `2^-(P+1)` relative error of
//! the value at that rank. Late events must be exactly those with
//! `event_time < max_event_time_seen - grace`.

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
    events: Vec<(usize, i64, i32)>,  // (series, time, value * 4)
    queries: Vec<(usize, u64, u64)>, // (after event #, window ms, now offset)
    checkpoint_at: usize,
}

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

fn case(out_of_order: bool) -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(1u64), Just(5), Just(10)],
        prop::option::of((2u64..6, 1u64..12)),
        2u64..30,
        0u64..120,
        2u8..10,
        0usize..12,
        1usize..4,
        any::<bool>(),
    )
        .prop_flat_map(
            move |(wf, rollup, retention_units, grace, precision, late, series, few_values)| {
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
                            prop::sample::select(vec![4, 8, 12, -4]).boxed()
                        } else {
                            prop_oneof![
                                8 => -4000i32..4000,
                                1 => Just(0),
                                1 => prop::sample::select(vec![1, -1, 16383, -16383]),
                            ]
                            .boxed()
                        },
                    ),
                    0..500,
                );
                let queries = prop::collection::vec((0usize..500, 1u64..2000, 0u64..40), 1..12);
                (events, queries, 0usize..500).prop_map(move |(evs, queries, cp)| {
                    let mut cursor = 1_000_000i64;
                    let events = evs
                        .into_iter()
                        .map(|(s, step, back, jump, v)| {
                            cursor += step + jump;
                            (s, cursor + back, v)
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
    max_seen: Option<i64>,
}

impl Oracle {
    fn is_late(&self, t: i64, grace: i64) -> bool {
        self.max_seen.is_some_and(|m| t < m - grace)
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The documented window rule for `now` at or after the watermark.
fn oracle_span(cfg: &WindowConfig, window: i64, now: i64) -> (i64, i64) {
    let wf = ms(cfg.bucket_width);
    let w = (window + wf - 1) / wf * wf;
    let end = (now.div_euclid(wf) + 1) * wf;
    let mut start = end - w;
    if let Some(r) = cfg.rollup
        && w > ms(r.fine_span)
    {
        let wc = ms(r.width);
        start = start.div_euclid(wc) * wc;
    }
    (start, end)
}

const RANKS: [f64; 8] = [1.0, 3.5, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0];

fn check_queries(
    store: &WindowStore,
    oracle: &Oracle,
    ids: &[SeriesId],
    window: u64,
    now_off: u64,
) {
    let cfg = store.config();
    let Some(max_seen) = oracle.max_seen else {
        return;
    };
    let watermark = max_seen - ms(cfg.grace);
    let now = watermark + now_off as i64;
    let window = (window as i64).min(ms(cfg.retention));
    let (start, end) = oracle_span(cfg, window, now);
    let dur = Duration::from_millis(window as u64);
    let now_ts = Timestamp::from_millis(now);
    let (s, e) = store.window_span(dur, now_ts).unwrap();
    assert_eq!((s.as_millis(), e.as_millis()), (start, end), "span");
    let rel = 0.5 / f64::from(1u32 << cfg.percentile_precision);

    // Per series, then all series together.
    let mut selections: Vec<(Option<usize>, Vec<f64>)> = (0..ids.len())
        .map(|i| {
            let vals = oracle
                .accepted
                .iter()
                .filter(|&&(s, t, _)| s == i && t >= start && t < end)
                .map(|&(_, _, v)| v)
                .collect();
            (Some(i), vals)
        })
        .collect();
    selections.push((
        None,
        oracle
            .accepted
            .iter()
            .filter(|&&(_, t, _)| t >= start && t < end)
            .map(|&(_, _, v)| v)
            .collect(),
    ));
    for (sel, mut vals) in selections {
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
        assert_eq!(count.count, n as u64, "{ctx}");
        assert_eq!(count.value, Some(n as f64), "{ctx}");
        let sum: f64 = vals.iter().sum();
        let got_sum = run(Aggregation::Sum).value;
        assert_eq!(got_sum, (n > 0).then_some(sum), "{ctx}");
        let avg = run(Aggregation::Avg).value;
        match avg {
            None => assert_eq!(n, 0, "{ctx}"),
            Some(a) => {
                let want = sum / n as f64;
                assert!(
                    (a - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{ctx} avg {a} vs {want}"
                );
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
            assert!(
                (got - want).abs() <= rel * want.abs(),
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
    let mut oracle = Oracle::default();
    let mut restored: Option<WindowStore> = None;
    for (i, &(s, t, v4)) in c.events.iter().enumerate() {
        if i == c.checkpoint_at {
            let json = serde_json::to_string(&store.checkpoint(i as u64)).unwrap();
            let cp: Checkpoint<u64> = serde_json::from_str(&json).unwrap();
            let (r, offset) = WindowStore::restore(cp).unwrap();
            assert_eq!(offset, i as u64);
            restored = Some(r);
        }
        let v = f64::from(v4) / 4.0;
        let late = oracle.is_late(t, grace);
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
            oracle.max_seen = oracle.max_seen.max(Some(t));
        }
        for &(_, window, now_off) in c.queries.iter().filter(|q| q.0 == i) {
            check_queries(&store, &oracle, &ids, window, now_off);
        }
    }
    for &(_, window, now_off) in &c.queries {
        check_queries(&store, &oracle, &ids, window, now_off);
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
    let now = oracle.max_seen.unwrap_or(0);
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
    fn in_order_streams_match_the_oracle(c in case(false)) {
        run_case(&c);
    }

    #[test]
    fn out_of_order_streams_match_the_oracle(c in case(true)) {
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
