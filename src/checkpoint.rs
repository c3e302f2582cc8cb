//! [`EngineCheckpoint`]: the engine's ingest state in one versioned document.

use std::collections::BTreeMap;

use rtdash_core::{EventId, Timestamp, Uuid};
use rtdash_window::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::alerts::Tracker;

/// The format tag of the current version.
pub(crate) const FORMAT: &str = "rtdash/engine-checkpoint/1";

/// Everything an engine needs to resume ingest where another left off, taken at one
/// instant by [`Engine::checkpoint`](crate::Engine::checkpoint) and applied by
/// [`Engine::restore`](crate::Engine::restore):
///
/// - the window store (every series' buckets, per-series watermarks, the late buffer and
///   the late counters: rtdash-window's own checkpoint, format
///   `rtdash-window/checkpoint/2`);
/// - the de-duplication horizon: the last
///   [`dedup_capacity`](crate::EngineConfig::dedup_capacity) event ids, oldest first, so a
///   replay of events already counted is dropped;
/// - the source positions recorded by the ingest seam
///   ([`SourcePosition`](crate::ingest::SourcePosition)): where to resume each source;
/// - the ingest counters (accepted, rejected, late, duplicates).
///
/// Serialized as JSON ([`to_json`](Self::to_json), [`from_json`](Self::from_json)) with a
/// `format` field, `rtdash/engine-checkpoint/1`; another format is refused. Dashboards are
/// not part of it (they live in the [`DashboardStore`](crate::DashboardStore)), nor is the
/// refresh state (the next tick recomputes every widget).
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, EngineCheckpoint, MemoryStore, Timestamp};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let now = Timestamp::from_millis(1_700_000_000_000);
/// let a = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// a.ingest_json_at(br#"{"id": "e1", "metric_name": "cpu", "value": 1, "event_time": 1700000000000}"#, now)?;
///
/// let bytes = a.checkpoint().to_json();
/// let b = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// b.restore(EngineCheckpoint::from_json(&bytes)?)?;
/// // The replayed event is known by its id.
/// let again = b.ingest_json_at(br#"{"id": "e1", "metric_name": "cpu", "value": 1, "event_time": 1700000000000}"#, now)?;
/// assert_eq!(again.duplicates, 1);
/// assert_eq!(b.window_stats().accepted, 1);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineCheckpoint {
    format: String,
    pub(crate) window: Checkpoint<()>,
    pub(crate) dedup: Vec<EventId>,
    pub(crate) positions: BTreeMap<String, String>,
    pub(crate) counters: Counters,
    /// The alert rules that are pending or firing, in a partition's checkpoint (the
    /// rules on widgets of the partition's metrics); empty in a whole engine's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) rules: Vec<RuleCheckpoint>,
}

/// The state of one alert rule that is not OK, handed over with a partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleCheckpoint {
    pub(crate) dashboard: String,
    pub(crate) rule: Uuid,
    /// Breached since this time (ms), not yet long enough; `None` when firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_since: Option<i64>,
    /// For a `group_by` widget, the group that fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

impl RuleCheckpoint {
    pub(crate) fn new(
        dashboard: &str,
        rule: Uuid,
        tracker: Tracker,
        group: Option<String>,
    ) -> Self {
        Self {
            dashboard: dashboard.to_owned(),
            rule,
            pending_since: match tracker {
                Tracker::Pending(since) => Some(since.as_millis()),
                Tracker::Ok | Tracker::Firing => None,
            },
            group,
        }
    }

    /// The tracker and group to resume with.
    pub(crate) fn into_parts(self) -> (Tracker, Option<String>) {
        let tracker = match self.pending_since {
            Some(ms) => Tracker::Pending(Timestamp::from_millis(ms)),
            None => Tracker::Firing,
        };
        (tracker, self.group)
    }
}

/// The ingest counters in a checkpoint.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counters {
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
    pub(crate) late: u64,
    pub(crate) duplicates: u64,
}

impl EngineCheckpoint {
    pub(crate) fn new(
        window: Checkpoint<()>,
        dedup: Vec<EventId>,
        positions: BTreeMap<String, String>,
        counters: Counters,
    ) -> Self {
        Self {
            format: FORMAT.to_owned(),
            window,
            dedup,
            positions,
            counters,
            rules: Vec::new(),
        }
    }

    /// The source positions it holds, by source: where each source resumes.
    #[must_use]
    pub fn positions(&self) -> &BTreeMap<String, String> {
        &self.positions
    }

    /// Number of window series it holds.
    #[must_use]
    pub fn series_count(&self) -> usize {
        self.window.series_count()
    }

    /// The checkpoint as JSON bytes.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a checkpoint written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCheckpoint`] naming the problem: not JSON, a missing or unknown
    /// field, or another `format` version. The window state itself is checked by
    /// [`Engine::restore`](crate::Engine::restore).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| Error::InvalidCheckpoint {
            reason: format!("not a checkpoint document: {e}"),
        })?;
        match head.format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(Error::InvalidCheckpoint {
                    reason: format!(
                        "format is `{}`, expected `{FORMAT}`",
                        other.chars().take(64).collect::<String>()
                    ),
                });
            }
            None => {
                return Err(Error::InvalidCheckpoint {
                    reason: "missing field `format`".to_owned(),
                });
            }
        }
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidCheckpoint {
            reason: e.to_string(),
        })
    }
}
