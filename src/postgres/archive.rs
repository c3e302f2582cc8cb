//! [`PostgresArchive`]: per-series roll-ups in one PostgreSQL table, for long-range widget
//! history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rtdash_core::{SeriesKey, Timestamp};
use rtdash_window::LogHistogram;
use serde::Serialize;

use crate::Error;
use crate::history::{ArchiveHealth, ArchivedBucket, HistoryArchive, Merge};

/// Width of a downsampled row: one hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;
/// Fine rows merged per maintenance transaction.
const MAINTENANCE_CHUNK: i64 = 5_000;
/// First and longest wait between two connection attempts of the writer.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest table name: the indexes are named `<table>_fine_age` and `<table>_coarse_age`,
/// and PostgreSQL names are at most 63 bytes.
const MAX_TABLE_LEN: usize = 52;

/// Settings of a [`PostgresArchive`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::postgres::ArchiveConfig;
///
/// let config = ArchiveConfig::default()
///     .with_table("history")
///     .with_buffer_capacity(200_000)
///     .with_minute_retention(Duration::from_secs(3 * 86_400))
///     .with_hour_retention(None);
/// assert!(config.validate().is_ok());
/// assert!(ArchiveConfig::default().with_batch_size(0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// The table (created if missing, with two indexes named after it): letters, digits
    /// and `_`, not starting with a digit, at most 52 bytes (default `rtdash_rollups`).
    pub table: String,
    /// Buckets held in memory while they wait to be written, e.g. while PostgreSQL is
    /// unreachable (default 100,000). Past it the **oldest** waiting buckets are dropped
    /// and counted ([`ArchiveHealth::dropped`]): the newest history is kept. A waiting
    /// bucket costs about 150 bytes plus its encoded histogram (≈ 0.1–1 KiB for a latency
    /// series), so the default holds ~30 min of 3,000 series in ~50 MiB.
    pub buffer_capacity: usize,
    /// Most buckets written by one statement (default 1,000; at most `buffer_capacity`
    /// and 50,000).
    pub batch_size: usize,
    /// Longest time a bucket waits before it is written when fewer than `batch_size` are
    /// waiting (default 1 s); a full batch is written at once.
    pub flush_interval: Duration,
    /// How long rows finer than one hour (the one-minute buckets) are kept; older ones are
    /// merged into one-hour rows by the maintenance (default 7 days, at least 1 h).
    pub minute_retention: Duration,
    /// How long one-hour rows are kept; `None` keeps them forever (default 90 days; more
    /// than `minute_retention`).
    pub hour_retention: Option<Duration>,
    /// How often this node runs the maintenance (downsampling and retention); `None`: only
    /// when [`PostgresArchive::maintain`] is called (default 5 min). Several nodes may run
    /// it: one at a time does the work.
    pub maintenance_interval: Option<Duration>,
    /// How long a read (or a connection attempt, or one statement) may take before it
    /// fails (default 10 s, at most 1 h).
    pub timeout: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            table: "rtdash_rollups".to_owned(),
            buffer_capacity: 100_000,
            batch_size: 1_000,
            flush_interval: Duration::from_secs(1),
            minute_retention: Duration::from_secs(7 * 86_400),
            hour_retention: Some(Duration::from_secs(90 * 86_400)),
            maintenance_interval: Some(Duration::from_secs(300)),
            timeout: Duration::from_secs(10),
        }
    }
}

impl ArchiveConfig {
    /// Sets [`table`](Self::table).
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Sets [`buffer_capacity`](Self::buffer_capacity).
    #[must_use]
    pub fn with_buffer_capacity(mut self, buckets: usize) -> Self {
        self.buffer_capacity = buckets;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    #[must_use]
    pub fn with_batch_size(mut self, buckets: usize) -> Self {
        self.batch_size = buckets;
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    #[must_use]
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`minute_retention`](Self::minute_retention).
    #[must_use]
    pub fn with_minute_retention(mut self, retention: Duration) -> Self {
        self.minute_retention = retention;
        self
    }

    /// Sets [`hour_retention`](Self::hour_retention).
    #[must_use]
    pub fn with_hour_retention(mut self, retention: Option<Duration>) -> Self {
        self.hour_retention = retention;
        self
    }

    /// Sets [`maintenance_interval`](Self::maintenance_interval).
    #[must_use]
    pub fn with_maintenance_interval(mut self, interval: Option<Duration>) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field (`table`, `buffer_capacity`,
    /// `batch_size`, `flush_interval`, `minute_retention`, `hour_retention`,
    /// `maintenance_interval`, `timeout`) and the rule.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        super::check_table("table", &self.table)?;
        if self.table.len() > MAX_TABLE_LEN {
            return bad(
                "table",
                format!(
                    "{} bytes: at most {MAX_TABLE_LEN} (its indexes are named after it)",
                    self.table.len()
                ),
            );
        }
        if self.buffer_capacity == 0 {
            return bad(
                "buffer_capacity",
                "0: at least 1 bucket (and at least batch_size)".to_owned(),
            );
        }
        if self.batch_size == 0 || self.batch_size > 50_000 {
            return bad(
                "batch_size",
                format!("{}: 1 to 50,000 buckets", self.batch_size),
            );
        }
        if self.batch_size > self.buffer_capacity {
            return bad(
                "batch_size",
                format!(
                    "{} is more than buffer_capacity ({})",
                    self.batch_size, self.buffer_capacity
                ),
            );
        }
        if self.flush_interval.is_zero() || self.flush_interval > Duration::from_secs(3600) {
            return bad(
                "flush_interval",
                format!("{:?}: more than 0 and at most 1 h", self.flush_interval),
            );
        }
        if self.minute_retention < Duration::from_secs(3600) {
            return bad(
                "minute_retention",
                format!(
                    "{:?}: at least 1 h (rows are merged into one-hour rows)",
                    self.minute_retention
                ),
            );
        }
        if let Some(h) = self.hour_retention
            && h <= self.minute_retention
        {
            return bad(
                "hour_retention",
                format!(
                    "{h:?}: more than minute_retention ({:?}), or None to keep hour rows forever",
                    self.minute_retention
                ),
            );
        }
        if self.maintenance_interval.is_some_and(|i| i.is_zero()) {
            return bad(
                "maintenance_interval",
                "0: more than 0, or None to run it only when asked".to_owned(),
            );
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(3600) {
            return bad(
                "timeout",
                format!("{:?}: more than 0 and at most 1 h", self.timeout),
            );
        }
        Ok(())
    }
}

/// What a [`PostgresArchive`] has done since it started: its [`ArchiveHealth`] and more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveStats {
    /// Connected, buffered, written, dropped (as [`HistoryArchive::health`]).
    pub health: ArchiveHealth,
    /// Buckets refused by [`offer`](HistoryArchive::offer): a width that is not a divisor
    /// of one hour, a start not a multiple of the width, or a count past `i64::MAX`.
    pub rejected: u64,
    /// Buckets finer than one hour not written because their hour is already downsampled
    /// (a replay of an old bucket would otherwise be counted twice).
    pub superseded: u64,
    /// Rows that did not decode (histogram bytes, tags, a negative count…), skipped by reads
    /// and deleted by the maintenance when they expire.
    pub bad_rows: u64,
    /// Rows finer than one hour merged into one-hour rows.
    pub downsampled: u64,
    /// Rows deleted by the retention.
    pub expired: u64,
    /// The last error of the writer (connection or write), `None` once a write succeeds.
    pub last_error: Option<String>,
}

/// What one [`PostgresArchive::maintain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Rows finer than one hour merged into one-hour rows (and deleted).
    pub downsampled: u64,
    /// One-hour rows written (new or merged into).
    pub hour_rows: u64,
    /// Rows deleted by the retention.
    pub expired: u64,
    /// Rows that did not decode, deleted without being merged.
    pub bad_rows: u64,
    /// Another node was running the maintenance: this run stopped there.
    pub busy: bool,
}

// Kept here while `history.rs` has no constructor (outside the crate a `#[non_exhaustive]`
// struct cannot be built); its place is next to `ArchivedBucket` in `history.rs`.

/// A bucket as a row, encoded at [`offer`](HistoryArchive::offer).
#[derive(Clone, Debug)]
struct Row {
    metric: String,
    /// The tags as a canonical JSON object (keys sorted): `{"host":"a"}`, `{}`.
    series: String,
    start_ms: i64,
    width_ms: i32,
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    hist: Option<Vec<u8>>,
}

impl Row {
    fn hour_ms(&self) -> i64 {
        self.start_ms.div_euclid(HOUR_MS) * HOUR_MS
    }

    /// The row of a bucket; `None` when it cannot be stored (see [`ArchiveStats::rejected`]).
    fn of(b: &ArchivedBucket) -> Option<Self> {
        let width_ms = i32::try_from(b.width.as_millis()).ok()?;
        let start_ms = b.start.as_millis();
        let fits = width_ms > 0
            && b.width.subsec_nanos().is_multiple_of(1_000_000)
            && HOUR_MS % i64::from(width_ms) == 0
            && start_ms.rem_euclid(i64::from(width_ms)) == 0;
        if !fits {
            return None;
        }
        Some(Self {
            metric: b.series.metric().to_owned(),
            series: tags_json(&b.series)?,
            start_ms,
            width_ms,
            count: i64::try_from(b.count).ok()?,
            sum: b.sum,
            min: b.min,
            max: b.max,
            hist: match &b.histogram {
                None => None,
                Some(h) => Some(encode_histogram(h).ok()?),
            },
        })
    }
}

/// The tags of a key as a canonical JSON object.
fn tags_json(key: &SeriesKey) -> Option<String> {
    struct Tags<'a>(&'a SeriesKey);
    impl Serialize for Tags<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.tags())
        }
    }
    serde_json::to_string(&Tags(key)).ok()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes
            .split_first()
            .ok_or_else(|| "the histogram bytes end early".to_owned())?;
        *bytes = rest;
        v |= u64::from(b & 0x7F)
            .checked_shl(shift)
            .filter(|x| x >> shift == u64::from(b & 0x7F))
            .ok_or_else(|| "a histogram varint overflows".to_owned())?;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a histogram varint is longer than 10 bytes".to_owned())
}

/// The histogram's bytes: its precision (one byte), the number of runs, then per run
/// the distance from the end of the previous run to its first bin (the first run: the
/// bin's number), its length `L` and `L` counts — all LEB128 varints. A run is a stretch of
/// consecutive bins, bridging single empty bins (a count of 0): dense histograms cost
/// about one byte per bin.
pub(crate) fn encode_histogram(h: &LogHistogram) -> Result<Vec<u8>, String> {
    // Runs as (first bin, counts).
    let mut runs: Vec<(u32, Vec<u64>)> = Vec::new();
    let mut prev: Option<u32> = None;
    let mut n = 0usize;
    for (bin, count) in h.bin_counts() {
        n += 1;
        let gap = match prev {
            None => None,
            Some(p) => Some(
                bin.checked_sub(p)
                    .filter(|d| *d > 0)
                    .ok_or_else(|| "histogram bins out of order".to_owned())?,
            ),
        };
        match (gap, runs.last_mut()) {
            (Some(1), Some((_, counts))) => counts.push(count),
            (Some(2), Some((_, counts))) => counts.extend([0, count]),
            _ => runs.push((bin, vec![count])),
        }
        prev = Some(bin);
    }
    let mut out = Vec::with_capacity(2 + n * 2);
    out.push(h.precision());
    put_varint(&mut out, runs.len() as u64);
    let mut end: Option<u32> = None;
    for (first, counts) in &runs {
        put_varint(&mut out, u64::from(first - end.unwrap_or(0)));
        put_varint(&mut out, counts.len() as u64);
        for &c in counts {
            put_varint(&mut out, c);
        }
        // Within u32: the run's bins exist.
        end = Some(first + counts.len() as u32);
    }
    Ok(out)
}

/// The histogram of bytes made by [`encode_histogram`].
///
/// # Errors
///
/// What is wrong with the bytes (never a panic).
pub(crate) fn decode_histogram(mut bytes: &[u8]) -> Result<LogHistogram, String> {
    let out_of_range = || "a histogram bin is out of range".to_owned();
    let (&precision, rest) = bytes
        .split_first()
        .ok_or_else(|| "the histogram bytes are empty".to_owned())?;
    bytes = rest;
    let runs = get_varint(&mut bytes)?;
    // Each run takes at least three bytes, each bin one.
    if runs > (bytes.len() / 3) as u64 {
        return Err(format!(
            "{runs} histogram runs announced in {} bytes",
            bytes.len()
        ));
    }
    let mut bins = Vec::new();
    let mut end: Option<u32> = None;
    for _ in 0..runs {
        let gap = u32::try_from(get_varint(&mut bytes)?).map_err(|_| out_of_range())?;
        if end.is_some() && gap == 0 {
            return Err("two histogram runs touch".to_owned());
        }
        let first = end.unwrap_or(0).checked_add(gap).ok_or_else(out_of_range)?;
        let len = get_varint(&mut bytes)?;
        if len == 0 || len > bytes.len() as u64 {
            return Err(format!("a histogram run of {len} bins"));
        }
        // len <= bytes.len(): fits.
        let len = len as u32;
        for i in 0..len {
            let count = get_varint(&mut bytes)?;
            if count > 0 {
                bins.push((first.checked_add(i).ok_or_else(out_of_range)?, count));
            }
        }
        end = Some(first.checked_add(len).ok_or_else(out_of_range)?);
    }
    if !bytes.is_empty() {
        return Err(format!("{} bytes after the histogram's bins", bytes.len()));
    }
    LogHistogram::from_bin_counts(precision, bins).map_err(|e| format!("not a histogram: {e}"))
}

/// The statements, made once from the table name.
struct Sql {
    create: String,
    insert: String,
    upsert: String,
    read: String,
    lock: String,
    fine: String,
    hours: String,
    delete: String,
    expire_coarse: String,
    expire_fine: String,
}

const COLUMNS: &str = "metric, series, start_ms, width_ms, count, sum, min, max, hist";
const UNNEST: &str = "unnest($1::text[], $2::text[], $3::int8[], $4::int4[], $5::int8[], \
     $6::float8[], $7::float8[], $8::float8[], $9::bytea[], $10::int8[]) \
     AS u(metric, series, start_ms, width_ms, count, sum, min, max, hist, hour_ms)";

impl Sql {
    fn new(t: &str) -> Self {
        let set = "ON CONFLICT (metric, start_ms, series, width_ms) DO UPDATE SET \
                   count = excluded.count, sum = excluded.sum, min = excluded.min, \
                   max = excluded.max, hist = excluded.hist";
        Self {
            // Fixed-width columns first: no padding between them.
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (start_ms bigint NOT NULL, count bigint NOT NULL, \
                 sum double precision NOT NULL, min double precision NOT NULL, \
                 max double precision NOT NULL, width_ms integer NOT NULL, metric text NOT NULL, \
                 series text NOT NULL, hist bytea, \
                 PRIMARY KEY (metric, start_ms, series, width_ms));
                 CREATE INDEX IF NOT EXISTS {t}_fine_age ON {t} (start_ms) WHERE width_ms < {HOUR_MS};
                 CREATE INDEX IF NOT EXISTS {t}_coarse_age ON {t} (start_ms) WHERE width_ms >= {HOUR_MS};"
            ),
            insert: format!(
                "INSERT INTO {t} ({COLUMNS}) SELECT {COLUMNS} FROM {UNNEST} \
                 WHERE u.width_ms >= {HOUR_MS} OR NOT EXISTS (SELECT 1 FROM {t} h \
                 WHERE h.metric = u.metric AND h.start_ms = u.hour_ms AND h.series = u.series \
                 AND h.width_ms = {HOUR_MS}) {set}"
            ),
            upsert: format!("INSERT INTO {t} ({COLUMNS}) SELECT {COLUMNS} FROM {UNNEST} {set}"),
            read: format!(
                "SELECT {COLUMNS} FROM {t} WHERE metric = $1 AND start_ms > $2::int8 - {HOUR_MS} \
                 AND start_ms < $3::int8 AND start_ms + width_ms > $2::int8 ORDER BY start_ms, series, width_ms"
            ),
            lock: "SELECT pg_try_advisory_xact_lock(hashtext($1))".to_owned(),
            fine: format!(
                "SELECT {COLUMNS} FROM {t} WHERE width_ms < {HOUR_MS} AND start_ms < $1 \
                 ORDER BY start_ms LIMIT $2 FOR UPDATE"
            ),
            hours: format!(
                "SELECT h.metric, h.series, h.start_ms, h.width_ms, h.count, h.sum, h.min, h.max, h.hist \
                 FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(metric, series, start_ms) \
                 JOIN {t} h ON h.metric = u.metric AND h.start_ms = u.start_ms \
                 AND h.series = u.series AND h.width_ms = {HOUR_MS} FOR UPDATE OF h"
            ),
            delete: format!(
                "DELETE FROM {t} USING unnest($1::text[], $2::int8[], $3::text[], $4::int4[]) \
                 AS d(metric, start_ms, series, width_ms) WHERE {t}.metric = d.metric \
                 AND {t}.start_ms = d.start_ms AND {t}.series = d.series AND {t}.width_ms = d.width_ms"
            ),
            expire_coarse: format!(
                "DELETE FROM {t} WHERE width_ms >= {HOUR_MS} AND start_ms < $1"
            ),
            expire_fine: format!("DELETE FROM {t} WHERE width_ms < {HOUR_MS} AND start_ms < $1"),
        }
    }
}

/// Columnar parameters of the `UNNEST` statements.
#[derive(Default)]
struct Columns {
    metric: Vec<String>,
    series: Vec<String>,
    start_ms: Vec<i64>,
    width_ms: Vec<i32>,
    count: Vec<i64>,
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    hist: Vec<Option<Vec<u8>>>,
    hour_ms: Vec<i64>,
}

impl Columns {
    fn push(&mut self, r: &Row) {
        self.metric.push(r.metric.clone());
        self.series.push(r.series.clone());
        self.start_ms.push(r.start_ms);
        self.width_ms.push(r.width_ms);
        self.count.push(r.count);
        self.sum.push(r.sum);
        self.min.push(r.min);
        self.max.push(r.max);
        self.hist.push(r.hist.clone());
        self.hour_ms.push(r.hour_ms());
    }

    fn len(&self) -> usize {
        self.metric.len()
    }

    fn execute(
        &self,
        c: &mut impl postgres::GenericClient,
        sql: &str,
    ) -> Result<u64, postgres::Error> {
        c.execute(
            sql,
            &[
                &self.metric,
                &self.series,
                &self.start_ms,
                &self.width_ms,
                &self.count,
                &self.sum,
                &self.min,
                &self.max,
                &self.hist,
                &self.hour_ms,
            ],
        )
    }
}

/// A row as read: the raw columns, decoded later.
fn raw_row(row: &postgres::Row) -> Result<Row, String> {
    let get = |e: postgres::Error| format!("unexpected column: {e}");
    Ok(Row {
        metric: row.try_get(0).map_err(get)?,
        series: row.try_get(1).map_err(get)?,
        start_ms: row.try_get(2).map_err(get)?,
        width_ms: row.try_get(3).map_err(get)?,
        count: row.try_get(4).map_err(get)?,
        sum: row.try_get(5).map_err(get)?,
        min: row.try_get(6).map_err(get)?,
        max: row.try_get(7).map_err(get)?,
        hist: row.try_get(8).map_err(get)?,
    })
}

/// The bucket of a row; `keys` caches the series keys already made.
/// A row's count (non-negative) and decoded histogram: what every reader of rows
/// checks before it uses them.
fn row_contents(r: &Row) -> Result<(u64, Option<LogHistogram>), String> {
    let count = u64::try_from(r.count).map_err(|_| format!("count {} is negative", r.count))?;
    let histogram = r.hist.as_deref().map(decode_histogram).transpose()?;
    Ok((count, histogram))
}

fn decode_row(
    r: Row,
    keys: &mut HashMap<(String, String), SeriesKey>,
) -> Result<ArchivedBucket, String> {
    let width = u64::try_from(r.width_ms)
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| format!("width_ms {} is not positive", r.width_ms))?;
    let (count, histogram) = row_contents(&r)?;
    let histogram = histogram.map(std::sync::Arc::new);
    let series = match keys.get(&(r.metric.clone(), r.series.clone())) {
        Some(k) => k.clone(),
        None => {
            let tags: BTreeMap<String, String> = serde_json::from_str(&r.series)
                .map_err(|e| format!("series {:?} is not a JSON object of tags: {e}", r.series))?;
            let key = SeriesKey::new(&r.metric, &tags).map_err(|e| e.to_string())?;
            keys.insert((r.metric, r.series), key.clone());
            key
        }
    };
    Ok(ArchivedBucket {
        series,
        start: Timestamp::from_millis(r.start_ms),
        width: Duration::from_millis(width),
        count,
        sum: r.sum,
        min: r.min,
        max: r.max,
        histogram,
    })
}

/// A connection, its session set up (statement timeout) and the schema created if missing.
fn open(
    pg: &postgres::Config,
    sql: &Sql,
    timeout: Duration,
) -> Result<postgres::Client, postgres::Error> {
    let mut client = pg.connect(postgres::NoTls)?;
    client.batch_execute(&format!("SET statement_timeout = {}", timeout.as_millis()))?;
    // Two connections creating the table at once may collide on the catalog: once more.
    if client.batch_execute(&sql.create).is_err() {
        std::thread::sleep(Duration::from_millis(50));
        client.batch_execute(&sql.create)?;
    }
    Ok(client)
}

/// What the writer and the handle share.
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    connected: AtomicBool,
    rejected: AtomicU64,
    superseded: AtomicU64,
    bad_rows: AtomicU64,
    downsampled: AtomicU64,
    expired: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Queue {
    rows: VecDeque<Row>,
    /// Rows taken by the writer, not yet written.
    in_flight: usize,
    written: u64,
    dropped: u64,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    fn failed(&self, place: &str, e: &postgres::Error) {
        self.connected.store(false, Ordering::Relaxed);
        let msg = format!("{place}: {e}");
        tracing::warn!(target: "rtdash::postgres", "history archive: {msg}");
        *lock(&self.last_error) = Some(msg);
    }

    fn count(&self, r: &MaintenanceReport) {
        self.downsampled.fetch_add(r.downsampled, Ordering::Relaxed);
        self.expired.fetch_add(r.expired, Ordering::Relaxed);
        self.bad_rows.fetch_add(r.bad_rows, Ordering::Relaxed);
    }
}

/// A read for the reader thread.
struct ReadCall {
    metric: String,
    from: i64,
    to: i64,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<Vec<ArchivedBucket>, Error>>,
}

/// A [`HistoryArchive`] in a PostgreSQL table: per-series roll-ups (count, sum, min, max
/// and the mergeable histogram), one row per series and minute, merged into one row per
/// series and hour after [`minute_retention`](ArchiveConfig::minute_retention).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rtdash::history::HistoryArchive;
/// use rtdash::postgres::{ArchiveConfig, PostgresArchive};
///
/// # async fn run() -> Result<(), rtdash::Error> {
/// let archive = PostgresArchive::connect(
///     "postgres://postgres@127.0.0.1:5432/rtdash",
///     ArchiveConfig::default().with_minute_retention(Duration::from_secs(3 * 86_400)),
/// )?;
/// // The engine offers finished buckets (never blocking) and reads past ones.
/// let now = rtdash::Timestamp::from_millis(1_700_000_000_000);
/// let day = archive
///     .read("api.latency", now.saturating_sub(Duration::from_secs(86_400)), now)
///     .await?;
/// println!("{} buckets; {:?}", day.len(), archive.health());
/// # Ok(()) }
/// ```
///
/// # Schema
///
/// One table (default `rtdash_rollups`, created if missing):
///
/// | column | type | |
/// |---|---|---|
/// | `metric` | `text` | the metric name |
/// | `series` | `text` | the tags as a JSON object with sorted keys (`{"host":"a"}`, `{}`); `series::jsonb` for SQL |
/// | `start_ms`, `width_ms` | `bigint`, `integer` | the interval, Unix milliseconds |
/// | `count`, `sum`, `min`, `max` | `bigint`, `double precision` ×3 | as the window store keeps them (a sum may be ±∞ or NaN; they are stored as is) |
/// | `hist` | `bytea`, null without percentiles | the histogram: its precision (a byte), the number of bins, then per bin the distance from the previous bin and its count (LEB128 varints): exact |
///
/// The primary key `(metric, start_ms, series, width_ms)` serves reads (`metric = $1 AND
/// start_ms` in a range); two partial indexes on `start_ms` (rows under one hour wide,
/// and the others) serve the maintenance.
///
/// # Writes
///
/// [`offer`](HistoryArchive::offer) encodes the buckets (a few µs each) and queues them;
/// it never waits for PostgreSQL. A writer thread of the archive's own, with its own
/// connection, writes what is queued every [`flush_interval`](ArchiveConfig::flush_interval)
/// or as soon as [`batch_size`](ArchiveConfig::batch_size) are queued, one statement per
/// batch (`INSERT … SELECT FROM unnest(…) ON CONFLICT … DO UPDATE`): offering a bucket again
/// keeps one row with the latest values. A bucket finer than one hour whose hour is
/// already downsampled is not written (counted in [`ArchiveStats::superseded`]): it is an
/// old bucket replayed, already merged.
///
/// Offered buckets must be at most one hour wide, with a width that divides one hour and
/// a start that is a multiple of it; others are refused ([`ArchiveStats::rejected`]).
///
/// # Outage
///
/// When a write fails (PostgreSQL down, restarted, unreachable), the batch stays queued,
/// [`ArchiveHealth::connected`] turns false, and the writer connects again with backoff
/// (0.1 s doubling to 5 s); offers go on queuing. Past
/// [`buffer_capacity`](ArchiveConfig::buffer_capacity) the oldest queued buckets are
/// dropped and counted in [`ArchiveHealth::dropped`]: that is the gap in stored history.
/// When PostgreSQL is back the queue is written, oldest first, and nothing else is lost.
/// An archive whose database is down at start is made all the same; it connects when the
/// database comes up.
///
/// # Reads
///
/// [`read`](HistoryArchive::read) is answered by a reader thread with its own connection,
/// one read at a time; it fails with [`Error::HistoryUnavailable`] when PostgreSQL is
/// unreachable or no answer came within [`timeout`](ArchiveConfig::timeout) (the future
/// needs a tokio runtime with its time driver). A row that does not decode is skipped and
/// counted ([`ArchiveStats::bad_rows`]), never a failed read.
///
/// # Downsampling and retention
///
/// Every [`maintenance_interval`](ArchiveConfig::maintenance_interval) (or on
/// [`maintain`](Self::maintain)), rows under one hour wide that start in an hour older than
/// `minute_retention` are merged into the one-hour row of their series and hour (counts
/// and sums added, extremes kept, histograms merged: exact, so any percentile over the hour
/// is as live) and deleted, in one transaction per chunk of 5,000 rows; when the hour row
/// exists (an earlier chunk, or a late bucket) the rows are merged into it in the same
/// transaction, so a crash at any point never counts a minute twice nor loses one. Rows
/// older than [`hour_retention`](ArchiveConfig::hour_retention) are deleted. Nodes
/// sharing the table take turns (a transaction-level advisory lock): at most one does the
/// work of a chunk.
///
/// # Threads
///
/// Two threads (writer, reader), each with one connection; they stop when the archive is
/// dropped (the writer after one last attempt to write what is queued).
pub struct PostgresArchive {
    shared: Arc<Shared>,
    reads: Mutex<mpsc::Sender<ReadCall>>,
    capacity: usize,
    batch_size: usize,
    timeout: Duration,
    /// Where, for messages: `postgres://host:port/db/table` (no password).
    place: String,
    pg: postgres::Config,
    table: String,
    config: ArchiveConfig,
}

impl std::fmt::Debug for PostgresArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresArchive")
            .field("place", &self.place)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl PostgresArchive {
    /// Starts an archive of the PostgreSQL at `url` (`postgres://user[:password]@host[:port]/db`
    /// or the `key=value` form). Returns at once: the writer connects (and creates the
    /// table if missing) in the background, and keeps trying while the database is down
    /// ([`ArchiveHealth::connected`] is false until it succeeds). Works inside and outside
    /// a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad setting (naming it) or URL (`url`, never showing
    /// the password); [`Error::Store`] when a thread cannot be started.
    pub fn connect(url: &str, config: ArchiveConfig) -> Result<Self, Error> {
        config.validate()?;
        let (mut pg, base) = super::parse_url(url)?;
        pg.connect_timeout(config.timeout)
            .tcp_user_timeout(config.timeout)
            .keepalives_idle(Duration::from_secs(30));
        let place = format!("{base}/{}", config.table);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            connected: AtomicBool::new(false),
            rejected: AtomicU64::new(0),
            superseded: AtomicU64::new(0),
            bad_rows: AtomicU64::new(0),
            downsampled: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let spawn_failed = |e: std::io::Error| Error::Store {
            action: "connect",
            path: place.clone().into(),
            reason: format!("cannot start the archive's thread: {e}"),
        };
        let writer = Writer {
            shared: Arc::clone(&shared),
            pg: pg.clone(),
            sql: Sql::new(&config.table),
            place: place.clone(),
            config: config.clone(),
            client: None,
        };
        std::thread::Builder::new()
            .name("rtdash-archive-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(spawn_failed)?;
        let (tx, rx) = mpsc::channel::<ReadCall>();
        let reader = Reader {
            shared: Arc::clone(&shared),
            pg: pg.clone(),
            sql: Sql::new(&config.table),
            place: place.clone(),
            timeout: config.timeout,
            client: None,
        };
        std::thread::Builder::new()
            .name("rtdash-archive-reader".to_owned())
            .spawn(move || reader.run(&rx))
            .map_err(spawn_failed)?;
        Ok(Self {
            shared,
            reads: Mutex::new(tx),
            capacity: config.buffer_capacity,
            batch_size: config.batch_size,
            timeout: config.timeout,
            place,
            pg,
            table: config.table.clone(),
            config,
        })
    }

    /// Everything counted since start: the [`ArchiveHealth`], refused, superseded and bad
    /// rows, the maintenance's work and the last error.
    #[must_use]
    pub fn stats(&self) -> ArchiveStats {
        let s = &self.shared;
        ArchiveStats {
            health: self.health(),
            rejected: s.rejected.load(Ordering::Relaxed),
            superseded: s.superseded.load(Ordering::Relaxed),
            bad_rows: s.bad_rows.load(Ordering::Relaxed),
            downsampled: s.downsampled.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
        }
    }

    /// The table's name.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Waits until every queued bucket is written, at most `timeout`. Blocks the calling
    /// thread: call it from blocking code (e.g. at shutdown, or in
    /// `tokio::task::spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (`write`) when buckets are still queued after `timeout` (e.g.
    /// PostgreSQL is down), with the writer's last error.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        self.shared.wake.notify_all();
        loop {
            let buffered = self.health().buffered;
            if buffered == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Store {
                    action: "write",
                    path: self.place.clone().into(),
                    reason: format!(
                        "{buffered} buckets still queued after {timeout:?}; last error: {}",
                        lock(&self.shared.last_error).as_deref().unwrap_or("none")
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs the maintenance now, as of `now`: merges the rows under one hour wide that
    /// start in an hour older than `now - minute_retention` into one-hour rows, and
    /// deletes rows older than `now - hour_retention`. Safe to run on several nodes at
    /// once and to repeat. Blocks the calling thread (on a connection of its own).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (`maintain`) when PostgreSQL fails; what was committed before
    /// stays (each chunk is one transaction).
    pub fn maintain(&self, now: Timestamp) -> Result<MaintenanceReport, Error> {
        let pg = self.pg.clone();
        let sql = Sql::new(&self.table);
        let config = self.config.clone();
        let place = self.place.clone();
        let fail = |reason: String| Error::Store {
            action: "maintain",
            path: place.clone().into(),
            reason,
        };
        let report = std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = open(&pg, &sql, config.timeout)?;
                maintain(&mut client, &sql, &config, now.as_millis())
            })
            .join()
        })
        .map_err(|_| fail("the maintenance thread panicked".to_owned()))?
        .map_err(|e| fail(e.to_string()))?;
        self.shared.count(&report);
        Ok(report)
    }
}

impl Drop for PostgresArchive {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.wake.notify_all();
    }
}

impl HistoryArchive for PostgresArchive {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn offer(&self, buckets: Vec<ArchivedBucket>) {
        let rows: Vec<Row> = buckets.iter().filter_map(Row::of).collect();
        let refused = (buckets.len() - rows.len()) as u64;
        if refused > 0 {
            self.shared.rejected.fetch_add(refused, Ordering::Relaxed);
        }
        let mut q = self.shared.queue();
        q.rows.extend(rows);
        let over = (q.rows.len() + q.in_flight).saturating_sub(self.capacity);
        let over = over.min(q.rows.len());
        if over > 0 {
            q.rows.drain(..over);
            q.dropped += over as u64;
        }
        let full = q.rows.len() >= self.batch_size;
        drop(q);
        if full {
            self.shared.wake.notify_all();
        }
    }

    fn read(
        &self,
        metric: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'static, Result<Vec<ArchivedBucket>, Error>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let timeout = self.timeout;
        let sent = lock(&self.reads)
            .send(ReadCall {
                metric: metric.to_owned(),
                from: from.as_millis(),
                to: to.as_millis(),
                deadline: Instant::now() + timeout,
                reply,
            })
            .is_ok();
        let place = self.place.clone();
        Box::pin(async move {
            let unavailable = |why: String| Error::HistoryUnavailable {
                reason: format!("{place}: {why}"),
            };
            if !sent {
                return Err(unavailable("the archive's reader stopped".to_owned()));
            }
            match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(unavailable("the archive's reader stopped".to_owned())),
                Err(_) => Err(unavailable(format!(
                    "no answer from PostgreSQL within {timeout:?}"
                ))),
            }
        })
    }

    fn flush(&self, timeout: Duration) -> Result<(), Error> {
        PostgresArchive::flush(self, timeout)
    }

    fn health(&self) -> ArchiveHealth {
        let q = self.shared.queue();
        ArchiveHealth {
            connected: self.shared.connected.load(Ordering::Relaxed),
            buffered: q.rows.len() + q.in_flight,
            written: q.written,
            dropped: q.dropped,
        }
    }
}

/// The writer thread: one connection, made again with backoff when lost.
struct Writer {
    shared: Arc<Shared>,
    pg: postgres::Config,
    sql: Sql,
    place: String,
    config: ArchiveConfig,
    client: Option<postgres::Client>,
}

impl Writer {
    fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        let mut retry_at = Instant::now();
        let mut next_maintenance = self.config.maintenance_interval.map(|i| Instant::now() + i);
        loop {
            let closed = self.shared.queue().closed;
            // Connect when there is no connection (or it was lost), at most once per backoff.
            if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
                self.client = None;
                if Instant::now() >= retry_at {
                    match open(&self.pg, &self.sql, self.config.timeout) {
                        Ok(c) => {
                            self.client = Some(c);
                            self.shared.connected.store(true, Ordering::Relaxed);
                            backoff = MIN_BACKOFF;
                        }
                        Err(e) => {
                            self.shared.failed(&self.place, &e);
                            retry_at = Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                } else {
                    self.shared.connected.store(false, Ordering::Relaxed);
                }
            }
            if self.client.is_some() && !self.drain() {
                self.client = None;
                retry_at = Instant::now() + backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            if closed {
                return;
            }
            if let (Some(at), Some(client)) = (next_maintenance, self.client.as_mut())
                && Instant::now() >= at
            {
                match maintain(client, &self.sql, &self.config, now_ms()) {
                    Ok(report) => self.shared.count(&report),
                    Err(e) => {
                        tracing::warn!(target: "rtdash::postgres", "history archive maintenance: {}: {e}", self.place);
                    }
                }
                next_maintenance = self.config.maintenance_interval.map(|i| Instant::now() + i);
            }
            // Sleep until the next flush, a full batch, a retry or the close.
            let mut wait = self.config.flush_interval;
            if self.client.is_none() {
                wait = wait.min(retry_at.saturating_duration_since(Instant::now()));
            }
            let q = self.shared.queue();
            if q.closed || (q.rows.len() >= self.config.batch_size && self.client.is_some()) {
                continue;
            }
            let _ = self
                .shared
                .wake
                .wait_timeout(q, wait.max(Duration::from_millis(1)));
        }
    }

    /// Writes everything queued, batch by batch; false when a write failed (the batch is
    /// queued again, at the front).
    fn drain(&mut self) -> bool {
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        loop {
            let batch: Vec<Row> = {
                let mut q = self.shared.queue();
                let n = q.rows.len().min(self.config.batch_size);
                if n == 0 {
                    return true;
                }
                q.in_flight = n;
                q.rows.drain(..n).collect()
            };
            // One row per key in a statement (the last offered wins).
            let mut cols = Columns::default();
            let mut slots: HashMap<(&str, &str, i64, i32), usize> =
                HashMap::with_capacity(batch.len());
            let mut order: Vec<usize> = Vec::with_capacity(batch.len());
            for (i, r) in batch.iter().enumerate() {
                let key = (r.metric.as_str(), r.series.as_str(), r.start_ms, r.width_ms);
                match slots.entry(key) {
                    std::collections::hash_map::Entry::Occupied(slot) => order[*slot.get()] = i,
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(order.len());
                        order.push(i);
                    }
                }
            }
            for &i in &order {
                cols.push(&batch[i]);
            }
            match cols.execute(client, &self.sql.insert) {
                Ok(n) => {
                    let skipped = (cols.len() as u64).saturating_sub(n);
                    if skipped > 0 {
                        self.shared.superseded.fetch_add(skipped, Ordering::Relaxed);
                    }
                    let mut q = self.shared.queue();
                    q.in_flight = 0;
                    q.written += batch.len() as u64;
                    drop(q);
                    self.shared.connected.store(true, Ordering::Relaxed);
                    *lock(&self.shared.last_error) = None;
                }
                Err(e) => {
                    self.shared.failed(&self.place, &e);
                    let mut q = self.shared.queue();
                    q.in_flight = 0;
                    for r in batch.into_iter().rev() {
                        q.rows.push_front(r);
                    }
                    return false;
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One maintenance run as of `now` (ms): retention, then downsampling chunk by chunk.
fn maintain(
    client: &mut postgres::Client,
    sql: &Sql,
    config: &ArchiveConfig,
    now: i64,
) -> Result<MaintenanceReport, postgres::Error> {
    let mut report = MaintenanceReport::default();
    let lock_key = format!("rtdash-archive:{}", config.table);
    if let Some(keep) = config.hour_retention {
        let cutoff = now.saturating_sub(ms(keep));
        let mut tx = client.transaction()?;
        let got: bool = tx.query_one(&sql.lock, &[&lock_key])?.try_get(0)?;
        if !got {
            report.busy = true;
            return Ok(report);
        }
        report.expired += tx.execute(&sql.expire_coarse, &[&cutoff])?;
        report.expired += tx.execute(&sql.expire_fine, &[&cutoff])?;
        tx.commit()?;
    }
    let cutoff = now
        .saturating_sub(ms(config.minute_retention))
        .div_euclid(HOUR_MS)
        * HOUR_MS;
    loop {
        let mut tx = client.transaction()?;
        let got: bool = tx.query_one(&sql.lock, &[&lock_key])?.try_get(0)?;
        if !got {
            report.busy = true;
            return Ok(report);
        }
        let rows = tx.query(&sql.fine, &[&cutoff, &MAINTENANCE_CHUNK])?;
        let n = rows.len();
        if n == 0 {
            return Ok(report);
        }
        // The hour rows to write, by (metric, series, hour).
        let mut hours: BTreeMap<(String, String, i64), Merge> = BTreeMap::new();
        let mut gone = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let Ok(r) = raw_row(row) else {
                report.bad_rows += 1;
                continue;
            };
            gone.0.push(r.metric.clone());
            gone.1.push(r.start_ms);
            gone.2.push(r.series.clone());
            gone.3.push(r.width_ms);
            let (count, hist) = match row_contents(&r) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(target: "rtdash::postgres", "history archive: row ({}, {}, {}) skipped: {e}", r.metric, r.series, r.start_ms);
                    report.bad_rows += 1;
                    continue;
                }
            };
            report.downsampled += 1;
            let key = (r.metric.clone(), r.series.clone(), r.hour_ms());
            hours.entry(key).or_insert_with(Merge::new).add_parts(
                count,
                r.sum,
                r.min,
                r.max,
                hist.as_ref(),
            );
        }
        // Merge into the hour rows that exist (locked until the commit).
        let (m, s, h): (Vec<String>, Vec<String>, Vec<i64>) = hours
            .keys()
            .map(|(m, s, h)| (m.clone(), s.clone(), *h))
            .fold(
                (Vec::new(), Vec::new(), Vec::new()),
                |mut acc, (m, s, h)| {
                    acc.0.push(m);
                    acc.1.push(s);
                    acc.2.push(h);
                    acc
                },
            );
        for row in tx.query(&sql.hours, &[&m, &s, &h])? {
            let Ok(r) = raw_row(&row) else {
                report.bad_rows += 1;
                continue;
            };
            // Unreadable: replaced by the merge of the new rows.
            let Ok((count, hist)) = row_contents(&r) else {
                report.bad_rows += 1;
                continue;
            };
            if let Some(merged) = hours.get_mut(&(r.metric.clone(), r.series.clone(), r.start_ms)) {
                merged.add_parts(count, r.sum, r.min, r.max, hist.as_ref());
            }
        }
        let mut cols = Columns::default();
        for ((metric, series, hour), merged) in hours {
            cols.push(&Row {
                metric,
                series,
                start_ms: hour,
                // HOUR_MS fits.
                width_ms: HOUR_MS as i32,
                count: i64::try_from(merged.count).unwrap_or(i64::MAX),
                sum: merged.sum,
                min: merged.min,
                max: merged.max,
                hist: merged
                    .histogram
                    .as_ref()
                    .and_then(|h| encode_histogram(h).ok()),
            });
        }
        report.hour_rows += cols.execute(&mut tx, &sql.upsert)?;
        tx.execute(&sql.delete, &[&gone.0, &gone.1, &gone.2, &gone.3])?;
        tx.commit()?;
        if (n as i64) < MAINTENANCE_CHUNK {
            return Ok(report);
        }
    }
}

/// The reader thread: one connection, made again when lost.
struct Reader {
    shared: Arc<Shared>,
    pg: postgres::Config,
    sql: Sql,
    place: String,
    timeout: Duration,
    client: Option<postgres::Client>,
}

impl Reader {
    fn run(mut self, calls: &mpsc::Receiver<ReadCall>) {
        while let Ok(call) = calls.recv() {
            if Instant::now() >= call.deadline || call.reply.is_closed() {
                continue;
            }
            let result = self.read(&call).map_err(|e| Error::HistoryUnavailable {
                reason: format!("{}: {e}", self.place),
            });
            let _ = call.reply.send(result);
        }
    }

    fn read(&mut self, call: &ReadCall) -> Result<Vec<ArchivedBucket>, postgres::Error> {
        // A connection that was open may have been cut (PostgreSQL restarted): once more
        // on a new one.
        let mut tries = if self.client.is_some() { 2 } else { 1 };
        let rows = loop {
            let client = match self.client.take() {
                Some(c) if !c.is_closed() => self.client.insert(c),
                _ => self.client.insert(open(&self.pg, &self.sql, self.timeout)?),
            };
            match client.query(&self.sql.read, &[&call.metric, &call.from, &call.to]) {
                Ok(rows) => break rows,
                Err(e) => {
                    self.client = None;
                    tries -= 1;
                    if tries == 0 {
                        return Err(e);
                    }
                }
            }
        };
        let mut keys = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match raw_row(row).and_then(|r| decode_row(r, &mut keys)) {
                Ok(b) => out.push(b),
                Err(e) => {
                    self.shared.bad_rows.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "rtdash::postgres", "history archive: {}: a row of `{}` skipped: {e}", self.place, call.metric);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[(f64, u64)], p: u8) -> LogHistogram {
        let mut h = LogHistogram::new(p).unwrap();
        for &(v, n) in values {
            h.record_n(v, n).unwrap();
        }
        h
    }

    fn same(a: &LogHistogram, b: &LogHistogram) -> bool {
        a.precision() == b.precision()
            && a.count() == b.count()
            && a.bins().collect::<Vec<_>>() == b.bins().collect::<Vec<_>>()
    }

    #[test]
    fn histograms_round_trip_exactly() {
        for p in [1, 7, 12] {
            for values in [
                vec![],
                vec![(0.0, 1)],
                vec![
                    (-f64::MAX, 3),
                    (-1.5, 1),
                    (0.0, 2),
                    (1e-300, 1),
                    (f64::MAX, u64::from(u32::MAX) + 9),
                ],
                (1u32..500)
                    .map(|i| (f64::from(i) * 0.37, u64::from(i % 7 + 1)))
                    .collect(),
            ] {
                let h = hist(&values, p);
                let bytes = encode_histogram(&h).unwrap();
                let back = decode_histogram(&bytes).unwrap();
                assert!(same(&h, &back), "p={p} {values:?}");
            }
        }
    }

    #[test]
    fn bad_histogram_bytes_are_errors_not_panics() {
        let good = encode_histogram(&hist(&[(1.0, 2), (5.0, 1)], 7)).unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0, 0],          // precision 0
            vec![13, 0],         // precision 13
            vec![7, 5, 1, 1, 1], // 5 runs announced, one given
            vec![7, 1, 0, 1, 1], // bin 0 is no finite value's bin
            vec![7, 1, 9, 0, 1], // a run of 0 bins
            vec![7, 1, 9, 9, 1], // a run longer than the bytes
            vec![
                7, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 1, 1,
            ],
            [good.clone(), vec![0]].concat(), // trailing byte
        ];
        // Two runs that touch (gap 0 after the first).
        let one = encode_histogram(&hist(&[(1.0, 2)], 7)).unwrap();
        let mut touching = one.clone();
        touching[1] = 2;
        touching.extend([0, 1, 1]);
        cases.push(touching);
        for (i, len) in (0..good.len()).enumerate() {
            if i > 0 {
                cases.push(good[..len].to_vec());
            }
        }
        for c in cases {
            assert!(decode_histogram(&c).is_err(), "{c:?} decoded");
        }
        assert!(decode_histogram(&good).is_ok());
    }

    #[test]
    fn settings_are_checked_by_name() {
        assert!(ArchiveConfig::default().validate().is_ok());
        let cases = [
            (ArchiveConfig::default().with_table("a;b"), "table"),
            (ArchiveConfig::default().with_table("x".repeat(53)), "table"),
            (
                ArchiveConfig::default().with_buffer_capacity(0),
                "buffer_capacity",
            ),
            (ArchiveConfig::default().with_batch_size(0), "batch_size"),
            (
                ArchiveConfig::default()
                    .with_buffer_capacity(10)
                    .with_batch_size(11),
                "batch_size",
            ),
            (
                ArchiveConfig::default().with_flush_interval(Duration::ZERO),
                "flush_interval",
            ),
            (
                ArchiveConfig::default().with_minute_retention(Duration::from_secs(60)),
                "minute_retention",
            ),
            (
                ArchiveConfig::default().with_hour_retention(Some(Duration::from_secs(86_400))),
                "hour_retention",
            ),
            (
                ArchiveConfig::default().with_maintenance_interval(Some(Duration::ZERO)),
                "maintenance_interval",
            ),
            (
                ArchiveConfig::default().with_timeout(Duration::ZERO),
                "timeout",
            ),
        ];
        for (c, field) in cases {
            let err = c.validate().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { field: f, .. } if *f == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn rows_refuse_widths_that_do_not_fit_an_hour() {
        let key = SeriesKey::new("m", [("b", "2"), ("a", "1")]).unwrap();
        let bucket = |start: i64, width_ms: u64| ArchivedBucket {
            series: key.clone(),
            start: Timestamp::from_millis(start),
            width: Duration::from_millis(width_ms),
            count: 1,
            sum: 1.0,
            min: 1.0,
            max: 1.0,
            histogram: None,
        };
        let row = Row::of(&bucket(120_000, 60_000)).unwrap();
        assert_eq!(row.series, r#"{"a":"1","b":"2"}"#);
        assert_eq!(row.hour_ms(), 0);
        assert!(Row::of(&bucket(3_600_000, 3_600_000)).is_some());
        assert!(
            Row::of(&bucket(0, 7_000)).is_none(),
            "7 s does not divide an hour"
        );
        assert!(Row::of(&bucket(30_000, 60_000)).is_none(), "not aligned");
        assert!(
            Row::of(&bucket(0, 7_200_000)).is_none(),
            "wider than an hour"
        );
        assert!(Row::of(&bucket(0, 0)).is_none());
        let mut keys = HashMap::new();
        let back = decode_row(row, &mut keys).unwrap();
        assert_eq!(back.series, key);
    }
}
