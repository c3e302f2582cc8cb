//! A Redis backplane for rtdash: several servers behind a load balancer serve the same
//! dashboards, whichever server computed a value and whichever one a client is connected
//! to.
//!
//! Three parts, any of them in one process:
//!
//! - **Publishing** ([`RedisPublisher`], on aggregator nodes): each frame goes to Redis
//!   in pieces ([`Publication`]). The publisher first drops the pieces that are not newer
//!   than what Redis holds (it reads that from Redis before its first frame on a topic,
//!   so a replay, also by another node, publishes nothing twice); then one Lua script,
//!   atomically, takes the topic's next sequence number, builds the frame once, keeps it
//!   as the newest value of its keys and in the topic's short catch-up log, and publishes
//!   it on the topic's channel.
//! - **Mirroring** ([`Mirror`], on every node that serves clients): a mirrored
//!   [`FrameHub`](rtdash_transport::FrameHub) whose topics follow Redis. The mirror
//!   subscribes a topic's channel only while local clients hold the topic, gives them the
//!   snapshot kept in Redis, then passes each message's bytes through unchanged, in
//!   sequence. A lost message or a reconnection is repaired from the topic's log, or by a
//!   fresh snapshot when the log no longer reaches back; clients never see a gap.
//! - **A durable ingest log** ([`StreamLog`], from [`Backplane::stream_log`]): events
//!   appended to partitioned Redis streams, acknowledged once Redis has them; each
//!   partition owned by one node at a time (leases with fencing tokens, rendezvous
//!   hashing over the live nodes), which applies its entries in order through a
//!   [`PartitionHandler`] and checkpoints its state; a crashed node's partitions move to
//!   the others after a lease time, a leaving node's at once.
//!
//! Redis trouble is survived and shown: every part reconnects with backoff behind a
//! circuit breaker, the mirror probes quiet subscriptions (a wedged one is replaced),
//! marks the values it holds stale once Redis has been gone for a while, and
//! [`Backplane::stats`] reports health, the Redis round trip and the repair counts
//! ([`StreamLog::stats`] the log's).
//! Nothing grows without bound: the publisher keeps the newest value per key and a
//! bounded queue, the mirror's inbox is bounded (an overflow is repaired from the log).
//!
//! `docs/ARCHITECTURE.md` of the rtdash repository lists the keys, channels and
//! scripts, the guarantees and what each failure costs (the log's are on
//! [`StreamLog`]). The `rtdash` facade wires this
//! crate into its engine (feature `redis`).
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::Arc;
//! use rtdash_fanout::HubConfig;
//! use rtdash_redis::{Backplane, BackplaneConfig, BackplaneKey, Part, Publication};
//!
//! #[derive(Clone, PartialEq, Eq, Hash)]
//! struct Widget(String);
//!
//! impl BackplaneKey for Widget {
//!     fn to_name(&self) -> String { self.0.clone() }
//!     fn from_name(name: &str) -> Option<Self> { Some(Widget(name.to_owned())) }
//! }
//!
//! # async fn demo() -> Result<(), rtdash_redis::BackplaneError> {
//! let backplane = Backplane::new("redis://127.0.0.1:6379", BackplaneConfig::new("node-a"))?;
//! // Serve local clients from a mirrored hub...
//! let mirror = backplane.mirror::<Widget>(HubConfig::default());
//! let hub = mirror.hub().clone();
//! mirror.spawn();
//! // ...and publish: Redis numbers the frame and builds it from its pieces.
//! let publisher = backplane.publisher();
//! publisher.publish(Publication {
//!     topic: Arc::from("ops"),
//!     head: r#"{"type":"update","topic":"ops","seq":"#.into(),
//!     mid: r#","items":["#.into(),
//!     tail: "]}".into(),
//!     parts: vec![Part { key: "cpu".into(), version: (1_000, 1), fragment: r#"{"v":41}"#.into() }],
//!     cached: true,
//!     conflate: true,
//!     event_time: None,
//! })?;
//! # drop(hub);
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod link;
mod log;
mod mirror;
mod publisher;
mod scripts;
#[cfg(feature = "test-server")]
pub mod test_server;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use config::BackplaneConfig;
pub use error::BackplaneError;
pub use log::{LogConfig, LogStats, OwnerHandle, PartitionHandler, StoredCheckpoint, StreamLog};
pub use mirror::{BackplaneKey, Mirror, StaleMarker};
pub use publisher::{Part, Publication, RedisPublisher};

use link::Counters;

/// A connection point to one Redis for one node: makes the node's [`RedisPublisher`]
/// and [`Mirror`], and reports on both.
#[derive(Clone)]
pub struct Backplane {
    client: redis::Client,
    config: BackplaneConfig,
    counters: Arc<Counters>,
    url: String,
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backplane")
            .field("url", &self.url)
            .field("node_id", &self.config.node_id)
            .finish_non_exhaustive()
    }
}

impl Backplane {
    /// A backplane on the Redis at `url` (`redis://[:password@]host[:port][/db]`). Does
    /// not connect yet: the publisher and the mirror connect from their own tasks, and
    /// keep trying while Redis is unreachable.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidUrl`] (the message never shows the password);
    /// [`BackplaneError::InvalidConfig`] naming the field out of range.
    pub fn new(url: &str, config: BackplaneConfig) -> Result<Self, BackplaneError> {
        config.validate()?;
        Ok(Self {
            client: link::client(url)?,
            config,
            counters: Arc::new(Counters::default()),
            url: link::redact(url),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &BackplaneConfig {
        &self.config
    }

    /// Starts this node's publisher (its task runs while a handle lives).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[must_use]
    pub fn publisher(&self) -> RedisPublisher {
        RedisPublisher::spawn(
            self.client.clone(),
            self.config.clone(),
            Arc::clone(&self.counters),
        )
    }

    /// This node's mirror, with a mirrored hub of `hub_config`; start it with
    /// [`Mirror::spawn`].
    #[must_use]
    pub fn mirror<K: BackplaneKey>(&self, hub_config: rtdash_fanout::HubConfig) -> Mirror<K> {
        Mirror::new(
            self.client.clone(),
            self.config.clone(),
            hub_config,
            Arc::clone(&self.counters),
        )
    }

    /// The durable, partitioned ingest log on this backplane's Redis, its keys under
    /// the backplane's [`prefix`](BackplaneConfig::prefix); its owners run as this
    /// node ([`node_id`](BackplaneConfig::node_id)). Does not connect yet. See
    /// [`StreamLog`].
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidConfig`] naming the field of `config` out of range.
    pub fn stream_log(&self, config: LogConfig) -> Result<StreamLog, BackplaneError> {
        StreamLog::new(self.client.clone(), self.config.clone(), config)
    }

    /// Health and counters of this node's publisher and mirror.
    #[must_use]
    pub fn stats(&self) -> BackplaneStats {
        self.counters.stats()
    }
}

/// Health and counters of a node's backplane (see [`Backplane::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// Whether the parts this node runs (publisher, mirror) are connected to Redis and
    /// their last check passed.
    pub up: bool,
    /// Whether the reconnection circuit breaker is open.
    pub breaker_open: bool,
    /// Frames published (Redis assigned them a seq).
    pub published: u64,
    /// Publications Redis dropped because nothing in them was newer than what it held.
    pub suppressed: u64,
    /// Widget values absorbed by a newer value of the same topic before they were sent
    /// (only the newest matters).
    pub absorbed: u64,
    /// Publications dropped because too many waited while Redis was unreachable.
    pub dropped: u64,
    /// Pipelines that failed (and were sent again after reconnecting).
    pub publish_errors: u64,
    /// Messages the mirror received.
    pub received: u64,
    /// Messages the mirror already had (dropped).
    pub duplicates: u64,
    /// Gaps the mirror found in a topic's sequence.
    pub gaps: u64,
    /// Catch-ups from a topic's log that applied messages.
    pub catchups: u64,
    /// Snapshots read from Redis (first subscriptions and resynchronisations).
    pub resyncs: u64,
    /// Messages dropped because the mirror's inbox was full (repaired from the log).
    pub inbox_dropped: u64,
    /// Times a connection was lost or could not be made.
    pub reconnects: u64,
    /// Liveness probes that did not come back in time.
    pub probe_failures: u64,
    /// Times the mirror marked its values stale because Redis was unreachable.
    pub stale_marks: u64,
    /// The last Redis round trip measured.
    pub rtt: Duration,
    /// Topic channels the mirror subscribes now.
    pub subscriptions: u64,
}
