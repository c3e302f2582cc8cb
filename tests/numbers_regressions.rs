//! Issue #9, "The numbers must be right": each case reproduced from the outside. A dashboard
//! is defined over the HTTP API, events with explicit event times relative to the wall
//! clock are posted to `POST /ingest`, and the values are read back from the snapshot
//! endpoint (and, for some cases, from the WebSocket stream), then compared with exact
//! values computed here.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use common::{Http, next_frame, prometheus_value, widget_json};
use rtdash::{Engine, EngineConfig, MemoryStore, Timestamp, Uuid, ValidationLimits, WindowConfig};
use serde_json::{Value, json};

const DASH: &str = "numbers";

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

fn event(metric: &str, value: f64, at: i64) -> Value {
    json!({"metric_name": metric, "value": value, "event_time": at})
}

/// Eight events of `value`, spread over the last 4 s before `now` (inside any window of
/// 10 s read within the next 5 s).
fn eight(metric: &str, value: f64, now: i64) -> Value {
    Value::Array(
        (1..=8)
            .map(|k| event(metric, value, now - 500 * k))
            .collect(),
    )
}

async fn start(config: EngineConfig) -> (Http, Engine) {
    let engine = Engine::new(
        config.with_metrics(rtdash::MetricsSink::Isolated),
        MemoryStore::new(),
    )
    .unwrap();
    (Http::start(engine.clone()).await, engine)
}

/// Asserts an ingest report: everything accepted, nothing late or refused.
fn all_accepted(report: &Value, n: u64) {
    assert_eq!(report["accepted"], n, "{report}");
    assert_eq!(report["late"], 0, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
}

/// Ticks the engine now and returns the items of the update frame it publishes.
async fn tick_and_read(engine: &Engine, ws: &mut common::Ws) -> Vec<Value> {
    let report = engine.tick(Timestamp::now());
    assert_eq!(report.frames_published, 1, "{report:?}");
    let frame = next_frame(ws).await;
    assert_eq!(frame["type"], "update", "{frame}");
    frame["items"].as_array().unwrap().clone()
}

fn item(items: &[Value], id: Uuid) -> &Value {
    items
        .iter()
        .find(|i| i["widget"] == id.to_string())
        .unwrap_or_else(|| panic!("no item of widget {id} in {items:?}"))
}

/// The sum of a window must come from the events inside it: an outlier that left the
/// window may not absorb the small values recorded after it (`2^53 + 1 == 2^53` in f64),
/// nor leave its rounding error behind.
#[tokio::test]
async fn outlier_outside_window_does_not_change_sum_inside() {
    let (http, engine) = start(EngineConfig::default()).await;
    let (big_sum, big_avg, small_sum, small_avg) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    http.create_dashboard(
        DASH,
        vec![
            widget_json(DASH, big_sum, "big", "sum", 10, 1.0, 0, json!({})),
            widget_json(DASH, big_avg, "big", "avg", 10, 1.0, 1, json!({})),
            widget_json(DASH, small_sum, "small", "sum", 10, 1.0, 2, json!({})),
            widget_json(DASH, small_avg, "small", "avg", 10, 1.0, 3, json!({})),
        ],
    )
    .await;
    let mut ws = http.ws(DASH).await;

    let now = now_ms();
    let two_53 = 2f64.powi(53);
    all_accepted(
        &http
            .ingest(&json!([event("big", two_53, now - 20_000)]))
            .await,
        1,
    );
    all_accepted(&http.ingest(&eight("big", 1.0, now)).await, 8);
    all_accepted(
        &http
            .ingest(&json!([event("small", 1e9, now - 20_000)]))
            .await,
        1,
    );
    all_accepted(&http.ingest(&eight("small", 0.01, now)).await, 8);

    // The float sum of the eight values in the window, and the bound of issue #9.
    let small_exact = (0..8).fold(0.0_f64, |s, _| s + 0.01);
    let tolerance = 8.0 * f64::EPSILON * 0.08;

    let s = http.snapshot(DASH, big_sum).await;
    assert_eq!(s["count"], 8, "{s}");
    assert_eq!(
        s["value"], 8.0,
        "sum of eight 1.0 after a 2^53 outlier left: {s}"
    );
    let s = http.snapshot(DASH, big_avg).await;
    assert_eq!(
        s["value"], 1.0,
        "avg of eight 1.0 after a 2^53 outlier left: {s}"
    );
    let s = http.snapshot(DASH, small_sum).await;
    assert_eq!(s["count"], 8, "{s}");
    let v = s["value"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (v - small_exact).abs() <= tolerance,
        "sum of eight 0.01 after a 1e9 outlier left: {v}, expected {small_exact} ± {tolerance}"
    );
    let s = http.snapshot(DASH, small_avg).await;
    let v = s["value"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (v - small_exact / 8.0).abs() <= tolerance / 8.0,
        "avg of eight 0.01 after a 1e9 outlier left: {v}"
    );

    // The stream sends the same values.
    let items = tick_and_read(&engine, &mut ws).await;
    assert_eq!(item(&items, big_sum)["value"], 8.0, "{items:?}");
    assert_eq!(item(&items, big_sum)["count"], 8, "{items:?}");
    assert_eq!(item(&items, big_avg)["value"], 1.0, "{items:?}");
    let v = item(&items, small_sum)["value"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!((v - small_exact).abs() <= tolerance, "streamed sum {v}");
    engine.close_sessions().await;
}

/// Two huge values whose sum overflows to infinity may not leave `inf - inf` (NaN, sent as
/// `null`) in the series once they are out of the window.
#[tokio::test]
async fn overflow_outside_window_does_not_poison_series() {
    let (http, engine) = start(EngineConfig::default()).await;
    let (sum, avg, count) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    http.create_dashboard(
        DASH,
        vec![
            widget_json(DASH, sum, "huge", "sum", 10, 1.0, 0, json!({})),
            widget_json(DASH, avg, "huge", "avg", 10, 1.0, 1, json!({})),
            widget_json(DASH, count, "huge", "count", 10, 1.0, 2, json!({})),
        ],
    )
    .await;
    let mut ws = http.ws(DASH).await;

    let now = now_ms();
    all_accepted(
        &http
            .ingest(&json!([
                event("huge", 1.7e308, now - 20_000),
                event("huge", 1.7e308, now - 20_000)
            ]))
            .await,
        2,
    );
    all_accepted(&http.ingest(&eight("huge", 1.0, now)).await, 8);

    let s = http.snapshot(DASH, sum).await;
    assert_eq!(
        s["value"], 8.0,
        "sum after 2 × 1.7e308 left the window: {s}"
    );
    assert_eq!(s["count"], 8, "{s}");
    let s = http.snapshot(DASH, avg).await;
    assert_eq!(
        s["value"], 1.0,
        "avg after 2 × 1.7e308 left the window: {s}"
    );
    let s = http.snapshot(DASH, count).await;
    assert_eq!(s["value"], 8.0, "{s}");

    let items = tick_and_read(&engine, &mut ws).await;
    assert_eq!(item(&items, sum)["value"], 8.0, "{items:?}");
    assert_eq!(item(&items, avg)["value"], 1.0, "{items:?}");
    assert_eq!(item(&items, count)["value"], 8.0, "{items:?}");
    engine.close_sessions().await;
}

/// p99.9 of 1000 values is the value of rank ⌈0.999 · 1000⌉ = 999 — here 1.0 — computed
/// in integers, not the rank `⌈999.0000000000001⌉ = 1000` of floating-point arithmetic.
#[tokio::test]
async fn p99_9_uses_exact_nearest_rank() {
    let (http, engine) = start(EngineConfig::default()).await;
    let (p999, max) = (Uuid::new_v4(), Uuid::new_v4());
    http.create_dashboard(
        DASH,
        vec![
            widget_json(DASH, p999, "lat", "p99.9", 10, 1.0, 0, json!({})),
            widget_json(DASH, max, "lat", "max", 10, 1.0, 1, json!({})),
        ],
    )
    .await;
    let mut ws = http.ws(DASH).await;

    let now = now_ms();
    let mut events: Vec<Value> = (0..999).map(|i| event("lat", 1.0, now - 100 - i)).collect();
    events.push(event("lat", 1000.0, now - 1_100));
    all_accepted(&http.ingest(&Value::Array(events)).await, 1000);

    // Percentiles are reported within the histogram's documented relative error
    // 2^-(P+1) of the value of that rank (0.39 % at the default P = 7).
    let p = WindowConfig::default().percentile_precision;
    let bound = 2f64.powi(-(i32::from(p) + 1));
    let s = http.snapshot(DASH, p999).await;
    assert_eq!(s["count"], 1000, "{s}");
    let v = s["value"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (v - 1.0).abs() <= bound,
        "p99.9 of 999 × 1.0 and one 1000.0 must be the value of rank 999 (1.0 ± {bound}), got {v}"
    );
    assert_eq!(http.snapshot(DASH, max).await["value"], 1000.0);

    let items = tick_and_read(&engine, &mut ws).await;
    let v = item(&items, p999)["value"].as_f64().unwrap_or(f64::NAN);
    assert!((v - 1.0).abs() <= bound, "streamed p99.9 {v}");
    engine.close_sessions().await;
}

/// One producer with a fast clock: lateness is per series, so its event from 4 minutes in
/// the future (accepted: the test allows a skew of 5 min) must not make the on-time events
/// of any other series late — neither of another metric, nor of the same metric with other
/// tags.
#[tokio::test]
async fn fast_clock_producer_does_not_make_other_series_late() {
    // Another metric.
    fast_clock_case(
        json!({"metric_name": "clock.fast", "value": 5.0}),
        json!({"metric_name": "clock.ok"}),
        "clock.ok",
        json!({}),
    )
    .await;
    // The same metric, other tags.
    fast_clock_case(
        json!({"metric_name": "clock", "value": 5.0, "tags": {"host": "fast"}}),
        json!({"metric_name": "clock", "tags": {"host": "ok"}}),
        "clock",
        json!({"tag_filter": {"host": "ok"}}),
    )
    .await;
}

/// Posts `fast` (an event object without its time) 4 min ahead, then three events of
/// `on_time` a few seconds old with values 1, 2, 3, and checks the widgets of
/// `metric`/`extra` count them and nothing was late.
async fn fast_clock_case(fast: Value, on_time: Value, metric: &str, extra: Value) {
    let skew = Duration::from_secs(300);
    let config = EngineConfig::default()
        .with_validation(ValidationLimits::default().with_max_future_skew(skew));
    let (http, engine) = start(config).await;
    let (count, sum) = (Uuid::new_v4(), Uuid::new_v4());
    http.create_dashboard(
        DASH,
        vec![
            widget_json(DASH, count, metric, "count", 60, 1.0, 0, extra.clone()),
            widget_json(DASH, sum, metric, "sum", 60, 1.0, 1, extra),
        ],
    )
    .await;

    let now = now_ms();
    let mut ahead = fast;
    ahead["event_time"] = json!(now + 240_000);
    let report = http.ingest(&json!([ahead])).await;
    all_accepted(&report, 1);

    let events: Vec<Value> = (1..=3)
        .map(|k| {
            let mut e = on_time.clone();
            e["value"] = json!(f64::from(k));
            e["event_time"] = json!(now - 4_000 + i64::from(k) * 1_000);
            e
        })
        .collect();
    let report = http.ingest(&Value::Array(events)).await;
    assert_eq!(
        report["late"], 0,
        "on-time events made late by another series' clock: {report}"
    );
    all_accepted(&report, 3);

    let s = http.snapshot(DASH, count).await;
    assert_eq!(s["value"], 3.0, "{s}");
    assert_eq!(s["count"], 3, "{s}");
    let s = http.snapshot(DASH, sum).await;
    assert_eq!(s["value"], 6.0, "{s}");

    let metrics = http.metrics().await;
    assert_eq!(
        prometheus_value(&metrics, "rtdash_ingest_late_total"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        prometheus_value(&metrics, "rtdash_ingest_events_total"),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(engine.stats().late, 0);
}
