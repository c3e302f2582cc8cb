//! Memory per series for a full 1 h window, as estimated by `WindowStore::heap_bytes`.
//!
//! Run with: `cargo run --release -p rtdash-window --example memory`
//!
//! One series receives an hour of latency-like values (log-normal, median 20 ms, long tail)
//! at several rates; the store uses the default configuration (1 s buckets, 1 min roll-up
//! beyond 5 min, 30 s grace, 1 h retention) with and without percentiles.

use rtdash_core::Timestamp;
use rtdash_window::{WindowConfig, WindowStore};

fn latencies() -> impl FnMut() -> f64 {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    move || {
        let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
        (3.0 + 0.8 * z).exp()
    }
}

fn per_series(config: WindowConfig, events_per_sec: i64, series: usize) -> usize {
    let mut store = WindowStore::new(config).expect("valid config");
    let ids: Vec<_> = (0..series)
        .map(|i| {
            store
                .series_id("api.latency", [("host", i.to_string().as_str())])
                .expect("series")
        })
        .collect();
    let mut next = latencies();
    let step_us = 1_000_000 / events_per_sec;
    let t0 = 1_700_000_000_000i64;
    // One hour plus the grace period, so every bucket of the window is filled and sealed.
    let end_us = 3_630_000_000i64;
    let mut us = 0;
    while us < end_us {
        for &id in &ids {
            let t = Timestamp::from_millis(t0 + us / 1000);
            store.record(id, t, next()).expect("valid event");
        }
        us += step_us;
    }
    store.heap_bytes() / series
}

fn main() {
    println!("| events/s per series | with percentiles (P = 7) | without percentiles |");
    println!("|---:|---:|---:|");
    for rate in [1, 10, 100, 1000] {
        let series = if rate >= 100 { 1 } else { 20 };
        let with = per_series(WindowConfig::default(), rate, series);
        let without = per_series(
            WindowConfig::default().with_percentiles(false),
            rate,
            series,
        );
        println!(
            "| {rate} | {:.1} KiB | {:.1} KiB |",
            with as f64 / 1024.0,
            without as f64 / 1024.0
        );
    }
    let p5 = per_series(WindowConfig::default().with_percentile_precision(5), 100, 1);
    println!(
        "\nAt 100 events/s with precision P = 5 (±1.6 %): {:.1} KiB per series",
        p5 as f64 / 1024.0
    );
}
