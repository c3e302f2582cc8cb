//! One widget's query: what it asks of the window store ([`QuerySpec`]), where the
//! answer comes from ([`QuerySource`]), and how an answer becomes a [`WidgetState`]
//! (stale marking).

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use rtdash_core::{Aggregation, TagFilter, Timestamp, Uuid, Widget};
use rtdash_window::{QueryResult, WindowStore};

use crate::{GroupValue, WidgetState};

/// Where the planner's queries are answered. The planner asks one query at a time, so a
/// source behind a lock holds it for one query, never for a whole tick.
pub(crate) trait QuerySource {
    /// Answers `spec` at `now`; `None` when the store refuses it.
    fn answer(&self, spec: &QuerySpec, now: Timestamp) -> Option<Answer>;
}

impl QuerySource for WindowStore {
    fn answer(&self, spec: &QuerySpec, now: Timestamp) -> Option<Answer> {
        spec.run(self, now)
    }
}

/// The engine's store: the read lock is taken per query, so ingest (the writer) waits
/// for at most one query, not for a whole tick.
impl QuerySource for RwLock<WindowStore> {
    fn answer(&self, spec: &QuerySpec, now: Timestamp) -> Option<Answer> {
        spec.run(&self.read().unwrap_or_else(PoisonError::into_inner), now)
    }
}

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

pub(crate) fn is_stale(last: Option<Timestamp>, limit: Duration, now: Timestamp) -> bool {
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
