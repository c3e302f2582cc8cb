//! Alert notifications through the engine (issue #17): a flapping rule's fires and
//! resolves go to four webhook receivers started by the test — one healthy, one down, one
//! slow and one answering 500 — and a fifth that fails and then recovers. Each outcome is
//! visible in the alert history and the metrics; the failing receivers' breakers open and
//! the recovered one's closes; and meanwhile ingest and live updates keep their pace.
#![cfg(all(feature = "http", feature = "webhooks"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use common::{dashboard, next_frame, prometheus_value, serve_app, widget};
use rtdash::notify::{AlertWebhooks, BreakerState, WebhookConfig};
use rtdash::{
    Aggregation, AlertHistoryQuery, AlertRule, AllowAll, Engine, EngineConfig, MemoryStore,
    MetricsSink, NotificationOutcome, Timestamp, TransportConfig,
};
use serde_json::{Value, json};

/// A receiver on a free port: answers `status` after `delay`, counts requests, keeps
/// the bodies.
struct Receiver {
    url: String,
    requests: Arc<AtomicU64>,
    ok: Arc<AtomicBool>,
    bodies: Arc<std::sync::Mutex<Vec<Value>>>,
}

async fn receiver(ok: bool, delay: Duration) -> Receiver {
    let requests = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicBool::new(ok));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (r, o, b) = (Arc::clone(&requests), Arc::clone(&ok), Arc::clone(&bodies));
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let (r, o, b) = (Arc::clone(&r), Arc::clone(&o), Arc::clone(&b));
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                if let Ok(v) = serde_json::from_str::<Value>(&body) {
                    b.lock().unwrap().push(v);
                }
                if o.load(Ordering::Relaxed) {
                    AxumStatus::OK
                } else {
                    AxumStatus::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    let base = serve_app(app).await;
    Receiver {
        url: format!("{base}/hook"),
        requests,
        ok,
        bodies,
    }
}

/// A URL where nothing listens.
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receivers_cost_nothing_to_ingest_updates_or_healthy_receivers() {
    let healthy = receiver(true, Duration::ZERO).await;
    let failing = receiver(false, Duration::ZERO).await;
    let slow = receiver(true, Duration::from_secs(3)).await;
    let recovering = receiver(false, Duration::ZERO).await;
    let down = dead_url().await;

    let webhooks = Arc::new(
        AlertWebhooks::new(
            WebhookConfig::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
                .with_attempt_timeout(Duration::from_millis(300))
                .with_breaker(3, Duration::from_secs(4)),
        )
        .unwrap(),
    );
    let engine = Engine::builder(EngineConfig::default().with_metrics(MetricsSink::Isolated))
        .store(MemoryStore::new())
        .notifier(Arc::clone(&webhooks))
        .build()
        .unwrap();
    let w = widget("ops", "cpu", Aggregation::Avg, 1, 0.2, 0);
    let wid = w.widget_id;
    let mut doc = dashboard("ops", vec![w]);
    doc.alert_rules.push(
        AlertRule::above(wid, 50.0)
            .with_name("CPU hot")
            .with_webhook(&healthy.url)
            .with_webhook(&failing.url)
            .with_webhook(&slow.url)
            .with_webhook(&down),
    );
    doc.alert_rules.push(
        AlertRule::above(wid, 50.0)
            .with_name("CPU hot (pager)")
            .with_webhook(&recovering.url),
    );
    engine.dashboards().create(doc).unwrap();
    let task = engine.spawn();
    let base = serve_app(rtdash::http::router(
        engine.clone(),
        AllowAll,
        TransportConfig::default(),
    ))
    .await;

    // A viewer counts the update frames it gets.
    let ws_url = format!(
        "{}/stream/ops?token=viewer",
        base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "welcome");
    let updates = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&updates);
    let viewer = tokio::spawn(async move {
        loop {
            let f = next_frame(&mut ws).await;
            if f["type"] == "update" {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    // The producer: batches of 100 events every 20 ms for 9 s; the value flips between
    // about 90 and about 10 every 1.5 s, so the rules fire and resolve 3 times each, and
    // it wobbles a little with every batch, so the widget's average changes at every
    // refresh (200 ms).
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut accepted = 0_u64;
    let mut slowest = Duration::ZERO;
    let mut flipped_back = false;
    let mut batches = 0_u32;
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(9) {
        if !flipped_back && started.elapsed() > Duration::from_secs(4) {
            // The pager recovers half-way: after its breaker's cooldown it is used again.
            recovering.ok.store(true, Ordering::Relaxed);
            flipped_back = true;
        }
        let hot = (started.elapsed().as_millis() / 1500).is_multiple_of(2);
        let now = Timestamp::now().as_millis();
        batches += 1;
        let value = if hot { 90.0 } else { 10.0 } + f64::from(batches % 7) * 0.1;
        let batch: Vec<Value> = (0..100)
            .map(|_| json!({"metric_name": "cpu", "value": value, "event_time": now}))
            .collect();
        let sent = Instant::now();
        let report: Value = client
            .post(format!("{base}/ingest"))
            .json(&batch)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        slowest = slowest.max(sent.elapsed());
        latencies.push(sent.elapsed());
        accepted += report["accepted"].as_u64().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let updates_seen = updates.load(Ordering::Relaxed);
    viewer.abort();
    latencies.sort();
    eprintln!(
        "ingest: {accepted} events in {} batches over {elapsed:?}, median {:?}, slowest {slowest:?}; \
         {updates_seen} updates for {} refreshes",
        latencies.len(),
        latencies[latencies.len() / 2],
        elapsed.as_millis() / 200,
    );

    // Ingest kept its pace: every event accepted, no request held up by a receiver (each
    // took well under the slow receiver's 3 s or the dead ones' retries).
    assert_eq!(accepted % 100, 0);
    assert!(accepted >= 100 * 100, "{accepted} events in {elapsed:?}");
    assert!(
        slowest < Duration::from_millis(1500),
        "slowest ingest {slowest:?}"
    );
    // Live updates kept theirs: the widget's value changes at every refresh (200 ms), and
    // (nearly) every refresh reached the viewer.
    let refreshes = u64::try_from(elapsed.as_millis() / 200).unwrap();
    assert!(
        updates_seen * 10 >= refreshes * 8,
        "{updates_seen} updates for {refreshes} refreshes"
    );

    assert!(webhooks.notifier().flush(Duration::from_secs(10)).await);
    // Let the engine record the last reports.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let history = common::alert_records(&engine, "ops");
    let fires = history
        .iter()
        .filter(|r| r.rule_name.as_deref() == Some("CPU hot"))
        .count();
    assert!(fires >= 3, "{fires} fires");
    let outcomes = |url: &str| -> Vec<NotificationOutcome> {
        history
            .iter()
            .flat_map(|r| r.notifications.iter())
            .filter(|n| n.url == url)
            .map(|n| n.outcome)
            .collect()
    };
    // The healthy receiver got every fire and resolve, at once.
    let ok = outcomes(&healthy.url);
    assert!(ok.len() >= 2 * fires - 1, "{ok:?}");
    assert!(
        ok.iter().all(|o| *o == NotificationOutcome::Delivered),
        "{ok:?}"
    );
    assert_eq!(
        healthy.requests.load(Ordering::Relaxed),
        u64::try_from(ok.len()).unwrap()
    );
    let body = healthy.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "firing");
    assert_eq!(body["rule_name"], "CPU hot");
    assert_eq!(body["dashboard_id"], "ops");
    // The 500 and the dead receiver: retried, then their breakers opened and the rest
    // were not even tried.
    for url in [failing.url.as_str(), down.as_str()] {
        let o = outcomes(url);
        assert!(o.contains(&NotificationOutcome::Failed), "{url}: {o:?}");
        assert!(
            o.contains(&NotificationOutcome::BreakerOpen),
            "{url}: {o:?}"
        );
        assert!(!o.contains(&NotificationOutcome::Delivered), "{url}: {o:?}");
    }
    let failed_500 = history
        .iter()
        .flat_map(|r| r.notifications.iter())
        .find(|n| n.url == failing.url && n.outcome == NotificationOutcome::Failed)
        .unwrap();
    assert_eq!(failed_500.status, Some(500));
    assert!(failed_500.attempts >= 1 && failed_500.attempts <= 3);
    assert!(
        failing.requests.load(Ordering::Relaxed) < u64::try_from(2 * fires * 3).unwrap(),
        "the breaker spared the failing receiver"
    );
    eprintln!(
        "requests: healthy {}, failing {}, slow {}; notifications to the failing one: {:?}",
        healthy.requests.load(Ordering::Relaxed),
        failing.requests.load(Ordering::Relaxed),
        slow.requests.load(Ordering::Relaxed),
        outcomes(&failing.url),
    );
    // The slow one timed out.
    let o = outcomes(&slow.url);
    assert!(!o.contains(&NotificationOutcome::Delivered), "{o:?}");
    // The pager failed, its breaker opened, then it recovered and its breaker closed.
    // (In the order they ended: records come newest first.)
    let mut timed: Vec<_> = history
        .iter()
        .flat_map(|r| r.notifications.iter())
        .filter(|n| n.url == recovering.url)
        .map(|n| (n.at, n.outcome))
        .collect();
    timed.sort_by_key(|(at, _)| *at);
    let o: Vec<_> = timed.into_iter().map(|(_, o)| o).collect();
    assert_eq!(o.first(), Some(&NotificationOutcome::Failed), "{o:?}");
    let first_ok = o.iter().position(|x| *x == NotificationOutcome::Delivered);
    assert!(first_ok.is_some_and(|i| i > 0), "{o:?}");
    assert!(
        o[..first_ok.unwrap_or(0)].contains(&NotificationOutcome::BreakerOpen),
        "{o:?}"
    );
    assert_eq!(
        webhooks.notifier().breaker(&recovering.url),
        Some(BreakerState::Closed)
    );
    assert!(matches!(
        webhooks.notifier().breaker(&failing.url),
        Some(BreakerState::Open { .. } | BreakerState::HalfOpen)
    ));

    // The outcomes are counted in the metrics.
    let text = engine.render_metrics().unwrap();
    let delivered = prometheus_value(&text, "rtdash_alert_notifications_delivered_total").unwrap();
    let breaker = prometheus_value(&text, "rtdash_alert_notifications_breaker_open_total").unwrap();
    let failed = prometheus_value(&text, "rtdash_alert_notifications_failed_total").unwrap();
    assert!(
        delivered >= f64::from(u32::try_from(ok.len()).unwrap()),
        "{delivered}"
    );
    assert!(breaker >= 2.0 && failed >= 2.0, "{breaker} {failed}");

    // Silencing the rule records the outcome `silenced` and sends nothing.
    let mut doc = (*engine.dashboards().get("ops").unwrap()).clone();
    for r in &mut doc.alert_rules {
        r.silenced_until = Some(Timestamp::from_millis(
            Timestamp::now().as_millis() + 3_600_000,
        ));
    }
    engine.dashboards().put(doc).unwrap();
    let before = healthy.requests.load(Ordering::Relaxed);
    // Cold for 1.5 s (whatever fired resolves), then hot until a new record shows.
    let send = |v: f64| {
        let client = client.clone();
        let url = format!("{base}/ingest");
        async move {
            let now = Timestamp::now().as_millis();
            client
                .post(url)
                .json(&json!({"metric_name": "cpu", "value": v, "event_time": now}))
                .send()
                .await
                .unwrap();
        }
    };
    let cold_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < cold_until {
        send(10.0).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let newest = loop {
        send(90.0).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let page = engine
            .alert_history("ops", &AlertHistoryQuery::default())
            .unwrap();
        let newest = page.records[0].clone();
        if newest.ended_at.is_none() && newest.started_at.as_millis() > cold_until_ms(cold_until) {
            break newest;
        }
        assert!(Instant::now() < deadline, "no new fire: {newest:?}");
    };
    assert!(newest.silenced, "{newest:?}");
    assert!(
        newest
            .notifications
            .iter()
            .all(|n| n.outcome == NotificationOutcome::Silenced)
    );
    assert_eq!(healthy.requests.load(Ordering::Relaxed), before);
    task.shutdown().await;
}

/// The wall-clock time (unix ms) of `instant` (in the past or near future).
fn cold_until_ms(instant: Instant) -> i64 {
    let now = Timestamp::now().as_millis();
    let ahead = instant
        .saturating_duration_since(Instant::now())
        .as_millis();
    let behind = Instant::now()
        .saturating_duration_since(instant)
        .as_millis();
    now + i64::try_from(ahead).unwrap() - i64::try_from(behind).unwrap()
}
