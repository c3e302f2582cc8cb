//! Widget history against a naive computation over the raw events: for random events over
//! several hours of event time (out of order within the grace period, some late), the
//! history of each aggregation from the window store, from the archive, and across the
//! boundary between them equals the aggregation over the accepted events in each point's
//! window (percentiles within the histogram's relative error).
//!
//! This file uses the in-process `MemoryArchive`; `tests/postgres_history.rs` runs the
//! same checks against PostgreSQL.

mod common;

use std::time::Duration;

use proptest::prelude::*;
use rtdash::history::{History, HistoryRequest, MemoryArchive};

use common::history::{Scenario, check_history, widgets};

fn engine_with_memory_archive() -> rtdash::Engine {
    rtdash::Engine::builder(rtdash::EngineConfig::default())
        .history_archive(MemoryArchive::new(1_000_000))
        .build()
        .expect("engine")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn history_equals_a_naive_computation_from_memory_archive_and_across(
        scenario in Scenario::strategy(3 * 3_600),
    ) {
        let engine = engine_with_memory_archive();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let accepted = scenario.run(&engine);
        let now = scenario.end();
        for (w, agg_name) in widgets() {
            for (range, label) in [(300, "5 min, memory"), (3_600, "1 h, memory"), (3 * 3_600 - 60, "3 h, archive and memory")] {
                let req = HistoryRequest::last(Duration::from_secs(range), now);
                let h: History = rt
                    .block_on(engine.history("h", w, req))
                    .map_err(|e| TestCaseError::fail(format!("{agg_name} {label}: {e}")))?;
                check_history(&h, &accepted, &format!("{agg_name} over {label}"))?;
                if range > 3_600 {
                    // Points the window store no longer holds came from the archive.
                    let old = now.as_millis() - 75 * 60_000;
                    prop_assert!(
                        h.series.iter().flat_map(|s| &s.points).any(|p| p.time.as_millis() < old && p.count > 0),
                        "{agg_name}: no archived point"
                    );
                }
            }
        }
    }
}

#[test]
fn without_an_archive_history_older_than_the_store_is_empty_not_wrong() {
    let engine = rtdash::Engine::new(rtdash::EngineConfig::default(), rtdash::MemoryStore::new())
        .expect("engine");
    let scenario = Scenario::steady(3 * 3_600);
    scenario.run(&engine);
    let (w, _) = widgets()[0];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let h = rt
        .block_on(engine.history(
            "h",
            w,
            HistoryRequest::last(Duration::from_secs(3 * 3_600 - 60), scenario.end()),
        ))
        .expect("history");
    let points = &h.series[0].points;
    assert_eq!(h.step_ms, 60_000);
    // The oldest points are before the store's retention: no events, never made up.
    assert_eq!(points[0].count, 0);
    assert!(points.last().expect("points").count > 0);
}
