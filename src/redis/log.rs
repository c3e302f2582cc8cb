//! The durable, partitioned ingest log on Redis Streams: the engine's side of
//! [`rtdash_redis::StreamLog`].
//!
//! - [`RedisStreamsLog`] is the engine's [`IngestLog`]: `append` groups a batch's valid
//!   events by partition (by metric name), encodes each group as one stream entry and
//!   resolves once Redis acknowledged every entry.
//! - On an aggregator, the engine takes part in the log's ownership of partitions (see
//!   [`EngineBuilder::durable_log`](crate::EngineBuilder::durable_log)): for each
//!   partition it owns it restores the stored checkpoint, records the stream's entries
//!   from the stored offset, and writes checkpoints of its own.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use rtdash_core::BorrowedEvent;
use rtdash_redis::{PartitionHandler, StreamLog};

use crate::ingest::wire::{Encoder, WireEvent, decode};
use crate::ingest::{IngestLog, Recorder};
use crate::{Engine, Error, IngestReport, LateEvent};

/// The engine's [`IngestLog`] on Redis Streams: one stream per partition, many events
/// per entry. Made by [`EngineBuilder::durable_log`](crate::EngineBuilder::durable_log).
#[derive(Clone, Debug)]
pub struct RedisStreamsLog {
    log: StreamLog,
}

impl RedisStreamsLog {
    /// The log on `log`.
    #[must_use]
    pub fn new(log: StreamLog) -> Self {
        Self { log }
    }

    /// The stream log underneath.
    #[must_use]
    pub fn stream_log(&self) -> &StreamLog {
        &self.log
    }

    /// The late events of partition `p` kept in its late stream (events that arrived
    /// later than the grace period, recorded by the partition's owner once each, also
    /// across failovers), from the entry after `after` (`"0-0"` for all), at most `count`
    /// entries: (entry id, its events). Hosts read their late side channel here.
    ///
    /// # Errors
    ///
    /// [`Error::IngestLogUnavailable`] when Redis cannot be read, or an entry is not one
    /// rtdash wrote (the message names the entry).
    pub async fn late_events(
        &self,
        p: u32,
        after: &str,
        count: usize,
    ) -> Result<Vec<(String, Vec<LateEvent>)>, Error> {
        let unavailable = |reason: String| Error::IngestLogUnavailable {
            log: self.name().to_owned(),
            reason,
        };
        let entries = self
            .log
            .late_entries(p, after, count)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        entries
            .into_iter()
            .map(|(id, bytes)| {
                let batch = decode(&bytes)
                    .map_err(|reason| unavailable(format!("late entry {id}: {reason}")))?;
                let events = batch
                    .items
                    .iter()
                    .map(|it| {
                        let e = batch.to_event(it);
                        LateEvent {
                            metric_name: e.metric_name,
                            tags: e.tags,
                            event_time: e.event_time,
                            value: e.value,
                        }
                    })
                    .collect();
                Ok((id, events))
            })
            .collect()
    }

    /// Encodes a batch's valid events as one entry per partition.
    fn entries(&self, batch: &rtdash_core::BorrowedBatch<'_>) -> (Vec<(u32, Bytes)>, usize) {
        // Owned events keep their tags in their own type: borrow them as pairs first.
        let owned_tags: Vec<Vec<(&str, &str)>> = batch
            .items
            .iter()
            .filter_map(|it| match it {
                BorrowedEvent::Owned { event, .. } => Some(
                    event
                        .tags
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                ),
                BorrowedEvent::Borrowed { .. } => None,
            })
            .collect();
        let mut owned = owned_tags.iter();
        let mut groups: Vec<(u32, Encoder<'_>)> = Vec::new();
        let mut events = 0;
        for item in &batch.items {
            let e = match item {
                BorrowedEvent::Borrowed {
                    metric,
                    tags,
                    event_time,
                    value,
                    id,
                    ..
                } => WireEvent {
                    metric,
                    tags: batch.tags(tags.clone()),
                    time: *event_time,
                    value: *value,
                    id: *id,
                },
                BorrowedEvent::Owned { event, .. } => WireEvent {
                    metric: &event.metric_name,
                    tags: owned.next().map_or(&[][..], Vec::as_slice),
                    time: event.event_time,
                    value: event.value,
                    id: event.id.as_ref().map(|i| i.as_str()),
                },
            };
            let p = self.log.partition_of(e.metric);
            let enc = match groups.iter_mut().position(|(q, _)| *q == p) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((p, Encoder::default()));
                    let last = groups.len() - 1;
                    &mut groups[last].1
                }
            };
            enc.push_event(e);
            events += 1;
        }
        let entries = groups
            .into_iter()
            .map(|(p, enc)| (p, Bytes::from(enc.finish())))
            .collect();
        (entries, events)
    }
}

impl IngestLog for RedisStreamsLog {
    fn name(&self) -> &str {
        "redis-streams"
    }

    fn append<'a>(
        &'a self,
        batch: &'a rtdash_core::BorrowedBatch<'a>,
        _recorder: &'a Recorder,
        report: &'a mut IngestReport,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let (entries, events) = self.entries(batch);
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            self.log
                .append(&entries)
                .await
                .map_err(|e| Error::IngestLogUnavailable {
                    log: self.name().to_owned(),
                    reason: e.to_string(),
                })?;
            // Stored, not yet aggregated: the partition's owner records them.
            report.accepted += events;
            Ok(())
        })
    }
}

/// The engine as the owner of partitions (a weak handle: the log's tasks never keep an
/// engine alive).
pub(crate) struct EngineHandler {
    engine: crate::engine::WeakEngine,
    /// The stream key of each partition: the source name of positions.
    sources: Vec<String>,
}

impl EngineHandler {
    pub(crate) fn new(engine: &Engine, log: &StreamLog) -> Arc<Self> {
        Arc::new(Self {
            engine: engine.downgrade(),
            sources: (0..log.config().partitions)
                .map(|p| log.stream_key(p))
                .collect(),
        })
    }
}

impl PartitionHandler for EngineHandler {
    fn acquire(&self, p: u32, checkpoint: Option<&[u8]>) -> Result<(), String> {
        let engine = self.engine.upgrade().ok_or("the engine is gone")?;
        engine.acquire_partition(p, checkpoint)
    }

    fn apply(&self, p: u32, id: &str, payload: &[u8]) -> Option<Vec<u8>> {
        let engine = self.engine.upgrade()?;
        let source = self.sources.get(p as usize)?;
        engine.apply_entry(p, source, id, payload)
    }

    fn checkpoint(&self, p: u32) -> Vec<u8> {
        self.engine
            .upgrade()
            .map_or_else(Vec::new, |e| e.partition_checkpoint(p))
    }

    fn release(&self, p: u32) {
        if let Some(engine) = self.engine.upgrade() {
            engine.release_partition(p);
        }
    }
}
