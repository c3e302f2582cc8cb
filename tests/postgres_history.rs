//! Widget history with the PostgreSQL archive, against a naive computation over the raw
//! events (the checks of `tests/history.rs`): from the window store, from PostgreSQL
//! alone (a node that never saw the events), across the boundary, after downsampling to
//! hour rows; and a PostgreSQL server killed mid-run: ingest and live updates go on, the
//! archive reports itself down, and nothing is lost once it is back (or, with a buffer
//! too small for the outage, the gap is counted in the metrics).
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rtdash::fanout::Event;
use rtdash::history::{HistoryArchive, HistoryRequest};
use rtdash::postgres::{ArchiveConfig, PostgresArchive};
use rtdash::{Engine, EngineConfig, MetricsSink, Timestamp};

use common::T0;
use common::history::{Scenario, check_history, widgets};
use common::pg::{Database, PrivatePg};

fn archive(url: &str, buffer: usize) -> Arc<PostgresArchive> {
    let config = ArchiveConfig::default()
        .with_buffer_capacity(buffer)
        .with_batch_size(buffer.min(1_000))
        .with_flush_interval(Duration::from_millis(50))
        // The test's events are in 2023: the maintenance runs only when asked.
        .with_maintenance_interval(None);
    Arc::new(PostgresArchive::connect(url, config).expect("archive"))
}

fn engine(archive: &Arc<PostgresArchive>) -> Engine {
    Engine::builder(EngineConfig::default().with_metrics(MetricsSink::Isolated))
        .history_archive(Arc::clone(archive))
        .build()
        .expect("engine")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const HOURS3: u64 = 3 * 3_600 - 60;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    #[test]
    fn history_from_memory_postgres_and_across_equals_a_naive_computation(
        scenario in Scenario::strategy(3 * 3_600),
    ) {
        let db = Database::new();
        let archive = archive(&db.url(), 1_000_000);
        let engine = engine(&archive);
        let accepted = scenario.run(&engine);
        archive.flush(Duration::from_secs(30)).expect("flushed");
        let rt = runtime();
        let now = scenario.end();
        for (w, name) in widgets() {
            for range in [300, 3_600, HOURS3] {
                let req = HistoryRequest::last(Duration::from_secs(range), now);
                let h = rt.block_on(engine.history("h", w, req)).expect("history");
                check_history(&h, &accepted, &format!("{name} over {range} s"))?;
            }
        }
        // A node that never saw the events answers from PostgreSQL alone, up to the
        // buckets the first node had completed (its newest minutes are in its memory).
        let other = engine_with_dashboard(&archive, &scenario);
        let done = now.as_millis() - 10 * 60_000;
        for (w, name) in widgets() {
            let req = HistoryRequest::new(Timestamp::from_millis(T0), Timestamp::from_millis(done));
            let h = rt.block_on(other.history("h", w, req)).expect("history");
            prop_assert!(h.series.iter().flat_map(|s| &s.points).any(|p| p.count > 0), "{name}: nothing from PostgreSQL");
            check_history(&h, &accepted, &format!("{name} from PostgreSQL only"))?;
        }
    }
}

/// An engine on `archive` with the scenario's dashboard and no events.
fn engine_with_dashboard(archive: &Arc<PostgresArchive>, scenario: &Scenario) -> Engine {
    let e = engine(archive);
    Scenario::empty_like(scenario).run(&e);
    e
}

#[test]
fn downsampled_hours_give_exact_history_over_whole_hours() {
    let db = Database::new();
    let archive = archive(&db.url(), 1_000_000);
    let engine = engine(&archive);
    let scenario = Scenario::steady(4 * 3_600);
    let accepted = scenario.run(&engine);
    archive.flush(Duration::from_secs(30)).expect("flushed");
    // A week later every minute row is older than the minute retention: one row per hour.
    let report = archive
        .maintain(Timestamp::from_millis(
            scenario.end().as_millis() + 8 * 86_400_000,
        ))
        .expect("maintenance");
    assert!(report.downsampled > 0 && report.hour_rows > 0, "{report:?}");
    let other = engine_with_dashboard(&archive, &scenario);
    let rt = runtime();
    for (w, name) in widgets() {
        let req = HistoryRequest::new(
            Timestamp::from_millis(T0),
            Timestamp::from_millis(T0 + 3 * 3_600_000),
        );
        let h = rt.block_on(other.history("h", w, req)).expect("history");
        assert_eq!(h.step_ms, 3_600_000, "{name}: hour rows need hour steps");
        check_history(&h, &accepted, &format!("{name} from hour rows")).expect("exact");
        assert!(h.series.iter().flat_map(|s| &s.points).any(|p| p.count > 0));
    }
}

/// The newest `window_end` in the update frames a subscriber has waiting (its queue keeps
/// the newest value per widget).
fn newest_update(
    sub: &rtdash::Subscription<rtdash::Topic, rtdash::WidgetKey, rtdash::Frame>,
) -> Option<i64> {
    let mut newest = None;
    while let Ok(e) = sub.try_recv() {
        if let Event::Message { msg, .. } = e {
            let v: serde_json::Value = serde_json::from_str(msg.as_str()).expect("json");
            for item in v["items"].as_array().into_iter().flatten() {
                newest = newest.max(item["window_end"].as_i64());
            }
        }
    }
    newest
}

#[test]
fn postgres_killed_mid_run_loses_nothing_once_it_is_back() {
    let mut pg = PrivatePg::start();
    let archive = archive(&pg.url("postgres"), 1_000_000);
    let engine = engine(&archive);
    let first = Scenario::steady(3_600);
    let mut accepted = first.run(&engine);
    archive.flush(Duration::from_secs(30)).expect("flushed");
    let sub = engine.subscribe("h").expect("subscribe");
    let _ = newest_update(&sub); // the snapshot
    let before = first.end().as_millis();

    pg.kill();
    // An hour more while PostgreSQL is down: every event accepted, updates published.
    let second = Scenario::steady_from(T0 + 3_600_000, 3_600);
    let more = second.ingest(&engine);
    assert_eq!(more.len(), 3 * 3_600, "every event accepted");
    accepted.extend(more);
    let after = newest_update(&sub).expect("updates while PostgreSQL was down");
    assert!(
        after > before && after >= second.end().as_millis() - 10_000,
        "live updates stopped while PostgreSQL was down: {before} then {after}"
    );
    let h = archive.health();
    assert!(!h.connected && h.buffered > 0, "{h:?}");
    assert_eq!(engine.health().history_archive, Some(false));
    let metrics = engine.render_metrics().expect("isolated metrics");
    assert!(metrics.contains("rtdash_history_archive_up 0"), "{metrics}");

    pg.restart();
    archive.flush(Duration::from_secs(60)).expect("caught up");
    let h = archive.health();
    assert!(h.connected && h.dropped == 0 && h.buffered == 0, "{h:?}");
    assert_eq!(engine.health().history_archive, Some(true));
    // Everything is there: from memory, from PostgreSQL and from a node that saw nothing.
    let rt = runtime();
    let now = second.end();
    let other = engine_with_dashboard(&archive, &first);
    for (w, name) in widgets() {
        let req = HistoryRequest::new(Timestamp::from_millis(T0), now);
        let h = rt.block_on(engine.history("h", w, req)).expect("history");
        check_history(&h, &accepted, &format!("{name} after the outage")).expect("exact");
        let done = Timestamp::from_millis(now.as_millis() - 10 * 60_000);
        let h = rt
            .block_on(other.history(
                "h",
                w,
                HistoryRequest::new(Timestamp::from_millis(T0), done),
            ))
            .expect("history");
        check_history(
            &h,
            &accepted,
            &format!("{name} from PostgreSQL after the outage"),
        )
        .expect("exact");
    }
}

#[test]
fn an_outage_longer_than_the_buffer_is_a_counted_gap() {
    let mut pg = PrivatePg::start();
    let archive = archive(&pg.url("postgres"), 30);
    let engine = engine(&archive);
    let first = Scenario::steady(1_800);
    first.run(&engine);
    archive.flush(Duration::from_secs(30)).expect("flushed");
    pg.kill();
    let second = Scenario::steady_from(T0 + 1_800_000, 3_600);
    second.ingest(&engine);
    // Wait for the writer to notice.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while archive.health().connected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        engine.tick(second.end());
    }
    let h = archive.health();
    assert!(h.dropped > 0 && h.buffered <= 30, "{h:?}");
    let metrics = engine.render_metrics().expect("isolated metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rtdash_history_archive_dropped_total"))
        .expect("the dropped counter");
    assert_eq!(
        line,
        format!("rtdash_history_archive_dropped_total {}", h.dropped)
    );
    pg.restart();
    archive.flush(Duration::from_secs(60)).expect("caught up");
    assert_eq!(archive.health().buffered, 0);
}

#[test]
fn a_node_shut_down_gracefully_leaves_its_newest_minutes_in_postgres() {
    let db = Database::new();
    let archive = archive(&db.url(), 1_000_000);
    let engine = engine(&archive);
    let scenario = Scenario::steady(20 * 60);
    let accepted = scenario.run(&engine);
    let rt = runtime();
    // The buckets of the last ~5.5 min are still filling: only a shutdown hands them over.
    rt.block_on(async {
        let task = engine.spawn();
        task.shutdown().await;
    });
    drop(engine);
    let other = engine_with_dashboard(&archive, &scenario);
    let end = scenario.end();
    for (w, name) in widgets() {
        let req =
            HistoryRequest::new(Timestamp::from_millis(T0), end).with_step(Duration::from_secs(60));
        let h = rt.block_on(other.history("h", w, req)).expect("history");
        check_history(&h, &accepted, &format!("{name} after a shutdown")).expect("exact");
        let last = h
            .series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| (p.time.as_millis(), p.count))
            .max();
        let (t, count) = last.expect("points");
        assert!(
            t >= end.as_millis() - 60_000 && count > 0,
            "{name}: the newest minute is missing"
        );
    }
}
