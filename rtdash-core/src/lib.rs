//! The data model of rtdash: metric events, series identity, the widget and dashboard schema,
//! their validation and their JSON forms.
//!
//! This crate is small, synchronous and has no async runtime; the other rtdash crates build
//! on it.
//!
//! # Concepts
//!
//! - [`MetricEvent`]: one measurement (`metric_name`, `value`, `tags`, `event_time`, optional
//!   `id`). [`MetricEvent::validate`] checks it against [`ValidationLimits`]; every error
//!   names the field and the limit, e.g. `tags["region"]: value is 300 bytes, the limit is 256`.
//! - [`decode_batch`]: decodes a JSON array of events. Each element gets its own verdict, so
//!   one bad event never spoils the batch; only malformed JSON as a whole is an error.
//! - [`Timestamp`]: event time in milliseconds since the Unix epoch. Pure logic takes the
//!   current time as an argument; only [`Timestamp::now`] reads the clock.
//! - [`SeriesKey`]: a metric name plus a canonical (sorted) tag set. [`SeriesInterner`] maps
//!   keys to dense, copyable [`SeriesId`]s; looking up a known series does not allocate.
//! - [`TagFilter`]: which series a widget selects (tag equality).
//! - [`Aggregation`] (count, sum, avg, min, max, or a [`Percentile`] such as p99.9).
//! - [`Dashboard`] and [`Widget`] (with [`DisplayConfig`]): the schema of a dashboard
//!   document, written as JSON or built in code ([`Widget::new`] and its `with_*` setters,
//!   [`Dashboard::with_widget`]; widgets without a position are placed in the first free
//!   grid cells). [`Dashboard::validate`] reports every broken rule with its JSON path,
//!   against [`SchemaLimits`].
//! - [`CoreError`]: the one error type of the crate.
//!
//! # Example
//!
//! ```
//! use rtdash_core::{
//!     decode_batch, Dashboard, SchemaLimits, SeriesInterner, TagFilter, Timestamp,
//!     ValidationLimits,
//! };
//!
//! // Decode a batch from a producer: good events are accepted, bad ones reported by index.
//! let body = br#"[
//!   {"metric_name": "api.latency", "value": 12.5, "tags": {"region": "eu", "host": "a"},
//!    "event_time": 1700000000000},
//!   {"metric_name": "api.latency", "value": null, "event_time": 1700000000000},
//!   {"metric_name": "api.latency", "value": 30.0, "tags": {"host": "b", "region": "us"},
//!    "event_time": 1700000000500, "id": "p1:3"}
//! ]"#;
//! let now = Timestamp::from_millis(1_700_000_001_000);
//! let batch = decode_batch(body, &ValidationLimits::default(), now)?;
//! assert_eq!(batch.accepted.len(), 2);
//! assert_eq!(batch.rejected.len(), 1);
//! println!("{}", batch.rejected[0]); // event [1]: value: is null; expected a finite number …
//!
//! // Intern the series: each distinct (metric, tags) gets a dense, copyable id.
//! let mut series = SeriesInterner::with_max_series(100_000);
//! for event in &batch.accepted {
//!     series.intern_event(event)?;
//! }
//! let eu = series.get("api.latency", [("host", "a"), ("region", "eu")]).unwrap();
//! assert_eq!(eu.index(), 0);
//! let filter = TagFilter::new().with("region", "us");
//! let us: Vec<_> = series
//!     .iter()
//!     .filter(|(_, key)| filter.matches(key))
//!     .map(|(id, _)| id)
//!     .collect();
//! assert_eq!(us.len(), 1);
//!
//! // Validate a dashboard document: every problem is listed with its path.
//! let doc = br##"{"id": "ops", "name": "Operations", "widgets": [
//!   {"widget_id": "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c01", "dashboard_id": "ops",
//!    "title": "p99 latency (EU)", "metric_name": "api.latency", "aggregation": "p99",
//!    "window_seconds": 300, "refresh_interval_seconds": 0.5, "tag_filter": {"region": "eu"},
//!    "display_config": {"chart": "line", "unit": "ms",
//!      "thresholds": [{"value": 100, "color": "#ffaa00"}, {"value": 250, "color": "#ff0000"}],
//!      "position": {"x": 0, "y": 0, "w": 6, "h": 4}}},
//!   {"widget_id": "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c02", "dashboard_id": "ops",
//!    "title": "Requests", "metric_name": "api.latency", "aggregation": "count",
//!    "window_seconds": 7200, "refresh_interval_seconds": 1,
//!    "display_config": {"chart": "stat", "position": {"x": 4, "y": 0, "w": 4, "h": 2}}}
//! ]}"##;
//! let dashboard = Dashboard::from_json(doc)?;
//! // Windows may not be longer than the window store keeps data (the rtdash engine sets
//! // this from its store's configuration).
//! let limits = SchemaLimits::default().with_retention(std::time::Duration::from_secs(3600));
//! let problems = dashboard.violations(&limits);
//! let paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
//! assert_eq!(paths, ["widgets[1].window_seconds", "widgets[1].display_config.position"]);
//! # Ok::<(), rtdash_core::CoreError>(())
//! ```
//!
//! # JSON forms
//!
//! - Event: `{"metric_name": "…", "value": 1.5, "tags": {"k": "v"}, "event_time": 1700000000000, "id": "…"}`
//!   (`tags`, `id` optional; `event_time` integer milliseconds, or an RFC 3339 string).
//! - Batch: an array of events, or one event object (a batch of one).
//! - Aggregation: `"count" | "sum" | "avg" | "min" | "max" | "p50" | "p99" | "p99.9" | …`.
//! - Dashboard: see [`Dashboard`] and [`Widget`]; unknown fields are rejected everywhere so
//!   that typos surface as errors.
//!
//! # Feature flags
//!
//! None.

mod aggregation;
mod batch;
mod error;
mod event;
mod fast;
mod filter;
mod grid;
mod schema;
mod series;
mod time;

pub use aggregation::{Aggregation, Percentile};
pub use batch::{
    BorrowedBatch, BorrowedEvent, DecodedBatch, RejectedEvent, decode_batch, decode_batch_borrowed,
    decode_event,
};
pub use error::{CoreError, SchemaViolation};
pub use event::{EventId, MetricEvent, Tags, ValidationLimits, check_metric_name, check_tag_key};
pub use filter::TagFilter;
pub use schema::{
    ChartType, Color, DEFAULT_COLUMNS, Dashboard, DashboardId, DisplayConfig, GridPos,
    SchemaLimits, Threshold, Widget,
};
pub use series::{SeriesId, SeriesInterner, SeriesKey};
pub use time::Timestamp;
/// The UUID type of [`Widget::widget_id`], re-exported so hosts need not depend on `uuid`.
pub use uuid::Uuid;
