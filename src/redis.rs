//! Several nodes as one, through Redis (feature `redis`): the glue between the engine and
//! [`rtdash_redis`].
//!
//! Every node that serves clients reads a mirrored hub that follows Redis; an
//! [`Role::Aggregator`] also evaluates widgets and publishes them through Redis, which
//! numbers each frame and keeps the newest values. Clients connected to any node see the
//! same frames, byte for byte, in the same order, with no gap.
//!
//! ```no_run
//! use rtdash::redis::{Backplane, BackplaneConfig, Role};
//! use rtdash::{Engine, EngineConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let backplane = Backplane::new("redis://127.0.0.1:6379", BackplaneConfig::new("node-a"))?;
//! let engine = Engine::builder(EngineConfig::default())
//!     .redis(&backplane, Role::Aggregator)
//!     .build()?; // starts the backplane's tasks: call inside a tokio runtime
//! assert!(engine.health().backplane.is_some());
//! # Ok(())
//! # }
//! ```
//!
//! `docs/ARCHITECTURE.md` has the keys, channels, scripts, guarantees and failure costs.

use std::sync::Arc;

pub(crate) mod log;

pub use log::RedisStreamsLog;
pub use rtdash_redis::{LogConfig, LogStats, OwnerHandle, PartitionHandler, StreamLog};

use rtdash_core::Uuid;
use rtdash_transport::Frame;

pub use rtdash_redis::{
    Backplane, BackplaneConfig, BackplaneError, BackplaneKey, BackplaneStats, Mirror, Part,
    Publication, RedisPublisher, StaleMarker,
};

use crate::frames::{newest_event_time, push_update_item};
use crate::metrics::{counter, gauge};
use crate::publish::{self, Payload, Publisher};
use crate::{WidgetKey, encode_update};

/// What a node does in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Ingests, evaluates widgets and publishes them through Redis; serves clients too.
    Aggregator,
    /// Serves clients only, from what the aggregators publish; evaluates nothing.
    Edge,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aggregator" => Ok(Self::Aggregator),
            "edge" => Ok(Self::Edge),
            other => Err(format!(
                "unknown role {other:?}: expected aggregator or edge"
            )),
        }
    }
}

impl BackplaneKey for WidgetKey {
    fn to_name(&self) -> String {
        match self {
            Self::Widget(id) => format!("w{}", id.simple()),
            Self::Alert(id) => format!("a{}", id.simple()),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        let (kind, rest) = name.split_at_checked(1)?;
        // An alert of one group of a `group_by` rule: `a<rule>.<group hash>`.
        let id = rest.split('.').next()?;
        let id = Uuid::try_parse(id).ok()?;
        match kind {
            "w" => Some(Self::Widget(id)),
            "a" => Some(Self::Alert(id)),
            _ => None,
        }
    }
}

/// FNV-1a: a hash of a group name that is the same in every process.
fn group_hash(group: &str) -> u64 {
    group.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Cuts an encoded frame at its `"seq":0`: the part before the number, the part after.
fn split_at_seq(frame: &Frame) -> (String, String) {
    let text = frame.as_str();
    // Strings in a frame are escaped (`\"`), so the first `"seq":0` is the frame's own.
    match text.find(r#""seq":0"#) {
        Some(i) => {
            let cut = i + r#""seq":"#.len();
            (text[..cut].to_owned(), text[cut + 1..].to_owned())
        }
        None => (text.to_owned(), String::new()),
    }
}

/// Turns one of the engine's publications into the pieces Redis assembles.
pub(crate) fn pieces(p: &publish::Publication<'_>) -> rtdash_redis::Publication {
    let topic = Arc::clone(p.topic);
    match p.payload {
        Payload::Update(states) => {
            let empty = encode_update(p.topic, 0, p.sent_at, &[]);
            let (head, rest) = split_at_seq(&empty);
            let mid = rest.strip_suffix("]}").unwrap_or(&rest).to_owned();
            let parts = states
                .iter()
                .map(|s| {
                    let mut fragment = String::with_capacity(160);
                    push_update_item(&mut fragment, s);
                    Part {
                        key: WidgetKey::Widget(s.widget_id).to_name(),
                        version: (s.window_end.as_millis(), s.evaluated_at.as_millis()),
                        fragment,
                    }
                })
                .collect();
            rtdash_redis::Publication {
                topic,
                head,
                mid,
                tail: "]}".to_owned(),
                parts,
                cached: p.cached,
                conflate: p.cached,
                event_time: newest_event_time(states),
            }
        }
        Payload::Alert(a) => {
            let (head, mid) = split_at_seq(&p.encode(0));
            let key = match &a.group {
                Some(g) => format!("a{}.{:016x}", a.rule_id.simple(), group_hash(g)),
                None => WidgetKey::Alert(a.rule_id).to_name(),
            };
            let parts = if p.cached {
                vec![Part {
                    key,
                    version: (a.at.as_millis(), 0),
                    fragment: String::new(),
                }]
            } else {
                Vec::new()
            };
            rtdash_redis::Publication {
                topic,
                head,
                mid,
                tail: String::new(),
                parts,
                cached: p.cached,
                conflate: false,
                event_time: None,
            }
        }
        Payload::Dashboard(_) => {
            let (head, mid) = split_at_seq(&p.encode(0));
            rtdash_redis::Publication {
                topic,
                head,
                mid,
                tail: String::new(),
                parts: Vec::new(),
                cached: false,
                conflate: false,
                event_time: None,
            }
        }
    }
}

/// The engine's [`Publisher`] on an aggregator: through Redis.
pub(crate) struct RedisPublish(pub(crate) RedisPublisher);

impl Publisher for RedisPublish {
    fn publish(&self, publication: &publish::Publication<'_>) {
        if let Err(e) = self.0.publish(pieces(publication)) {
            tracing::error!(error = %e, "redis backplane: publication refused");
        }
    }

    fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]) {
        self.0.retire(
            Arc::clone(topic),
            keys.iter().map(BackplaneKey::to_name).collect(),
        );
    }

    fn wants_full_state(&self) -> bool {
        self.0.take_reconnected()
    }
}

/// The engine's publisher on an edge: it evaluates nothing, so nothing reaches it but
/// the notices of dashboards changed through this node's API, which an edge does not
/// serve (see the example's routes).
pub(crate) struct Discard;

impl Publisher for Discard {
    fn publish(&self, publication: &publish::Publication<'_>) {
        tracing::debug!(topic = %publication.topic, "edge node: publication discarded");
    }

    fn retire(&self, _: &Arc<str>, _: &[WidgetKey]) {}
}

/// The durable log's metrics (`rtdash_log_*`), for the engine's recorder.
pub(crate) fn log_metrics(s: &LogStats) -> Vec<crate::metrics::Extra> {
    #[allow(clippy::cast_precision_loss)]
    let f = |v: u64| v as f64;
    vec![
        gauge(
            "rtdash_log_up",
            "1 while this node's durable ingest log reaches Redis.",
            if s.up { 1.0 } else { 0.0 },
        ),
        gauge(
            "rtdash_log_partitions_owned",
            "Partitions of the durable ingest log this node aggregates now.",
            f(u64::from(s.owned)),
        ),
        gauge(
            "rtdash_log_last_checkpoint_bytes",
            "Size of the last partition checkpoint this node stored.",
            f(s.last_checkpoint_bytes),
        ),
        gauge(
            "rtdash_log_last_checkpoint_seconds",
            "How long storing the last partition checkpoint took.",
            f(s.last_checkpoint_micros) / 1e6,
        ),
        counter(
            "rtdash_log_appended_entries_total",
            "Log entries (one per partition of an ingest batch) appended by this node.",
            s.appended_entries,
        ),
        counter(
            "rtdash_log_append_errors_total",
            "Appends that failed (the batch was refused with 503: the producer retries).",
            s.append_errors,
        ),
        counter(
            "rtdash_log_applied_entries_total",
            "Log entries this node read back and recorded as a partition's owner.",
            s.applied_entries,
        ),
        counter(
            "rtdash_log_checkpoints_total",
            "Partition checkpoints stored by this node.",
            s.checkpoints,
        ),
        counter(
            "rtdash_log_takeovers_total",
            "Partitions this node took (restored from their checkpoint).",
            s.takeovers,
        ),
        counter(
            "rtdash_log_releases_total",
            "Partitions this node gave up (moved, lost or shut down).",
            s.releases,
        ),
        counter(
            "rtdash_log_fenced_total",
            "Checkpoints refused because another node took the partition since (fencing).",
            s.fenced,
        ),
        counter(
            "rtdash_log_leases_lost_total",
            "Leases this node lost (not renewed in time, or taken).",
            s.leases_lost,
        ),
        counter(
            "rtdash_log_restore_failures_total",
            "Partition checkpoints that could not be restored.",
            s.restore_failures,
        ),
        counter(
            "rtdash_log_late_entries_total",
            "Entries appended to the late streams by this node.",
            s.late_entries,
        ),
        counter(
            "rtdash_log_skipped_entries_total",
            "Log entries skipped as damaged (not written by rtdash).",
            s.skipped_entries,
        ),
    ]
}

/// The backplane's metrics, for the engine's recorder.
pub(crate) fn metrics(s: &BackplaneStats) -> Vec<crate::metrics::Extra> {
    #[allow(clippy::cast_precision_loss)]
    let f = |v: u64| v as f64;
    vec![
        gauge(
            "rtdash_backplane_up",
            "1 while this node's backplane (publisher and mirror) is connected to Redis and its last check passed.",
            if s.up { 1.0 } else { 0.0 },
        ),
        gauge(
            "rtdash_backplane_breaker_open",
            "1 while the reconnection circuit breaker is open.",
            if s.breaker_open { 1.0 } else { 0.0 },
        ),
        gauge(
            "rtdash_backplane_rtt_seconds",
            "The last Redis round trip measured (PING, or the liveness probe through pub/sub).",
            s.rtt.as_secs_f64(),
        ),
        gauge(
            "rtdash_backplane_subscriptions",
            "Dashboard channels this node subscribes in Redis now (those with local clients).",
            f(s.subscriptions),
        ),
        counter(
            "rtdash_backplane_published_total",
            "Frames published through Redis.",
            s.published,
        ),
        counter(
            "rtdash_backplane_suppressed_total",
            "Publications Redis dropped as not newer than what it held (replays).",
            s.suppressed,
        ),
        counter(
            "rtdash_backplane_absorbed_total",
            "Publications absorbed by a newer one of the same dashboard while waiting to be sent.",
            s.absorbed,
        ),
        counter(
            "rtdash_backplane_dropped_total",
            "Publications dropped because too many waited while Redis was unreachable.",
            s.dropped,
        ),
        counter(
            "rtdash_backplane_publish_errors_total",
            "Publish pipelines that failed and were sent again.",
            s.publish_errors,
        ),
        counter(
            "rtdash_backplane_received_total",
            "Messages received from Redis.",
            s.received,
        ),
        counter(
            "rtdash_backplane_duplicates_total",
            "Messages received that this node already had.",
            s.duplicates,
        ),
        counter(
            "rtdash_backplane_gaps_total",
            "Gaps found in a dashboard's sequence.",
            s.gaps,
        ),
        counter(
            "rtdash_backplane_catchups_total",
            "Catch-ups from a dashboard's log in Redis that applied messages.",
            s.catchups,
        ),
        counter(
            "rtdash_backplane_resyncs_total",
            "Snapshots read from Redis (first subscriptions and resynchronisations).",
            s.resyncs,
        ),
        counter(
            "rtdash_backplane_inbox_dropped_total",
            "Messages dropped because the inbox was full (repaired from the log).",
            s.inbox_dropped,
        ),
        counter(
            "rtdash_backplane_reconnects_total",
            "Connections to Redis lost or refused.",
            s.reconnects,
        ),
        counter(
            "rtdash_backplane_probe_failures_total",
            "Liveness probes that did not come back in time (wedged subscriptions).",
            s.probe_failures,
        ),
        counter(
            "rtdash_backplane_stale_marks_total",
            "Times this node marked its values stale because Redis was unreachable.",
            s.stale_marks,
        ),
    ]
}

/// Marks the values of an `update` frame stale (for while Redis is unreachable): the
/// encoder writes `"stale":false` only as that field, strings being escaped.
pub(crate) fn mark_stale(frame: &Frame) -> Frame {
    if !frame.as_str().starts_with(r#"{"type":"update""#) {
        return frame.clone();
    }
    Frame::from_string(
        frame
            .as_str()
            .replace(r#""stale":false"#, r#""stale":true"#),
    )
    .with_event_time(frame.event_time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::Publication;
    use crate::{AlertCondition, AlertEvent, AlertState, GroupValue, Timestamp, WidgetState};

    fn state(id: u128, stale: bool) -> WidgetState {
        WidgetState {
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(id),
            value: Some(1.5),
            count: 3,
            window_start: Timestamp::from_millis(0),
            window_end: Timestamp::from_millis(1_000),
            last_event_time: Some(Timestamp::from_millis(900)),
            stale,
            groups: Some(vec![GroupValue {
                group: r#"we"ird","stale":false"#.into(),
                value: Some(2.0),
                last_event_time: None,
                stale: false,
                count: 1,
            }]),
            evaluated_at: Timestamp::from_millis(950),
        }
    }

    /// What Redis builds from the pieces: the script's concatenation.
    fn assemble(p: &rtdash_redis::Publication, seq: u64) -> String {
        let frags: Vec<&str> = p
            .parts
            .iter()
            .map(|x| x.fragment.as_str())
            .filter(|f| !f.is_empty())
            .collect();
        format!("{}{seq}{}{}{}", p.head, p.mid, frags.join(","), p.tail)
    }

    #[test]
    fn pieces_assemble_to_the_bytes_the_local_hub_sends() {
        let topic: Arc<str> = Arc::from(r#"ops "seq":0 x"#);
        let states = [state(1, false), state(2, true)];
        let p = Publication {
            topic: &topic,
            sent_at: 1_234,
            payload: Payload::Update(&states),
            cached: true,
        };
        let update = pieces(&p);
        assert_eq!(assemble(&update, 42), p.encode(42).as_str());
        assert_eq!(update.event_time, p.encode(42).event_time());
        assert_eq!(update.parts[1].version, (1_000, 950));

        let alert = AlertEvent {
            rule_id: Uuid::from_u128(9),
            dashboard_id: "ops".into(),
            widget_id: Uuid::from_u128(1),
            state: AlertState::Firing,
            value: Some(3.0),
            condition: AlertCondition::Above,
            threshold: 2.0,
            severity: crate::AlertSeverity::Warning,
            group: Some("eu".into()),
            at: Timestamp::from_millis(5_000),
            message: "hot".into(),
        };
        let p = Publication {
            topic: &topic,
            sent_at: 1_234,
            payload: Payload::Alert(&alert),
            cached: true,
        };
        let alert_pieces = pieces(&p);
        assert_eq!(assemble(&alert_pieces, 7), p.encode(7).as_str());
        assert!(alert_pieces.parts[0].key.starts_with('a'));
        assert_eq!(
            WidgetKey::from_name(&alert_pieces.parts[0].key),
            Some(WidgetKey::Alert(alert.rule_id))
        );
    }

    #[test]
    fn key_names_round_trip_and_bad_ones_are_refused() {
        for k in [
            WidgetKey::Widget(Uuid::from_u128(7)),
            WidgetKey::Alert(Uuid::from_u128(8)),
        ] {
            assert_eq!(WidgetKey::from_name(&k.to_name()), Some(k));
        }
        for bad in ["", "w", "x0000", "wnot-a-uuid", "é"] {
            assert_eq!(WidgetKey::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stale_marking_touches_only_the_stale_fields() {
        let topic: Arc<str> = Arc::from("ops");
        let states = [state(1, false)];
        let frame = crate::encode_update(&topic, 3, 10, &states);
        let marked = mark_stale(&frame);
        let v: serde_json::Value = serde_json::from_str(marked.as_str()).unwrap();
        assert_eq!(v["items"][0]["stale"], true);
        assert_eq!(v["items"][0]["groups"][0]["stale"], true);
        // The group name that looks like the field is unchanged.
        assert_eq!(
            v["items"][0]["groups"][0]["group"],
            r#"we"ird","stale":false"#
        );
        assert_eq!(marked.event_time(), frame.event_time());
        let notice = Frame::from_static(r#"{"type":"dashboard","stale":false}"#);
        assert_eq!(mark_stale(&notice), notice);
    }
}
