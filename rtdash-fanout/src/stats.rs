//! Counters exported by the hub and by subscriptions.

use std::fmt;

/// Hub-wide counters, as returned by [`Hub::stats`](crate::Hub::stats).
///
/// Counters are cumulative since the hub was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Publish calls (one per message, whatever the number of keys).
    pub published: u64,
    /// Messages handed to subscriber queues (the fan-out count: one publish
    /// to 10 subscribers counts 10), including those later conflated or dropped.
    pub delivered: u64,
    /// Queued events discarded by [`SlowConsumerPolicy::Conflate`](crate::SlowConsumerPolicy::Conflate)
    /// because newer values superseded them.
    pub conflated: u64,
    /// Messages discarded by [`SlowConsumerPolicy::DropOldest`](crate::SlowConsumerPolicy::DropOldest).
    pub dropped: u64,
    /// Subscribers evicted by [`SlowConsumerPolicy::Disconnect`](crate::SlowConsumerPolicy::Disconnect).
    pub evicted: u64,
    /// Live [`Subscription`](crate::Subscription)s (created and not dropped).
    pub subscribers: usize,
    /// Topics the hub holds now: every topic published to, and every topic
    /// subscribed now. A topic nobody ever published on is freed when its
    /// last subscriber leaves (see [`HubConfig::max_topics`](crate::HubConfig::max_topics)).
    pub topics: usize,
}

/// Counters of one topic, as returned by [`Hub::topic_stats`](crate::Hub::topic_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// The last sequence number assigned (0 if nothing was published).
    pub seq: u64,
    /// Publish calls on this topic.
    pub published: u64,
    /// Messages handed to subscriber queues for this topic.
    pub delivered: u64,
    /// Subscribers currently registered on the topic.
    pub subscribers: usize,
    /// Distinct keys in the last-value cache.
    pub keys: usize,
    /// Distinct messages held by the last-value cache (a message carrying
    /// several keys is held once).
    pub cached_messages: usize,
}

/// Counters of one subscription, as returned by [`Subscription::stats`](crate::Subscription::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberStats {
    /// Events handed to the consumer (by `recv`, `try_recv`, `drain_into` or the stream).
    pub delivered: u64,
    /// Queued events this subscription lost to conflation.
    pub conflated: u64,
    /// Messages this subscription lost to drop-oldest.
    pub dropped: u64,
    /// Events queued now.
    pub queue_len: usize,
    /// Bytes queued now (sum of [`Message::byte_len`](crate::Message::byte_len)).
    pub queue_bytes: usize,
    /// Largest `queue_len` observed.
    pub high_water_mark: usize,
    /// Topics currently subscribed.
    pub topics: usize,
}

/// Identifies a [`Subscription`](crate::Subscription) within its hub (unique per hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberId(pub(crate) u64);

impl SubscriberId {
    /// The numeric id (assigned from 1 upwards per hub).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sub-{}", self.0)
    }
}
