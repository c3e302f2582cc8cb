//! The ingest seam: the engine works against an ingest log written here that buffers
//! batches (as a durable log stores them) and hands them to the engine's recorder later,
//! with their source positions; and against a log that must wait, which the synchronous
//! API refuses and `POST /ingest` awaits.

mod common;

use std::sync::{Arc, Mutex};

use common::{batch, dashboard, t, widget};
use futures::future::BoxFuture;
use rtdash::core::BorrowedBatch;
use rtdash::ingest::{IngestLog, Recorder, SourcePosition};
use rtdash::{Aggregation, Engine, EngineConfig, Error, IngestReport, MetricEvent};

/// Stores the valid events of each batch as one entry; `flush` hands the entries to the
/// recorder in order, each with the offset just past it.
#[derive(Default)]
struct Buffering {
    entries: Mutex<Vec<Vec<MetricEvent>>>,
    flushed: Mutex<usize>,
}

impl IngestLog for Buffering {
    fn name(&self) -> &str {
        "buffering"
    }

    fn append<'a>(
        &'a self,
        batch: &'a BorrowedBatch<'a>,
        _recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let events: Vec<MetricEvent> = batch.items.iter().map(|i| batch.to_event(i)).collect();
        report.accepted += events.len();
        self.entries.lock().unwrap().push(events);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Buffering {
    /// Records every entry not yet recorded; returns how many.
    fn flush(&self, recorder: &Recorder) -> IngestReport {
        let entries = self.entries.lock().unwrap();
        let mut flushed = self.flushed.lock().unwrap();
        let mut report = IngestReport::default();
        for (i, events) in entries.iter().enumerate().skip(*flushed) {
            let batch = BorrowedBatch::from_events(events.iter().cloned());
            let offset = (i + 1).to_string();
            recorder.record(
                &batch,
                Some(SourcePosition {
                    source: "buffer:0",
                    offset: &offset,
                }),
                &mut report,
            );
        }
        *flushed = entries.len();
        report
    }
}

#[test]
fn a_buffering_log_defers_recording_and_the_recorder_keeps_its_positions() {
    let log = Arc::new(Buffering::default());
    let engine = Engine::builder(EngineConfig::default())
        .ingest_log(Arc::clone(&log))
        .build()
        .unwrap();
    let w = widget("ops", "req", Aggregation::Sum, 60, 1.0, 0);
    let wid = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();

    // Appended (one bad element refused by validation up front), not yet recorded.
    let body = br#"[{"metric_name":"req","value":2,"event_time":1700000000000},
                    {"metric_name":"req","value":"x","event_time":1700000000000},
                    {"metric_name":"req","value":3,"event_time":1699999999000}]"#;
    let r = engine.ingest_json_at(body, t(0)).unwrap();
    assert_eq!((r.accepted, r.rejected), (2, 1));
    assert_eq!(r.errors[0].index, 1);
    assert_eq!(engine.window_stats().accepted, 0);
    // Nothing recorded yet: the sum over no events is 0.
    let before = engine.widget_value_at("ops", wid, t(100)).unwrap();
    assert_eq!((before.value, before.count), (Some(0.0), 0));
    engine
        .ingest_json_at(&batch(&[("req", 10.0, 500)]), t(500))
        .unwrap();

    // The consumer records both entries, in order, with their offsets.
    let flushed = log.flush(engine.recorder());
    assert_eq!((flushed.accepted, flushed.late), (3, 0));
    assert_eq!(engine.window_stats().accepted, 3);
    assert_eq!(
        engine.widget_value_at("ops", wid, t(600)).unwrap().value,
        Some(15.0)
    );
    let positions = engine.recorder().positions();
    assert_eq!(positions.get("buffer:0").map(String::as_str), Some("2"));
    // The checkpoint carries the position with the state it covers.
    let cp = engine.checkpoint();
    assert_eq!(cp.positions(), &positions);
    // Nothing is recorded twice.
    let again = log.flush(engine.recorder());
    assert_eq!(again.accepted, 0);
    assert_eq!(engine.window_stats().accepted, 3);
}

/// A log that answers only after a round trip to the runtime, as a remote log does.
struct Waiting;

impl IngestLog for Waiting {
    fn name(&self) -> &str {
        "waiting"
    }

    fn append<'a>(
        &'a self,
        batch: &'a BorrowedBatch<'a>,
        recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            recorder.record(batch, None, report);
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_waiting_log_is_refused_by_the_sync_api_and_awaited_by_post_ingest() {
    let engine = Engine::builder(EngineConfig::default())
        .ingest_log(Waiting)
        .build()
        .unwrap();
    let now = rtdash::Timestamp::now().as_millis();
    let body = format!(r#"[{{"metric_name":"req","value":2,"event_time":{now}}}]"#);

    // The synchronous API cannot wait: a clear error, nothing recorded.
    let err = engine.ingest_json(body.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::IngestLogPending { ref log } if log == "waiting"));
    assert!(err.to_string().contains("submit_json"), "{err}");
    assert_eq!(engine.window_stats().accepted, 0);

    // The async API and the HTTP route await the log.
    let r = engine.submit_json(body.as_bytes()).await.unwrap();
    assert_eq!(r.accepted, 1);
    assert_eq!(engine.window_stats().accepted, 1);
    #[cfg(feature = "http")]
    {
        let http = common::Http::start(engine.clone()).await;
        let body_json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (status, json) = http.post("/ingest", &body_json).await;
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["accepted"], 1);
        assert_eq!(engine.window_stats().accepted, 2);
    }
}
