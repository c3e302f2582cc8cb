//! The durable log from the host API, in process, against a real `redis-server`: two
//! aggregator engines share the partitions; `submit` answers once Redis has the events;
//! a widget is evaluated by the owner of its metric's partition only (another node
//! answers `NotOwned`); a graceful shutdown hands the partitions over at once with
//! nothing lost; damaged entries in Redis are skipped (log) or refused with a clear error
//! (late stream), never a panic.
#![cfg(all(feature = "http", feature = "redis", unix))]

use std::time::{Duration, Instant};

use rtdash::redis::{Backplane, BackplaneConfig, LogConfig, RedisStreamsLog, Role};
use rtdash::{
    Aggregation, DashboardDoc, Engine, EngineConfig, Error, MetricEvent, Timestamp, Widget,
};
use rtdash_redis::test_server::RedisServer;

mod common;

use common::cluster::redis_cmd;

const PARTITIONS: u32 = 4;

fn log_config() -> LogConfig {
    LogConfig::default()
        .with_partitions(PARTITIONS)
        .with_lease_ttl(Duration::from_millis(600))
        .with_renew_every(Duration::from_millis(100))
        .with_checkpoint_every(Duration::from_millis(200))
}

/// An aggregator engine `node` on `url`, with dashboard `doc`.
fn node(url: &str, node: &str, doc: &DashboardDoc) -> (Engine, RedisStreamsLog) {
    let backplane = Backplane::new(url, BackplaneConfig::new(node)).unwrap();
    let log = backplane.stream_log(log_config()).unwrap();
    let engine = Engine::builder(EngineConfig::default())
        .redis(&backplane, Role::Aggregator)
        .durable_log(log.clone())
        .build()
        .unwrap();
    engine.dashboards().create(doc.clone()).unwrap();
    (engine, RedisStreamsLog::new(log))
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The count widget's value as computed by whichever engine owns its partition.
fn owned_count(engines: &[&Engine], widget: rtdash::Uuid) -> Option<f64> {
    engines
        .iter()
        .find_map(|e| e.widget_value("d", widget).ok())
        .and_then(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_shared_and_handed_over_without_loss() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let count = Widget::new("count", "orders", Aggregation::Count, 3600);
    let id = count.widget_id;
    let doc = DashboardDoc::new("d", "D").unwrap().with_widget(count);
    let (a, a_log) = node(&redis.url(), "a", &doc);
    let (b, _) = node(&redis.url(), "b", &doc);
    until("every partition owned, by both", || {
        let (na, nb) = (a.owned_partitions(), b.owned_partitions());
        na.len() + nb.len() == PARTITIONS as usize && !na.is_empty() && !nb.is_empty()
    })
    .await;

    // The synchronous API cannot wait for Redis: it says so and appends nothing.
    let now = Timestamp::now();
    let refused = a.ingest(MetricEvent::new("orders", 1.0, now));
    assert!(
        matches!(refused, Err(Error::IngestLogPending { .. })),
        "{refused:?}"
    );

    // `submit` answers once Redis has them; the owner of `orders` records them.
    let mut sent: u32 = 0;
    for i in 0..50 {
        let events = (0..20).map(|k| {
            let mut e = MetricEvent::new("orders", 1.0, now);
            e.id = Some(rtdash::EventId::new(format!("o{i}-{k}")).unwrap());
            e
        });
        let report = b.submit(events).await.unwrap();
        assert_eq!(report.accepted, 20);
        sent += 20;
    }
    // A late one (older than the grace period) goes to the late stream.
    let late = MetricEvent::new("orders", 5.0, now.saturating_sub(Duration::from_secs(120)));
    assert_eq!(a.submit([late]).await.unwrap().accepted, 1);
    until("the owner recorded every event", || {
        owned_count(&[&a, &b], id) == Some(f64::from(sent))
    })
    .await;
    // Only the owner evaluates the widget; the other node says who does.
    let (owner, other) = if a.widget_value("d", id).is_ok() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let not_owned = other.widget_value("d", id);
    assert!(
        matches!(&not_owned, Err(Error::NotOwned { metric }) if metric == "orders"),
        "{not_owned:?}"
    );
    assert_eq!(owner.window_stats().accepted, u64::from(sent));

    // Replays of events already recorded (a producer's retry) are dropped.
    let again = (0..20).map(|k| {
        let mut e = MetricEvent::new("orders", 1.0, now);
        e.id = Some(rtdash::EventId::new(format!("o0-{k}")).unwrap());
        e
    });
    b.submit(again).await.unwrap();

    // The owner shuts down gracefully: the other takes its partitions at once (well
    // within a lease), from their final checkpoints, and has every event once.
    let owner = owner.clone();
    let other = other.clone();
    drop((a, b));
    let started = Instant::now();
    owner.spawn().shutdown().await;
    until("the other node owns every partition", || {
        other.owned_partitions().len() == PARTITIONS as usize
    })
    .await;
    let moved = started.elapsed();
    until("the value, from the other node", || {
        owned_count(&[&other], id) == Some(f64::from(sent))
    })
    .await;
    assert!(
        moved < Duration::from_millis(600),
        "handed over in {moved:?}, not after a lease expiry"
    );
    // The late event is in the late stream of its partition, once.
    let mut late_events = Vec::new();
    for p in 0..PARTITIONS {
        for (_, events) in a_log.late_events(p, "0-0", 100).await.unwrap() {
            late_events.extend(events);
        }
    }
    assert_eq!(late_events.len(), 1, "{late_events:?}");
    assert_eq!(
        (late_events[0].metric_name.as_str(), late_events[0].value),
        ("orders", 5.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_entries_are_skipped_or_refused_never_a_panic() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let count = Widget::new("count", "orders", Aggregation::Count, 3600);
    let id = count.widget_id;
    let doc = DashboardDoc::new("d", "D").unwrap().with_widget(count);
    let (a, log) = node(&redis.url(), "a", &doc);
    until("every partition owned", || {
        a.owned_partitions().len() == PARTITIONS as usize
    })
    .await;
    let p = log.stream_log().partition_of("orders");
    let stream = log.stream_log().stream_key(p);
    let late = log.stream_log().late_stream_key(p);
    let url = redis.url();
    // Garbage in the partition's stream: not an entry rtdash wrote.
    for garbage in ["", "\u{1}\u{ff}\u{ff}", "\u{9}nonsense", "\u{1}\u{5}"] {
        let added: Option<String> = redis_cmd(&url, &["XADD", &stream, "*", "e", garbage]).await;
        assert!(added.is_some());
    }
    // Then good events: they are recorded, the garbage before them skipped.
    let now = Timestamp::now();
    let report = a
        .submit((0..3).map(|_| MetricEvent::new("orders", 1.0, now)))
        .await
        .unwrap();
    assert_eq!(report.accepted, 3);
    until("the good events recorded", || {
        a.widget_value("d", id).ok().and_then(|s| s.value) == Some(3.0)
    })
    .await;

    // A damaged late entry: reading the late stream names it.
    let added: Option<String> = redis_cmd(&url, &["XADD", &late, "*", "e", "\u{1}\u{ff}"]).await;
    let entry = added.unwrap();
    let err = log.late_events(p, "0-0", 10).await.unwrap_err();
    assert!(
        matches!(&err, Error::IngestLogUnavailable { reason, .. } if reason.contains(&entry)),
        "{err}"
    );
    // Bad arguments are refused with a clear error.
    let err = log.late_events(PARTITIONS, "0-0", 10).await.unwrap_err();
    assert!(err.to_string().contains("partition"), "{err}");
    let err = log.late_events(0, "not-an-id", 10).await.unwrap_err();
    assert!(err.to_string().contains("not-an-id"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_cannot_be_restored_is_refused_not_half_applied() {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let url = redis.url();
    // Partition 1's stored checkpoint is not one rtdash wrote.
    let ckpt = "rtdash:ckpt:{1}";
    let set: Option<i64> = redis_cmd(
        &url,
        &[
            "HSET",
            ckpt,
            "data",
            "{\"format\":\"nope\"}",
            "offset",
            "0-0",
            "token",
            "1",
        ],
    )
    .await;
    assert_eq!(set, Some(3));
    let doc = DashboardDoc::new("d", "D").unwrap();
    let (a, log) = node(&url, "a", &doc);
    until("the other partitions owned, a restore refused", || {
        a.owned_partitions() == [0, 2, 3] && log.stream_log().stats().restore_failures >= 1
    })
    .await;
    // Still refused a while later (not retried in a tight loop, never half applied).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.owned_partitions(), [0, 2, 3]);
    assert!(a.health().is_healthy());
}
