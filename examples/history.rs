//! History figures: what keeping long-range history costs ingest, and how long a 24 h
//! history read of one widget takes, from the in-memory archive and (feature `postgres`,
//! `--postgres URL`) from PostgreSQL, beside a naive computation over the raw events.
//!
//! ```text
//! cargo run --release --example history
//! cargo run --release --features postgres --example history -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! It ingests 25 hours of event time (`--series` series of one metric, one event per
//! second each, in order), ticking the engine every second of event time (which offers
//! the complete roll-up buckets to the archive), once without an archive and once with
//! each archive, and reports events/s for each run. Then it reads the last 24 h of a
//! `p99 over 30 s` widget (288 points, one per 5 min) `--reads` times and reports p50 and
//! p99 of the read time; the baseline computes the same points from the raw events kept
//! in a sorted vector (what a store of raw events would do). With PostgreSQL it also
//! reports rows and bytes written per series per minute. PostgreSQL runs use a database
//! of their own (`rtdash_history_bench`, dropped and made again).

use std::time::{Duration, Instant};

use rtdash::history::{HistoryRequest, MemoryArchive};
use rtdash::{
    Aggregation, DashboardDoc, Engine, EngineConfig, MetricEvent, Percentile, Timestamp, Uuid,
    Widget,
};

const T0: i64 = 1_700_000_040_000;
const HOURS: i64 = 25;
const WIDGET: Uuid = Uuid::from_u128(1);

struct Args {
    series: usize,
    reads: usize,
    postgres: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        series: 20,
        reads: 100,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--series" => a.series = value()?.parse().map_err(|e| format!("--series: {e}"))?,
            "--reads" => a.reads = value()?.parse().map_err(|e| format!("--reads: {e}"))?,
            "--postgres" => a.postgres = Some(value()?),
            "-h" | "--help" => {
                return Err("usage: history [--series N] [--reads N] [--postgres URL]".into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.series == 0 || a.reads == 0 {
        return Err("--series and --reads must be at least 1".into());
    }
    Ok(a)
}

fn engine(
    archive: Option<Box<dyn FnOnce(rtdash::EngineBuilder) -> rtdash::EngineBuilder>>,
) -> Engine {
    let builder = Engine::builder(EngineConfig::default());
    let builder = match archive {
        Some(add) => add(builder),
        None => builder,
    };
    let engine = builder.build().expect("engine");
    let mut w = Widget::new("p99", "lat", Aggregation::Percentile(Percentile::P99), 30);
    w.widget_id = WIDGET;
    engine
        .dashboards()
        .create(
            DashboardDoc::new("h", "History")
                .expect("doc")
                .with_widget(w),
        )
        .expect("dashboard");
    engine
}

/// The value of series `s` at second `i`: a latency-like spread.
fn value(s: usize, i: i64) -> f64 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (s as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    5.0 + (x >> 40) as f64 / 1e5
}

/// Ingests the 25 hours; returns events/s (ingest and ticks together).
fn ingest(engine: &Engine, series: usize, raw: Option<&mut Vec<(i64, f64)>>) -> f64 {
    let hosts: Vec<String> = (0..series).map(|s| format!("h{s}")).collect();
    let started = Instant::now();
    let mut n = 0u64;
    let mut raw = raw;
    for i in 0..HOURS * 3600 {
        let t = T0 + i * 1000;
        let now = Timestamp::from_millis(t);
        for (s, host) in hosts.iter().enumerate() {
            let v = value(s, i);
            let e = MetricEvent::new("lat", v, now).with_tag("host", host.as_str());
            engine.ingest_at(e, now).expect("valid event");
            if let Some(raw) = raw.as_deref_mut() {
                raw.push((t, v));
            }
            n += 1;
        }
        engine.tick(now);
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Reads the last 24 h `reads` times; returns (p50, p99, points).
fn reads(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    reads: usize,
) -> (Duration, Duration, usize) {
    let now = Timestamp::from_millis(T0 + HOURS * 3_600_000);
    let req = HistoryRequest::last(Duration::from_secs(24 * 3600), now);
    let mut times = Vec::with_capacity(reads);
    let mut points = 0;
    for _ in 0..reads {
        let started = Instant::now();
        let h = rt
            .block_on(engine.history("h", WIDGET, req))
            .expect("history");
        times.push(started.elapsed());
        points = h.series[0].points.len();
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), points)
}

/// The naive baseline: the same points from raw events sorted by time.
fn naive_reads(raw: &[(i64, f64)], reads: usize) -> (Duration, Duration) {
    let end = T0 + HOURS * 3_600_000;
    let mut times = Vec::with_capacity(reads);
    for _ in 0..reads {
        let started = Instant::now();
        let mut sink = 0.0;
        let mut t = end - 24 * 3_600_000 + 300_000;
        while t <= end {
            let (a, b) = (
                raw.partition_point(|e| e.0 < t - 60_000),
                raw.partition_point(|e| e.0 < t),
            );
            let mut w: Vec<f64> = raw[a..b].iter().map(|e| e.1).collect();
            w.sort_by(f64::total_cmp);
            if let Some(r) = Percentile::P99.nearest_rank(w.len() as u64).checked_sub(1) {
                sink += w.get(r as usize).copied().unwrap_or(0.0);
            }
            t += 300_000;
        }
        std::hint::black_box(sink);
        times.push(started.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("history: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let events = args.series as i64 * HOURS * 3600;
    println!(
        "{} series x {HOURS} h, one event per second each: {events} events; ticks every second of event time",
        args.series
    );

    let mut raw = Vec::with_capacity(usize::try_from(events).unwrap_or(0));
    let bare = engine(None);
    let rate_bare = ingest(&bare, args.series, Some(&mut raw));
    drop(bare);
    println!(
        "ingest without an archive:      {:>10.0} events/s",
        rate_bare
    );

    let memory = engine(Some(Box::new(|b| {
        b.history_archive(MemoryArchive::new(10_000_000))
    })));
    let rate_memory = ingest(&memory, args.series, None);
    println!(
        "ingest with the memory archive: {:>10.0} events/s ({:+.1} %)",
        rate_memory,
        (rate_memory / rate_bare - 1.0) * 100.0
    );
    let (p50, p99, points) = reads(&rt, &memory, args.reads);
    println!("24 h history read, memory archive: p50 {p50:?}, p99 {p99:?} ({points} points)");
    let (n50, n99) = naive_reads(&raw, args.reads.min(20));
    println!("24 h naive from raw events:        p50 {n50:?}, p99 {n99:?}");
    drop(memory);

    if let Some(url) = &args.postgres {
        postgres(&rt, url, &args, rate_bare);
    }
}

#[cfg(feature = "postgres")]
fn postgres(rt: &tokio::runtime::Runtime, url: &str, args: &Args, rate_bare: f64) {
    use rtdash::postgres::{ArchiveConfig, PostgresArchive};
    use std::sync::Arc;
    const DB: &str = "rtdash_history_bench";
    let mut admin = match postgres::Client::connect(url, postgres::NoTls) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("history: cannot connect to {url}: {e}");
            std::process::exit(1);
        }
    };
    let setup = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"))
        .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {DB}")));
    if let Err(e) = setup {
        eprintln!("history: cannot make database {DB}: {e}");
        std::process::exit(1);
    }
    let base = url.split('?').next().unwrap_or(url);
    let bench_url = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("//") && !server.ends_with('/') => {
            format!("{server}/{DB}")
        }
        _ => format!("{base}/{DB}"),
    };
    let config = ArchiveConfig::default().with_maintenance_interval(None);
    let archive = Arc::new(PostgresArchive::connect(&bench_url, config).expect("archive"));
    let a = Arc::clone(&archive);
    let pg = engine(Some(Box::new(move |b| b.history_archive(a))));
    let rate = ingest(&pg, args.series, None);
    let flushed = Instant::now();
    archive.flush(Duration::from_secs(300)).expect("flushed");
    println!(
        "ingest with the PostgreSQL archive: {:>6.0} events/s ({:+.1} % against none); then {:?} to write the rest",
        rate,
        (rate / rate_bare - 1.0) * 100.0,
        flushed.elapsed()
    );
    let mut client = postgres::Client::connect(&bench_url, postgres::NoTls).expect("connect");
    let table = archive.table().to_owned();
    let row = client
        .query_one(
            &format!("SELECT count(*), pg_total_relation_size('{table}'), pg_relation_size('{table}') FROM {table}"),
            &[],
        )
        .expect("sizes");
    let (rows, total, heap): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let minutes = (HOURS * 60) as f64;
    println!(
        "PostgreSQL: {rows} rows = {:.2} rows per series per minute; {:.0} bytes per row on disk ({:.0} heap), {:.0} bytes per series per minute",
        rows as f64 / (args.series as f64 * minutes),
        total as f64 / rows as f64,
        heap as f64 / rows as f64,
        total as f64 / (args.series as f64 * minutes)
    );
    let (p50, p99, points) = reads(rt, &pg, args.reads);
    println!("24 h history read, PostgreSQL archive: p50 {p50:?}, p99 {p99:?} ({points} points)");
    drop(pg);
    drop(archive);
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"));
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &tokio::runtime::Runtime, _: &str, _: &Args, _: f64) {
    eprintln!("history: --postgres needs --features postgres");
    std::process::exit(2);
}
