//! Partitioned ingest: the state of each partition of a durable log that this engine
//! owns, kept apart so that it can be checkpointed, handed over and dropped on its own.
//!
//! A partition is a set of metrics (all series of a metric in one partition, so a
//! widget's merges stay in one place). Each owned partition has its own [`Recorder`]:
//! window store, de-duplication horizon and source position. The refresh scheduler
//! evaluates only the widgets whose metric is in an owned partition; the others are
//! another node's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::checkpoint::RuleCheckpoint;
use crate::ingest::Recorder;

/// Maps a metric name to its partition.
pub(crate) type PartitionOf = Arc<dyn Fn(&str) -> u32 + Send + Sync>;

/// The partitions this engine owns, each with its recorder.
pub(crate) struct Partitions {
    of: PartitionOf,
    owned: RwLock<HashMap<u32, Recorder>>,
    /// Ownership changed since the scheduler last looked.
    moved: AtomicBool,
    /// Alert rule states restored from checkpoints, for the scheduler to take over.
    rules: Mutex<Vec<RuleCheckpoint>>,
}

impl std::fmt::Debug for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitions")
            .field("owned", &self.owned())
            .finish_non_exhaustive()
    }
}

impl Partitions {
    pub(crate) fn new(of: PartitionOf) -> Self {
        Self {
            of,
            owned: RwLock::new(HashMap::new()),
            moved: AtomicBool::new(false),
            rules: Mutex::new(Vec::new()),
        }
    }

    /// The partition of `metric`.
    pub(crate) fn partition_of(&self, metric: &str) -> u32 {
        (self.of)(metric)
    }

    /// The recorder of partition `p`, if owned.
    pub(crate) fn get(&self, p: u32) -> Option<Recorder> {
        self.owned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&p)
            .cloned()
    }

    /// The recorder of `metric`'s partition, if owned.
    pub(crate) fn recorder_for(&self, metric: &str) -> Option<Recorder> {
        self.get(self.partition_of(metric))
    }

    /// Whether `metric`'s partition is owned here.
    pub(crate) fn owns(&self, metric: &str) -> bool {
        self.owned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&self.partition_of(metric))
    }

    /// The owned partitions, ascending.
    pub(crate) fn owned(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .owned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// Every owned partition's recorder.
    pub(crate) fn recorders(&self) -> Vec<Recorder> {
        self.owned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Takes partition `p` with its (restored) recorder and rule states.
    pub(crate) fn insert(&self, p: u32, recorder: Recorder, rules: Vec<RuleCheckpoint>) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(rules);
        self.owned
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(p, recorder);
        self.moved.store(true, Ordering::Release);
    }

    /// Drops partition `p`.
    pub(crate) fn remove(&self, p: u32) -> Option<Recorder> {
        let r = self
            .owned
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&p);
        self.moved.store(true, Ordering::Release);
        r
    }

    /// Whether ownership changed since the last call, and the rule states restored since.
    pub(crate) fn take_moved(&self) -> Option<Vec<RuleCheckpoint>> {
        self.moved.swap(false, Ordering::AcqRel).then(|| {
            std::mem::take(&mut *self.rules.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }
}
