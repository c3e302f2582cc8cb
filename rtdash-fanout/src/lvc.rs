//! Last-value cache of one topic: the newest message per key.

use std::collections::HashMap;
use std::hash::Hash;

use foldhash::fast::RandomState;

use crate::Stamped;

/// Newest message per key. A message carrying several keys is stored once
/// with a count of the keys for which it is still the newest; it leaves the
/// cache when that count reaches 0 ("superseded").
#[derive(Debug)]
pub(crate) struct Lvc<K, M> {
    /// key -> seq of the newest message carrying it.
    keys: HashMap<K, u64, RandomState>,
    /// seq -> message, for every message that is still newest for >= 1 key.
    entries: HashMap<u64, Entry<M>, RandomState>,
}

#[derive(Debug)]
struct Entry<M> {
    msg: M,
    live: usize,
}

impl<K: Eq + Hash, M: Clone> Lvc<K, M> {
    pub(crate) fn new() -> Self {
        Self {
            keys: HashMap::default(),
            entries: HashMap::default(),
        }
    }

    /// Records `msg` (published as `seq`, greater than every earlier seq) as
    /// the newest message of each key. Returns whether the message was kept,
    /// i.e. it carries at least one key.
    pub(crate) fn insert(&mut self, keys: impl IntoIterator<Item = K>, seq: u64, msg: &M) -> bool {
        let mut live = 0;
        for key in keys {
            match self.keys.insert(key, seq) {
                // The same key twice in one message.
                Some(old) if old == seq => {}
                Some(old) => {
                    live += 1;
                    self.release(old);
                }
                None => live += 1,
            }
        }
        if live > 0 {
            self.entries.insert(
                seq,
                Entry {
                    msg: msg.clone(),
                    live,
                },
            );
        }
        live > 0
    }

    fn release(&mut self, seq: u64) {
        if let Some(entry) = self.entries.get_mut(&seq) {
            entry.live -= 1;
            if entry.live == 0 {
                self.entries.remove(&seq);
            }
        }
    }

    /// Replaces every cached message by `f(message)`.
    pub(crate) fn map_messages(&mut self, mut f: impl FnMut(&M) -> M) {
        for e in self.entries.values_mut() {
            e.msg = f(&e.msg);
        }
    }

    /// Forgets the keys for which `keep` returns false; a message left with no
    /// key leaves the cache. Returns how many keys were forgotten.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) -> usize {
        let mut released = Vec::new();
        self.keys.retain(|k, seq| {
            let kept = keep(k);
            if !kept {
                released.push(*seq);
            }
            kept
        });
        for &seq in &released {
            self.release(seq);
        }
        released.len()
    }

    /// Whether the message published as `seq` is still the newest for some key.
    pub(crate) fn is_current(&self, seq: u64) -> bool {
        self.entries.contains_key(&seq)
    }

    /// The cached messages, ascending seq.
    pub(crate) fn snapshot(&self) -> Vec<Stamped<M>> {
        let mut out: Vec<Stamped<M>> = self
            .entries
            .iter()
            .map(|(&seq, e)| Stamped {
                seq,
                msg: e.msg.clone(),
            })
            .collect();
        out.sort_unstable_by_key(|s| s.seq);
        out
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn message_count(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs(l: &Lvc<u8, u32>) -> Vec<(u64, u32)> {
        l.snapshot().into_iter().map(|s| (s.seq, s.msg)).collect()
    }

    #[test]
    fn newest_per_key_once_per_message() {
        let mut l = Lvc::new();
        assert!(l.insert([1, 2], 1, &10));
        assert!(l.insert([2], 2, &20));
        assert_eq!(seqs(&l), vec![(1, 10), (2, 20)]);
        assert!(l.insert([1], 3, &30));
        assert_eq!(seqs(&l), vec![(2, 20), (3, 30)]);
        assert!(!l.is_current(1));
        assert!(l.is_current(3));
        assert_eq!(l.key_count(), 2);
        assert_eq!(l.message_count(), 2);
    }

    #[test]
    fn keyless_messages_are_not_cached_and_duplicate_keys_count_once() {
        let mut l: Lvc<u8, u32> = Lvc::new();
        assert!(!l.insert([], 1, &1));
        assert!(l.insert([7, 7, 7], 2, &2));
        assert!(l.insert([7], 3, &3));
        assert_eq!(seqs(&l), vec![(3, 3)]);
    }

    #[test]
    fn retain_forgets_keys_and_drops_messages_left_without_one() {
        let mut l = Lvc::new();
        l.insert([1, 2], 1, &10);
        l.insert([3], 2, &20);
        assert_eq!(l.retain(|k| *k != 1), 1);
        // Message 1 still carries key 2.
        assert_eq!(seqs(&l), vec![(1, 10), (2, 20)]);
        assert_eq!(l.retain(|k| *k == 3), 1);
        assert_eq!(seqs(&l), vec![(2, 20)]);
        assert!(!l.is_current(1));
        assert_eq!(l.retain(|_| false), 1);
        assert_eq!(l.key_count(), 0);
        assert_eq!(l.message_count(), 0);
        assert_eq!(l.retain(|_| false), 0);
    }

    proptest! {
        /// Oracle: replay every message and keep, per key, the last one.
        #[test]
        fn matches_replay_oracle(ops in proptest::collection::vec(proptest::collection::vec(0u8..6, 0..4), 0..40)) {
            let mut l = Lvc::new();
            let mut oracle: std::collections::BTreeMap<u8, u64> = Default::default();
            for (i, keys) in ops.iter().enumerate() {
                let seq = i as u64 + 1;
                l.insert(keys.iter().copied(), seq, &(seq as u32));
                for k in keys { oracle.insert(*k, seq); }
            }
            let mut want: Vec<u64> = oracle.values().copied().collect();
            want.sort_unstable();
            want.dedup();
            let got: Vec<u64> = l.snapshot().iter().map(|s| s.seq).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(l.key_count(), oracle.len());
        }
    }
}
