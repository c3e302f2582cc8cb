//! Connections to Redis, the reconnection backoff with its circuit breaker, and the
//! counters every part of the backplane shares.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, ProtocolVersion};

use crate::{BackplaneConfig, BackplaneError, BackplaneStats};

/// The URL without its password, for messages: the `pass` query parameter (Unix socket
/// URLs) is masked, and everything before the last `@` (also in a URL without a scheme,
/// which may still be `user:password@host`).
pub(crate) fn redact(url: &str) -> String {
    let mut masked = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = ["?pass=", "&pass="]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| i + p.len()))
        .min()
    {
        masked.push_str(&rest[..start]);
        masked.push_str("***");
        let end = rest[start..]
            .find(['&', '#'])
            .map_or(rest.len(), |e| start + e);
        rest = &rest[end..];
    }
    masked.push_str(rest);
    match (masked.find("://"), masked.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!("{}://***@{}", &masked[..s], &masked[at + 1..])
        }
        (_, Some(at)) => format!("***@{}", &masked[at + 1..]),
        _ => masked,
    }
}

/// A client speaking RESP3 (needed for subscriptions on a multiplexed connection), with
/// `TCP_NODELAY`.
pub(crate) fn client(url: &str) -> Result<Client, BackplaneError> {
    let invalid = |reason: String| BackplaneError::InvalidUrl {
        url: redact(url),
        reason,
    };
    let info = url
        .into_connection_info()
        .map_err(|e| invalid(e.to_string()))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    // Frames are small and latency matters: no Nagle delay on our writes.
    let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
    Client::open(info.set_redis_settings(settings).set_tcp_settings(tcp))
        .map_err(|e| invalid(e.to_string()))
}

/// The connection options every connection of the backplane uses.
pub(crate) fn connection_config(config: &BackplaneConfig) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.response_timeout))
        .set_response_timeout(Some(config.response_timeout))
}

/// Connects and loads `scripts`; returns the connection and the scripts' SHA1s.
pub(crate) async fn connect<const N: usize>(
    client: &Client,
    config: AsyncConnectionConfig,
    scripts: [&str; N],
) -> Result<(MultiplexedConnection, [String; N]), BackplaneError> {
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut shas: [String; N] = std::array::from_fn(|_| String::new());
    for (sha, src) in shas.iter_mut().zip(scripts) {
        *sha = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(src)
            .query_async(&mut conn)
            .await?;
    }
    Ok((conn, shas))
}

/// Records a Redis round trip.
pub(crate) fn record_rtt(counters: &Counters, rtt: Duration) {
    let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
    counters.rtt_micros.store(micros, Ordering::Relaxed);
}

/// Exponential backoff between reconnection attempts, and a circuit breaker: after
/// `breaker_failures` failures in a row the next wait is `breaker_cooldown`.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
    min: Duration,
    max: Duration,
    trip: u32,
    cooldown: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &BackplaneConfig) -> Self {
        Self {
            failures: 0,
            min: config.min_backoff,
            max: config.max_backoff,
            trip: config.breaker_failures,
            cooldown: config.breaker_cooldown,
        }
    }

    /// Records a failure; returns how long to wait and whether the breaker is open.
    pub(crate) fn fail(&mut self) -> (Duration, bool) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.trip {
            return (self.cooldown, true);
        }
        let exp = self.failures.saturating_sub(1).min(16);
        (self.min.saturating_mul(1 << exp).min(self.max), false)
    }

    pub(crate) fn succeed(&mut self) {
        self.failures = 0;
    }
}

/// Counters shared by a backplane's publisher and mirror.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) suppressed: AtomicU64,
    pub(crate) absorbed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) catchups: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) inbox_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) probe_failures: AtomicU64,
    pub(crate) stale_marks: AtomicU64,
    pub(crate) rtt_micros: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    /// How many of the publisher's connections are down (all, until each connects).
    pub(crate) publishers_down: std::sync::atomic::AtomicUsize,
    pub(crate) mirror_up: AtomicBool,
    pub(crate) breaker_open: AtomicBool,
    pub(crate) has_publisher: AtomicBool,
    pub(crate) has_mirror: AtomicBool,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> BackplaneStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let b = |c: &AtomicBool| c.load(Ordering::Acquire);
        let up = (!b(&self.has_publisher) || self.publishers_down.load(Ordering::Acquire) == 0)
            && (!b(&self.has_mirror) || b(&self.mirror_up));
        BackplaneStats {
            up,
            breaker_open: b(&self.breaker_open),
            published: g(&self.published),
            suppressed: g(&self.suppressed),
            absorbed: g(&self.absorbed),
            dropped: g(&self.dropped),
            publish_errors: g(&self.publish_errors),
            received: g(&self.received),
            duplicates: g(&self.duplicates),
            gaps: g(&self.gaps),
            catchups: g(&self.catchups),
            resyncs: g(&self.resyncs),
            inbox_dropped: g(&self.inbox_dropped),
            reconnects: g(&self.reconnects),
            probe_failures: g(&self.probe_failures),
            stale_marks: g(&self.stale_marks),
            rtt: Duration::from_micros(g(&self.rtt_micros)),
            subscriptions: g(&self.subscriptions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_the_breaker_opens() {
        let config = BackplaneConfig::new("n")
            .with_min_backoff(Duration::from_millis(10))
            .with_max_backoff(Duration::from_millis(30))
            .with_breaker_failures(4)
            .with_breaker_cooldown(Duration::from_secs(7));
        let mut b = Backoff::new(&config);
        let waits: Vec<_> = (0..5).map(|_| b.fail()).collect();
        assert_eq!(
            waits,
            [
                (Duration::from_millis(10), false),
                (Duration::from_millis(20), false),
                (Duration::from_millis(30), false),
                (Duration::from_secs(7), true),
                (Duration::from_secs(7), true),
            ]
        );
        b.succeed();
        assert_eq!(b.fail(), (Duration::from_millis(10), false));
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("redis://:hunter2@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://host"), "redis://host");
        assert_eq!(redact("user:hunter2@host:6379"), "***@host:6379");
        assert_eq!(
            redact("redis+unix:///run/r.sock?db=1&pass=hun@ter2&user=u"),
            "redis+unix:///run/r.sock?db=1&pass=***&user=u"
        );
        let e = client("nonsense://x").unwrap_err();
        assert!(e.to_string().contains("invalid Redis URL"), "{e}");
        let e = client("redis://:hunter2@").err().map(|e| e.to_string());
        if let Some(e) = e {
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
