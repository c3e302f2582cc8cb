//! [`BackplaneConfig`]: the knobs of the backplane, with safe defaults.

use std::time::Duration;

use crate::BackplaneError;

/// Configuration of a [`Backplane`](crate::Backplane).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash_redis::BackplaneConfig;
///
/// let config = BackplaneConfig::new("node-a")
///     .with_prefix("myapp")
///     .with_log_len(5_000)
///     .with_stale_after(Duration::from_secs(2));
/// assert_eq!(config.node_id, "node-a");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackplaneConfig {
    /// This node's name, unique in the cluster: it names the node's probe channel.
    /// Default: `node-<random>`.
    pub node_id: String,
    /// Prefix of every key and channel (default `rtdash`), so that several clusters can
    /// share one Redis.
    pub prefix: String,
    /// How many recent messages each topic keeps in Redis for catch-up after a lost
    /// message or a short disconnect (default 1,000; beside the newest value of each
    /// key). A node that missed more gets a fresh snapshot instead.
    pub log_len: usize,
    /// Most keyless publications (alerts, dashboard notices, retirements) a publisher
    /// holds while Redis is slow or down (default 10,000); past it the oldest are dropped
    /// and counted. Widget values are never queued: the newest per widget replaces the
    /// older one, so what waits is bounded by the number of widgets.
    pub max_pending: usize,
    /// Most messages received from Redis that wait to be applied (default 10,000). Past
    /// it messages are dropped, counted, and recovered from the topic's log.
    pub max_inbox: usize,
    /// Most publications sent to Redis in one pipeline (default 256).
    pub max_batch: usize,
    /// Connections a publisher sends on, each with its own share of the topics (a topic
    /// always goes through the same one, so its messages keep their order): while Redis
    /// runs one connection's pipeline, the node prepares the next (default 2, at most
    /// 16).
    pub publisher_connections: usize,
    /// How long a node waits for any Redis reply before it treats the connection as
    /// broken (default 2 s).
    pub response_timeout: Duration,
    /// How often the node checks its connection: a `PING` round trip, and while it holds
    /// subscriptions, a message through its own probe channel (default 1 s).
    pub probe_interval: Duration,
    /// A probe message not back within this time means the subscription is wedged:
    /// the node reconnects and resynchronises (default 3 s).
    pub probe_timeout: Duration,
    /// After Redis has been unreachable this long, values clients see are marked stale
    /// (default 1 s).
    pub stale_after: Duration,
    /// First delay between reconnection attempts; it doubles up to `max_backoff`
    /// (default 50 ms).
    pub min_backoff: Duration,
    /// Longest delay between reconnection attempts (default 2 s).
    pub max_backoff: Duration,
    /// Consecutive failed attempts after which the circuit breaker opens (default 5).
    pub breaker_failures: u32,
    /// How long an open breaker waits before the next attempt (default 5 s).
    pub breaker_cooldown: Duration,
}

impl BackplaneConfig {
    /// The defaults, for the node `node_id`.
    #[must_use]
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), BackplaneError> {
        let bad = |field, reason: &str| {
            Err(BackplaneError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
        };
        if !name_ok(&self.node_id) {
            return bad("node_id", "1 to 128 printable ASCII characters, no braces");
        }
        if !name_ok(&self.prefix) {
            return bad("prefix", "1 to 128 printable ASCII characters, no braces");
        }
        if self.log_len == 0 {
            return bad("log_len", "must be at least 1");
        }
        if self.max_pending == 0 || self.max_inbox == 0 || self.max_batch == 0 {
            return bad("max_pending/max_inbox/max_batch", "must be at least 1");
        }
        if !(1..=16).contains(&self.publisher_connections) {
            return bad("publisher_connections", "1 to 16");
        }
        if self.response_timeout.is_zero() || self.probe_interval.is_zero() {
            return bad("response_timeout/probe_interval", "must be above zero");
        }
        if self.probe_timeout < self.probe_interval {
            return bad("probe_timeout", "must be at least probe_interval");
        }
        if self.min_backoff.is_zero() || self.max_backoff < self.min_backoff {
            return bad("min_backoff/max_backoff", "0 < min_backoff <= max_backoff");
        }
        if self.breaker_failures == 0 {
            return bad("breaker_failures", "must be at least 1");
        }
        Ok(())
    }
}

impl Default for BackplaneConfig {
    fn default() -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (std::process::id() << 8));
        Self {
            node_id: format!("node-{n:08x}"),
            prefix: "rtdash".to_owned(),
            log_len: 1_000,
            max_pending: 10_000,
            max_inbox: 10_000,
            max_batch: 256,
            publisher_connections: 2,
            response_timeout: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(3),
            stale_after: Duration::from_secs(1),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl BackplaneConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value.into();
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`prefix`](Self::prefix).
    with_prefix: prefix: &str;
    /// Sets [`log_len`](Self::log_len).
    with_log_len: log_len: usize;
    /// Sets [`max_pending`](Self::max_pending).
    with_max_pending: max_pending: usize;
    /// Sets [`max_inbox`](Self::max_inbox).
    with_max_inbox: max_inbox: usize;
    /// Sets [`max_batch`](Self::max_batch).
    with_max_batch: max_batch: usize;
    /// Sets [`publisher_connections`](Self::publisher_connections).
    with_publisher_connections: publisher_connections: usize;
    /// Sets [`response_timeout`](Self::response_timeout).
    with_response_timeout: response_timeout: Duration;
    /// Sets [`probe_interval`](Self::probe_interval).
    with_probe_interval: probe_interval: Duration;
    /// Sets [`probe_timeout`](Self::probe_timeout).
    with_probe_timeout: probe_timeout: Duration;
    /// Sets [`stale_after`](Self::stale_after).
    with_stale_after: stale_after: Duration;
    /// Sets [`min_backoff`](Self::min_backoff).
    with_min_backoff: min_backoff: Duration;
    /// Sets [`max_backoff`](Self::max_backoff).
    with_max_backoff: max_backoff: Duration;
    /// Sets [`breaker_failures`](Self::breaker_failures).
    with_breaker_failures: breaker_failures: u32;
    /// Sets [`breaker_cooldown`](Self::breaker_cooldown).
    with_breaker_cooldown: breaker_cooldown: Duration;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(BackplaneConfig::default().validate().is_ok());
        let e = BackplaneConfig::new("a{b}").validate().unwrap_err();
        assert!(e.to_string().contains("node_id"), "{e}");
        let e = BackplaneConfig::new("a")
            .with_log_len(0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("log_len"), "{e}");
        for n in [0, 17] {
            let e = BackplaneConfig::new("a")
                .with_publisher_connections(n)
                .validate()
                .unwrap_err();
            assert!(e.to_string().contains("publisher_connections"), "{n}: {e}");
        }
        let e = BackplaneConfig::new("a")
            .with_probe_timeout(Duration::from_millis(1))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("probe_timeout"), "{e}");
    }
}
