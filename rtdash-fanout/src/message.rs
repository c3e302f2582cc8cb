//! Messages, events and snapshots.

use std::hash::Hash;
use std::sync::Arc;

use bytes::Bytes;

use crate::EvictReason;

/// Bounds of a topic (`T`) or key (`K`) type: `Clone + Eq + Hash + Send +
/// Sync + 'static`. Implemented for every such type.
pub trait Key: Clone + Eq + Hash + Send + Sync + 'static {}

impl<X: Clone + Eq + Hash + Send + Sync + 'static> Key for X {}

/// A value the hub can fan out.
///
/// The hub clones a message once per subscriber it is queued for, so `Clone`
/// must be cheap and must share the payload (`Bytes`, `Arc<..>`): encode a
/// value once, publish the encoded form. `String` and `Vec<u8>` implement the
/// trait for convenience in tests, but copy on every clone.
pub trait Message: Clone + Send + Sync + 'static {
    /// Size counted against a policy's `max_bytes`. Should be O(1) and must
    /// return the same value every time it is called on the same message.
    fn byte_len(&self) -> usize;
}

impl Message for Bytes {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for String {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for Vec<u8> {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for Arc<str> {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for Arc<[u8]> {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for Arc<String> {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for Arc<Vec<u8>> {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Message for &'static str {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

/// A message with the per-topic sequence number it was published under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stamped<M> {
    /// Sequence number assigned by the publish (per topic, starting at 1).
    pub seq: u64,
    /// The message.
    pub msg: M,
}

/// The last-value cache of one topic, as returned by [`Hub::snapshot`](crate::Hub::snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<M> {
    /// The topic's sequence number when the snapshot was taken (0 if nothing
    /// was ever published). The next live message has `seq + 1`.
    pub seq: u64,
    /// For each key ever published, the newest message carrying it; a message
    /// carrying several keys appears once. Ascending by `seq`, so applying them
    /// in order yields the current state.
    pub messages: Vec<Stamped<M>>,
}

/// What a [`Subscription`](crate::Subscription) receives.
///
/// Per topic, the events form one ordered stream: a `Snapshot` first, then
/// `Message`s with strictly increasing `seq`. A later `Snapshot` of the same
/// topic (sent by [`SlowConsumerPolicy::Conflate`](crate::SlowConsumerPolicy::Conflate)
/// when a backlog cannot be conflated key by key) replaces the client's state
/// for that topic, and live messages continue at its `seq + 1`.
///
/// # Examples
///
/// A consumer keeping the current state of one topic:
///
/// ```
/// use rtdash_fanout::{Event, Hub, HubConfig, SlowConsumerPolicy};
///
/// let hub: Hub<&str, &str, &str> = Hub::new(HubConfig::default());
/// hub.publish(&"ops", "cpu", "cpu=41");
/// let sub = hub.subscribe(SlowConsumerPolicy::default());
/// sub.subscribe("ops")?;
/// hub.publish(&"ops", "mem", "mem=73");
///
/// let mut state = Vec::new();
/// while let Ok(event) = sub.try_recv() {
///     assert_eq!(event.topic(), Some(&"ops"));
///     match event {
///         Event::Snapshot { messages, .. } => {
///             state = messages.into_iter().map(|m| m.msg).collect();
///         }
///         Event::Message { msg, .. } => state.push(msg),
///         Event::Skipped { count, .. } => eprintln!("{count} messages lost"),
///         Event::Evicted { reason } => eprintln!("evicted: {reason}"),
///         _ => {}
///     }
/// }
/// assert_eq!(state, ["cpu=41", "mem=73"]);
/// # Ok::<(), rtdash_fanout::FanoutError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<T, M> {
    /// The topic's last values. Sent when the topic is subscribed (possibly
    /// with no messages) and when conflation resynchronises a lagging
    /// subscriber. Live messages continue with `seq + 1`: none is missing,
    /// none is repeated.
    Snapshot {
        /// The topic.
        topic: T,
        /// The topic's sequence number at the snapshot.
        seq: u64,
        /// Newest message per key, ascending `seq` (see [`Snapshot::messages`]).
        messages: Vec<Stamped<M>>,
    },
    /// A live message.
    Message {
        /// The topic.
        topic: T,
        /// Its per-topic sequence number.
        seq: u64,
        /// The message.
        msg: M,
    },
    /// [`SlowConsumerPolicy::DropOldest`](crate::SlowConsumerPolicy::DropOldest)
    /// discarded `count` messages of `topic` (a dropped snapshot counts its
    /// messages). Delivered before the topic's next event.
    Skipped {
        /// The topic.
        topic: T,
        /// How many messages were discarded.
        count: u64,
    },
    /// Terminal: the subscriber was disconnected as a slow consumer by
    /// [`SlowConsumerPolicy::Disconnect`](crate::SlowConsumerPolicy::Disconnect).
    /// Its queue was freed; nothing follows.
    Evicted {
        /// The limit that was crossed.
        reason: EvictReason,
    },
}

impl<T, M> Event<T, M> {
    /// The topic the event belongs to (`None` for [`Event::Evicted`]).
    pub fn topic(&self) -> Option<&T> {
        match self {
            Self::Snapshot { topic, .. }
            | Self::Message { topic, .. }
            | Self::Skipped { topic, .. } => Some(topic),
            Self::Evicted { .. } => None,
        }
    }

    /// The sequence number of a `Snapshot` or `Message`.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Snapshot { seq, .. } | Self::Message { seq, .. } => Some(*seq),
            Self::Skipped { .. } | Self::Evicted { .. } => None,
        }
    }
}
