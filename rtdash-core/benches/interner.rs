//! Series lookup by (metric, tags): the interner beside a naive map keyed by an owned,
//! sorted key (which allocates on every lookup).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtdash_core::{MetricEvent, SeriesInterner, Tags, Timestamp};

const SERIES: usize = 10_000;

fn series() -> Vec<(String, [(String, String); 3])> {
    (0..SERIES)
        .map(|i| {
            (
                format!("metric.{}", i % 10),
                [
                    ("host".to_owned(), format!("host-{}", i / 10)),
                    ("region".to_owned(), format!("r{}", i % 7)),
                    ("env".to_owned(), "prod".to_owned()),
                ],
            )
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let data = series();
    let mut interner = SeriesInterner::new();
    let mut naive: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
    for (m, tags) in &data {
        interner
            .get_or_intern(m, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap();
        let mut key: Vec<_> = tags.to_vec();
        key.sort();
        let n = naive.len();
        naive.insert((m.clone(), key), n);
    }
    // A scrambled visiting order so lookups do not walk memory in insertion order.
    let order: Vec<usize> = (0..SERIES).map(|i| (i * 7919) % SERIES).collect();

    let mut g = c.benchmark_group("series_lookup_10k_3_tags");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("naive_owned_sorted_key", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for &i in &order {
                let (m, tags) = &data[i];
                let mut key: Vec<(String, String)> = tags.to_vec();
                key.sort();
                acc += naive[&(m.clone(), key)];
            }
            black_box(acc)
        });
    });
    let sorted: Vec<(String, [(String, String); 3])> = data
        .iter()
        .map(|(m, tags)| {
            let mut tags = tags.clone();
            tags.sort();
            (m.clone(), tags)
        })
        .collect();
    g.bench_function("interner_get_sorted_tags", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for &i in &order {
                let (m, tags) = &sorted[i];
                let id = interner.get(m, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                acc += id.map_or(0, |id| id.index());
            }
            black_box(acc)
        });
    });
    g.bench_function("interner_get_unsorted_tags", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for &i in &order {
                let (m, tags) = &data[i];
                let id = interner.get(m, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                acc += id.map_or(0, |id| id.index());
            }
            black_box(acc)
        });
    });
    g.bench_function("interner_get_or_intern_known", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for &i in &order {
                let (m, tags) = &data[i];
                let id = interner
                    .get_or_intern(m, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .unwrap();
                acc += id.index();
            }
            black_box(acc)
        });
    });
    g.finish();
}

/// The access pattern of the window store's by-name ingest: events whose tags sit in a
/// `BTreeMap` (so they arrive sorted), visited round robin.
fn lookup_events(c: &mut Criterion) {
    let events: Vec<MetricEvent> = (0..SERIES)
        .map(|i| {
            MetricEvent::new("api.latency", 0.0, Timestamp::EPOCH)
                .with_tag("host", format!("host-{i:05}"))
                .with_tag("region", ["eu", "us", "ap"][i % 3])
                .with_tag("env", "prod")
        })
        .collect();
    let mut interner = SeriesInterner::new();
    let mut naive: HashMap<String, HashMap<Tags, usize>> = HashMap::new();
    for e in &events {
        interner.intern_event(e).unwrap();
        let per_metric = naive.entry(e.metric_name.clone()).or_default();
        let n = per_metric.len();
        per_metric.insert(e.tags.clone(), n);
    }
    let mut g = c.benchmark_group("series_lookup_events_10k_3_tags");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("naive_nested_hashmap", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for e in &events {
                acc += naive
                    .get(&e.metric_name)
                    .and_then(|m| m.get(&e.tags))
                    .copied()
                    .unwrap_or(0);
            }
            black_box(acc)
        });
    });
    g.bench_function("interner_intern_event", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for e in &events {
                acc += interner.intern_event(e).map_or(0, |id| id.index());
            }
            black_box(acc)
        });
    });
    // 100 series: everything stays in L1, so this is the compute cost of a lookup.
    g.bench_function("interner_intern_event_100_hot", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for _ in 0..SERIES / 100 {
                for e in &events[..100] {
                    acc += interner.intern_event(e).map_or(0, |id| id.index());
                }
            }
            black_box(acc)
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    targets = lookup, lookup_events
}
criterion_main!(benches);
