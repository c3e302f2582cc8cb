//! Real-time dashboards in a few lines of host code: ingest metric events, aggregate them
//! over sliding windows, and push every widget's value to many clients when it changes.
//!
//! This crate is the facade that composes the rtdash family into the pipeline every host
//! needs; each part is also usable alone:
//!
//! | part | crate | re-exported as |
//! |---|---|---|
//! | events, validation, dashboard and widget schema | `rtdash-core` | [`core`] (and the common types at the root) |
//! | sliding-window aggregation, late side channel | `rtdash-window` | [`window`] |
//! | fan-out hub with slow-consumer policies and snapshots | `rtdash-fanout` | [`fanout`] |
//! | WebSocket and SSE sessions, wire protocol, auth | `rtdash-transport` | [`transport`] |
//!
//! # Concepts
//!
//! - [`Engine`]: a cheap handle on the whole pipeline. [`Engine::ingest`] /
//!   [`Engine::ingest_json`] validate events and record them in the window store;
//!   [`Engine::tick`] (called by [`Engine::run`] every [`EngineConfig::tick`]) evaluates
//!   the widgets that are due and publishes changed values to the [`hub`](Engine::hub).
//! - **Seams** ([`Engine::builder`]): an [`ingest::IngestLog`] decides where validated
//!   events go before the window store sees them (default: straight in); a
//!   [`publish::Publisher`] decides how frames reach subscribers (default: the local hub).
//!   [`Engine::checkpoint`] / [`Engine::restore`] move the ingest state (windows,
//!   watermarks, late counters, de-duplication horizon, source positions) to another
//!   engine in one [`EngineCheckpoint`].
//! - [`Registry`] ([`Engine::dashboards`]): create, read, update and delete dashboards,
//!   widgets and alert rules; every change is validated as a whole [`DashboardDoc`] and
//!   persisted in a [`DashboardStore`] ([`MemoryStore`], or [`FileStore`]: one JSON file
//!   per dashboard, written atomically; with feature `postgres`, `postgres::PostgresStore`:
//!   one table shared by several nodes) before it is visible.
//! - **Refresh.** Each widget is evaluated at its own refresh interval; widgets that share
//!   (metric, tag filter, aggregation, window, grouping) are computed once per tick; a value
//!   is published only when it changed (value, stale flag or groups); the changed widgets
//!   of one dashboard in one tick go out as **one** update frame, encoded once and shared
//!   by every subscriber.
//! - **Stale marking.** A value whose series had no data for longer than
//!   [`stale_after_intervals`](EngineConfig::stale_after_intervals) (2) refresh intervals
//!   — or than the widget's own [`stale_after_seconds`](Widget::stale_after_seconds) when
//!   it sets one —, that never had data, or whose source is marked unhealthy
//!   ([`Engine::set_source_health`]) is sent with `"stale": true`, never as if fresh.
//! - **Alerts.** [`AlertRule`]s (above/below a threshold, for a duration) live in the
//!   dashboard document and are evaluated on the live values; [`AlertEvent`]s (firing,
//!   resolved) are pushed on the dashboard's topic and kept in [`Engine::alerts`].
//! - **Observability.** The engine emits its metrics through the `metrics` facade into the
//!   recorder the host installed (the exporter is the host's choice), or, with
//!   [`MetricsSink::Isolated`], into a private Prometheus recorder that
//!   [`Engine::render_metrics`] renders and the router's `/metrics` serves.
//! - **Lifecycle.** [`Engine::spawn`] starts the refresh scheduler;
//!   [`EngineTask::shutdown`] stops it and closes every stream with 1001.
//! - [`http::router`] (feature `http`): the HTTP API, including `WS /stream/{id}` and
//!   `GET /sse/{id}`.
//!
//! # The path of one event
//!
//! 1. `POST /ingest` (or [`Engine::ingest_json`]) decodes the batch; each element is
//!    validated (rtdash-core: name, finite value, tags, clock skew) and a bad one is
//!    reported by index without spoiling the rest.
//! 2. The valid events go to the [ingest log](ingest) — by default straight to the
//!    [`Recorder`](ingest::Recorder), which records them under one write lock of the
//!    window store (rtdash-window): into their time bucket, or to the late side channel
//!    ([`Engine::drain_late`]) when older than the grace period; replays (same event `id`)
//!    are dropped.
//! 3. At the next tick after a widget's refresh interval elapsed, its query runs against
//!    the window store; if the value changed it joins its dashboard's update frame.
//! 4. The frame goes to the [publisher](publish) — by default published once to the hub
//!    (rtdash-fanout) under the dashboard's topic
//!    and queued for every subscriber under its slow-consumer policy (default: conflate to
//!    the newest value per widget); the hub keeps it as the widget's last value for
//!    snapshots.
//! 5. Each WebSocket/SSE session (rtdash-transport) drains its queue and writes the frames,
//!    flushing once per batch.
//!
//! # Frames
//!
//! On a dashboard's topic (after the transport's `welcome` and `snapshot` frames; a
//! snapshot embeds the newest update and alert frames in `frames`), encoded once per
//! publish by [`encode_update`], [`encode_alert`] and [`encode_dashboard_event`]:
//!
//! ```json
//! {"type":"update","topic":"ops","seq":42,"sent_at":1700000000120,"items":[
//!   {"widget":"6f1c…","value":12.5,"window_end":1700000001000,"event_time":1700000000100,
//!    "stale":false,"count":118},
//!   {"widget":"0b6e…","value":null,"window_end":1700000001000,"event_time":1700000000090,
//!    "stale":false,"count":40,"groups":[{"group":"eu","value":3.5,"event_time":…,"stale":false,"count":25}, …]}]}
//! {"type":"alert","topic":"ops","seq":43,"sent_at":…,"rule_id":"…","widget":"6f1c…",
//!  "state":"firing","value":312.0,"condition":"above","threshold":250.0,"at":…,"message":"…"}
//! {"type":"dashboard","topic":"ops","seq":44,"sent_at":…,"event":"updated"}
//! ```
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use rtdash::fanout::Event;
//! use rtdash::{Aggregation, DashboardDoc, Engine, EngineConfig, MemoryStore, Timestamp, Widget};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
//!
//! // A dashboard with one widget: requests per minute, refreshed every second (the
//! // default), placed in the first free cells of the grid.
//! let dashboard = DashboardDoc::new("ops", "Operations")?
//!     .with_widget(Widget::new("Requests", "api.requests", Aggregation::Count, 60));
//! engine.dashboards().create(dashboard)?;
//!
//! // A subscriber of the dashboard (WebSocket sessions do the same through the transport).
//! let sub = engine.subscribe("ops")?;
//! assert!(matches!(sub.try_recv(), Ok(Event::Snapshot { .. })));
//!
//! // Ingest, then step the scheduler by hand (a server calls `engine.run(shutdown)`).
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let body = br#"[{"metric_name": "api.requests", "value": 1, "event_time": 1700000000000},
//!                 {"metric_name": "api.requests", "value": 1, "event_time": 1699999999500},
//!                 {"metric_name": "api.requests", "value": "one", "event_time": 1700000000000}]"#;
//! let report = engine.ingest_json_at(body, now)?;
//! assert_eq!((report.accepted, report.rejected), (2, 1));
//! assert_eq!(report.errors[0].index, 2);
//!
//! let tick = engine.tick(now.saturating_add(Duration::from_millis(100)));
//! assert_eq!(tick.frames_published, 1);
//! match sub.try_recv() {
//!     Ok(Event::Message { msg, .. }) => {
//!         let frame: serde_json::Value = serde_json::from_str(msg.as_str())?;
//!         assert_eq!(frame["type"], "update");
//!         assert_eq!(frame["items"][0]["value"], 2.0);
//!         assert_eq!(frame["items"][0]["stale"], false);
//!     }
//!     other => panic!("expected an update, got {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `http` | yes | [`http::router`]: the HTTP API on axum, with WebSocket (`rtdash-transport/axum`) and SSE (`rtdash-transport/sse`) streams, and its OpenAPI document ([`http::openapi_json`], `GET /openapi.json`, made with `utoipa`) |
//! | `jwt` | no | `rtdash-transport/jwt`: `rtdash::transport::JwtAuthenticator` (HS256 JSON Web Tokens) |

pub mod alert_history;
mod alerts;
mod auth;
pub mod catalog;
mod checkpoint;
mod config;
mod doc;
mod engine;
mod error;
mod frames;
pub mod history;
mod history_wire;
#[cfg(feature = "http")]
pub mod http;
pub mod ingest;
mod metrics;
#[cfg(feature = "webhooks")]
pub mod notify;
mod partition;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod publish;
#[cfg(feature = "redis")]
pub mod redis;
mod refresh;
mod registry;
mod store;
mod types;

pub use alert_history::{
    AlertHistoryPage, AlertHistoryQuery, AlertNotifier, AlertRecord, NotificationOutcome,
    NotificationRecord,
};
pub use alerts::{AlertCondition, AlertEvent, AlertRule, AlertSeverity, AlertState};
pub use auth::AllowAll;
pub use catalog::{Catalog, CatalogMetric};
pub use checkpoint::EngineCheckpoint;
pub use config::EngineConfig;
pub use doc::{DashboardDoc, WidgetPatch};
pub use engine::{Engine, EngineBuilder, EngineHealth, EngineTask};
pub use error::{Error, Subject};
pub use frames::{DashboardEvent, encode_alert, encode_dashboard_event, encode_update};
pub use metrics::MetricsSink;
pub use registry::Registry;
pub use store::{DashboardStore, FileStore, LoadProblem, Loaded, MemoryStore, StoreChange};
pub use types::{
    EngineStats, GroupValue, IngestError, IngestOutcome, IngestReport, LateEvent, TickReport,
    WidgetKey, WidgetState,
};

/// The axum version the [`http`] module is built on, for hosts that nest its router.
#[cfg(feature = "http")]
pub use axum;
pub use rtdash_core as core;
pub use rtdash_core::{
    Aggregation, ChartType, CoreError, Dashboard, DashboardId, DisplayConfig, EventId, GridPos,
    MetricEvent, Percentile, SchemaLimits, SchemaViolation, TagFilter, Tags, Threshold, Timestamp,
    Uuid, ValidationLimits, Widget,
};
pub use rtdash_fanout as fanout;
pub use rtdash_fanout::{Event, HubConfig, SlowConsumerPolicy, Subscription};
pub use rtdash_transport as transport;
#[cfg(feature = "jwt")]
pub use rtdash_transport::JwtAuthenticator;
pub use rtdash_transport::{
    AuthError, Authenticator, Frame, FrameHub, Principal, StaticTokens, Topic, TopicAccess,
    Transport, TransportConfig,
};
pub use rtdash_window as window;
pub use rtdash_window::{WindowConfig, WindowStats};

/// The README's Rust snippets, compiled as doc tests so that they stay true (they use the
/// `http` and `redis` features; `cargo test --all-features` runs them).
#[cfg(all(doctest, feature = "http", feature = "redis"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
