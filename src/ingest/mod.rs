//! The ingest seam: where validated events go, and how they reach the window store.
//!
//! Ingest has two halves. The front half (the engine's `ingest*` and `submit*` methods,
//! `POST /ingest`) decodes and validates a batch against the receiving node's clock, then
//! hands the valid events to the engine's [`IngestLog`]. The back half, the
//! [`Recorder`], records events into the window store: de-duplication by event id, one
//! write lock of the store per batch, and the position in the source the batch came
//! from, all in one step, so that a [checkpoint](crate::Engine::checkpoint) always holds
//! state and source offsets that agree.
//!
//! | implementation | append | who calls the recorder |
//! |---|---|---|
//! | [`InProcessLog`] (default) | records at once | the log itself, inside `append` |
//! | `rtdash::redis::RedisStreamsLog` (feature `redis`: Redis Streams, partitioned by metric) | makes the batch durable, then answers | the partition's owner, reading the log, with the entry's offset |
//! | a Kafka source (planned) | — (events arrive from the broker) | the consumer, with the partition offset |
//!
//! Offsets are opaque strings to the engine ([`SourcePosition`]): a log or source writes
//! them and parses them back after a restore.

#[cfg(feature = "redis")]
pub(crate) mod wire;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};

use futures::future::BoxFuture;
use rtdash_core::{BorrowedBatch, BorrowedEvent, EventId};
use rtdash_window::{Checkpoint, Recorded, WindowStore};

use crate::{Error, IngestError, IngestReport};

/// Where the valid events of a batch go: the seam a durable log or a broker implements.
///
/// # Contract
///
/// - `append` resolves once the events are safe by the log's own standard: recorded (the
///   in-process log) or durable (a log that survives the loss of this node). It then adds
///   the events to `report`: a log that records them itself lets the [`Recorder`] count
///   them (accepted, late, duplicates); a log that only stores them counts them as
///   `accepted`.
/// - Events must reach the recorder in the order they were appended within a partition,
///   each batch with the [`SourcePosition`] just past it, so that a restored checkpoint
///   resumes from the right place.
/// - Cancel safety: the future may be dropped before it resolves (a client went away, or
///   a synchronous caller could not wait, see [`Engine::ingest_json`](crate::Engine::ingest_json)).
///   A log must then either have appended nothing or have appended the whole batch; a
///   replay of events that carry an `id` is dropped by the recorder's de-duplication.
pub trait IngestLog: Send + Sync + 'static {
    /// A short name for errors and logs, e.g. `in-process` or `redis-streams`.
    fn name(&self) -> &str;

    /// Appends the valid events of `batch` (already validated; its refused elements are
    /// already in `report`).
    fn append<'a>(
        &'a self,
        batch: &'a BorrowedBatch<'a>,
        recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

impl<L: IngestLog + ?Sized> IngestLog for Arc<L> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn append<'a>(
        &'a self,
        batch: &'a BorrowedBatch<'a>,
        recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>> {
        (**self).append(batch, recorder, report)
    }
}

/// The default [`IngestLog`]: no log. `append` records the batch into this engine's
/// window store at once and resolves immediately. Events live in this process only.
#[derive(Clone, Copy, Debug, Default)]
pub struct InProcessLog;

impl IngestLog for InProcessLog {
    fn name(&self) -> &str {
        "in-process"
    }

    fn append<'a>(
        &'a self,
        batch: &'a BorrowedBatch<'a>,
        recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>> {
        recorder.record(batch, None, report);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Where a batch came from: a source (a stream or partition name) and the offset just
/// past the batch in it, both opaque to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourcePosition<'a> {
    /// The source, e.g. `rtdash:ingest:3` (a stream per partition).
    pub source: &'a str,
    /// The next offset to read after this batch.
    pub offset: &'a str,
}

/// Recently seen event ids (bounded, oldest forgotten first).
#[derive(Debug, Default)]
pub(crate) struct Dedup {
    seen: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl Dedup {
    fn contains(&self, id: &EventId) -> bool {
        self.seen.contains(id)
    }

    fn insert(&mut self, id: EventId, capacity: usize) {
        if self.seen.insert(id.clone()) {
            self.order.push_back(id);
            while self.order.len() > capacity {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// The remembered ids, oldest first.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &EventId> {
        self.order.iter()
    }

    /// Rebuilt from ids, oldest first (the newest `capacity` are kept).
    pub(crate) fn from_ids(ids: impl IntoIterator<Item = EventId>, capacity: usize) -> Self {
        let mut d = Self::default();
        for id in ids {
            d.insert(id, capacity);
        }
        d
    }
}

/// Counts what the recorder recorded (the engine's counters and metrics).
pub(crate) type RecordHook = Arc<dyn Fn(&IngestReport) + Send + Sync>;

/// The back half of ingest: records validated events into the engine's window store.
///
/// One call of [`record`](Self::record) takes the store's write lock once for the whole
/// batch, drops replays (an event `id` among the last
/// [`dedup_capacity`](crate::EngineConfig::dedup_capacity) ids seen) and, given a
/// [`SourcePosition`], stores the offset under the same lock. A checkpoint taken at any
/// moment therefore holds the state of exactly the events before the stored offsets.
///
/// Cheap to clone (shared state); a log's consumer task keeps a clone.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) store: RwLock<WindowStore>,
    pub(crate) dedup: Mutex<Dedup>,
    pub(crate) positions: Mutex<BTreeMap<String, String>>,
    dedup_capacity: usize,
    on_record: RecordHook,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("dedup_capacity", &self.shared.dedup_capacity)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    pub(crate) fn new(store: WindowStore, dedup_capacity: usize, on_record: RecordHook) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: RwLock::new(store),
                dedup: Mutex::new(Dedup::default()),
                positions: Mutex::new(BTreeMap::new()),
                dedup_capacity,
                on_record,
            }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn write_store(&self) -> RwLockWriteGuard<'_, WindowStore> {
        self.shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The recorder's state at one instant: the window store's checkpoint, the
    /// de-duplication horizon (oldest first) and the source positions. Holds the store's
    /// read lock while it copies, as [`record`](Self::record) holds its write lock: no
    /// batch is half recorded in it.
    pub(crate) fn snapshot(&self) -> (Checkpoint<()>, Vec<EventId>, BTreeMap<String, String>) {
        let store = self
            .shared
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let dedup: Vec<EventId> = self
            .shared
            .dedup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids()
            .cloned()
            .collect();
        let positions = self.positions();
        let window = store.checkpoint(());
        drop(store);
        (window, dedup, positions)
    }

    /// Replaces the recorder's state (see [`snapshot`](Self::snapshot)).
    pub(crate) fn replace(
        &self,
        window: WindowStore,
        dedup: Vec<EventId>,
        positions: BTreeMap<String, String>,
    ) {
        let mut store = self.write_store();
        *self
            .shared
            .dedup
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Dedup::from_ids(dedup, self.shared.dedup_capacity);
        *self
            .shared
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = positions;
        *store = window;
    }

    /// The source positions recorded so far, by source.
    #[must_use]
    pub fn positions(&self) -> BTreeMap<String, String> {
        self.shared
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the events of `batch` in order and adds the outcome to `report`: accepted
    /// or late per event, replays (a known event id) as duplicates, store refusals (the
    /// series limit) as errors by index. With `position`, the source's offset is set to
    /// it in the same step. The batch's own refused elements (`batch.rejected`) are not
    /// looked at.
    pub fn record(
        &self,
        batch: &BorrowedBatch<'_>,
        position: Option<SourcePosition<'_>>,
        report: &mut IngestReport,
    ) {
        let mut own = IngestReport::default();
        self.record_into(batch, position, &mut own);
        (self.shared.on_record)(&own);
        report.accepted += own.accepted;
        report.late += own.late;
        report.duplicates += own.duplicates;
        report.rejected += own.rejected;
        report.errors.append(&mut own.errors);
    }

    fn record_into(
        &self,
        batch: &BorrowedBatch<'_>,
        position: Option<SourcePosition<'_>>,
        report: &mut IngestReport,
    ) {
        let cap = self.shared.dedup_capacity;
        let mut store = self.write_store();
        let mut dedup = (cap > 0)
            .then(|| {
                batch.items.iter().any(|it| match it {
                    BorrowedEvent::Borrowed { id, .. } => id.is_some(),
                    BorrowedEvent::Owned { event, .. } => event.id.is_some(),
                })
            })
            .filter(|&any| any)
            .map(|_| {
                self.shared
                    .dedup
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
        for item in &batch.items {
            let (index, id) = match item {
                BorrowedEvent::Borrowed { index, id, .. } => {
                    (*index, id.and_then(|id| EventId::new(id).ok()))
                }
                BorrowedEvent::Owned { index, event } => (*index, event.id.clone()),
            };
            if let (Some(d), Some(id)) = (dedup.as_deref(), &id)
                && d.contains(id)
            {
                report.duplicates += 1;
                continue;
            }
            let recorded = match item {
                BorrowedEvent::Borrowed {
                    metric,
                    tags,
                    event_time,
                    value,
                    ..
                } => store
                    .series_id(metric, batch.tags(tags.clone()).iter().copied())
                    .and_then(|series| store.record(series, *event_time, *value)),
                BorrowedEvent::Owned { event, .. } => store.record_event(event),
            };
            match recorded {
                Ok(r) => {
                    match r {
                        Recorded::Accepted => report.accepted += 1,
                        _ => report.late += 1,
                    }
                    if let (Some(d), Some(id)) = (dedup.as_deref_mut(), id) {
                        d.insert(id, cap);
                    }
                }
                Err(e) => {
                    let err = Error::from_window_record(&e);
                    let field = match &err {
                        Error::InvalidEvent { field, .. } => field.clone(),
                        _ => "event".to_owned(),
                    };
                    report.rejected += 1;
                    report.errors.push(IngestError {
                        index,
                        field,
                        message: err.to_string(),
                    });
                }
            }
        }
        if let Some(p) = position {
            let mut positions = self
                .shared
                .positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match positions.get_mut(p.source) {
                Some(offset) => p.offset.clone_into(offset),
                None => {
                    positions.insert(p.source.to_owned(), p.offset.to_owned());
                }
            }
        }
        drop(dedup);
        drop(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> EventId {
        EventId::new(s).expect("id")
    }

    #[test]
    fn dedup_forgets_the_oldest_past_its_capacity_and_restores_in_order() {
        let mut d = Dedup::default();
        for i in 0..5 {
            d.insert(id(&format!("e{i}")), 3);
        }
        assert!(!d.contains(&id("e1")));
        assert!(d.contains(&id("e2")) && d.contains(&id("e4")));
        let ids: Vec<String> = d.ids().map(|i| i.as_str().to_owned()).collect();
        assert_eq!(ids, ["e2", "e3", "e4"]);
        // Restoring into a smaller capacity keeps the newest.
        let r = Dedup::from_ids(d.ids().cloned(), 2);
        let ids: Vec<String> = r.ids().map(|i| i.as_str().to_owned()).collect();
        assert_eq!(ids, ["e3", "e4"]);
        // A repeated insert does not refresh or duplicate.
        let mut r = r;
        r.insert(id("e3"), 2);
        assert_eq!(r.ids().count(), 2);
    }
}
