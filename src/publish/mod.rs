//! The publish seam: where the engine's output goes.
//!
//! The refresh planner decides *what* changed; a [`Publisher`] decides *how* it reaches
//! subscribers. Every frame the engine emits — a dashboard's `update` frame, an `alert`
//! frame, a `dashboard` notice — goes through [`Publisher::publish`] as a [`Publication`];
//! retired widgets and rules go through [`Publisher::retire`]. The publisher assigns the
//! frame's `seq` and keeps the last-value cache that a new subscriber's snapshot is built
//! from.
//!
//! | implementation | where | sequence and last values |
//! |---|---|---|
//! | [`HubPublisher`] (default) | this process | the local [`FrameHub`] |
//! | the Redis backplane (feature `redis`, `rtdash-redis`) | every node | in Redis, atomically with the publish |
//!
//! A publisher must be cheap and must not block: it is called from the refresh tick and
//! from dashboard changes. One that talks to a remote system queues the publication and
//! sends it from its own task.

use std::fmt;
use std::sync::Arc;

use rtdash_transport::{Frame, FrameHub};

use crate::{AlertEvent, DashboardEvent, WidgetKey, WidgetState};
use crate::{encode_alert, encode_dashboard_event, encode_update};

/// What one publication carries.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Payload<'a> {
    /// The changed values of some widgets of the dashboard, in one `update` frame.
    Update(&'a [WidgetState]),
    /// An alert rule fired or resolved.
    Alert(&'a AlertEvent),
    /// The dashboard was created, changed or deleted.
    Dashboard(DashboardEvent),
}

/// One frame to publish on a dashboard's topic, not yet encoded: the publisher assigns
/// its sequence number and calls [`encode`](Self::encode) once.
#[derive(Clone, Copy, Debug)]
pub struct Publication<'a> {
    /// The dashboard's topic (its id).
    pub topic: &'a Arc<str>,
    /// Server time at publishing, ms since the Unix epoch (the frame's `sent_at`).
    pub sent_at: i64,
    /// What the frame carries.
    pub payload: Payload<'a>,
    /// Whether the frame becomes the last value of its [`keys`](Self::keys) (sent in
    /// the snapshot of a new subscriber). `false` for the resolution of a removed rule,
    /// which is sent once and forgotten.
    pub cached: bool,
}

impl Publication<'_> {
    /// The last-value-cache keys this frame supersedes: the widgets of an update, the rule
    /// of an alert, none for a dashboard notice or an uncached frame.
    #[must_use]
    pub fn keys(&self) -> Vec<WidgetKey> {
        if !self.cached {
            return Vec::new();
        }
        match self.payload {
            Payload::Update(states) => states
                .iter()
                .map(|s| WidgetKey::Widget(s.widget_id))
                .collect(),
            Payload::Alert(a) => vec![WidgetKey::Alert(a.rule_id)],
            Payload::Dashboard(_) => Vec::new(),
        }
    }

    /// Encodes the frame with sequence number `seq` (see [`encode_update`],
    /// [`encode_alert`], [`encode_dashboard_event`]).
    #[must_use]
    pub fn encode(&self, seq: u64) -> Frame {
        match self.payload {
            Payload::Update(states) => encode_update(self.topic, seq, self.sent_at, states),
            Payload::Alert(a) => encode_alert(self.topic, seq, self.sent_at, a),
            Payload::Dashboard(e) => encode_dashboard_event(self.topic, seq, self.sent_at, e),
        }
    }
}

/// Where the engine's frames go: the seam a backplane implements.
///
/// # Contract
///
/// - `publish` assigns the frame's `seq`: per topic, increasing by one, with no gap and no
///   duplicate as seen by every subscriber of the topic, wherever it is connected.
/// - The frame is encoded once per publish ([`Publication::encode`]) and the same bytes go
///   to every subscriber.
/// - A publication with `cached` set becomes the newest value of its keys: a subscriber
///   that joins later gets it in its snapshot, until a newer frame for the same key or a
///   [`retire`](Self::retire).
/// - Neither method blocks on I/O.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one frame on `publication.topic`.
    fn publish(&self, publication: &Publication<'_>);

    /// Removes `keys` (widgets or rules that no longer exist) from the topic's last-value
    /// cache, so new subscribers' snapshots do not show them.
    fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]);

    /// Whether the publisher may have lost the newest values it kept (it reconnected to
    /// a backplane that may have restarted empty): the engine then publishes every
    /// widget's value at its next tick (a backplane drops what it already holds). Says
    /// `true` once per loss. Default: never.
    fn wants_full_state(&self) -> bool {
        false
    }
}

impl<P: Publisher + ?Sized> Publisher for Arc<P> {
    fn publish(&self, publication: &Publication<'_>) {
        (**self).publish(publication);
    }

    fn wants_full_state(&self) -> bool {
        (**self).wants_full_state()
    }

    fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]) {
        (**self).retire(topic, keys);
    }
}

/// The default [`Publisher`]: the local hub. The hub assigns `seq` under the topic's lock,
/// encodes the frame there (so sequence order and queue order agree), queues it for every
/// local subscriber and keeps it as the last value of its keys.
#[derive(Clone)]
pub struct HubPublisher {
    hub: FrameHub<WidgetKey>,
}

impl fmt::Debug for HubPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubPublisher").finish_non_exhaustive()
    }
}

impl HubPublisher {
    /// A publisher onto `hub`.
    #[must_use]
    pub fn new(hub: FrameHub<WidgetKey>) -> Self {
        Self { hub }
    }

    /// The hub it publishes to.
    #[must_use]
    pub fn hub(&self) -> &FrameHub<WidgetKey> {
        &self.hub
    }
}

impl Publisher for HubPublisher {
    fn publish(&self, publication: &Publication<'_>) {
        self.hub
            .publish_with(publication.topic, publication.keys(), |seq| {
                publication.encode(seq)
            });
    }

    fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]) {
        if !keys.is_empty() {
            self.hub.retain_cached(topic, |k| !keys.contains(k));
        }
    }
}
