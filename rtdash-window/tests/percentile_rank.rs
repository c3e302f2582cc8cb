//! A percentile is the value of the exact nearest rank `⌈q·n⌉` (the quantile as a rational,
//! p99.9 is 999/1000), never a neighbour picked by floating-point rounding: checked on a real
//! `WindowStore` and on `LogHistogram`, with many ties, against sorted-value oracles that
//! find the rank by counting.

use std::time::Duration;

use proptest::prelude::*;
use rtdash_core::{Aggregation, Percentile, TagFilter, Timestamp};
use rtdash_window::{LogHistogram, WindowConfig, WindowStore};

const T0: i64 = 1_700_000_000_000;

/// Values in distinct histogram bins at every precision used here, so a wrong rank shows as a
/// wrong value.
const VALUES: [f64; 6] = [1.0, 2.0, 3.0, 5.0, 8.0, 1000.0];

/// `values[i]` recorded at `T0 + i` ms into one series of a fresh store, with `now` just after.
fn store_of(values: &[f64]) -> (WindowStore, Timestamp) {
    let mut store = WindowStore::new(WindowConfig::default()).expect("valid config");
    let id = store
        .series_id("latency", [("region", "eu")])
        .expect("valid series");
    for (i, &v) in values.iter().enumerate() {
        store
            .record(id, Timestamp::from_millis(T0 + i as i64), v)
            .expect("accepted");
    }
    (store, Timestamp::from_millis(T0 + values.len() as i64))
}

fn query(store: &WindowStore, p: Percentile, now: Timestamp) -> Option<f64> {
    let r = store
        .query(
            "latency",
            &TagFilter::new(),
            Aggregation::Percentile(p),
            Duration::from_secs(60),
            now,
        )
        .expect("valid query");
    r.value
}

/// The value of percentile `millionths / 10^6` among `values`, found by counting: the first
/// value in sorted order whose cumulative count `c` satisfies `c / n >= millionths / 10^8`.
fn oracle(values: &[f64], millionths: u32) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as u128;
    let need = u128::from(millionths) * n;
    let mut cumulative = 0u128;
    for &v in &sorted {
        cumulative += 1;
        if cumulative * 100_000_000 >= need {
            return v;
        }
    }
    unreachable!("the last value's cumulative count is n")
}

/// The midpoint of the histogram bin of `v` at precision `p`.
fn bin_value(v: f64, p: u8) -> f64 {
    let mut h = LogHistogram::new(p).expect("valid precision");
    h.record(v).expect("finite");
    h.percentile(Percentile::P50).expect("not empty")
}

#[test]
fn p99_9_of_999_ones_and_one_thousand_is_one() {
    let mut values = vec![1.0; 999];
    values.push(1000.0);
    let (store, now) = store_of(&values);
    let p999 = query(&store, Percentile::P999, now).expect("not empty");
    // The 999th of 1000 values is 1.0 (reported as its bin's midpoint, within 0.39 %); the
    // rank used to be ⌈99.9 / 100 · 1000⌉ in f64 = ⌈999.0000000000001⌉ = 1000, giving 1000.0.
    assert_eq!(p999, bin_value(1.0, 7));
    assert!((p999 - 1.0).abs() <= 1.0 / 256.0, "{p999}");
    let p100 = Percentile::new(100.0).expect("valid rank");
    assert_eq!(query(&store, p100, now), Some(1000.0));
    // The same definition in the histogram a query hands out (heatmaps, merging).
    let h = store
        .query_histogram("latency", &TagFilter::new(), Duration::from_secs(60), now)
        .expect("valid query");
    assert_eq!(h.count(), 1000);
    assert_eq!(h.percentile(Percentile::P999), Some(bin_value(1.0, 7)));
    // One more 1000.0: ⌈999/1000 · 1001⌉ = 1000, the first 1000.0.
    values.push(1000.0);
    let (store, now) = store_of(&values);
    assert_eq!(query(&store, Percentile::P999, now), Some(1000.0));
}

/// Every one-decimal percentile p0.1 … p100.0 at every `n` from 1 to 2000, on a histogram
/// that grows by one tied value at a time; the oracle keeps the count of each distinct value.
#[test]
fn every_one_decimal_percentile_at_every_n_to_2000() {
    // The default precision; the six values fall in six distinct bins.
    const P: u8 = 7;
    let reported: Vec<f64> = VALUES.iter().map(|&v| bin_value(v, P)).collect();
    for pair in reported.windows(2) {
        assert!(pair[0] < pair[1], "{reported:?}");
    }
    let percentiles: Vec<(u64, Percentile)> = (1u64..=1000)
        .map(|tenths| {
            let text = format!("p{}.{}", tenths / 10, tenths % 10);
            match text.parse::<Aggregation>() {
                Ok(Aggregation::Percentile(p)) => (tenths, p),
                other => panic!("{text}: {other:?}"),
            }
        })
        .collect();
    let mut h = LogHistogram::new(P).expect("valid precision");
    let mut counts = [0u64; VALUES.len()];
    // A fixed pseudo-random sequence with long runs and a heavy favourite: many ties.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut checked = 0u64;
    let mut float_rank_would_fail = 0u64;
    for n in 1u64..=2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let i = if state.is_multiple_of(3) {
            0
        } else {
            (state >> 8) as usize % VALUES.len()
        };
        counts[i] += 1;
        h.record(VALUES[i]).expect("finite");
        for &(tenths, p) in &percentiles {
            // The first distinct value whose cumulative count c has c / n >= tenths / 1000.
            let mut cumulative = 0;
            let want = (0..VALUES.len())
                .find(|&k| {
                    cumulative += counts[k];
                    1000 * cumulative >= tenths * n
                })
                .expect("the total count is n");
            assert_eq!(h.percentile(p), Some(reported[want]), "{p} n={n}");
            // The old floating-point rank, to show these cases reach the bug.
            let float_rank = ((p.rank() / 100.0 * n as f64).ceil() as u64).clamp(1, n);
            let mut cumulative = 0;
            let at_float_rank = (0..VALUES.len()).find(|&k| {
                cumulative += counts[k];
                cumulative >= float_rank
            });
            float_rank_would_fail += u64::from(at_float_rank != Some(want));
            checked += 1;
        }
    }
    assert_eq!(checked, 2_000_000);
    assert!(
        float_rank_would_fail > 0,
        "the sequence must reach a case the f64 rank got wrong"
    );
}

fn percentile() -> impl Strategy<Value = Percentile> {
    prop_oneof![
        1u32..=100_000_000,
        (1u32..=1000).prop_map(|tenths| tenths * 100_000),
        (1u32..=100_000).prop_map(|thousandths| thousandths * 1000),
        Just(99_900_000),
        Just(100_000_000),
        Just(1),
    ]
    .prop_map(|m| Percentile::from_millionths(m).expect("in 1..=10^8"))
}

/// `n` values from [`VALUES`], a share of them (0 to 100 %) one favourite value: many ties.
fn tied_values() -> impl Strategy<Value = Vec<f64>> {
    (
        0..VALUES.len(),
        0u32..=100,
        prop::collection::vec((0u32..100, 0..VALUES.len()), 1..=5000),
    )
        .prop_map(|(favourite, share, picks)| {
            picks
                .into_iter()
                .map(|(roll, k)| VALUES[if roll < share { favourite } else { k }])
                .collect()
        })
}

/// A one-decimal percentile `tenths / 1000` and an `n` at which its rank `tenths·n / 1000` is
/// a whole number — the only ranks a floating-point `⌈q·n⌉` can overshoot — with `n` values:
/// that many copies of a low value (the rank's value) and the rest a higher one, interleaved.
fn boundary_case() -> impl Strategy<Value = (Percentile, Vec<f64>)> {
    (1u64..=1000, 0..VALUES.len() - 1)
        .prop_flat_map(|(tenths, lo)| {
            let step = 1000 / gcd(tenths, 1000);
            (
                Just(tenths),
                1..=5000 / step,
                Just(step),
                Just(lo),
                lo + 1..VALUES.len(),
            )
        })
        .prop_map(|(tenths, mult, step, lo, hi)| {
            let n = step * mult;
            let k = tenths * n / 1000;
            // `i ↦ 7919·i mod n` permutes 0..n (7919 is a prime above 5000): k positions are low.
            let values = (0..n)
                .map(|i| VALUES[if i * 7919 % n < k { lo } else { hi }])
                .collect();
            let tenths = u32::try_from(tenths).expect("at most 1000");
            let p = Percentile::from_millionths(tenths * 100_000).expect("in 1..=10^8");
            (p, values)
        })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn store_percentile_at_a_rank_on_a_tie_boundary((p, values) in boundary_case()) {
        let (store, now) = store_of(&values);
        let got = query(&store, p, now).expect("not empty");
        let want = oracle(&values, p.millionths());
        let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // The rank's value is the last copy of the low value.
        prop_assert_eq!(want, lowest);
        prop_assert_eq!(
            got,
            bin_value(want, 7).max(lowest).min(highest),
            "{} of n={}", p, values.len()
        );
    }

    #[test]
    fn store_percentile_is_the_exact_rank_value(values in tied_values(), p in percentile()) {
        let (store, now) = store_of(&values);
        let got = query(&store, p, now).expect("not empty");
        let want = oracle(&values, p.millionths());
        // Within the documented relative error 2^-(P+1) of the exact value, P = 7 …
        prop_assert!(
            (got - want).abs() <= want.abs() / 256.0,
            "{} of n={}: got {}, exact {}", p, values.len(), got, want
        );
        // … and, since the values sit in distinct bins, exactly its bin's midpoint clamped to
        // the window's min and max.
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        prop_assert_eq!(got, bin_value(want, 7).max(min).min(max));
    }
}
