//! The crate's error types.

use std::fmt;

/// Why a subscriber was evicted by [`SlowConsumerPolicy::Disconnect`](crate::SlowConsumerPolicy::Disconnect).
///
/// Carried by the terminal [`Event::Evicted`](crate::Event::Evicted) and by
/// [`FanoutError::Evicted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictReason {
    /// Queuing one more event would have exceeded `max_messages` queued events.
    MessageLimit {
        /// The configured `max_messages`.
        limit: usize,
    },
    /// Queuing one more event would have exceeded `max_bytes` queued bytes
    /// (as measured by [`Message::byte_len`](crate::Message::byte_len)).
    ByteLimit {
        /// The configured `max_bytes`.
        limit: usize,
    },
}

impl fmt::Display for EvictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MessageLimit { limit } => {
                write!(
                    f,
                    "slow consumer: more than {limit} messages queued (max_messages)"
                )
            }
            Self::ByteLimit { limit } => {
                write!(
                    f,
                    "slow consumer: more than {limit} bytes queued (max_bytes)"
                )
            }
        }
    }
}

/// Errors of configuration and of [`Subscription`](crate::Subscription) calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// The subscription was evicted as a slow consumer; it accepts no more
    /// topics. Create a new subscription (and consider a larger bound or a
    /// conflating policy).
    #[error(
        "subscription was evicted ({reason}); create a new subscription, or use a larger bound or the Conflate policy"
    )]
    Evicted {
        /// The limit that was crossed.
        reason: EvictReason,
    },
    /// Every [`Hub`](crate::Hub) handle was dropped; nothing more will be published.
    #[error("the hub was dropped: no more topics can be subscribed")]
    HubClosed,
    /// The subscription already holds `limit` topics.
    #[error(
        "subscription already holds {limit} topics (HubConfig::max_topics_per_subscription); unsubscribe a topic or raise the limit"
    )]
    TooManyTopics {
        /// The configured [`HubConfig::max_topics_per_subscription`](crate::HubConfig::max_topics_per_subscription).
        limit: usize,
    },
    /// The topic does not exist and the hub already holds `limit` topics, so
    /// a subscription may not create another. Topics nobody publishes on are
    /// freed when their last subscriber leaves, so this passes once others
    /// unsubscribe.
    #[error(
        "the hub already holds {limit} topics (HubConfig::max_topics): subscribe an existing topic, retry after others are unsubscribed, or raise the limit"
    )]
    HubFull {
        /// The configured [`HubConfig::max_topics`](crate::HubConfig::max_topics).
        limit: usize,
    },
    /// A [`SlowConsumerPolicy`](crate::SlowConsumerPolicy) bound was zero.
    #[error("{policy} policy: `{field}` must be at least 1, got 0")]
    ZeroBound {
        /// The policy being built (`"Conflate"`, `"DropOldest"` or `"Disconnect"`).
        policy: &'static str,
        /// The field that was zero (`"max_messages"` or `"max_bytes"`).
        field: &'static str,
    },
}

/// Error of [`Subscription::try_recv`](crate::Subscription::try_recv).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No event is ready now; one may arrive later.
    #[error("no event is ready")]
    Empty,
    /// No event will ever arrive: the terminal `Evicted` event was already
    /// returned, or the hub was dropped and the queue is drained.
    #[error("the subscription is closed")]
    Closed,
}
