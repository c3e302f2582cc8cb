//! Refused events over HTTP: an event too far in the future (beyond the default
//! `max_future_skew` of 30 s) is refused by index with a message naming the limit, the rest
//! of the batch goes in, and `/metrics` counts the refusal by reason.
#![cfg(feature = "http")]

mod common;

use common::{Http, prometheus_value};
use rtdash::{Engine, EngineConfig, MemoryStore, MetricsSink, Timestamp};
use serde_json::json;

async fn start(config: EngineConfig) -> Http {
    Http::start(
        Engine::new(
            config.with_metrics(MetricsSink::Isolated),
            MemoryStore::new(),
        )
        .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_future_event_is_refused_by_index_and_counted_by_reason() {
    let http = start(EngineConfig::default()).await;
    let future = "rtdash_events_rejected_total{reason=\"future\"}";
    let metrics = http.metrics().await;
    // Every reason is exported from the start, at 0.
    for reason in ["future", "too_old", "value", "malformed"] {
        let series = format!("rtdash_events_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(prometheus_value(&metrics, &series), Some(0.0), "{metrics}");
    }

    let now = Timestamp::now().as_millis();
    let report = http
        .ingest(&json!([
            {"metric_name": "req", "value": 1, "event_time": now},
            // A clock 4 minutes fast: accepted under the old 5 min default, not any more.
            {"metric_name": "req", "value": 1, "event_time": now + 240_000},
            {"metric_name": "req", "value": 1, "event_time": now + 10_000},
            {"metric_name": "req", "value": "1", "event_time": now},
        ]))
        .await;
    assert_eq!(report["accepted"], 2, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors[0]["index"], 1, "{report}");
    assert_eq!(errors[0]["field"], "event_time", "{report}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("ahead of now") && message.contains("max_future_skew) is 30000 ms"),
        "{message}"
    );
    assert_eq!(errors[1]["index"], 3, "{report}");
    assert_eq!(errors[1]["field"], "value", "{report}");

    let metrics = http.metrics().await;
    assert_eq!(prometheus_value(&metrics, future), Some(1.0), "{metrics}");
    assert_eq!(
        prometheus_value(&metrics, "rtdash_events_rejected_total{reason=\"value\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        prometheus_value(&metrics, "rtdash_ingest_rejected_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        prometheus_value(&metrics, "rtdash_ingest_events_total"),
        Some(2.0),
        "{metrics}"
    );

    // A single event object is a batch of one: refused the same way, counted again.
    let report = http
        .ingest(&json!({"metric_name": "req", "value": 1, "event_time": now + 3_600_000}))
        .await;
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(report["errors"][0]["index"], 0, "{report}");
    let metrics = http.metrics().await;
    assert_eq!(prometheus_value(&metrics, future), Some(2.0), "{metrics}");
}

#[tokio::test]
async fn the_skew_limit_is_configurable() {
    let config = EngineConfig::default().with_validation(
        rtdash::ValidationLimits::default()
            .with_max_future_skew(std::time::Duration::from_secs(300)),
    );
    let http = start(config).await;
    let now = Timestamp::now().as_millis();
    let report = http
        .ingest(&json!([
            {"metric_name": "req", "value": 1, "event_time": now + 240_000},
            {"metric_name": "req", "value": 1, "event_time": now + 400_000},
        ]))
        .await;
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["errors"][0]["index"], 1, "{report}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("max_future_skew) is 300000 ms"),
        "{message}"
    );
    let metrics = http.metrics().await;
    assert_eq!(
        prometheus_value(&metrics, "rtdash_events_rejected_total{reason=\"future\"}"),
        Some(1.0),
        "{metrics}"
    );
}
