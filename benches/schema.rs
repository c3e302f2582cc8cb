//! Dashboard validation benchmarks: `Dashboard::validate` beside the pairwise check it
//! replaced (every widget's own rules, then each widget compared with every earlier one for
//! a duplicate id and a shared grid cell), kept here as the baseline.
//!
//! Run with: `cargo bench --bench schema` (about 1 min after the build). Group
//! `schema_validate/{pairwise,ours}/{1000,29000}`: a valid dashboard of N 1x1 widgets on a
//! 12-column grid (the worst case for the pairwise check: no pair overlaps, so every pair is
//! compared); 29,000 widgets is the 8 MB request body that took the pairwise check over 2 s.
//! Throughput is widgets.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rtdash::{Aggregation, Dashboard, DashboardId, GridPos, SchemaLimits, Uuid, Widget};

const SIZES: [usize; 2] = [1_000, 29_000];

fn dashboard(n: usize) -> Dashboard {
    let id = DashboardId::new("bench").unwrap_or_else(|e| panic!("{e}"));
    (0..n).fold(Dashboard::new(id, "Bench"), |d, i| {
        let i32 = u32::try_from(i).unwrap_or_else(|e| panic!("{e}"));
        d.with_widget(
            Widget::new(format!("widget {i}"), "api.latency", Aggregation::Count, 60)
                .with_id(Uuid::from_u128(i as u128 + 1))
                .with_position(GridPos::new(i32 % 12, i32 / 12, 1, 1)),
        )
    })
}

/// The check before: each widget's own rules, then every earlier widget compared for a
/// duplicate id and for an overlap (O(n²)). Returns the number of problems.
fn pairwise(d: &Dashboard, limits: &SchemaLimits) -> usize {
    let mut problems = 0;
    for (i, w) in d.widgets.iter().enumerate() {
        if w.validate(limits).is_err() {
            problems += 1;
        }
        if d.widgets[..i].iter().any(|o| o.widget_id == w.widget_id) {
            problems += 1;
        }
        let Some(p) = w.display.position else {
            continue;
        };
        if p.w > 0
            && p.h > 0
            && d.widgets[..i].iter().any(|o| {
                o.display
                    .position
                    .is_some_and(|q| q.w > 0 && q.h > 0 && q.overlaps(&p))
            })
        {
            problems += 1;
        }
    }
    problems
}

fn validate(c: &mut Criterion) {
    let limits = SchemaLimits::default()
        .with_max_widgets(30_000)
        .with_max_rows(3_000);
    let mut group = c.benchmark_group("schema_validate");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    for n in SIZES {
        let d = dashboard(n);
        assert_eq!(pairwise(&d, &limits), 0, "the bench dashboard is valid");
        assert!(d.validate(&limits).is_ok(), "the bench dashboard is valid");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("pairwise", n), &d, |b, d| {
            b.iter(|| black_box(pairwise(black_box(d), &limits)));
        });
        group.bench_with_input(BenchmarkId::new("ours", n), &d, |b, d| {
            b.iter(|| black_box(d.validate(black_box(&limits)).is_ok()));
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    validate(&mut c);
    c.final_summary();
}
