//! The built-in demo producer: realistic, varying operations metrics.
//!
//! Four regions serve HTTP traffic with a compressed day (one "day" every ten
//! minutes), noise on every value, and now and then an incident that fires an
//! alert: a bad deploy (error rate up everywhere), a slow region (latency up
//! in one region) or a queue backlog. [`Demo::tick`] is pure: the caller
//! passes the time in, so the same seed and times give the same events.

use std::f64::consts::TAU;
use std::time::Duration;

use rtdash::core::{MetricEvent, Timestamp};

/// One region of the simulated service.
struct Region {
    name: &'static str,
    /// Mean requests per second over a day.
    base_rps: f64,
    /// Median latency in ms at average load.
    base_latency_ms: f64,
    /// Where in the day this region is (time zones).
    phase: f64,
}

const REGIONS: [Region; 4] = [
    Region {
        name: "eu-west",
        base_rps: 420.0,
        base_latency_ms: 38.0,
        phase: 0.0,
    },
    Region {
        name: "us-east",
        base_rps: 380.0,
        base_latency_ms: 46.0,
        phase: -1.3,
    },
    Region {
        name: "us-west",
        base_rps: 250.0,
        base_latency_ms: 55.0,
        phase: -1.9,
    },
    Region {
        name: "ap-south",
        base_rps: 190.0,
        base_latency_ms: 82.0,
        phase: 2.2,
    },
];

/// Length of the simulated day.
const DAY: Duration = Duration::from_secs(600);

/// What goes wrong during an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncidentKind {
    /// Error rate rises to 7-9 % in every region.
    BadDeploy,
    /// Latency rises about fourfold in one region (index into the regions).
    SlowRegion(usize),
    /// The job queue backs up past its alert threshold.
    QueueBacklog,
}

#[derive(Debug, Clone, Copy)]
struct Incident {
    kind: IncidentKind,
    start: Duration,
    length: Duration,
}

impl Incident {
    /// How strongly the incident acts at `t`: ramps up over 4 s, holds, ramps down over 4 s.
    fn strength(&self, t: Duration) -> f64 {
        self.strength_delayed(t, Duration::ZERO)
    }

    /// As [`strength`](Self::strength) for a part that starts `delay` later (a deploy rolls
    /// out region by region) and ends at the same time.
    fn strength_delayed(&self, t: Duration, delay: Duration) -> f64 {
        let into = t.saturating_sub(self.start + delay).as_secs_f64();
        let left = (self.start + self.length).saturating_sub(t).as_secs_f64();
        (into / 4.0).min(left / 4.0).clamp(0.0, 1.0)
    }
}

/// Settings of the demo producer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemoConfig {
    /// Seed of the random numbers.
    pub(crate) seed: u64,
    /// When the first incident (a bad deploy) starts, counted from the first tick.
    pub(crate) first_incident: Duration,
}

/// The demo producer's state.
pub(crate) struct Demo {
    rng: SplitMix64,
    start: Option<Timestamp>,
    last: Duration,
    incident: Option<Incident>,
    next_incident: Duration,
    first: bool,
    queue: f64,
    connections: f64,
}

impl Demo {
    pub(crate) fn new(config: DemoConfig) -> Self {
        Self {
            rng: SplitMix64(config.seed),
            start: None,
            last: Duration::ZERO,
            incident: None,
            next_incident: config.first_incident,
            first: true,
            queue: 120.0,
            connections: 8_000.0,
        }
    }

    /// The incident under way at the last tick, if any.
    pub(crate) fn incident(&self) -> Option<IncidentKind> {
        self.incident.map(|i| i.kind)
    }

    /// The events for one tick at `now`: gauges for request rate, error rate, queue depth and
    /// connections, plus latency samples (one event per sampled request).
    pub(crate) fn tick(&mut self, now: Timestamp) -> Vec<MetricEvent> {
        let start = *self.start.get_or_insert(now);
        let t = now.checked_duration_since(start).unwrap_or_default();
        let dt = t.saturating_sub(self.last).as_secs_f64().clamp(0.0, 5.0);
        self.last = t;
        self.schedule_incidents(t);
        let incident = self.incident.filter(|i| t < i.start + i.length);
        let strength = |kind: fn(IncidentKind) -> bool| {
            incident
                .filter(|i| kind(i.kind))
                .map_or(0.0, |i| i.strength(t))
        };
        let backlog = strength(|k| k == IncidentKind::QueueBacklog);
        let day = t.as_secs_f64() / DAY.as_secs_f64() * TAU;

        let mut out = Vec::with_capacity(128);
        let mut total_rps = 0.0;
        let mut total_errors = 0.0;
        for (i, r) in REGIONS.iter().enumerate() {
            let load = 1.0 + 0.35 * (day + r.phase).sin();
            let rps = (r.base_rps * load * (1.0 + 0.04 * self.rng.normal())).max(0.0);
            let slow = incident
                .filter(|x| x.kind == IncidentKind::SlowRegion(i))
                .map_or(0.0, |x| x.strength(t));
            // The bad deploy reaches one region after the other, 3 s apart.
            let deploy = incident
                .filter(|x| x.kind == IncidentKind::BadDeploy)
                .map_or(0.0, |x| {
                    x.strength_delayed(t, Duration::from_secs(3 * i as u64))
                });
            let err_pct = (0.35
                + 0.45 * (load - 0.65).max(0.0)
                + 0.12 * self.rng.normal().abs()
                + deploy * (5.5 + 1.1 * i as f64 + 1.5 * self.rng.next_f64())
                + slow * 1.5)
                .max(0.0);
            total_rps += rps;
            total_errors += rps * err_pct;
            out.push(gauge("http.requests.rate", rps, now, Some(r.name)));
            out.push(gauge("http.errors.percent", err_pct, now, Some(r.name)));

            // Latency samples: about one event per 20 requests, log-normal around a median
            // that grows with load, with rare slow outliers.
            let median = r.base_latency_ms * (1.0 + 0.3 * (load - 1.0)) * (1.0 + 3.2 * slow);
            let samples = (rps * dt / 20.0).round().clamp(1.0, 200.0) as usize;
            for _ in 0..samples {
                let mut ms = median * (0.45 * self.rng.normal()).exp();
                if self.rng.next_f64() < 0.004 {
                    ms *= 4.0 + 6.0 * self.rng.next_f64();
                }
                out.push(gauge("http.latency", ms, now, Some(r.name)));
            }
        }
        out.push(gauge("http.requests.rate.all", total_rps, now, None));
        let all_errors = if total_rps > 0.0 {
            total_errors / total_rps
        } else {
            0.0
        };
        out.push(gauge("http.errors.percent.all", all_errors, now, None));

        // Queue: a slow sine of ordinary work, a climb during a backlog, drained after.
        let target = 140.0 + 90.0 * (day * 3.0).sin() + backlog * 820.0;
        self.queue += (target - self.queue) * (dt * 0.35).min(1.0) + 6.0 * self.rng.normal();
        self.queue = self.queue.clamp(0.0, 1_200.0);
        out.push(
            MetricEvent::new("queue.depth", self.queue.round(), now).with_tag("queue", "jobs"),
        );

        let conns_target = 8_200.0 * (1.0 + 0.3 * day.sin());
        self.connections +=
            (conns_target - self.connections) * (dt * 0.2).min(1.0) + 25.0 * self.rng.normal();
        out.push(gauge(
            "api.connections",
            self.connections.round(),
            now,
            None,
        ));
        out
    }

    fn schedule_incidents(&mut self, t: Duration) {
        if self.incident.is_some_and(|i| t >= i.start + i.length) {
            self.incident = None;
        }
        if self.incident.is_some() || t < self.next_incident {
            return;
        }
        let kind = if self.first {
            self.first = false;
            IncidentKind::BadDeploy
        } else {
            match self.rng.below(3) {
                0 => IncidentKind::BadDeploy,
                1 => IncidentKind::SlowRegion(self.rng.below(REGIONS.len() as u64) as usize),
                _ => IncidentKind::QueueBacklog,
            }
        };
        let length = Duration::from_secs(30 + self.rng.below(16));
        self.incident = Some(Incident {
            kind,
            start: t,
            length,
        });
        self.next_incident = t + length + Duration::from_secs(60 + self.rng.below(61));
    }
}

/// The name of region `i` (as in [`IncidentKind::SlowRegion`]).
pub(crate) fn region_name(i: usize) -> &'static str {
    REGIONS.get(i).map_or("?", |r| r.name)
}

fn gauge(name: &str, value: f64, now: Timestamp, region: Option<&str>) -> MetricEvent {
    let e = MetricEvent::new(name, value, now);
    match region {
        Some(r) => e.with_tag("region", r),
        None => e,
    }
}

/// SplitMix64: a small, fast generator; plenty for demo noise (not for anything secret).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Standard normal (Box-Muller), clipped to ±4.
    fn normal(&mut self) -> f64 {
        let u = self.next_f64().max(f64::MIN_POSITIVE);
        let v = self.next_f64();
        ((-2.0 * u.ln()).sqrt() * (TAU * v).cos()).clamp(-4.0, 4.0)
    }
}
