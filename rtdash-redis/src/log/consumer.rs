//! The consumer of one owned partition: reads its stream in order, applies each entry,
//! appends late events, checkpoints.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use super::reply::{self, Entry};
use super::scripts::{self, Script, Shas};
use super::{Inner, LogCounters, PAYLOAD_FIELD, PartitionHandler};
use crate::BackplaneError;
use crate::link::{self, Backoff};

/// How long one `XREAD` waits for new entries: short, so that the consumer notices a
/// stop request or a due checkpoint soon.
const BLOCK: Duration = Duration::from_millis(100);

/// How often a consumer's Redis trouble is logged as a warning.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Until when a lease is surely still this node's, by its own monotonic clock: the time
/// its last successful renewal (or acquisition) was sent, plus `lease_ttl`. The
/// coordinator moves it at each renewal; the consumer applies nothing past it (the
/// coordinator then gives the partition up, or renews it late).
#[derive(Debug, Clone)]
pub(crate) struct ValidUntil(Arc<Mutex<Instant>>);

impl ValidUntil {
    pub(crate) fn new(until: Instant) -> Self {
        Self(Arc::new(Mutex::new(until)))
    }

    pub(crate) fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, until: Instant) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }
}

/// How often a consumer whose lease may have expired checks whether it was renewed.
const LEASE_CHECK: Duration = Duration::from_millis(5);

/// Why a consumer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Asked to stop; whether its final checkpoint was stored (or nothing needed one).
    Stopped { checkpointed: bool },
    /// A checkpoint was refused: a successor holds a newer fencing token.
    Fenced,
}

/// Whether an `XADD` error says the id is already in the stream (or behind its end).
fn already_there(e: &redis::RedisError) -> bool {
    e.to_string()
        .contains("equal or smaller than the target stream top item")
}

struct Consumer {
    inner: Arc<Inner>,
    handler: Arc<dyn PartitionHandler>,
    p: u32,
    token: u64,
    valid_until: ValidUntil,
    /// The id of the last entry applied (or skipped).
    offset: String,
    /// Whether entries were applied since the last stored checkpoint.
    dirty: bool,
    last_checkpoint: Instant,
    conn: Option<(MultiplexedConnection, Shas)>,
    backoff: Backoff,
    last_warn: Option<Instant>,
    log_key: String,
    late_key: String,
}

/// Consumes partition `p` from `offset` with fencing token `token` until `stop` is
/// cancelled (then stores a final checkpoint) or a checkpoint is fenced.
///
/// Handler calls happen only between `.await`s that are safe to abort at: aborting the
/// task (a lost lease) never leaves a half-applied entry behind in Redis.
pub(crate) async fn run(
    inner: Arc<Inner>,
    handler: Arc<dyn PartitionHandler>,
    p: u32,
    token: u64,
    valid_until: ValidUntil,
    offset: String,
    stop: CancellationToken,
) -> Exit {
    let keys = &inner.keys;
    let mut c = Consumer {
        log_key: keys.log(p),
        late_key: keys.late(p),
        backoff: Backoff::new(&inner.backplane),
        inner,
        handler,
        p,
        token,
        valid_until,
        offset,
        dirty: false,
        last_checkpoint: Instant::now(),
        conn: None,
        last_warn: None,
    };
    c.run(stop).await
}

impl Consumer {
    async fn run(&mut self, stop: CancellationToken) -> Exit {
        loop {
            if stop.is_cancelled() {
                return self.final_checkpoint().await;
            }
            if self.dirty && self.last_checkpoint.elapsed() >= self.inner.config.checkpoint_every {
                match self.checkpoint().await {
                    Ok(true) => {}
                    Ok(false) => return Exit::Fenced,
                    Err(e) => {
                        self.failed(&e, &stop).await;
                        continue;
                    }
                }
            }
            let read = tokio::select! {
                () = stop.cancelled() => continue,
                read = self.read() => read,
            };
            let entries = match read {
                Ok(entries) => entries,
                Err(e) => {
                    self.failed(&e, &stop).await;
                    continue;
                }
            };
            self.backoff.succeed();
            for entry in entries {
                if stop.is_cancelled() {
                    break;
                }
                self.apply(entry).await;
            }
        }
    }

    /// The connection, connecting if needed.
    async fn connection(&mut self) -> Result<&mut (MultiplexedConnection, Shas), BackplaneError> {
        if self.conn.is_none() {
            // XREAD BLOCK holds the reply back for up to BLOCK: allow for it.
            let timeout = self.inner.backplane.response_timeout + BLOCK;
            let config =
                link::connection_config(&self.inner.backplane).set_response_timeout(Some(timeout));
            let (conn, shas) = link::connect(&self.inner.client, config, scripts::ALL).await?;
            self.conn = Some((conn, Shas(shas)));
        }
        self.conn
            .as_mut()
            .ok_or_else(|| BackplaneError::Protocol("no connection".into()))
    }

    /// Records a failure: drops the connection, logs (not too often), waits the backoff
    /// (or until a stop request).
    async fn failed(&mut self, e: &BackplaneError, stop: &CancellationToken) {
        self.conn = None;
        let (wait, _open) = self.backoff.fail();
        if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warn = Some(Instant::now());
            tracing::warn!(partition = self.p, error = %e, retry_in = ?wait, "stream log consumer: Redis unreachable");
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// The next entries after the offset (none after `BLOCK` without any).
    async fn read(&mut self) -> Result<Vec<Entry>, BackplaneError> {
        let count = self.inner.config.read_count;
        let block = u64::try_from(BLOCK.as_millis()).unwrap_or(100);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&self.log_key)
            .arg(&self.offset);
        let (conn, _) = self.connection().await?;
        let value: redis::Value = cmd.query_async(conn).await?;
        reply::xread(value)
    }

    /// Applies one entry, appends its late events (retrying until Redis has them), then
    /// moves the offset past it. Waits first while the lease may have expired.
    async fn apply(&mut self, entry: Entry) {
        while Instant::now() >= self.valid_until.get() {
            tokio::time::sleep(LEASE_CHECK).await;
        }
        let counters = &self.inner.counters;
        match entry.payload {
            None => {
                tracing::warn!(partition = self.p, id = %entry.id, field = PAYLOAD_FIELD, "stream log: entry without payload field skipped");
                LogCounters::add(&counters.skipped_entries, 1);
            }
            Some(payload) => {
                let late = self.handler.apply(self.p, &entry.id, &payload);
                LogCounters::add(&counters.applied_entries, 1);
                if let Some(late) = late {
                    self.append_late(&entry.id, &late).await;
                }
            }
        }
        self.offset = entry.id;
        self.dirty = true;
    }

    /// Appends a late event under the id of its entry; an id Redis refuses as not above
    /// the stream's last is already there (a replay). Other failures are retried with
    /// backoff, never skipped: the offset stays before this entry until it is done.
    async fn append_late(&mut self, id: &str, late: &[u8]) {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.late_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.inner.config.late_stream_len)
            .arg(id)
            .arg(PAYLOAD_FIELD)
            .arg(late);
        loop {
            let result = match self.connection().await {
                Ok((conn, _)) => cmd
                    .query_async::<redis::Value>(conn)
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => {
                    LogCounters::add(&self.inner.counters.late_entries, 1);
                    return;
                }
                Err(BackplaneError::Redis(e)) if already_there(&e) => return,
                Err(e) => {
                    // Only an abort (a lost lease) stops this: never a stop request, so
                    // that a final checkpoint cannot skip this entry's late events.
                    self.failed(&e, &CancellationToken::new()).await;
                }
            }
        }
    }

    /// Stores a checkpoint; `Ok(false)` when fenced.
    async fn checkpoint(&mut self) -> Result<bool, BackplaneError> {
        let data = self.handler.checkpoint(self.p);
        let keys = &self.inner.keys;
        let (fence, ckpt) = (keys.fence(self.p), keys.ckpt(self.p));
        let shas = self.connection().await?.1.clone();
        let mut cmd = shas.call(Script::Checkpoint, &[&fence, &ckpt, &self.log_key]);
        cmd.arg(self.token).arg(&data).arg(&self.offset);
        let (conn, _) = self.connection().await?;
        let started = Instant::now();
        let stored: i64 = scripts::query(conn, &cmd).await?;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let c = &self.inner.counters;
        if stored != 1 {
            LogCounters::add(&c.fenced, 1);
            tracing::warn!(
                partition = self.p,
                token = self.token,
                "stream log: checkpoint refused (fenced)"
            );
            return Ok(false);
        }
        LogCounters::add(&c.checkpoints, 1);
        let bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
        c.last_checkpoint_bytes.store(bytes, Ordering::Relaxed);
        c.last_checkpoint_micros.store(micros, Ordering::Relaxed);
        self.last_checkpoint = Instant::now();
        self.dirty = false;
        Ok(true)
    }

    /// The checkpoint at a clean stop: one attempt (the coordinator bounds how long it
    /// waits).
    async fn final_checkpoint(&mut self) -> Exit {
        if !self.dirty {
            return Exit::Stopped { checkpointed: true };
        }
        match self.checkpoint().await {
            Ok(true) => Exit::Stopped { checkpointed: true },
            Ok(false) => Exit::Fenced,
            Err(e) => {
                tracing::warn!(partition = self.p, error = %e, "stream log: final checkpoint not stored (the successor replays from the previous one)");
                Exit::Stopped {
                    checkpointed: false,
                }
            }
        }
    }
}
