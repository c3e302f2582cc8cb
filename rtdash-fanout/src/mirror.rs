//! Mirrored hubs: topics whose sequence numbers and last values come from elsewhere
//! (see `Hub::mirrored`).

use std::sync::Arc;

use crate::hub::{TopicState, lock};
use crate::queue::{Effects, Pushed, snapshot_bytes};
use crate::{Hub, HubConfig, Key, Message, Stamped};

/// What the observer of a mirrored hub is told about a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interest {
    /// A local subscriber asked for the topic: the hub now holds it, pending, until
    /// [`Hub::reset`] gives it its first snapshot.
    Wanted,
    /// The last local subscriber left: the hub forgot the topic.
    Dropped,
}

/// The observer of a mirrored hub.
pub(crate) type Observer<T> = Arc<dyn Fn(&T, Interest) + Send + Sync>;

/// What became of a message given to [`Hub::publish_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MirrorOutcome {
    /// Delivered to the topic's subscribers and cached.
    Published,
    /// The topic already has this sequence number: dropped.
    Duplicate,
    /// Messages are missing before this one (the topic expects `expected`): nothing was
    /// done; catch up, or [`Hub::reset`].
    Gap {
        /// The sequence number the topic expects next.
        expected: u64,
    },
    /// The topic waits for its first snapshot ([`Hub::reset`]): nothing was done.
    Pending,
    /// The hub does not hold the topic (no local subscriber): nothing was done.
    NotHeld,
}

/// One cached message of a mirrored topic, for [`Hub::reset`]: the message, its sequence
/// number and the keys it is the newest value of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached<K, M> {
    /// The keys the message is the newest value of.
    pub keys: Vec<K>,
    /// The message with its sequence number.
    pub stamped: Stamped<M>,
}

impl<T, K, M> Hub<T, K, M>
where
    T: Key,
    K: Key,
    M: Message,
{
    /// Creates an empty mirrored hub: its topics repeat, for local subscribers, topics
    /// whose source is another system (a backplane shared by several servers), which
    /// assigns the sequence numbers; the hub only delivers.
    ///
    /// - A topic is created by its first local subscriber, *pending*: the subscriber is
    ///   registered but gets no snapshot yet, and `observer` is told
    ///   [`Interest::Wanted`]. The mirror then subscribes at the source, reads its snapshot
    ///   and calls [`reset`](Self::reset), which sends it to every subscriber waiting.
    /// - Each message from the source goes in with [`publish_at`](Self::publish_at) and
    ///   the source's sequence number: one at or below the topic's is a duplicate and is
    ///   dropped; one past the next is a [`MirrorOutcome::Gap`] and changes nothing (the
    ///   mirror catches up, or resynchronises with `reset`).
    /// - When the last local subscriber leaves, the topic is forgotten and `observer` is
    ///   told [`Interest::Dropped`].
    ///
    /// `observer` runs inside the hub, while a map shard is locked: it must be short and
    /// must not call the hub; record the topic and act on it elsewhere. Publish to a
    /// mirrored hub only with `publish_at` and `reset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use rtdash_fanout::{Cached, Event, Hub, HubConfig, Interest, MirrorOutcome};
    /// use rtdash_fanout::{SlowConsumerPolicy, Stamped};
    ///
    /// let wanted = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&wanted);
    /// let hub: Hub<&str, &str, &str> = Hub::mirrored(HubConfig::default(), move |t, i| {
    ///     seen.lock().unwrap().push((*t, i));
    /// });
    /// let sub = hub.subscribe(SlowConsumerPolicy::default());
    /// sub.subscribe("ops")?;
    /// assert_eq!(*wanted.lock().unwrap(), [("ops", Interest::Wanted)]);
    /// assert!(sub.try_recv().is_err()); // pending: no snapshot yet
    ///
    /// // The source's state: seq 41, the newest "cpu" value published at 40.
    /// let cpu = Cached { keys: vec!["cpu"], stamped: Stamped { seq: 40, msg: "cpu=41" } };
    /// assert!(hub.reset(&"ops", 41, vec![cpu]));
    /// assert_eq!(hub.publish_at(&"ops", ["mem"], 42, "mem=73"), MirrorOutcome::Published);
    /// assert_eq!(hub.publish_at(&"ops", ["mem"], 42, "mem=73"), MirrorOutcome::Duplicate);
    /// assert_eq!(hub.publish_at(&"ops", ["mem"], 44, "mem=75"), MirrorOutcome::Gap { expected: 43 });
    ///
    /// assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { seq: 41, .. })));
    /// assert!(matches!(sub.try_recv(), Ok(Event::Message { seq: 42, .. })));
    /// drop(sub);
    /// assert_eq!(wanted.lock().unwrap()[1], ("ops", Interest::Dropped));
    /// # Ok::<(), rtdash_fanout::FanoutError>(())
    /// ```
    pub fn mirrored(
        config: HubConfig,
        observer: impl Fn(&T, Interest) + Send + Sync + 'static,
    ) -> Self {
        Self::with_observer(config, Some(Arc::new(observer)))
    }

    /// Whether the hub is mirrored (made with [`mirrored`](Self::mirrored)).
    pub fn is_mirrored(&self) -> bool {
        self.inner.observer.is_some()
    }

    /// The topics the hub holds now (for a mirrored hub: the topics with local
    /// subscribers).
    pub fn topics(&self) -> Vec<T> {
        self.inner.topic_names()
    }

    /// Whether the topic is held and waits for its first [`reset`](Self::reset).
    pub fn is_pending(&self, topic: &T) -> bool {
        self.inner
            .held(topic)
            .is_some_and(|t| lock(&t.value().state).pending)
    }

    /// The topic's sequence number, if the hub holds it.
    pub fn seq(&self, topic: &T) -> Option<u64> {
        self.inner.held(topic).map(|t| lock(&t.value().state).seq)
    }

    /// Publishes `msg` on a held topic with the sequence number its source assigned:
    /// delivered only if `seq` is the topic's next one (see [`MirrorOutcome`]). Never
    /// creates a topic. As [`publish_multi`](Hub::publish_multi) otherwise.
    pub fn publish_at(
        &self,
        topic: &T,
        keys: impl IntoIterator<Item = K>,
        seq: u64,
        msg: M,
    ) -> MirrorOutcome {
        let Some(found) = self.inner.held(topic) else {
            return MirrorOutcome::NotHeld;
        };
        let assign = |st: &mut TopicState<T, K, M>| {
            if st.pending {
                Err(MirrorOutcome::Pending)
            } else if seq <= st.seq {
                Err(MirrorOutcome::Duplicate)
            } else if seq > st.seq.saturating_add(1) {
                Err(MirrorOutcome::Gap {
                    expected: st.seq.saturating_add(1),
                })
            } else {
                st.seq = seq;
                Ok(seq)
            }
        };
        match self.deliver(found, assign, keys, move |_| msg) {
            Ok(_) => MirrorOutcome::Published,
            Err(outcome) => outcome,
        }
    }

    /// Replaces a held topic's state by its source's: sequence number `seq` and the
    /// cached messages `cached` (any order); every subscriber of the topic gets it as a
    /// fresh snapshot, which supersedes whatever was queued for it. The first reset of a
    /// pending topic gives its waiting subscribers their first snapshot.
    ///
    /// The sequence number never goes back: a `seq` below the topic's changes nothing and
    /// returns `false` (as does a topic the hub does not hold). Messages with a sequence
    /// number above `seq` are ignored.
    pub fn reset(&self, topic: &T, seq: u64, mut cached: Vec<Cached<K, M>>) -> bool {
        cached.retain(|c| c.stamped.seq <= seq);
        cached.sort_by_key(|c| c.stamped.seq);
        self.resync(topic, |st| {
            if seq < st.seq {
                return false;
            }
            st.seq = seq;
            st.lvc = crate::lvc::Lvc::new();
            for c in cached {
                st.lvc.insert(c.keys, c.stamped.seq, &c.stamped.msg);
            }
            true
        })
    }

    /// Replaces every cached message of a held, non-pending topic by `f(message)` and
    /// sends every subscriber the result as a fresh snapshot, with the same sequence
    /// number (e.g. to mark values stale while the source is unreachable). Returns
    /// whether the topic was held.
    pub fn map_cached(&self, topic: &T, mut f: impl FnMut(&M) -> M) -> bool {
        self.resync(topic, |st| {
            if st.pending {
                return false;
            }
            st.lvc.map_messages(&mut f);
            true
        })
    }

    /// Changes a held topic's state with `change` (which says whether it changed it)
    /// and sends every subscriber the topic's new snapshot.
    fn resync(&self, topic: &T, change: impl FnOnce(&mut TopicState<T, K, M>) -> bool) -> bool {
        let Some(found) = self.inner.held(topic) else {
            return false;
        };
        let t = found.value();
        let mut effects = Effects::default();
        let mut evicted = Vec::new();
        {
            let mut guard = lock(&t.state);
            let st = &mut *guard;
            if !change(st) {
                return false;
            }
            st.pending = false;
            let seq = st.seq;
            let messages = Arc::new(st.lvc.snapshot());
            let bytes = snapshot_bytes(&messages);
            let mut dead = false;
            for e in &mut st.subs {
                let (pushed, wake) = {
                    let mut q = e.sub.queue.lock();
                    let pushed = q.push_replacing_snapshot(
                        &e.sub.policy,
                        e.slot,
                        seq,
                        &messages,
                        bytes,
                        &mut effects,
                    );
                    (pushed, q.take_wakers())
                };
                wake.wake();
                match pushed {
                    Pushed::Queued => {}
                    Pushed::Dead => {
                        e.mark_dead();
                        dead = true;
                    }
                    Pushed::Evicted(_) => {
                        e.mark_dead();
                        dead = true;
                        evicted.push(Arc::clone(&e.sub));
                    }
                }
            }
            if dead {
                st.remove_dead();
            }
        }
        drop(found);
        self.inner.settle(effects, evicted);
        true
    }
}
