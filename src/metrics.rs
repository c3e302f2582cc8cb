//! The engine's Prometheus metrics: one recorder per engine (no global recorder), handles
//! registered once, rendered on demand.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Histogram buckets (seconds) for latencies from 100 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Why an event was refused: the `reason` label of `rtdash_events_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RejectReason {
    /// `event_time` more than `max_future_skew` ahead of the server's clock.
    Future,
    /// `event_time` more than `max_age` behind the server's clock.
    TooOld,
    /// `event_time` missing, of the wrong type, or out of range.
    EventTime,
    /// `metric_name` missing or invalid.
    MetricName,
    /// `value` missing, not a number, or not finite.
    Value,
    /// Too many tags, or a bad tag key or value.
    Tags,
    /// A bad event `id`.
    Id,
    /// The window store refused the series (e.g. its series limit).
    Series,
    /// The element is not an event object (or has an unknown or repeated field).
    Malformed,
}

impl RejectReason {
    /// Every reason, in declaration order (the order the counters are registered).
    const ALL: [Self; 9] = [
        Self::Future,
        Self::TooOld,
        Self::EventTime,
        Self::MetricName,
        Self::Value,
        Self::Tags,
        Self::Id,
        Self::Series,
        Self::Malformed,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Future => "future",
            Self::TooOld => "too_old",
            Self::EventTime => "event_time",
            Self::MetricName => "metric_name",
            Self::Value => "value",
            Self::Tags => "tags",
            Self::Id => "id",
            Self::Series => "series",
            Self::Malformed => "malformed",
        }
    }

    /// The reason of a refusal reported as `field: message` (an [`IngestError`]).
    ///
    /// The two time limits share the field `event_time`; rtdash-core's messages name the
    /// limit broken, `(max_future_skew)` or `(max_age)` (a unit test below pins this).
    ///
    /// [`IngestError`]: crate::IngestError
    pub(crate) fn of(field: &str, message: &str) -> Self {
        match field {
            "event_time" if message.contains("(max_future_skew)") => Self::Future,
            "event_time" if message.contains("(max_age)") => Self::TooOld,
            "event_time" => Self::EventTime,
            "metric_name" => Self::MetricName,
            "value" => Self::Value,
            "id" => Self::Id,
            "series" => Self::Series,
            f if f == "tags" || f.starts_with("tags[") => Self::Tags,
            _ => Self::Malformed,
        }
    }
}

pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pub(crate) accepted: Counter,
    pub(crate) rejected: Counter,
    /// `rtdash_events_rejected_total{reason}`, in the order of [`RejectReason::ALL`].
    rejected_by: Vec<Counter>,
    pub(crate) late: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) batches: Counter,
    pub(crate) aggregation: Histogram,
    pub(crate) tick: Histogram,
    pub(crate) push_latency: Histogram,
    pub(crate) publish_latency: Histogram,
    pub(crate) widget_evaluations: Counter,
    pub(crate) query_evaluations: Counter,
    pub(crate) frames_published: Counter,
    pub(crate) alerts_firing: Counter,
    pub(crate) alerts_resolved: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Values read from the other parts at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) active_connections: u64,
    pub(crate) sessions: u64,
    pub(crate) slow_consumers: u64,
    pub(crate) frames_sent: u64,
    pub(crate) auth_failures: u64,
    pub(crate) published: u64,
    pub(crate) delivered: u64,
    pub(crate) conflated: u64,
    pub(crate) dropped: u64,
    pub(crate) evicted: u64,
    pub(crate) hub_subscribers: u64,
    pub(crate) per_dashboard: Vec<(String, u64)>,
    pub(crate) series: u64,
    pub(crate) late_dropped: u64,
    pub(crate) late_buffered: u64,
    pub(crate) dashboards: u64,
    pub(crate) firing_alerts: u64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        // `set_buckets` only fails for an empty list.
        let builder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let r = &recorder;
        let counter = |name: &'static str, help: &'static str| {
            r.describe_counter(name.into(), None, help.into());
            r.register_counter(&Key::from_static_name(name), &META)
        };
        let seconds = |name: &'static str, help: &'static str| {
            r.describe_histogram(name.into(), Some(Unit::Seconds), help.into());
            r.register_histogram(&Key::from_static_name(name), &META)
        };
        const REJECTED_BY: &str = "rtdash_events_rejected_total";
        r.describe_counter(
            REJECTED_BY.into(),
            None,
            "Events refused, by reason: future (event_time more than max_future_skew ahead of \
             the server's clock), too_old (more than max_age behind), event_time (missing or \
             not a valid time), metric_name, value, tags, id, series (refused by the window \
             store, e.g. its series limit), malformed (not an event object)."
                .into(),
        );
        let rejected_by = RejectReason::ALL
            .iter()
            .map(|reason| {
                let key = Key::from_parts(REJECTED_BY, vec![Label::new("reason", reason.as_str())]);
                r.register_counter(&key, &META)
            })
            .collect();
        Self {
            rejected_by,
            accepted: counter(
                "rtdash_ingest_events_total",
                "Events accepted into the window store (the ingest rate is its rate()).",
            ),
            rejected: counter(
                "rtdash_ingest_rejected_total",
                "Events refused by validation (each named in the ingest response); by reason in \
                 rtdash_events_rejected_total.",
            ),
            late: counter(
                "rtdash_ingest_late_total",
                "Events later than the grace period, sent to the late side channel.",
            ),
            duplicates: counter(
                "rtdash_ingest_duplicate_total",
                "Events dropped because their id was seen before.",
            ),
            batches: counter("rtdash_ingest_batches_total", "JSON batches ingested."),
            aggregation: seconds(
                "rtdash_aggregation_seconds",
                "Time to compute one widget query (metric, filter, aggregation, window).",
            ),
            tick: seconds(
                "rtdash_scheduler_tick_seconds",
                "Time of one refresh scheduler tick that evaluated widgets.",
            ),
            push_latency: seconds(
                "rtdash_push_latency_seconds",
                "Event time of the newest fresh event in an update frame to the frame's write to \
                 a client's socket (WebSocket and SSE sessions of Engine::transport and the \
                 HTTP router), once per client.",
            ),
            publish_latency: seconds(
                "rtdash_publish_latency_seconds",
                "Event time of the newest event in a value to the value's frame being published \
                 to subscribers' queues.",
            ),
            widget_evaluations: counter(
                "rtdash_widget_evaluations_total",
                "Widget evaluations by the refresh scheduler.",
            ),
            query_evaluations: counter(
                "rtdash_query_evaluations_total",
                "Window queries computed (widgets sharing a query share one computation).",
            ),
            frames_published: counter(
                "rtdash_frames_published_total",
                "Update and alert frames published to the hub (each encoded once).",
            ),
            alerts_firing: counter("rtdash_alerts_fired_total", "Alerts that started firing."),
            alerts_resolved: counter("rtdash_alerts_resolved_total", "Alerts that resolved."),
            recorder,
            handle,
        }
    }

    /// Counts one event refused for `reason`.
    pub(crate) fn reject(&self, reason: RejectReason) {
        // `ALL` lists the variants in declaration order.
        if let Some(c) = self.rejected_by.get(reason as usize) {
            c.increment(1);
        }
    }

    fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.recorder.describe_gauge(name.into(), None, help.into());
        self.recorder
            .register_gauge(&Key::from_static_name(name), &META)
    }

    fn absolute(&self, name: &'static str, help: &'static str, value: u64) {
        self.recorder
            .describe_counter(name.into(), None, help.into());
        self.recorder
            .register_counter(&Key::from_static_name(name), &META)
            .absolute(value);
    }

    /// Drains recorded histogram samples into their distributions (bounded memory).
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    pub(crate) fn render(&self, s: &Scrape) -> String {
        #[allow(clippy::cast_precision_loss)]
        let f = |v: u64| v as f64;
        self.gauge(
            "rtdash_active_connections",
            "WebSocket and SSE connections open now.",
        )
        .set(f(s.active_connections));
        self.gauge(
            "rtdash_hub_subscribers",
            "Live hub subscriptions (sessions and in-process subscribers).",
        )
        .set(f(s.hub_subscribers));
        self.recorder.describe_gauge(
            "rtdash_dashboard_subscribers".into(),
            None,
            "Subscribers of each dashboard's topic.".into(),
        );
        for (id, n) in &s.per_dashboard {
            let key = Key::from_parts(
                "rtdash_dashboard_subscribers",
                vec![Label::new("dashboard", id.clone())],
            );
            self.recorder.register_gauge(&key, &META).set(f(*n));
        }
        self.gauge("rtdash_series", "Series held by the window store.")
            .set(f(s.series));
        self.gauge("rtdash_dashboards", "Dashboards in the registry.")
            .set(f(s.dashboards));
        self.gauge(
            "rtdash_late_buffered",
            "Late events waiting in the side channel (Engine::drain_late).",
        )
        .set(f(s.late_buffered));
        self.gauge("rtdash_alerts_firing", "Alerts firing now.")
            .set(f(s.firing_alerts));
        let ratio = if s.published == 0 {
            0.0
        } else {
            f(s.delivered) / f(s.published)
        };
        self.gauge(
            "rtdash_fanout_ratio",
            "Messages queued to subscribers per message published (fan-out ratio).",
        )
        .set(ratio);
        self.absolute(
            "rtdash_late_dropped_total",
            "Late events dropped because the side channel was full.",
            s.late_dropped,
        );
        self.absolute(
            "rtdash_fanout_published_total",
            "Messages published to the hub.",
            s.published,
        );
        self.absolute(
            "rtdash_fanout_delivered_total",
            "Messages queued to subscribers (one publish to N subscribers counts N).",
            s.delivered,
        );
        self.absolute(
            "rtdash_fanout_conflated_total",
            "Queued messages discarded by conflation (a newer value superseded them).",
            s.conflated,
        );
        self.absolute(
            "rtdash_fanout_dropped_total",
            "Messages discarded by the drop-oldest policy.",
            s.dropped,
        );
        self.absolute(
            "rtdash_fanout_evicted_total",
            "Subscribers evicted as slow consumers by the disconnect policy.",
            s.evicted,
        );
        self.absolute(
            "rtdash_transport_sessions_total",
            "WebSocket and SSE sessions started.",
            s.sessions,
        );
        self.absolute(
            "rtdash_transport_slow_consumers_total",
            "Sessions closed as slow consumers (eviction or write timeout).",
            s.slow_consumers,
        );
        self.absolute(
            "rtdash_transport_frames_sent_total",
            "Frames written to clients.",
            s.frames_sent,
        );
        self.absolute(
            "rtdash_transport_auth_failures_total",
            "Sessions refused because authentication failed.",
            s.auth_failures,
        );
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtdash_core::{CoreError, MetricEvent, Timestamp, ValidationLimits, decode_batch};

    use super::RejectReason;

    /// The reason of rtdash-core's own error for `event`.
    fn reason(event: &MetricEvent, limits: &ValidationLimits, now: Timestamp) -> RejectReason {
        match event.validate(limits, now) {
            Err(CoreError::InvalidEvent { field, reason }) => RejectReason::of(&field, &reason),
            other => panic!("expected an invalid event, got {other:?}"),
        }
    }

    #[test]
    fn reasons_follow_the_core_messages() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let limits = ValidationLimits::default().with_max_age(Some(Duration::from_secs(60)));
        let at = |ms: i64| Timestamp::from_millis(now.as_millis() + ms);
        assert_eq!(
            reason(&MetricEvent::new("a", 1.0, at(3_600_000)), &limits, now),
            RejectReason::Future
        );
        assert_eq!(
            reason(&MetricEvent::new("a", 1.0, at(-3_600_000)), &limits, now),
            RejectReason::TooOld
        );
        assert_eq!(
            reason(&MetricEvent::new("a", f64::NAN, now), &limits, now),
            RejectReason::Value
        );
        assert_eq!(
            reason(&MetricEvent::new("a b", 1.0, now), &limits, now),
            RejectReason::MetricName
        );
        assert_eq!(
            reason(
                &MetricEvent::new("a", 1.0, now).with_tag("b c", "d"),
                &limits,
                now
            ),
            RejectReason::Tags
        );
        // Elements of a batch the decoder refuses.
        let body = br#"[7, {"metric_name": "a", "value": 1, "event_time": "yesterday"},
            {"metric_name": "a", "value": 1, "event_time": 1700000000000, "id": ""},
            {"metric_name": "a", "value": 1, "event_time": 1700000000000, "extra": 1}]"#;
        let batch = decode_batch(body, &limits, now).unwrap();
        let reasons: Vec<_> = batch
            .rejected
            .iter()
            .map(|r| match &r.error {
                CoreError::InvalidEvent { field, reason } => RejectReason::of(field, reason),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                RejectReason::Malformed,
                RejectReason::EventTime,
                RejectReason::Id,
                RejectReason::Malformed
            ]
        );
        assert_eq!(
            RejectReason::of("series", "too many series"),
            RejectReason::Series
        );
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in declaration order");
        }
    }
}

/// The engine's cumulative counters ([`EngineStats`](crate::EngineStats)) beside the
/// Prometheus handles: what ingest and the refresh tick count.
#[derive(Debug)]
pub(crate) struct Meters {
    pub(crate) metrics: Metrics,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) widget_evaluations: AtomicU64,
    pub(crate) query_evaluations: AtomicU64,
    pub(crate) frames: AtomicU64,
}

impl Meters {
    pub(crate) fn new() -> Self {
        Self {
            metrics: Metrics::new(),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            late: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            widget_evaluations: AtomicU64::new(0),
            query_evaluations: AtomicU64::new(0),
            frames: AtomicU64::new(0),
        }
    }

    /// Counts the outcome of an ingest step (validation or recording).
    pub(crate) fn count(&self, report: &crate::IngestReport) {
        let add = |c: &AtomicU64, n: usize| {
            if n > 0 {
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
        };
        add(&self.accepted, report.accepted);
        add(&self.rejected, report.rejected);
        add(&self.late, report.late);
        add(&self.duplicates, report.duplicates);
        let m = &self.metrics;
        m.accepted.increment(report.accepted as u64);
        m.rejected.increment(report.rejected as u64);
        m.late.increment(report.late as u64);
        m.duplicates.increment(report.duplicates as u64);
        for e in &report.errors {
            m.reject(RejectReason::of(&e.field, &e.message));
        }
    }

    /// The counters now.
    pub(crate) fn stats(&self) -> crate::EngineStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::EngineStats {
            accepted: l(&self.accepted),
            rejected: l(&self.rejected),
            late: l(&self.late),
            duplicates: l(&self.duplicates),
            widget_evaluations: l(&self.widget_evaluations),
            query_evaluations: l(&self.query_evaluations),
            frames_published: l(&self.frames),
        }
    }

    /// Sets the ingest counters (a restored checkpoint's).
    pub(crate) fn restore_ingest(&self, c: &crate::checkpoint::Counters) {
        self.accepted.store(c.accepted, Ordering::Relaxed);
        self.rejected.store(c.rejected, Ordering::Relaxed);
        self.late.store(c.late, Ordering::Relaxed);
        self.duplicates.store(c.duplicates, Ordering::Relaxed);
    }
}
