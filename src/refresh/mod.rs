//! The refresh planner: which widgets are due, one computation per distinct query,
//! change detection, stale marking, alert evaluation, and what the cache must forget.
//!
//! Pure: [`Planner::plan`] takes the dashboards, a [`QuerySource`], the source health
//! and the time, and returns a [`Plan`] (the updates, alerts and retirements of one tick).
//! It holds no lock across the tick and never publishes; the engine hands the plan to the
//! publish seam. Deterministic in `now`.

mod query;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtdash_core::{Timestamp, Uuid, Widget};

use crate::alerts::Tracker;
use crate::checkpoint::RuleCheckpoint;
use crate::{AlertEvent, AlertRule, AlertState, DashboardDoc, WidgetKey, WidgetState};

#[cfg(test)]
use query::is_stale;
pub(crate) use query::{Answer, QuerySource, QuerySpec, StateInput, stale_limit, state_of};

/// What the planner needs to know besides its own state.
pub(crate) struct PlanInput<'a, Q: ?Sized> {
    /// The dashboards' generation ([`Registry::generation`](crate::Registry::generation)):
    /// the plan is rebuilt when it changes.
    pub(crate) generation: u64,
    /// The dashboards, read only when the generation changed.
    pub(crate) docs: &'a dyn Fn() -> Vec<Arc<DashboardDoc>>,
    /// Where queries are answered.
    pub(crate) queries: &'a Q,
    /// Whether the source of a metric is marked unhealthy.
    pub(crate) unhealthy: &'a dyn Fn(&str) -> bool,
    /// Whether this engine aggregates a metric (with a partitioned log, another node
    /// aggregates the metrics of the partitions it owns): other widgets are not evaluated.
    pub(crate) owned: &'a dyn Fn(&str) -> bool,
    /// `EngineConfig::stale_after_intervals`.
    pub(crate) stale_after_intervals: u32,
    /// The time of the tick.
    pub(crate) now: Timestamp,
}

/// A dashboard topic and the keys whose cached values it must forget.
pub(crate) type Retired = (Arc<str>, Vec<WidgetKey>);

/// The outcome of one tick: what to publish and what to forget, in this order.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Cached values of widgets and rules that no longer exist, by dashboard topic: to be
    /// retired before anything of this tick is published.
    pub(crate) retire: Vec<Retired>,
    /// The changed widget states, one update frame per dashboard topic.
    pub(crate) updates: Vec<(Arc<str>, Vec<WidgetState>)>,
    /// Alert transitions; the first [`uncached_alerts`](Self::uncached_alerts) are the
    /// resolutions of removed rules (sent, not cached).
    pub(crate) alerts: Vec<AlertEvent>,
    /// See [`alerts`](Self::alerts).
    pub(crate) uncached_alerts: usize,
    /// Widgets evaluated.
    pub(crate) widgets_evaluated: usize,
    /// Distinct queries computed, with the time each took.
    pub(crate) query_times: Vec<Duration>,
    /// Whether anything was due (a tick with nothing due does no work at all).
    pub(crate) worked: bool,
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

/// The planner's state between ticks.
#[derive(Default)]
pub(crate) struct Planner {
    generation: u64,
    queries: Vec<QuerySpec>,
    dashboards: Vec<DashPlan>,
    runtimes: HashMap<(String, Uuid), Runtime>,
    rules: HashMap<(String, Uuid), RuleState>,
    /// Rule states taken over from another node, for rules not built yet.
    imported: HashMap<(String, Uuid), (Tracker, Option<String>)>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("generation", &self.generation)
            .field("queries", &self.queries.len())
            .field("dashboards", &self.dashboards.len())
            .finish_non_exhaustive()
    }
}

/// The resolve of a firing rule that was removed or whose condition changed (`why`).
fn resolved_by(dashboard: &str, st: RuleState, now: Timestamp, why: &str) -> AlertEvent {
    AlertEvent {
        rule_id: st.rule.id,
        dashboard_id: dashboard.to_owned(),
        widget_id: st.widget,
        state: AlertState::Resolved,
        value: None,
        condition: st.rule.condition,
        threshold: st.rule.threshold,
        severity: st.rule.severity,
        group: st.group,
        at: now,
        message: format!("{}: {why}", st.rule.name.as_deref().unwrap_or("alert")),
    }
}

impl Planner {
    /// Rebuilds the plan from the dashboards, keeping the state of unchanged widgets and
    /// rules. Returns resolved events for firing alerts whose rule disappeared, and the
    /// keys to retire.
    fn rebuild(
        &mut self,
        docs: &[Arc<DashboardDoc>],
        stale_after_intervals: u32,
        now: Timestamp,
    ) -> (Vec<AlertEvent>, Vec<Retired>) {
        let mut queries: Vec<QuerySpec> = Vec::new();
        let mut index: HashMap<QuerySpec, usize> = HashMap::new();
        let mut dashboards = Vec::with_capacity(docs.len());
        let mut runtimes = HashMap::new();
        let mut rules = HashMap::new();
        let mut forget: Vec<(String, WidgetKey)> = Vec::new();
        let mut changed = Vec::new();
        for doc in docs {
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
                        // A change of name, severity, silence or webhooks keeps the
                        // rule's state: the alert goes on firing (or pending).
                        Some(mut st) if st.widget == w.widget_id && st.rule.evaluates_as(r) => {
                            st.rule = r.clone();
                            st
                        }
                        old => {
                            if let Some(old) = old {
                                forget.push((id.clone(), WidgetKey::Alert(r.id)));
                                // A firing alert whose condition changed resolves; the new
                                // condition is evaluated afresh.
                                if old.tracker == Tracker::Firing {
                                    changed.push(resolved_by(&id, old, now, "rule changed"));
                                }
                            }
                            let (tracker, group) = self.imported.remove(&rkey).unwrap_or_default();
                            RuleState {
                                rule: r.clone(),
                                widget: w.widget_id,
                                tracker,
                                group,
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
                    stale_after: stale_limit(w, refresh, stale_after_intervals),
                    metric: w.metric_name.clone(),
                    rules: widget_rules,
                });
            }
            dashboards.push(DashPlan {
                topic: Arc::from(id.as_str()),
                id,
                widgets,
            });
        }
        // Widgets that disappeared.
        for (dash, widget) in self.runtimes.keys() {
            forget.push((dash.clone(), WidgetKey::Widget(*widget)));
        }
        // Rules that disappeared, and those of them firing resolve.
        let mut gone = changed;
        for ((dash, rule), st) in self.rules.drain() {
            forget.push((dash.clone(), WidgetKey::Alert(rule)));
            if st.tracker == Tracker::Firing {
                gone.push(resolved_by(&dash, st, now, "rule removed"));
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
        // Rule states taken over for rules that no longer exist: never needed.
        self.imported.clear();
        // The retired keys' cached values go before this tick publishes, so a new
        // subscriber's snapshot does not show them.
        let mut retired: HashMap<&str, Vec<WidgetKey>> = HashMap::new();
        for (dash, key) in &forget {
            retired.entry(dash.as_str()).or_default().push(*key);
        }
        let mut retire: Vec<Retired> = retired
            .into_iter()
            .map(|(dash, keys)| (Arc::from(dash), keys))
            .collect();
        retire.sort_by(|a, b| a.0.cmp(&b.0));
        (gone, retire)
    }

    /// Makes every widget due at the next plan and forgets what was last sent, so that
    /// the next plan publishes every value (after a publisher lost what it had sent).
    pub(crate) fn resend_all(&mut self) {
        for rt in self.runtimes.values_mut() {
            rt.next_due = Timestamp::MIN;
            rt.last = None;
        }
    }

    /// The states of the rules on widgets of the metrics `select` picks that are not OK
    /// (pending or firing), to hand over with a partition.
    pub(crate) fn rule_states(&self, select: &dyn Fn(&str) -> bool) -> Vec<RuleCheckpoint> {
        let mut out: Vec<RuleCheckpoint> = self
            .rules
            .iter()
            .filter(|(_, st)| st.tracker != Tracker::Ok)
            .filter(|((dash, _), st)| {
                self.runtimes
                    .get(&(dash.clone(), st.widget))
                    .is_some_and(|rt| select(&rt.def.metric_name))
            })
            .map(|((dash, rule), st)| {
                RuleCheckpoint::new(dash, *rule, st.tracker, st.group.clone())
            })
            .collect();
        out.sort_by(|a, b| (&a.dashboard, a.rule).cmp(&(&b.dashboard, b.rule)));
        out
    }

    /// Takes over rule states from another node (see [`rule_states`](Self::rule_states)):
    /// a rule that was firing there stays firing here, without a second `firing` event.
    pub(crate) fn import_rules(&mut self, states: Vec<RuleCheckpoint>) {
        for s in states {
            let key = (s.dashboard.clone(), s.rule);
            let (tracker, group) = s.into_parts();
            match self.rules.get_mut(&key) {
                Some(st) => {
                    st.tracker = tracker;
                    st.group = group;
                }
                None => {
                    self.imported.insert(key, (tracker, group));
                }
            }
        }
    }

    /// Plans one tick at `input.now`.
    pub(crate) fn plan<Q: QuerySource + ?Sized>(&mut self, input: &PlanInput<'_, Q>) -> Plan {
        let now = input.now;
        let mut plan = Plan::default();
        if input.generation != self.generation {
            let docs = (input.docs)();
            let (gone, retire) = self.rebuild(&docs, input.stale_after_intervals, now);
            plan.alerts = gone;
            plan.retire = retire;
            self.generation = input.generation;
        }
        // The resolutions of removed rules: sent, but not cached.
        plan.uncached_alerts = plan.alerts.len();

        // Which widgets are due, and which queries they need.
        let mut due: Vec<(usize, usize)> = Vec::new();
        let mut needed = vec![false; self.queries.len()];
        for (d, dash) in self.dashboards.iter().enumerate() {
            for (w, wp) in dash.widgets.iter().enumerate() {
                let Some(rt) = self.runtimes.get(&(dash.id.clone(), wp.id)) else {
                    continue;
                };
                if rt.next_due <= now && (input.owned)(&wp.metric) {
                    due.push((d, w));
                    needed[wp.query] = true;
                }
            }
        }
        if due.is_empty() && plan.alerts.is_empty() && plan.retire.is_empty() {
            return plan;
        }
        plan.worked = true;

        // One computation per distinct query, one read of the source each.
        let mut answers: Vec<Option<Answer>> = vec![None; self.queries.len()];
        for (q, spec) in self.queries.iter().enumerate() {
            if needed[q] {
                let t = Instant::now();
                answers[q] = input.queries.answer(spec, now);
                plan.query_times.push(t.elapsed());
            }
        }

        // Widget states, change detection, alert rules.
        let mut changed: Vec<Vec<WidgetState>> = vec![Vec::new(); self.dashboards.len()];
        for &(d, w) in &due {
            let dash = &self.dashboards[d];
            let wp = &dash.widgets[w];
            let state_input = StateInput {
                dashboard: &dash.id,
                widget: wp.id,
                stale_after: wp.stale_after,
                unhealthy: (input.unhealthy)(&wp.metric),
                now,
            };
            let state = state_of(&state_input, answers[wp.query].as_ref());
            plan.widgets_evaluated += 1;
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
                    plan.alerts.push(AlertEvent {
                        rule_id: rule.id,
                        dashboard_id: dash.id.clone(),
                        widget_id: wp.id,
                        state: transition,
                        value,
                        condition: rule.condition,
                        threshold: rule.threshold,
                        severity: rule.severity,
                        message: rule.message(&wp.title, transition, value, group.as_deref()),
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
        plan.updates = changed
            .into_iter()
            .enumerate()
            .filter(|(_, states)| !states.is_empty())
            .map(|(d, states)| (Arc::clone(&self.dashboards[d].topic), states))
            .collect();
        plan
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
    use rtdash_core::Aggregation;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// The planner alone: dashboards, a plain window store (no lock, no engine), health
    /// and time in; updates, alerts and retirements out.
    #[test]
    fn the_planner_is_pure_data_in_plan_out() {
        use rtdash_core::{Dashboard, DashboardId, MetricEvent};
        use rtdash_window::{WindowConfig, WindowStore};

        let mut store = WindowStore::new(WindowConfig::default()).unwrap();
        let mut w1 = widget(1.0, None);
        w1.aggregation = Aggregation::Sum;
        let mut w2 = widget(1.0, None);
        w2.widget_id = Uuid::from_u128(2);
        w2.display.position = Some(rtdash_core::GridPos::new(1, 0, 1, 1));
        let d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops")
            .with_widget(w1.clone())
            .with_widget(w2.clone());
        let rule = AlertRule::above(w1.widget_id, 4.0);
        let doc = DashboardDoc::from(d).with_alert_rule(rule.clone());
        let docs = vec![Arc::new(doc)];
        let mut generation = 1;
        let mut unhealthy_metric = String::new();
        let mut planner = Planner::default();
        let plan_at = |planner: &mut Planner,
                       store: &WindowStore,
                       generation,
                       docs: &[Arc<DashboardDoc>],
                       unhealthy: &str,
                       now| {
            let docs = docs.to_vec();
            planner.plan(&PlanInput {
                generation,
                docs: &move || docs.clone(),
                queries: store,
                unhealthy: &|m: &str| m == unhealthy,
                owned: &|_: &str| true,
                stale_after_intervals: 2,
                now,
            })
        };

        for (v, at) in [(2.0, -300), (3.0, -200)] {
            store
                .record_event(&MetricEvent::new("m", v, t(1_000 + at)))
                .unwrap();
        }
        // First plan: both widgets, one dashboard update, the rule fires (5 > 4).
        let p = plan_at(&mut planner, &store, generation, &docs, "", t(1_000));
        assert!(p.worked && p.retire.is_empty());
        assert_eq!((p.widgets_evaluated, p.query_times.len()), (2, 2));
        assert_eq!(p.updates.len(), 1);
        let (topic, states) = &p.updates[0];
        assert_eq!(&**topic, "ops");
        assert_eq!(
            states.iter().map(|s| s.value).collect::<Vec<_>>(),
            [Some(5.0), Some(2.0)]
        );
        assert_eq!(p.alerts.len(), 1);
        assert_eq!(
            (p.alerts[0].state, p.uncached_alerts),
            (AlertState::Firing, 0)
        );

        // Not due yet: no work at all.
        let p = plan_at(&mut planner, &store, generation, &docs, "", t(1_500));
        assert!(!p.worked && p.updates.is_empty());

        // Due, unchanged: evaluated, nothing to publish.
        let p = plan_at(&mut planner, &store, generation, &docs, "", t(2_000));
        assert_eq!(p.widgets_evaluated, 2);
        assert!(p.updates.is_empty());

        // The source turns unhealthy: both values go out again, marked stale.
        "m".clone_into(&mut unhealthy_metric);
        let p = plan_at(
            &mut planner,
            &store,
            generation,
            &docs,
            &unhealthy_metric,
            t(3_000),
        );
        assert_eq!(p.updates[0].1.len(), 2);
        assert!(p.updates[0].1.iter().all(|s| s.stale));

        // The dashboard loses w1 (and its firing rule): both keys retire, the rule resolves
        // uncached, and the remaining widget is published again.
        let mut d = docs[0].as_ref().clone();
        d.dashboard.widgets.retain(|w| w.widget_id == w2.widget_id);
        d.alert_rules.clear();
        generation += 1;
        let p = plan_at(
            &mut planner,
            &store,
            generation,
            &[Arc::new(d)],
            "",
            t(3_100),
        );
        assert_eq!(p.retire.len(), 1);
        let (topic, keys) = &p.retire[0];
        assert_eq!(&**topic, "ops");
        assert!(keys.contains(&WidgetKey::Widget(w1.widget_id)));
        assert!(keys.contains(&WidgetKey::Alert(rule.id)));
        assert_eq!((p.alerts.len(), p.uncached_alerts), (1, 1));
        assert_eq!(p.alerts[0].state, AlertState::Resolved);
        assert_eq!(p.updates[0].1.len(), 1);
        assert_eq!(p.updates[0].1[0].widget_id, w2.widget_id);
    }

    #[test]
    fn unowned_metrics_are_skipped_and_rule_states_move_with_a_partition() {
        use rtdash_core::{Dashboard, DashboardId, MetricEvent};
        use rtdash_window::{WindowConfig, WindowStore};

        let mut store = WindowStore::new(WindowConfig::default()).unwrap();
        store
            .record_event(&MetricEvent::new("m", 5.0, t(900)))
            .unwrap();
        let mut w = widget(1.0, None);
        w.aggregation = Aggregation::Sum;
        let rule = AlertRule::above(w.widget_id, 4.0);
        let d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops").with_widget(w);
        let docs = vec![Arc::new(
            DashboardDoc::from(d).with_alert_rule(rule.clone()),
        )];
        let plan = |planner: &mut Planner, owned: bool, now| {
            let docs = docs.clone();
            planner.plan(&PlanInput {
                generation: 1,
                docs: &move || docs.clone(),
                queries: &store,
                unhealthy: &|_: &str| false,
                owned: &|_: &str| owned,
                stale_after_intervals: 2,
                now,
            })
        };
        // Another node owns `m`: nothing is evaluated, nothing published.
        let mut other = Planner::default();
        let p = plan(&mut other, false, t(1_000));
        assert_eq!(
            (p.widgets_evaluated, p.updates.len(), p.alerts.len()),
            (0, 0, 0)
        );

        // The owner fires the rule; its state goes with the partition's checkpoint.
        let mut owner = Planner::default();
        let p = plan(&mut owner, true, t(1_000));
        assert_eq!(p.alerts[0].state, AlertState::Firing);
        let states = owner.rule_states(&|m: &str| m == "m");
        assert_eq!(states.len(), 1);
        assert!(owner.rule_states(&|m: &str| m != "m").is_empty());
        // Through JSON, as in a checkpoint.
        let json = serde_json::to_string(&states).unwrap();
        let states: Vec<RuleCheckpoint> = serde_json::from_str(&json).unwrap();

        // The new owner resumes it: still firing, no second `firing` event.
        other.import_rules(states);
        let p = plan(&mut other, true, t(2_000));
        assert_eq!(p.widgets_evaluated, 1);
        assert!(p.alerts.is_empty(), "{:?}", p.alerts);
        // A node that never built the rule takes the state when it builds it.
        let mut fresh = Planner::default();
        fresh.import_rules(owner.rule_states(&|_: &str| true));
        let p = plan(&mut fresh, true, t(2_000));
        assert!(p.alerts.is_empty(), "{:?}", p.alerts);
    }

    #[test]
    fn next_due_keeps_cadence_and_skips_missed() {
        let r = Duration::from_millis(500);
        assert_eq!(next_due(Timestamp::MIN, r, t(1000)), t(1500));
        assert_eq!(next_due(t(1500), r, t(1510)), t(2000));
        assert_eq!(next_due(t(1500), r, t(4000)), t(4500));
    }

    fn widget(refresh: f64, stale_after: Option<f64>) -> Widget {
        let mut w = Widget::new("w", "m", Aggregation::Count, 60)
            .with_id(Uuid::from_u128(1))
            .with_position(rtdash_core::GridPos::new(0, 0, 1, 1));
        w.refresh_interval_seconds = refresh;
        w.stale_after_seconds = stale_after;
        w
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
