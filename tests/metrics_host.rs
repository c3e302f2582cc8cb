//! By default the engine's metrics go through the `metrics` facade into the recorder the
//! host installed: here a global Prometheus recorder, as `metrics-exporter-prometheus`
//! installs it. (One test per file: the global recorder is per process.)

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp};
use serde_json::json;

#[tokio::test]
async fn the_engine_reports_to_the_hosts_recorder() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder in this test process");
    // The host's own metric beside rtdash's.
    metrics::counter!("host_requests_total").increment(3);

    let engine = Engine::new(EngineConfig::default(), MemoryStore::new()).unwrap();
    let doc = json!({"id": "ops", "name": "Operations", "widgets": [{
        "widget_id": "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c03", "dashboard_id": "ops",
        "title": "Requests", "metric_name": "api.requests", "aggregation": "sum",
        "window_seconds": 60, "refresh_interval_seconds": 0.1,
        "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 3, "h": 2}}}]});
    engine
        .dashboards()
        .create(rtdash::DashboardDoc::from_json(doc.to_string().as_bytes()).unwrap())
        .unwrap();
    let _subscriber = engine.subscribe("ops").unwrap();
    let now = Timestamp::now().as_millis();
    let body = json!([
        {"metric_name": "api.requests", "value": 1, "event_time": now},
        {"metric_name": "api.requests", "value": "x", "event_time": now},
    ]);
    engine.ingest_json(body.to_string().as_bytes()).unwrap();
    // The engine renders nothing itself: the host's exporter does.
    assert_eq!(engine.render_metrics(), None);

    // Counters count at once; the mirrored gauges follow the scheduler's refresh (~1 s).
    let task = engine.spawn();
    let mut text = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = handle.render();
        if text.contains("rtdash_dashboard_subscribers{dashboard=\"ops\"} 1") {
            break;
        }
    }
    task.shutdown().await;
    for needle in [
        "host_requests_total 3",
        "rtdash_ingest_events_total 1",
        "rtdash_events_rejected_total{reason=\"value\"} 1",
        "rtdash_dashboards 1",
        "rtdash_dashboard_subscribers{dashboard=\"ops\"} 1",
        "# TYPE rtdash_aggregation_seconds summary",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
