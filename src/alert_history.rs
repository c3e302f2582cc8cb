//! The alert history: one [`AlertRecord`] per time an alert rule fired, closed by its
//! resolve, with the outcome of every notification sent for it.
//!
//! The engine keeps the newest [`EngineConfig::alert_records`](crate::EngineConfig::alert_records)
//! records in memory, answers [`Engine::alert_history`](crate::Engine::alert_history) from
//! them, and hands new and changed records to its
//! [`DashboardStore`](crate::DashboardStore) about once a second
//! ([`save_alert_records`](crate::DashboardStore::save_alert_records)), which loads them
//! back when the engine starts: with a [`FileStore`](crate::FileStore) or a PostgreSQL store
//! the history survives a restart.
//!
//! # Examples
//!
//! ```
//! use rtdash::{AlertHistoryQuery, AlertState, DashboardDoc, Engine, EngineConfig, MemoryStore, Timestamp};
//!
//! let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
//! let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
//!     {"widget_id": "00000000-0000-0000-0000-000000000001", "title": "CPU",
//!      "metric_name": "cpu", "aggregation": "max", "window_seconds": 10,
//!      "refresh_interval_seconds": 1,
//!      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}],
//!   "alert_rules": [{"widget_id": "00000000-0000-0000-0000-000000000001",
//!      "condition": "above", "threshold": 80, "name": "CPU hot", "severity": "critical"}]}"#)?;
//! engine.dashboards().create(doc)?;
//!
//! let t0 = Timestamp::from_millis(1_700_000_000_000);
//! engine.ingest_json_at(br#"{"metric_name": "cpu", "value": 93, "event_time": 1700000000000}"#, t0)?;
//! engine.tick(t0); // fires
//! let t1 = Timestamp::from_millis(1_700_000_012_000); // the 93 has left the 10 s window
//! engine.ingest_json_at(br#"{"metric_name": "cpu", "value": 20, "event_time": 1700000011500}"#, t1)?;
//! engine.tick(t1); // resolves
//!
//! let page = engine.alert_history("ops", &AlertHistoryQuery::default())?;
//! let record = &page.records[0];
//! assert_eq!(record.rule_name.as_deref(), Some("CPU hot"));
//! assert_eq!((record.value, record.end_value), (Some(93.0), Some(20.0)));
//! assert_eq!(record.duration_ms, Some(12_000));
//! assert_eq!(record.state(), AlertState::Resolved);
//! # Ok::<(), rtdash::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use rtdash_core::{Timestamp, Uuid};
use serde::{Deserialize, Serialize};

use crate::{AlertCondition, AlertEvent, AlertRule, AlertSeverity, AlertState};

/// Most records one page of [`Engine::alert_history`](crate::Engine::alert_history) holds.
pub const MAX_ALERT_HISTORY_PAGE: usize = 200;

/// One time an alert rule fired: from its `firing` event to its `resolved` event (open
/// while `ended_at` is `None`).
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The record's id, stable across restarts (the key it is stored under; webhook
    /// deliveries carry it in their `Idempotency-Key`).
    pub id: Uuid,
    /// Its place in this engine's history, for paging (`before`): newer records have larger
    /// numbers. Assigned anew when the history is loaded; not stored.
    #[serde(default)]
    pub seq: u64,
    /// The dashboard of the rule.
    pub dashboard_id: String,
    /// The rule.
    pub rule_id: Uuid,
    /// The widget the rule watches.
    #[serde(rename = "widget")]
    pub widget_id: Uuid,
    /// The rule's name when it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// The rule's severity when it fired.
    #[serde(default)]
    pub severity: AlertSeverity,
    /// The rule's condition.
    pub condition: AlertCondition,
    /// The rule's threshold.
    pub threshold: f64,
    /// For a `group_by` widget, the group that crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The value that crossed the threshold.
    pub value: Option<f64>,
    /// When it fired, ms since the Unix epoch.
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub started_at: Timestamp,
    /// When it resolved; `None` while it fires.
    #[cfg_attr(feature = "http", schema(value_type = Option<i64>))]
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    /// The value that came back within the threshold (`None` when the window became empty
    /// or the rule was removed or changed).
    #[serde(default)]
    pub end_value: Option<f64>,
    /// `ended_at - started_at` in ms; `None` while it fires.
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// The message of the `firing` event (and of the `resolved` one, after a newline).
    pub message: String,
    /// Whether the rule was silenced when it fired (no notification was sent).
    #[serde(default)]
    pub silenced: bool,
    /// One entry per webhook URL and transition (`firing`, `resolved`): what became of it.
    #[serde(default)]
    pub notifications: Vec<NotificationRecord>,
}

impl AlertRecord {
    /// `Firing` while open, `Resolved` once ended.
    #[must_use]
    pub fn state(&self) -> AlertState {
        if self.ended_at.is_some() {
            AlertState::Resolved
        } else {
            AlertState::Firing
        }
    }
}

/// What became of one notification of an [`AlertRecord`].
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// Where it went (a webhook URL).
    pub url: String,
    /// Which transition it announced.
    pub state: AlertState,
    /// Its outcome so far.
    pub outcome: NotificationOutcome,
    /// How many requests were made.
    #[serde(default)]
    pub attempts: u32,
    /// The HTTP status of the last answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the outcome was known (or the notification queued, while `pending`).
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub at: Timestamp,
}

/// The outcome of one notification.
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationOutcome {
    /// Queued or being retried.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed, or the receiver refused it (a 4xx other than 408 and 429).
    Failed,
    /// Not sent: the receiver's circuit breaker was open after repeated failures.
    BreakerOpen,
    /// Not sent: the receiver's queue was full.
    Dropped,
    /// Not sent: the rule was silenced.
    Silenced,
}

impl NotificationOutcome {
    /// Its name in JSON and in metrics: `pending`, `delivered`, `failed`, `breaker_open`,
    /// `dropped` or `silenced`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::BreakerOpen => "breaker_open",
            Self::Dropped => "dropped",
            Self::Silenced => "silenced",
        }
    }
}

/// Which records [`Engine::alert_history`](crate::Engine::alert_history) answers with: all
/// filters must hold. `Default`: the newest 50 records of the dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertHistoryQuery {
    /// Only this rule's records.
    pub rule: Option<Uuid>,
    /// `Firing`: only open records; `Resolved`: only ended ones.
    pub state: Option<AlertState>,
    /// Only records of this severity.
    pub severity: Option<AlertSeverity>,
    /// Only records that were firing at or after this time (ended at or after it, or open).
    pub from: Option<Timestamp>,
    /// Only records that started before this time.
    pub to: Option<Timestamp>,
    /// At most this many records (1 to [`MAX_ALERT_HISTORY_PAGE`]).
    pub limit: usize,
    /// Only records older than this [`seq`](AlertRecord::seq): the `next` of the previous page.
    pub before: Option<u64>,
}

impl Default for AlertHistoryQuery {
    fn default() -> Self {
        Self {
            rule: None,
            state: None,
            severity: None,
            from: None,
            to: None,
            limit: 50,
            before: None,
        }
    }
}

/// One page of the alert history, newest first.
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertHistoryPage {
    /// The records, newest first.
    pub records: Vec<AlertRecord>,
    /// Pass it as `before` for the next (older) page; `None` on the last page.
    pub next: Option<u64>,
}

/// Where alert notifications go: the seam behind per-rule `webhooks`.
///
/// The engine calls [`notify`](Self::notify) for each webhook URL of a rule that fires or
/// resolves (unless the rule is silenced), from its refresh scheduler: it must not block.
/// `done` must be called exactly once, with the outcome, from any thread; the engine
/// records it in the [`AlertRecord`]'s `notifications`. With feature `webhooks`,
/// [`notify::WebhookNotifier`](crate::notify::WebhookNotifier) (POST with retries and a
/// circuit breaker per URL) is the default.
pub trait AlertNotifier: Send + Sync + 'static {
    /// Sends `body` (the JSON payload) to `url`; `key` identifies this notification
    /// (`<record id>:<state>`, the same on a retry) for the receiver to drop duplicates.
    fn notify(&self, url: &str, key: &str, body: Vec<u8>, done: NotifyDone);
}

impl<N: AlertNotifier> AlertNotifier for std::sync::Arc<N> {
    fn notify(&self, url: &str, key: &str, body: Vec<u8>, done: NotifyDone) {
        (**self).notify(url, key, body, done);
    }
}

/// What became of one notification, as its notifier reports it through [`NotifyDone`];
/// the engine files it under the notification's URL and transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyResult {
    /// How it ended.
    pub outcome: NotificationOutcome,
    /// How many requests were made.
    pub attempts: u32,
    /// The HTTP status of the last answer, if any.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When the outcome was known.
    pub at: Timestamp,
}

/// The callback of one notification's outcome (see [`AlertNotifier::notify`]).
pub type NotifyDone = Box<dyn FnOnce(NotifyResult) + Send>;

/// The JSON body of a webhook notification: one per fire and resolve (documented in
/// `docs/API.md`, "Webhook notifications").
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WebhookPayload<'a> {
    /// The payload's version: 1.
    pub version: u32,
    /// `firing` or `resolved`.
    pub event: AlertState,
    pub record_id: Uuid,
    pub dashboard_id: &'a str,
    pub rule_id: Uuid,
    pub rule_name: Option<&'a str>,
    pub widget: Uuid,
    pub severity: AlertSeverity,
    pub condition: AlertCondition,
    pub threshold: f64,
    /// The value of the event (the one that crossed, or came back).
    pub value: Option<f64>,
    pub group: Option<&'a str>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    pub message: &'a str,
    pub at: Timestamp,
}

impl<'a> WebhookPayload<'a> {
    /// The payload of `event` for `record`.
    pub(crate) fn of(record: &'a AlertRecord, event: &'a AlertEvent) -> Self {
        Self {
            version: 1,
            event: event.state,
            record_id: record.id,
            dashboard_id: &record.dashboard_id,
            rule_id: record.rule_id,
            rule_name: record.rule_name.as_deref(),
            widget: record.widget_id,
            severity: record.severity,
            condition: record.condition,
            threshold: record.threshold,
            value: event.value.filter(|v| v.is_finite()),
            group: record.group.as_deref(),
            started_at: record.started_at,
            ended_at: record.ended_at,
            duration_ms: record.duration_ms,
            message: &event.message,
            at: event.at,
        }
    }
}

/// The engine's bounded alert history (pure logic; the engine locks it).
#[derive(Debug)]
pub(crate) struct AlertHistory {
    records: BTreeMap<u64, AlertRecord>,
    by_id: HashMap<Uuid, u64>,
    /// The open record of each (dashboard, rule).
    open: HashMap<(String, Uuid), u64>,
    next_seq: u64,
    cap: usize,
    /// Ids of records changed since the last [`take_dirty`](Self::take_dirty).
    dirty: Vec<Uuid>,
    evicted: u64,
}

impl AlertHistory {
    /// An empty history of at most `cap` records (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            records: BTreeMap::new(),
            by_id: HashMap::new(),
            open: HashMap::new(),
            next_seq: 1,
            cap: cap.max(1),
            dirty: Vec::new(),
            evicted: 0,
        }
    }

    /// A history holding `loaded` (the newest `cap` of them, in the order they started).
    pub(crate) fn load(cap: usize, mut loaded: Vec<AlertRecord>) -> Self {
        let mut h = Self::new(cap);
        loaded.sort_by_key(|r| (r.started_at, r.id));
        let skip = loaded.len().saturating_sub(h.cap);
        for mut r in loaded.into_iter().skip(skip) {
            if h.by_id.contains_key(&r.id) {
                continue;
            }
            let seq = h.next_seq;
            h.next_seq += 1;
            r.seq = seq;
            if r.ended_at.is_none() {
                let key = (r.dashboard_id.clone(), r.rule_id);
                // Two open records of one rule (an earlier node crashed while it fired):
                // the older is left as it is, the newer one is the rule's open record.
                h.open.insert(key, seq);
            }
            h.by_id.insert(r.id, seq);
            h.records.insert(seq, r);
        }
        h
    }

    /// The open record of each rule (the newest, when a crash left two), oldest first.
    pub(crate) fn open_records(&self) -> impl Iterator<Item = &AlertRecord> + '_ {
        let mut seqs: Vec<u64> = self.open.values().copied().collect();
        seqs.sort_unstable();
        seqs.into_iter().filter_map(|s| self.records.get(&s))
    }

    /// How many records were pushed out by the bound since the start.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// How many records are held.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Applies one alert event of `rule` (`None` when the rule is gone): a `firing` event
    /// opens a record (closing an open one of the same rule, which the engine lost track
    /// of), a `resolved` one closes the rule's open record. `notify` lists the webhook URLs
    /// the event goes to and whether the rule was silenced. Returns the record's id, or
    /// `None` for a resolve without an open record.
    pub(crate) fn apply(
        &mut self,
        event: &AlertEvent,
        rule: Option<&AlertRule>,
        silenced: bool,
        notifications: Vec<NotificationRecord>,
    ) -> Option<Uuid> {
        let key = (event.dashboard_id.clone(), event.rule_id);
        match event.state {
            AlertState::Firing => {
                if let Some(seq) = self.open.remove(&key) {
                    self.close(seq, event.at, None, "superseded by a new firing");
                }
                let id = Uuid::new_v4();
                let seq = self.next_seq;
                self.next_seq += 1;
                let record = AlertRecord {
                    id,
                    seq,
                    dashboard_id: event.dashboard_id.clone(),
                    rule_id: event.rule_id,
                    widget_id: event.widget_id,
                    rule_name: rule.and_then(|r| r.name.clone()),
                    severity: event.severity,
                    condition: event.condition,
                    threshold: event.threshold,
                    group: event.group.clone(),
                    value: event.value,
                    started_at: event.at,
                    ended_at: None,
                    end_value: None,
                    duration_ms: None,
                    message: event.message.clone(),
                    silenced,
                    notifications,
                };
                self.open.insert(key, seq);
                self.by_id.insert(id, seq);
                self.records.insert(seq, record);
                self.dirty.push(id);
                self.enforce_cap();
                Some(id)
            }
            AlertState::Resolved => {
                let seq = self.open.remove(&key)?;
                self.close(seq, event.at, event.value, &event.message);
                let r = self.records.get_mut(&seq)?;
                r.notifications.extend(notifications);
                Some(r.id)
            }
        }
    }

    fn close(&mut self, seq: u64, at: Timestamp, value: Option<f64>, message: &str) {
        if let Some(r) = self.records.get_mut(&seq) {
            r.ended_at = Some(at);
            r.end_value = value;
            r.duration_ms = Some(at.as_millis().saturating_sub(r.started_at.as_millis()));
            r.message.push('\n');
            r.message.push_str(message);
            self.dirty.push(r.id);
        }
    }

    fn enforce_cap(&mut self) {
        while self.records.len() > self.cap {
            let Some((_, r)) = self.records.pop_first() else {
                break;
            };
            self.by_id.remove(&r.id);
            let key = (r.dashboard_id, r.rule_id);
            if self.open.get(&key) == Some(&r.seq) {
                self.open.remove(&key);
            }
            self.evicted += 1;
        }
    }

    /// Sets the outcome of record `id`'s notification to `url` for `state` (the newest
    /// such entry). `false` when the record or the entry is gone.
    pub(crate) fn report(
        &mut self,
        id: Uuid,
        url: &str,
        state: AlertState,
        result: NotifyResult,
    ) -> bool {
        let Some(r) = self
            .by_id
            .get(&id)
            .and_then(|seq| self.records.get_mut(seq))
        else {
            return false;
        };
        let Some(n) = r
            .notifications
            .iter_mut()
            .rev()
            .find(|n| n.url == url && n.state == state)
        else {
            return false;
        };
        n.outcome = result.outcome;
        n.attempts = result.attempts;
        n.status = result.status;
        n.error = result.error;
        n.at = result.at;
        self.dirty.push(id);
        true
    }

    /// A record by id.
    pub(crate) fn get(&self, id: Uuid) -> Option<&AlertRecord> {
        self.records.get(self.by_id.get(&id)?)
    }

    /// The records of `dashboard` that `q` selects, newest first.
    pub(crate) fn query(&self, dashboard: &str, q: &AlertHistoryQuery) -> AlertHistoryPage {
        let limit = q.limit.clamp(1, MAX_ALERT_HISTORY_PAGE);
        let upper = q.before.unwrap_or(u64::MAX);
        let mut records = Vec::with_capacity(limit.min(self.records.len()));
        let mut next = None;
        for r in self.records.range(..upper).rev().map(|(_, r)| r) {
            if !selects(r, dashboard, q) {
                continue;
            }
            if records.len() == limit {
                next = records.last().map(|r: &AlertRecord| r.seq);
                break;
            }
            records.push(r.clone());
        }
        AlertHistoryPage { records, next }
    }

    /// The records changed since the last call (each once, as they are now).
    pub(crate) fn take_dirty(&mut self) -> Vec<AlertRecord> {
        let mut ids = std::mem::take(&mut self.dirty);
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.get(id).cloned())
            .collect()
    }

    /// Whether records changed since the last [`take_dirty`](Self::take_dirty).
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Puts records back as changed (after their store failed to save them).
    pub(crate) fn mark_dirty(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        self.dirty.extend(ids);
    }
}

fn selects(r: &AlertRecord, dashboard: &str, q: &AlertHistoryQuery) -> bool {
    r.dashboard_id == dashboard
        && q.rule.is_none_or(|id| r.rule_id == id)
        && q.state.is_none_or(|s| r.state() == s)
        && q.severity.is_none_or(|s| r.severity == s)
        && q.from
            .is_none_or(|from| r.ended_at.is_none_or(|end| end >= from))
        && q.to.is_none_or(|to| r.started_at < to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + s * 1000)
    }

    fn event(dash: &str, rule: Uuid, state: AlertState, at: i64, value: f64) -> AlertEvent {
        AlertEvent {
            rule_id: rule,
            dashboard_id: dash.into(),
            widget_id: Uuid::from_u128(1),
            state,
            value: Some(value),
            condition: AlertCondition::Above,
            threshold: 1.0,
            severity: AlertSeverity::Warning,
            group: None,
            at: t(at),
            message: format!("{} at {at}", state.as_str()),
        }
    }

    /// A naive oracle: the records as a plain list, filtered and sorted on every query.
    #[test]
    fn pages_match_a_plain_filter_of_every_record() {
        let mut h = AlertHistory::new(1000);
        let rules = [
            Uuid::from_u128(10),
            Uuid::from_u128(11),
            Uuid::from_u128(12),
        ];
        for i in 0..90_i64 {
            let rule = rules[usize::try_from(i % 3).unwrap_or(0)];
            let dash = if i % 5 == 0 { "other" } else { "ops" };
            h.apply(
                &event(dash, rule, AlertState::Firing, i * 10, 5.0),
                None,
                false,
                vec![],
            );
            if i % 4 != 0 {
                h.apply(
                    &event(dash, rule, AlertState::Resolved, i * 10 + 3, 0.5),
                    None,
                    false,
                    vec![],
                );
            }
        }
        let all: Vec<AlertRecord> = h.records.values().cloned().collect();
        let queries = [
            AlertHistoryQuery {
                limit: 7,
                ..Default::default()
            },
            AlertHistoryQuery {
                limit: 5,
                rule: Some(rules[1]),
                ..Default::default()
            },
            AlertHistoryQuery {
                limit: 4,
                state: Some(AlertState::Firing),
                ..Default::default()
            },
            AlertHistoryQuery {
                limit: 9,
                state: Some(AlertState::Resolved),
                from: Some(t(300)),
                to: Some(t(700)),
                ..Default::default()
            },
        ];
        for q in queries {
            let want: Vec<u64> = all
                .iter()
                .rev()
                .filter(|r| selects(r, "ops", &q))
                .map(|r| r.seq)
                .collect();
            let mut got = Vec::new();
            let mut q = q.clone();
            loop {
                let page = h.query("ops", &q);
                assert!(page.records.len() <= q.limit);
                got.extend(page.records.iter().map(|r| r.seq));
                match page.next {
                    Some(n) => q.before = Some(n),
                    None => break,
                }
            }
            assert_eq!(got, want, "{q:?}");
            assert!(!want.is_empty(), "{q:?} selects something");
        }
    }

    #[test]
    fn a_resolve_closes_the_open_record_and_a_lone_resolve_is_ignored() {
        let mut h = AlertHistory::new(10);
        let rule = Uuid::from_u128(10);
        assert_eq!(
            h.apply(
                &event("ops", rule, AlertState::Resolved, 0, 1.0),
                None,
                false,
                vec![]
            ),
            None
        );
        let id = h.apply(
            &event("ops", rule, AlertState::Firing, 1, 7.0),
            None,
            false,
            vec![],
        );
        let closed = h.apply(
            &event("ops", rule, AlertState::Resolved, 61, 0.5),
            None,
            false,
            vec![],
        );
        assert_eq!(id, closed);
        let r = h
            .get(id.unwrap_or_default())
            .cloned()
            .unwrap_or_else(|| panic!("kept"));
        assert_eq!(
            (r.value, r.end_value, r.duration_ms),
            (Some(7.0), Some(0.5), Some(60_000))
        );
        assert_eq!(r.message, "firing at 1\nresolved at 61");
        // A second firing while one is open closes the first.
        let a = h.apply(
            &event("ops", rule, AlertState::Firing, 70, 7.0),
            None,
            false,
            vec![],
        );
        let b = h.apply(
            &event("ops", rule, AlertState::Firing, 80, 8.0),
            None,
            false,
            vec![],
        );
        assert_ne!(a, b);
        assert_eq!(
            h.get(a.unwrap_or_default()).and_then(|r| r.ended_at),
            Some(t(80))
        );
        assert_eq!(h.take_dirty().len(), 3);
        assert!(h.take_dirty().is_empty());
    }

    #[test]
    fn the_bound_drops_the_oldest_and_load_keeps_the_newest() {
        let mut h = AlertHistory::new(3);
        for i in 0..5 {
            h.apply(
                &event(
                    "ops",
                    Uuid::from_u128(i),
                    AlertState::Firing,
                    i.try_into().unwrap_or(0),
                    2.0,
                ),
                None,
                false,
                vec![],
            );
        }
        assert_eq!((h.len(), h.evicted()), (3, 2));
        let saved = h.take_dirty();
        assert_eq!(saved.len(), 3, "evicted records are not saved");
        let mut reloaded = AlertHistory::load(2, saved);
        assert_eq!(reloaded.len(), 2);
        let page = reloaded.query("ops", &AlertHistoryQuery::default());
        let starts: Vec<_> = page.records.iter().map(|r| r.started_at).collect();
        assert_eq!(starts, [t(4), t(3)]);
        // The open record of a loaded rule is closed by its resolve.
        let rule = page.records[0].rule_id;
        assert!(
            reloaded
                .apply(
                    &event("ops", rule, AlertState::Resolved, 9, 0.0),
                    None,
                    false,
                    vec![]
                )
                .is_some()
        );
    }

    #[test]
    fn reports_update_the_matching_notification() {
        let mut h = AlertHistory::new(10);
        let pending = |state| NotificationRecord {
            url: "http://a/".into(),
            state,
            outcome: NotificationOutcome::Pending,
            attempts: 0,
            status: None,
            error: None,
            at: t(0),
        };
        let rule = Uuid::from_u128(1);
        let id = h
            .apply(
                &event("ops", rule, AlertState::Firing, 0, 2.0),
                None,
                false,
                vec![pending(AlertState::Firing)],
            )
            .unwrap_or_default();
        h.apply(
            &event("ops", rule, AlertState::Resolved, 5, 0.0),
            None,
            false,
            vec![pending(AlertState::Resolved)],
        );
        let delivered = NotifyResult {
            outcome: NotificationOutcome::Delivered,
            attempts: 2,
            status: Some(200),
            error: None,
            at: t(1),
        };
        assert!(h.report(id, "http://a/", AlertState::Resolved, delivered.clone()));
        assert!(!h.report(
            Uuid::from_u128(99),
            "http://a/",
            AlertState::Resolved,
            delivered.clone()
        ));
        assert!(!h.report(id, "http://b/", AlertState::Resolved, delivered));
        let r = h.get(id).cloned().unwrap_or_else(|| panic!("kept"));
        let outcomes: Vec<_> = r.notifications.iter().map(|n| n.outcome).collect();
        assert_eq!(
            outcomes,
            [NotificationOutcome::Pending, NotificationOutcome::Delivered]
        );
    }
}
