//! The hub: topics, publishing, snapshots, stats.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use dashmap::DashMap;
use dashmap::mapref::entry::{Entry, VacantEntry};
use dashmap::mapref::one::Ref;
use foldhash::fast::RandomState;

use crate::lvc::Lvc;
use crate::queue::{Effects, Pushed, Queue, snapshot_bytes};
use crate::subscription::Subscription;
use crate::{
    FanoutError, HubConfig, HubStats, Key, Message, SlowConsumerPolicy, Snapshot, Stamped,
    SubscriberId, TopicStats,
};

/// Locks, recovering from poisoning: a panic in user code (`build`, `Clone`,
/// `Hash`) while a lock was held leaves the structures usable.
pub(crate) fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) type TopicRef<T, K, M> = Arc<Topic<T, K, M>>;

/// The lock of a subscriber's queue: a spin lock that yields the thread while
/// it waits.
///
/// Every delivery takes this lock twice (the publish queues, the receive
/// takes), and with 10,000 subscribers the atomic read-modify-writes are
/// most of a delivery's cost. A spin lock releases with a plain store where
/// a parking mutex needs a second atomic, which made a delivery about a
/// fifth cheaper in `benches/fanout.rs`. Critical sections are a few moves
/// (at worst a pass over one queue of at most `max_messages` items), none
/// spans an `.await` or calls user code other than the message's and
/// topic's `Clone`, `Drop`, `PartialEq` and `byte_len`, and a waiter yields
/// rather than burns its core if the holder was preempted.
pub(crate) type QueueLock<X> = spin::mutex::SpinMutex<X, spin::relax::Yield>;
pub(crate) type SubQueue<T, K, M> = Queue<T, M, TopicRef<T, K, M>>;

#[derive(Debug)]
pub(crate) struct Topic<T, K, M> {
    /// The topic's key in the hub's map, to free it (see [`HubInner::release`]).
    pub(crate) name: T,
    pub(crate) state: Mutex<TopicState<T, K, M>>,
}

impl<T, K: Key, M: Message> Topic<T, K, M> {
    fn new(name: T) -> Self {
        Self {
            name,
            state: Mutex::new(TopicState {
                pending: false,
                seq: 0,
                lvc: Lvc::new(),
                subs: Vec::new(),
                positions: HashMap::default(),
                published: 0,
                delivered: 0,
            }),
        }
    }
}

/// A topic found in (or just added to) the hub's map, with the map shard's
/// read lock held: while it lives, the topic cannot be freed, so whatever
/// is added to it under its own lock (a subscriber, a published message)
/// is added to the topic the hub keeps.
pub(crate) type TopicGuard<'a, T, K, M> = Ref<'a, T, TopicRef<T, K, M>>;

#[derive(Debug)]
pub(crate) struct TopicState<T, K, M> {
    /// A mirrored topic whose first snapshot has not come yet (see `mirror.rs`): its
    /// subscribers are registered but get no snapshot until `Hub::reset`.
    pub(crate) pending: bool,
    pub(crate) seq: u64,
    pub(crate) lvc: Lvc<K, M>,
    /// The subscribers, in no particular order.
    pub(crate) subs: Vec<SubEntry<T, K, M>>,
    /// Subscriber id -> position in `subs`, so that leaving is O(1) (a
    /// disconnect storm of 10,000 clients must not cost 10,000²).
    positions: HashMap<u64, usize, RandomState>,
    published: u64,
    delivered: u64,
}

#[derive(Debug)]
pub(crate) struct SubEntry<T, K, M> {
    pub(crate) sub: Arc<SubShared<T, K, M>>,
    pub(crate) slot: u32,
    alive: bool,
}

impl<T, K: Key, M: Message> TopicState<T, K, M> {
    /// Whether the hub may forget the topic: no subscriber, and nothing ever
    /// published (so no cached value, and a sequence that restarting would
    /// not move backwards: `seq` is 0 either way).
    fn is_unused(&self, mirrored: bool) -> bool {
        // A mirrored topic's seq and values belong to the source: forgetting them costs
        // nothing, the next subscriber's snapshot comes from the source again.
        self.subs.is_empty() && (mirrored || (self.seq == 0 && self.lvc.message_count() == 0))
    }
}

impl<T, K, M> TopicState<T, K, M> {
    pub(crate) fn add_sub(&mut self, entry: SubEntry<T, K, M>) {
        self.positions.insert(entry.sub.id.0, self.subs.len());
        self.subs.push(entry);
    }

    pub(crate) fn remove_sub(&mut self, id: SubscriberId) {
        if let Some(pos) = self.positions.remove(&id.0) {
            self.subs.swap_remove(pos);
            if let Some(moved) = self.subs.get(pos) {
                self.positions.insert(moved.sub.id.0, pos);
            }
        }
    }

    /// Drops the entries marked dead during a publish.
    pub(crate) fn remove_dead(&mut self) {
        self.subs.retain(|e| e.alive);
        self.positions.clear();
        for (i, e) in self.subs.iter().enumerate() {
            self.positions.insert(e.sub.id.0, i);
        }
    }

    pub(crate) fn clear_subs(&mut self) -> Vec<SubEntry<T, K, M>> {
        self.positions.clear();
        std::mem::take(&mut self.subs)
    }
}

impl<T, K, M> SubEntry<T, K, M> {
    pub(crate) fn mark_dead(&mut self) {
        self.alive = false;
    }

    pub(crate) fn new(sub: Arc<SubShared<T, K, M>>, slot: u32) -> Self {
        Self {
            sub,
            slot,
            alive: true,
        }
    }
}

/// The part of a subscription the topics point to.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SubShared<T, K, M> {
    /// First, so that the lock and the queue's hot fields share cache lines
    /// (see `Queue`).
    pub(crate) queue: QueueLock<SubQueue<T, K, M>>,
    pub(crate) policy: SlowConsumerPolicy,
    pub(crate) id: SubscriberId,
}

impl<T: Key, K: Key, M: Message> SubShared<T, K, M> {
    /// Removes the subscriber from every topic it holds (taking each topic's
    /// lock in turn, never while holding the queue's lock), and frees the
    /// topics left unused. Call it with no lock held.
    pub(crate) fn detach(self: &Arc<Self>, hub: &HubInner<T, K, M>) {
        let topics = self.queue.lock().clear();
        for t in topics {
            lock(&t.state).remove_sub(self.id);
            hub.release(&t);
        }
    }
}

/// Hub-wide counters updated off the common path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) subscribers: AtomicUsize,
    pub(crate) conflated: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) evicted: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, effects: Effects) {
        if effects.conflated > 0 {
            self.conflated
                .fetch_add(effects.conflated, Ordering::Relaxed);
        }
        if effects.dropped > 0 {
            self.dropped.fetch_add(effects.dropped, Ordering::Relaxed);
        }
    }
}

pub(crate) struct HubInner<T: Key, K: Key, M: Message> {
    topics: DashMap<T, TopicRef<T, K, M>, RandomState>,
    /// `topics.len()`, kept by hand so that `max_topics` is exact under
    /// concurrent creations.
    topic_count: AtomicUsize,
    /// Every live subscription, topics or not, so that closing reaches all.
    pub(crate) registry: DashMap<u64, Weak<SubShared<T, K, M>>, RandomState>,
    pub(crate) config: HubConfig,
    next_id: AtomicU64,
    pub(crate) counters: Arc<Counters>,
    /// Set for a mirrored hub (see `Hub::mirrored`).
    pub(crate) observer: Option<crate::mirror::Observer<T>>,
}

impl<T: Key, K: Key, M: Message> fmt::Debug for HubInner<T, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubInner")
            .field("topics", &self.topics.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T, K, M> HubInner<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    /// The topic, created on first use. Publishing is never refused, so
    /// this ignores `max_topics`.
    fn topic(&self, topic: &T) -> TopicGuard<'_, T, K, M> {
        if let Some(t) = self.topics.get(topic) {
            return t;
        }
        match self.topics.entry(topic.clone()) {
            Entry::Occupied(o) => o.into_ref().downgrade(),
            Entry::Vacant(v) => {
                self.topic_count.fetch_add(1, Ordering::Relaxed);
                self.insert(v)
            }
        }
    }

    /// Counts a delivery's effects and detaches the subscribers it evicted. Call it with
    /// no lock held (after the topic's guard is dropped).
    pub(crate) fn settle(&self, effects: Effects, evicted: Vec<Arc<SubShared<T, K, M>>>) {
        self.counters.add(effects);
        if !evicted.is_empty() {
            self.counters
                .evicted
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            for s in evicted {
                s.detach(self);
            }
        }
    }

    /// The topic if the hub holds it, with its shard's read lock (never creates it).
    pub(crate) fn held(&self, topic: &T) -> Option<TopicGuard<'_, T, K, M>> {
        self.topics.get(topic)
    }

    /// The topics the hub holds now.
    pub(crate) fn topic_names(&self) -> Vec<T> {
        self.topics.iter().map(|e| e.key().clone()).collect()
    }

    /// The topic for a new subscriber, created on first use unless the hub
    /// already holds `max_topics`.
    pub(crate) fn topic_to_subscribe(
        &self,
        topic: &T,
    ) -> Result<TopicGuard<'_, T, K, M>, FanoutError> {
        if let Some(t) = self.topics.get(topic) {
            return Ok(t);
        }
        match self.topics.entry(topic.clone()) {
            Entry::Occupied(o) => Ok(o.into_ref().downgrade()),
            Entry::Vacant(v) => {
                let limit = self.config.max_topics.get();
                if self.topic_count.fetch_add(1, Ordering::Relaxed) >= limit {
                    self.topic_count.fetch_sub(1, Ordering::Relaxed);
                    return Err(FanoutError::HubFull { limit });
                }
                let Some(observer) = &self.observer else {
                    return Ok(self.insert(v));
                };
                let name = v.key().clone();
                let topic = Arc::new(Topic::new(name.clone()));
                lock(&topic.state).pending = true;
                let guard = v.insert(topic).downgrade();
                observer(&name, crate::Interest::Wanted);
                Ok(guard)
            }
        }
    }

    fn insert<'a>(&self, v: VacantEntry<'a, T, TopicRef<T, K, M>>) -> TopicGuard<'a, T, K, M> {
        let topic = Arc::new(Topic::new(v.key().clone()));
        v.insert(topic).downgrade()
    }

    /// Forgets `topic` if it is unused (see `TopicState::is_unused`), so
    /// that subscribing and leaving names nobody publishes on cannot grow
    /// the hub. Call it with no lock held, after a subscriber left the topic
    /// or failed to join it.
    ///
    /// Safe against concurrent joins: the check and the removal happen
    /// under the map shard's write lock, and a subscribe or publish adds to
    /// a topic only while it holds that shard's read lock ([`TopicGuard`]),
    /// so nothing can be added to a topic between the check and its
    /// removal, nor to a removed topic.
    pub(crate) fn release(&self, topic: &Topic<T, K, M>) {
        let mirrored = self.observer.is_some();
        // Most leaves are from topics still in use: skip the write lock.
        if !lock(&topic.state).is_unused(mirrored) {
            return;
        }
        // A mirrored hub's observer is told under the shard's write lock, as `Wanted` is
        // told under the lock that inserted the topic: told after the lock is released,
        // `Dropped` could reach the observer after the `Wanted` of a subscriber that
        // re-created the topic meanwhile, and the mirror would forget a held topic.
        let removed = self.topics.remove_if(&topic.name, |name, t| {
            let unused = lock(&t.state).is_unused(mirrored);
            if unused && let Some(observer) = &self.observer {
                observer(name, crate::Interest::Dropped);
            }
            unused
        });
        if removed.is_some() {
            self.topic_count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<T: Key, K: Key, M: Message> Drop for HubInner<T, K, M> {
    /// Closing: every subscriber drains what is queued, then its stream ends.
    fn drop(&mut self) {
        for entry in self.topics.iter() {
            entry
                .value()
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear_subs();
        }
        for entry in self.registry.iter() {
            let Some(sub) = entry.value().upgrade() else {
                continue;
            };
            let wake = {
                let mut q = sub.queue.lock();
                if q.status() == crate::queue::Status::Open {
                    q.set_status(crate::queue::Status::HubClosed);
                }
                q.take_wakers()
            };
            wake.wake();
        }
    }
}

/// A fan-out hub: publish a message to a topic, and every subscriber of the
/// topic receives it through its own bounded queue.
///
/// Cheap to clone (an `Arc` inside); all clones are the same hub. When the
/// last clone is dropped, subscribers receive what is already queued, then
/// their stream ends (see [Closing](crate#closing)).
///
/// * `T`: the topic (e.g. a dashboard id). Cloned into every event handed to
///   a consumer, so use a cheap type (`Uuid`, `u64`, `Arc<str>`).
/// * `K`: a key within a topic (e.g. a widget id). The last-value cache keeps
///   the newest message per key; [`SlowConsumerPolicy::Conflate`] supersedes
///   per key.
/// * `M`: the message, shared by all subscribers (see [`Message`]).
pub struct Hub<T: Key, K: Key, M: Message> {
    pub(crate) inner: Arc<HubInner<T, K, M>>,
}

impl<T: Key, K: Key, M: Message> Clone for Hub<T, K, M> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Key, K: Key, M: Message> fmt::Debug for Hub<T, K, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("topics", &self.inner.topics.len())
            .field(
                "subscribers",
                &self.inner.counters.subscribers.load(Ordering::Relaxed),
            )
            .field("config", &self.inner.config)
            .finish()
    }
}

impl<T, K, M> Default for Hub<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    fn default() -> Self {
        Self::new(HubConfig::default())
    }
}

impl<T, K, M> Hub<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    /// Creates an empty hub.
    pub fn new(config: HubConfig) -> Self {
        Self::with_observer(config, None)
    }

    pub(crate) fn with_observer(
        config: HubConfig,
        observer: Option<crate::mirror::Observer<T>>,
    ) -> Self {
        Self {
            inner: Arc::new(HubInner {
                topics: DashMap::with_hasher(RandomState::default()),
                topic_count: AtomicUsize::new(0),
                registry: DashMap::with_hasher(RandomState::default()),
                config,
                next_id: AtomicU64::new(1),
                counters: Arc::new(Counters::default()),
                observer,
            }),
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Publishes `msg` as the newest value of `key` in `topic`; returns its
    /// sequence number.
    ///
    /// Assigns the topic's next sequence number (the first is 1), records the
    /// message in the topic's last-value cache for `key`, and queues it for
    /// every subscriber of the topic under that subscriber's policy. Never
    /// awaits and never waits for a subscriber: a full queue is handled by its
    /// policy at once. Publishes to one topic are serialised by the topic's
    /// lock (which is what gives every subscriber the same order); publishes
    /// to different topics run in parallel.
    pub fn publish(&self, topic: &T, key: K, msg: M) -> u64 {
        self.publish_with(topic, std::iter::once(key), move |_| msg)
    }

    /// Publishes one message covering several keys (e.g. the widgets of a
    /// dashboard that changed in one tick go out as one message).
    ///
    /// The message becomes the newest value of every key in `keys`. With no
    /// keys it is transient: delivered to current subscribers but not cached
    /// (not part of snapshots) and, under `Conflate`, lost if a resync
    /// snapshot replaces the backlog it is in.
    pub fn publish_multi(&self, topic: &T, keys: impl IntoIterator<Item = K>, msg: M) -> u64 {
        self.publish_with(topic, keys, move |_| msg)
    }

    /// Like [`publish_multi`](Self::publish_multi), but the message is built
    /// from its sequence number, so an encoded frame can carry its own `seq`.
    ///
    /// `build` runs exactly once, under the topic's lock: keep it short, and
    /// do not call into this hub from it (that deadlocks on the topic).
    ///
    /// # Panics
    ///
    /// Only if `build` panics (the sequence number is then used up, nothing
    /// is queued).
    pub fn publish_with(
        &self,
        topic: &T,
        keys: impl IntoIterator<Item = K>,
        build: impl FnOnce(u64) -> M,
    ) -> u64 {
        // The map's read guard, held through the publish, keeps the topic from being freed
        // meanwhile (see `HubInner::release`) and spares an `Arc` clone and drop (two
        // atomic read-modify-writes) per publish; it only holds back the creation and
        // freeing of topics in the same shard.
        let found = self.inner.topic(topic);
        let assign = |st: &mut TopicState<T, K, M>| -> Result<u64, std::convert::Infallible> {
            st.seq += 1;
            Ok(st.seq)
        };
        match self.deliver(found, assign, keys, build) {
            Ok(seq) => seq,
            Err(never) => match never {},
        }
    }

    /// The publish itself, on a topic found with its shard's read lock: `assign` picks
    /// the sequence number under the topic's lock (and stores it in the state), or
    /// refuses the publish, which then changes nothing.
    pub(crate) fn deliver<R>(
        &self,
        found: TopicGuard<'_, T, K, M>,
        assign: impl FnOnce(&mut TopicState<T, K, M>) -> Result<u64, R>,
        keys: impl IntoIterator<Item = K>,
        build: impl FnOnce(u64) -> M,
    ) -> Result<u64, R> {
        let t: &Topic<T, K, M> = found.value();
        let mut effects = Effects::default();
        let mut evicted: Vec<Arc<SubShared<T, K, M>>> = Vec::new();
        let seq;
        {
            let mut guard = lock(&t.state);
            let st = &mut *guard;
            seq = assign(st)?;
            let msg = build(seq);
            let keyed = st.lvc.insert(keys, seq, &msg);
            st.published += 1;
            let lvc = &st.lvc;
            let size = msg.byte_len();
            let mut resync_cache: Option<(Arc<Vec<Stamped<M>>>, usize)> = None;
            let mut delivered = 0u64;
            let mut dead = false;
            for e in st.subs.iter_mut() {
                let (pushed, wake) = {
                    let mut q = e.sub.queue.lock();
                    let pushed = q.push_msg(
                        &e.sub.policy,
                        e.slot,
                        keyed,
                        seq,
                        &msg,
                        size,
                        |s| lvc.is_current(s),
                        || {
                            let (messages, bytes) = resync_cache
                                .get_or_insert_with(|| {
                                    let snap = lvc.snapshot();
                                    let bytes = snapshot_bytes(&snap);
                                    (Arc::new(snap), bytes)
                                })
                                .clone();
                            (seq, messages, bytes)
                        },
                        &mut effects,
                    );
                    let wake = if pushed != Pushed::Dead && q.has_waiter() {
                        Some(q.take_wakers())
                    } else {
                        None
                    };
                    (pushed, wake)
                };
                if let Some(w) = wake {
                    w.wake();
                }
                match pushed {
                    Pushed::Queued => delivered += 1,
                    Pushed::Dead => {
                        e.alive = false;
                        dead = true;
                    }
                    Pushed::Evicted(_) => {
                        e.alive = false;
                        dead = true;
                        evicted.push(Arc::clone(&e.sub));
                    }
                }
            }
            st.delivered += delivered;
            if dead {
                st.remove_dead();
            }
        }
        drop(found);
        self.inner.settle(effects, evicted);
        Ok(seq)
    }

    /// Creates a subscription with the given slow-consumer policy. It holds
    /// no topic yet: add topics with [`Subscription::subscribe`].
    pub fn subscribe(&self, policy: SlowConsumerPolicy) -> Subscription<T, K, M> {
        let id = SubscriberId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        self.inner
            .counters
            .subscribers
            .fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(SubShared {
            id,
            policy,
            queue: QueueLock::new(Queue::new()),
        });
        self.inner.registry.insert(id.0, Arc::downgrade(&shared));
        Subscription::new(
            shared,
            Arc::downgrade(&self.inner),
            Arc::clone(&self.inner.counters),
        )
    }

    /// The topic's current last values: the newest message per key, ascending
    /// `seq`, and the topic's sequence number. An unknown topic gives an empty
    /// snapshot with `seq` 0.
    pub fn snapshot(&self, topic: &T) -> Snapshot<M> {
        let Some(t) = self.inner.topics.get(topic).map(|t| Arc::clone(t.value())) else {
            return Snapshot {
                seq: 0,
                messages: Vec::new(),
            };
        };
        let st = lock(&t.state);
        Snapshot {
            seq: st.seq,
            messages: st.lvc.snapshot(),
        }
    }

    /// Forgets the cached last values of `topic` whose key fails `keep`; returns
    /// how many keys were forgotten (0 for an unknown topic).
    ///
    /// For keys that no longer exist: a widget removed from a dashboard, or
    /// every key of a deleted one (`|_| false`), so that a later subscriber's
    /// snapshot does not show them. Current subscribers and the topic's
    /// sequence numbers are unaffected; under
    /// [`SlowConsumerPolicy::Conflate`] a forgotten key's queued messages may
    /// be conflated away like superseded ones.
    pub fn retain_cached(&self, topic: &T, keep: impl FnMut(&K) -> bool) -> usize {
        let Some(t) = self.inner.topics.get(topic).map(|t| Arc::clone(t.value())) else {
            return 0;
        };
        lock(&t.state).lvc.retain(keep)
    }

    /// Hub-wide counters. Takes each topic's lock briefly (O(topics)); meant
    /// for metrics scrapes, not for a hot loop.
    pub fn stats(&self) -> HubStats {
        let c = &self.inner.counters;
        let mut stats = HubStats {
            conflated: c.conflated.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            subscribers: c.subscribers.load(Ordering::Relaxed),
            ..HubStats::default()
        };
        let topics: Vec<TopicRef<T, K, M>> = self
            .inner
            .topics
            .iter()
            .map(|t| Arc::clone(t.value()))
            .collect();
        stats.topics = topics.len();
        for t in topics {
            let st = lock(&t.state);
            stats.published += st.published;
            stats.delivered += st.delivered;
        }
        stats
    }

    /// Subscribers currently registered on `topic` (0 for an unknown topic).
    pub fn subscriber_count(&self, topic: &T) -> usize {
        self.topic_stats(topic).map_or(0, |s| s.subscribers)
    }

    /// Counters of one topic; `None` if the hub does not hold the topic (it
    /// was never published to and has no subscriber now).
    pub fn topic_stats(&self, topic: &T) -> Option<TopicStats> {
        let t = self
            .inner
            .topics
            .get(topic)
            .map(|t| Arc::clone(t.value()))?;
        let st = lock(&t.state);
        Some(TopicStats {
            seq: st.seq,
            published: st.published,
            delivered: st.delivered,
            subscribers: st.subs.len(),
            keys: st.lvc.key_count(),
            cached_messages: st.lvc.message_count(),
        })
    }
}
