//! Roll-up buckets for long-range history, against a naive oracle: what
//! `take_rollups` handed out before `memory_since`, plus what `series_rollups` holds from
//! it on, is every accepted event exactly once, per series and minute, with its exact
//! count, sum, min, max and histogram.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rtdash_core::{SeriesId, Timestamp};
use rtdash_window::{LogHistogram, Recorded, RollupBucket, WindowConfig, WindowError, WindowStore};

const MINUTE: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

/// Per series and minute: count, sum, min, max, histogram of the accepted values.
type Oracle = BTreeMap<(usize, i64), (u64, f64, f64, f64, LogHistogram)>;

fn add(oracle: &mut Oracle, series: usize, t: i64, v: f64) {
    let e = oracle
        .entry((series, t.div_euclid(MINUTE) * MINUTE))
        .or_insert_with(|| {
            let h = LogHistogram::new(7).expect("valid precision");
            (0, 0.0, f64::INFINITY, f64::NEG_INFINITY, h)
        });
    e.0 += 1;
    e.1 += v;
    e.2 = e.2.min(v);
    e.3 = e.3.max(v);
    e.4.record(v).expect("finite");
}

fn same(b: &RollupBucket, o: &(u64, f64, f64, f64, LogHistogram)) -> Result<(), TestCaseError> {
    prop_assert_eq!(b.count, o.0);
    prop_assert_eq!(b.sum, o.1, "values are small integers: sums are exact");
    prop_assert_eq!((b.min, b.max), (o.2, o.3));
    let h = b.histogram.as_ref().expect("percentiles are on");
    prop_assert_eq!(h.bins().collect::<Vec<_>>(), o.4.bins().collect::<Vec<_>>());
    prop_assert_eq!(b.width, Duration::from_secs(60));
    Ok(())
}

/// An event: series, seconds since the previous event of the batch, jitter back in time
/// (ms; beyond the 30 s grace some are late), value.
fn events() -> impl Strategy<Value = Vec<(usize, u32, u32, i32)>> {
    prop::collection::vec(
        (
            0..3usize,
            0..40u32,
            prop_oneof![8 => 0..5_000u32, 1 => 0..90_000u32],
            -50..1000i32,
        ),
        1..1500,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn handed_out_and_held_buckets_are_every_accepted_event_once(
        evs in events(),
        take_every in 1..200usize,
    ) {
        let mut store = WindowStore::new(WindowConfig::default()).expect("default config");
        let ids: Vec<SeriesId> = (0..3)
            .map(|i| store.series_id("m", [("s", ["a", "b", "c"][i])]).expect("series"))
            .collect();
        let mut oracle = Oracle::new();
        let mut taken: BTreeMap<(usize, i64), RollupBucket> = BTreeMap::new();
        let mut clock = T0;
        let take = |store: &mut WindowStore, taken: &mut BTreeMap<_, _>| -> Result<(), TestCaseError> {
            for b in store.take_rollups().expect("roll-up tier") {
                let key = (b.series.index(), b.start.as_millis());
                prop_assert!(taken.insert(key, b).is_none(), "a bucket handed out twice");
            }
            Ok(())
        };
        for (i, &(s, gap, back, v)) in evs.iter().enumerate() {
            clock += i64::from(gap) * 1000;
            let t = clock - i64::from(back);
            let r = store.record(ids[s], Timestamp::from_millis(t), f64::from(v)).expect("valid");
            if r == Recorded::Accepted {
                add(&mut oracle, s, t, f64::from(v));
            }
            if i % take_every == 0 {
                take(&mut store, &mut taken)?;
            }
        }
        take(&mut store, &mut taken)?;
        // Every (series, minute) with events: before memory_since from the handed-out
        // buckets, after it from the store; nothing else anywhere.
        let mut seen = 0;
        for (s, id) in ids.iter().enumerate() {
            let Some(since) = store.memory_since(*id) else {
                prop_assert!(!oracle.keys().any(|k| k.0 == s));
                continue;
            };
            let since = since.as_millis();
            prop_assert_eq!(since.rem_euclid(MINUTE), 0);
            let held = store
                .series_rollups(*id, Timestamp::from_millis(i64::MIN / 4), Timestamp::from_millis(i64::MAX / 4))
                .expect("known series");
            for b in &held {
                prop_assert!(b.start.as_millis() >= since);
                let o = oracle.get(&(s, b.start.as_millis()));
                prop_assert!(o.is_some(), "a held bucket with no event: {:?}", b);
                same(b, o.expect("checked"))?;
                seen += 1;
            }
            for ((ts, start), b) in taken.range((s, i64::MIN)..(s + 1, i64::MIN)) {
                prop_assert_eq!(*ts, s);
                let o = oracle.get(&(s, *start));
                prop_assert!(o.is_some(), "a handed-out bucket with no event");
                same(b, o.expect("checked"))?;
                if *start < since {
                    seen += 1;
                }
            }
            for (&(os, start), _) in oracle.range((s, i64::MIN)..(s + 1, i64::MIN)) {
                let found = if start < since {
                    taken.contains_key(&(os, start))
                } else {
                    held.iter().any(|b| b.start.as_millis() == start)
                };
                prop_assert!(found, "minute {} of series {} is nowhere (since {})", start, s, since);
            }
        }
        prop_assert_eq!(seen, oracle.len());
    }
}

#[test]
fn a_restored_store_hands_out_its_complete_buckets_again() {
    let mut store = WindowStore::new(WindowConfig::default()).unwrap();
    let id = store.series_id("m", [("s", "a")]).unwrap();
    for s in 0..900 {
        store
            .record(id, Timestamp::from_millis(T0 + s * 1000), 2.0)
            .unwrap();
    }
    let first = store.take_rollups().unwrap();
    assert!(first.len() >= 9, "{}", first.len());
    let cp = store.checkpoint(());
    let (mut restored, ()) = WindowStore::restore(cp).unwrap();
    let again = restored.take_rollups().unwrap();
    let starts = |v: &[RollupBucket]| v.iter().map(|b| b.start).collect::<Vec<_>>();
    assert_eq!(starts(&again), starts(&first));
    assert!(restored.take_rollups().unwrap().is_empty());
}

#[test]
fn without_a_roll_up_tier_there_are_no_roll_up_buckets() {
    let mut store = WindowStore::new(WindowConfig::default().with_rollup(None)).unwrap();
    let id = store.series_id("m", [("s", "a")]).unwrap();
    let e = store.take_rollups().unwrap_err();
    assert!(
        matches!(
            e,
            WindowError::InvalidConfig {
                field: "rollup",
                ..
            }
        ),
        "{e}"
    );
    let now = Timestamp::from_millis(T0);
    assert!(store.series_rollups(id, now, now).is_err());
    let mut store = WindowStore::new(WindowConfig::default()).unwrap();
    let unknown = SeriesId::from_index(5).unwrap();
    assert!(matches!(
        store.series_rollups(unknown, now, now),
        Err(WindowError::UnknownSeries { .. })
    ));
    assert_eq!(store.memory_since(unknown), None);
    assert!(store.take_rollups().unwrap().is_empty());
}

#[test]
fn at_shutdown_every_bucket_is_handed_out_complete_or_not() {
    let mut store = WindowStore::new(WindowConfig::default()).unwrap();
    let id = store.series_id("m", [("s", "a")]).unwrap();
    let mut oracle = Oracle::new();
    for s in 0..900 {
        let t = T0 + s * 1000;
        store.record(id, Timestamp::from_millis(t), 2.0).unwrap();
        add(&mut oracle, 0, t, 2.0);
    }
    let mut all = store.take_rollups().unwrap();
    let complete = all.len();
    all.extend(store.take_all_rollups().unwrap());
    assert!(all.len() > complete, "the filling buckets too");
    assert_eq!(all.len(), oracle.len());
    for b in &all {
        same(b, &oracle[&(0, b.start.as_millis())]).unwrap();
    }
    assert!(
        store.take_all_rollups().unwrap().is_empty(),
        "each bucket once"
    );
}
