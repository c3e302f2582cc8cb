//! The owner's coordinator: membership heartbeat, leases, rebalancing, and the consumer
//! of each owned partition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::consumer::{self, Exit, ValidUntil};
use super::scripts::{self, Script, Shas};
use super::{Inner, LogCounters, PartitionHandler, reply};
use crate::BackplaneError;
use crate::link::{self, Backoff};

/// A running owner (see [`StreamLog::spawn_owner`](super::StreamLog::spawn_owner)).
///
/// [`shutdown`](Self::shutdown) hands the partitions over; dropping the handle instead
/// stops everything at once without freeing anything, as a crash would: the leases
/// expire by themselves after [`lease_ttl`](super::LogConfig::lease_ttl).
#[derive(Debug)]
pub struct OwnerHandle {
    owned: Arc<Mutex<BTreeSet<u32>>>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl OwnerHandle {
    /// The partitions this node owns now, in order.
    #[must_use]
    pub fn owned(&self) -> Vec<u32> {
        self.owned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Stops the owner cleanly: leaves the live set, stops every consumer, stores a final
    /// checkpoint of each owned partition (when something was applied since the last
    /// one), frees the leases (so successors take over within a round, without waiting
    /// for the leases to expire), releases the partitions in the handler, then returns.
    /// With Redis unreachable it still returns, after about the response timeout per
    /// step; the leases then expire by themselves.
    ///
    /// # Cancel safety
    ///
    /// If the returned future is dropped, the shutdown goes on in the background.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            // A panicked coordinator has nothing left to stop.
            let _ = task.await;
        }
    }
}

impl Drop for OwnerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the coordinator.
pub(crate) fn spawn(inner: Arc<Inner>, handler: Arc<dyn PartitionHandler>) -> OwnerHandle {
    let owned = Arc::new(Mutex::new(BTreeSet::new()));
    let shutdown = CancellationToken::new();
    // Down until its first round succeeds.
    LogCounters::add(&inner.counters.owners_down, 1);
    let coordinator = Coordinator {
        backoff: Backoff::new(&inner.backplane),
        node: inner.backplane.node_id.clone(),
        inner,
        handler,
        owned: BTreeMap::new(),
        published: Arc::clone(&owned),
        published_count: 0,
        cooldown: BTreeMap::new(),
        conn: None,
        retry_at: None,
        up: false,
        last_warn: None,
    };
    let task = tokio::spawn(coordinator.run(shutdown.clone()));
    OwnerHandle {
        owned,
        shutdown,
        task: Some(task),
    }
}

/// A running consumer; dropping it aborts the task.
struct Consumer {
    stop: CancellationToken,
    /// `None` once waited for.
    task: Option<JoinHandle<Exit>>,
}

impl Consumer {
    fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the task, at most `limit` (then aborts it); `None` if it was aborted,
    /// panicked, or did not stop in time.
    async fn finish(mut self, limit: Duration) -> Option<Exit> {
        let mut task = self.task.take()?;
        match tokio::time::timeout(limit, &mut task).await {
            Ok(Ok(exit)) => Some(exit),
            Ok(Err(_)) => None,
            Err(_) => {
                task.abort();
                None
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// An owned partition.
struct Held {
    /// The lease's value: `node:token`.
    lease: String,
    /// When the last successful renewal was sent, plus `lease_ttl`: the lease lives at
    /// least until then. Shared with the consumer, which applies nothing past it.
    valid_until: ValidUntil,
    consumer: Consumer,
}

struct Coordinator {
    inner: Arc<Inner>,
    handler: Arc<dyn PartitionHandler>,
    node: String,
    owned: BTreeMap<u32, Held>,
    /// What [`OwnerHandle::owned`] reads.
    published: Arc<Mutex<BTreeSet<u32>>>,
    /// How many partitions this coordinator counts in the `owned` gauge.
    published_count: u64,
    /// Partitions not to try before the given time (their checkpoint was refused).
    cooldown: BTreeMap<u32, Instant>,
    conn: Option<(MultiplexedConnection, Shas)>,
    backoff: Backoff,
    /// No connection attempt before this time (backoff).
    retry_at: Option<Instant>,
    /// Whether the last round succeeded (not counted in `owners_down`).
    up: bool,
    last_warn: Option<Instant>,
}

/// How often a Redis outage is logged as a warning (the first failure always is).
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Drop for Coordinator {
    fn drop(&mut self) {
        // Aborted or finished: this owner no longer counts.
        let c = &self.inner.counters;
        LogCounters::sub(&c.owned, self.published_count);
        if !self.up {
            LogCounters::sub(&c.owners_down, 1);
        }
    }
}

impl Coordinator {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.config.renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.round().await;
        }
        self.shut_down().await;
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.inner.config.lease_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// One round: reap stopped consumers, then (with Redis) heartbeat, renew, hand over,
    /// acquire; without Redis, drop the leases that may have expired.
    async fn round(&mut self) {
        let started = Instant::now();
        self.reap().await;
        // Leases that may have expired since the last round are given up first: the
        // renewals below must finish before the earliest remaining one expires.
        self.expire_local();
        if let Some((mut conn, shas)) = self.connection().await {
            match self.redis_round(&mut conn, &shas, started).await {
                Ok(()) => {
                    self.conn = Some((conn, shas));
                    self.succeeded();
                }
                Err(e) => self.failed(&e),
            }
        }
        self.expire_local();
        self.publish();
    }

    /// The connection, connecting when there is none and the backoff allows it.
    async fn connection(&mut self) -> Option<(MultiplexedConnection, Shas)> {
        if let Some(c) = self.conn.take() {
            return Some(c);
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let config = link::connection_config(&self.inner.backplane);
        match link::connect(&self.inner.client, config, scripts::ALL).await {
            Ok((conn, shas)) => Some((conn, Shas(shas))),
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    fn succeeded(&mut self) {
        self.backoff.succeed();
        self.retry_at = None;
        if !self.up {
            self.up = true;
            LogCounters::sub(&self.inner.counters.owners_down, 1);
            if self.last_warn.is_some() {
                tracing::info!(node = %self.node, "stream log owner: Redis reachable again");
                self.last_warn = None;
            }
        }
    }

    fn failed(&mut self, e: &BackplaneError) {
        self.conn = None;
        if self.up {
            self.up = false;
            LogCounters::add(&self.inner.counters.owners_down, 1);
        }
        let (wait, _open) = self.backoff.fail();
        self.retry_at = Some(Instant::now() + wait);
        if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            self.last_warn = Some(Instant::now());
            tracing::warn!(
                node = %self.node, error = %e, retry_in = ?wait, owned = self.owned.len(),
                "stream log owner: Redis unreachable (leases not renewed within lease_ttl are given up)"
            );
        }
    }

    /// Handles the consumers that stopped by themselves: fenced, or panicked.
    async fn reap(&mut self) {
        let finished: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, h)| h.consumer.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for p in finished {
            let Some(held) = self.owned.remove(&p) else {
                continue;
            };
            // The task is finished: this does not wait.
            let exit = held.consumer.finish(Duration::ZERO).await;
            if exit == Some(Exit::Fenced) {
                tracing::warn!(partition = p, node = %self.node, "stream log: fenced (a successor acquired the partition); released");
            } else {
                // A panic in the handler: not again at once.
                let cool = self.inner.config.renew_every.saturating_mul(10);
                self.cooldown.insert(p, Instant::now() + cool);
                tracing::error!(partition = p, node = %self.node, retry_in = ?cool, "stream log: the partition's consumer stopped unexpectedly (a panic in the handler?); released");
            }
            // Our lease, if it still is (a conditional delete): freed at the next round
            // of whoever should own it. Left to expire if Redis is unreachable.
            if let Some((conn, shas)) = &self.conn {
                self.spawn_release(conn, shas, p, held.lease.clone());
            }
            self.release(p);
        }
    }

    /// Frees a lease in the background on `conn` (best effort, off the main path: a
    /// lease not freed expires by itself).
    fn spawn_release(&self, conn: &MultiplexedConnection, shas: &Shas, p: u32, lease: String) {
        let mut cmd = shas.call(Script::Release, &[&self.inner.keys.lease(p)]);
        cmd.arg(lease);
        let mut conn = conn.clone();
        tokio::spawn(async move {
            let _: redis::RedisResult<i64> = scripts::query(&mut conn, &cmd).await;
        });
    }

    fn release(&self, p: u32) {
        self.handler.release(p);
        LogCounters::add(&self.inner.counters.releases, 1);
    }

    /// Gives up a partition whose lease is lost: stops its consumer at once (no
    /// checkpoint: the state may already be a successor's).
    fn lose(&mut self, p: u32, why: &str) {
        if let Some(held) = self.owned.remove(&p) {
            drop(held.consumer);
            tracing::warn!(partition = p, node = %self.node, "stream log: lease lost ({why}); partition released");
            LogCounters::add(&self.inner.counters.leases_lost, 1);
            self.release(p);
        }
    }

    /// Drops the partitions whose lease may have expired in Redis (not renewed for
    /// `lease_ttl` by this node's clock).
    fn expire_local(&mut self) {
        let now = Instant::now();
        let stale: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, h)| now >= h.valid_until.get())
            .map(|(p, _)| *p)
            .collect();
        for p in stale {
            self.lose(p, "not renewed within lease_ttl");
        }
    }

    /// Makes the owned set visible to [`OwnerHandle::owned`] and the `owned` gauge.
    fn publish(&mut self) {
        let now: BTreeSet<u32> = self.owned.keys().copied().collect();
        let count = u64::try_from(now.len()).unwrap_or(u64::MAX);
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
        let c = &self.inner.counters;
        if count > self.published_count {
            LogCounters::add(&c.owned, count - self.published_count);
        } else {
            LogCounters::sub(&c.owned, self.published_count - count);
        }
        self.published_count = count;
    }

    async fn redis_round(
        &mut self,
        conn: &mut MultiplexedConnection,
        shas: &Shas,
        started: Instant,
    ) -> Result<(), BackplaneError> {
        // 1.-3. Heartbeat and renewals, given up (as failed) when a lease may expire
        // before they are done: a wedged Redis must not keep this node applying past its
        // leases. Cancel safe: nothing changes before the replies are in.
        let deadline = self.owned.values().map(|h| h.valid_until.get()).min();
        let renewing = self.heartbeat_and_renew(conn, shas, started);
        let desired = match deadline {
            None => renewing.await?,
            Some(d) => tokio::time::timeout_at(d.into(), renewing)
                .await
                .map_err(|_| BackplaneError::Timeout {
                    after: d.saturating_duration_since(started),
                })??,
        };
        // 4. Hand over what another node should own.
        let leaving: Vec<u32> = self
            .owned
            .keys()
            .filter(|p| !desired.contains(p))
            .copied()
            .collect();
        if !leaving.is_empty() {
            self.hand_over(conn, shas, &leaving).await?;
        }
        // 5. Acquire what this node should own.
        let now = Instant::now();
        self.cooldown.retain(|_, until| *until > now);
        let wanted: Vec<u32> = desired
            .iter()
            .filter(|p| !self.owned.contains_key(p) && !self.cooldown.contains_key(p))
            .copied()
            .collect();
        for p in wanted {
            self.acquire(conn, shas, p).await?;
        }
        Ok(())
    }

    /// Heartbeats (steps 1 and 2) and renews the leases held (step 3); returns the
    /// partitions this node should own.
    async fn heartbeat_and_renew(
        &mut self,
        conn: &mut MultiplexedConnection,
        shas: &Shas,
        started: Instant,
    ) -> Result<BTreeSet<u32>, BackplaneError> {
        let keys = &self.inner.keys;
        let ttl = self.ttl_ms();
        // 1. Heartbeat.
        let mut cmd = shas.call(Script::Heartbeat, &[&keys.nodes(), &keys.partitions()]);
        cmd.arg(&self.node)
            .arg(ttl)
            .arg(self.inner.config.partitions);
        let live: Vec<String> = scripts::query(conn, &cmd).await?;
        // 2. What this node should own.
        let desired = super::hash::desired(&self.node, self.inner.config.partitions, &live);
        // 3. Renew.
        if !self.owned.is_empty() {
            let mut pipe = redis::pipe();
            let order: Vec<u32> = self.owned.keys().copied().collect();
            for (p, held) in &self.owned {
                pipe.add_command(shas.call(Script::Renew, &[&keys.lease(*p)]))
                    .arg(&held.lease)
                    .arg(ttl);
            }
            let renewed: Vec<i64> = scripts::query_pipe(conn, &pipe).await?;
            for (p, ok) in order.into_iter().zip(renewed) {
                if ok == 1 {
                    if let Some(held) = self.owned.get(&p) {
                        held.valid_until.set(started + self.inner.config.lease_ttl);
                    }
                } else {
                    self.lose(p, "gone or taken in Redis");
                }
            }
        }
        Ok(desired)
    }

    /// Stops the consumers of `partitions` (each stores a final checkpoint), frees their
    /// leases, releases them in the handler. Every partition is released even when Redis
    /// fails midway; the first error is returned.
    async fn hand_over(
        &mut self,
        conn: &mut MultiplexedConnection,
        shas: &Shas,
        partitions: &[u32],
    ) -> Result<(), BackplaneError> {
        let leaving: Vec<(u32, Held)> = partitions
            .iter()
            .filter_map(|p| self.owned.remove(p).map(|h| (*p, h)))
            .collect();
        self.publish();
        for (_, held) in &leaving {
            held.consumer.stop.cancel();
        }
        let limit = self.stop_limit();
        let mut first_error = None;
        for (p, held) in leaving {
            let exit = held.consumer.finish(limit).await;
            if first_error.is_none() {
                let mut cmd = shas.call(Script::Release, &[&self.inner.keys.lease(p)]);
                cmd.arg(&held.lease);
                if let Err(e) = scripts::query::<i64>(conn, &cmd).await {
                    first_error = Some(BackplaneError::from(e));
                }
            }
            tracing::info!(partition = p, node = %self.node, final_checkpoint = matches!(exit, Some(Exit::Stopped { checkpointed: true })), "stream log: partition handed over");
            self.release(p);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// How long a consumer may take to stop cleanly (store its final checkpoint).
    fn stop_limit(&self) -> Duration {
        self.inner.backplane.response_timeout.saturating_mul(2) + Duration::from_millis(100)
    }

    /// Tries to acquire partition `p`.
    async fn acquire(
        &mut self,
        conn: &mut MultiplexedConnection,
        shas: &Shas,
        p: u32,
    ) -> Result<(), BackplaneError> {
        let keys = &self.inner.keys;
        let sent = Instant::now();
        let mut cmd = shas.call(Script::Acquire, &[&keys.lease(p), &keys.fence(p)]);
        cmd.arg(&self.node).arg(self.ttl_ms());
        let token: u64 = scripts::query(conn, &cmd).await?;
        if token == 0 {
            return Ok(());
        }
        let lease = format!("{}:{token}", self.node);
        let ckpt_key = keys.ckpt(p);
        let fields = redis::cmd("HGETALL").arg(&ckpt_key).query_async(conn).await;
        let restored = match fields {
            Ok(fields) => reply::checkpoint(fields, &ckpt_key),
            Err(e) => {
                // The lease is ours but unusable now: free it if Redis lets us.
                self.spawn_release(conn, shas, p, lease);
                return Err(e.into());
            }
        };
        let accepted = match &restored {
            Ok(ckpt) => self
                .handler
                .acquire(p, ckpt.as_ref().map(|c| c.data.as_ref())),
            Err(e) => Err(e.to_string()),
        };
        if let Err(reason) = accepted {
            let cool = self.inner.config.renew_every.saturating_mul(10);
            tracing::error!(partition = p, node = %self.node, %reason, retry_in = ?cool, "stream log: checkpoint cannot be restored; lease freed");
            LogCounters::add(&self.inner.counters.restore_failures, 1);
            self.cooldown.insert(p, Instant::now() + cool);
            let mut cmd = shas.call(Script::Release, &[&keys.lease(p)]);
            cmd.arg(&lease);
            scripts::query::<i64>(conn, &cmd).await?;
            return Ok(());
        }
        let offset = restored
            .ok()
            .flatten()
            .map_or_else(|| "0-0".to_owned(), |c| c.offset);
        tracing::debug!(partition = p, node = %self.node, token, %offset, "stream log: partition acquired");
        let stop = CancellationToken::new();
        let valid_until = ValidUntil::new(sent + self.inner.config.lease_ttl);
        let task = tokio::spawn(consumer::run(
            Arc::clone(&self.inner),
            Arc::clone(&self.handler),
            p,
            token,
            valid_until.clone(),
            offset,
            stop.clone(),
        ));
        self.owned.insert(
            p,
            Held {
                lease,
                valid_until,
                consumer: Consumer {
                    stop,
                    task: Some(task),
                },
            },
        );
        LogCounters::add(&self.inner.counters.takeovers, 1);
        self.publish();
        Ok(())
    }

    /// Leaves the live set, stops every consumer cleanly, frees the leases, releases the
    /// partitions.
    async fn shut_down(mut self) {
        self.reap().await;
        // A partition whose lease may have expired gets no final checkpoint.
        self.expire_local();
        let conn = match self.conn.take() {
            Some(c) => Some(c),
            None => {
                let config = link::connection_config(&self.inner.backplane);
                link::connect(&self.inner.client, config, scripts::ALL)
                    .await
                    .ok()
                    .map(|(c, s)| (c, Shas(s)))
            }
        };
        if let Some((mut conn, _)) = conn.clone() {
            let r: redis::RedisResult<i64> = redis::cmd("ZREM")
                .arg(self.inner.keys.nodes())
                .arg(&self.node)
                .query_async(&mut conn)
                .await;
            if let Err(e) = r {
                tracing::warn!(node = %self.node, error = %e, "stream log owner: could not leave the live set");
            }
        }
        let all: Vec<u32> = self.owned.keys().copied().collect();
        match conn {
            Some((mut conn, shas)) => {
                if let Err(e) = self.hand_over(&mut conn, &shas, &all).await {
                    tracing::warn!(node = %self.node, error = %e, "stream log owner: leases not all freed at shutdown (they expire by themselves)");
                }
            }
            None => {
                // No Redis: no final checkpoints, the leases expire by themselves.
                let leaving: Vec<(u32, Held)> =
                    std::mem::take(&mut self.owned).into_iter().collect();
                for (p, held) in leaving {
                    drop(held.consumer);
                    self.release(p);
                }
            }
        }
        self.publish();
        tracing::debug!(node = %self.node, "stream log owner stopped");
    }
}
