//! [`LogConfig`]: the settings of a [`StreamLog`](crate::StreamLog).

use std::time::Duration;

use crate::BackplaneError;

/// Settings of a [`StreamLog`](crate::StreamLog): how many partitions, how long a lease
/// lives, how often owners heartbeat and checkpoint, how much they read at once.
///
/// Every node of a cluster must use the same [`partitions`](Self::partitions) (it decides
/// where each metric goes) and should use the same timings.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash_redis::LogConfig;
///
/// let config = LogConfig::default()
///     .with_partitions(16)
///     .with_lease_ttl(Duration::from_secs(3));
/// assert!(config.validate().is_ok());
///
/// let bad = LogConfig::default().with_renew_every(Duration::from_secs(1));
/// let e = bad.validate().unwrap_err();
/// assert!(e.to_string().contains("renew_every"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Number of partitions (one stream each), 1 to 1,024; default 8. Changing it moves
    /// metrics to other partitions: every node must agree on it.
    pub partitions: u32,
    /// How long a partition's lease lives without renewal, 200 ms to 60 s; default 2 s.
    /// A crashed owner's partitions move to another node after about this long.
    pub lease_ttl: Duration,
    /// The owner's round: membership heartbeat, lease renewal and rebalancing, this
    /// often; above zero and below `lease_ttl / 2` (so a lease survives a missed round);
    /// default 500 ms.
    pub renew_every: Duration,
    /// How often an owner stores a checkpoint of each partition it owns (when something
    /// was applied since the last one), 50 ms to 1 h; default 2 s. A successor replays
    /// what came after the last checkpoint: this bounds the replay, and the stream is
    /// trimmed behind each checkpoint (so it also bounds what Redis keeps).
    pub checkpoint_every: Duration,
    /// Most entries an owner reads per `XREAD`, 1 to 100,000; default 256.
    pub read_count: usize,
    /// Approximate length cap of each partition's late stream (`XADD MAXLEN ~`), at least
    /// 1; default 100,000. Older late entries are dropped first.
    pub late_stream_len: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            partitions: 8,
            lease_ttl: Duration::from_secs(2),
            renew_every: Duration::from_millis(500),
            checkpoint_every: Duration::from_secs(2),
            read_count: 256,
            late_stream_len: 100_000,
        }
    }
}

impl LogConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`BackplaneError::InvalidConfig`] naming the first field out of range and the
    /// range it must be in.
    pub fn validate(&self) -> Result<(), BackplaneError> {
        let bad = |field, reason: &str| {
            Err(BackplaneError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if !(1..=1024).contains(&self.partitions) {
            return bad("partitions", "must be 1 to 1024");
        }
        if !(Duration::from_millis(200)..=Duration::from_secs(60)).contains(&self.lease_ttl) {
            return bad("lease_ttl", "must be 200 ms to 60 s");
        }
        if self.renew_every.is_zero() || self.renew_every >= self.lease_ttl / 2 {
            return bad(
                "renew_every",
                "must be above zero and below lease_ttl / 2 (a lease must survive a missed round)",
            );
        }
        if !(Duration::from_millis(50)..=Duration::from_secs(3600)).contains(&self.checkpoint_every)
        {
            return bad("checkpoint_every", "must be 50 ms to 1 h");
        }
        if !(1..=100_000).contains(&self.read_count) {
            return bad("read_count", "must be 1 to 100000");
        }
        if self.late_stream_len == 0 {
            return bad("late_stream_len", "must be at least 1");
        }
        Ok(())
    }

    /// Sets [`partitions`](Self::partitions).
    #[must_use]
    pub fn with_partitions(mut self, partitions: u32) -> Self {
        self.partitions = partitions;
        self
    }

    /// Sets [`lease_ttl`](Self::lease_ttl).
    #[must_use]
    pub fn with_lease_ttl(mut self, lease_ttl: Duration) -> Self {
        self.lease_ttl = lease_ttl;
        self
    }

    /// Sets [`renew_every`](Self::renew_every).
    #[must_use]
    pub fn with_renew_every(mut self, renew_every: Duration) -> Self {
        self.renew_every = renew_every;
        self
    }

    /// Sets [`checkpoint_every`](Self::checkpoint_every).
    #[must_use]
    pub fn with_checkpoint_every(mut self, checkpoint_every: Duration) -> Self {
        self.checkpoint_every = checkpoint_every;
        self
    }

    /// Sets [`read_count`](Self::read_count).
    #[must_use]
    pub fn with_read_count(mut self, read_count: usize) -> Self {
        self.read_count = read_count;
        self
    }

    /// Sets [`late_stream_len`](Self::late_stream_len).
    #[must_use]
    pub fn with_late_stream_len(mut self, late_stream_len: usize) -> Self {
        self.late_stream_len = late_stream_len;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &LogConfig) -> Option<&'static str> {
        match config.validate() {
            Err(BackplaneError::InvalidConfig { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(field_of(&LogConfig::default()), None);
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let ms = Duration::from_millis;
        let d = LogConfig::default;
        let cases = [
            (d().with_partitions(0), "partitions"),
            (d().with_partitions(1025), "partitions"),
            (d().with_lease_ttl(ms(199)), "lease_ttl"),
            (d().with_lease_ttl(ms(60_001)), "lease_ttl"),
            (d().with_renew_every(ms(0)), "renew_every"),
            (d().with_renew_every(ms(1_000)), "renew_every"),
            (d().with_checkpoint_every(ms(49)), "checkpoint_every"),
            (d().with_checkpoint_every(ms(3_600_001)), "checkpoint_every"),
            (d().with_read_count(0), "read_count"),
            (d().with_read_count(100_001), "read_count"),
            (d().with_late_stream_len(0), "late_stream_len"),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(&config), Some(field), "{config:?}");
            let message = config.validate().map_err(|e| e.to_string()).err();
            assert!(
                message.as_deref().is_some_and(|m| m.contains(field)),
                "{message:?}"
            );
        }
        let edges = [
            d().with_partitions(1),
            d().with_partitions(1024),
            d().with_lease_ttl(ms(200)).with_renew_every(ms(99)),
            d().with_lease_ttl(ms(60_000)),
            d().with_checkpoint_every(ms(50)),
            d().with_checkpoint_every(ms(3_600_000)),
            d().with_read_count(1),
            d().with_read_count(100_000),
            d().with_late_stream_len(1),
        ];
        for config in edges {
            assert_eq!(field_of(&config), None, "{config:?}");
        }
    }
}
