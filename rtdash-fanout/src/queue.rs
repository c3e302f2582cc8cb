//! One subscriber's bounded queue and its slow-consumer policy.
//!
//! Pure logic: the queue never locks a topic. The caller (a publish or a
//! subscribe, holding the topic's lock) passes in what the policy needs from
//! the topic: whether a sequence number is still current in the last-value
//! cache, and a snapshot for resynchronisation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;

use crate::{Event, EvictReason, Message, SlowConsumerPolicy, Stamped, TryRecvError};

/// A queued event. `slot` indexes [`Queue::slots`].
#[derive(Debug)]
pub(crate) enum Item<M> {
    Msg {
        slot: u32,
        /// Whether the message carries a key (is in the last-value cache);
        /// keyless messages are never superseded.
        keyed: bool,
        seq: u64,
        msg: M,
    },
    Snap {
        slot: u32,
        seq: u64,
        /// Shared between the subscribers resynchronised by one publish.
        messages: Arc<Vec<Stamped<M>>>,
        bytes: usize,
    },
}

impl<M: Message> Item<M> {
    #[inline]
    fn slot(&self) -> u32 {
        match self {
            Self::Msg { slot, .. } | Self::Snap { slot, .. } => *slot,
        }
    }

    #[inline]
    fn bytes(&self) -> usize {
        match self {
            Self::Msg { msg, .. } => msg.byte_len(),
            Self::Snap { bytes, .. } => *bytes,
        }
    }

    /// Messages lost if this item is dropped.
    fn weight(&self) -> u64 {
        match self {
            Self::Msg { .. } => 1,
            Self::Snap { messages, .. } => messages.len() as u64,
        }
    }
}

/// Total `byte_len` of a snapshot.
pub(crate) fn snapshot_bytes<M: Message>(messages: &[Stamped<M>]) -> usize {
    messages
        .iter()
        .fold(0usize, |acc, s| acc.saturating_add(s.msg.byte_len()))
}

/// One subscribed topic. `X` is the caller's handle on the topic.
#[derive(Debug)]
pub(crate) struct Slot<T, X> {
    pub(crate) topic: T,
    pub(crate) handle: X,
    /// Items of this topic in the queue.
    queued: usize,
}

/// The subscribed topics. Slot 0 is stored inline: most subscriptions hold
/// one topic, and the publish and receive paths then touch no other
/// allocation than the queue's own.
#[derive(Debug)]
#[repr(C)]
struct Slots<T, X> {
    first: Option<Slot<T, X>>,
    more: Vec<Option<Slot<T, X>>>,
}

impl<T, X> Slots<T, X> {
    #[inline]
    fn get(&self, i: u32) -> Option<&Slot<T, X>> {
        if i == 0 {
            self.first.as_ref()
        } else {
            self.more.get(i as usize - 1)?.as_ref()
        }
    }

    #[inline]
    fn get_mut(&mut self, i: u32) -> Option<&mut Slot<T, X>> {
        if i == 0 {
            self.first.as_mut()
        } else {
            self.more.get_mut(i as usize - 1)?.as_mut()
        }
    }

    fn entry(&mut self, i: u32) -> Option<&mut Option<Slot<T, X>>> {
        if i == 0 {
            Some(&mut self.first)
        } else {
            self.more.get_mut(i as usize - 1)
        }
    }

    /// (slot index, slot) of every occupied slot.
    fn iter(&self) -> impl Iterator<Item = (u32, &Slot<T, X>)> {
        std::iter::once(&self.first)
            .chain(self.more.iter())
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot<T, X>> {
        std::iter::once(&mut self.first)
            .chain(self.more.iter_mut())
            .flatten()
    }

    fn insert(&mut self, slot: Slot<T, X>) -> u32 {
        if self.first.is_none() {
            self.first = Some(slot);
            return 0;
        }
        if let Some(i) = self.more.iter().position(Option::is_none) {
            self.more[i] = Some(slot);
            i as u32 + 1
        } else {
            self.more.push(Some(slot));
            self.more.len() as u32
        }
    }

    fn take_all(&mut self) -> impl Iterator<Item = Slot<T, X>> {
        self.first
            .take()
            .into_iter()
            .chain(std::mem::take(&mut self.more).into_iter().flatten())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Open,
    Evicted {
        reason: EvictReason,
        reported: bool,
    },
    /// The hub was dropped: drain what is queued, then end.
    HubClosed,
    /// The subscription was dropped.
    Dropped,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The subscriber is gone (dropped, evicted earlier, hub closed).
    Dead,
    /// This push evicted the subscriber.
    Evicted(EvictReason),
}

/// Counts a push caused, for the hub's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Effects {
    pub(crate) conflated: u64,
    pub(crate) dropped: u64,
}

/// A subscriber's queue. `repr(C)`, so that what a publish and a receive
/// touch (`items` .. `slots.first`, about 100 bytes) sits together right
/// after the mutex: with 10,000 subscribers, each cache line touched per
/// delivery is a likely miss.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Queue<T, M, X> {
    items: VecDeque<Item<M>>,
    bytes: usize,
    waker: Option<Waker>,
    delivered: u64,
    high_water_mark: usize,
    /// Number of slots with a pending skip count.
    skip_slots: u32,
    /// `status == Status::Open`, kept beside the hot fields.
    open: bool,
    slots: Slots<T, X>,
    /// Messages dropped by drop-oldest and not yet reported, per slot.
    skips: Vec<u64>,
    status: Status,
    topics: usize,
    extra_wakers: Vec<Waker>,
    conflated: u64,
    dropped: u64,
}

/// Wakers taken out of a queue, to be woken after its lock is released.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wake {
    pub(crate) fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.rest {
            w.wake();
        }
    }
}

impl<T, M, X> Queue<T, M, X> {
    pub(crate) fn status(&self) -> Status {
        self.status
    }

    pub(crate) fn set_status(&mut self, status: Status) {
        self.status = status;
        self.open = matches!(status, Status::Open);
    }

    /// Adds `n` to the pending skip count of `slot`.
    fn add_skip(&mut self, slot: u32, n: u64) {
        let i = slot as usize;
        if self.skips.len() <= i {
            self.skips.resize(i + 1, 0);
        }
        if self.skips[i] == 0 {
            self.skip_slots += 1;
        }
        self.skips[i] += n;
    }

    /// Takes the pending skip count of `slot`.
    fn take_skip(&mut self, slot: u32) -> u64 {
        match self.skips.get_mut(slot as usize) {
            Some(n) if *n > 0 => {
                self.skip_slots -= 1;
                std::mem::take(n)
            }
            _ => 0,
        }
    }

    /// Removes every topic (returns their handles) and frees the queue.
    pub(crate) fn clear(&mut self) -> Vec<X> {
        self.items = VecDeque::new();
        self.bytes = 0;
        self.topics = 0;
        self.skip_slots = 0;
        self.skips = Vec::new();
        self.slots.take_all().map(|s| s.handle).collect()
    }

    /// The subscribed topics.
    pub(crate) fn topic_list(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.slots.iter().map(|(_, s)| s.topic.clone()).collect()
    }
}

impl<T: Clone + PartialEq, M: Message, X> Queue<T, M, X> {
    pub(crate) fn new() -> Self {
        Self {
            items: VecDeque::new(),
            bytes: 0,
            slots: Slots {
                first: None,
                more: Vec::new(),
            },
            topics: 0,
            skip_slots: 0,
            skips: Vec::new(),
            status: Status::Open,
            open: true,
            waker: None,
            extra_wakers: Vec::new(),
            delivered: 0,
            conflated: 0,
            dropped: 0,
            high_water_mark: 0,
        }
    }

    pub(crate) fn topics(&self) -> usize {
        self.topics
    }

    pub(crate) fn find(&self, topic: &T) -> Option<u32> {
        self.slots
            .iter()
            .find(|(_, s)| s.topic == *topic)
            .map(|(i, _)| i)
    }

    pub(crate) fn handle(&self, slot: u32) -> Option<&X> {
        self.slots.get(slot).map(|s| &s.handle)
    }

    /// Registers a topic; returns its slot.
    pub(crate) fn add_slot(&mut self, topic: T, handle: X) -> u32 {
        let slot = Slot {
            topic,
            handle,
            queued: 0,
        };
        self.topics += 1;
        self.slots.insert(slot)
    }

    /// Unregisters a topic and discards its queued events.
    pub(crate) fn remove_slot(&mut self, slot: u32) -> Option<X> {
        let s = self.slots.entry(slot)?.take()?;
        self.topics -= 1;
        self.take_skip(slot);
        if s.queued > 0 {
            let mut freed = 0usize;
            self.items.retain(|it| {
                let keep = it.slot() != slot;
                if !keep {
                    freed = freed.saturating_add(it.bytes());
                }
                keep
            });
            self.bytes = self.bytes.saturating_sub(freed);
        }
        Some(s.handle)
    }

    pub(crate) fn register(&mut self, waker: &Waker) {
        match &self.waker {
            None => self.waker = Some(waker.clone()),
            Some(w) if w.will_wake(waker) => {}
            Some(_) => {
                if !self.extra_wakers.iter().any(|w| w.will_wake(waker)) {
                    self.extra_wakers.push(waker.clone());
                }
            }
        }
    }

    /// Takes the registered wakers (registered only while the consumer waits
    /// on an empty queue, so a busy consumer is never woken).
    pub(crate) fn take_wakers(&mut self) -> Wake {
        Wake {
            first: self.waker.take(),
            rest: if self.extra_wakers.is_empty() {
                Vec::new()
            } else {
                std::mem::take(&mut self.extra_wakers)
            },
        }
    }

    pub(crate) fn has_waiter(&self) -> bool {
        self.waker.is_some()
    }

    #[inline]
    fn enqueue(&mut self, item: Item<M>, size: usize) {
        if let Some(s) = self.slots.get_mut(item.slot()) {
            s.queued += 1;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.items.push_back(item);
    }

    fn evict(&mut self, reason: EvictReason) -> Pushed {
        self.items = VecDeque::new();
        self.bytes = 0;
        self.skip_slots = 0;
        self.skips = Vec::new();
        for s in self.slots.iter_mut() {
            s.queued = 0;
        }
        self.set_status(Status::Evicted {
            reason,
            reported: false,
        });
        Pushed::Evicted(reason)
    }

    /// Queues `item` under `policy`.
    ///
    /// `is_current(seq)`: whether message `seq` of the item's topic is still
    /// the newest for one of its keys. `resync()`: a snapshot of the item's
    /// topic (seq, messages, bytes) covering every message published so far,
    /// including `item` if it is a keyed message.
    #[inline]
    pub(crate) fn push(
        &mut self,
        policy: &SlowConsumerPolicy,
        item: Item<M>,
        is_current: impl Fn(u64) -> bool,
        resync: impl FnOnce() -> (u64, Arc<Vec<Stamped<M>>>, usize),
        effects: &mut Effects,
    ) -> Pushed {
        if !self.open {
            return Pushed::Dead;
        }
        let size = item.bytes();
        let len = self.items.len();
        // Fast path: the queue has room under every bound.
        let queued = match (self.slots.get(item.slot()), policy) {
            (Some(s), _) => s.queued,
            // Not subscribed (cannot happen: the topic's list and the slots
            // change together under the topic's lock).
            (None, SlowConsumerPolicy::Conflate { .. }) => return Pushed::Dead,
            (None, _) => 0,
        };
        let fits = Self::fits_bounds(policy, queued, len, self.bytes, size);
        let pushed = if fits {
            self.enqueue(item, size);
            Pushed::Queued
        } else {
            self.push_full(policy, item, size, is_current, resync, effects)
        };
        if self.items.len() > self.high_water_mark {
            self.high_water_mark = self.items.len();
        }
        pushed
    }

    /// Whether one more message of `size` bytes fits under the policy's
    /// bounds: `queued` messages of its topic, `len` and `bytes` in the
    /// whole queue.
    #[inline]
    fn fits_bounds(
        policy: &SlowConsumerPolicy,
        queued: usize,
        len: usize,
        bytes: usize,
        size: usize,
    ) -> bool {
        match *policy {
            SlowConsumerPolicy::Conflate { max_messages } => queued < max_messages.get(),
            SlowConsumerPolicy::DropOldest {
                max_messages,
                max_bytes,
            }
            | SlowConsumerPolicy::Disconnect {
                max_messages,
                max_bytes,
            } => len < max_messages.get() && bytes.saturating_add(size) <= max_bytes.get(),
        }
    }

    /// [`push`](Self::push) for a live message: the hot path of a publish.
    /// The message is cloned straight into the queue.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_msg(
        &mut self,
        policy: &SlowConsumerPolicy,
        slot: u32,
        keyed: bool,
        seq: u64,
        msg: &M,
        size: usize,
        is_current: impl Fn(u64) -> bool,
        resync: impl FnOnce() -> (u64, Arc<Vec<Stamped<M>>>, usize),
        effects: &mut Effects,
    ) -> Pushed {
        if !self.open {
            return Pushed::Dead;
        }
        let len = self.items.len();
        let Some(s) = self.slots.get_mut(slot) else {
            return Pushed::Dead;
        };
        let fits = Self::fits_bounds(policy, s.queued, len, self.bytes, size);
        let pushed = if fits {
            s.queued += 1;
            self.bytes = self.bytes.saturating_add(size);
            self.items.push_back(Item::Msg {
                slot,
                keyed,
                seq,
                msg: msg.clone(),
            });
            Pushed::Queued
        } else {
            let item = Item::Msg {
                slot,
                keyed,
                seq,
                msg: msg.clone(),
            };
            self.push_full(policy, item, size, is_current, resync, effects)
        };
        if self.items.len() > self.high_water_mark {
            self.high_water_mark = self.items.len();
        }
        pushed
    }

    /// The queue is at a bound: apply the policy.
    #[cold]
    #[inline(never)]
    fn push_full(
        &mut self,
        policy: &SlowConsumerPolicy,
        item: Item<M>,
        size: usize,
        is_current: impl Fn(u64) -> bool,
        resync: impl FnOnce() -> (u64, Arc<Vec<Stamped<M>>>, usize),
        effects: &mut Effects,
    ) -> Pushed {
        let slot = item.slot();
        let Some(queued) = self.slots.get(slot).map(|s| s.queued) else {
            return Pushed::Dead;
        };
        match *policy {
            SlowConsumerPolicy::Conflate { max_messages } => {
                let max = max_messages.get();
                if queued < max {
                    self.enqueue(item, size);
                    return Pushed::Queued;
                }
                // Compaction: drop this topic's messages that are no longer
                // the newest for any key (a newer message for each of their
                // keys is queued behind them).
                let removed = self.remove_where(slot, |it| match it {
                    Item::Msg {
                        keyed: true, seq, ..
                    } => !is_current(*seq),
                    _ => false,
                });
                self.note_conflated(removed, effects);
                let queued = queued - removed as usize;
                if queued <= max / 2 {
                    self.enqueue(item, size);
                    return Pushed::Queued;
                }
                // Still too many distinct keys queued: replace the topic's
                // backlog by one fresh snapshot.
                let removed = self.remove_where(slot, |_| true);
                self.note_conflated(removed, effects);
                let (seq, messages, bytes) = resync();
                self.enqueue(
                    Item::Snap {
                        slot,
                        seq,
                        messages,
                        bytes,
                    },
                    bytes,
                );
                if let Item::Msg { keyed: false, .. } = item {
                    // Not in the snapshot: still deliver it, after.
                    self.enqueue(item, size);
                }
                Pushed::Queued
            }
            SlowConsumerPolicy::DropOldest {
                max_messages,
                max_bytes,
            } => {
                self.enqueue(item, size);
                while self.items.len() > max_messages.get() || self.bytes > max_bytes.get() {
                    let Some(old) = self.items.pop_front() else {
                        break;
                    };
                    self.bytes = self.bytes.saturating_sub(old.bytes());
                    let weight = old.weight();
                    self.dropped += weight;
                    effects.dropped += weight;
                    if let Some(s) = self.slots.get_mut(old.slot()) {
                        s.queued -= 1;
                        self.add_skip(old.slot(), weight);
                    }
                }
                Pushed::Queued
            }
            SlowConsumerPolicy::Disconnect {
                max_messages,
                max_bytes,
            } => {
                if self.items.len() >= max_messages.get() {
                    return self.evict(EvictReason::MessageLimit {
                        limit: max_messages.get(),
                    });
                }
                if self.bytes.saturating_add(size) > max_bytes.get() {
                    return self.evict(EvictReason::ByteLimit {
                        limit: max_bytes.get(),
                    });
                }
                self.enqueue(item, size);
                Pushed::Queued
            }
        }
    }

    /// Replaces whatever is queued for `slot` by a snapshot (a mirrored topic was
    /// resynchronised: the snapshot supersedes the backlog), under the policy's bounds.
    pub(crate) fn push_replacing_snapshot(
        &mut self,
        policy: &SlowConsumerPolicy,
        slot: u32,
        seq: u64,
        messages: &Arc<Vec<Stamped<M>>>,
        bytes: usize,
        effects: &mut Effects,
    ) -> Pushed {
        if !self.open {
            return Pushed::Dead;
        }
        let removed = self.remove_where(slot, |_| true);
        self.note_conflated(removed, effects);
        let item = Item::Snap {
            slot,
            seq,
            messages: Arc::clone(messages),
            bytes,
        };
        let resync = || (seq, Arc::clone(messages), bytes);
        self.push(policy, item, |_| true, resync, effects)
    }

    fn note_conflated(&mut self, removed: u64, effects: &mut Effects) {
        self.conflated += removed;
        effects.conflated += removed;
    }

    /// Removes the items of `slot` matching `pred`; returns how many.
    fn remove_where(&mut self, slot: u32, pred: impl Fn(&Item<M>) -> bool) -> u64 {
        let before = self.items.len();
        let mut freed = 0usize;
        self.items.retain(|it| {
            let remove = it.slot() == slot && pred(it);
            if remove {
                freed = freed.saturating_add(it.bytes());
            }
            !remove
        });
        let removed = before - self.items.len();
        self.bytes = self.bytes.saturating_sub(freed);
        if let Some(s) = self.slots.get_mut(slot) {
            s.queued -= removed;
        }
        removed as u64
    }

    /// The next event, if one is queued (ignores the status).
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Event<T, M>> {
        if self.skip_slots > 0 {
            return self.pop_with_skips();
        }
        let slot = self.items.front()?.slot();
        self.pop_item(slot)
    }

    #[inline]
    fn pop_item(&mut self, slot: u32) -> Option<Event<T, M>> {
        let Some(s) = self.slots.get_mut(slot) else {
            // Unreachable: items of a removed slot are removed with it.
            self.items.pop_front();
            return None;
        };
        let topic = s.topic.clone();
        s.queued -= 1;
        self.delivered += 1;
        let item = self.items.pop_front()?;
        self.bytes = self.bytes.saturating_sub(item.bytes());
        Some(match item {
            Item::Msg { seq, msg, .. } => Event::Message { topic, seq, msg },
            Item::Snap { seq, messages, .. } => Event::Snapshot {
                topic,
                seq,
                messages: Arc::try_unwrap(messages).unwrap_or_else(|shared| (*shared).clone()),
            },
        })
    }

    /// `pop` when some topic has a pending `Skipped` notice: it goes before
    /// that topic's next event, or out when the queue runs empty.
    #[cold]
    fn pop_with_skips(&mut self) -> Option<Event<T, M>> {
        let slot = match self.items.front() {
            Some(front) => front.slot(),
            None => {
                self.slots
                    .iter()
                    .find(|(i, _)| self.skips.get(*i as usize).is_some_and(|n| *n > 0))?
                    .0
            }
        };
        let count = self.take_skip(slot);
        if count > 0 {
            let topic = self.slots.get(slot)?.topic.clone();
            self.delivered += 1;
            return Some(Event::Skipped { topic, count });
        }
        self.pop_item(slot)
    }

    /// The next event including the terminal `Evicted`; `Err(open)` when
    /// nothing is ready, with `open` telling whether more may come.
    ///
    /// Always inlined, down to the caller of `try_recv`, and the common case
    /// (a live message, no pending skip notice) builds its `Event` straight
    /// from the popped item: each extra move of an `Event` through memory
    /// (returned through a call, rewrapped from `Option` to `Result`) was
    /// copied piecewise and read back whole, a store-forwarding stall
    /// (about a fifth of a receive's time when measured).
    #[inline(always)]
    pub(crate) fn next_event(&mut self) -> Result<Event<T, M>, TryRecvError> {
        if self.skip_slots == 0
            && let Some(Item::Msg { slot, .. }) = self.items.front()
            && let Some(s) = self.slots.get_mut(*slot)
        {
            let topic = s.topic.clone();
            s.queued -= 1;
            self.delivered += 1;
            if let Some(Item::Msg { seq, msg, .. }) = self.items.pop_front() {
                self.bytes = self.bytes.saturating_sub(msg.byte_len());
                return Ok(Event::Message { topic, seq, msg });
            }
        }
        self.next_event_slow()
    }

    /// [`next_event`](Self::next_event) for everything but a plain message.
    #[inline(never)]
    fn next_event_slow(&mut self) -> Result<Event<T, M>, TryRecvError> {
        match self.pop() {
            Some(ev) => Ok(ev),
            None => self.terminal(),
        }
    }

    /// What the consumer gets from an empty queue.
    #[cold]
    fn terminal(&mut self) -> Result<Event<T, M>, TryRecvError> {
        match &mut self.status {
            Status::Open => Err(TryRecvError::Empty),
            Status::Evicted { reason, reported } if !*reported => {
                *reported = true;
                self.delivered += 1;
                Ok(Event::Evicted { reason: *reason })
            }
            _ => Err(TryRecvError::Closed),
        }
    }

    pub(crate) fn stats(&self) -> crate::SubscriberStats {
        crate::SubscriberStats {
            delivered: self.delivered,
            conflated: self.conflated,
            dropped: self.dropped,
            queue_len: self.items.len(),
            queue_bytes: self.bytes,
            high_water_mark: self.high_water_mark,
            topics: self.topics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = Queue<u32, Arc<str>, ()>;

    fn msg(slot: u32, seq: u64, text: &str) -> Item<Arc<str>> {
        Item::Msg {
            slot,
            keyed: true,
            seq,
            msg: Arc::from(text),
        }
    }

    fn push(q: &mut Q, policy: SlowConsumerPolicy, item: Item<Arc<str>>) -> Pushed {
        let mut effects = Effects::default();
        q.push(
            &policy,
            item,
            |_| true,
            || (0, Arc::new(Vec::new()), 0),
            &mut effects,
        )
    }

    #[test]
    fn slots_are_reused_and_slot_zero_is_inline() {
        let mut q = Q::new();
        assert_eq!(q.add_slot(10, ()), 0);
        assert_eq!(q.add_slot(11, ()), 1);
        assert_eq!(q.add_slot(12, ()), 2);
        assert!(q.remove_slot(0).is_some());
        assert!(q.remove_slot(0).is_none());
        assert_eq!(q.find(&11), Some(1));
        assert_eq!(q.add_slot(13, ()), 0);
        assert_eq!(q.topic_list(), vec![13, 11, 12]);
        assert_eq!(q.topics(), 3);
        assert_eq!(q.clear().len(), 3);
        assert_eq!(q.topics(), 0);
    }

    #[test]
    fn byte_and_message_accounting_follow_push_and_pop() {
        let mut q = Q::new();
        q.add_slot(1, ());
        let policy = SlowConsumerPolicy::drop_oldest(10, 100).unwrap();
        assert_eq!(push(&mut q, policy, msg(0, 1, "abc")), Pushed::Queued);
        assert_eq!(push(&mut q, policy, msg(0, 2, "de")), Pushed::Queued);
        assert_eq!(q.stats().queue_bytes, 5);
        assert_eq!(q.stats().queue_len, 2);
        assert!(matches!(q.pop(), Some(Event::Message { seq: 1, .. })));
        assert_eq!(q.stats().queue_bytes, 2);
        assert!(matches!(q.pop(), Some(Event::Message { seq: 2, .. })));
        assert_eq!(q.pop(), None);
        assert_eq!(q.next_event(), Err(TryRecvError::Empty));
        assert_eq!(q.stats().delivered, 2);
        assert_eq!(q.stats().high_water_mark, 2);
    }

    #[test]
    fn closed_queue_refuses_and_reports_terminal_state() {
        let mut q = Q::new();
        q.add_slot(1, ());
        q.set_status(Status::Dropped);
        let policy = SlowConsumerPolicy::default();
        assert_eq!(push(&mut q, policy, msg(0, 1, "x")), Pushed::Dead);
        assert_eq!(q.next_event(), Err(TryRecvError::Closed));
        // A message for a slot that is not subscribed is refused too.
        let mut q = Q::new();
        assert_eq!(push(&mut q, policy, msg(3, 1, "x")), Pushed::Dead);
    }

    #[test]
    fn eviction_is_reported_once() {
        let mut q = Q::new();
        q.add_slot(1, ());
        let policy = SlowConsumerPolicy::disconnect(1, usize::MAX).unwrap();
        assert_eq!(push(&mut q, policy, msg(0, 1, "x")), Pushed::Queued);
        let reason = EvictReason::MessageLimit { limit: 1 };
        assert_eq!(
            push(&mut q, policy, msg(0, 2, "y")),
            Pushed::Evicted(reason)
        );
        assert_eq!(q.stats().queue_len, 0);
        assert_eq!(q.next_event(), Ok(Event::Evicted { reason }));
        assert_eq!(q.next_event(), Err(TryRecvError::Closed));
        assert_eq!(push(&mut q, policy, msg(0, 3, "z")), Pushed::Dead);
    }
}
