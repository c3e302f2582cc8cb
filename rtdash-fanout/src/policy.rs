//! Slow-consumer policies and hub configuration.

use std::num::NonZeroUsize;

use crate::FanoutError;

/// What a subscriber's queue does when its consumer falls behind.
///
/// Chosen per subscription ([`Hub::subscribe`](crate::Hub::subscribe)). The
/// publisher never waits: every policy decides at publish time, in O(1)
/// amortised per subscriber, what happens to a queue that is full. Bounds are
/// [`NonZeroUsize`], so a policy cannot be built with a zero bound; the
/// constructors [`conflate`](Self::conflate), [`drop_oldest`](Self::drop_oldest)
/// and [`disconnect`](Self::disconnect) take plain `usize` and return
/// [`FanoutError::ZeroBound`] for 0.
///
/// See the [crate documentation](crate#choosing-a-policy) for when to pick which.
///
/// # Examples
///
/// Two consumers that fell three messages behind:
///
/// ```
/// use rtdash_fanout::{Event, Hub, HubConfig, SlowConsumerPolicy};
///
/// let hub: Hub<&str, &str, &str> = Hub::new(HubConfig::default());
/// let values = hub.subscribe(SlowConsumerPolicy::conflate(2)?);
/// let log = hub.subscribe(SlowConsumerPolicy::drop_oldest(2, usize::MAX)?);
/// for sub in [&values, &log] {
///     sub.subscribe("ops")?;
///     assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { .. })));
/// }
/// for msg in ["cpu=41", "cpu=42", "cpu=43"] {
///     hub.publish(&"ops", "cpu", msg);
/// }
/// // Conflate: only the newest value of the key is left.
/// assert!(matches!(values.try_recv(), Ok(Event::Message { msg: "cpu=43", .. })));
/// // DropOldest: the newest two messages, after a count of what was lost.
/// assert!(matches!(log.try_recv(), Ok(Event::Skipped { count: 1, .. })));
/// assert!(matches!(log.try_recv(), Ok(Event::Message { msg: "cpu=42", .. })));
///
/// assert!(SlowConsumerPolicy::conflate(0).is_err()); // bounds are never zero
/// # Ok::<(), rtdash_fanout::FanoutError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Keep only the newest state: when a topic has `max_messages` events
    /// queued for this subscriber, queued messages whose every key has a newer
    /// message are discarded; if more than `max_messages / 2` events of the
    /// topic are still queued, the topic's whole backlog is replaced by one
    /// fresh [`Event::Snapshot`](crate::Event::Snapshot) from the last-value
    /// cache. The bound is per topic, so a subscription holds at most
    /// `max_messages` × topics events. Nothing is ever lost: the consumer
    /// always ends at the newest value of every key.
    Conflate {
        /// Events queued per topic before conflation starts.
        max_messages: NonZeroUsize,
    },
    /// Keep the newest events: when queuing an event would exceed
    /// `max_messages` events or `max_bytes` bytes (over all topics of the
    /// subscription), the oldest events are discarded until it fits, and the
    /// consumer receives [`Event::Skipped`](crate::Event::Skipped) with the
    /// count before the topic's next event. An event larger than `max_bytes`
    /// on its own is discarded (and counted) too.
    DropOldest {
        /// Events queued over all topics.
        max_messages: NonZeroUsize,
        /// Bytes queued over all topics.
        max_bytes: NonZeroUsize,
    },
    /// Never lose or merge anything: when queuing an event would exceed
    /// `max_messages` events or `max_bytes` bytes, the subscriber is evicted
    /// at once: its queue is freed, it is removed from all topics, and the
    /// consumer receives the terminal [`Event::Evicted`](crate::Event::Evicted).
    Disconnect {
        /// Events queued over all topics.
        max_messages: NonZeroUsize,
        /// Bytes queued over all topics.
        max_bytes: NonZeroUsize,
    },
}

impl SlowConsumerPolicy {
    /// `max_messages` of the default policy, `Conflate { max_messages: 64 }`.
    pub const DEFAULT_MAX_MESSAGES: usize = 64;

    /// `Conflate { max_messages }`.
    ///
    /// # Errors
    ///
    /// [`FanoutError::ZeroBound`] if `max_messages` is 0.
    pub fn conflate(max_messages: usize) -> Result<Self, FanoutError> {
        Ok(Self::Conflate {
            max_messages: non_zero("Conflate", "max_messages", max_messages)?,
        })
    }

    /// `DropOldest { max_messages, max_bytes }`; pass `usize::MAX` for no byte limit.
    ///
    /// # Errors
    ///
    /// [`FanoutError::ZeroBound`] if a bound is 0.
    pub fn drop_oldest(max_messages: usize, max_bytes: usize) -> Result<Self, FanoutError> {
        Ok(Self::DropOldest {
            max_messages: non_zero("DropOldest", "max_messages", max_messages)?,
            max_bytes: non_zero("DropOldest", "max_bytes", max_bytes)?,
        })
    }

    /// `Disconnect { max_messages, max_bytes }`; pass `usize::MAX` for no byte limit.
    ///
    /// # Errors
    ///
    /// [`FanoutError::ZeroBound`] if a bound is 0.
    pub fn disconnect(max_messages: usize, max_bytes: usize) -> Result<Self, FanoutError> {
        Ok(Self::Disconnect {
            max_messages: non_zero("Disconnect", "max_messages", max_messages)?,
            max_bytes: non_zero("Disconnect", "max_bytes", max_bytes)?,
        })
    }
}

impl Default for SlowConsumerPolicy {
    /// `Conflate { max_messages: 64 }`: the natural policy for dashboard values.
    fn default() -> Self {
        Self::Conflate {
            max_messages: NonZeroUsize::new(Self::DEFAULT_MAX_MESSAGES)
                .unwrap_or(NonZeroUsize::MIN),
        }
    }
}

fn non_zero(
    policy: &'static str,
    field: &'static str,
    value: usize,
) -> Result<NonZeroUsize, FanoutError> {
    NonZeroUsize::new(value).ok_or(FanoutError::ZeroBound { policy, field })
}

/// Hub configuration.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use rtdash_fanout::HubConfig;
///
/// let config = HubConfig::default()
///     .with_max_topics_per_subscription(NonZeroUsize::new(16).unwrap())
///     .with_max_topics(NonZeroUsize::new(10_000).unwrap());
/// assert_eq!(config.max_topics_per_subscription.get(), 16);
/// assert_eq!(config.max_topics.get(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// Most topics one subscription may hold at a time (default 256).
    /// Bounds the memory of one subscription under
    /// [`SlowConsumerPolicy::Conflate`], whose bound is per topic.
    pub max_topics_per_subscription: NonZeroUsize,
    /// Most topics the hub holds before subscriptions may no longer create
    /// new ones (default 100,000).
    ///
    /// Past it, [`Subscription::subscribe`](crate::Subscription::subscribe)
    /// of a topic that does not exist fails with
    /// [`FanoutError::HubFull`]; existing topics can still be subscribed, and
    /// publishing is never refused (a publish to a new topic creates it even
    /// past the bound: publishers are the server's own code). A topic costs
    /// a few hundred bytes plus its name and its cached values. Topics
    /// nobody ever published on are freed when their last subscriber leaves,
    /// so this bounds what clients subscribing arbitrary names can hold at
    /// one time.
    pub max_topics: NonZeroUsize,
}

impl HubConfig {
    /// Default of [`max_topics_per_subscription`](Self::max_topics_per_subscription).
    pub const DEFAULT_MAX_TOPICS_PER_SUBSCRIPTION: usize = 256;

    /// Default of [`max_topics`](Self::max_topics).
    pub const DEFAULT_MAX_TOPICS: usize = 100_000;

    /// Sets [`max_topics_per_subscription`](Self::max_topics_per_subscription).
    #[must_use]
    pub fn with_max_topics_per_subscription(mut self, limit: NonZeroUsize) -> Self {
        self.max_topics_per_subscription = limit;
        self
    }

    /// Sets [`max_topics`](Self::max_topics).
    #[must_use]
    pub fn with_max_topics(mut self, limit: NonZeroUsize) -> Self {
        self.max_topics = limit;
        self
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_topics_per_subscription: NonZeroUsize::new(
                Self::DEFAULT_MAX_TOPICS_PER_SUBSCRIPTION,
            )
            .unwrap_or(NonZeroUsize::MIN),
            max_topics: NonZeroUsize::new(Self::DEFAULT_MAX_TOPICS).unwrap_or(NonZeroUsize::MIN),
        }
    }
}
