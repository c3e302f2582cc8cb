//! [`DashboardDoc`]: a dashboard with its alert rules, as stored and served.

use std::collections::{HashMap, HashSet};

use rtdash_core::{Dashboard, DashboardId, SchemaLimits, SchemaViolation, Uuid, Widget};
use serde::Deserialize;
use serde_json::Value;

use crate::{AlertRule, Error, Subject};

/// A dashboard document: the rtdash-core [`Dashboard`] (id, name, grid, widgets) plus the
/// facade's [`AlertRule`]s, stored and served as ONE JSON object — the dashboard's fields
/// with an extra top-level `alert_rules` array (omitted when empty):
///
/// ```json
/// {"id": "ops", "name": "Operations", "columns": 12, "widgets": [ … ],
///  "alert_rules": [{"id": "…", "widget_id": "…", "condition": "above", "threshold": 250}]}
/// ```
///
/// # Examples
///
/// In code, with the builders: each widget gets the dashboard's id, and widgets without a
/// position are placed in the first free grid cells when the engine stores the document.
///
/// ```
/// use std::time::Duration;
/// use rtdash::{Aggregation, AlertRule, DashboardDoc, Engine, EngineConfig, MemoryStore, Widget};
///
/// let p99 = Widget::new("p99 latency", "http.latency_ms", Aggregation::P99, 30).with_unit("ms");
/// let alert = AlertRule::above(p99.widget_id, 250.0).with_for(Duration::from_secs(30));
/// let doc = DashboardDoc::new("ops", "Operations")?
///     .with_widget(p99)
///     .with_widget(Widget::new("Requests", "http.requests", Aggregation::Count, 60))
///     .with_alert_rule(alert);
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let stored = engine.dashboards().create(doc)?;
/// assert!(stored.dashboard.widgets.iter().all(|w| w.display.position.is_some()));
/// # Ok::<(), rtdash::Error>(())
/// ```
///
/// From JSON:
///
/// ```
/// use rtdash::DashboardDoc;
///
/// let doc = DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?;
/// assert_eq!(doc.dashboard.id.as_str(), "ops");
/// assert!(doc.alert_rules.is_empty());
/// assert_eq!(doc.to_json(), r#"{"id":"ops","name":"Operations","columns":12,"widgets":[]}"#);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DashboardDoc {
    /// The dashboard (validated by rtdash-core's rules).
    pub dashboard: Dashboard,
    /// Threshold alert rules on the dashboard's widgets.
    pub alert_rules: Vec<AlertRule>,
}

impl From<Dashboard> for DashboardDoc {
    fn from(dashboard: Dashboard) -> Self {
        Self {
            dashboard,
            alert_rules: Vec::new(),
        }
    }
}

impl DashboardDoc {
    /// An empty document: dashboard `id` named `name`, a 12-column grid, no widget and no
    /// alert rule. Add them with [`with_widget`](Self::with_widget) and
    /// [`with_alert_rule`](Self::with_alert_rule). (From a [`Dashboard`] you have: `From`.)
    ///
    /// Only the id is checked here; every other rule when the document is validated or
    /// created ([`validate`](Self::validate), [`Registry::create`](crate::Registry::create)).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash::DashboardDoc;
    ///
    /// let doc = DashboardDoc::new("ops", "Operations")?;
    /// assert_eq!(doc.id(), "ops");
    /// let err = DashboardDoc::new("ops overview", "Operations").unwrap_err();
    /// assert_eq!(err.code(), "invalid_dashboard");
    /// assert!(err.to_string().contains("id: invalid dashboard id `ops overview`"), "{err}");
    /// # Ok::<(), rtdash::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] (`invalid_dashboard`, path `id`) when `id` is not a valid
    /// [`DashboardId`] (empty, too long, a character outside `A-Z a-z 0-9 _ . -`, or a
    /// leading dot).
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Result<Self, Error> {
        let id = DashboardId::new(id)
            .map_err(|e| Error::invalid(Subject::Dashboard, "id", e.to_string()))?;
        Ok(Self::from(Dashboard::new(id, name)))
    }

    /// Sets the grid's width in columns (default 12).
    #[must_use]
    pub fn with_columns(mut self, columns: u32) -> Self {
        self.dashboard.columns = columns;
        self
    }

    /// Adds a widget (see [`Dashboard::with_widget`]): it gets this dashboard's id, and
    /// keeps its position if it has one; if not, it is placed in the first free grid cells
    /// when the document is stored ([`place_widgets`](Self::place_widgets)).
    #[must_use]
    pub fn with_widget(mut self, widget: Widget) -> Self {
        self.dashboard = self.dashboard.with_widget(widget);
        self
    }

    /// Adds an alert rule.
    #[must_use]
    pub fn with_alert_rule(mut self, rule: AlertRule) -> Self {
        self.alert_rules.push(rule);
        self
    }

    /// Gives every widget without a position one, and every widget without a dashboard id
    /// this one (see [`Dashboard::place_widgets`]). The [`Registry`](crate::Registry) does it
    /// before it validates and stores a document, so stored and served documents are always
    /// complete; call it to see the layout before that.
    pub fn place_widgets(&mut self, limits: &SchemaLimits) {
        self.dashboard.place_widgets(limits);
    }

    /// The dashboard's id as a string.
    #[must_use]
    pub fn id(&self) -> &str {
        self.dashboard.id.as_str()
    }

    /// Parses a document. Only types are checked here; see [`validate`](Self::validate).
    ///
    /// # Errors
    ///
    /// [`Error::MalformedJson`] for a syntax error (with line and column);
    /// [`Error::WrongShape`] when the top level is not an object; [`Error::Invalid`] when a
    /// field has the wrong type or an unknown field is present (the message names it).
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| Error::from_json(&e, Subject::Dashboard))?;
        Self::from_value(value)
    }

    pub(crate) fn from_value(value: Value) -> Result<Self, Error> {
        let Value::Object(mut map) = value else {
            return Err(Error::WrongShape {
                message: format!("expected a dashboard JSON object, found {}", kind(&value)),
            });
        };
        let rules = match map.remove("alert_rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => Vec::<AlertRule>::deserialize(v).map_err(|e| {
                Error::invalid(Subject::Dashboard, "alert_rules", strip_position(&e))
            })?,
        };
        let dashboard = Dashboard::deserialize(Value::Object(map))
            .map_err(|e| Error::invalid(Subject::Dashboard, "", strip_position(&e)))?;
        Ok(Self {
            dashboard,
            alert_rules: rules,
        })
    }

    /// The document as JSON (see the type's documentation for the form).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        let mut out = serde_json::to_string(&self.dashboard).unwrap_or_default();
        if !self.alert_rules.is_empty() && out.ends_with('}') {
            let rules = serde_json::to_string(&self.alert_rules).unwrap_or_default();
            out.pop();
            out.push_str(",\"alert_rules\":");
            out.push_str(&rules);
            out.push('}');
        }
        out
    }

    /// Every rule the document breaks: the dashboard's ([`Dashboard::violations`], which
    /// checks widgets without a position where [`place_widgets`](Self::place_widgets) would
    /// put them) and the alert rules' (`alert_rules[i].…`: a finite threshold,
    /// `for_seconds` within 0..=86400, a widget of this dashboard, unique ids).
    #[must_use]
    pub fn violations(&self, limits: &SchemaLimits) -> Vec<SchemaViolation> {
        let mut out = self.dashboard.violations(limits);
        // Linear in widgets + rules: a set of the widget ids, the first rule of each id.
        let widgets: HashSet<Uuid> = self.dashboard.widgets.iter().map(|w| w.widget_id).collect();
        let mut first_with_id: HashMap<Uuid, usize> =
            HashMap::with_capacity(self.alert_rules.len());
        for (i, rule) in self.alert_rules.iter().enumerate() {
            let prefix = format!("alert_rules[{i}].");
            rule.check(&prefix, &mut out);
            if !widgets.contains(&rule.widget_id) {
                out.push(SchemaViolation::new(
                    format!("{prefix}widget_id"),
                    format!(
                        "{} is not a widget of dashboard `{}`",
                        rule.widget_id, self.dashboard.id
                    ),
                ));
            }
            let j = *first_with_id.entry(rule.id).or_insert(i);
            if j != i {
                out.push(SchemaViolation::new(
                    format!("{prefix}id"),
                    format!(
                        "{} is also the id of alert_rules[{j}]; ids must be unique",
                        rule.id
                    ),
                ));
            }
        }
        out
    }

    /// Checks every rule; see [`violations`](Self::violations).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] listing every violation with its path.
    pub fn validate(&self, limits: &SchemaLimits) -> Result<(), Error> {
        let violations = self.violations(limits);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                what: Subject::Dashboard,
                violations,
            })
        }
    }
}

/// A batch of widget changes applied to one dashboard at once
/// ([`Registry::patch_widgets`](crate::Registry::patch_widgets), `PATCH
/// /dashboards/{id}/widgets`): widgets to add, widgets to replace (matched by
/// `widget_id`), and widget ids to remove (their alert rules go with them). The result is
/// validated as a whole; nothing changes unless all of it is valid.
///
/// JSON form (each list may be omitted):
///
/// ```json
/// {"add": [ {widget…} ], "update": [ {widget…} ], "remove": ["6f1c…"]}
/// ```
///
/// # Examples
///
/// ```
/// use rtdash::{DashboardDoc, Engine, EngineConfig, Error, MemoryStore, Uuid, WidgetPatch};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let dashboards = engine.dashboards();
/// dashboards.create(DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?)?;
/// let add = WidgetPatch::from_json(br#"{"add": [
///     {"widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
///      "title": "CPU", "metric_name": "cpu", "aggregation": "max", "window_seconds": 60,
///      "refresh_interval_seconds": 1,
///      "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 4, "h": 2}}}]}"#)?;
///
/// // The same, and remove widget 9, which the dashboard does not have: all of it is refused.
/// let mut patch = add.clone();
/// patch.remove.push(Uuid::from_u128(9));
/// let refused = dashboards.patch_widgets("ops", &patch);
/// assert!(matches!(refused, Err(Error::UnknownWidget { .. })));
/// assert!(dashboards.get("ops")?.dashboard.widgets.is_empty());
///
/// assert_eq!(dashboards.patch_widgets("ops", &add)?.dashboard.widgets.len(), 1);
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetPatch {
    /// Widgets to add; their ids must be new. One without a position is placed in the first
    /// free grid cells.
    #[serde(default)]
    pub add: Vec<Widget>,
    /// Widgets to replace, matched by `widget_id`. One without a position is placed anew
    /// in the first free grid cells.
    #[serde(default)]
    pub update: Vec<Widget>,
    /// Ids of widgets to remove.
    #[serde(default)]
    pub remove: Vec<Uuid>,
}

impl WidgetPatch {
    /// Parses a patch.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedJson`] for a syntax error; [`Error::Invalid`] (`invalid_widget`)
    /// for a field of the wrong type or an unknown field.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| Error::from_json(&e, Subject::Widget))?;
        if !value.is_object() {
            return Err(Error::WrongShape {
                message: format!(
                    "expected an object {{\"add\": [..], \"update\": [..], \"remove\": [..]}}, found {}",
                    kind(&value)
                ),
            });
        }
        Self::deserialize(value)
            .map_err(|e| Error::invalid(Subject::Widget, "", strip_position(&e)))
    }

    pub(crate) fn apply(&self, doc: &mut DashboardDoc) -> Result<(), Error> {
        let d = &mut doc.dashboard;
        for id in &self.remove {
            let Some(pos) = d.widgets.iter().position(|w| w.widget_id == *id) else {
                return Err(Error::UnknownWidget {
                    dashboard: d.id.to_string(),
                    widget: *id,
                });
            };
            d.widgets.remove(pos);
            doc.alert_rules.retain(|r| r.widget_id != *id);
        }
        for w in &self.update {
            let Some(slot) = d.widgets.iter_mut().find(|x| x.widget_id == w.widget_id) else {
                return Err(Error::UnknownWidget {
                    dashboard: d.id.to_string(),
                    widget: w.widget_id,
                });
            };
            *slot = w.clone();
        }
        d.widgets.extend(self.add.iter().cloned());
        Ok(())
    }
}

/// A widget on its own from JSON (the body of `POST /preview`): `widget_id` may be omitted
/// (a random one is given).
///
/// # Errors
///
/// [`Error::MalformedJson`], [`Error::WrongShape`] when it is not an object, and
/// [`Error::Invalid`] (`invalid_widget`) for a field of the wrong type or an unknown field.
#[cfg(feature = "http")]
pub(crate) fn widget_from_json(json: &[u8]) -> Result<Widget, Error> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| Error::from_json(&e, Subject::Widget))?;
    let Value::Object(mut map) = value else {
        return Err(Error::WrongShape {
            message: format!("expected a widget JSON object, found {}", kind(&value)),
        });
    };
    if !map.contains_key("widget_id") {
        map.insert(
            "widget_id".to_owned(),
            Value::String(Uuid::new_v4().to_string()),
        );
    }
    Widget::deserialize(Value::Object(map))
        .map_err(|e| Error::invalid(Subject::Widget, "", strip_position(&e)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rfind(" at line ") {
        Some(p) => m[..p].to_owned(),
        None => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlertRule;

    #[test]
    fn alert_rules_name_unknown_widgets_and_the_first_duplicate_id() {
        let json = br#"{"id": "ops", "name": "Ops", "widgets": [{
            "widget_id": "00000000-0000-0000-0000-000000000001", "dashboard_id": "ops",
            "title": "t", "metric_name": "m", "aggregation": "max", "window_seconds": 60,
            "refresh_interval_seconds": 1,
            "display_config": {"chart": "stat", "position": {"x": 0, "y": 0, "w": 1, "h": 1}}}]}"#;
        let widget = Uuid::from_u128(1);
        let mut doc = DashboardDoc::from_json(json).unwrap();
        let mut rule = |id: u128, widget: Uuid| {
            let mut r = AlertRule::above(widget, 1.0);
            r.id = Uuid::from_u128(id);
            doc.alert_rules.push(r);
        };
        rule(10, widget);
        rule(11, Uuid::from_u128(2));
        rule(10, widget);
        rule(10, widget);
        let got: Vec<String> = doc
            .violations(&SchemaLimits::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        let (w2, r10) = (Uuid::from_u128(2), Uuid::from_u128(10));
        assert_eq!(
            got,
            [
                format!("alert_rules[1].widget_id: {w2} is not a widget of dashboard `ops`"),
                format!(
                    "alert_rules[2].id: {r10} is also the id of alert_rules[0]; ids must be unique"
                ),
                format!(
                    "alert_rules[3].id: {r10} is also the id of alert_rules[0]; ids must be unique"
                ),
            ]
        );
    }
}
