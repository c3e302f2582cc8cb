//! The compact encoding of a group of validated events in one log entry.
//!
//! One entry holds many events (a whole batch's events of one partition): a log entry
//! per event cannot go fast. The entry is a version byte (`1`) followed by
//! [postcard](https://docs.rs/postcard) of:
//!
//! - `strings`: every distinct metric name, tag key and tag value once, and the ids;
//! - `events`: per event, the index of its metric name, its number of tags, its event
//!   time (ms), its value (the 8 bytes of the IEEE-754 double: no float is ever re-parsed) and its id (`0`
//!   for none, else the index of the string plus one);
//! - `tags`: the (key, value) string indices of every event's tags, in event order.
//!
//! Events were validated by the node that appended them; decoding checks only that the
//! entry is well formed (every index in range), so a damaged entry is refused as a whole
//! with a clear error and never panics.

use std::collections::HashMap;
use std::ops::Range;

use rtdash_core::{BorrowedBatch, BorrowedEvent, Timestamp};
use serde::{Deserialize, Serialize};

use crate::LateEvent;

/// The first byte of every entry.
const VERSION: u8 = 1;

#[derive(Default, Serialize, Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    strings: Vec<&'a str>,
    events: Vec<Ev>,
    tags: Vec<(u32, u32)>,
}

#[derive(Serialize, Deserialize)]
struct Ev {
    metric: u32,
    tags: u32,
    time: i64,
    value: f64,
    id: u32,
}

/// One event to encode, its strings borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WireEvent<'a> {
    pub(crate) metric: &'a str,
    pub(crate) tags: &'a [(&'a str, &'a str)],
    pub(crate) time: Timestamp,
    pub(crate) value: f64,
    pub(crate) id: Option<&'a str>,
}

/// Builds one entry from events.
#[derive(Default)]
pub(crate) struct Encoder<'a> {
    index: HashMap<&'a str, u32>,
    entry: Entry<'a>,
}

impl<'a> Encoder<'a> {
    fn intern(&mut self, s: &'a str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.push(s);
        self.index.insert(s, i);
        i
    }

    fn push(&mut self, s: &'a str) -> u32 {
        self.entry.strings.push(s);
        u32::try_from(self.entry.strings.len() - 1).unwrap_or(u32::MAX)
    }

    /// Adds one event.
    pub(crate) fn push_event(&mut self, e: WireEvent<'a>) {
        let metric = self.intern(e.metric);
        for (k, v) in e.tags {
            let pair = (self.intern(k), self.intern(v));
            self.entry.tags.push(pair);
        }
        // Ids are unique: not worth a lookup.
        let id = e.id.map_or(0, |id| self.push(id).saturating_add(1));
        self.entry.events.push(Ev {
            metric,
            tags: u32::try_from(e.tags.len()).unwrap_or(u32::MAX),
            time: e.time.as_millis(),
            value: e.value,
            id,
        });
    }

    /// Number of events added.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entry.events.len()
    }

    /// The encoded entry.
    pub(crate) fn finish(&self) -> Vec<u8> {
        let out = vec![VERSION];
        // Serializing plain vectors into a growable buffer cannot fail.
        match postcard::to_extend(&self.entry, out) {
            Ok(v) => v,
            Err(_) => vec![VERSION],
        }
    }
}

/// Encodes late events (no ids) as one entry; `None` when there are none.
pub(crate) fn encode_late(events: &[LateEvent]) -> Option<Vec<u8>> {
    if events.is_empty() {
        return None;
    }
    let tags: Vec<Vec<(&str, &str)>> = events
        .iter()
        .map(|e| {
            e.tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    let mut enc = Encoder::default();
    for (e, tags) in events.iter().zip(&tags) {
        enc.push_event(WireEvent {
            metric: &e.metric_name,
            tags,
            time: e.event_time,
            value: e.value,
            id: None,
        });
    }
    Some(enc.finish())
}

/// Decodes an entry into a batch whose strings borrow from `bytes`; its events are
/// indexed from 0 in order.
///
/// # Errors
///
/// A message naming the problem: an unknown version, bytes that are not an entry, or an
/// index out of range.
pub(crate) fn decode(bytes: &[u8]) -> Result<BorrowedBatch<'_>, String> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err("empty log entry".to_owned());
    };
    if version != VERSION {
        return Err(format!("log entry version {version}, expected {VERSION}"));
    }
    let entry: Entry<'_> =
        postcard::from_bytes(body).map_err(|e| format!("malformed log entry: {e}"))?;
    let string = |i: u32, what: &str| {
        entry
            .strings
            .get(i as usize)
            .copied()
            .ok_or_else(|| format!("log entry: {what} index {i} out of range"))
    };
    let mut batch = BorrowedBatch {
        items: Vec::with_capacity(entry.events.len()),
        tags: Vec::with_capacity(entry.tags.len()),
        rejected: Vec::new(),
    };
    let mut next_tag = 0usize;
    for (index, ev) in entry.events.iter().enumerate() {
        let n = ev.tags as usize;
        let end = next_tag
            .checked_add(n)
            .filter(|&e| e <= entry.tags.len())
            .ok_or_else(|| format!("log entry: event {index} has tags beyond the entry"))?;
        let start = batch.tags.len();
        for &(k, v) in &entry.tags[next_tag..end] {
            batch
                .tags
                .push((string(k, "tag key")?, string(v, "tag value")?));
        }
        next_tag = end;
        let id = match ev.id {
            0 => None,
            i => Some(string(i - 1, "id")?),
        };
        batch.items.push(BorrowedEvent::Borrowed {
            index,
            metric: string(ev.metric, "metric")?,
            tags: Range {
                start,
                end: batch.tags.len(),
            },
            event_time: Timestamp::from_millis(ev.time),
            value: ev.value,
            id,
        });
    }
    if next_tag != entry.tags.len() {
        return Err("log entry: tags left over after the last event".to_owned());
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as plain values: metric, tags, time, value bits, id.
    type Plain = (String, Vec<(String, String)>, i64, u64, Option<String>);

    fn events(batch: &BorrowedBatch<'_>) -> Vec<Plain> {
        batch
            .items
            .iter()
            .map(|it| {
                let e = batch.to_event(it);
                (
                    e.metric_name,
                    e.tags
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    e.event_time.as_millis(),
                    e.value.to_bits(),
                    e.id.map(|i| i.as_str().to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let tags_a = [("host", "a"), ("region", "eu")];
        let tags_b = [("host", "b")];
        let mut enc = Encoder::default();
        let input = [
            WireEvent {
                metric: "cpu",
                tags: &tags_a,
                time: Timestamp::from_millis(1),
                value: 0.1 + 0.2,
                id: Some("e1"),
            },
            WireEvent {
                metric: "cpu",
                tags: &tags_b,
                time: Timestamp::from_millis(-5),
                value: -0.0,
                id: None,
            },
            WireEvent {
                metric: "mem",
                tags: &[],
                time: Timestamp::from_millis(i64::MAX / 4),
                value: f64::MIN_POSITIVE,
                id: Some("e3"),
            },
        ];
        for e in input {
            enc.push_event(e);
        }
        assert_eq!(enc.len(), 3);
        let bytes = enc.finish();
        let batch = decode(&bytes).expect("decodes");
        let got = events(&batch);
        let want: Vec<_> = input
            .iter()
            .map(|e| {
                (
                    e.metric.to_owned(),
                    e.tags
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    e.time.as_millis(),
                    e.value.to_bits(),
                    e.id.map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(got, want);
        // Repeated strings are stored once: far smaller than JSON.
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
    }

    #[test]
    fn refuses_damaged_entries_without_panicking() {
        let mut enc = Encoder::default();
        enc.push_event(WireEvent {
            metric: "cpu",
            tags: &[("a", "b")],
            time: Timestamp::from_millis(7),
            value: 1.0,
            id: Some("x"),
        });
        let good = enc.finish();
        assert!(decode(&[]).unwrap_err().contains("empty"));
        assert!(decode(&[9, 0]).unwrap_err().contains("version 9"));
        // Every truncation and every single-byte change is either refused or decodes to
        // something well formed.
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        for i in 1..good.len() {
            for b in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                if let Ok(batch) = decode(&bad) {
                    for it in &batch.items {
                        let _ = batch.to_event(it);
                    }
                }
            }
        }
    }
}
