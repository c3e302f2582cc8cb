//! rtdash-window benchmarks: each group puts a naive baseline (a `VecDeque` of raw
//! `(time, value)` events, expired from the front, scanned on read) beside the store.
//!
//! Run with: `cargo bench --bench window` (about 1.5 min after the build; add `-- --quick`
//! for a rougher, faster run, or a group name such as `-- read_1h` to run one group).

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtdash_core::{Aggregation, MetricEvent, Percentile, SeriesId, TagFilter, Tags, Timestamp};
use rtdash_window::{WindowConfig, WindowStore};

/// Events per measured iteration of the ingest benches.
const BATCH: usize = 10_000;
/// Event spacing in the single-series benches: 100 events/s.
const STEP_MS: i64 = 10;
const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

/// Latency-like values (log-normal, median 20, long tail), deterministic.
fn latencies(n: usize) -> Vec<f64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            (3.0 + 0.8 * z).exp()
        })
        .collect()
}

/// The naive baseline: every raw event of the retention in time order.
struct Naive {
    events: VecDeque<(i64, f64)>,
    retention: i64,
}

impl Naive {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            retention: HOUR_MS,
        }
    }

    fn push(&mut self, t: i64, v: f64) {
        self.events.push_back((t, v));
        self.expire(t);
    }

    /// Out-of-order insert keeping time order.
    fn insert(&mut self, t: i64, v: f64) {
        let at = self.events.partition_point(|&(u, _)| u <= t);
        self.events.insert(at, (t, v));
        if let Some(&(newest, _)) = self.events.back() {
            self.expire(newest);
        }
    }

    fn expire(&mut self, newest: i64) {
        while self
            .events
            .front()
            .is_some_and(|&(u, _)| u < newest - self.retention)
        {
            self.events.pop_front();
        }
    }

    fn sum(&self, start: i64, end: i64) -> f64 {
        self.events
            .iter()
            .filter(|&&(t, _)| t >= start && t < end)
            .map(|&(_, v)| v)
            .sum()
    }

    fn p99(&self, start: i64, end: i64) -> Option<f64> {
        let mut vals: Vec<f64> = self
            .events
            .iter()
            .filter(|&&(t, _)| t >= start && t < end)
            .map(|&(_, v)| v)
            .collect();
        if vals.is_empty() {
            return None;
        }
        // The same exact nearest rank as the store's (`vals` is not empty, so it is >= 1).
        let rank = Percentile::P99.nearest_rank(vals.len() as u64) as usize;
        let (_, v, _) = vals.select_nth_unstable_by(rank - 1, f64::total_cmp);
        Some(*v)
    }
}

fn config(percentiles: bool) -> WindowConfig {
    WindowConfig::default().with_percentiles(percentiles)
}

fn one_series(percentiles: bool) -> (WindowStore, SeriesId) {
    let mut store = WindowStore::new(config(percentiles)).expect("valid config");
    let id = store
        .series_id("api.latency", [("host", "a")])
        .expect("series");
    (store, id)
}

fn ingest_one_series(c: &mut Criterion, name: &str, percentiles: bool) {
    let values = latencies(1 << 16);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut store, id) = one_series(percentiles);
    let mut t = T0;
    g.bench_function("ours", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                t += STEP_MS;
                let v = values[i & 0xFFFF];
                black_box(store.record(id, Timestamp::from_millis(t), v).ok());
            }
        });
    });
    let mut naive = Naive::new();
    let mut t = T0;
    g.bench_function("naive_vecdeque", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                t += STEP_MS;
                naive.push(t, values[i & 0xFFFF]);
            }
            black_box(naive.events.len());
        });
    });
    g.finish();
}

fn ingest_series_id(c: &mut Criterion) {
    ingest_one_series(c, "ingest_series_id", false);
}

fn ingest_series_id_percentiles(c: &mut Criterion) {
    ingest_one_series(c, "ingest_series_id_percentiles", true);
}

fn ingest_by_name(c: &mut Criterion) {
    const SERIES: usize = 10_000;
    let values = latencies(1 << 16);
    let events: Vec<MetricEvent> = (0..SERIES)
        .map(|i| {
            MetricEvent::new("api.latency", 0.0, Timestamp::from_millis(T0))
                .with_tag("host", format!("host-{i:05}"))
                .with_tag("region", ["eu", "us", "ap"][i % 3])
        })
        .collect();
    let mut g = c.benchmark_group("ingest_by_name_10k_series");
    g.throughput(Throughput::Elements(BATCH as u64));
    // Every series reports once per event-time second, round robin: event time moves 0.1 ms
    // per event.
    let at = |n: usize| Timestamp::from_millis(T0 + (n / 10) as i64);
    for percentiles in [false, true] {
        let mut store = WindowStore::new(config(percentiles)).expect("valid config");
        let mut events = events.clone();
        let mut n = 0usize;
        let name = if percentiles {
            "ours_percentiles"
        } else {
            "ours"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    n += 1;
                    let e = &mut events[n % SERIES];
                    e.value = values[n & 0xFFFF];
                    e.event_time = at(n);
                    black_box(store.record_event(e).ok());
                }
            });
        });
    }
    // The same stream by id: the share of the name lookup.
    let mut store = WindowStore::new(config(false)).expect("valid config");
    let ids: Vec<SeriesId> = events
        .iter()
        .map(|e| {
            let tags = e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            store.series_id(&e.metric_name, tags).expect("series")
        })
        .collect();
    let mut n = 0usize;
    g.bench_function("ours_by_id", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                n += 1;
                black_box(
                    store
                        .record(ids[n % SERIES], at(n), values[n & 0xFFFF])
                        .ok(),
                );
            }
        });
    });
    let mut naive: HashMap<String, HashMap<Tags, Naive>> = HashMap::new();
    for e in &events {
        naive
            .entry(e.metric_name.clone())
            .or_default()
            .insert(e.tags.clone(), Naive::new());
    }
    let mut n = 0usize;
    g.bench_function("naive_hashmap_vecdeque", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                n += 1;
                let e = &events[n % SERIES];
                if let Some(w) = naive
                    .get_mut(&e.metric_name)
                    .and_then(|m| m.get_mut(&e.tags))
                {
                    w.push(at(n).as_millis(), values[n & 0xFFFF]);
                }
            }
        });
    });
    g.finish();
}

fn full_hour(percentiles: bool) -> (WindowStore, SeriesId, Naive, i64) {
    let values = latencies(1 << 16);
    let (mut store, id) = one_series(percentiles);
    let mut naive = Naive::new();
    let mut t = T0;
    for i in 0..(HOUR_MS / STEP_MS) as usize {
        t += STEP_MS;
        let v = values[i & 0xFFFF];
        store
            .record(id, Timestamp::from_millis(t), v)
            .expect("in range");
        naive.push(t, v);
    }
    (store, id, naive, t)
}

fn read_1h(c: &mut Criterion) {
    let (store, id, naive, now) = full_hour(true);
    let hour = Duration::from_secs(3600);
    let now_ts = Timestamp::from_millis(now);
    let (start, end) = store.window_span(hour, now_ts).expect("valid window");
    let (start, end) = (start.as_millis(), end.as_millis());
    let all = TagFilter::new();
    let p99 = Aggregation::Percentile(Percentile::P99);
    let mut g = c.benchmark_group("read_1h");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ours_sum_by_id", |b| {
        b.iter(|| store.query_series(black_box(id), Aggregation::Sum, hour, now_ts));
    });
    g.bench_function("ours_max_by_id", |b| {
        b.iter(|| store.query_series(black_box(id), Aggregation::Max, hour, now_ts));
    });
    g.bench_function("ours_avg_by_metric", |b| {
        b.iter(|| {
            store.query(
                black_box("api.latency"),
                &all,
                Aggregation::Avg,
                hour,
                now_ts,
            )
        });
    });
    g.bench_function("naive_sum_scan", |b| {
        b.iter(|| naive.sum(black_box(start), end));
    });
    g.bench_function("ours_p99_by_id", |b| {
        b.iter(|| store.query_series(black_box(id), p99, hour, now_ts));
    });
    g.bench_function("ours_p99_5min_by_id", |b| {
        b.iter(|| store.query_series(black_box(id), p99, Duration::from_secs(300), now_ts));
    });
    g.bench_function("naive_p99_select", |b| {
        b.iter(|| naive.p99(black_box(start), end));
    });
    g.finish();
}

fn ingest_out_of_order(c: &mut Criterion) {
    let values = latencies(1 << 16);
    // Up to 30 s back (the default grace), from a cursor moving 10 ms per event.
    let jitter: Vec<i64> = latencies(1 << 12)
        .iter()
        .map(|v| (v.to_bits() % 30_000) as i64)
        .collect();
    let mut g = c.benchmark_group("ingest_out_of_order");
    g.throughput(Throughput::Elements(BATCH as u64));
    for percentiles in [false, true] {
        let (mut store, id) = one_series(percentiles);
        let mut t = T0 + 60_000;
        let name = if percentiles {
            "ours_percentiles"
        } else {
            "ours"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BATCH {
                    t += STEP_MS;
                    let at = t - jitter[i & 0xFFF];
                    black_box(
                        store
                            .record(id, Timestamp::from_millis(at), values[i & 0xFFFF])
                            .ok(),
                    );
                }
            });
        });
    }
    let mut naive = Naive::new();
    let mut t = T0 + 60_000;
    g.bench_function("naive_vecdeque_sorted_insert", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                t += STEP_MS;
                naive.insert(t - jitter[i & 0xFFF], values[i & 0xFFFF]);
            }
        });
    });
    g.finish();
}

fn settings() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = settings();
    targets = ingest_series_id, ingest_series_id_percentiles, ingest_by_name, read_1h, ingest_out_of_order
}
criterion_main!(benches);
