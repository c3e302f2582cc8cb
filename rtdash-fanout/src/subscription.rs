//! The consumer side: a subscription and its event stream.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::Stream;

use crate::hub::{Counters, HubInner, SubEntry, SubShared, lock};
use crate::queue::{Effects, Item, Pushed, Status, snapshot_bytes};
use crate::{
    Event, FanoutError, Key, Message, SlowConsumerPolicy, SubscriberId, SubscriberStats,
    TryRecvError,
};

/// One consumer's view of the hub: a set of topics and a bounded queue of
/// [`Event`]s with a [`SlowConsumerPolicy`].
///
/// Created by [`Hub::subscribe`](crate::Hub::subscribe). Receive with
/// [`recv`](Self::recv), [`try_recv`](Self::try_recv),
/// [`drain_into`](Self::drain_into) or as a [`Stream`] (the type implements
/// `futures::Stream` directly). All methods take `&self`, so a session loop
/// can add topics while it also awaits `recv`.
///
/// Dropping the subscription unsubscribes it from every topic and frees its
/// queue at once.
///
/// # Examples
///
/// ```
/// use rtdash_fanout::{Hub, HubConfig, SlowConsumerPolicy};
///
/// let hub: Hub<&str, u32, &str> = Hub::new(HubConfig::default());
/// let sub = hub.subscribe(SlowConsumerPolicy::default());
/// sub.subscribe("ops")?;
/// sub.subscribe("sales")?;
/// hub.publish(&"ops", 1, "cpu=41");
/// hub.publish(&"sales", 1, "orders=7");
///
/// // What is ready, in one batch (a session writes it, then flushes once).
/// let mut batch = Vec::new();
/// assert_eq!(sub.drain_into(&mut batch, 64), 4); // two snapshots, two messages
/// assert!(sub.unsubscribe(&"sales"));
/// assert_eq!(sub.topics(), ["ops"]);
/// drop(sub); // leaves every topic
/// assert_eq!(hub.subscriber_count(&"ops"), 0);
/// # Ok::<(), rtdash_fanout::FanoutError>(())
/// ```
pub struct Subscription<T: Key, K: Key, M: Message> {
    shared: Arc<SubShared<T, K, M>>,
    hub: Weak<HubInner<T, K, M>>,
    counters: Arc<Counters>,
}

impl<T: Key, K: Key, M: Message> fmt::Debug for Subscription<T, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.shared.id)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl<T, K, M> Subscription<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    pub(crate) fn new(
        shared: Arc<SubShared<T, K, M>>,
        hub: Weak<HubInner<T, K, M>>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            shared,
            hub,
            counters,
        }
    }

    /// This subscription's id, unique within its hub.
    pub fn id(&self) -> SubscriberId {
        self.shared.id
    }

    /// The policy the subscription was created with.
    pub fn policy(&self) -> SlowConsumerPolicy {
        self.shared.policy
    }

    /// Adds `topic`: queues an [`Event::Snapshot`] of the topic's last values
    /// (possibly empty), then every message published to the topic after it,
    /// with `seq` continuing at the snapshot's `seq + 1`: no gap, no
    /// duplicate, even while other threads publish. The snapshot and the
    /// registration happen under the topic's lock, atomically with respect to
    /// publishes.
    ///
    /// Subscribing a topic already held does nothing and returns `Ok`. A
    /// topic that does not exist yet is created (with an empty cache), at
    /// most [`HubConfig::max_topics`](crate::HubConfig::max_topics) topics in
    /// all; it is freed again when its last subscriber leaves if nothing was
    /// ever published to it (see [`Hub::stats`](crate::Hub::stats)), so
    /// subscribing and leaving names nobody publishes on does not grow the
    /// hub. Still, check what clients may subscribe before calling this.
    ///
    /// # Errors
    ///
    /// - [`FanoutError::Evicted`] if the subscription was evicted (also if the
    ///   snapshot itself crosses a [`SlowConsumerPolicy::Disconnect`] bound,
    ///   which evicts the subscription);
    /// - [`FanoutError::HubClosed`] if the hub was dropped;
    /// - [`FanoutError::TooManyTopics`] at
    ///   [`HubConfig::max_topics_per_subscription`](crate::HubConfig::max_topics_per_subscription);
    /// - [`FanoutError::HubFull`] if `topic` does not exist and the hub holds
    ///   [`HubConfig::max_topics`](crate::HubConfig::max_topics) topics.
    pub fn subscribe(&self, topic: T) -> Result<(), FanoutError> {
        let Some(hub) = self.hub.upgrade() else {
            return Err(FanoutError::HubClosed);
        };
        let limit = hub.config.max_topics_per_subscription.get();
        let result = self.subscribe_in(&hub, topic, limit);
        // `hub` may be the last handle: drop it with no lock held.
        drop(hub);
        result
    }

    fn subscribe_in(
        &self,
        hub: &HubInner<T, K, M>,
        topic: T,
        limit: usize,
    ) -> Result<(), FanoutError> {
        let check = |q: &crate::hub::SubQueue<T, K, M>, topic: &T| -> Result<bool, FanoutError> {
            match q.status() {
                Status::Open => {}
                Status::Evicted { reason, .. } => return Err(FanoutError::Evicted { reason }),
                Status::HubClosed | Status::Dropped => return Err(FanoutError::HubClosed),
            }
            if q.find(topic).is_some() {
                return Ok(false);
            }
            if q.topics() >= limit {
                return Err(FanoutError::TooManyTopics { limit });
            }
            Ok(true)
        };
        // Cheap checks first, without creating the topic.
        if !check(&self.shared.queue.lock(), &topic)? {
            return Ok(());
        }
        // Held until the subscriber is registered: the topic cannot be freed meanwhile.
        let guard = hub.topic_to_subscribe(&topic)?;
        let t = Arc::clone(guard.value());
        let mut effects = Effects::default();
        // `Ok(None)`: not joined; `Ok(Some(None))`: joined; `Ok(Some(Some(reason)))`: evicted.
        let joined: Result<Option<Option<crate::EvictReason>>, FanoutError> = 'join: {
            let mut st = lock(&t.state);
            let mut q = self.shared.queue.lock();
            match check(&q, &topic) {
                Ok(true) => {}
                Ok(false) => break 'join Ok(None),
                Err(e) => break 'join Err(e),
            }
            let slot = q.add_slot(topic, Arc::clone(&t));
            if st.pending {
                // A mirrored topic waiting for its source: the snapshot comes with
                // `Hub::reset`.
                st.add_sub(SubEntry::new(Arc::clone(&self.shared), slot));
                break 'join Ok(Some(None));
            }
            let messages = st.lvc.snapshot();
            let bytes = snapshot_bytes(&messages);
            let seq = st.seq;
            let messages = Arc::new(messages);
            let item = Item::Snap {
                slot,
                seq,
                messages: Arc::clone(&messages),
                bytes,
            };
            let pushed = q.push(
                &self.shared.policy,
                item,
                |s| st.lvc.is_current(s),
                || (seq, messages, bytes),
                &mut effects,
            );
            let wake = q.take_wakers();
            let evicted = match pushed {
                Pushed::Queued => {
                    st.add_sub(SubEntry::new(Arc::clone(&self.shared), slot));
                    None
                }
                Pushed::Evicted(reason) => Some(reason),
                // Not reachable: the status was checked under the same lock.
                Pushed::Dead => Some(crate::EvictReason::MessageLimit { limit: 0 }),
            };
            drop(q);
            drop(st);
            wake.wake();
            Ok(Some(evicted))
        };
        drop(guard);
        self.counters.add(effects);
        match joined {
            Ok(Some(None)) => Ok(()),
            Ok(Some(Some(reason))) => {
                self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                self.shared.detach(hub);
                hub.release(&t);
                Err(FanoutError::Evicted { reason })
            }
            // Not joined (already held, or the status changed): the topic may
            // have been created for nothing.
            other => {
                hub.release(&t);
                other.map(|_| ())
            }
        }
    }

    /// Removes `topic`: its queued events are discarded and no more arrive.
    /// Returns whether the topic was subscribed.
    ///
    /// The hub frees the topic if this was its last subscriber and nothing
    /// was ever published to it.
    pub fn unsubscribe(&self, topic: &T) -> bool {
        let Some(t) = ({
            let q = self.shared.queue.lock();
            q.find(topic).and_then(|slot| q.handle(slot).cloned())
        }) else {
            return false;
        };
        {
            let mut st = lock(&t.state);
            let mut q = self.shared.queue.lock();
            let Some(slot) = q.find(topic) else {
                return false;
            };
            q.remove_slot(slot);
            st.remove_sub(self.shared.id);
        }
        if let Some(hub) = self.hub.upgrade() {
            hub.release(&t);
            // `hub` may be the last handle; no lock is held here.
            drop(hub);
        }
        true
    }

    /// Whether `topic` is currently subscribed.
    pub fn is_subscribed(&self, topic: &T) -> bool {
        self.shared.queue.lock().find(topic).is_some()
    }

    /// The subscribed topics.
    pub fn topics(&self) -> Vec<T> {
        self.shared.queue.lock().topic_list()
    }

    /// Takes the next ready event without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is ready now;
    /// [`TryRecvError::Closed`] if nothing will ever arrive (after the
    /// terminal [`Event::Evicted`], or after the hub was dropped and the
    /// queue drained).
    #[inline(always)]
    pub fn try_recv(&self) -> Result<Event<T, M>, TryRecvError> {
        self.shared.queue.lock().next_event()
    }

    /// Waits for the next event; `None` once the subscription is finished
    /// (after the terminal [`Event::Evicted`] was returned, or after the hub
    /// was dropped and the queue drained).
    ///
    /// Several tasks may wait on one subscription; each event goes to one of
    /// them.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an event is taken from the queue only in the poll that
    /// returns it, so if `recv` is used in `tokio::select!` and another branch
    /// completes first, no event is lost.
    pub async fn recv(&self) -> Option<Event<T, M>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Self::recv), for hand-written futures and streams.
    ///
    /// Returns `Pending` after registering `cx`'s waker when the queue is
    /// empty; the waker is woken when the next event is queued.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Event<T, M>>> {
        let mut q = self.shared.queue.lock();
        match q.next_event() {
            Ok(ev) => Poll::Ready(Some(ev)),
            Err(TryRecvError::Empty) => {
                q.register(cx.waker());
                Poll::Pending
            }
            Err(_) => Poll::Ready(None),
        }
    }

    /// Moves up to `max` ready events into `out` without waiting; returns how
    /// many were moved. One lock for the whole batch: drain, write the batch
    /// to the socket, flush once.
    pub fn drain_into(&self, out: &mut Vec<Event<T, M>>, max: usize) -> usize {
        let mut q = self.shared.queue.lock();
        let mut n = 0;
        while n < max {
            match q.next_event() {
                Ok(ev) => {
                    out.push(ev);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }

    /// This subscription's counters.
    pub fn stats(&self) -> SubscriberStats {
        self.shared.queue.lock().stats()
    }

    /// Whether the subscription was evicted by
    /// [`SlowConsumerPolicy::Disconnect`] (the event may still be unread).
    pub fn is_evicted(&self) -> bool {
        matches!(self.shared.queue.lock().status(), Status::Evicted { .. })
    }
}

impl<T, K, M> Stream for Subscription<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    type Item = Event<T, M>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T: Key, K: Key, M: Message> Drop for Subscription<T, K, M> {
    /// Marks the subscription dropped, frees its queue, leaves every topic
    /// and frees the topics left unused.
    fn drop(&mut self) {
        let topics = {
            let mut q = self.shared.queue.lock();
            q.set_status(Status::Dropped);
            q.clear()
        };
        let hub = self.hub.upgrade();
        for t in topics {
            lock(&t.state).remove_sub(self.shared.id);
            if let Some(hub) = &hub {
                hub.release(&t);
            }
        }
        if let Some(hub) = hub {
            hub.registry.remove(&self.shared.id.get());
            // `hub` may be the last handle; no lock is held here.
            drop(hub);
        }
        self.counters.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}
