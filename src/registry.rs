//! [`Registry`]: the validated, persisted set of dashboards an engine serves.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::publish::{Payload, Publication, Publisher};
use crate::{
    AlertRule, DashboardDoc, DashboardEvent, DashboardStore, Error, LoadProblem, StoreChange,
    Subject, WidgetPatch,
};
use rtdash_core::{DashboardId, SchemaLimits, SchemaViolation, Timestamp, Uuid, Widget};

/// The dashboards of an [`Engine`](crate::Engine): create, read, update and delete
/// dashboards, their widgets and their alert rules.
///
/// Every change is completed — widgets without a position are placed in the first free
/// grid cells, widgets without a dashboard id get the dashboard's
/// ([`DashboardDoc::place_widgets`]) —, validated as a whole document
/// ([`DashboardDoc::validate`] against the engine's
/// [`effective_schema`](crate::EngineConfig::effective_schema): windows within the store's
/// retention, refresh intervals, grid layout, alert rules naming widgets of the dashboard,
/// ...) and written to the [`DashboardStore`] before it becomes visible; an invalid change
/// or a failed write changes nothing. Changes are serialised; reads never wait for a store
/// write.
///
/// Subscribers of a dashboard's topic receive a `{"type":"dashboard","event":"updated"}`
/// (or `"deleted"`) frame after each change, so clients can reload the layout; the
/// refresh scheduler picks the change up at its next tick.
///
/// # Changes made elsewhere
///
/// When several nodes share one store (e.g. `postgres::PostgresStore`, feature
/// `postgres`), the store reports the changes the other nodes make
/// ([`DashboardStore::watch`]) and the engine applies them as they come, on a thread of
/// its own: each document is read again, completed and validated against *this* engine's limits — one
/// that breaks them is not applied and is listed by
/// [`skipped_changes`](Self::skipped_changes), and the engine keeps its previous version —,
/// swapped in without being written back to the store, and announced with the same
/// `dashboard` frame (`created`, `updated`, `deleted`) a local change sends; the scheduler
/// re-plans at its next tick. A document equal to the one held (this node's own write, a
/// change reported twice) changes nothing and sends no frame.
///
/// # Blocking
///
/// The methods that change dashboards (`create`, `put`, `delete`, the widget and alert
/// rule edits) block the calling thread until the store has written the change (a
/// [`FileStore`](crate::FileStore) writes, `fsync`s and renames a file), and a second change
/// waits for the first. Reads never block on a write. From async code, make changes on
/// tokio's blocking thread pool, as the HTTP API does, so a slow store holds up no worker:
///
/// ```
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?;
/// let created = tokio::task::spawn_blocking({
///     let engine = engine.clone();
///     move || engine.dashboards().create(doc)
/// })
/// .await??;
/// assert_eq!(created.id(), "ops");
/// # Ok(()) }
/// ```
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardDoc, Engine, EngineConfig, MemoryStore, Uuid, WidgetPatch};
///
/// let store = MemoryStore::new();
/// let engine = Engine::new(EngineConfig::default(), store.clone())?;
/// let dashboards = engine.dashboards();
/// dashboards.create(DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?)?;
///
/// let patch = WidgetPatch::from_json(br#"{"add": [{
///     "widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///     "title": "Errors", "metric_name": "api.errors", "aggregation": "sum",
///     "window_seconds": 60, "refresh_interval_seconds": 1,
///     "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}]}"#)?;
/// dashboards.patch_widgets("ops", &patch)?;
/// let mut widget = dashboards.widget("ops", Uuid::from_u128(1))?;
/// widget.title = "5xx errors".into();
/// dashboards.update_widget("ops", widget)?;
/// let doc = dashboards.get("ops")?;
/// assert_eq!(doc.dashboard.widgets[0].title, "5xx errors");
/// assert_eq!(store.get("ops").as_ref(), Some(&*doc)); // stored before it became visible
///
/// dashboards.delete("ops")?;
/// assert!(dashboards.is_empty() && store.is_empty());
/// # Ok::<(), rtdash::Error>(())
/// ```
pub struct Registry {
    store: Box<dyn DashboardStore>,
    limits: SchemaLimits,
    docs: RwLock<BTreeMap<String, Arc<DashboardDoc>>>,
    write: Mutex<()>,
    generation: AtomicU64,
    problems: Vec<LoadProblem>,
    publisher: Arc<dyn Publisher>,
    topics: RwLock<BTreeMap<String, Arc<str>>>,
    /// The store's changes made elsewhere, until the engine starts draining them.
    changes: Mutex<Option<Receiver<StoreChange>>>,
    /// The most recent changes made elsewhere that were not applied.
    skipped: Mutex<VecDeque<LoadProblem>>,
}

/// How many skipped changes [`Registry::skipped_changes`] keeps.
const SKIPPED_KEPT: usize = 64;

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("dashboards", &self.len())
            .field("generation", &self.generation())
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub(crate) fn load(
        store: Box<dyn DashboardStore>,
        limits: SchemaLimits,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, Error> {
        // Watch first, so that no change made between the load and the watch is missed
        // (one seen twice is harmless).
        let changes = store.watch();
        let loaded = store.load_all()?;
        let mut problems = loaded.problems;
        let mut docs = BTreeMap::new();
        for mut doc in loaded.dashboards {
            doc.place_widgets(&limits);
            match doc.validate(&limits) {
                Ok(()) => {
                    docs.insert(doc.id().to_owned(), Arc::new(doc));
                }
                Err(e) => problems.push(LoadProblem {
                    path: PathBuf::from(doc.id()),
                    reason: format!("dashboard `{}` skipped: {e}", doc.id()),
                }),
            }
        }
        for p in &problems {
            tracing::warn!(path = %p.path.display(), reason = %p.reason, "dashboard store");
        }
        Ok(Self {
            store,
            limits,
            docs: RwLock::new(docs),
            write: Mutex::new(()),
            generation: AtomicU64::new(1),
            problems,
            publisher,
            topics: RwLock::new(BTreeMap::new()),
            changes: Mutex::new(changes),
            skipped: Mutex::new(VecDeque::new()),
        })
    }

    /// The dashboard store.
    pub(crate) fn store(&self) -> &dyn DashboardStore {
        &*self.store
    }

    /// The store's changes made elsewhere, once (for the engine to drain).
    pub(crate) fn take_store_changes(&self) -> Option<Receiver<StoreChange>> {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Changes made elsewhere in a shared store that this engine did not apply (the most
    /// recent 64, oldest first): documents the store could not read, and documents that
    /// break this engine's limits. Each is also logged with `tracing` at warn level. See
    /// [Changes made elsewhere](Self#changes-made-elsewhere).
    #[must_use]
    pub fn skipped_changes(&self) -> Vec<LoadProblem> {
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn skip(&self, problem: LoadProblem) {
        tracing::warn!(
            path = %problem.path.display(),
            reason = %problem.reason,
            "dashboard store: a change made elsewhere was not applied"
        );
        let mut skipped = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
        if skipped.len() == SKIPPED_KEPT {
            skipped.pop_front();
        }
        skipped.push_back(problem);
    }

    /// Applies a change made elsewhere (see [Changes made elsewhere](Self#changes-made-elsewhere)):
    /// read again, validated, swapped in without writing to the store, announced. Returns
    /// whether it changed anything.
    pub(crate) fn apply_store_change(&self, change: &StoreChange) -> bool {
        let id = change.id.as_str();
        // Under the write lock, so that the store and the registry agree: a local change
        // in progress (whose own report this may be) is complete before the store is
        // read, and none starts before the result is in place. A report read late thus
        // never undoes a newer local change.
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        // Once more on failure: a store that lost its connection makes it again at the
        // next call (the report may well be about coming back).
        let read = || self.store.load_one(&change.id);
        let loaded = match read().or_else(|_| read()) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.skip(LoadProblem {
                    path: PathBuf::from(id),
                    reason: format!(
                        "dashboard `{id}` changed elsewhere but cannot be read (applied when \
                         the store reports it again): {e}"
                    ),
                });
                return false;
            }
        };
        if let Some(problem) = loaded.problems.into_iter().next() {
            self.skip(problem);
            return false;
        }
        let current = self.read().get(id).cloned();
        let event = match loaded.dashboards.into_iter().find(|d| d.id() == id) {
            Some(mut doc) => {
                doc.place_widgets(&self.limits);
                if current.as_deref() == Some(&doc) {
                    return false;
                }
                if let Err(e) = doc.validate(&self.limits) {
                    self.skip(LoadProblem {
                        path: PathBuf::from(id),
                        reason: format!(
                            "dashboard `{id}` changed elsewhere but not applied (this node \
                             keeps its previous version): {e}"
                        ),
                    });
                    return false;
                }
                self.docs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.to_owned(), Arc::new(doc));
                if current.is_some() {
                    DashboardEvent::Updated
                } else {
                    DashboardEvent::Created
                }
            }
            None => {
                if current.is_none() {
                    return false;
                }
                self.docs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                DashboardEvent::Deleted
            }
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify(id, event);
        tracing::info!(
            dashboard = id,
            event = event.as_str(),
            "dashboard changed elsewhere"
        );
        true
    }

    /// The schema limits every change is validated against (the engine's
    /// [`effective_schema`](crate::EngineConfig::effective_schema)).
    #[must_use]
    pub fn limits(&self) -> &SchemaLimits {
        &self.limits
    }

    /// Documents the store could not load at start-up (and leftover files it cleaned up),
    /// with their paths and reasons. Also logged with `tracing` at warn level.
    #[must_use]
    pub fn load_problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// A counter that changes with every successful change (used by the scheduler to
    /// notice changes).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of dashboards.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there is no dashboard.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Every dashboard, ordered by id.
    #[must_use]
    pub fn list(&self) -> Vec<Arc<DashboardDoc>> {
        self.read().values().cloned().collect()
    }

    /// Whether dashboard `id` exists.
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    /// Dashboard `id`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`].
    pub fn get(&self, id: &str) -> Result<Arc<DashboardDoc>, Error> {
        self.read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::UnknownDashboard { id: id.to_owned() })
    }

    /// The widget `widget` of dashboard `dashboard`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`], [`Error::UnknownWidget`].
    pub fn widget(&self, dashboard: &str, widget: Uuid) -> Result<Widget, Error> {
        let doc = self.get(dashboard)?;
        doc.dashboard
            .widget(widget)
            .cloned()
            .ok_or_else(|| Error::UnknownWidget {
                dashboard: dashboard.to_owned(),
                widget,
            })
    }

    /// Creates a dashboard.
    ///
    /// # Errors
    ///
    /// [`Error::DashboardExists`] if the id is taken; [`Error::Invalid`] listing every
    /// violation; [`Error::Store`] if it could not be stored.
    pub fn create(&self, doc: impl Into<DashboardDoc>) -> Result<Arc<DashboardDoc>, Error> {
        let doc = doc.into();
        let id = doc.id().to_owned();
        self.commit(
            &id,
            Subject::Dashboard,
            DashboardEvent::Created,
            |cur| match cur {
                Some(_) => Err(Error::DashboardExists { id: id.clone() }),
                None => Ok(Some(doc)),
            },
        )
        .map(|(d, _)| d)
    }

    /// Creates or replaces a dashboard; returns it and whether it was created.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] listing every violation; [`Error::Store`].
    pub fn put(&self, doc: impl Into<DashboardDoc>) -> Result<(Arc<DashboardDoc>, bool), Error> {
        let doc = doc.into();
        let id = doc.id().to_owned();
        self.commit(&id, Subject::Dashboard, DashboardEvent::Updated, |_| {
            Ok(Some(doc))
        })
    }

    /// Deletes a dashboard; returns what it was.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`]; [`Error::Store`].
    pub fn delete(&self, id: &str) -> Result<Arc<DashboardDoc>, Error> {
        let old = self.get(id)?;
        self.commit(
            id,
            Subject::Dashboard,
            DashboardEvent::Deleted,
            |cur| match cur {
                Some(_) => Ok(None),
                None => Err(Error::UnknownDashboard { id: id.to_owned() }),
            },
        )?;
        Ok(old)
    }

    /// Adds, replaces and removes widgets of dashboard `dashboard` in one change (see
    /// [`WidgetPatch`]). Removing a widget removes its alert rules.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`]; [`Error::UnknownWidget`] for an `update` or `remove` id
    /// not in the dashboard; [`Error::Invalid`] (`invalid_widget`) listing every violation,
    /// with paths such as `widgets[3].window_seconds`; [`Error::Store`].
    pub fn patch_widgets(
        &self,
        dashboard: &str,
        patch: &WidgetPatch,
    ) -> Result<Arc<DashboardDoc>, Error> {
        self.modify(dashboard, Subject::Widget, |doc| patch.apply(doc))
    }

    /// Adds a widget to dashboard `dashboard`: a widget without a position is placed in the
    /// first free grid cells, one without a dashboard id gets `dashboard`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::{Aggregation, DashboardDoc, Engine, EngineConfig, MemoryStore, Widget};
    ///
    /// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
    /// engine.dashboards().create(DashboardDoc::new("ops", "Operations")?)?;
    /// let doc = engine
    ///     .dashboards()
    ///     .add_widget("ops", Widget::new("Errors", "http.errors", Aggregation::Sum, 60))?;
    /// let w = &doc.dashboard.widgets[0];
    /// assert_eq!(w.dashboard_id.as_ref().map(|d| d.as_str()), Some("ops"));
    /// assert_eq!(w.display.position, Some(rtdash::GridPos::new(0, 0, 3, 2)));
    /// # Ok::<(), rtdash::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`patch_widgets`](Self::patch_widgets).
    pub fn add_widget(&self, dashboard: &str, widget: Widget) -> Result<Arc<DashboardDoc>, Error> {
        self.patch_widgets(
            dashboard,
            &WidgetPatch {
                add: vec![widget],
                ..WidgetPatch::default()
            },
        )
    }

    /// Replaces the widget with `widget.widget_id`.
    ///
    /// # Errors
    ///
    /// As [`patch_widgets`](Self::patch_widgets).
    pub fn update_widget(
        &self,
        dashboard: &str,
        widget: Widget,
    ) -> Result<Arc<DashboardDoc>, Error> {
        self.patch_widgets(
            dashboard,
            &WidgetPatch {
                update: vec![widget],
                ..WidgetPatch::default()
            },
        )
    }

    /// Removes a widget (and its alert rules).
    ///
    /// # Errors
    ///
    /// As [`patch_widgets`](Self::patch_widgets).
    pub fn remove_widget(&self, dashboard: &str, widget: Uuid) -> Result<Arc<DashboardDoc>, Error> {
        self.patch_widgets(
            dashboard,
            &WidgetPatch {
                remove: vec![widget],
                ..WidgetPatch::default()
            },
        )
    }

    /// Replaces the alert rules of dashboard `dashboard`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDashboard`]; [`Error::Invalid`] (`invalid_alert_rule`) with paths
    /// such as `alert_rules[0].threshold`; [`Error::Store`].
    pub fn set_alert_rules(
        &self,
        dashboard: &str,
        rules: Vec<AlertRule>,
    ) -> Result<Arc<DashboardDoc>, Error> {
        self.modify(dashboard, Subject::AlertRule, |doc| {
            doc.alert_rules = rules;
            Ok(())
        })
    }

    /// Adds one alert rule to dashboard `dashboard`.
    ///
    /// # Errors
    ///
    /// As [`set_alert_rules`](Self::set_alert_rules).
    pub fn add_alert_rule(
        &self,
        dashboard: &str,
        rule: AlertRule,
    ) -> Result<Arc<DashboardDoc>, Error> {
        self.modify(dashboard, Subject::AlertRule, |doc| {
            doc.alert_rules.push(rule);
            Ok(())
        })
    }

    fn modify(
        &self,
        id: &str,
        what: Subject,
        change: impl FnOnce(&mut DashboardDoc) -> Result<(), Error>,
    ) -> Result<Arc<DashboardDoc>, Error> {
        self.commit(id, what, DashboardEvent::Updated, |cur| {
            let Some(cur) = cur else {
                return Err(Error::UnknownDashboard { id: id.to_owned() });
            };
            let mut doc = cur.clone();
            change(&mut doc)?;
            Ok(Some(doc))
        })
        .map(|(d, _)| d)
    }

    /// The one write path: decide under the write lock, validate, persist, publish.
    fn commit(
        &self,
        id: &str,
        what: Subject,
        event: DashboardEvent,
        decide: impl FnOnce(Option<&DashboardDoc>) -> Result<Option<DashboardDoc>, Error>,
    ) -> Result<(Arc<DashboardDoc>, bool), Error> {
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.read().get(id).cloned();
        let created = current.is_none();
        let next = decide(current.as_deref())?;
        let result = match next {
            Some(mut doc) => {
                doc.place_widgets(&self.limits);
                let violations: Vec<SchemaViolation> = doc.violations(&self.limits);
                if !violations.is_empty() {
                    return Err(Error::Invalid { what, violations });
                }
                self.store.put(&doc)?;
                let doc = Arc::new(doc);
                self.docs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.to_owned(), Arc::clone(&doc));
                (doc, created)
            }
            None => {
                let dashboard_id = DashboardId::new(id).map_err(|e| Error::from_core(e, what))?;
                self.store.delete(&dashboard_id)?;
                let old = self
                    .docs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                match old {
                    Some(old) => (old, false),
                    None => return Err(Error::UnknownDashboard { id: id.to_owned() }),
                }
            }
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        let event = if created {
            DashboardEvent::Created
        } else {
            event
        };
        self.notify(id, event);
        Ok(result)
    }

    /// Publishes a keyless `dashboard` notice frame on the dashboard's topic.
    fn notify(&self, id: &str, event: DashboardEvent) {
        let topic = self.topic(id);
        self.publisher.publish(&Publication {
            topic: &topic,
            sent_at: Timestamp::now().as_millis(),
            payload: Payload::Dashboard(event),
            cached: false,
        });
    }

    /// The hub topic of dashboard `id` (shared `Arc<str>`, so publishes do not allocate).
    pub(crate) fn topic(&self, id: &str) -> Arc<str> {
        if let Some(t) = self
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Arc::clone(t);
        }
        let mut w = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(w.entry(id.to_owned()).or_insert_with(|| Arc::from(id)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<DashboardDoc>>> {
        self.docs.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drains a store's changes made elsewhere on a thread of its own, handing each to `apply`
/// until the store stops (drops its sender) or `apply` answers `false` (the engine is
/// gone).
///
/// # Errors
///
/// [`Error::Store`] when the thread cannot be started.
pub(crate) fn follow_store(
    changes: Receiver<StoreChange>,
    mut apply: impl FnMut(StoreChange) -> bool + Send + 'static,
) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("rtdash-store-watch".to_owned())
        .spawn(move || {
            while let Ok(change) = changes.recv() {
                if !apply(change) {
                    break;
                }
            }
        })
        .map(drop)
        .map_err(|e| {
            Error::store(
                "watch",
                "dashboard store",
                format!("cannot start the thread that applies changes made elsewhere: {e}"),
            )
        })
}
