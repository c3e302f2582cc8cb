//! The durable, partitioned ingest log on Redis Streams ([`StreamLog`]) and the
//! ownership of its partitions ([`OwnerHandle`]): the keys, scripts and algorithm are
//! documented on [`StreamLog`].

mod config;
mod consumer;
mod hash;
mod owner;
mod reply;
mod scripts;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;

pub use config::LogConfig;
pub use owner::OwnerHandle;

use crate::{BackplaneConfig, BackplaneError, link};

/// The field of a stream entry that holds its payload.
pub(crate) const PAYLOAD_FIELD: &str = "e";

/// What an owner calls to apply a partition's entries; implemented by the user of the
/// log (the engine).
///
/// The calls for one partition never overlap: `acquire`, then `apply` and `checkpoint`
/// from the partition's consumer, then `release`. Calls for different partitions may run
/// at the same time, on different tasks. Every method is synchronous and must be quick
/// (it runs on the owner's tasks); none may panic.
pub trait PartitionHandler: Send + Sync + 'static {
    /// This node now owns partition `p`. `checkpoint` is the stored checkpoint's data
    /// (`None`: no checkpoint, start empty); the entries after its offset follow.
    ///
    /// # Errors
    ///
    /// A reason when the data cannot be restored: the owner logs it (`tracing::error`),
    /// counts it ([`LogStats::restore_failures`]), frees the lease and does not try that
    /// partition again for `10 × renew_every`.
    fn acquire(&self, p: u32, checkpoint: Option<&[u8]>) -> Result<(), String>;

    /// Applies one entry of partition `p`, in stream order, exactly once per ownership.
    /// After a takeover the entries after the last checkpoint come again (to a state
    /// restored from that checkpoint); side effects outside the state must be deduped by
    /// the handler.
    ///
    /// `id` is the stream entry id. Returns the late events of the entry, encoded, if
    /// any: the owner appends them to the partition's late stream under the same id, so
    /// a replay adds nothing twice.
    fn apply(&self, p: u32, id: &str, payload: &[u8]) -> Option<Vec<u8>>;

    /// A checkpoint of partition `p` now: the bytes to store. The owner stores them with
    /// the id of the last entry it applied.
    fn checkpoint(&self, p: u32) -> Vec<u8>;

    /// Partition `p` is no longer owned here (lease lost, fenced, handed over, shut
    /// down, restore refused): drop its state.
    fn release(&self, p: u32);
}

/// A partition's checkpoint as stored in Redis (see [`StreamLog::checkpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// What [`PartitionHandler::checkpoint`] returned.
    pub data: Bytes,
    /// The id of the last entry applied into `data` (`0-0` before any): a new owner
    /// reads from the entry after it.
    pub offset: String,
    /// The fencing token of the ownership that stored it.
    pub token: u64,
}

/// Counters of a [`StreamLog`] and the owners it spawned (see [`StreamLog::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Whether the last append (if any) and each owner's last round (if any) reached
    /// Redis.
    pub up: bool,
    /// Partitions owned now.
    pub owned: u32,
    /// Entries appended (acknowledged by Redis).
    pub appended_entries: u64,
    /// Appends that failed.
    pub append_errors: u64,
    /// Entries given to [`PartitionHandler::apply`].
    pub applied_entries: u64,
    /// Checkpoints stored.
    pub checkpoints: u64,
    /// Size of the last checkpoint stored, in bytes.
    pub last_checkpoint_bytes: u64,
    /// How long the last checkpoint took to store (the Redis call), in µs.
    pub last_checkpoint_micros: u64,
    /// Checkpoints refused because a successor had acquired the partition.
    pub fenced: u64,
    /// Partitions acquired (the handler accepted the checkpoint).
    pub takeovers: u64,
    /// Partitions released ([`PartitionHandler::release`] calls), for any reason.
    pub releases: u64,
    /// Leases found gone or taken, or not renewed in time.
    pub leases_lost: u64,
    /// Checkpoints the handler could not restore, or that were malformed.
    pub restore_failures: u64,
    /// Late entries appended to late streams (not counting replays Redis refused).
    pub late_entries: u64,
    /// Log entries skipped because they had no payload field.
    pub skipped_entries: u64,
}

/// Counters shared by a log's clones and owners.
#[derive(Debug, Default)]
pub(crate) struct LogCounters {
    pub(crate) owned: AtomicU64,
    pub(crate) appended_entries: AtomicU64,
    pub(crate) append_errors: AtomicU64,
    pub(crate) applied_entries: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) last_checkpoint_bytes: AtomicU64,
    pub(crate) last_checkpoint_micros: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) takeovers: AtomicU64,
    pub(crate) releases: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) restore_failures: AtomicU64,
    pub(crate) late_entries: AtomicU64,
    pub(crate) skipped_entries: AtomicU64,
    /// Owners whose last round failed (or that have not finished one yet).
    pub(crate) owners_down: AtomicU64,
    pub(crate) append_used: AtomicBool,
    pub(crate) append_up: AtomicBool,
}

impl LogCounters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(c: &AtomicU64, n: u64) {
        // Saturating: a gauge never wraps below zero.
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_sub(n))
        });
    }

    fn stats(&self) -> LogStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let append_ok =
            !self.append_used.load(Ordering::Acquire) || self.append_up.load(Ordering::Acquire);
        LogStats {
            up: append_ok && self.owners_down.load(Ordering::Acquire) == 0,
            owned: u32::try_from(g(&self.owned)).unwrap_or(u32::MAX),
            appended_entries: g(&self.appended_entries),
            append_errors: g(&self.append_errors),
            applied_entries: g(&self.applied_entries),
            checkpoints: g(&self.checkpoints),
            last_checkpoint_bytes: g(&self.last_checkpoint_bytes),
            last_checkpoint_micros: g(&self.last_checkpoint_micros),
            fenced: g(&self.fenced),
            takeovers: g(&self.takeovers),
            releases: g(&self.releases),
            leases_lost: g(&self.leases_lost),
            restore_failures: g(&self.restore_failures),
            late_entries: g(&self.late_entries),
            skipped_entries: g(&self.skipped_entries),
        }
    }
}

/// The names of the log's keys.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn of(&self, kind: &str, p: u32) -> String {
        format!("{}:{kind}:{{{p}}}", self.prefix)
    }
    pub(crate) fn log(&self, p: u32) -> String {
        self.of("log", p)
    }
    pub(crate) fn late(&self, p: u32) -> String {
        self.of("late", p)
    }
    pub(crate) fn lease(&self, p: u32) -> String {
        self.of("lease", p)
    }
    pub(crate) fn fence(&self, p: u32) -> String {
        self.of("fence", p)
    }
    pub(crate) fn ckpt(&self, p: u32) -> String {
        self.of("ckpt", p)
    }
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// The number of partitions of the log in Redis: set by the first node, checked by
    /// every other (a node with another number would put metrics in other partitions).
    pub(crate) fn partitions(&self) -> String {
        format!("{}:partitions", self.prefix)
    }
}

/// What a log's clones and owners share.
pub(crate) struct Inner {
    pub(crate) client: redis::Client,
    pub(crate) backplane: BackplaneConfig,
    pub(crate) config: LogConfig,
    pub(crate) keys: Keys,
    pub(crate) counters: LogCounters,
    /// The connection appends and reads share, with a generation number (so that a
    /// failed caller drops only the connection it failed on).
    shared: Mutex<(u64, Option<MultiplexedConnection>)>,
}

/// A durable, partitioned ingest log on Redis Streams, and the ownership of its
/// partitions: each partition is owned by exactly one node at a time, which applies its
/// entries in order and checkpoints its state.
///
/// Made by [`Backplane::stream_log`](crate::Backplane::stream_log). Cheap to clone:
/// clones share one connection for appends and reads, and the counters.
///
/// The log knows nothing of what it carries: payloads are opaque bytes, and so is the
/// state an owner builds from them (its [`PartitionHandler`] decides both).
///
/// # Writing
///
/// [`StreamLog::append`] adds entries to the partitions' streams in one pipeline and
/// returns once Redis acknowledged every one: an entry is then as durable as Redis's own
/// persistence makes it (with `appendonly yes` and `appendfsync always` it survives a
/// crash of Redis). Which partition an entry goes to is the caller's choice;
/// [`StreamLog::partition_of`] is the stable hash meant for it.
///
/// # Owning
///
/// [`StreamLog::spawn_owner`] makes this node a candidate owner. Every
/// [`renew_every`](LogConfig::renew_every) its coordinator:
///
/// 1. heartbeats: the node stays in the live set for [`lease_ttl`](LogConfig::lease_ttl)
///    (Redis's clock), and reads the live nodes;
/// 2. computes the partitions this node should own: rendezvous hashing over the live
///    nodes (for each partition the node with the largest `fmix64(FNV-1a 64(node id
///    bytes ++ [0xff] ++ partition as 4 little-endian bytes))` wins, MurmurHash3's
///    finalizer after FNV; on equal weights the smallest id). Every node computes the
///    same from the same live set, and a node joining or
///    leaving moves only the partitions it takes or had;
/// 3. renews the leases it holds; a lease found gone or taken is lost, and so is one not
///    renewed for `lease_ttl` by the node's own monotonic clock (Redis unreachable: another
///    node may own the partition by now). A lost partition's consumer stops at once and
///    the handler releases it;
/// 4. hands over the partitions it owns but should not (a node joined): stops the
///    consumer, stores a final checkpoint, frees the lease, the handler releases it;
/// 5. tries to acquire the partitions it should own: a free lease gives a new fencing
///    token; the handler gets the stored checkpoint ([`PartitionHandler::acquire`]); a
///    consumer starts from the checkpoint's offset.
///
/// Each owned partition has a consumer task with a connection of its own: it reads the
/// stream in order (`XREAD BLOCK`), gives each entry to [`PartitionHandler::apply`],
/// appends the late events the handler returns to the partition's late stream, and every
/// [`checkpoint_every`](LogConfig::checkpoint_every) stores the handler's checkpoint with
/// the id of the last entry applied. The checkpoint is stored only if the consumer's
/// fencing token is still the partition's newest, and the stream is trimmed behind it.
///
/// # Guarantees
///
/// - **No entry lost, none applied twice into one state.** A new owner starts from the
///   last stored checkpoint (state and offset always agree: a checkpoint is taken between
///   entries) and replays everything after it. The stream is trimmed only behind a stored
///   checkpoint. Side effects outside the state (what the engine shows, sends, or counts
///   elsewhere) may see a replayed entry again after a takeover: the handler dedups them.
/// - **One writer per partition.** A paused or partitioned old owner cannot overwrite a
///   successor's checkpoint: each acquisition increments the partition's fencing token,
///   and a checkpoint with an older token is refused (the old owner then releases).
/// - **Late entries once.** A late entry takes the id of the log entry that produced it;
///   Redis refuses an id not above the stream's last, so a replay adds nothing twice.
/// - **Failover time.** A crashed owner's partitions move after its lease and its
///   membership expire (`lease_ttl`), plus up to one round (`renew_every`). A node that
///   shuts down ([`OwnerHandle::shutdown`]) hands its partitions over within a round.
///
/// # Limits
///
/// - An owner cut off from Redis keeps its partitions until `lease_ttl` has passed on
///   its own clock since its last renewal was sent; a successor may acquire them when
///   the lease expires in Redis, about then. In that short overlap both may apply
///   entries: the old owner's checkpoints are refused and its late entries are the same
///   as the successor's, but anything else it does is for the handler to dedup.
/// - A failed [`append`](StreamLog::append) may have appended part of its entries; an
///   append retried after a failure can add entries twice (with new ids).
/// - A partition's stream is trimmed only by its owner's checkpoints: with no owner
///   running, appended entries stay in Redis.
/// - With few partitions per node the spread is uneven by chance (rendezvous hashing
///   evens out over many partitions): 8 partitions on 3 nodes may give 4, 3 and 1.
///
/// # Redis keys
///
/// `P` is the backplane's [`prefix`](crate::BackplaneConfig::prefix); `{p}` is the
/// partition number in braces (a Redis Cluster hash tag: a partition's keys share a
/// slot, so one script can touch them all).
///
/// | key | type | holds |
/// |---|---|---|
/// | `P:log:{p}` | stream | the partition's entries, field `e` = payload |
/// | `P:late:{p}` | stream | late events, field `e`, each under the id of the entry that produced it; capped with `MAXLEN ~` [`late_stream_len`](LogConfig::late_stream_len) |
/// | `P:lease:{p}` | string | `node_id:token`, expiring after `lease_ttl` |
/// | `P:fence:{p}` | integer | the fencing token, incremented at each acquisition |
/// | `P:ckpt:{p}` | hash | the checkpoint: `data`, `offset` (last entry applied, `0-0` before any), `token`, `at_ms` (Redis time) |
/// | `P:nodes` | sorted set | live nodes, scored by the time (ms, Redis clock) their membership expires |
/// | `P:partitions` | string | the log's number of partitions, set by the first node; a node configured with another number is refused (its appends fail with [`BackplaneError::InvalidConfig`] naming `partitions`, its owner takes nothing) |
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use rtdash_redis::{Backplane, BackplaneConfig, LogConfig, PartitionHandler};
///
/// struct Counter;
///
/// impl PartitionHandler for Counter {
///     fn acquire(&self, _p: u32, _checkpoint: Option<&[u8]>) -> Result<(), String> { Ok(()) }
///     fn apply(&self, _p: u32, _id: &str, _payload: &[u8]) -> Option<Vec<u8>> { None }
///     fn checkpoint(&self, _p: u32) -> Vec<u8> { Vec::new() }
///     fn release(&self, _p: u32) {}
/// }
///
/// # async fn demo() -> Result<(), rtdash_redis::BackplaneError> {
/// let backplane = Backplane::new("redis://127.0.0.1:6379", BackplaneConfig::new("node-a"))?;
/// let log = backplane.stream_log(LogConfig::default())?;
/// let p = log.partition_of("cpu.load");
/// log.append(&[(p, Bytes::from_static(b"an event"))]).await?;
/// let owner = log.spawn_owner(Arc::new(Counter));
/// // ... serve ...
/// owner.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StreamLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLog")
            .field("node_id", &self.inner.backplane.node_id)
            .field("prefix", &self.inner.backplane.prefix)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl StreamLog {
    /// A log with a validated `config`.
    pub(crate) fn new(
        client: redis::Client,
        backplane: BackplaneConfig,
        config: LogConfig,
    ) -> Result<Self, BackplaneError> {
        config.validate()?;
        let keys = Keys {
            prefix: backplane.prefix.clone(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                backplane,
                config,
                keys,
                counters: LogCounters::default(),
                shared: Mutex::new((0, None)),
            }),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// The partition `metric` belongs to: FNV-1a 64 (offset basis `0xcbf29ce484222325`,
    /// prime `0x100000001b3`) of its UTF-8 bytes, mixed by MurmurHash3's `fmix64`, modulo
    /// [`partitions`](LogConfig::partitions). The same in every process and every
    /// version of this crate.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_redis::{Backplane, BackplaneConfig, LogConfig};
    ///
    /// let backplane = Backplane::new("redis://127.0.0.1", BackplaneConfig::new("a")).unwrap();
    /// let log = backplane.stream_log(LogConfig::default().with_partitions(8)).unwrap();
    /// assert_eq!(log.partition_of("foobar"), 3); // fmix64(FNV-1a 64) = 0x2c22194922d1672b
    /// assert_eq!(log.partition_of("a"), 3); // 0x82a2a958a9bece5b
    /// ```
    #[must_use]
    pub fn partition_of(&self, metric: &str) -> u32 {
        hash::partition_of(metric, self.inner.config.partitions)
    }

    /// The stream key of partition `p`: `<prefix>:log:{<p>}` (braces included), e.g.
    /// `rtdash:log:{3}`.
    #[must_use]
    pub fn stream_key(&self, p: u32) -> String {
        self.inner.keys.log(p)
    }

    /// The late stream key of partition `p`: `<prefix>:late:{<p>}`.
    #[must_use]
    pub fn late_stream_key(&self, p: u32) -> String {
        self.inner.keys.late(p)
    }

    fn check_partition(&self, p: u32) -> Result<(), BackplaneError> {
        let partitions = self.inner.config.partitions;
        if p < partitions {
            Ok(())
        } else {
            Err(BackplaneError::InvalidPartition {
                partition: p,
                partitions,
            })
        }
    }

    /// Appends one entry per `(partition, payload)`, in one pipeline on the log's shared
    /// connection, and resolves once Redis acknowledged every one (each is then as
    /// durable as Redis's persistence settings make it). Entries of one partition keep
    /// their order within a call; concurrent calls pipeline on the same connection, in
    /// no particular order with each other.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidPartition`] (nothing appended) when a partition is out
    /// of range. [`BackplaneError::Redis`] or [`BackplaneError::Timeout`] when Redis is
    /// unreachable or slow (within about twice
    /// [`response_timeout`](crate::BackplaneConfig::response_timeout)): some of the
    /// entries may have been appended; retrying may append those again (the handler
    /// dedups). The next call reconnects.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped midway, some of the entries may have been appended.
    pub async fn append(&self, entries: &[(u32, Bytes)]) -> Result<(), BackplaneError> {
        for (p, _) in entries {
            self.check_partition(*p)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (p, payload) in entries {
            pipe.cmd("XADD")
                .arg(self.inner.keys.log(*p))
                .arg("*")
                .arg(PAYLOAD_FIELD)
                .arg(payload.as_ref())
                .ignore();
        }
        let c = &self.inner.counters;
        c.append_used.store(true, Ordering::Release);
        let result = self
            .shared(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await;
        match &result {
            Ok(()) => {
                c.append_up.store(true, Ordering::Release);
                let n = u64::try_from(entries.len()).unwrap_or(u64::MAX);
                LogCounters::add(&c.appended_entries, n);
            }
            Err(_) => {
                c.append_up.store(false, Ordering::Release);
                LogCounters::add(&c.append_errors, 1);
            }
        }
        result
    }

    /// Starts this node (the backplane's [`node_id`](crate::BackplaneConfig::node_id))
    /// as a candidate owner of the partitions: membership heartbeat, leases, one consumer
    /// per owned partition calling `handler`. Runs until the handle is shut down
    /// ([`OwnerHandle::shutdown`]: hands the partitions over at once) or dropped (like a
    /// crash: the leases expire by themselves).
    ///
    /// Run one owner per node id: two owners of one id would share its leases.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use]
    pub fn spawn_owner(&self, handler: Arc<dyn PartitionHandler>) -> OwnerHandle {
        owner::spawn(Arc::clone(&self.inner), handler)
    }

    /// The stored checkpoint of partition `p`, `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidPartition`]; [`BackplaneError::Redis`] or
    /// [`BackplaneError::Timeout`]; [`BackplaneError::Protocol`] when the stored
    /// checkpoint is malformed (a field missing or unreadable).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (it only reads).
    pub async fn checkpoint(&self, p: u32) -> Result<Option<StoredCheckpoint>, BackplaneError> {
        self.check_partition(p)?;
        let key = self.inner.keys.ckpt(p);
        let cmd = redis::cmd("HGETALL").arg(&key).clone();
        let fields: std::collections::HashMap<String, Vec<u8>> = self
            .shared(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await?;
        reply::checkpoint(fields, &key)
    }

    /// Entries of partition `p`'s late stream after `after` (exclusive; `"0-0"` for all),
    /// at most `count`, oldest first: `(entry id, payload)`. Page through the stream by
    /// passing the last id returned. Entries without a payload field (not written by
    /// this crate) are left out.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidPartition`]; [`BackplaneError::InvalidArgument`] when
    /// `after` is not a stream id (`<ms>-<seq>`); [`BackplaneError::Redis`] or
    /// [`BackplaneError::Timeout`]; [`BackplaneError::Protocol`] on a malformed reply.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (it only reads).
    pub async fn late_entries(
        &self,
        p: u32,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, Bytes)>, BackplaneError> {
        self.check_partition(p)?;
        if !reply::valid_id(after) {
            return Err(BackplaneError::InvalidArgument {
                argument: "after",
                reason: format!("{after:?} is not a stream entry id (<ms>-<seq>, e.g. 0-0)"),
            });
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let cmd = redis::cmd("XRANGE")
            .arg(self.inner.keys.late(p))
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .clone();
        let value: redis::Value = self
            .shared(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await?;
        let mut out = Vec::new();
        for entry in reply::entries(value)? {
            match entry.payload {
                Some(payload) => out.push((entry.id, payload)),
                None => {
                    tracing::warn!(partition = p, id = %entry.id, "late entry without payload: left out");
                }
            }
        }
        Ok(out)
    }

    /// Counters of this log (all its clones) and of the owners it spawned.
    #[must_use]
    pub fn stats(&self) -> LogStats {
        self.inner.counters.stats()
    }

    /// Runs `f` on the shared connection (connecting first if needed), within twice the
    /// response timeout; a failure drops the connection so that the next call
    /// reconnects.
    async fn shared<T, F, Fut>(&self, f: F) -> Result<T, BackplaneError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let timeout = self.inner.backplane.response_timeout;
        let limit = timeout.saturating_mul(2) + Duration::from_millis(100);
        let work = async {
            let (generation, conn) = self.inner.shared_connection().await?;
            f(conn).await.map_err(|e| {
                self.inner.drop_shared(Some(generation));
                BackplaneError::from(e)
            })
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => {
                self.inner.drop_shared(None);
                Err(BackplaneError::Timeout { after: limit })
            }
        }
    }
}

impl Inner {
    fn lock_shared(&self) -> std::sync::MutexGuard<'_, (u64, Option<MultiplexedConnection>)> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shared connection and its generation; connects (without holding the lock,
    /// so callers never queue behind a slow connect) when there is none.
    async fn shared_connection(&self) -> Result<(u64, MultiplexedConnection), BackplaneError> {
        if let (generation, Some(conn)) = &*self.lock_shared() {
            return Ok((*generation, conn.clone()));
        }
        let config = link::connection_config(&self.backplane);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.check_partitions(&mut conn).await?;
        let mut slot = self.lock_shared();
        if let Some(existing) = &slot.1 {
            return Ok((slot.0, existing.clone()));
        }
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(conn.clone());
        Ok((slot.0, conn))
    }

    /// Records this node's number of partitions in Redis when none is, else checks that
    /// it is the same (`SET NX GET`).
    async fn check_partitions(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> Result<(), BackplaneError> {
        let mine = self.config.partitions.to_string();
        let theirs: Option<String> = redis::cmd("SET")
            .arg(self.keys.partitions())
            .arg(&mine)
            .arg("NX")
            .arg("GET")
            .query_async(conn)
            .await?;
        match theirs {
            Some(n) if n != mine => Err(BackplaneError::InvalidConfig {
                field: "partitions",
                reason: format!(
                    "the log in Redis has {n} partitions (`{}`), this node is configured with \
                     {mine}: every node of a cluster must use the same number",
                    self.keys.partitions()
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Forgets the shared connection (only if it is still of `generation`, when given).
    fn drop_shared(&self, generation: Option<u64>) {
        let mut slot = self.lock_shared();
        if generation.is_none_or(|g| g == slot.0) {
            slot.1 = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_a_hash_tag() {
        let keys = Keys {
            prefix: "app".into(),
        };
        assert_eq!(keys.log(3), "app:log:{3}");
        assert_eq!(keys.late(3), "app:late:{3}");
        assert_eq!(keys.lease(3), "app:lease:{3}");
        assert_eq!(keys.fence(3), "app:fence:{3}");
        assert_eq!(keys.ckpt(3), "app:ckpt:{3}");
        assert_eq!(keys.nodes(), "app:nodes");
        assert_eq!(keys.partitions(), "app:partitions");
    }

    #[test]
    fn a_gauge_never_wraps() {
        let c = LogCounters::default();
        LogCounters::add(&c.owned, 2);
        LogCounters::sub(&c.owned, 3);
        assert_eq!(c.stats().owned, 0);
        assert!(c.stats().up);
        c.append_used.store(true, Ordering::Release);
        assert!(!c.stats().up);
    }
}
