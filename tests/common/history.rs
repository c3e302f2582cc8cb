//! A history scenario and its naive oracle: events over hours of event time, and the
//! check that each history point equals the aggregation over the accepted events of its
//! window.

use proptest::prelude::*;
use rtdash::history::History;
use rtdash::{
    Aggregation, DashboardDoc, Engine, IngestOutcome, MetricEvent, Percentile, Timestamp, Uuid,
    Widget,
};

use super::T0;

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// The dashboard `h`'s widgets: id, aggregation, window (s), group-by key.
pub(crate) fn defs() -> Vec<(Uuid, Aggregation, u32, Option<&'static str>)> {
    let p = |q| Aggregation::Percentile(q);
    vec![
        (Uuid::from_u128(1), Aggregation::Count, 30, None),
        (Uuid::from_u128(2), Aggregation::Sum, 300, None),
        (Uuid::from_u128(3), Aggregation::Avg, 30, None),
        (Uuid::from_u128(4), Aggregation::Min, 30, None),
        (Uuid::from_u128(5), Aggregation::Max, 300, None),
        (Uuid::from_u128(6), p(Percentile::P50), 30, None),
        (Uuid::from_u128(7), p(Percentile::P99), 300, None),
        (Uuid::from_u128(8), p(Percentile::P99), 30, Some("region")),
        (Uuid::from_u128(9), Aggregation::Count, 300, Some("region")),
    ]
}

/// The widgets to ask history of, with a label.
pub(crate) fn widgets() -> Vec<(Uuid, String)> {
    defs()
        .into_iter()
        .map(|(id, agg, w, g)| (id, format!("{agg:?}/{w}s/{g:?}")))
        .collect()
}

/// Events in arrival order: region, event time (ms), value, arrival clock (ms).
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    events: Vec<(usize, i64, f64, i64)>,
}

/// An accepted event: region, time (ms), value.
pub(crate) type Accepted = Vec<(&'static str, i64, f64)>;

impl Scenario {
    /// About `seconds` of event time, one event every 3 s on average: arrival gaps of 0 to
    /// 6 s, most events up to 5 s behind the clock, some up to 90 s (late beyond the 30 s
    /// grace), values from -100 to 10,000.
    pub(crate) fn strategy(seconds: u32) -> impl Strategy<Value = Self> {
        let n = (seconds / 3) as usize;
        prop::collection::vec(
            (
                0..3usize,
                0..6_000i64,
                prop_oneof![20 => 0..5_000i64, 1 => 0..90_000i64],
                -100..10_000i32,
            ),
            n..=n,
        )
        .prop_map(|raw| {
            let mut clock = T0;
            let events = raw
                .into_iter()
                .map(|(r, gap, back, v)| {
                    clock += gap;
                    (r, clock - back, f64::from(v), clock)
                })
                .collect();
            Self { events }
        })
    }

    /// One event per second per region for `seconds`, in order.
    pub(crate) fn steady(seconds: i64) -> Self {
        Self::steady_from(T0, seconds)
    }

    /// [`steady`](Self::steady) from `start` (ms).
    pub(crate) fn steady_from(start: i64, seconds: i64) -> Self {
        let events = (0..seconds * 3)
            .map(|i| {
                let t = start + i / 3 * 1000;
                ((i % 3) as usize, t, ((i * 7) % 100) as f64, t)
            })
            .collect();
        Self { events }
    }

    /// No event, ending where `other` ends (to make the dashboard on another engine).
    pub(crate) fn empty_like(_other: &Self) -> Self {
        Self { events: Vec::new() }
    }

    /// The arrival clock after the last event.
    pub(crate) fn end(&self) -> Timestamp {
        Timestamp::from_millis(self.events.last().map_or(T0, |e| e.3) + 1)
    }

    /// Creates dashboard `h` and ingests the events at their arrival times, ticking the
    /// engine every 10 s of the clock (which offers roll-up buckets to the archive).
    /// Returns the accepted events.
    pub(crate) fn run(&self, engine: &Engine) -> Accepted {
        let mut doc = DashboardDoc::new("h", "History").expect("dashboard");
        for (id, agg, w, g) in defs() {
            let mut widget = Widget::new("w", "lat", agg, w);
            widget.widget_id = id;
            widget.group_by = g.map(str::to_owned);
            doc = doc.with_widget(widget);
        }
        engine.dashboards().create(doc).expect("create");
        self.ingest(engine)
    }

    /// Ingests the events (the dashboard exists), ticking as [`run`](Self::run) does.
    pub(crate) fn ingest(&self, engine: &Engine) -> Accepted {
        let mut accepted = Accepted::new();
        let mut next_tick = self.events.first().map_or(T0, |e| e.3);
        for &(r, t, v, clock) in &self.events {
            let event = MetricEvent::new("lat", v, Timestamp::from_millis(t))
                .with_tag("region", REGIONS[r]);
            let outcome = engine
                .ingest_at(event, Timestamp::from_millis(clock))
                .expect("valid event");
            if outcome == IngestOutcome::Accepted {
                accepted.push((REGIONS[r], t, v));
            }
            if clock >= next_tick {
                engine.tick(Timestamp::from_millis(clock));
                next_tick = clock + 10_000;
            }
        }
        if !self.events.is_empty() {
            engine.tick(self.end());
        }
        accepted
    }
}

/// The naive value of `agg` over `values`.
fn naive(agg: Aggregation, values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    match agg {
        Aggregation::Count => Some(n as f64),
        Aggregation::Sum => Some(values.iter().sum()),
        _ if n == 0 => None,
        Aggregation::Avg => Some(values.iter().sum::<f64>() / n as f64),
        Aggregation::Min => values.iter().copied().reduce(f64::min),
        Aggregation::Max => values.iter().copied().reduce(f64::max),
        Aggregation::Percentile(p) => {
            values.sort_by(f64::total_cmp);
            let rank = p.nearest_rank(n as u64) as usize;
            Some(values[rank.max(1) - 1])
        }
    }
}

/// Checks every point of `h` against the accepted events.
pub(crate) fn check_history(
    h: &History,
    accepted: &Accepted,
    label: &str,
) -> Result<(), TestCaseError> {
    let (_, agg, window_s, group_by) = defs()
        .into_iter()
        .find(|d| d.0 == h.widget_id)
        .expect("a widget of the scenario");
    let window_ms = i64::from(window_s) * 1000;
    prop_assert!(!h.series.is_empty(), "{}: no series", label);
    let mut points = 0;
    for s in &h.series {
        prop_assert_eq!(s.group.is_some(), group_by.is_some(), "{}", label);
        let mut last = i64::MIN;
        for p in &s.points {
            let (start, end) = (p.start.as_millis(), p.time.as_millis());
            prop_assert!(end > last, "{}: points out of order", label);
            last = end;
            prop_assert!(
                end - start >= window_ms && end - start <= window_ms + 3_600_000,
                "{}: a window of {} ms for a {} ms widget",
                label,
                end - start,
                window_ms
            );
            let mut values: Vec<f64> = accepted
                .iter()
                .filter(|(r, t, _)| {
                    *t >= start && *t < end && s.group.as_deref().is_none_or(|g| g == *r)
                })
                .map(|e| e.2)
                .collect();
            prop_assert_eq!(p.count, values.len() as u64, "{}: count at {}", label, end);
            let want = naive(agg, &mut values);
            match (want, p.value) {
                (None, None) => {}
                (Some(w), Some(got)) => {
                    let tol = match agg {
                        Aggregation::Percentile(_) => w.abs() / 256.0 + 1e-9,
                        Aggregation::Sum | Aggregation::Avg => 1e-9 * w.abs().max(1.0),
                        _ => 0.0,
                    };
                    prop_assert!(
                        (got - w).abs() <= tol,
                        "{}: at {} (window {}..{}): got {}, naive {}",
                        label,
                        end,
                        start,
                        end,
                        got,
                        w
                    );
                }
                (w, got) => {
                    prop_assert!(false, "{}: at {}: got {:?}, naive {:?}", label, end, got, w);
                }
            }
            points += 1;
        }
    }
    prop_assert!(points > 0, "{}: no points", label);
    Ok(())
}
