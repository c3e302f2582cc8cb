//! The refresh scheduler: which widgets are due, one computation per distinct query,
//! change detection, stale marking, one frame per dashboard per tick, alert evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtdash_core::{Aggregation, TagFilter, Timestamp, Uuid, Widget};
use rtdash_window::{QueryResult, WindowStore};

use crate::alerts::Tracker;
use crate::engine::Inner;
use crate::{AlertEvent, AlertRule, AlertState, GroupValue, TickReport, WidgetKey, WidgetState};

/// What one widget asks of the window store. Widgets with equal specs share one query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct QuerySpec {
    pub(crate) metric: String,
    pub(crate) filter: TagFilter,
    pub(crate) agg: Aggregation,
    pub(crate) window: Duration,
    pub(crate) group_by: Option<String>,
}

impl QuerySpec {
    pub(crate) fn of(w: &Widget) -> Self {
        Self {
            metric: w.metric_name.clone(),
            filter: w.tag_filter.clone(),
            agg: w.aggregation,
            window: w.window(),
            group_by: w.group_by.clone(),
        }
    }

    /// Runs the query; `None` when the store refuses it (e.g. percentiles disabled).
    pub(crate) fn run(&self, store: &WindowStore, now: Timestamp) -> Option<Answer> {
        let r = match &self.group_by {
            None => store
                .query(&self.metric, &self.filter, self.agg, self.window, now)
                .map(Answer::Single),
            Some(key) => store
                .group_by(&self.metric, &self.filter, key, self.agg, self.window, now)
                .map(|groups| {
                    // Every group of one query covers the same span; with no group, the span
                    // a query over the whole store would cover.
                    let span = match groups.first() {
                        Some((_, r)) => Some((r.window_start, r.window_end)),
                        None => store.window_span(self.window, now).ok(),
                    };
                    Answer::Groups(groups, span)
                }),
        };
        match r {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(metric = %self.metric, error = %e, "widget query failed");
                None
            }
        }
    }
}

/// A computed query.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    Single(QueryResult),
    Groups(Vec<(String, QueryResult)>, Option<(Timestamp, Timestamp)>),
}

/// Everything needed to turn an answer into a widget state.
pub(crate) struct StateInput<'a> {
    pub(crate) dashboard: &'a str,
    pub(crate) widget: Uuid,
    /// How long without data makes the value stale (see [`stale_limit`]).
    pub(crate) stale_after: Duration,
    pub(crate) unhealthy: bool,
    pub(crate) now: Timestamp,
}

/// How long a widget may go without data before its value is stale: its own
/// `stale_after_seconds` when set, else `intervals` (`EngineConfig::stale_after_intervals`)
/// refresh intervals.
pub(crate) fn stale_limit(widget: &Widget, refresh: Duration, intervals: u32) -> Duration {
    widget
        .stale_after()
        .unwrap_or_else(|| refresh.saturating_mul(intervals))
}

fn is_stale(last: Option<Timestamp>, limit: Duration, now: Timestamp) -> bool {
    match last {
        None => true,
        Some(t) => now.checked_duration_since(t).is_some_and(|age| age > limit),
    }
}

/// Builds the widget's state from a query answer (`None`: the query failed → no value,
/// stale).
pub(crate) fn state_of(input: &StateInput<'_>, answer: Option<&Answer>) -> WidgetState {
    let limit = input.stale_after;
    let now = input.now;
    let mut s = WidgetState {
        dashboard_id: input.dashboard.to_owned(),
        widget_id: input.widget,
        value: None,
        count: 0,
        window_start: now,
        window_end: now,
        last_event_time: None,
        stale: true,
        groups: None,
        evaluated_at: now,
    };
    match answer {
        None => {}
        Some(Answer::Single(r)) => {
            s.value = r.value;
            s.count = r.count;
            s.window_start = r.window_start;
            s.window_end = r.window_end;
            s.last_event_time = r.last_event_time;
            s.stale = input.unhealthy || is_stale(r.last_event_time, limit, now);
        }
        Some(Answer::Groups(groups, span)) => {
            if let Some((start, end)) = span {
                s.window_start = *start;
                s.window_end = *end;
            }
            let mut all_stale = true;
            let out: Vec<GroupValue> = groups
                .iter()
                .map(|(g, r)| {
                    let stale = input.unhealthy || is_stale(r.last_event_time, limit, now);
                    all_stale &= stale;
                    s.count += r.count;
                    s.last_event_time = s.last_event_time.max(r.last_event_time);
                    GroupValue {
                        group: g.clone(),
                        value: r.value,
                        count: r.count,
                        last_event_time: r.last_event_time,
                        stale,
                    }
                })
                .collect();
            s.stale = input.unhealthy || all_stale;
            s.groups = Some(out);
        }
    }
    s
}

/// What was last published for a widget: the parts whose change triggers a publish.
#[derive(Clone, Debug, PartialEq)]
struct Sent {
    value: Option<u64>,
    stale: bool,
    groups: Vec<(String, Option<u64>, bool)>,
}

impl Sent {
    fn of(s: &WidgetState) -> Self {
        Self {
            value: s.value.map(f64::to_bits),
            stale: s.stale,
            groups: s
                .groups
                .iter()
                .flatten()
                .map(|g| (g.group.clone(), g.value.map(f64::to_bits), g.stale))
                .collect(),
        }
    }
}

struct WidgetPlan {
    id: Uuid,
    title: String,
    query: usize,
    refresh: Duration,
    stale_after: Duration,
    metric: String,
    rules: Vec<AlertRule>,
}

struct DashPlan {
    id: String,
    topic: Arc<str>,
    widgets: Vec<WidgetPlan>,
}

struct Runtime {
    def: Widget,
    next_due: Timestamp,
    last: Option<Sent>,
}

struct RuleState {
    rule: AlertRule,
    widget: Uuid,
    tracker: Tracker,
    group: Option<String>,
}

/// The scheduler's state between ticks.
#[derive(Default)]
pub(crate) struct Scheduler {
    generation: u64,
    queries: Vec<QuerySpec>,
    dashboards: Vec<DashPlan>,
    runtimes: HashMap<(String, Uuid), Runtime>,
    rules: HashMap<(String, Uuid), RuleState>,
    last_upkeep: Option<Timestamp>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("generation", &self.generation)
            .field("queries", &self.queries.len())
            .field("dashboards", &self.dashboards.len())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Rebuilds the plan from the registry, keeping the state of unchanged widgets and
    /// rules. Returns resolved events for firing alerts whose rule disappeared.
    fn rebuild(&mut self, inner: &Inner, now: Timestamp) -> Vec<AlertEvent> {
        let docs = inner.registry.list();
        let mut queries: Vec<QuerySpec> = Vec::new();
        let mut index: HashMap<QuerySpec, usize> = HashMap::new();
        let mut dashboards = Vec::with_capacity(docs.len());
        let mut runtimes = HashMap::new();
        let mut rules = HashMap::new();
        let mut forget: Vec<(String, WidgetKey)> = Vec::new();
        for doc in &docs {
            let id = doc.id().to_owned();
            let mut widgets = Vec::with_capacity(doc.dashboard.widgets.len());
            for w in &doc.dashboard.widgets {
                let Some(refresh) = w.refresh_interval() else {
                    continue;
                };
                let spec = QuerySpec::of(w);
                let q = *index.entry(spec.clone()).or_insert_with(|| {
                    queries.push(spec);
                    queries.len() - 1
                });
                let key = (id.clone(), w.widget_id);
                let rt = match self.runtimes.remove(&key) {
                    Some(rt) if rt.def == *w => rt,
                    old => {
                        if old.is_some() {
                            forget.push((id.clone(), WidgetKey::Widget(w.widget_id)));
                        }
                        Runtime {
                            def: w.clone(),
                            next_due: Timestamp::MIN,
                            last: None,
                        }
                    }
                };
                runtimes.insert(key, rt);
                let widget_rules: Vec<AlertRule> = doc
                    .alert_rules
                    .iter()
                    .filter(|r| r.widget_id == w.widget_id)
                    .cloned()
                    .collect();
                for r in &widget_rules {
                    let rkey = (id.clone(), r.id);
                    let st = match self.rules.remove(&rkey) {
                        Some(st) if st.rule == *r => st,
                        old => {
                            if old.is_some() {
                                forget.push((id.clone(), WidgetKey::Alert(r.id)));
                            }
                            RuleState {
                                rule: r.clone(),
                                widget: w.widget_id,
                                tracker: Tracker::default(),
                                group: None,
                            }
                        }
                    };
                    rules.insert(rkey, st);
                }
                widgets.push(WidgetPlan {
                    id: w.widget_id,
                    title: w.title.clone(),
                    query: q,
                    refresh,
                    stale_after: stale_limit(w, refresh, inner.config.stale_after_intervals.get()),
                    metric: w.metric_name.clone(),
                    rules: widget_rules,
                });
            }
            dashboards.push(DashPlan {
                topic: inner.registry.topic(&id),
                id,
                widgets,
            });
        }
        // Widgets that disappeared.
        for (dash, widget) in self.runtimes.keys() {
            forget.push((dash.clone(), WidgetKey::Widget(*widget)));
        }
        // Rules that disappeared, and those of them firing resolve.
        let mut gone = Vec::new();
        for ((dash, rule), st) in self.rules.drain() {
            forget.push((dash.clone(), WidgetKey::Alert(rule)));
            if st.tracker == Tracker::Firing {
                gone.push(AlertEvent {
                    rule_id: st.rule.id,
                    dashboard_id: dash,
                    widget_id: st.widget,
                    state: AlertState::Resolved,
                    value: None,
                    condition: st.rule.condition,
                    threshold: st.rule.threshold,
                    group: st.group,
                    at: now,
                    message: format!(
                        "{}: rule removed",
                        st.rule.name.as_deref().unwrap_or("alert")
                    ),
                });
            }
        }
        self.queries = queries;
        self.dashboards = dashboards;
        // A frame carries several widgets and stays cached while any of them
        // is current: re-evaluate every widget of a dashboard that lost one,
        // so this tick's frame supersedes the frames holding retired values.
        // (Alert frames carry one key each: a retired rule needs nothing more.)
        let lost_widget: HashSet<&str> = forget
            .iter()
            .filter(|(_, k)| matches!(k, WidgetKey::Widget(_)))
            .map(|(d, _)| d.as_str())
            .collect();
        for ((dash, _), rt) in &mut runtimes {
            if lost_widget.contains(dash.as_str()) {
                rt.next_due = Timestamp::MIN;
                rt.last = None;
            }
        }
        self.runtimes = runtimes;
        self.rules = rules;
        // The retired keys' cached values go before this tick publishes, so a new
        // subscriber's snapshot does not show them.
        let mut retired: HashMap<&str, Vec<WidgetKey>> = HashMap::new();
        for (dash, key) in &forget {
            retired.entry(dash.as_str()).or_default().push(*key);
        }
        for (dash, keys) in retired {
            let topic = inner.registry.topic(dash);
            inner.hub.retain_cached(&topic, |k| !keys.contains(k));
        }
        gone
    }

    /// One scheduler step at time `now`.
    pub(crate) fn tick(&mut self, inner: &Inner, now: Timestamp) -> TickReport {
        let mut report = TickReport::default();
        let mut alerts = Vec::new();
        let generation = inner.registry.generation();
        if generation != self.generation {
            alerts = self.rebuild(inner, now);
            self.generation = generation;
        }
        // The resolutions of removed rules: sent, but not cached.
        let retired = alerts.len();
        if self.last_upkeep.is_none_or(|t| {
            now.checked_duration_since(t)
                .is_some_and(|d| d >= Duration::from_secs(1))
        }) {
            inner.metrics.upkeep();
            self.last_upkeep = Some(now);
        }

        // Which widgets are due, and which queries they need.
        let mut due: Vec<(usize, usize)> = Vec::new();
        let mut needed = vec![false; self.queries.len()];
        for (d, dash) in self.dashboards.iter().enumerate() {
            for (w, wp) in dash.widgets.iter().enumerate() {
                let Some(rt) = self.runtimes.get(&(dash.id.clone(), wp.id)) else {
                    continue;
                };
                if rt.next_due <= now {
                    due.push((d, w));
                    needed[wp.query] = true;
                }
            }
        }
        if due.is_empty() && alerts.is_empty() {
            return report;
        }
        let started = Instant::now();

        // One computation per distinct query.
        let mut answers: Vec<Option<Answer>> = vec![None; self.queries.len()];
        {
            let store = inner.read_store();
            for (q, spec) in self.queries.iter().enumerate() {
                if needed[q] {
                    let t = Instant::now();
                    answers[q] = spec.run(&store, now);
                    inner.metrics.aggregation.record(t.elapsed().as_secs_f64());
                    report.queries_computed += 1;
                }
            }
        }

        // Widget states, change detection, alert rules.
        let mut changed: Vec<Vec<WidgetState>> = vec![Vec::new(); self.dashboards.len()];
        for &(d, w) in &due {
            let dash = &self.dashboards[d];
            let wp = &dash.widgets[w];
            let input = StateInput {
                dashboard: &dash.id,
                widget: wp.id,
                stale_after: wp.stale_after,
                unhealthy: inner.health.is_unhealthy(&wp.metric),
                now,
            };
            let state = state_of(&input, answers[wp.query].as_ref());
            report.widgets_evaluated += 1;
            let Some(rt) = self.runtimes.get_mut(&(dash.id.clone(), wp.id)) else {
                continue;
            };
            rt.next_due = next_due(rt.next_due, wp.refresh, now);
            for rule in &wp.rules {
                let Some(st) = self.rules.get_mut(&(dash.id.clone(), rule.id)) else {
                    continue;
                };
                let (value, group) = rule_value(rule, &state);
                if let Some(transition) = st.tracker.observe(rule, value, now) {
                    if transition == AlertState::Firing {
                        st.group.clone_from(&group);
                    }
                    let group = if transition == AlertState::Resolved {
                        st.group.take()
                    } else {
                        group
                    };
                    alerts.push(AlertEvent {
                        rule_id: rule.id,
                        dashboard_id: dash.id.clone(),
                        widget_id: wp.id,
                        state: transition,
                        value,
                        condition: rule.condition,
                        threshold: rule.threshold,
                        message: rule.message(&wp.title, value, group.as_deref()),
                        group,
                        at: now,
                    });
                }
            }
            let sent = Sent::of(&state);
            if rt.last.as_ref() != Some(&sent) {
                rt.last = Some(sent);
                changed[d].push(state);
            }
        }
        inner
            .metrics
            .widget_evaluations
            .increment(report.widgets_evaluated as u64);
        inner
            .metrics
            .query_evaluations
            .increment(report.queries_computed as u64);
        inner
            .counters
            .add_evaluations(report.widgets_evaluated, report.queries_computed);

        // One frame per dashboard with changes, encoded once.
        let sent_at = now.as_millis();
        for (d, states) in changed.iter().enumerate() {
            if states.is_empty() {
                continue;
            }
            let dash = &self.dashboards[d];
            let keys: Vec<WidgetKey> = states
                .iter()
                .map(|s| WidgetKey::Widget(s.widget_id))
                .collect();
            inner.hub.publish_with(&dash.topic, keys, |seq| {
                crate::encode_update(&dash.topic, seq, sent_at, states)
            });
            for s in states {
                if !s.stale
                    && let Some(age) = s
                        .last_event_time
                        .and_then(|t| now.checked_duration_since(t))
                {
                    inner.metrics.publish_latency.record(age.as_secs_f64());
                }
            }
            report.values_published += states.len();
            report.frames_published += 1;
        }

        // Alerts: pushed on the dashboard's topic, kept in the history.
        for (i, a) in alerts.iter().enumerate() {
            let topic = inner.registry.topic(&a.dashboard_id);
            let key = (i >= retired).then_some(WidgetKey::Alert(a.rule_id));
            inner.hub.publish_with(&topic, key, |seq| {
                crate::encode_alert(&topic, seq, sent_at, a)
            });
            match a.state {
                AlertState::Firing => inner.metrics.alerts_firing.increment(1),
                AlertState::Resolved => inner.metrics.alerts_resolved.increment(1),
            }
        }
        let frames = report.frames_published + alerts.len();
        inner.metrics.frames_published.increment(frames as u64);
        inner.counters.add_frames(frames);
        inner.record_alerts(&alerts);
        report.alerts = alerts;
        inner.metrics.tick.record(started.elapsed().as_secs_f64());
        report
    }
}

/// The next due time: one interval after the previous due time, or one interval from now
/// when the scheduler fell behind (no burst of catch-up evaluations).
fn next_due(prev: Timestamp, refresh: Duration, now: Timestamp) -> Timestamp {
    let next = if prev == Timestamp::MIN {
        now.saturating_add(refresh)
    } else {
        prev.saturating_add(refresh)
    };
    if next <= now {
        now.saturating_add(refresh)
    } else {
        next
    }
}

/// The value a rule looks at: the widget's value, or its worst group's.
fn rule_value(rule: &AlertRule, s: &WidgetState) -> (Option<f64>, Option<String>) {
    let Some(groups) = &s.groups else {
        return (s.value, None);
    };
    let worst = groups
        .iter()
        .filter_map(|g| g.value.map(|v| (v, g)))
        .reduce(|a, b| {
            let b_worse = match rule.condition {
                crate::AlertCondition::Above => b.0 > a.0,
                crate::AlertCondition::Below => b.0 < a.0,
            };
            if b_worse { b } else { a }
        });
    match worst {
        Some((v, g)) => (Some(v), Some(g.group.clone())),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn next_due_keeps_cadence_and_skips_missed() {
        let r = Duration::from_millis(500);
        assert_eq!(next_due(Timestamp::MIN, r, t(1000)), t(1500));
        assert_eq!(next_due(t(1500), r, t(1510)), t(2000));
        assert_eq!(next_due(t(1500), r, t(4000)), t(4500));
    }

    fn widget(refresh: f64, stale_after: Option<f64>) -> Widget {
        Widget {
            widget_id: Uuid::from_u128(1),
            dashboard_id: rtdash_core::DashboardId::new("ops").unwrap(),
            title: "w".into(),
            metric_name: "m".into(),
            aggregation: Aggregation::Count,
            window_seconds: 60,
            refresh_interval_seconds: refresh,
            tag_filter: TagFilter::new(),
            group_by: None,
            stale_after_seconds: stale_after,
            display: rtdash_core::DisplayConfig::new(
                rtdash_core::ChartType::Stat,
                rtdash_core::GridPos::new(0, 0, 1, 1),
            ),
        }
    }

    #[test]
    fn a_widget_stale_limit_replaces_the_interval_rule() {
        let second = Duration::from_secs(1);
        // The default rule: `intervals` refresh intervals.
        assert_eq!(stale_limit(&widget(1.0, None), second, 2), 2 * second);
        assert_eq!(
            stale_limit(&widget(0.5, None), Duration::from_millis(500), 3),
            Duration::from_millis(1500)
        );
        // The widget's own limit, shorter or longer, whatever the interval and the count.
        assert_eq!(stale_limit(&widget(1.0, Some(5.0)), second, 2), 5 * second);
        assert_eq!(
            stale_limit(&widget(10.0, Some(2.5)), 10 * second, 2),
            Duration::from_millis(2500)
        );
        // Fed every 2 s, refreshed every second: the default limit (2 s) is exceeded just
        // before each event arrives; a limit of 5 s is not.
        let (last, now) = (Some(t(0)), t(2_100));
        assert!(is_stale(
            last,
            stale_limit(&widget(1.0, None), second, 2),
            now
        ));
        assert!(!is_stale(
            last,
            stale_limit(&widget(1.0, Some(5.0)), second, 2),
            now
        ));
        assert!(is_stale(
            last,
            stale_limit(&widget(1.0, Some(5.0)), second, 2),
            t(5_001)
        ));
        // A value the schema refuses falls back to the default rule.
        assert_eq!(
            stale_limit(&widget(1.0, Some(f64::NAN)), second, 2),
            2 * second
        );
    }

    #[test]
    fn staleness_is_twice_the_interval() {
        let limit = Duration::from_secs(2);
        assert!(is_stale(None, limit, t(10_000)));
        assert!(!is_stale(Some(t(8_000)), limit, t(10_000)));
        assert!(is_stale(Some(t(7_999)), limit, t(10_000)));
        assert!(!is_stale(Some(t(11_000)), limit, t(10_000)));
    }
}
