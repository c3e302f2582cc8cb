//! [`Engine`]: the pipeline ingest → window store → widget refresh → publish, wired from
//! the seams ([`ingest`](crate::ingest), [`refresh`](crate::refresh),
//! [`publish`](crate::publish)).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use rtdash_core::{BorrowedBatch as Batch, MetricEvent, Timestamp, Uuid, decode_batch_borrowed};
use rtdash_fanout::Subscription;
use rtdash_transport::{Authenticator, Frame, FrameHub, Topic, Transport, TransportConfig};
use rtdash_window::{WindowStats, WindowStore};

use crate::alert_history::{
    AlertHistory, AlertHistoryPage, AlertHistoryQuery, AlertNotifier, NotificationOutcome,
    NotificationRecord, NotifyDone, NotifyResult, WebhookPayload,
};
use crate::catalog::Catalog;
use crate::checkpoint::{self, EngineCheckpoint};
use crate::ingest::{InProcessLog, IngestLog, RecordHook, Recorder};
use crate::metrics::{Meters, Scrape};
use crate::partition::{PartitionOf, Partitions};
use crate::publish::{HubPublisher, Payload, Publication, Publisher};
use crate::refresh::{
    Answer, PlanInput, Planner, QuerySource, QuerySpec, StateInput, stale_limit, state_of,
};
use crate::{
    AlertEvent, AlertState, DashboardStore, EngineConfig, EngineStats, Error, IngestError,
    IngestOutcome, IngestReport, LateEvent, MemoryStore, Registry, Subject, TickReport, WidgetKey,
    WidgetState,
};

/// The pipeline every host needs, in one cheap-to-clone handle: validate metric events
/// and hand them to the [ingest log](crate::ingest) (by default recorded into the window
/// store at once), keep the dashboards ([`Registry`]), evaluate every widget at its
/// refresh interval, [publish](crate::publish) changed values (and alerts) — by default to
/// the local [`hub`](Self::hub) that WebSocket and SSE sessions read — and export
/// Prometheus metrics.
///
/// See the [crate documentation](crate) for the path of one event and an example;
/// [`Engine::builder`] plugs in another publisher or ingest log.
///
/// Thread-safe: ingest from many tasks at once (each call or batch takes the window
/// store's lock once); the scheduler runs in one task ([`run`](Self::run)) or is stepped
/// by hand ([`tick`](Self::tick)).
///
/// # Examples
///
/// A dashboard with one widget, a subscriber, two events and one step of the scheduler:
///
/// ```
/// use rtdash::fanout::Event;
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// // Widget 1: how many `api.requests` events arrived in the last minute.
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "Requests", "metric_name": "api.requests", "aggregation": "count",
///      "window_seconds": 60, "refresh_interval_seconds": 1,
///      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}]}"#)?;
/// engine.dashboards().create(doc)?;
/// let sub = engine.subscribe("ops")?; // a snapshot first, then every update
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let body = br#"[{"metric_name": "api.requests", "value": 1, "event_time": 1700000000000},
///                 {"metric_name": "api.requests", "value": 1, "event_time": 1699999999500}]"#;
/// assert_eq!(engine.ingest_json_at(body, now)?.accepted, 2);
///
/// // `run` (or `spawn`) calls this every 100 ms with the current time.
/// let tick = engine.tick(now);
/// assert_eq!((tick.widgets_evaluated, tick.frames_published), (1, 1));
/// assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { .. })));
/// let Ok(Event::Message { msg, .. }) = sub.try_recv() else { panic!("no update") };
/// let update: serde_json::Value = serde_json::from_str(msg.as_str())?;
/// assert_eq!(update["items"][0]["value"], 2.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A handle on an engine that does not keep it alive (for the engine's own tasks).
#[derive(Clone)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct WeakEngine(std::sync::Weak<Inner>);

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl WeakEngine {
    /// The engine, while it lives.
    pub(crate) fn upgrade(&self) -> Option<Engine> {
        self.0.upgrade().map(|inner| Engine { inner })
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dashboards", &self.inner.registry.len())
            .field("ingest_log", &self.inner.log.name())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: EngineConfig,
    recorder: Recorder,
    log: Arc<dyn IngestLog>,
    registry: Registry,
    hub: FrameHub<WidgetKey>,
    publisher: Arc<dyn Publisher>,
    refresh: Mutex<RefreshState>,
    health: Health,
    alerts: Mutex<AlertLog>,
    /// Serialises the saves of alert records, so that a record is never saved older
    /// after newer.
    alert_saves: Mutex<()>,
    /// Where notifications go: the builder's, else (feature `webhooks`) the default one,
    /// made at the first notification inside a tokio runtime.
    notifier: std::sync::OnceLock<Option<Arc<dyn AlertNotifier>>>,
    notify_counts: NotifyCounts,
    meters: Arc<Meters>,
    transports: Mutex<Vec<Transport<WidgetKey>>>,
    /// Whether this engine evaluates widgets (an edge node does not).
    aggregate: bool,
    /// With a partitioned log: the partitions this engine owns, each with its own
    /// recorder (`recorder` above then stays empty).
    partitions: Option<Arc<Partitions>>,
    /// Where finished roll-up buckets are kept for long-range history, if anywhere.
    archive: Option<Arc<dyn crate::history::HistoryArchive>>,
    #[cfg(feature = "redis")]
    backplane: Option<rtdash_redis::Backplane>,
    /// The durable log (feature `redis`), and this node's part in owning its partitions
    /// (an aggregator's), stopped gracefully by [`EngineTask::shutdown`].
    #[cfg(feature = "redis")]
    stream_log: Option<rtdash_redis::StreamLog>,
    #[cfg(feature = "redis")]
    owner: Mutex<Option<rtdash_redis::OwnerHandle>>,
    /// Background tasks of the seams (the backplane's mirror), stopped with the engine.
    _tasks: Vec<AbortOnDrop>,
}

/// The health of an engine's parts (see [`Engine::health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineHealth {
    /// Whether the backplane is connected and its last check passed; `None` without a
    /// backplane.
    pub backplane: Option<bool>,
    /// Whether the durable ingest log reaches Redis; `None` without one.
    pub ingest_log: Option<bool>,
    /// Whether the history archive's last write succeeded; `None` without one. An archive
    /// that is down does not make the engine unhealthy ([`is_healthy`](Self::is_healthy)):
    /// ingest and live values go on, and the archive catches up when it is back.
    pub history_archive: Option<bool>,
}

impl EngineHealth {
    /// Whether every part is healthy.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.backplane != Some(false) && self.ingest_log != Some(false)
    }
}

/// Aborts a background task when the engine goes away.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The refresh planner and when the metrics' upkeep last ran.
#[derive(Debug, Default)]
struct RefreshState {
    planner: Planner,
    last_upkeep: Option<Timestamp>,
}

/// Which sources are marked unhealthy.
#[derive(Debug, Default)]
struct Health {
    all: AtomicBool,
    any_metric: AtomicBool,
    metrics: RwLock<HashSet<String>>,
}

impl Health {
    fn is_unhealthy(&self, metric: &str) -> bool {
        self.all.load(Ordering::Acquire)
            || (self.any_metric.load(Ordering::Acquire)
                && self
                    .metrics
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(metric))
    }
}

#[derive(Debug)]
struct AlertLog {
    history: VecDeque<AlertEvent>,
    firing: BTreeMap<(String, Uuid), AlertEvent>,
    /// One record per fire, persisted by the dashboard store.
    records: AlertHistory,
}

/// Notification outcomes counted for the metrics, by [`NotificationOutcome`].
#[derive(Debug, Default)]
struct NotifyCounts {
    delivered: AtomicU64,
    failed: AtomicU64,
    breaker_open: AtomicU64,
    dropped: AtomicU64,
    silenced: AtomicU64,
    save_failures: AtomicU64,
}

impl NotifyCounts {
    /// Counts `n` notifications that ended with `outcome`.
    fn count(&self, outcome: NotificationOutcome, n: u64) {
        let c = match outcome {
            NotificationOutcome::Delivered => &self.delivered,
            NotificationOutcome::Failed => &self.failed,
            NotificationOutcome::BreakerOpen => &self.breaker_open,
            NotificationOutcome::Dropped => &self.dropped,
            NotificationOutcome::Silenced => &self.silenced,
            _ => return,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where the engine's queries are answered: its store, or with a partitioned log the
/// store of the metric's partition (no answer when another node owns it).
struct Stores<'a>(&'a Inner);

impl QuerySource for Stores<'_> {
    fn answer(&self, spec: &QuerySpec, now: Timestamp) -> Option<Answer> {
        match &self.0.partitions {
            None => self.0.recorder.shared().store.answer(spec, now),
            Some(parts) => parts
                .recorder_for(&spec.metric)?
                .shared()
                .store
                .answer(spec, now),
        }
    }
}

/// Removes the late events buffered in `store`, with their metric and tags.
fn drain_late(store: &mut WindowStore) -> Vec<LateEvent> {
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

/// How an event refused by validation (`e`) is reported at `index` of its batch.
fn refused(index: usize, e: &Error) -> IngestError {
    let (field, message) = match e {
        Error::InvalidEvent { field, reason } => (field.clone(), reason.clone()),
        other => ("event".to_owned(), other.to_string()),
    };
    IngestError {
        index,
        field,
        message,
    }
}

/// Counts what a recorder recorded into the engine's meters.
fn record_hook(meters: &Arc<Meters>) -> RecordHook {
    let meters = Arc::clone(meters);
    Arc::new(move |r: &IngestReport| meters.count(r))
}

impl Inner {
    /// Puts `checkpoint`'s ingest state (window store, de-duplication horizon, source
    /// positions) into `recorder`; returns its alert rule states. Nothing changes when it
    /// fails.
    fn restore_into(
        &self,
        recorder: &Recorder,
        checkpoint: EngineCheckpoint,
    ) -> Result<Vec<checkpoint::RuleCheckpoint>, Error> {
        // Checked before anything is built: the configuration decides what the restore
        // allocates, so a foreign one is refused first.
        let theirs = checkpoint.window.config();
        if theirs != self.config.window {
            return Err(Error::InvalidCheckpoint {
                reason: format!(
                    "window configuration differs: checkpoint {theirs:?}, engine {:?}",
                    self.config.window
                ),
            });
        }
        let (window, ()) =
            WindowStore::restore(checkpoint.window).map_err(|e| Error::InvalidCheckpoint {
                reason: e.to_string(),
            })?;
        recorder.replace(window, checkpoint.dedup, checkpoint.positions);
        Ok(checkpoint.rules)
    }

    fn read_store(&self) -> RwLockReadGuard<'_, WindowStore> {
        self.recorder
            .shared()
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record_alerts(self: &Arc<Self>, events: &[AlertEvent]) {
        if events.is_empty() {
            return;
        }
        let mut sends = Vec::new();
        let mut log = self.alerts.lock().unwrap_or_else(PoisonError::into_inner);
        for a in events {
            let rule = self
                .registry
                .get(&a.dashboard_id)
                .ok()
                .and_then(|doc| doc.alert_rules.iter().find(|r| r.id == a.rule_id).cloned());
            let silenced = rule.as_ref().is_some_and(|r| r.is_silenced(a.at));
            let urls = rule
                .as_ref()
                .map(|r| r.webhooks.clone())
                .unwrap_or_default();
            let outcome = if silenced {
                NotificationOutcome::Silenced
            } else {
                NotificationOutcome::Pending
            };
            let notifications = urls
                .iter()
                .map(|url| NotificationRecord {
                    url: url.clone(),
                    state: a.state,
                    outcome,
                    attempts: 0,
                    status: None,
                    error: None,
                    at: a.at,
                })
                .collect::<Vec<_>>();
            if silenced {
                self.notify_counts
                    .count(NotificationOutcome::Silenced, urls.len() as u64);
            }
            if let Some(id) = log.records.apply(a, rule.as_ref(), silenced, notifications)
                && !silenced
                && !urls.is_empty()
                && let Some(record) = log.records.get(id)
            {
                let body = serde_json::to_vec(&WebhookPayload::of(record, a)).unwrap_or_default();
                sends.push((id, a.state, urls, body));
            }
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
        drop(log);
        for (id, state, urls, body) in sends {
            for url in urls {
                self.send_notification(id, state, url, body.clone());
            }
        }
    }

    /// The notifier: the builder's, else the default (feature `webhooks`, inside a tokio
    /// runtime), else none.
    fn notifier(&self) -> Option<&Arc<dyn AlertNotifier>> {
        self.notifier
            .get_or_init(|| {
                #[cfg(feature = "webhooks")]
                {
                    crate::notify::AlertWebhooks::new(crate::notify::WebhookConfig::default())
                        .ok()
                        .map(|n| Arc::new(n) as Arc<dyn AlertNotifier>)
                }
                #[cfg(not(feature = "webhooks"))]
                None
            })
            .as_ref()
    }

    /// Sends one notification of record `id` and records its outcome when it is known.
    fn send_notification(
        self: &Arc<Self>,
        id: Uuid,
        state: AlertState,
        url: String,
        body: Vec<u8>,
    ) {
        let weak = Arc::downgrade(self);
        let to = url.clone();
        let done: NotifyDone = Box::new(move |result: NotifyResult| {
            if let Some(inner) = weak.upgrade() {
                inner.notify_counts.count(result.outcome, 1);
                let mut log = inner.alerts.lock().unwrap_or_else(PoisonError::into_inner);
                log.records.report(id, &to, state, result);
            }
        });
        let key = format!("{id}:{}", state.as_str());
        match self.notifier() {
            Some(n) => n.notify(&url, &key, body, done),
            None => done(NotifyResult {
                outcome: NotificationOutcome::Failed,
                attempts: 0,
                status: None,
                error: Some(
                    "no notifier: webhooks need the `webhooks` feature and an engine run inside a tokio runtime"
                        .to_owned(),
                ),
                at: Timestamp::now(),
            }),
        }
    }

    /// Saves the alert records changed since the last save to the dashboard store.
    /// Returns how many were saved; on failure they stay to be saved next time.
    fn persist_alert_records(&self) -> Result<usize, Error> {
        let _order = self
            .alert_saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let records = self
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .take_dirty();
        if records.is_empty() {
            return Ok(0);
        }
        match self.registry.store().save_alert_records(&records) {
            Ok(()) => Ok(records.len()),
            Err(e) => {
                self.notify_counts
                    .save_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, records = records.len(), "alert history: saving failed; retrying later");
                self.alerts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .records
                    .mark_dirty(records.iter().map(|r| r.id));
                Err(e)
            }
        }
    }

    /// Hands a validated batch to the ingest log; resolves when the log has appended it.
    async fn append(&self, batch: &Batch<'_>, report: &mut IngestReport) -> Result<(), Error> {
        self.log.append(batch, &self.recorder, report).await
    }

    /// [`append`](Self::append) for the synchronous API: the log must finish in its first
    /// poll (the in-process log always does).
    fn append_now(&self, batch: &Batch<'_>, report: &mut IngestReport) -> Result<(), Error> {
        match self.append(batch, report).now_or_never() {
            Some(r) => r,
            None => Err(Error::IngestLogPending {
                log: self.log.name().to_owned(),
            }),
        }
    }

    /// Decodes and validates a JSON body; the batch's refused elements are reported (and
    /// counted) in the returned report.
    fn decode<'b>(
        &self,
        body: &'b [u8],
        now: Timestamp,
    ) -> Result<(Batch<'b>, IngestReport), Error> {
        let limit = self.config.max_body_bytes;
        if body.len() > limit {
            return Err(Error::PayloadTooLarge {
                size: body.len(),
                limit,
            });
        }
        let mut batch = decode_batch_borrowed(body, &self.config.validation, now)
            .map_err(|e| Error::from_core(e, Subject::Event))?;
        let errors: Vec<IngestError> = std::mem::take(&mut batch.rejected)
            .into_iter()
            .map(|r| {
                let field = match &r.error {
                    rtdash_core::CoreError::InvalidEvent { field, .. } => field.clone(),
                    _ => "event".to_owned(),
                };
                IngestError {
                    index: r.index,
                    field,
                    message: r.error.to_string(),
                }
            })
            .collect();
        let report = IngestReport {
            rejected: errors.len(),
            errors,
            ..IngestReport::default()
        };
        self.meters.count(&report);
        self.meters.metrics.batches.increment(1);
        Ok((batch, report))
    }
}

/// Makes the engine's publisher from its hub.
type MakePublisher = Box<dyn FnOnce(&FrameHub<WidgetKey>) -> Arc<dyn Publisher>>;

/// Builds an [`Engine`] with other seams than the defaults: a dashboard store, a
/// [`Publisher`] (default: [`HubPublisher`] on the engine's hub) and an [`IngestLog`]
/// (default: [`InProcessLog`]).
///
/// # Examples
///
/// ```
/// use rtdash::publish::HubPublisher;
/// use rtdash::ingest::InProcessLog;
/// use rtdash::{Engine, EngineConfig, MemoryStore};
///
/// let engine = Engine::builder(EngineConfig::default())
///     .store(MemoryStore::new())
///     .publisher(|hub| HubPublisher::new(hub.clone()))
///     .ingest_log(InProcessLog)
///     .build()?;
/// # Ok::<(), rtdash::Error>(())
/// ```
#[must_use]
pub struct EngineBuilder {
    config: EngineConfig,
    store: Box<dyn DashboardStore>,
    publisher: Option<MakePublisher>,
    log: Arc<dyn IngestLog>,
    hub: Option<FrameHub<WidgetKey>>,
    aggregate: bool,
    partition_of: Option<PartitionOf>,
    archive: Option<Arc<dyn crate::history::HistoryArchive>>,
    notifier: Option<Arc<dyn AlertNotifier>>,
    #[cfg(feature = "redis")]
    redis: Option<(rtdash_redis::Backplane, crate::redis::Role)>,
    #[cfg(feature = "redis")]
    stream_log: Option<rtdash_redis::StreamLog>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("config", &self.config)
            .field("ingest_log", &self.log.name())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The dashboard store (default: an empty [`MemoryStore`]).
    pub fn store(mut self, store: impl DashboardStore) -> Self {
        self.store = Box::new(store);
        self
    }

    /// The publisher, made from the engine's hub (which WebSocket and SSE sessions read),
    /// so that an implementation can deliver to local subscribers through it.
    pub fn publisher<P: Publisher>(
        mut self,
        make: impl FnOnce(&FrameHub<WidgetKey>) -> P + 'static,
    ) -> Self {
        self.publisher = Some(Box::new(move |hub| Arc::new(make(hub))));
        self
    }

    /// The ingest log.
    pub fn ingest_log(mut self, log: impl IngestLog) -> Self {
        self.log = Arc::new(log);
        self
    }

    /// The hub WebSocket and SSE sessions read (default: a new hub of
    /// [`EngineConfig::hub`]), e.g. a mirrored hub that a backplane keeps in step.
    pub fn hub(mut self, hub: FrameHub<WidgetKey>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Keeps long-range history in `archive` (e.g. `postgres::PostgresArchive`, feature
    /// `postgres`): every complete roll-up bucket of the window store (one per series and
    /// minute with the default roll-up) is offered to it, about once a second, off the
    /// ingest path; [`Engine::history`] reads it for times the store no longer holds.
    /// Needs the window store's roll-up tier ([`WindowConfig::rollup`](crate::WindowConfig)).
    pub fn history_archive(mut self, archive: impl crate::history::HistoryArchive) -> Self {
        self.archive = Some(Arc::new(archive));
        self
    }

    /// Where alert notifications go (rules' `webhooks`). Default: with feature `webhooks`,
    /// [`notify::WebhookNotifier`](crate::notify::WebhookNotifier) with its default
    /// configuration, made at the first notification (inside a tokio runtime); without
    /// it, notifications are recorded as failed.
    pub fn notifier(mut self, notifier: impl AlertNotifier) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Whether the engine evaluates widgets in [`tick`](Engine::tick) (default `true`).
    /// Off for a node that only serves clients what other nodes publish.
    pub fn aggregate(mut self, on: bool) -> Self {
        self.aggregate = on;
        self
    }

    /// Joins a cluster through a Redis [`Backplane`](crate::redis::Backplane): the engine's
    /// hub becomes a mirror of Redis, and as a [`Role::Aggregator`](crate::redis::Role)
    /// the engine publishes through Redis (as an edge it evaluates nothing). Replaces
    /// [`hub`](Self::hub), [`publisher`](Self::publisher) and
    /// [`aggregate`](Self::aggregate). [`build`](Self::build) then starts the
    /// backplane's tasks, so it must run inside a tokio runtime.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, backplane: &rtdash_redis::Backplane, role: crate::redis::Role) -> Self {
        self.redis = Some((backplane.clone(), role));
        self
    }

    /// Makes ingest durable and partitioned (feature `redis`): validated events are
    /// appended to `log` (Redis Streams, one stream per partition, partitioned by metric
    /// name) before `submit_json` (`POST /ingest`) answers, and the window state lives in
    /// the partitions. An engine that aggregates (the default, and
    /// [`Role::Aggregator`](crate::redis::Role)) takes part in owning the partitions: each
    /// is aggregated by exactly one node at a time, restored from its checkpoint and
    /// replayed from its offset when it moves (see `docs/ARCHITECTURE.md`, "Durable
    /// ingest"). [`build`](Self::build) then starts the log's tasks, so it must run inside
    /// a tokio runtime.
    ///
    /// With a durable log the synchronous ingest API (`ingest`, `ingest_json`) answers
    /// [`Error::IngestLogPending`]: use [`Engine::submit_json`].
    #[cfg(feature = "redis")]
    pub fn durable_log(mut self, log: rtdash_redis::StreamLog) -> Self {
        let of = log.clone();
        self.partition_of = Some(Arc::new(move |metric: &str| of.partition_of(metric)));
        self.log = Arc::new(crate::redis::RedisStreamsLog::new(log.clone()));
        self.stream_log = Some(log);
        self
    }

    /// Builds the engine and loads the dashboards of the store into its [`Registry`]
    /// (documents that cannot be loaded are skipped and reported by
    /// [`Registry::load_problems`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (see [`EngineConfig::validate`]); [`Error::Store`] when the
    /// store cannot be read at all.
    pub fn build(self) -> Result<Engine, Error> {
        let config = self.config;
        config.validate()?;
        if self.archive.is_some() && config.window.rollup.is_none() {
            return Err(Error::InvalidConfig {
                field: "window.rollup",
                reason: "a history archive keeps the window store's roll-up buckets: \
                         set a roll-up tier (the default has one)"
                    .to_owned(),
            });
        }
        let window = WindowStore::new(config.window.clone()).map_err(|e| Error::InvalidConfig {
            field: "window",
            reason: e.to_string(),
        })?;
        // A backplane (feature `redis`) replaces these four.
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut hub = self.hub.unwrap_or_else(|| FrameHub::new(config.hub));
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut make_publisher = self.publisher;
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut aggregate = self.aggregate;
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut tasks = Vec::new();
        #[cfg(feature = "redis")]
        let backplane = match self.redis {
            None => None,
            Some((backplane, role)) => {
                use crate::redis::{Discard, RedisPublish, Role, mark_stale};
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(Error::InvalidConfig {
                        field: "redis",
                        reason: "an engine with a Redis backplane must be built inside a tokio \
                                 runtime (it starts the backplane's tasks)"
                            .to_owned(),
                    });
                }
                let mirror = backplane
                    .mirror::<WidgetKey>(config.hub)
                    .with_stale_marker(Arc::new(mark_stale));
                hub = mirror.hub().clone();
                tasks.push(AbortOnDrop(mirror.spawn()));
                aggregate = role == Role::Aggregator;
                let publisher: Arc<dyn Publisher> = if aggregate {
                    Arc::new(RedisPublish(backplane.publisher()))
                } else {
                    Arc::new(Discard)
                };
                make_publisher = Some(Box::new(move |_| publisher));
                Some(backplane)
            }
        };
        let publisher: Arc<dyn Publisher> = match make_publisher {
            Some(make) => make(&hub),
            None => Arc::new(HubPublisher::new(hub.clone())),
        };
        let registry = Registry::load(
            self.store,
            config.effective_schema(),
            Arc::clone(&publisher),
        )?;
        let alert_records = AlertHistory::load(
            config.alert_records,
            registry.store().load_alert_records(config.alert_records)?,
        );
        let meters = Arc::new(Meters::new(config.metrics));
        let recorder = Recorder::new(window, config.dedup_capacity, record_hook(&meters));
        let partitions = self.partition_of.map(|of| Arc::new(Partitions::new(of)));
        #[cfg(feature = "redis")]
        if self.stream_log.is_some() && tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::InvalidConfig {
                field: "durable_log",
                reason: "an engine with a durable log must be built inside a tokio runtime \
                         (it starts the log's tasks)"
                    .to_owned(),
            });
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                recorder,
                log: self.log,
                registry,
                hub,
                publisher,
                refresh: Mutex::new(RefreshState::default()),
                health: Health::default(),
                alerts: Mutex::new(AlertLog {
                    history: VecDeque::new(),
                    firing: BTreeMap::new(),
                    records: alert_records,
                }),
                alert_saves: Mutex::new(()),
                notifier: match self.notifier {
                    Some(n) => std::sync::OnceLock::from(Some(n)),
                    None => std::sync::OnceLock::new(),
                },
                notify_counts: NotifyCounts::default(),
                meters,
                transports: Mutex::new(Vec::new()),
                aggregate,
                partitions,
                archive: self.archive,
                #[cfg(feature = "redis")]
                backplane,
                #[cfg(feature = "redis")]
                stream_log: self.stream_log,
                #[cfg(feature = "redis")]
                owner: Mutex::new(None),
                _tasks: tasks,
                config,
            }),
        };
        #[cfg(feature = "redis")]
        if let Some(log) = &engine.inner.stream_log
            && engine.inner.aggregate
        {
            let handler = crate::redis::log::EngineHandler::new(&engine, log);
            *engine
                .inner
                .owner
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(log.spawn_owner(handler));
        }
        // A shared store's changes made elsewhere (see `Registry`), until the engine goes.
        engine.resume_open_alerts();
        if let Some(changes) = engine.inner.registry.take_store_changes() {
            let weak = engine.downgrade();
            crate::registry::follow_store(changes, move |change| {
                weak.upgrade()
                    .map(|e| e.inner.registry.apply_store_change(&change))
                    .is_some()
            })?;
        }
        Ok(engine)
    }
}

impl Engine {
    /// Creates an engine with the default seams (the local hub, the in-process ingest
    /// log) and loads the dashboards of `store` into its [`Registry`] (documents that
    /// cannot be loaded are skipped and reported by [`Registry::load_problems`]).
    ///
    /// Nothing runs yet: call [`run`](Self::run) (or [`tick`](Self::tick)) to refresh
    /// widgets.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (see [`EngineConfig::validate`]); [`Error::Store`] when the
    /// store cannot be read at all.
    pub fn new(config: EngineConfig, store: impl DashboardStore) -> Result<Self, Error> {
        Self::builder(config).store(store).build()
    }

    /// A builder to plug in other seams: a [`Publisher`] (e.g. a backplane shared by
    /// several nodes) or an [`IngestLog`] (e.g. a durable log).
    pub fn builder(config: EngineConfig) -> EngineBuilder {
        EngineBuilder {
            config,
            store: Box::new(MemoryStore::new()),
            publisher: None,
            log: Arc::new(InProcessLog),
            hub: None,
            aggregate: true,
            partition_of: None,
            archive: None,
            notifier: None,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "redis")]
            stream_log: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The back half of ingest: records validated batches into this engine's window store
    /// (see [`Recorder`]). An [`IngestLog`] that does not record inside `append` (a durable
    /// log) gives the batches it reads back to this recorder, with their positions.
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Validates one event (against the current time) and appends it to the ingest log
    /// (by default: records it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEvent`] naming the field (the event is counted as rejected);
    /// [`Error::IngestLogPending`] when the engine's ingest log cannot append without
    /// waiting (use [`submit_json`](Self::submit_json)).
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
            let e = Error::from_core(e, Subject::Event);
            report.rejected = 1;
            report.errors.push(refused(0, &e));
            self.inner.meters.count(&report);
            return Err(e);
        }
        let late_before = self.inner.read_store().stats().late_dropped;
        let batch = Batch::from_events([event]);
        self.inner.append_now(&batch, &mut report)?;
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
    /// element against the current time, and appends the valid ones to the ingest log (by
    /// default: records them under one lock of the window store). A bad element never
    /// spoils the others: it is reported with its index in [`IngestReport::errors`].
    ///
    /// # Errors
    ///
    /// When the body as a whole is unusable: [`Error::PayloadTooLarge`] (over
    /// [`max_body_bytes`](EngineConfig::max_body_bytes)), [`Error::MalformedJson`] (syntax
    /// error, truncated or empty), [`Error::WrongShape`] (not an array or object).
    /// [`Error::IngestLogPending`] when the engine's ingest log cannot append without
    /// waiting: use [`submit_json`](Self::submit_json).
    pub fn ingest_json(&self, body: &[u8]) -> Result<IngestReport, Error> {
        self.ingest_json_at(body, Timestamp::now())
    }

    /// [`ingest_json`](Self::ingest_json) with the current time passed in.
    ///
    /// # Errors
    ///
    /// As [`ingest_json`](Self::ingest_json).
    pub fn ingest_json_at(&self, body: &[u8], now: Timestamp) -> Result<IngestReport, Error> {
        let (batch, mut report) = self.inner.decode(body, now)?;
        self.inner.append_now(&batch, &mut report)?;
        report.errors.sort_by_key(|e| e.index);
        Ok(report)
    }

    /// [`ingest_json`](Self::ingest_json) for any ingest log: resolves once the log has
    /// appended the valid events (made them durable, for a durable log). `POST /ingest`
    /// calls it.
    ///
    /// # Errors
    ///
    /// As [`ingest_json`](Self::ingest_json), and what the log reports when it cannot
    /// append.
    ///
    /// # Cancel safety
    ///
    /// As the log's `append` (see [`IngestLog`]): the in-process log records before the
    /// first poll returns.
    pub async fn submit_json(&self, body: &[u8]) -> Result<IngestReport, Error> {
        let (batch, mut report) = self.inner.decode(body, Timestamp::now())?;
        self.inner.append(&batch, &mut report).await?;
        report.errors.sort_by_key(|e| e.index);
        Ok(report)
    }

    /// Validates events (against the current time) and appends the valid ones to the
    /// ingest log, for any log: resolves once the log has appended them (made them
    /// durable, for a durable log). A bad event never spoils the others: it is reported
    /// with its index in [`IngestReport::errors`].
    ///
    /// # Errors
    ///
    /// What the log reports when it cannot append (e.g. [`Error::IngestLogUnavailable`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::{Engine, EngineConfig, MemoryStore, MetricEvent, Timestamp};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rtdash::Error> {
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// let now = Timestamp::now();
    /// let report = engine
    ///     .submit([MetricEvent::new("cpu", 0.5, now), MetricEvent::new("cpu", f64::NAN, now)])
    ///     .await?;
    /// assert_eq!((report.accepted, report.rejected), (1, 1));
    /// assert_eq!(report.errors[0].index, 1);
    /// # Ok(()) }
    /// ```
    pub async fn submit(
        &self,
        events: impl IntoIterator<Item = MetricEvent>,
    ) -> Result<IngestReport, Error> {
        let now = Timestamp::now();
        let mut report = IngestReport::default();
        let mut valid = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            match event.validate(&self.inner.config.validation, now) {
                Ok(()) => valid.push((index, event)),
                Err(e) => {
                    report.rejected += 1;
                    report
                        .errors
                        .push(refused(index, &Error::from_core(e, Subject::Event)));
                }
            }
        }
        self.inner.meters.count(&report);
        let batch = Batch {
            items: valid
                .into_iter()
                .map(|(index, event)| rtdash_core::BorrowedEvent::Owned { index, event })
                .collect(),
            ..Batch::default()
        };
        self.inner.append(&batch, &mut report).await?;
        report.errors.sort_by_key(|e| e.index);
        Ok(report)
    }

    /// The state of ingest at this instant, to resume elsewhere (see
    /// [`EngineCheckpoint`]). Takes the window store's read lock while it copies the
    /// state: ingest waits for that long (about 1 ms per 100 series with 1 h windows).
    #[must_use]
    pub fn checkpoint(&self) -> EngineCheckpoint {
        let (window, dedup, positions) = self.inner.recorder.snapshot();
        let s = self.inner.meters.stats();
        EngineCheckpoint::new(
            window,
            dedup,
            positions,
            checkpoint::Counters {
                accepted: s.accepted,
                rejected: s.rejected,
                late: s.late,
                duplicates: s.duplicates,
            },
        )
    }

    /// Replaces this engine's ingest state by `checkpoint`'s: the window store, the
    /// de-duplication horizon, the source positions and the ingest counters. Meant for a
    /// fresh engine before ingest starts (a node taking over a partition); events
    /// recorded before the restore are lost. Widgets are recomputed at the next tick.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCheckpoint`] when the window state is inconsistent or was taken
    /// with another window configuration (bucket width, retention, grace, percentiles)
    /// than this engine's; nothing changes then.
    pub fn restore(&self, checkpoint: EngineCheckpoint) -> Result<(), Error> {
        let counters = checkpoint.counters;
        self.inner.restore_into(&self.inner.recorder, checkpoint)?;
        self.inner.meters.restore_ingest(&counters);
        Ok(())
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn downgrade(&self) -> WeakEngine {
        WeakEngine(Arc::downgrade(&self.inner))
    }

    /// Hands this node's partitions over (feature `redis`, with a durable log): a final
    /// checkpoint of each, then their leases are released, so that other nodes take them
    /// at once. Called by [`EngineTask::shutdown`]; ingest through the log keeps working.
    pub async fn release_partitions(&self) {
        #[cfg(feature = "redis")]
        {
            let owner = self
                .inner
                .owner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(owner) = owner {
                owner.shutdown().await;
            }
        }
    }

    /// The partitions of a partitioned log this engine owns, ascending (empty without
    /// one).
    #[must_use]
    pub fn owned_partitions(&self) -> Vec<u32> {
        self.inner
            .partitions
            .as_ref()
            .map_or_else(Vec::new, |p| p.owned())
    }

    /// Takes partition `p` of a partitioned log: a fresh recorder, restored from
    /// `checkpoint` (a partition checkpoint, see [`partition_checkpoint`](Self::partition_checkpoint))
    /// when there is one. Widgets of its metrics are evaluated here from the next tick.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn acquire_partition(
        &self,
        p: u32,
        checkpoint: Option<&[u8]>,
    ) -> Result<(), String> {
        let inner = &*self.inner;
        let parts = inner
            .partitions
            .as_ref()
            .ok_or("the engine has no partitioned log")?;
        let config = &inner.config;
        let store = WindowStore::new(config.window.clone()).map_err(|e| e.to_string())?;
        let recorder = Recorder::new(store, config.dedup_capacity, record_hook(&inner.meters));
        let rules = match checkpoint.filter(|b| !b.is_empty()) {
            Some(bytes) => EngineCheckpoint::from_json(bytes)
                .and_then(|cp| inner.restore_into(&recorder, cp))
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        parts.insert(p, recorder, rules);
        Ok(())
    }

    /// Records one log entry of partition `p` (the events of an encoded entry, see
    /// `ingest::wire`) with its position `offset` in `source`; returns the entry's late
    /// events, encoded the same way, for the partition's late stream.
    #[cfg(feature = "redis")]
    pub(crate) fn apply_entry(
        &self,
        p: u32,
        source: &str,
        offset: &str,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        let recorder = self.inner.partitions.as_ref()?.get(p)?;
        let mut report = IngestReport::default();
        let position = Some(crate::ingest::SourcePosition { source, offset });
        match crate::ingest::wire::decode(payload) {
            Ok(batch) => recorder.record(&batch, position, &mut report),
            Err(reason) => {
                // Never written by rtdash: skipped, but the position moves past it.
                tracing::error!(partition = p, offset, %reason, "log entry skipped");
                recorder.record(&Batch::default(), position, &mut report);
            }
        }
        if report.late == 0 {
            return None;
        }
        let late = drain_late(&mut recorder.write_store());
        crate::ingest::wire::encode_late(&late)
    }

    /// A checkpoint of partition `p` (empty when not owned): its recorder's state (window
    /// store, de-duplication horizon, source position) and the states of the alert rules
    /// on its metrics, as JSON ([`EngineCheckpoint`], with zero counters).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn partition_checkpoint(&self, p: u32) -> Vec<u8> {
        let Some(parts) = &self.inner.partitions else {
            return Vec::new();
        };
        let Some(recorder) = parts.get(p) else {
            return Vec::new();
        };
        let (window, dedup, positions) = recorder.snapshot();
        let mut cp =
            EngineCheckpoint::new(window, dedup, positions, checkpoint::Counters::default());
        cp.rules = self
            .inner
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .planner
            .rule_states(&|metric: &str| parts.partition_of(metric) == p);
        cp.to_json()
    }

    /// Drops partition `p`: another node aggregates it now.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn release_partition(&self, p: u32) {
        if let Some(parts) = &self.inner.partitions {
            parts.remove(p);
        }
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
    /// [`EngineConfig::subscribe_policy`] (WebSocket and SSE sessions use their transport's
    /// policy instead): the subscription first receives a snapshot of the current values
    /// (the newest frame per widget and alert rule), then every update frame.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`].
    pub fn subscribe(
        &self,
        dashboard: &str,
    ) -> Result<Subscription<Topic, WidgetKey, Frame>, Error> {
        self.inner.registry.get(dashboard)?;
        let sub = self.inner.hub.subscribe(self.inner.config.subscribe_policy);
        sub.subscribe(self.topic(dashboard))
            .map_err(|e| Error::InvalidConfig {
                field: "hub",
                reason: e.to_string(),
            })?;
        Ok(sub)
    }

    /// A WebSocket/SSE transport over this engine's hub (see rtdash-transport), restricted
    /// to the topics of existing dashboards (others: close 4004 or an `unknown_topic`
    /// error frame, see `Transport::restrict_topics`), answering WebSocket `history`
    /// requests with [`history`](Self::history) (a `RequestHandler`, see
    /// `docs/PROTOCOL.md`), whose connection counters are included in [`render_metrics`](Self::render_metrics) and
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
        // Sessions may subscribe only to dashboards that exist: clients cannot make the hub
        // hold topics of their own naming. (A weak reference: the engine holds the
        // transport.)
        let engine = Arc::downgrade(&self.inner);
        t.restrict_topics(move |topic| {
            engine
                .upgrade()
                .is_some_and(|inner| inner.registry.contains(topic))
        });
        t.handle_requests(HistoryRequests {
            engine: Arc::downgrade(&self.inner),
        });
        let push_latency = self.inner.meters.metrics.push_latency.clone();
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
    /// Synchronous and bounded by the number of due widgets. It takes the window store's
    /// read lock once per distinct query (ingest waits for one query at most, never for a
    /// whole tick) and publishes after the planning is done.
    pub fn tick(&self, now: Timestamp) -> TickReport {
        let inner = &*self.inner;
        let mut state = inner.refresh.lock().unwrap_or_else(PoisonError::into_inner);
        if state.last_upkeep.is_none_or(|t| {
            now.checked_duration_since(t)
                .is_some_and(|d| d >= Duration::from_secs(1))
        }) {
            inner.meters.metrics.upkeep();
            inner.meters.metrics.refresh(&self.scrape());
            state.last_upkeep = Some(now);
            self.save_alert_records_soon();
            if let Some(archive) = &inner.archive {
                match &inner.partitions {
                    None => {
                        crate::history::export(&inner.recorder.shared().store, archive);
                    }
                    Some(parts) => {
                        for r in parts.recorders() {
                            crate::history::export(&r.shared().store, archive);
                        }
                    }
                }
            }
        }
        if !inner.aggregate {
            return TickReport::default();
        }
        if inner.publisher.wants_full_state() {
            state.planner.resend_all();
        }
        if let Some(rules) = inner.partitions.as_ref().and_then(|p| p.take_moved()) {
            // A partition came or went: publish every value owned now (what another
            // node published meanwhile may differ from what this one last sent), and
            // resume the alert states taken over.
            state.planner.resend_all();
            state.planner.import_rules(rules);
        }
        let started = Instant::now();
        let docs = || inner.registry.list();
        let unhealthy = |metric: &str| inner.health.is_unhealthy(metric);
        let owned = |metric: &str| inner.partitions.as_ref().is_none_or(|p| p.owns(metric));
        let plan = state.planner.plan(&PlanInput {
            generation: inner.registry.generation(),
            docs: &docs,
            queries: &Stores(inner),
            unhealthy: &unhealthy,
            owned: &owned,
            stale_after_intervals: inner.config.stale_after_intervals.get(),
            now,
        });
        // `state` stays locked until the plan is published: two ticks (the run loop and a
        // manual one) never publish out of order. Only ticks take this lock.
        let mut report = TickReport::default();
        // Retired keys go before this tick publishes, so a new subscriber's snapshot does
        // not show them.
        for (topic, keys) in &plan.retire {
            inner.publisher.retire(topic, keys);
        }
        if !plan.worked {
            return report;
        }
        let m = &inner.meters;
        for t in &plan.query_times {
            m.metrics.aggregation.record(t.as_secs_f64());
        }
        report.widgets_evaluated = plan.widgets_evaluated;
        report.queries_computed = plan.query_times.len();
        m.metrics
            .widget_evaluations
            .increment(report.widgets_evaluated as u64);
        m.metrics
            .query_evaluations
            .increment(report.queries_computed as u64);
        m.widget_evaluations
            .fetch_add(report.widgets_evaluated as u64, Ordering::Relaxed);
        m.query_evaluations
            .fetch_add(report.queries_computed as u64, Ordering::Relaxed);

        // One frame per dashboard with changes, encoded once.
        let sent_at = now.as_millis();
        for (topic, states) in &plan.updates {
            inner.publisher.publish(&Publication {
                topic,
                sent_at,
                payload: Payload::Update(states),
                cached: true,
            });
            for s in states {
                if !s.stale
                    && let Some(age) = s
                        .last_event_time
                        .and_then(|t| now.checked_duration_since(t))
                {
                    m.metrics.publish_latency.record(age.as_secs_f64());
                }
            }
            report.values_published += states.len();
            report.frames_published += 1;
        }

        // Alerts: pushed on the dashboard's topic, kept in the history.
        for (i, a) in plan.alerts.iter().enumerate() {
            let topic = inner.registry.topic(&a.dashboard_id);
            inner.publisher.publish(&Publication {
                topic: &topic,
                sent_at,
                payload: Payload::Alert(a),
                cached: i >= plan.uncached_alerts,
            });
            match a.state {
                AlertState::Firing => m.metrics.alerts_firing.increment(1),
                AlertState::Resolved => m.metrics.alerts_resolved.increment(1),
            }
        }
        let frames = report.frames_published + plan.alerts.len();
        m.metrics.frames_published.increment(frames as u64);
        m.frames.fetch_add(frames as u64, Ordering::Relaxed);
        self.inner.record_alerts(&plan.alerts);
        report.alerts = plan.alerts;
        m.metrics.tick.record(started.elapsed().as_secs_f64());
        report
    }

    /// Starts the engine's background work on the current tokio runtime — the refresh
    /// scheduler ([`run`](Self::run)) — and returns the one handle that stops it:
    /// [`EngineTask::shutdown`] stops the scheduler and closes every WebSocket and SSE
    /// session with 1001 ([`close_sessions`](Self::close_sessions)).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::{Engine, EngineConfig, MemoryStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rtdash::Error> {
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// let task = engine.spawn();
    /// // … serve the router until the server should stop, then:
    /// task.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn spawn(&self) -> EngineTask {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let engine = self.clone();
        let scheduler = tokio::spawn(async move {
            engine
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        EngineTask {
            engine: self.clone(),
            stop: Some(stop),
            scheduler,
        }
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

    /// The value of one widget, computed now from the window store — not the last
    /// published value (which a subscription's snapshot carries), so it may be newer than
    /// what clients were sent. Served by `GET /dashboards/{id}/widgets/{widget}/snapshot`.
    ///
    /// Over a window with no event the value follows
    /// [`Aggregation`](crate::Aggregation)'s rule: 0 for count and sum, `None` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::{Aggregation, DashboardDoc, Engine, EngineConfig, MemoryStore, MetricEvent, Widget};
    ///
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// let requests = Widget::new("Requests", "http.requests", Aggregation::Count, 60);
    /// let latency = Widget::new("Mean latency", "http.latency_ms", Aggregation::Avg, 60);
    /// let (r, l) = (requests.widget_id, latency.widget_id);
    /// engine.dashboards().create(
    ///     DashboardDoc::new("ops", "Operations")?.with_widget(requests).with_widget(latency),
    /// )?;
    /// // No event yet: a count is 0, a mean has no value.
    /// assert_eq!(engine.widget_value("ops", r)?.value, Some(0.0));
    /// assert_eq!(engine.widget_value("ops", l)?.value, None);
    ///
    /// engine.ingest(MetricEvent::new("http.requests", 1.0, rtdash::Timestamp::now()))?;
    /// let state = engine.widget_value("ops", r)?;
    /// assert_eq!((state.value, state.count, state.stale), (Some(1.0), 1, false));
    /// # Ok::<(), rtdash::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`], [`Error::UnknownWidget`].
    pub fn widget_value(&self, dashboard: &str, widget: Uuid) -> Result<WidgetState, Error> {
        self.widget_value_at(dashboard, widget, Timestamp::now())
    }

    /// The metrics this engine's window store has seen, with their tag keys and values
    /// (bounded; see [`catalog`](crate::catalog)). With a partitioned log, those of the
    /// partitions this node owns.
    #[must_use]
    pub fn catalog(&self) -> Catalog {
        match &self.inner.partitions {
            None => {
                let store = self.inner.read_store();
                Catalog::of_keys(store.interner().iter().map(|(_, k)| k))
            }
            Some(parts) => {
                let recorders = parts.recorders();
                let guards: Vec<_> = recorders
                    .iter()
                    .map(|r| {
                        r.shared()
                            .store
                            .read()
                            .unwrap_or_else(PoisonError::into_inner)
                    })
                    .collect();
                Catalog::of_keys(
                    guards
                        .iter()
                        .flat_map(|g| g.interner().iter().map(|(_, k)| k)),
                )
            }
        }
    }

    /// The value `widget` (not part of any dashboard) would have now: what an editor
    /// shows before the widget is saved. The widget is validated as
    /// [`Widget::validate`](rtdash_core::Widget::validate) does with this engine's limits.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] (`invalid_widget`) listing every broken rule;
    /// [`Error::NotOwned`] when another node aggregates its metric.
    pub fn preview(&self, widget: &rtdash_core::Widget) -> Result<WidgetState, Error> {
        self.preview_at(widget, Timestamp::now())
    }

    /// [`preview`](Self::preview) at time `now`.
    ///
    /// # Errors
    ///
    /// As [`preview`](Self::preview).
    pub fn preview_at(
        &self,
        widget: &rtdash_core::Widget,
        now: Timestamp,
    ) -> Result<WidgetState, Error> {
        let limits = self.inner.config.effective_schema();
        widget
            .validate(&limits)
            .map_err(|e| Error::from_core(e, Subject::Widget))?;
        self.value_now(None, widget, now)
    }

    /// [`widget_value`](Self::widget_value) at time `now` (for tests and replays).
    ///
    /// # Errors
    ///
    /// As [`widget_value`](Self::widget_value).
    pub fn widget_value_at(
        &self,
        dashboard: &str,
        widget: Uuid,
        now: Timestamp,
    ) -> Result<WidgetState, Error> {
        let w = self.inner.registry.widget(dashboard, widget)?;
        self.value_now(Some(dashboard), &w, now)
    }

    /// Widget `w`'s value at `now`, computed from the window store (of its metric's
    /// partition); `dashboard` is `None` for a widget of no dashboard (a preview).
    fn value_now(
        &self,
        dashboard: Option<&str>,
        w: &rtdash_core::Widget,
        now: Timestamp,
    ) -> Result<WidgetState, Error> {
        if let Some(parts) = &self.inner.partitions
            && !parts.owns(&w.metric_name)
        {
            return Err(Error::NotOwned {
                metric: w.metric_name.clone(),
            });
        }
        let answer = Stores(&self.inner).answer(&QuerySpec::of(w), now);
        let input = StateInput {
            dashboard: dashboard.unwrap_or_default(),
            widget: w.widget_id,
            stale_after: stale_limit(
                w,
                w.refresh_interval().unwrap_or_default(),
                self.inner.config.stale_after_intervals.get(),
            ),
            unhealthy: self.inner.health.is_unhealthy(&w.metric_name),
            now,
        };
        Ok(state_of(&input, answer.as_ref()))
    }

    /// Hands every roll-up bucket not yet archived, complete or not, to the history
    /// archive and waits up to `timeout` for it to store them (the last step of
    /// [`EngineTask::shutdown`]). Nothing happens without an archive, or with a partitioned
    /// log (whose partitions' next owners hold those buckets).
    async fn flush_history(&self, timeout: Duration) {
        let Some(archive) = self.inner.archive.clone() else {
            return;
        };
        if self.inner.partitions.is_some() {
            return;
        }
        let buckets = crate::history::take(&self.inner.recorder.shared().store, true);
        let done = tokio::task::spawn_blocking(move || {
            archive.offer(buckets);
            archive.flush(timeout)
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "history archive: not everything stored at shutdown")
            }
            Err(e) => tracing::warn!(error = %e, "history archive: flush at shutdown failed"),
        }
    }

    /// The history of a widget over `req`'s range: one point per step, each the widget's
    /// aggregation over its window ending at the point's time, exactly as the live value
    /// was computed (see [`history`](crate::history) for windows over coarser data and
    /// how the step is chosen). Recent points come from the window store; with a
    /// [`HistoryArchive`](crate::history::HistoryArchive) (e.g. PostgreSQL), older ones
    /// from the archive.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rtdash::history::HistoryRequest;
    /// use rtdash::{Aggregation, DashboardDoc, Engine, EngineConfig, MemoryStore, MetricEvent, Timestamp, Widget};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// let w = Widget::new("Requests", "http.requests", Aggregation::Count, 10);
    /// let id = w.widget_id;
    /// engine.dashboards().create(DashboardDoc::new("ops", "Operations")?.with_widget(w))?;
    /// let t0 = 1_700_000_000_000;
    /// for s in 0..60 {
    ///     let event = MetricEvent::new("http.requests", 1.0, Timestamp::from_millis(t0 + s * 1000));
    ///     engine.ingest_at(event, Timestamp::from_millis(t0 + s * 1000))?;
    /// }
    /// let now = Timestamp::from_millis(t0 + 60_000);
    /// let h = engine.history("ops", id, HistoryRequest::last(Duration::from_secs(60), now)).await?;
    /// let points = &h.series[0].points;
    /// assert_eq!((h.step_ms, points.len()), (1000, 60));
    /// // The count over the 10 s ending at each point: one event per second.
    /// assert_eq!(points.last().unwrap().value, Some(10.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`], [`Error::UnknownWidget`],
    /// [`Error::InvalidHistoryRequest`] (empty or too long range, bad step, too many
    /// points), [`Error::NotOwned`] (another node aggregates the metric),
    /// [`Error::HistoryUnavailable`] (an edge node, or the archive is unreachable).
    pub async fn history(
        &self,
        dashboard: &str,
        widget: Uuid,
        req: crate::history::HistoryRequest,
    ) -> Result<crate::history::History, Error> {
        let w = self.inner.registry.widget(dashboard, widget)?;
        if !self.inner.aggregate {
            return Err(Error::HistoryUnavailable {
                reason: "this node does not aggregate (an edge node): ask an aggregator".to_owned(),
            });
        }
        let recorder = match &self.inner.partitions {
            None => self.inner.recorder.clone(),
            Some(parts) => parts
                .recorder_for(&w.metric_name)
                .ok_or_else(|| Error::NotOwned {
                    metric: w.metric_name.clone(),
                })?,
        };
        let sources = crate::history::Sources {
            store: &recorder.shared().store,
            archive: self.inner.archive.clone(),
        };
        crate::history::compute(dashboard, &w, &req, sources).await
    }

    /// The histories of every widget of `dashboard` over `req`, in the dashboard's widget
    /// order: one [`History`](crate::history::History) each, or, per widget, why it has
    /// none ([`Error::NotOwned`], [`Error::HistoryUnavailable`]).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`]; [`Error::InvalidHistoryRequest`] when `req` is invalid
    /// (for any widget: the parameters are the same for all).
    pub(crate) async fn dashboard_history(
        &self,
        dashboard: &str,
        req: crate::history::HistoryRequest,
    ) -> Result<Vec<crate::history_wire::WidgetHistory>, Error> {
        let doc = self.inner.registry.get(dashboard)?;
        let mut out = Vec::with_capacity(doc.dashboard.widgets.len());
        for w in &doc.dashboard.widgets {
            match self.history(dashboard, w.widget_id, req).await {
                Err(e @ Error::InvalidHistoryRequest { .. }) => return Err(e),
                r => out.push((w.widget_id, r)),
            }
        }
        Ok(out)
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
        drain_late(&mut self.inner.recorder.write_store())
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

    /// A page of dashboard `dashboard`'s alert history: one [`AlertRecord`](crate::AlertRecord) per time a rule
    /// fired (with its resolve and its notifications' outcomes), newest first, selected by
    /// `query`. See [`alert_history`](crate::alert_history).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`] when no such dashboard exists (the history of a deleted
    /// dashboard is not served); [`Error::InvalidAlertHistoryQuery`] for a `limit`
    /// of 0 or above [`MAX_ALERT_HISTORY_PAGE`](crate::alert_history::MAX_ALERT_HISTORY_PAGE),
    /// or `from` after `to`.
    pub fn alert_history(
        &self,
        dashboard: &str,
        query: &AlertHistoryQuery,
    ) -> Result<AlertHistoryPage, Error> {
        if query.limit == 0 || query.limit > crate::alert_history::MAX_ALERT_HISTORY_PAGE {
            return Err(Error::InvalidAlertHistoryQuery {
                field: "limit",
                reason: format!(
                    "is {}; it must be 1 to {}",
                    query.limit,
                    crate::alert_history::MAX_ALERT_HISTORY_PAGE
                ),
            });
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(Error::InvalidAlertHistoryQuery {
                field: "from",
                reason: format!("{} is after `to` {}", from.as_millis(), to.as_millis()),
            });
        }
        self.inner.registry.get(dashboard)?;
        let log = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(log.records.query(dashboard, query))
    }

    /// Saves the alert records changed since the last save to the dashboard store now
    /// ([`DashboardStore::save_alert_records`]); the engine's scheduler does so about once a
    /// second, and [`EngineTask::shutdown`] a last time. Returns how many were saved.
    ///
    /// # Errors
    ///
    /// The store's error; the records are then saved at the next attempt.
    pub fn save_alert_records(&self) -> Result<usize, Error> {
        self.inner.persist_alert_records()
    }

    /// Takes up the alerts the loaded history says were firing when the engine last
    /// stopped: their rules start as firing (no second `firing` event while the value
    /// still breaches; a `resolved` one, closing the record, once it no longer does). With
    /// a partitioned log the partitions' checkpoints hold the rule states instead.
    fn resume_open_alerts(&self) {
        if self.inner.partitions.is_some() || !self.inner.aggregate {
            return;
        }
        let mut log = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let open: Vec<AlertEvent> = log
            .records
            .open_records()
            .map(|r| AlertEvent {
                rule_id: r.rule_id,
                dashboard_id: r.dashboard_id.clone(),
                widget_id: r.widget_id,
                state: AlertState::Firing,
                value: r.value,
                condition: r.condition,
                threshold: r.threshold,
                severity: r.severity,
                group: r.group.clone(),
                at: r.started_at,
                message: r.message.clone(),
            })
            .collect();
        if open.is_empty() {
            return;
        }
        let states = open
            .iter()
            .map(|a| {
                checkpoint::RuleCheckpoint::new(
                    &a.dashboard_id,
                    a.rule_id,
                    crate::alerts::Tracker::Firing,
                    a.group.clone(),
                )
            })
            .collect();
        for a in open {
            log.firing.insert((a.dashboard_id.clone(), a.rule_id), a);
        }
        drop(log);
        self.inner
            .refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .planner
            .import_rules(states);
    }

    /// Saves the changed alert records on a blocking thread (inside a tokio runtime), or
    /// now.
    fn save_alert_records_soon(&self) {
        let dirty = self
            .inner
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .has_dirty();
        if !dirty {
            return;
        }
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || inner.persist_alert_records());
            }
            Err(_) => {
                let _ = inner.persist_alert_records();
            }
        }
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
        self.inner.meters.stats()
    }

    /// The window store's counters (series, accepted and late events, newest event time).
    #[must_use]
    pub fn window_stats(&self) -> WindowStats {
        let mut total = self.inner.read_store().stats();
        // With a partitioned log: and the sum over the partitions owned here.
        for r in self.inner.partitions.iter().flat_map(|p| p.recorders()) {
            let s = r
                .shared()
                .store
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .stats();
            total.series += s.series;
            total.accepted += s.accepted;
            total.late_total += s.late_total;
            total.late_dropped += s.late_dropped;
            total.late_buffered += s.late_buffered;
            total.max_event_time = total.max_event_time.max(s.max_event_time);
        }
        total
    }

    /// The engine's metrics in the Prometheus text exposition format (version 0.0.4), as
    /// served by `GET /metrics`, when they go to a private recorder
    /// ([`MetricsSink::Isolated`](crate::MetricsSink::Isolated)); `None` when they go to
    /// the recorder the host installed (the default), which the host's exporter serves.
    ///
    /// The metrics: ingest (`rtdash_ingest_events_total`, `…_rejected_total`,
    /// `…_late_total`), refused events by reason (`rtdash_events_rejected_total{reason}`:
    /// `future`, `too_old`, `event_time`, `metric_name`, `value`, `tags`, `id`, `series`,
    /// `malformed`), aggregation time (`rtdash_aggregation_seconds`), push latency from
    /// event to socket write (`rtdash_push_latency_seconds`) and to publish
    /// (`rtdash_publish_latency_seconds`), active connections, subscribers per dashboard,
    /// conflated/dropped/evicted messages and more. The gauges and totals read from the hub,
    /// the transports and the window store are refreshed by the scheduler about once a
    /// second, and here before rendering.
    #[must_use]
    pub fn render_metrics(&self) -> Option<String> {
        let metrics = &self.inner.meters.metrics;
        if !metrics.is_isolated() {
            return None;
        }
        metrics.refresh(&self.scrape());
        metrics.render()
    }

    /// The values the metrics mirror from the hub, the transports and the window store.
    fn scrape(&self) -> Scrape {
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
        #[cfg(feature = "redis")]
        if let Some(b) = &inner.backplane {
            s.extra = crate::redis::metrics(&b.stats());
        }
        #[cfg(feature = "redis")]
        if let Some(log) = &inner.stream_log {
            s.extra.extend(crate::redis::log_metrics(&log.stats()));
        }
        if let Some(archive) = &inner.archive {
            s.extra
                .extend(crate::metrics::archive_metrics(&archive.health()));
        }
        let records = {
            let log = inner.alerts.lock().unwrap_or_else(PoisonError::into_inner);
            (log.records.len(), log.records.evicted())
        };
        let n = &inner.notify_counts;
        s.extra.extend(crate::metrics::alert_metrics(
            &crate::metrics::AlertCounts {
                records: records.0 as u64,
                evicted: records.1,
                delivered: n.delivered.load(Ordering::Relaxed),
                failed: n.failed.load(Ordering::Relaxed),
                breaker_open: n.breaker_open.load(Ordering::Relaxed),
                dropped: n.dropped.load(Ordering::Relaxed),
                silenced: n.silenced.load(Ordering::Relaxed),
                save_failures: n.save_failures.load(Ordering::Relaxed),
            },
        ));
        s
    }

    /// Whether the engine's parts work: for now, its backplane (with feature `redis`).
    /// The router's `GET /health` answers `503` when this is not healthy.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::{Engine, EngineConfig, MemoryStore};
    ///
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// let health = engine.health();
    /// assert!(health.is_healthy());
    /// assert_eq!(health.backplane, None); // no backplane
    /// # Ok::<(), rtdash::Error>(())
    /// ```
    #[must_use]
    pub fn health(&self) -> EngineHealth {
        #[cfg(feature = "redis")]
        let backplane = self.inner.backplane.as_ref().map(|b| b.stats().up);
        #[cfg(feature = "redis")]
        let ingest_log = self.inner.stream_log.as_ref().map(|l| l.stats().up);
        #[cfg(not(feature = "redis"))]
        let (backplane, ingest_log) = (None, None);
        EngineHealth {
            backplane,
            ingest_log,
            history_archive: self.inner.archive.as_ref().map(|a| a.health().connected),
        }
    }
}

/// The background work of an [`Engine`] started by [`Engine::spawn`].
///
/// Dropping it without [`shutdown`](Self::shutdown) stops the scheduler too (sessions are
/// then left to the host).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rtdash::Error> {
/// let config = EngineConfig::default().with_tick(Duration::from_millis(10));
/// let task = Engine::new(config, MemoryStore::new())?.spawn();
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "CPU", "metric_name": "cpu", "aggregation": "max", "window_seconds": 10,
///      "refresh_interval_seconds": 1,
///      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}]}"#)?;
/// task.engine().dashboards().create(doc)?;
///
/// // The scheduler evaluates the new widget at its next tick, by itself.
/// while task.engine().stats().widget_evaluations == 0 {
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// task.shutdown().await; // stops the scheduler; WebSocket and SSE clients get 1001
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping the task stops the engine's scheduler at once"]
pub struct EngineTask {
    engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    scheduler: tokio::task::JoinHandle<()>,
}

impl EngineTask {
    /// The engine this task runs.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops the refresh scheduler (after the tick under way, if any) and closes every
    /// WebSocket and SSE session of the engine's transports with 1001 (going away), so
    /// clients reconnect elsewhere; returns when both are done (sessions wait at most their
    /// `shutdown_timeout`). With a history archive and no partitioned log, the roll-up
    /// buckets still filling are handed to the archive too, and the archive is given up
    /// to 5 s to store what it holds (with a partitioned log, the next owner of each
    /// partition holds them).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.scheduler).await;
        self.engine.release_partitions().await;
        self.engine.close_sessions().await;
        self.engine.flush_history(Duration::from_secs(5)).await;
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.save_alert_records()).await;
    }
}

impl Drop for EngineTask {
    fn drop(&mut self) {
        self.scheduler.abort();
    }
}

/// The WebSocket `history` request (see `docs/PROTOCOL.md`): the transport's
/// [`RequestHandler`](rtdash_transport::RequestHandler) that [`Engine::transport`] sets.
/// Holds the engine weakly (the engine holds its transports).
struct HistoryRequests {
    engine: std::sync::Weak<Inner>,
}

impl rtdash_transport::RequestHandler for HistoryRequests {
    fn kinds(&self) -> &[&'static str] {
        &["history"]
    }

    fn handle(
        &self,
        request: rtdash_transport::Request,
    ) -> futures::future::BoxFuture<'static, Result<Frame, rtdash_transport::RequestError>> {
        let engine = self.engine.upgrade().map(|inner| Engine { inner });
        Box::pin(async move {
            let Some(engine) = engine else {
                return Err(rtdash_transport::RequestError::new(
                    rtdash_transport::ErrorCode::Unavailable,
                    "the server is shutting down",
                ));
            };
            crate::history_wire::answer_ws(&engine, &request).await
        })
    }
}
