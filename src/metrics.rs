//! The engine's metrics, through the `metrics` facade: into the recorder the host installed
//! ([`MetricsSink::Host`], the default), or into a private Prometheus recorder per engine
//! ([`MetricsSink::Isolated`]) rendered on demand. Handles are registered once; the gauges
//! and counters read from other parts (hub, transports, window store) are refreshed by the
//! scheduler about once a second and before each isolated render.

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

/// Where an engine's metrics go ([`EngineConfig::metrics`](crate::EngineConfig::metrics)).
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, MemoryStore, MetricsSink};
///
/// // A host that wants this engine's metrics apart from its own.
/// let config = EngineConfig::default().with_metrics(MetricsSink::Isolated);
/// let engine = Engine::new(config, MemoryStore::new())?;
/// let text = engine.render_metrics().expect("an isolated engine renders its metrics");
/// assert!(text.contains("rtdash_ingest_events_total"));
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsSink {
    /// The recorder installed for the `metrics` crate when the engine is built
    /// (`metrics::set_global_recorder`, e.g. by `metrics-exporter-prometheus`'s
    /// `PrometheusBuilder::install_recorder`, or a thread-local one): the library emits,
    /// the application chooses the exporter and serves it. Install the recorder before
    /// building the engine; with none installed the metrics cost next to nothing and go
    /// nowhere. [`Engine::render_metrics`](crate::Engine::render_metrics) returns `None`
    /// and the router's `/metrics` answers `404`.
    #[default]
    Host,
    /// A private Prometheus recorder for this engine only (several engines in one process
    /// stay apart): [`Engine::render_metrics`](crate::Engine::render_metrics) renders it in
    /// the Prometheus text format and the router's `GET /metrics` serves it.
    Isolated,
}

/// The private recorder of a [`MetricsSink::Isolated`] engine.
struct Isolated {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

/// Gauges and counters whose values are read from other parts at refresh time.
struct Mirrored {
    active_connections: Gauge,
    hub_subscribers: Gauge,
    series: Gauge,
    dashboards: Gauge,
    late_buffered: Gauge,
    alerts_firing: Gauge,
    fanout_ratio: Gauge,
    late_dropped: Counter,
    published: Counter,
    delivered: Counter,
    conflated: Counter,
    dropped: Counter,
    evicted: Counter,
    sessions: Counter,
    slow_consumers: Counter,
    frames_sent: Counter,
    auth_failures: Counter,
}

pub(crate) struct Metrics {
    isolated: Option<Isolated>,
    mirrored: Mirrored,
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
    /// Metrics of optional parts (the Redis backplane), registered only when present.
    pub(crate) extra: Vec<Extra>,
}

/// One metric of an optional part, read at each refresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extra {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    /// A counter's total or a gauge's value.
    pub(crate) value: f64,
    pub(crate) counter: bool,
}

/// A counter of an optional part's metrics.
pub(crate) fn counter(name: &'static str, help: &'static str, v: u64) -> Extra {
    #[allow(clippy::cast_precision_loss)]
    let value = v as f64;
    Extra {
        name,
        help,
        value,
        counter: true,
    }
}

/// A gauge of an optional part's metrics.
pub(crate) fn gauge(name: &'static str, help: &'static str, value: f64) -> Extra {
    Extra {
        name,
        help,
        value,
        counter: false,
    }
}

/// The history archive's metrics (`rtdash_history_archive_*`).
pub(crate) fn archive_metrics(h: &crate::history::ArchiveHealth) -> Vec<Extra> {
    #[allow(clippy::cast_precision_loss)]
    let buffered = h.buffered as f64;
    vec![
        gauge(
            "rtdash_history_archive_up",
            "1 while the history archive's last write or connection attempt succeeded.",
            if h.connected { 1.0 } else { 0.0 },
        ),
        gauge(
            "rtdash_history_archive_buffered",
            "Roll-up buckets waiting to be written to the history archive.",
            buffered,
        ),
        counter(
            "rtdash_history_archive_written_total",
            "Roll-up buckets written to the history archive.",
            h.written,
        ),
        counter(
            "rtdash_history_archive_dropped_total",
            "Roll-up buckets the history archive dropped because its buffer was full: the gap in stored history.",
            h.dropped,
        ),
    ]
}

/// What the alert history and its notifications counted, for [`alert_metrics`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AlertCounts {
    pub(crate) records: u64,
    pub(crate) evicted: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) breaker_open: u64,
    pub(crate) dropped: u64,
    pub(crate) silenced: u64,
    pub(crate) save_failures: u64,
}

/// The alert history's metrics (`rtdash_alert_records*`, `rtdash_alert_notifications_*`).
pub(crate) fn alert_metrics(c: &AlertCounts) -> Vec<Extra> {
    #[allow(clippy::cast_precision_loss)]
    let records = c.records as f64;
    vec![
        gauge(
            "rtdash_alert_records",
            "Alert history records held (one per fire).",
            records,
        ),
        counter(
            "rtdash_alert_records_evicted_total",
            "Alert history records pushed out by the bound (EngineConfig::alert_records).",
            c.evicted,
        ),
        counter(
            "rtdash_alert_records_save_failures_total",
            "Failed saves of alert history records to the dashboard store (retried).",
            c.save_failures,
        ),
        counter(
            "rtdash_alert_notifications_delivered_total",
            "Alert notifications (webhooks) the receiver accepted.",
            c.delivered,
        ),
        counter(
            "rtdash_alert_notifications_failed_total",
            "Alert notifications that failed after every attempt, or were refused.",
            c.failed,
        ),
        counter(
            "rtdash_alert_notifications_breaker_open_total",
            "Alert notifications not sent because the receiver's circuit breaker was open.",
            c.breaker_open,
        ),
        counter(
            "rtdash_alert_notifications_dropped_total",
            "Alert notifications not sent because the receiver's queue was full.",
            c.dropped,
        ),
        counter(
            "rtdash_alert_notifications_silenced_total",
            "Alert notifications not sent because the rule was silenced.",
            c.silenced,
        ),
    ]
}

impl Metrics {
    pub(crate) fn new(sink: MetricsSink) -> Self {
        let isolated = match sink {
            MetricsSink::Host => None,
            MetricsSink::Isolated => {
                // `set_buckets` only fails for an empty list.
                let builder = PrometheusBuilder::new()
                    .set_buckets(BUCKETS)
                    .unwrap_or_else(|_| PrometheusBuilder::new());
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                Some(Isolated { recorder, handle })
            }
        };
        let mut built = None;
        with_sink(isolated.as_ref(), |r| built = Some(Self::register(r)));
        // `with_sink` always calls its closure.
        let mut m = built.unwrap_or_else(|| Self::register(&metrics::NoopRecorder));
        m.isolated = isolated;
        m
    }

    /// Describes and registers every fixed metric on `r` (with no isolated recorder).
    fn register(r: &dyn Recorder) -> Self {
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
        r.describe_gauge(
            DASHBOARD_SUBSCRIBERS.into(),
            None,
            "Subscribers of each dashboard's topic.".into(),
        );
        let rejected_by = RejectReason::ALL
            .iter()
            .map(|reason| {
                let key = Key::from_parts(REJECTED_BY, vec![Label::new("reason", reason.as_str())]);
                r.register_counter(&key, &META)
            })
            .collect();
        Self {
            isolated: None,
            mirrored: Mirrored::register(r),
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
        }
    }
}

impl Mirrored {
    fn register(r: &dyn Recorder) -> Self {
        let counter = |name: &'static str, help: &'static str| {
            r.describe_counter(name.into(), None, help.into());
            r.register_counter(&Key::from_static_name(name), &META)
        };
        let gauge = |name: &'static str, help: &'static str| {
            r.describe_gauge(name.into(), None, help.into());
            r.register_gauge(&Key::from_static_name(name), &META)
        };
        Self {
            active_connections: gauge(
                "rtdash_active_connections",
                "WebSocket and SSE connections open now.",
            ),
            hub_subscribers: gauge(
                "rtdash_hub_subscribers",
                "Live hub subscriptions (sessions and in-process subscribers).",
            ),
            series: gauge("rtdash_series", "Series held by the window store."),
            dashboards: gauge("rtdash_dashboards", "Dashboards in the registry."),
            late_buffered: gauge(
                "rtdash_late_buffered",
                "Late events waiting in the side channel (Engine::drain_late).",
            ),
            alerts_firing: gauge("rtdash_alerts_firing", "Alerts firing now."),
            fanout_ratio: gauge(
                "rtdash_fanout_ratio",
                "Messages queued to subscribers per message published (fan-out ratio).",
            ),
            late_dropped: counter(
                "rtdash_late_dropped_total",
                "Late events dropped because the side channel was full.",
            ),
            published: counter(
                "rtdash_fanout_published_total",
                "Messages published to the hub.",
            ),
            delivered: counter(
                "rtdash_fanout_delivered_total",
                "Messages queued to subscribers (one publish to N subscribers counts N).",
            ),
            conflated: counter(
                "rtdash_fanout_conflated_total",
                "Queued messages discarded by conflation (a newer value superseded them).",
            ),
            dropped: counter(
                "rtdash_fanout_dropped_total",
                "Messages discarded by the drop-oldest policy.",
            ),
            evicted: counter(
                "rtdash_fanout_evicted_total",
                "Subscribers evicted as slow consumers by the disconnect policy.",
            ),
            sessions: counter(
                "rtdash_transport_sessions_total",
                "WebSocket and SSE sessions started.",
            ),
            slow_consumers: counter(
                "rtdash_transport_slow_consumers_total",
                "Sessions closed as slow consumers (eviction or write timeout).",
            ),
            frames_sent: counter(
                "rtdash_transport_frames_sent_total",
                "Frames written to clients.",
            ),
            auth_failures: counter(
                "rtdash_transport_auth_failures_total",
                "Sessions refused because authentication failed.",
            ),
        }
    }
}

impl Metrics {
    pub(crate) fn reject(&self, reason: RejectReason) {
        // `ALL` lists the variants in declaration order.
        if let Some(c) = self.rejected_by.get(reason as usize) {
            c.increment(1);
        }
    }

    pub(crate) fn upkeep(&self) {
        if let Some(i) = &self.isolated {
            i.handle.run_upkeep();
        }
    }

    /// Sets the mirrored gauges and counters from `s`.
    pub(crate) fn refresh(&self, s: &Scrape) {
        #[allow(clippy::cast_precision_loss)]
        let f = |v: u64| v as f64;
        let m = &self.mirrored;
        m.active_connections.set(f(s.active_connections));
        m.hub_subscribers.set(f(s.hub_subscribers));
        m.series.set(f(s.series));
        m.dashboards.set(f(s.dashboards));
        m.late_buffered.set(f(s.late_buffered));
        m.alerts_firing.set(f(s.firing_alerts));
        let ratio = if s.published == 0 {
            0.0
        } else {
            f(s.delivered) / f(s.published)
        };
        m.fanout_ratio.set(ratio);
        m.late_dropped.absolute(s.late_dropped);
        m.published.absolute(s.published);
        m.delivered.absolute(s.delivered);
        m.conflated.absolute(s.conflated);
        m.dropped.absolute(s.dropped);
        m.evicted.absolute(s.evicted);
        m.sessions.absolute(s.sessions);
        m.slow_consumers.absolute(s.slow_consumers);
        m.frames_sent.absolute(s.frames_sent);
        m.auth_failures.absolute(s.auth_failures);
        with_sink(self.isolated.as_ref(), |r| {
            for (id, n) in &s.per_dashboard {
                let key = Key::from_parts(
                    DASHBOARD_SUBSCRIBERS,
                    vec![Label::new("dashboard", id.clone())],
                );
                r.register_gauge(&key, &META).set(f(*n));
            }
            for e in &s.extra {
                let key = Key::from_static_name(e.name);
                if e.counter {
                    r.describe_counter(e.name.into(), None, e.help.into());
                    // Counters hold whole numbers; `value` came from a `u64`.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    r.register_counter(&key, &META).absolute(e.value as u64);
                } else {
                    r.describe_gauge(e.name.into(), None, e.help.into());
                    r.register_gauge(&key, &META).set(e.value);
                }
            }
        });
    }

    /// Whether the metrics go to a private recorder.
    pub(crate) fn is_isolated(&self) -> bool {
        self.isolated.is_some()
    }

    /// The Prometheus text of an isolated engine's recorder (after [`refresh`](Self::refresh)),
    /// `None` when the metrics go to the host's recorder.
    pub(crate) fn render(&self) -> Option<String> {
        self.isolated.as_ref().map(|i| i.handle.render())
    }
}

/// The per-dashboard subscriber gauge (labelled `dashboard`).
const DASHBOARD_SUBSCRIBERS: &str = "rtdash_dashboard_subscribers";

/// Runs `f` with the isolated recorder, or else with the recorder the `metrics` crate
/// currently has installed (a no-op one when none is).
fn with_sink(isolated: Option<&Isolated>, f: impl FnOnce(&dyn Recorder)) {
    match isolated {
        Some(i) => f(&i.recorder),
        None => metrics::with_recorder(f),
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
    pub(crate) fn new(sink: MetricsSink) -> Self {
        Self {
            metrics: Metrics::new(sink),
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
