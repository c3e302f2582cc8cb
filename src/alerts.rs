//! Threshold alerts on live widget values: [`AlertRule`], [`AlertEvent`] and the pure
//! per-rule state machine.

use std::time::Duration;

use rtdash_core::{SchemaViolation, Timestamp, Uuid};
use serde::{Deserialize, Serialize};

/// Which side of the threshold is bad.
///
/// # Examples
///
/// ```
/// use rtdash::AlertCondition;
///
/// assert!(AlertCondition::Above.breached(250.5, 250.0));
/// assert!(!AlertCondition::Above.breached(250.0, 250.0)); // strictly above
/// assert!(AlertCondition::Below.breached(0.5, 1.0));
/// assert_eq!(AlertCondition::Below.as_str(), "below");
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertCondition {
    /// The value is strictly greater than the threshold.
    Above,
    /// The value is strictly less than the threshold.
    Below,
}

impl AlertCondition {
    /// Whether `value` breaks the rule against `threshold`.
    #[must_use]
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Above => value > threshold,
            Self::Below => value < threshold,
        }
    }

    /// Its name in JSON, alert messages and alert frames: `"above"` or `"below"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

/// How serious an alert is: shown in the page and in the alert history, sent in
/// webhook payloads. JSON: `"info"`, `"warning"` (the default) or `"critical"`.
///
/// # Examples
///
/// ```
/// use rtdash::AlertSeverity;
///
/// assert_eq!(AlertSeverity::default(), AlertSeverity::Warning);
/// assert_eq!(serde_json::to_string(&AlertSeverity::Critical)?, r#""critical""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    /// Worth knowing.
    Info,
    /// Needs a look (the default).
    #[default]
    Warning,
    /// Needs action now.
    Critical,
}

impl AlertSeverity {
    /// Its name in JSON: `"info"`, `"warning"` or `"critical"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// The severity named `name` (as in JSON), or `None`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// A threshold rule on one widget's live value: fires when the value stays
/// [`above`](AlertCondition::Above) (or [`below`](AlertCondition::Below)) `threshold` for
/// at least `for_seconds`, resolves when it no longer does.
///
/// Rules are part of a dashboard document (its `alert_rules` list) and are evaluated by
/// the refresh scheduler each time the widget is evaluated. For a widget with `group_by`,
/// the rule looks at the worst group (the largest value for `above`, the smallest for
/// `below`). A window with no value does not breach: over a window with no event, an avg,
/// min, max or percentile widget has none, while a count or sum widget has 0, which is
/// compared like any value (so `below 1` on a count fires when traffic stops).
///
/// Every fire and resolve is kept in the alert history
/// ([`Engine::alert_history`](crate::Engine::alert_history)) and sent to each of the rule's
/// `webhooks` (unless the rule is silenced: `silenced_until` in the future).
///
/// JSON form (`id`, `for_seconds`, `name`, `severity`, `silenced_until` and `webhooks` may
/// be omitted; `id` then gets a random UUID):
///
/// ```json
/// {"id": "…", "widget_id": "…", "condition": "above", "threshold": 250,
///  "for_seconds": 30, "name": "p99 latency high", "severity": "critical",
///  "silenced_until": 1764600000000, "webhooks": ["https://hooks.example.com/rtdash"]}
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::{AlertRule, Uuid};
///
/// let widget = Uuid::new_v4();
/// let rule = AlertRule::above(widget, 250.0)
///     .with_for(Duration::from_secs(30))
///     .with_name("p99 latency high");
/// assert_eq!(rule.for_duration(), Duration::from_secs(30));
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "http",
    schema(
        description = "A threshold rule on one widget's live value: fires when the value stays \
        above (or below) `threshold` for at least `for_seconds`, resolves when it no longer \
        does. For a widget with `group_by` the worst group counts; a window without a value \
        (no event, for avg, min, max and percentiles) does not breach, while count and sum \
        are 0 then and compare like any value. `id` (a random UUID when omitted), `for_seconds` (0), `name`, \
        `severity` (`warning`), `silenced_until` (none) and `webhooks` (none) may be omitted; unknown fields are \
        refused. Every fire and resolve is kept in the alert history and POSTed to each webhook URL, unless the \
        rule is silenced (`silenced_until`, unix ms, in the future)."
    )
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique id of the rule within its dashboard.
    #[serde(default = "Uuid::new_v4")]
    pub id: Uuid,
    /// The widget whose value is watched; must be in the same dashboard.
    pub widget_id: Uuid,
    /// Which side of the threshold is bad.
    pub condition: AlertCondition,
    /// The threshold; finite.
    pub threshold: f64,
    /// How long the condition must hold before the alert fires, in seconds (0: at once);
    /// finite, at least 0, at most one day.
    #[serde(default)]
    pub for_seconds: f64,
    /// A human-readable name, used in the alert message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How serious the alert is.
    #[serde(default)]
    pub severity: AlertSeverity,
    /// Until when (ms since the Unix epoch) the rule's notifications are silenced: it is
    /// still evaluated and its fires and resolves are still kept in the alert history, but
    /// no webhook is sent. `None` or a past time: not silenced.
    #[cfg_attr(feature = "http", schema(value_type = Option<i64>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_until: Option<Timestamp>,
    /// Where each fire and resolve is POSTed as JSON (`http://` or `https://` URLs, at most
    /// [`AlertRule::MAX_WEBHOOKS`], each at most [`AlertRule::MAX_WEBHOOK_URL_LEN`] bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<String>,
}

/// Longest `for_seconds` accepted.
const MAX_FOR_SECONDS: f64 = 86_400.0;
/// Longest rule name accepted, in bytes.
const MAX_NAME_LEN: usize = 200;

impl AlertRule {
    /// A rule with a random id that fires at once when `widget_id`'s value exceeds
    /// `threshold`.
    #[must_use]
    pub fn above(widget_id: Uuid, threshold: f64) -> Self {
        Self::new(widget_id, AlertCondition::Above, threshold)
    }

    /// A rule with a random id that fires at once when `widget_id`'s value drops below
    /// `threshold`.
    #[must_use]
    pub fn below(widget_id: Uuid, threshold: f64) -> Self {
        Self::new(widget_id, AlertCondition::Below, threshold)
    }

    /// A rule with a random id.
    #[must_use]
    pub fn new(widget_id: Uuid, condition: AlertCondition, threshold: f64) -> Self {
        Self {
            id: Uuid::new_v4(),
            widget_id,
            condition,
            threshold,
            for_seconds: 0.0,
            name: None,
            severity: AlertSeverity::Warning,
            silenced_until: None,
            webhooks: Vec::new(),
        }
    }

    /// Most webhook URLs a rule may have.
    pub const MAX_WEBHOOKS: usize = 4;
    /// Longest webhook URL accepted, in bytes.
    pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

    /// Sets the severity.
    #[must_use]
    pub fn with_severity(mut self, severity: AlertSeverity) -> Self {
        self.severity = severity;
        self
    }

    /// Adds a webhook URL.
    #[must_use]
    pub fn with_webhook(mut self, url: impl Into<String>) -> Self {
        self.webhooks.push(url.into());
        self
    }

    /// Silences the rule's notifications until `until`.
    #[must_use]
    pub fn silenced_until(mut self, until: Timestamp) -> Self {
        self.silenced_until = Some(until);
        self
    }

    /// Whether `other` is evaluated exactly as this rule (same widget, condition, threshold
    /// and hold time): a change of name, severity, silence or webhooks keeps a firing
    /// alert firing.
    #[must_use]
    pub fn evaluates_as(&self, other: &Self) -> bool {
        self.widget_id == other.widget_id
            && self.condition == other.condition
            && self.threshold.to_bits() == other.threshold.to_bits()
            && self.for_seconds.to_bits() == other.for_seconds.to_bits()
    }

    /// Whether the rule's notifications are silenced at `now`.
    #[must_use]
    pub fn is_silenced(&self, now: Timestamp) -> bool {
        self.silenced_until.is_some_and(|until| now < until)
    }

    /// Sets how long the condition must hold before the alert fires.
    #[must_use]
    pub fn with_for(mut self, duration: Duration) -> Self {
        self.for_seconds = duration.as_secs_f64();
        self
    }

    /// Sets the name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the id.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// [`for_seconds`](Self::for_seconds) as a `Duration` (zero when it is not a valid
    /// number of seconds, which validation reports).
    #[must_use]
    pub fn for_duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.for_seconds).unwrap_or(Duration::ZERO)
    }

    /// Checks the rule on its own; paths are prefixed with `prefix`.
    pub(crate) fn check(&self, prefix: &str, out: &mut Vec<SchemaViolation>) {
        let at = |f: &str| format!("{prefix}{f}");
        if self.id.is_nil() {
            out.push(SchemaViolation::new(
                at("id"),
                "is the nil UUID; omit it to get a random id",
            ));
        }
        if !self.threshold.is_finite() {
            out.push(SchemaViolation::new(
                at("threshold"),
                format!("is {}; it must be a finite number", self.threshold),
            ));
        }
        let f = self.for_seconds;
        if !f.is_finite() || !(0.0..=MAX_FOR_SECONDS).contains(&f) {
            out.push(SchemaViolation::new(
                at("for_seconds"),
                format!("is {f}; it must be between 0 and {MAX_FOR_SECONDS} seconds"),
            ));
        }
        if let Some(name) = &self.name
            && name.len() > MAX_NAME_LEN
        {
            out.push(SchemaViolation::new(
                at("name"),
                format!("is {} bytes, the limit is {MAX_NAME_LEN}", name.len()),
            ));
        }
        if self.webhooks.len() > Self::MAX_WEBHOOKS {
            out.push(SchemaViolation::new(
                at("webhooks"),
                format!(
                    "has {} URLs, the limit is {}",
                    self.webhooks.len(),
                    Self::MAX_WEBHOOKS
                ),
            ));
        }
        for (i, url) in self.webhooks.iter().enumerate() {
            if let Err(reason) = check_webhook_url(url) {
                out.push(SchemaViolation::new(at(&format!("webhooks[{i}]")), reason));
            }
        }
        for (i, url) in self.webhooks.iter().enumerate() {
            if self.webhooks[..i].contains(url) {
                out.push(SchemaViolation::new(
                    at(&format!("webhooks[{i}]")),
                    "repeats an earlier URL of this rule",
                ));
            }
        }
    }

    pub(crate) fn message(
        &self,
        title: &str,
        state: AlertState,
        value: Option<f64>,
        group: Option<&str>,
    ) -> String {
        let name = self.name.as_deref().unwrap_or(title);
        let group = group.map(|g| format!(" [{g}]")).unwrap_or_default();
        let (condition, threshold) = (self.condition.as_str(), self.threshold);
        match (state, value) {
            (AlertState::Firing, Some(v)) => {
                format!("{name}{group}: {v} is {condition} {threshold}")
            }
            (AlertState::Resolved, Some(v)) => {
                format!("{name}{group}: {v}, no longer {condition} {threshold}")
            }
            (_, None) => format!("{name}{group}: no value, no longer {condition} {threshold}"),
        }
    }
}

/// Whether an alert started or ended.
///
/// # Examples
///
/// ```
/// use rtdash::AlertState;
///
/// assert_eq!(AlertState::Firing.as_str(), "firing");
/// // The same name in JSON (alert frames, `GET /dashboards/{id}/alerts`).
/// assert_eq!(serde_json::to_string(&AlertState::Resolved)?, r#""resolved""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition held for the rule's duration.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

impl AlertState {
    /// Its name in JSON and alert frames: `"firing"` or `"resolved"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// An alert firing or resolving, as pushed to subscribers (frame `{"type":"alert", ...}`)
/// and kept in [`Engine::alerts`](crate::Engine::alerts).
///
/// # Examples
///
/// ```
/// use rtdash::{AlertState, DashboardDoc, Engine, EngineConfig, MemoryStore, Timestamp};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// // Widget 1 shows the highest `cpu` of the last 10 s; its rule fires above 80.
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations", "widgets": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "CPU", "metric_name": "cpu", "aggregation": "max", "window_seconds": 10,
///      "refresh_interval_seconds": 1,
///      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}],
///   "alert_rules": [{"widget_id": "00000000-0000-0000-0000-000000000001",
///      "condition": "above", "threshold": 80, "name": "CPU hot"}]}"#)?;
/// engine.dashboards().create(doc)?;
///
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let body = br#"{"metric_name": "cpu", "value": 93, "event_time": 1700000000000}"#;
/// engine.ingest_json_at(body, now)?;
/// let alerts = engine.tick(now).alerts; // also pushed to the dashboard's subscribers
/// assert_eq!((alerts[0].state, alerts[0].value), (AlertState::Firing, Some(93.0)));
/// assert_eq!(alerts[0].message, "CPU hot: 93 is above 80");
/// assert_eq!(engine.firing_alerts(), alerts);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The rule.
    pub rule_id: Uuid,
    /// The dashboard of the widget.
    pub dashboard_id: String,
    /// The widget.
    #[serde(rename = "widget")]
    pub widget_id: Uuid,
    /// Firing or resolved.
    pub state: AlertState,
    /// The value that crossed (firing) or came back (resolved); `None` when the window
    /// became empty.
    pub value: Option<f64>,
    /// The rule's condition.
    pub condition: AlertCondition,
    /// The rule's threshold.
    pub threshold: f64,
    /// The rule's severity.
    #[serde(default)]
    pub severity: AlertSeverity,
    /// For a `group_by` widget, the group that crossed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When it happened (the scheduler's time), ms since the Unix epoch.
    #[cfg_attr(feature = "http", schema(value_type = i64))]
    pub at: Timestamp,
    /// A human-readable summary, e.g. `p99 latency high: 312 is above 250`.
    pub message: String,
}

/// Why `url` cannot be a webhook URL: `http://` or `https://`, a host, no whitespace or
/// control characters, at most [`AlertRule::MAX_WEBHOOK_URL_LEN`] bytes.
fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.len() > AlertRule::MAX_WEBHOOK_URL_LEN {
        return Err(format!(
            "is {} bytes, the limit is {}",
            url.len(),
            AlertRule::MAX_WEBHOOK_URL_LEN
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} has whitespace or control characters"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// The state of one rule between evaluations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Tracker {
    /// Not breached.
    #[default]
    Ok,
    /// Breached since this time, not yet long enough.
    Pending(Timestamp),
    /// Fired.
    Firing,
}

impl Tracker {
    /// Feeds one evaluation; returns the transition, if any.
    pub(crate) fn observe(
        &mut self,
        rule: &AlertRule,
        value: Option<f64>,
        now: Timestamp,
    ) -> Option<AlertState> {
        let breached = value.is_some_and(|v| rule.condition.breached(v, rule.threshold));
        match (*self, breached) {
            (Self::Ok, true) => {
                *self = Self::Pending(now);
                self.promote(rule, now)
            }
            (Self::Pending(_), true) => self.promote(rule, now),
            (Self::Pending(_), false) => {
                *self = Self::Ok;
                None
            }
            (Self::Firing, false) => {
                *self = Self::Ok;
                Some(AlertState::Resolved)
            }
            (Self::Ok, false) | (Self::Firing, true) => None,
        }
    }

    fn promote(&mut self, rule: &AlertRule, now: Timestamp) -> Option<AlertState> {
        if let Self::Pending(since) = *self
            && now.checked_duration_since(since).unwrap_or(Duration::ZERO) >= rule.for_duration()
        {
            *self = Self::Firing;
            return Some(AlertState::Firing);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + s * 1000)
    }

    #[test]
    fn fires_after_hold_and_resolves() {
        let rule = AlertRule::above(Uuid::new_v4(), 10.0).with_for(Duration::from_secs(5));
        let mut tr = Tracker::default();
        assert_eq!(tr.observe(&rule, Some(11.0), t(0)), None);
        assert_eq!(tr.observe(&rule, Some(12.0), t(4)), None);
        assert_eq!(
            tr.observe(&rule, Some(12.0), t(5)),
            Some(AlertState::Firing)
        );
        assert_eq!(tr.observe(&rule, Some(13.0), t(6)), None);
        assert_eq!(
            tr.observe(&rule, Some(10.0), t(7)),
            Some(AlertState::Resolved)
        );
        assert_eq!(tr.observe(&rule, Some(1.0), t(8)), None);
    }

    #[test]
    fn a_dip_restarts_the_hold() {
        let rule = AlertRule::below(Uuid::new_v4(), 1.0).with_for(Duration::from_secs(3));
        let mut tr = Tracker::default();
        assert_eq!(tr.observe(&rule, Some(0.5), t(0)), None);
        assert_eq!(tr.observe(&rule, Some(2.0), t(2)), None);
        assert_eq!(tr.observe(&rule, Some(0.5), t(3)), None);
        assert_eq!(tr.observe(&rule, Some(0.5), t(5)), None);
        assert_eq!(tr.observe(&rule, Some(0.5), t(6)), Some(AlertState::Firing));
        assert_eq!(tr.observe(&rule, None, t(7)), Some(AlertState::Resolved));
    }

    #[test]
    fn zero_hold_fires_at_once() {
        let rule = AlertRule::above(Uuid::new_v4(), 0.0);
        let mut tr = Tracker::default();
        assert_eq!(tr.observe(&rule, Some(0.0), t(0)), None);
        assert_eq!(tr.observe(&rule, Some(0.1), t(1)), Some(AlertState::Firing));
    }

    #[test]
    fn bad_webhooks_are_reported() {
        let mut rule = AlertRule::above(Uuid::new_v4(), 1.0)
            .with_webhook("ftp://example.com/x")
            .with_webhook("http://")
            .with_webhook("https://ok.example.com/hook")
            .with_webhook("https://ok.example.com/hook")
            .with_webhook("http://a b");
        let mut out = Vec::new();
        rule.check("", &mut out);
        let paths: Vec<_> = out.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "webhooks",
                "webhooks[0]",
                "webhooks[1]",
                "webhooks[4]",
                "webhooks[3]"
            ]
        );
        assert!(out[1].message.contains("not an http:// or https:// URL"));
        rule.webhooks = vec!["http://127.0.0.1:9/x".into(), "https://u:p@h/".into()];
        out.clear();
        rule.check("", &mut out);
        assert!(out.is_empty(), "{out:?}");
        rule.webhooks = vec![format!("http://h/{}", "x".repeat(3000))];
        rule.check("", &mut out);
        assert!(out[0].message.contains("the limit is 2048"));
    }

    #[test]
    fn silence_ends_at_its_time() {
        let rule = AlertRule::above(Uuid::new_v4(), 1.0).silenced_until(t(10));
        assert!(rule.is_silenced(t(9)));
        assert!(!rule.is_silenced(t(10)));
        assert!(!AlertRule::above(Uuid::new_v4(), 1.0).is_silenced(t(0)));
    }

    #[test]
    fn bad_rules_are_reported() {
        let mut rule = AlertRule::above(Uuid::nil(), f64::NAN).with_id(Uuid::nil());
        rule.for_seconds = -1.0;
        let mut out = Vec::new();
        rule.check("alert_rules[0].", &mut out);
        let paths: Vec<_> = out.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "alert_rules[0].id",
                "alert_rules[0].threshold",
                "alert_rules[0].for_seconds"
            ]
        );
    }
}
