//! [`Engine`]: the pipeline ingest → window store → widget refresh → hub.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rtdash_core::{
    BorrowedBatch as Batch, BorrowedEvent as Item, EventId, MetricEvent, Timestamp, Uuid,
    decode_batch_borrowed,
};
use rtdash_fanout::Subscription;
use rtdash_transport::{Authenticator, Frame, FrameHub, Topic, Transport, TransportConfig};
use rtdash_window::{Recorded, WindowStats, WindowStore};

use crate::metrics::{Metrics, RejectReason, Scrape};
use crate::scheduler::{QuerySpec, Scheduler, StateInput, stale_limit, state_of};
use crate::{
    AlertEvent, AlertState, DashboardStore, EngineConfig, EngineStats, Error, IngestError,
    IngestOutcome, IngestReport, LateEvent, Registry, TickReport, WidgetKey, WidgetState,
};

/// The pipeline every host needs, in one cheap-to-clone handle: validate and ingest metric
/// events into the window store, keep the dashboards ([`Registry`]), evaluate every widget
/// at its refresh interval, publish changed values (and alerts) to the [`hub`](Self::hub)
/// that WebSocket and SSE sessions read, and export Prometheus metrics.
///
/// See the [crate documentation](crate) for the path of one event and an example.
///
/// Thread-safe: ingest from many tasks at once (each call or batch takes the window
/// store's lock once); the scheduler runs in one task ([`run`](Self::run)) or is stepped
/// by hand ([`tick`](Self::tick)).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dashboards", &self.inner.registry.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    store: RwLock<WindowStore>,
    pub(crate) registry: Registry,
    pub(crate) hub: FrameHub<WidgetKey>,
    scheduler: Mutex<Scheduler>,
    pub(crate) health: Health,
    alerts: Mutex<AlertLog>,
    dedup: Mutex<Dedup>,
    pub(crate) metrics: Metrics,
    pub(crate) counters: Counters,
    transports: Mutex<Vec<Transport<WidgetKey>>>,
}

/// Which sources are marked unhealthy.
#[derive(Debug, Default)]
pub(crate) struct Health {
    all: AtomicBool,
    any_metric: AtomicBool,
    metrics: RwLock<HashSet<String>>,
}

impl Health {
    pub(crate) fn is_unhealthy(&self, metric: &str) -> bool {
        self.all.load(Ordering::Acquire)
            || (self.any_metric.load(Ordering::Acquire)
                && self
                    .metrics
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(metric))
    }
}

#[derive(Debug, Default)]
struct AlertLog {
    history: VecDeque<AlertEvent>,
    firing: BTreeMap<(String, Uuid), AlertEvent>,
}

/// Recently seen event ids (bounded, oldest forgotten first).
#[derive(Debug, Default)]
struct Dedup {
    seen: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl Dedup {
    fn contains(&self, id: &EventId) -> bool {
        self.seen.contains(id)
    }

    fn insert(&mut self, id: EventId, capacity: usize) {
        if self.seen.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > capacity {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    late: AtomicU64,
    duplicates: AtomicU64,
    widget_evaluations: AtomicU64,
    query_evaluations: AtomicU64,
    frames: AtomicU64,
}

impl Counters {
    pub(crate) fn add_evaluations(&self, widgets: usize, queries: usize) {
        self.widget_evaluations
            .fetch_add(widgets as u64, Ordering::Relaxed);
        self.query_evaluations
            .fetch_add(queries as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_frames(&self, n: usize) {
        self.frames.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Inner {
    pub(crate) fn read_store(&self) -> RwLockReadGuard<'_, WindowStore> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_store(&self) -> RwLockWriteGuard<'_, WindowStore> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record_alerts(&self, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        let mut log = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        for a in events {
            let key = (a.dashboard_id.clone(), a.rule_id);
            match a.state {
                AlertState::Firing => {
                    log.firing.insert(key, a.clone());
                }
                AlertState::Resolved => {
                    log.firing.remove(&key);
                }
            }
            log.history.push_back(a.clone());
        }
        let cap = self.config.alert_history;
        while log.history.len() > cap {
            log.history.pop_front();
        }
    }

    fn count(&self, report: &IngestReport) {
        let c = &self.counters;
        c.accepted
            .fetch_add(report.accepted as u64, Ordering::Relaxed);
        c.rejected
            .fetch_add(report.rejected as u64, Ordering::Relaxed);
        c.late.fetch_add(report.late as u64, Ordering::Relaxed);
        c.duplicates
            .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        let m = &self.metrics;
        m.accepted.increment(report.accepted as u64);
        m.rejected.increment(report.rejected as u64);
        m.late.increment(report.late as u64);
        m.duplicates.increment(report.duplicates as u64);
        for e in &report.errors {
            m.reject(RejectReason::of(&e.field, &e.message));
        }
    }

    /// Records the valid events of `batch` in order under one lock of the window store,
    /// dropping replays (a known event id) and reporting store refusals by index.
    fn record_all(&self, batch: &Batch<'_>, report: &mut IngestReport) {
        let cap = self.config.dedup_capacity;
        let mut store = self.write_store();
        let mut dedup = (cap > 0)
            .then(|| {
                batch.items.iter().any(|it| match it {
                    Item::Borrowed { id, .. } => id.is_some(),
                    Item::Owned { event, .. } => event.id.is_some(),
                })
            })
            .filter(|&any| any)
            .map(|_| self.dedup.lock().unwrap_or_else(PoisonError::into_inner));
        for item in &batch.items {
            let (index, id) = match item {
                Item::Borrowed { index, id, .. } => {
                    (*index, id.and_then(|id| EventId::new(id).ok()))
                }
                Item::Owned { index, event } => (*index, event.id.clone()),
            };
            if let (Some(d), Some(id)) = (dedup.as_deref(), &id)
                && d.contains(id)
            {
                report.duplicates += 1;
                continue;
            }
            let recorded = match item {
                Item::Borrowed {
                    metric,
                    tags,
                    event_time,
                    value,
                    ..
                } => store
                    .series_id(metric, batch.tags(tags.clone()).iter().copied())
                    .and_then(|series| store.record(series, *event_time, *value)),
                Item::Owned { event, .. } => store.record_event(event),
            };
            match recorded {
                Ok(r) => {
                    match r {
                        Recorded::Accepted => report.accepted += 1,
                        _ => report.late += 1,
                    }
                    if let (Some(d), Some(id)) = (dedup.as_deref_mut(), id) {
                        d.insert(id, cap);
                    }
                }
                Err(e) => {
                    let err = Error::from_window_record(&e);
                    let field = match &err {
                        Error::InvalidEvent { field, .. } => field.clone(),
                        _ => "event".to_owned(),
                    };
                    report.rejected += 1;
                    report.errors.push(IngestError {
                        index,
                        field,
                        message: err.to_string(),
                    });
                }
            }
        }
    }
}

impl Engine {
    /// Creates an engine and loads the dashboards of `store` into its
    /// [`Registry`] (documents that cannot be loaded are skipped and reported by
    /// [`Registry::load_problems`]).
    ///
    /// Nothing runs yet: call [`run`](Self::run) (or [`tick`](Self::tick)) to refresh
    /// widgets.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (see [`EngineConfig::validate`]); [`Error::Store`] when the
    /// store cannot be read at all.
    pub fn new(config: EngineConfig, store: impl DashboardStore) -> Result<Self, Error> {
        config.validate()?;
        let window = WindowStore::new(config.window.clone()).map_err(|e| Error::InvalidConfig {
            field: "window",
            reason: e.to_string(),
        })?;
        let hub: FrameHub<WidgetKey> = FrameHub::new(config.hub);
        let registry = Registry::load(Box::new(store), config.schema.clone(), hub.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                store: RwLock::new(window),
                registry,
                hub,
                scheduler: Mutex::new(Scheduler::default()),
                health: Health::default(),
                alerts: Mutex::new(AlertLog::default()),
                dedup: Mutex::new(Dedup::default()),
                metrics: Metrics::new(),
                counters: Counters::default(),
                transports: Mutex::new(Vec::new()),
                config,
            }),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Validates one event (against the current time) and records it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`] naming the field (the event is counted as rejected).
    pub fn ingest(&self, event: MetricEvent) -> Result<IngestOutcome, Error> {
        self.ingest_at(event, Timestamp::now())
    }

    /// [`ingest`](Self::ingest) with the current time passed in (for tests and replays).
    ///
    /// # Errors
    ///
    /// As [`ingest`](Self::ingest).
    pub fn ingest_at(&self, event: MetricEvent, now: Timestamp) -> Result<IngestOutcome, Error> {
        let mut report = IngestReport::default();
        if let Err(e) = event.validate(&self.inner.config.validation, now) {
            let e = Error::from_core(e, "event");
            let (field, message) = match &e {
                Error::InvalidEvent { field, reason } => (field.clone(), reason.clone()),
                other => ("event".to_owned(), other.to_string()),
            };
            report.rejected = 1;
            report.errors.push(IngestError {
                index: 0,
                field,
                message,
            });
            self.inner.count(&report);
            return Err(e);
        }
        let late_before = self.inner.read_store().stats().late_dropped;
        let batch = Batch {
            items: vec![Item::Owned { index: 0, event }],
            ..Batch::default()
        };
        self.inner.record_all(&batch, &mut report);
        self.inner.count(&report);
        if let Some(e) = report.errors.pop() {
            return Err(Error::InvalidEvent {
                field: e.field,
                reason: e.message,
            });
        }
        Ok(if report.duplicates > 0 {
            IngestOutcome::Duplicate
        } else if report.late > 0 {
            if self.inner.read_store().stats().late_dropped > late_before {
                IngestOutcome::LateDropped
            } else {
                IngestOutcome::Late
            }
        } else {
            IngestOutcome::Accepted
        })
    }

    /// Decodes a JSON batch (an array of events, or one event object), validates every
    /// element against the current time, and records the valid ones under one lock of the
    /// window store. A bad element never spoils the others: it is reported with its index
    /// in [`IngestReport::errors`].
    ///
    /// # Errors
    ///
    /// Only when the body as a whole is unusable: [`Error::PayloadTooLarge`] (over
    /// [`max_body_bytes`](EngineConfig::max_body_bytes)), [`Error::MalformedJson`] (syntax
    /// error, truncated or empty), [`Error::WrongShape`] (not an array or object).
    pub fn ingest_json(&self, body: &[u8]) -> Result<IngestReport, Error> {
        self.ingest_json_at(body, Timestamp::now())
    }

    /// [`ingest_json`](Self::ingest_json) with the current time passed in.
    ///
    /// # Errors
    ///
    /// As [`ingest_json`](Self::ingest_json).
    pub fn ingest_json_at(&self, body: &[u8], now: Timestamp) -> Result<IngestReport, Error> {
        let limit = self.inner.config.max_body_bytes;
        if body.len() > limit {
            return Err(Error::PayloadTooLarge {
                size: body.len(),
                limit,
            });
        }
        let batch = decode_batch_borrowed(body, &self.inner.config.validation, now)
            .map_err(|e| Error::from_core(e, "event"))?;
        let mut report = IngestReport::default();
        self.inner.record_all(&batch, &mut report);
        report.rejected += batch.rejected.len();
        report.errors.extend(batch.rejected.into_iter().map(|r| {
            let field = match &r.error {
                rtdash_core::CoreError::InvalidEvent { field, .. } => field.clone(),
                _ => "event".to_owned(),
            };
            IngestError {
                index: r.index,
                field,
                message: r.error.to_string(),
            }
        }));
        report.errors.sort_by_key(|e| e.index);
        self.inner.count(&report);
        self.inner.metrics.batches.increment(1);
        Ok(report)
    }

    /// The dashboards.
    #[must_use]
    pub fn dashboards(&self) -> &Registry {
        &self.inner.registry
    }

    /// The hub the scheduler publishes to: one topic per dashboard (its id), keyed by
    /// [`WidgetKey`], carrying encoded [`Frame`]s. Transports subscribe here.
    #[must_use]
    pub fn hub(&self) -> &FrameHub<WidgetKey> {
        &self.inner.hub
    }

    /// The hub topic of a dashboard id.
    #[must_use]
    pub fn topic(&self, dashboard: &str) -> Topic {
        self.inner.registry.topic(dashboard)
    }

    /// Subscribes to dashboard `dashboard` in-process, with
    /// [`EngineConfig::policy`]: the subscription first receives a snapshot of the current
    /// values (the newest frame per widget and alert rule), then every update frame.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`].
    pub fn subscribe(
        &self,
        dashboard: &str,
    ) -> Result<Subscription<Topic, WidgetKey, Frame>, Error> {
        self.inner.registry.get(dashboard)?;
        let sub = self.inner.hub.subscribe(self.inner.config.policy);
        sub.subscribe(self.topic(dashboard))
            .map_err(|e| Error::InvalidConfig {
                field: "hub",
                reason: e.to_string(),
            })?;
        Ok(sub)
    }

    /// A WebSocket/SSE transport over this engine's hub (see rtdash-transport), whose
    /// connection counters are included in [`render_metrics`](Self::render_metrics) and
    /// which [`close_sessions`](Self::close_sessions) shuts down. The HTTP router creates
    /// one; create your own to serve WebSocket on another listener
    /// (`rtdash::transport::serve`).
    #[must_use]
    pub fn transport(
        &self,
        authenticator: impl Authenticator,
        config: TransportConfig,
    ) -> Transport<WidgetKey> {
        let t = Transport::new(self.inner.hub.clone(), authenticator, config);
        let push_latency = self.inner.metrics.push_latency.clone();
        t.observe_write_latency(move |d| push_latency.record(d.as_secs_f64()));
        self.inner
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(t.clone());
        t
    }

    /// Gracefully closes every WebSocket and SSE session of the transports made by
    /// [`transport`](Self::transport) (close code 1001, so clients reconnect elsewhere),
    /// waiting up to their `shutdown_timeout`. Call it when the server shuts down: axum's
    /// graceful shutdown does not track upgraded connections.
    pub async fn close_sessions(&self) {
        let transports: Vec<_> = self
            .inner
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        futures::future::join_all(transports.iter().map(Transport::shutdown)).await;
    }

    /// One step of the refresh scheduler at time `now`: evaluates every widget whose
    /// refresh interval has elapsed (computing each distinct query once), publishes the
    /// changed values of each dashboard as one update frame, marks stale values, evaluates
    /// alert rules and publishes their transitions. Deterministic in `now`: tests step
    /// time by hand.
    ///
    /// Synchronous and bounded by the number of due widgets; it takes the window store's
    /// read lock once.
    pub fn tick(&self, now: Timestamp) -> TickReport {
        let mut s = self
            .inner
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.tick(&self.inner, now)
    }

    /// Runs the refresh scheduler until `shutdown` completes: calls [`tick`](Self::tick)
    /// with the current time every [`EngineConfig::tick`] (missed ticks are skipped, not
    /// bunched).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the scheduler between ticks; nothing is lost
    /// (the next run evaluates every widget that is due).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut interval = tokio::time::interval(self.inner.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = interval.tick() => {
                    self.tick(Timestamp::now());
                }
            }
        }
    }

    /// The current value of one widget, computed now from the window store (not from the
    /// last published value).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`], [`Error::UnknownWidget`].
    pub fn widget_snapshot(&self, dashboard: &str, widget: Uuid) -> Result<WidgetState, Error> {
        self.widget_snapshot_at(dashboard, widget, Timestamp::now())
    }

    /// [`widget_snapshot`](Self::widget_snapshot) at time `now`.
    ///
    /// # Errors
    ///
    /// As [`widget_snapshot`](Self::widget_snapshot).
    pub fn widget_snapshot_at(
        &self,
        dashboard: &str,
        widget: Uuid,
        now: Timestamp,
    ) -> Result<WidgetState, Error> {
        let w = self.inner.registry.widget(dashboard, widget)?;
        let spec = QuerySpec::of(&w);
        let answer = spec.run(&self.inner.read_store(), now);
        let input = StateInput {
            dashboard,
            widget,
            stale_after: stale_limit(
                &w,
                w.refresh_interval().unwrap_or_default(),
                self.inner.config.stale_after_intervals.get(),
            ),
            unhealthy: self.inner.health.is_unhealthy(&w.metric_name),
            now,
        };
        Ok(state_of(&input, answer.as_ref()))
    }

    /// Marks the source of `metric` unhealthy (`healthy = false`) or healthy again. Values
    /// of widgets on an unhealthy metric are sent marked stale from their next refresh on,
    /// whatever their data. Use it when a producer or bridge for the metric is known to be
    /// down.
    pub fn set_source_health(&self, metric: &str, healthy: bool) {
        let h = &self.inner.health;
        let mut set = h.metrics.write().unwrap_or_else(PoisonError::into_inner);
        if healthy {
            set.remove(metric);
        } else {
            set.insert(metric.to_owned());
        }
        h.any_metric.store(!set.is_empty(), Ordering::Release);
    }

    /// Marks every source unhealthy (`false`) or lifts that mark (`true`), e.g. while the
    /// ingest path is known to be broken. Per-metric marks stay as they are.
    pub fn set_all_sources_health(&self, healthy: bool) {
        self.inner.health.all.store(!healthy, Ordering::Release);
    }

    /// Removes and returns the events that arrived later than the grace period (oldest
    /// arrival first). They were counted (`rtdash_ingest_late_total`) but not aggregated.
    #[must_use]
    pub fn drain_late(&self) -> Vec<LateEvent> {
        let mut store = self.inner.write_store();
        let raw: Vec<_> = store.drain_late().collect();
        raw.into_iter()
            .filter_map(|e| {
                let key = store.series_key(e.series)?;
                Some(LateEvent {
                    metric_name: key.metric().to_owned(),
                    tags: key.to_tags(),
                    event_time: e.event_time,
                    value: e.value,
                })
            })
            .collect()
    }

    /// The recent alert events (firing and resolved), oldest first, at most
    /// [`EngineConfig::alert_history`].
    #[must_use]
    pub fn alerts(&self) -> Vec<AlertEvent> {
        let log = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.history.iter().cloned().collect()
    }

    /// The alerts firing now (the event that started each), by dashboard then rule.
    #[must_use]
    pub fn firing_alerts(&self) -> Vec<AlertEvent> {
        let log = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.firing.values().cloned().collect()
    }

    /// Counters since the engine was created.
    #[must_use]
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            late: c.late.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            widget_evaluations: c.widget_evaluations.load(Ordering::Relaxed),
            query_evaluations: c.query_evaluations.load(Ordering::Relaxed),
            frames_published: c.frames.load(Ordering::Relaxed),
        }
    }

    /// The window store's counters (series, accepted and late events, newest event time).
    #[must_use]
    pub fn window_stats(&self) -> WindowStats {
        self.inner.read_store().stats()
    }

    /// The engine's metrics in the Prometheus text exposition format (version 0.0.4), as
    /// served by `GET /metrics`: ingest (`rtdash_ingest_events_total`, `…_rejected_total`,
    /// `…_late_total`), refused events by reason (`rtdash_events_rejected_total{reason}`:
    /// `future`, `too_old`, `event_time`, `metric_name`, `value`, `tags`, `id`, `series`,
    /// `malformed`), aggregation time (`rtdash_aggregation_seconds`), push latency from
    /// event to socket write (`rtdash_push_latency_seconds`) and to publish
    /// (`rtdash_publish_latency_seconds`), active connections, subscribers per dashboard,
    /// conflated/dropped/evicted messages and more. Each engine has its own recorder; no
    /// global recorder is installed.
    #[must_use]
    pub fn render_metrics(&self) -> String {
        let inner = &self.inner;
        let hub = inner.hub.stats();
        let window = self.window_stats();
        let mut s = Scrape {
            published: hub.published,
            delivered: hub.delivered,
            conflated: hub.conflated,
            dropped: hub.dropped,
            evicted: hub.evicted,
            hub_subscribers: hub.subscribers as u64,
            series: window.series as u64,
            late_dropped: window.late_dropped,
            late_buffered: window.late_buffered as u64,
            dashboards: inner.registry.len() as u64,
            firing_alerts: inner
                .alerts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .firing
                .len() as u64,
            ..Scrape::default()
        };
        for doc in inner.registry.list() {
            let n = inner.hub.subscriber_count(&self.topic(doc.id()));
            s.per_dashboard.push((doc.id().to_owned(), n as u64));
        }
        for t in inner
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let ts = t.stats();
            s.active_connections += ts.active_connections as u64;
            s.sessions += ts.sessions;
            s.slow_consumers += ts.slow_consumers;
            s.frames_sent += ts.frames_sent;
            s.auth_failures += ts.auth_failures;
        }
        inner.metrics.render(&s)
    }
}
