//! `PostgresArchive` against a real PostgreSQL: the machine's server (127.0.0.1:5432, a
//! fresh database per test) and, for outages, a private server the test kills and starts
//! again (`common::pg::PrivatePg`). A missing server fails the tests, it never skips them.
#![cfg(feature = "postgres")]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::pg::{Database, PrivatePg};
use rtdash::core::SeriesKey;
use rtdash::history::{ArchivedBucket, HistoryArchive};
use rtdash::postgres::{ArchiveConfig, PostgresArchive};
use rtdash::window::LogHistogram;
use rtdash::{Error, Percentile, Timestamp};

/// 2023-11-14T22:00:00Z, an hour boundary.
const H0: i64 = 1_699_999_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn key(metric: &str, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(metric, tags.iter().copied()).unwrap()
}

/// A small deterministic random source (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A latency in ms: log-normal around 40 ms.
    fn latency(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
        (40f64.ln() + 0.6 * z).exp()
    }
}

/// A one-minute bucket of `values` (histogram at precision 7).
fn bucket(series: &SeriesKey, start_ms: i64, values: &[f64]) -> ArchivedBucket {
    let mut b = ArchivedBucket::new(
        series.clone(),
        Timestamp::from_millis(start_ms),
        Duration::from_secs(60),
    );
    let mut h = LogHistogram::new(7).unwrap();
    for &v in values {
        b.count += 1;
        b.sum += v;
        b.min = b.min.min(v);
        b.max = b.max.max(v);
        h.record(v).unwrap();
    }
    b.histogram = Some(std::sync::Arc::new(h));
    b
}

fn latency_bucket(rng: &mut Rng, series: &SeriesKey, start_ms: i64, n: usize) -> ArchivedBucket {
    let values: Vec<f64> = (0..n).map(|_| rng.latency()).collect();
    bucket(series, start_ms, &values)
}

fn config() -> ArchiveConfig {
    ArchiveConfig::default()
        .with_flush_interval(Duration::from_millis(20))
        .with_maintenance_interval(None)
        .with_hour_retention(None)
}

/// Reads on a runtime of its own (the archive's future needs tokio's timer).
fn read(
    a: &PostgresArchive,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<ArchivedBucket>, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(a.read(
            metric,
            Timestamp::from_millis(from),
            Timestamp::from_millis(to),
        ))
}

/// A histogram's precision, count and bins.
type Contents = (u8, u64, Vec<(f64, u64)>);

fn hist_bins(h: Option<&LogHistogram>) -> Option<Contents> {
    h.map(|h| (h.precision(), h.count(), h.bins().collect()))
}

/// Compares every field, bit for bit for the floats (NaN included).
fn assert_same(a: &ArchivedBucket, b: &ArchivedBucket) {
    assert_eq!(a.series, b.series);
    assert_eq!((a.start, a.width, a.count), (b.start, b.width, b.count));
    assert_eq!(
        a.sum.to_bits(),
        b.sum.to_bits(),
        "sum {} vs {}",
        a.sum,
        b.sum
    );
    assert_eq!(a.min.to_bits(), b.min.to_bits());
    assert_eq!(a.max.to_bits(), b.max.to_bits());
    assert_eq!(
        hist_bins(a.histogram.as_deref()),
        hist_bins(b.histogram.as_deref())
    );
}

fn sorted(mut v: Vec<ArchivedBucket>) -> Vec<ArchivedBucket> {
    v.sort_by(|a, b| (a.start, &a.series, a.width).cmp(&(b.start, &b.series, b.width)));
    v
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_field_round_trips_exactly() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let mut rng = Rng(7);
    let web = key(
        "api.latency",
        &[("host", "web-1"), ("region", "eu \"west\" ü")],
    );
    let bare = key("api.latency", &[]);
    let mut odd = ArchivedBucket::new(
        bare.clone(),
        Timestamp::from_millis(H0),
        Duration::from_secs(60),
    );
    odd.count = 3;
    odd.sum = f64::NAN;
    odd.min = -f64::MAX;
    odd.max = f64::INFINITY;
    let mut inf = ArchivedBucket::new(
        bare.clone(),
        Timestamp::from_millis(H0 + MIN),
        Duration::from_secs(60),
    );
    inf.count = 2;
    inf.sum = f64::NEG_INFINITY;
    let mut extreme = bucket(&bare, H0 + 2 * MIN, &[-1e300, 0.0, 5e-324, 1e300]);
    extreme.count = u64::try_from(i64::MAX).unwrap();
    let empty = ArchivedBucket::new(
        web.clone(),
        Timestamp::from_millis(H0 + 3 * MIN),
        Duration::from_secs(60),
    );
    let mut hour = latency_bucket(&mut rng, &web, H0 + HOUR, 500);
    hour.width = Duration::from_secs(3600);
    let offered = vec![
        latency_bucket(&mut rng, &web, H0, 600),
        latency_bucket(&mut rng, &web, H0 + MIN, 6000),
        odd,
        inf,
        extreme,
        empty,
        hour,
    ];
    a.offer(offered.clone());
    a.flush(Duration::from_secs(10)).unwrap();
    let h = a.health();
    assert!(h.connected);
    assert_eq!((h.buffered, h.written, h.dropped), (0, 7, 0));
    let got = sorted(read(&a, "api.latency", H0, H0 + 2 * HOUR).unwrap());
    let want = sorted(offered);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_same(g, w);
    }
    assert!(got.iter().any(|b| b.sum.is_nan()));
    // Percentiles from the stored histogram are the live ones.
    let i = want.iter().position(|b| b.count == 6000).unwrap();
    let (live, back) = (&want[i].histogram, &got[i].histogram);
    let (live, back) = (live.as_ref().unwrap(), back.as_ref().unwrap());
    for p in [Percentile::P50, Percentile::P99, Percentile::P999] {
        assert_eq!(live.percentile(p), back.percentile(p));
    }
    assert_eq!(a.stats().bad_rows, 0);
}

#[test]
fn offering_again_keeps_one_row_with_the_latest_values() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let s = key("req", &[("host", "a")]);
    a.offer(vec![bucket(&s, H0, &[1.0, 2.0])]);
    a.flush(Duration::from_secs(10)).unwrap();
    // Again, later, and twice within one batch (the last wins).
    a.offer(vec![
        bucket(&s, H0, &[5.0]),
        bucket(&s, H0, &[7.0, 8.0, 9.0]),
        bucket(&s, H0 + MIN, &[1.0]),
    ]);
    a.flush(Duration::from_secs(10)).unwrap();
    let got = sorted(read(&a, "req", H0, H0 + HOUR).unwrap());
    assert_eq!(got.len(), 2);
    assert_same(&got[0], &bucket(&s, H0, &[7.0, 8.0, 9.0]));
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM rtdash_rollups", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 2);
    assert_eq!(a.health().written, 4);
}

#[test]
fn reads_return_the_buckets_of_one_metric_that_overlap_the_range() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let (x, y) = (key("x", &[("h", "1")]), key("x", &[("h", "2")]));
    let other = key("xx", &[("h", "1")]);
    let mut all = Vec::new();
    for m in 0..10 {
        all.push(bucket(&x, H0 + m * MIN, &[m as f64]));
        all.push(bucket(&y, H0 + m * MIN, &[m as f64]));
        all.push(bucket(&other, H0 + m * MIN, &[m as f64]));
    }
    let mut hour = bucket(&x, H0 - HOUR, &[42.0]);
    hour.width = Duration::from_secs(3600);
    all.push(hour);
    a.offer(all);
    a.flush(Duration::from_secs(10)).unwrap();
    let starts = |from: i64, to: i64| -> Vec<(i64, String)> {
        sorted(read(&a, "x", from, to).unwrap())
            .iter()
            .map(|b| ((b.start.as_millis() - H0) / MIN, b.series.to_string()))
            .collect()
    };
    // [from, to): minute 2 starts at `from`, minute 5 ends at `to` (minute 5 excluded).
    let got = starts(H0 + 2 * MIN, H0 + 5 * MIN);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        got.iter()
            .all(|(m, s)| (2..5).contains(m) && s.starts_with("x{"))
    );
    // A range inside one minute finds that minute; a range ending at H0 finds the hour row.
    assert_eq!(starts(H0 + 2 * MIN + 10, H0 + 2 * MIN + 20).len(), 2);
    let before = starts(H0 - 30 * MIN, H0);
    assert_eq!(before, vec![(-60, r#"x{h="1"}"#.to_owned())]);
    assert_eq!(starts(H0 - 30 * MIN, H0 + 1).len(), 3);
    assert!(read(&a, "y", H0, H0 + HOUR).unwrap().is_empty());
    assert_eq!(read(&a, "xx", H0, H0 + HOUR).unwrap().len(), 10);
}

#[test]
fn rows_that_do_not_decode_are_skipped_and_counted() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let s = key("m", &[("k", "v")]);
    a.offer(vec![bucket(&s, H0, &[1.0]), bucket(&s, H0 + MIN, &[2.0])]);
    a.flush(Duration::from_secs(10)).unwrap();
    db.client()
        .batch_execute(&format!(
            "INSERT INTO rtdash_rollups (metric, series, start_ms, width_ms, count, sum, min, max, hist) VALUES
             ('m', '{{\"k\":\"v\"}}', {t2}, 60000, 1, 1, 1, 1, '\\x07ff'),
             ('m', 'not json', {t3}, 60000, 1, 1, 1, 1, NULL),
             ('m', '{{\"k\":\"v\"}}', {t4}, 60000, -1, 1, 1, 1, NULL),
             ('m', '{{\"\":\"v\"}}', {t5}, 60000, 1, 1, 1, 1, NULL),
             ('m', '{{\"k\":\"v\"}}', {t6}, 60000, 1, 1, 1, 1, '\\x0d00')",
            t2 = H0 + 2 * MIN,
            t3 = H0 + 3 * MIN,
            t4 = H0 + 4 * MIN,
            t5 = H0 + 5 * MIN,
            t6 = H0 + 6 * MIN,
        ))
        .unwrap();
    let got = sorted(read(&a, "m", H0, H0 + HOUR).unwrap());
    assert_eq!(got.len(), 2);
    assert_same(&got[1], &bucket(&s, H0 + MIN, &[2.0]));
    assert_eq!(a.stats().bad_rows, 5);
    // Counted again at each read that meets them; the good rows are always answered.
    assert_eq!(read(&a, "m", H0, H0 + HOUR).unwrap().len(), 2);
    assert_eq!(a.stats().bad_rows, 10);
}

/// The rows of `metric` as (width in minutes, minutes after H0) → bucket.
fn by_start(a: &PostgresArchive, metric: &str) -> BTreeMap<(String, i64, i64), ArchivedBucket> {
    read(a, metric, H0 - 10 * HOUR, H0 + 10 * HOUR)
        .unwrap()
        .into_iter()
        .map(|b| {
            (
                (
                    b.series.to_string(),
                    i64::try_from(b.width.as_secs() / 60).unwrap(),
                    (b.start.as_millis() - H0) / MIN,
                ),
                b,
            )
        })
        .collect()
}

#[test]
fn old_minutes_become_exact_hour_rows_once() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let mut rng = Rng(3);
    let series = [key("lat", &[("host", "a")]), key("lat", &[("host", "b")])];
    let mut minutes = Vec::new();
    // Two and a half hours of minutes, from H0.
    for s in &series {
        for m in 0..150 {
            minutes.push(latency_bucket(&mut rng, s, H0 + m * MIN, 100));
        }
    }
    a.offer(minutes.clone());
    a.flush(Duration::from_secs(10)).unwrap();
    // As of 7 days (minute retention) and 2 h 30 min after H0: the first two hours are
    // older than the retention, the third is not complete past it.
    let now = Timestamp::from_millis(H0 + 7 * 86_400_000 + 2 * HOUR + 30 * MIN);
    let report = a.maintain(now).unwrap();
    assert_eq!(
        (report.downsampled, report.hour_rows, report.bad_rows),
        (240, 4, 0),
        "{report:?}"
    );
    let rows = by_start(&a, "lat");
    assert_eq!(rows.len(), 4 + 2 * 30);
    for s in &series {
        for hour in 0..2 {
            let got = &rows[&(s.to_string(), 60, hour * 60)];
            let part: Vec<&ArchivedBucket> = minutes
                .iter()
                .filter(|b| &b.series == s && (b.start.as_millis() - H0) / HOUR == hour)
                .collect();
            assert_eq!(part.len(), 60);
            let mut h = LogHistogram::new(7).unwrap();
            for b in &part {
                h.merge(b.histogram.as_ref().unwrap()).unwrap();
            }
            assert_eq!(got.count, part.iter().map(|b| b.count).sum::<u64>());
            let sum: f64 = part.iter().map(|b| b.sum).sum();
            assert!(
                (got.sum - sum).abs() <= sum.abs() * 1e-12,
                "{} vs {sum}",
                got.sum
            );
            assert_eq!(
                got.min,
                part.iter().map(|b| b.min).fold(f64::INFINITY, f64::min)
            );
            assert_eq!(
                got.max,
                part.iter().map(|b| b.max).fold(f64::NEG_INFINITY, f64::max)
            );
            let gh = got.histogram.as_ref().unwrap();
            assert_eq!(hist_bins(Some(gh)), hist_bins(Some(&h)));
            for q in [0.1, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
                let p = Percentile::new(q).unwrap();
                assert_eq!(gh.percentile(p), h.percentile(p), "p{q}");
            }
        }
        // The minutes of the third hour are still there.
        assert!(rows.contains_key(&(s.to_string(), 1, 149)));
    }
    // Again: nothing to do, nothing counted twice.
    let again = a.maintain(now).unwrap();
    assert_eq!((again.downsampled, again.hour_rows), (0, 0));
    assert_eq!(by_start(&a, "lat").len(), rows.len());
    // A replay of a merged minute is not written (it would count twice).
    a.offer(vec![minutes[5].clone()]);
    a.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(a.stats().superseded, 1);
    assert_eq!(a.maintain(now).unwrap().downsampled, 0);
    // A minute row that reaches the table anyway (another writer, a race) is merged into
    // the existing hour row in one transaction: counted once.
    db.client()
        .batch_execute(&format!(
            "INSERT INTO rtdash_rollups (metric, series, start_ms, width_ms, count, sum, min, max) \
             VALUES ('lat', '{{\"host\":\"a\"}}', {}, 60000, 1, 1000, 1000, 1000)",
            H0 + 9 * MIN
        ))
        .unwrap();
    let before = rows[&(series[0].to_string(), 60, 0)].count;
    let r = a.maintain(now).unwrap();
    assert_eq!((r.downsampled, r.hour_rows), (1, 1));
    let after = by_start(&a, "lat");
    let merged = &after[&(series[0].to_string(), 60, 0)];
    assert_eq!(merged.count, before + 1);
    assert_eq!(merged.max, 1000.0);
    assert_eq!(a.maintain(now).unwrap().downsampled, 0);
    assert_eq!(
        by_start(&a, "lat")[&(series[0].to_string(), 60, 0)].count,
        before + 1
    );
    assert_eq!(a.stats().downsampled, 241);
}

#[test]
fn rows_past_the_retention_are_deleted() {
    let db = Database::new();
    let a = PostgresArchive::connect(
        &db.url(),
        config().with_hour_retention(Some(Duration::from_secs(30 * 86_400))),
    )
    .unwrap();
    let s = key("r", &[]);
    let mut old = bucket(&s, H0 - 31 * 86_400_000, &[1.0]);
    old.width = Duration::from_secs(3600);
    let mut kept = bucket(&s, H0 - 29 * 86_400_000, &[2.0]);
    kept.width = Duration::from_secs(3600);
    let recent = bucket(&s, H0, &[3.0]);
    a.offer(vec![old, kept, recent]);
    a.flush(Duration::from_secs(10)).unwrap();
    let r = a.maintain(Timestamp::from_millis(H0)).unwrap();
    assert_eq!((r.expired, r.downsampled), (1, 0));
    let left = sorted(read(&a, "r", H0 - 40 * 86_400_000, H0 + HOUR).unwrap());
    assert_eq!(
        left.iter().map(|b| b.sum).collect::<Vec<_>>(),
        vec![2.0, 3.0]
    );
    assert_eq!(a.stats().expired, 1);
}

#[test]
fn the_maintenance_runs_by_itself_on_its_interval() {
    let db = Database::new();
    let a = PostgresArchive::connect(
        &db.url(),
        config().with_maintenance_interval(Some(Duration::from_millis(100))),
    )
    .unwrap();
    let s = key("auto", &[]);
    // Minutes of an hour long past the 7-day minute retention (as of the real clock).
    a.offer((0..3).map(|m| bucket(&s, H0 + m * MIN, &[1.0])).collect());
    wait_until("the minutes merged", Duration::from_secs(10), || {
        a.stats().downsampled == 3
    });
    let rows = read(&a, "auto", H0, H0 + HOUR).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].count, rows[0].width),
        (3, Duration::from_secs(3600))
    );
}

#[test]
fn buckets_that_do_not_fit_an_hour_are_refused_and_counted() {
    let db = Database::new();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let s = key("w", &[]);
    let mut seven = bucket(&s, H0, &[1.0]);
    seven.width = Duration::from_secs(7);
    let misaligned = bucket(&s, H0 + 30_000, &[1.0]);
    let mut huge = bucket(&s, H0 + MIN, &[1.0]);
    huge.count = u64::MAX;
    a.offer(vec![seven, misaligned, huge, bucket(&s, H0, &[1.0])]);
    a.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(a.stats().rejected, 3);
    assert_eq!(read(&a, "w", H0, H0 + HOUR).unwrap().len(), 1);
}

#[test]
fn bad_settings_and_urls_are_clear_errors() {
    for (url, config, field) in [
        (
            "postgres://x@127.0.0.1/db",
            ArchiveConfig::default().with_table("a;b"),
            "table",
        ),
        (
            "postgres://x@127.0.0.1/db",
            ArchiveConfig::default().with_buffer_capacity(0),
            "buffer_capacity",
        ),
        (
            "postgres://x@127.0.0.1/db",
            ArchiveConfig::default().with_batch_size(0),
            "batch_size",
        ),
        (
            "postgres://x@127.0.0.1:notaport/db",
            ArchiveConfig::default(),
            "url",
        ),
        (
            "host=127.0.0.1 port=5432 sslmode=banana",
            ArchiveConfig::default(),
            "url",
        ),
    ] {
        let err = PostgresArchive::connect(url, config).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: f, .. } if *f == field),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[tokio::test]
async fn an_unreachable_database_never_blocks_and_reads_fail_clearly() {
    // Inside a runtime: connect returns at once, offers queue, reads fail with 503's error.
    let started = Instant::now();
    let a = PostgresArchive::connect(
        "postgres://me:s3cret@127.0.0.1:1/db",
        config().with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    a.offer(vec![bucket(&key("u", &[]), H0, &[1.0])]);
    assert!(started.elapsed() < Duration::from_millis(500));
    let err = a
        .read(
            "u",
            Timestamp::from_millis(H0),
            Timestamp::from_millis(H0 + HOUR),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "history_unavailable", "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    let h = a.health();
    assert!(!h.connected);
    assert_eq!(h.buffered, 1);
    assert!(a.stats().last_error.is_some_and(|e| !e.contains("s3cret")));
}

#[tokio::test]
async fn works_inside_a_runtime() {
    let db = tokio::task::spawn_blocking(Database::new).await.unwrap();
    let a = PostgresArchive::connect(&db.url(), config()).unwrap();
    let s = key("rt", &[]);
    a.offer(vec![bucket(&s, H0, &[1.0, 2.0])]);
    let got = loop {
        let got = a
            .read(
                "rt",
                Timestamp::from_millis(H0),
                Timestamp::from_millis(H0 + HOUR),
            )
            .await
            .unwrap();
        if !got.is_empty() {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(got[0].count, 2);
    drop(a);
    tokio::task::spawn_blocking(move || drop(db)).await.unwrap();
}

/// Offers one bucket (minute `m` of series `s`) and returns how long the call took.
fn timed_offer(a: &PostgresArchive, s: &SeriesKey, m: i64) -> Duration {
    let b = bucket(s, H0 + m * MIN, &[m as f64]);
    let t = Instant::now();
    a.offer(vec![b]);
    t.elapsed()
}

#[test]
fn an_outage_never_blocks_offers_and_loses_nothing_the_buffer_holds() {
    let mut pg = PrivatePg::start();
    let a = PostgresArchive::connect(
        &pg.url("postgres"),
        config()
            .with_batch_size(50)
            .with_timeout(Duration::from_secs(3)),
    )
    .unwrap();
    let s = key("outage", &[("host", "a")]);
    wait_until("connected", Duration::from_secs(10), || {
        a.health().connected
    });
    let mut slowest = Duration::ZERO;
    let mut m = 0;
    // Live: written as they come.
    while m < 200 {
        slowest = slowest.max(timed_offer(&a, &s, m));
        m += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    wait_until("written", Duration::from_secs(10), || {
        a.health().written == 200
    });
    // PostgreSQL dies mid-stream: offers go on, as fast.
    pg.kill();
    let killed_at = Instant::now();
    while m < 1200 {
        slowest = slowest.max(timed_offer(&a, &s, m));
        m += 1;
        if m % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_until("disconnected", Duration::from_secs(10), || {
        !a.health().connected
    });
    let h = a.health();
    assert!(h.buffered >= 900, "{h:?}");
    assert_eq!(h.dropped, 0);
    assert!(a.stats().last_error.is_some());
    eprintln!(
        "outage: {} buffered {:?} after the kill; slowest offer {slowest:?}",
        h.buffered,
        killed_at.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(10),
        "an offer took {slowest:?}"
    );
    // Back: everything buffered is written.
    pg.restart();
    a.flush(Duration::from_secs(30)).unwrap();
    let h = a.health();
    assert!(h.connected);
    assert_eq!((h.written, h.dropped, h.buffered), (1200, 0, 0));
    let got = read(&a, "outage", H0, H0 + 1200 * MIN).unwrap();
    assert_eq!(got.len(), 1200);
    assert!(got.iter().enumerate().all(|(i, b)| b.sum == i as f64));
    drop(a);
    let _ = pg.dir();
}

#[test]
fn past_a_small_buffer_the_oldest_are_dropped_and_counted_exactly() {
    let mut pg = PrivatePg::start();
    let a = PostgresArchive::connect(
        &pg.url("postgres"),
        config()
            .with_buffer_capacity(100)
            .with_batch_size(20)
            .with_timeout(Duration::from_secs(3)),
    )
    .unwrap();
    let s = key("small", &[]);
    wait_until("connected", Duration::from_secs(10), || {
        a.health().connected
    });
    for m in 0..50 {
        timed_offer(&a, &s, m);
    }
    a.flush(Duration::from_secs(10)).unwrap();
    pg.kill();
    // Until the writer notices, a write may be under way: offer once it has.
    timed_offer(&a, &s, 50);
    wait_until("disconnected", Duration::from_secs(10), || {
        !a.health().connected
    });
    for m in 51..400 {
        timed_offer(&a, &s, m);
    }
    let h = a.health();
    assert_eq!(h.buffered, 100, "{h:?}");
    let dropped = h.dropped;
    assert_eq!(dropped, 250, "{h:?}");
    pg.restart();
    a.flush(Duration::from_secs(30)).unwrap();
    let h = a.health();
    assert_eq!((h.written, h.dropped), (150, dropped));
    // Stored: the first 50 (before the outage) and exactly the newest 100; the gap is
    // what was counted.
    let got: Vec<i64> = sorted(read(&a, "small", H0, H0 + 400 * MIN).unwrap())
        .iter()
        .map(|b| (b.start.as_millis() - H0) / MIN)
        .collect();
    let want: Vec<i64> = (0..50).chain(300..400).collect();
    assert_eq!(got, want);
    assert_eq!(got.len() as u64 + dropped, 400);
}

/// The sink's write cost, for the README (run with `-- --nocapture write_cost`): histogram
/// bytes of a latency series at 10 and 100 events/s, table bytes per row, rows per series
/// per minute, write throughput of one batch, offer cost.
#[test]
fn write_cost_per_series_per_minute() {
    const SERIES: usize = 1_000;
    const MINUTES: i64 = 10;
    let db = Database::new();
    let a = PostgresArchive::connect(
        &db.url(),
        config()
            .with_batch_size(10_000)
            .with_buffer_capacity(20_000)
            .with_flush_interval(Duration::from_secs(3600)),
    )
    .unwrap();
    wait_until("connected", Duration::from_secs(10), || {
        a.health().connected
    });
    let mut rng = Rng(11);
    // 20 distinct minutes per rate, reused across series and minutes.
    let sample = |rng: &mut Rng, per_s: usize| -> Vec<ArchivedBucket> {
        (0..20)
            .map(|_| latency_bucket(rng, &key("x", &[]), 0, per_s * 60))
            .collect()
    };
    let (slow, fast) = (sample(&mut rng, 10), sample(&mut rng, 100));
    let mut buckets = Vec::with_capacity(SERIES * MINUTES as usize);
    for m in 0..MINUTES {
        for i in 0..SERIES {
            let rate = if i % 2 == 0 { "10" } else { "100" };
            let s = key(
                "http.request.duration",
                &[
                    ("host", &format!("web-{:03}", i / 10)),
                    ("region", "eu-west-1"),
                    ("route", &format!("/api/v1/r{}", i % 10)),
                    ("rate", rate),
                ],
            );
            let src = if i % 2 == 0 { &slow } else { &fast };
            let mut b = src[(i + m as usize) % 20].clone();
            b.series = s;
            b.start = Timestamp::from_millis(H0 + m * MIN);
            buckets.push(b);
        }
    }
    let n = buckets.len();
    // Offer cost (encoding included), then one batch written.
    let (first, rest) = buckets.split_at(n / 2);
    let (first, rest) = (first.to_vec(), rest.to_vec());
    let t = Instant::now();
    a.offer(first);
    let offer_cost = t.elapsed();
    a.flush(Duration::from_secs(60)).unwrap();
    let t = Instant::now();
    a.offer(rest);
    a.flush(Duration::from_secs(60)).unwrap();
    let batch_time = t.elapsed();
    assert_eq!(a.health().written, n as u64);
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT count(*), pg_total_relation_size('rtdash_rollups'), \
             pg_relation_size('rtdash_rollups'), pg_indexes_size('rtdash_rollups') \
             FROM rtdash_rollups",
            &[],
        )
        .unwrap();
    let (rows, total, heap, indexes): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        rows,
        SERIES as i64 * MINUTES,
        "one row per series per minute"
    );
    let hist: Vec<(String, f64, i32)> = c
        .query(
            "SELECT series::jsonb->>'rate', avg(octet_length(hist))::float8, \
             max(pg_column_size(rtdash_rollups.*)) FROM rtdash_rollups GROUP BY 1 ORDER BY 1::int",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    eprintln!(
        "write cost: {rows} rows ({SERIES} series x {MINUTES} min): {} bytes/row on disk \
         (heap {} + indexes {}); rows per series per minute: 1",
        total / rows,
        heap / rows,
        indexes / rows
    );
    for (rate, avg, max_row) in &hist {
        eprintln!(
            "  latency at {rate} events/s: histogram {avg:.0} bytes/min, row tuple <= {max_row} bytes"
        );
    }
    eprintln!(
        "  one batch of {} rows written in {batch_time:?} ({:.0} rows/s); offer {:.1} us/bucket",
        n - n / 2,
        (n - n / 2) as f64 / batch_time.as_secs_f64(),
        offer_cost.as_secs_f64() * 1e6 / (n / 2) as f64
    );
    assert_eq!(hist.len(), 2);
    assert!(
        hist.iter().all(|(_, avg, _)| *avg > 10.0 && *avg < 2_000.0),
        "{hist:?}"
    );
}
