//! `rtdash_window::WindowStore::restore` from untrusted bytes: a JSON `Checkpoint`, as a
//! host would read it back from disk or a key-value store after a crash.
//!
//! Checks: no panic (and no runaway allocation) for any input; a store that restored
//! answers queries of every aggregation over several windows without panicking, takes new
//! events, and its own checkpoint restores again to the same checkpoint.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rtdash_core::{Aggregation, Percentile, TagFilter, Timestamp};
use rtdash_window::{Checkpoint, WindowStore};

fn checkpoint_json(store: &WindowStore, offset: &str) -> String {
    serde_json::to_string(&store.checkpoint(offset.to_owned()))
        .unwrap_or_else(|e| panic!("encode a checkpoint: {e}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(checkpoint) = serde_json::from_slice::<Checkpoint<String>>(data) else {
        return;
    };
    let Ok((mut store, offset)) = WindowStore::restore(checkpoint) else {
        return;
    };

    // Its own checkpoint restores, to the same checkpoint.
    let json = checkpoint_json(&store, &offset);
    let again: Checkpoint<String> = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("decode own checkpoint ({e}): {json}"));
    let (restored, _) = WindowStore::restore(again)
        .unwrap_or_else(|e| panic!("restore own checkpoint ({e}): {json}"));
    assert_eq!(
        checkpoint_json(&restored, &offset),
        json,
        "a second round trip changed it"
    );

    // Queries at the newest event time and around it.
    let keys: Vec<(String, String)> = store
        .interner()
        .iter()
        .map(|(_, k)| {
            let tag = k
                .tags()
                .next()
                .map(|(t, _)| t.to_owned())
                .unwrap_or_default();
            (k.metric().to_owned(), tag)
        })
        .collect();
    let newest = store.stats().max_event_time.map_or(0, Timestamp::as_millis);
    let p99 = Percentile::new(99.0).map(Aggregation::Percentile).ok();
    let aggs = [
        Aggregation::Count,
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
    ]
    .into_iter()
    .chain(p99);
    let nows = [newest, newest.saturating_add(30_000), 0, i64::MAX / 4].map(Timestamp::from_millis);
    let windows = [1, 60, 3_600].map(Duration::from_secs);
    for agg in aggs {
        for (metric, tag) in &keys {
            for now in nows {
                for window in windows {
                    let _ = store.query(metric, &TagFilter::new(), agg, window, now);
                    if !tag.is_empty() {
                        let _ = store.group_by(metric, &TagFilter::new(), tag, agg, window, now);
                    }
                }
            }
        }
    }
    for (id, _) in restored.interner().iter() {
        for now in nows {
            let _ = store.query_series(id, Aggregation::Max, Duration::from_secs(60), now);
        }
    }

    // New events, in order, late and far ahead.
    if let Some((id, _)) = restored.interner().iter().next() {
        for t in [
            newest,
            newest.saturating_sub(1),
            newest.saturating_add(5_000),
            0,
            -1,
        ] {
            let _ = store.record(id, Timestamp::from_millis(t), 1.5);
        }
        let _ = store.drain_late().count();
    }
    let _ = store.heap_bytes();
});
