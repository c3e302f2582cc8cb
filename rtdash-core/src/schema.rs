//! The widget and dashboard schema: what a dashboard document holds and the rules it must
//! follow ([`Dashboard::validate`]).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregation::Aggregation;
use crate::error::{CoreError, SchemaViolation, clip};
use crate::event::{check_metric_name, check_tag_key};
use crate::filter::TagFilter;
use crate::grid;

/// The id of a dashboard: 1 to [`DashboardId::MAX_LEN`] bytes of ASCII letters, digits, `_`,
/// `.` and `-`, not starting with `.` (so it is safe in URLs, as a pub/sub topic name and as
/// a file name: never `.`, `..` or a hidden dot-file).
///
/// Serialized as a JSON string.
///
/// # Examples
///
/// ```
/// use rtdash_core::DashboardId;
///
/// let id = DashboardId::new("ops-overview")?;
/// assert_eq!(id.as_str(), "ops-overview");
/// assert!(DashboardId::new("v1.2").is_ok());
/// assert!(DashboardId::new("ops overview").is_err());
/// assert!(DashboardId::new(".hidden").is_err());
/// assert!(DashboardId::new("..").is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DashboardId(Box<str>);

impl DashboardId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Creates a dashboard id.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidDashboardId`] when `id` is empty, longer than
    /// [`DashboardId::MAX_LEN`] bytes, starts with `.`, or has a character outside
    /// `A-Z a-z 0-9 _ . -`.
    pub fn new(id: impl Into<String>) -> Result<Self, CoreError> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("the id is empty".to_owned())
        } else if id.len() > Self::MAX_LEN {
            Some(format!(
                "the id is {} bytes, the limit is {}",
                id.len(),
                Self::MAX_LEN
            ))
        } else if id.starts_with('.') {
            Some(
                "the id starts with `.`; an id may not start with a dot (`.`, `..` and \
                 dot-files are not dashboard names); start it with A-Z a-z 0-9 _ or -"
                    .to_owned(),
            )
        } else {
            id.char_indices()
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
                .map(|(i, c)| {
                    format!(
                        "character {c:?} at byte {i} is not allowed; use only A-Z a-z 0-9 _ . -"
                    )
                })
        };
        match reason {
            Some(reason) => Err(CoreError::InvalidDashboardId {
                input: clip(&id, 64),
                reason,
            }),
            None => Ok(Self(id.into_boxed_str())),
        }
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DashboardId {
    type Error = CoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<DashboardId> for String {
    fn from(id: DashboardId) -> Self {
        id.0.into_string()
    }
}

impl fmt::Display for DashboardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An sRGB colour, written `#rrggbb` (six hexadecimal digits, either case on input,
/// lower case on output).
///
/// # Examples
///
/// ```
/// use rtdash_core::Color;
///
/// let c: Color = "#FF8800".parse()?;
/// assert_eq!(c.to_rgb(), [0xff, 0x88, 0x00]);
/// assert_eq!(c.to_string(), "#ff8800");
/// assert!("red".parse::<Color>().is_err());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Color([u8; 3]);

impl Color {
    /// A colour from its red, green and blue components.
    #[must_use]
    pub const fn from_rgb(r: u8, g: u8, b: u8) -> Self {
        Self([r, g, b])
    }

    /// The red, green and blue components.
    #[must_use]
    pub const fn to_rgb(self) -> [u8; 3] {
        self.0
    }
}

impl std::str::FromStr for Color {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CoreError::InvalidColor { input: clip(s, 32) };
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6)
            .ok_or_else(bad)?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        Ok(Self([byte(0)?, byte(2)?, byte(4)?]))
    }
}

impl TryFrom<String> for Color {
    type Error = CoreError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Color> for String {
    fn from(c: Color) -> Self {
        c.to_string()
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// How a widget is drawn. Serialized in lower case: `"line"`, `"area"`, `"gauge"`, `"stat"`,
/// `"table"`, `"heatmap"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartType {
    /// A time series line.
    Line,
    /// A time series line with the area below it filled.
    Area,
    /// A dial between [`DisplayConfig::min`] and [`DisplayConfig::max`].
    Gauge,
    /// One big number.
    Stat,
    /// A table, typically one row per [`Widget::group_by`] value.
    Table,
    /// A heatmap, typically one row per [`Widget::group_by`] value.
    Heatmap,
}

/// A colour that applies from `value` upwards (up to the next threshold).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Lower bound of the band; finite.
    pub value: f64,
    /// Colour of the band.
    pub color: Color,
}

/// Position and size of a widget on the dashboard grid, in grid cells. The widget covers
/// columns `x .. x + w` and rows `y .. y + h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridPos {
    /// Left column (0-based).
    pub x: u32,
    /// Top row (0-based).
    pub y: u32,
    /// Width in columns; at least 1.
    pub w: u32,
    /// Height in rows; at least 1.
    pub h: u32,
}

impl GridPos {
    /// A position.
    #[must_use]
    pub const fn new(x: u32, y: u32, w: u32, h: u32) -> Self {
        Self { x, y, w, h }
    }

    /// Whether the two rectangles share at least one cell.
    #[must_use]
    pub fn overlaps(&self, other: &Self) -> bool {
        let (ax, ay, aw, ah) = (
            u64::from(self.x),
            u64::from(self.y),
            u64::from(self.w),
            u64::from(self.h),
        );
        let (bx, by, bw, bh) = (
            u64::from(other.x),
            u64::from(other.y),
            u64::from(other.w),
            u64::from(other.h),
        );
        ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
    }
}

impl fmt::Display for GridPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} at column {}, row {}",
            self.w, self.h, self.x, self.y
        )
    }
}

/// How a widget looks. JSON key in a widget: `display_config`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayConfig {
    /// Chart type.
    pub chart: ChartType,
    /// Unit shown beside values, e.g. `ms` or `req/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Label of the x axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_axis_label: Option<String>,
    /// Label of the y axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_axis_label: Option<String>,
    /// Colour bands, in strictly ascending order of `value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// Main colour of the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// Lower end of the scale (gauges); finite and below `max` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper end of the scale (gauges); finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Place on the grid.
    pub position: GridPos,
}

impl DisplayConfig {
    /// A display of chart type `chart` at `position`, with everything else unset.
    #[must_use]
    pub fn new(chart: ChartType, position: GridPos) -> Self {
        Self {
            chart,
            unit: None,
            x_axis_label: None,
            y_axis_label: None,
            thresholds: Vec::new(),
            color: None,
            min: None,
            max: None,
            position,
        }
    }
}

/// One widget: a metric aggregated over a sliding window, pushed at a refresh interval.
///
/// JSON form (`tag_filter`, `group_by` and `stale_after_seconds` may be omitted; unknown
/// fields are rejected):
///
/// ```json
/// {"widget_id": "6f1c…", "dashboard_id": "ops", "title": "p99 latency",
///  "metric_name": "api.request.latency", "aggregation": "p99", "window_seconds": 300,
///  "refresh_interval_seconds": 1.0, "tag_filter": {"region": "eu"}, "group_by": "host",
///  "stale_after_seconds": 5,
///  "display_config": {"chart": "line", "unit": "ms", "position": {"x": 0, "y": 0, "w": 6, "h": 4}}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// Unique id of the widget (a random v4 UUID is a good choice; the nil UUID is refused).
    pub widget_id: Uuid,
    /// The dashboard this widget belongs to; must equal the containing dashboard's id.
    pub dashboard_id: DashboardId,
    /// Title shown above the widget; not empty.
    pub title: String,
    /// The metric aggregated; follows the event rule of [`check_metric_name`].
    pub metric_name: String,
    /// What is computed.
    pub aggregation: Aggregation,
    /// Length of the sliding window, in whole seconds; 1 to
    /// [`SchemaLimits::max_window`].
    pub window_seconds: u32,
    /// How often the value is pushed, in seconds; fractions are allowed (`0.5`), down to
    /// [`SchemaLimits::min_refresh_interval`].
    pub refresh_interval_seconds: f64,
    /// Which series of the metric are included (all when empty).
    #[serde(default, skip_serializing_if = "TagFilter::is_empty")]
    pub tag_filter: TagFilter,
    /// A tag key to split the value by (one value per tag value, e.g. per region), for tables
    /// and heatmaps; `None` aggregates all matching series into one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// After how many seconds without data the widget's value is marked *stale*; fractions
    /// are allowed. `None` (the default, omitted in JSON) keeps the server's rule: stale after
    /// a number of refresh intervals (twice the interval by default). Set it for a metric that
    /// is sent less often than the widget refreshes — a metric sent every 2 s on a widget
    /// refreshed every second would otherwise flicker stale — to, say, 2.5 × the sending
    /// period. Positive, finite, at most [`Widget::MAX_STALE_AFTER_SECONDS`] (one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_seconds: Option<f64>,
    /// How the widget is drawn. JSON key: `display_config`.
    #[serde(rename = "display_config", alias = "display")]
    pub display: DisplayConfig,
}

impl Widget {
    /// The largest [`stale_after_seconds`](Self::stale_after_seconds) accepted: one day.
    pub const MAX_STALE_AFTER_SECONDS: f64 = 86_400.0;

    /// The window length as a `Duration`.
    #[must_use]
    pub fn window(&self) -> Duration {
        Duration::from_secs(u64::from(self.window_seconds))
    }

    /// The refresh interval as a `Duration`, or `None` when it is not a positive finite number
    /// of seconds (which [`validate`](Self::validate) reports).
    #[must_use]
    pub fn refresh_interval(&self) -> Option<Duration> {
        Duration::try_from_secs_f64(self.refresh_interval_seconds)
            .ok()
            .filter(|d| !d.is_zero())
    }

    /// The widget's own stale limit ([`stale_after_seconds`](Self::stale_after_seconds)) as
    /// a `Duration`; `None` when it is not set (the server's default rule applies), or not a
    /// positive finite number of seconds (which [`validate`](Self::validate) reports).
    ///
    /// # Examples
    ///
    /// ```
    /// # use rtdash_core::*;
    /// # let mut w = Widget {
    /// #     widget_id: Uuid::from_u128(1),
    /// #     dashboard_id: DashboardId::new("ops")?,
    /// #     title: "Queue depth".into(),
    /// #     metric_name: "queue.depth".into(),
    /// #     aggregation: Aggregation::Max,
    /// #     window_seconds: 60,
    /// #     refresh_interval_seconds: 1.0,
    /// #     tag_filter: TagFilter::new(),
    /// #     group_by: None,
    /// #     stale_after_seconds: None,
    /// #     display: DisplayConfig::new(ChartType::Stat, GridPos::new(0, 0, 2, 2)),
    /// # };
    /// use std::time::Duration;
    ///
    /// assert_eq!(w.stale_after(), None);
    /// w.stale_after_seconds = Some(2.5);
    /// assert_eq!(w.stale_after(), Some(Duration::from_millis(2500)));
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    #[must_use]
    pub fn stale_after(&self) -> Option<Duration> {
        self.stale_after_seconds
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
    }

    /// Checks this widget on its own (as when it is created or updated through an API).
    ///
    /// Applies every widget rule of [`Dashboard::validate`] except those that need the
    /// dashboard: grid width, overlaps, duplicate ids and the dashboard id match. Paths in the
    /// violations are relative to the widget (`window_seconds`, `display_config.position.w`).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSchema`] listing every violation.
    pub fn validate(&self, limits: &SchemaLimits) -> Result<(), CoreError> {
        let mut out = Vec::new();
        self.check(limits, "", &mut out);
        into_result(out)
    }

    fn check(&self, limits: &SchemaLimits, prefix: &str, out: &mut Vec<SchemaViolation>) {
        let at = |field: &str| format!("{prefix}{field}");
        if self.widget_id.is_nil() {
            out.push(SchemaViolation::new(
                at("widget_id"),
                "is the nil UUID; give every widget a unique id (e.g. a random v4 UUID)",
            ));
        }
        check_name(&self.title, limits.max_name_len, &at("title"), out);
        if let Err(reason) = check_metric_name(&self.metric_name, limits.max_metric_name_len) {
            out.push(SchemaViolation::new(at("metric_name"), reason));
        }
        let max_window = limits.max_window.as_secs();
        if self.window_seconds == 0 {
            out.push(SchemaViolation::new(
                at("window_seconds"),
                "is 0; a window must be at least 1 second",
            ));
        } else if u64::from(self.window_seconds) > max_window {
            out.push(SchemaViolation::new(
                at("window_seconds"),
                format!(
                    "is {} s, longer than the retention of {max_window} s (SchemaLimits::max_window); \
                     shorten the window or raise the store's retention",
                    self.window_seconds
                ),
            ));
        }
        let r = self.refresh_interval_seconds;
        let min_refresh = limits.min_refresh_interval.as_secs_f64();
        if !r.is_finite() || r <= 0.0 {
            out.push(SchemaViolation::new(
                at("refresh_interval_seconds"),
                format!("is {r}; it must be a positive number of seconds, e.g. 1 or 0.5"),
            ));
        } else if r < min_refresh {
            out.push(SchemaViolation::new(
                at("refresh_interval_seconds"),
                format!("is {r} s, below the minimum of {min_refresh} s (SchemaLimits::min_refresh_interval)"),
            ));
        }
        if self.tag_filter.len() > limits.max_filter_tags {
            out.push(SchemaViolation::new(
                at("tag_filter"),
                format!(
                    "has {} conditions, the limit is {}",
                    self.tag_filter.len(),
                    limits.max_filter_tags
                ),
            ));
        }
        for (k, v) in self.tag_filter.iter() {
            let path = at(&format!("tag_filter[{:?}]", clip(k, 64)));
            if let Err(reason) = check_tag_key(k, limits.max_tag_key_len) {
                out.push(SchemaViolation::new(path, format!("key {reason}")));
            } else if v.len() > limits.max_tag_value_len {
                out.push(SchemaViolation::new(
                    path,
                    format!(
                        "value is {} bytes, the limit is {}",
                        v.len(),
                        limits.max_tag_value_len
                    ),
                ));
            }
        }
        if let Some(g) = &self.group_by
            && let Err(reason) = check_tag_key(g, limits.max_tag_key_len)
        {
            out.push(SchemaViolation::new(
                at("group_by"),
                format!("{reason} (it must be a tag key)"),
            ));
        }
        if let Some(s) = self.stale_after_seconds {
            let max = Self::MAX_STALE_AFTER_SECONDS;
            if !s.is_finite() || s <= 0.0 {
                out.push(SchemaViolation::new(
                    at("stale_after_seconds"),
                    format!(
                        "is {s}; it must be a positive number of seconds, e.g. 5, or omitted \
                         for the server's default rule"
                    ),
                ));
            } else if s > max {
                out.push(SchemaViolation::new(
                    at("stale_after_seconds"),
                    format!("is {s} s, longer than the limit of {max} s (one day)"),
                ));
            }
        }
        self.check_display(limits, &at("display_config."), out);
    }

    fn check_display(&self, limits: &SchemaLimits, prefix: &str, out: &mut Vec<SchemaViolation>) {
        let d = &self.display;
        let at = |field: &str| format!("{prefix}{field}");
        for (field, label) in [
            ("unit", &d.unit),
            ("x_axis_label", &d.x_axis_label),
            ("y_axis_label", &d.y_axis_label),
        ] {
            if let Some(label) = label
                && label.len() > limits.max_label_len
            {
                out.push(SchemaViolation::new(
                    at(field),
                    format!(
                        "is {} bytes, the limit is {}",
                        label.len(),
                        limits.max_label_len
                    ),
                ));
            }
        }
        if d.thresholds.len() > limits.max_thresholds {
            out.push(SchemaViolation::new(
                at("thresholds"),
                format!(
                    "has {} entries, the limit is {}",
                    d.thresholds.len(),
                    limits.max_thresholds
                ),
            ));
        }
        let mut prev: Option<f64> = None;
        for (j, t) in d.thresholds.iter().enumerate() {
            let path = at(&format!("thresholds[{j}].value"));
            if !t.value.is_finite() {
                out.push(SchemaViolation::new(
                    path,
                    format!("is {}; thresholds must be finite", t.value),
                ));
                continue;
            }
            if let Some(p) = prev
                && t.value <= p
            {
                out.push(SchemaViolation::new(
                        path,
                        format!(
                            "is {}, not above the previous threshold {p}; list thresholds in strictly ascending order",
                            t.value
                        ),
                    ));
            }
            prev = Some(t.value);
        }
        for (field, v) in [("min", d.min), ("max", d.max)] {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                out.push(SchemaViolation::new(
                    at(field),
                    format!("is {v}; it must be finite"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (d.min, d.max)
            && min.is_finite()
            && max.is_finite()
            && min >= max
        {
            out.push(SchemaViolation::new(
                at("min"),
                format!("is {min}, not below max ({max})"),
            ));
        }
        let p = d.position;
        if p.w == 0 {
            out.push(SchemaViolation::new(
                at("position.w"),
                "is 0; a widget is at least 1 column wide",
            ));
        }
        if p.h == 0 {
            out.push(SchemaViolation::new(
                at("position.h"),
                "is 0; a widget is at least 1 row high",
            ));
        }
        if u64::from(p.y) + u64::from(p.h) > u64::from(limits.max_rows) {
            out.push(SchemaViolation::new(
                at("position"),
                format!(
                    "reaches row {}, beyond the limit of {} rows (SchemaLimits::max_rows)",
                    u64::from(p.y) + u64::from(p.h),
                    limits.max_rows
                ),
            ));
        }
    }
}

/// A dashboard: an id, a name and a grid of widgets, stored as one JSON document.
///
/// JSON form (`columns` defaults to 12, `widgets` to none; unknown fields are rejected):
///
/// ```json
/// {"id": "ops", "name": "Operations", "columns": 12, "widgets": [ … ]}
/// ```
///
/// # Examples
///
/// ```
/// use rtdash_core::{Dashboard, SchemaLimits};
///
/// let json = r#"{"id": "ops", "name": "Operations", "widgets": [{
///     "widget_id": "8f3b3c3e-8a47-4b8e-9a52-1f0d2d6e5a11", "dashboard_id": "ops",
///     "title": "Latency p99", "metric_name": "api.latency", "aggregation": "p99",
///     "window_seconds": 0, "refresh_interval_seconds": 1,
///     "display_config": {"chart": "line", "position": {"x": 0, "y": 0, "w": 6, "h": 4}}}]}"#;
/// let dashboard = Dashboard::from_json(json.as_bytes())?;
/// let err = dashboard.validate(&SchemaLimits::default()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid schema: widgets[0].window_seconds: is 0; a window must be at least 1 second"
/// );
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// The dashboard's id.
    pub id: DashboardId,
    /// Display name; not empty.
    pub name: String,
    /// Width of the grid in columns (default 12).
    #[serde(default = "default_columns")]
    pub columns: u32,
    /// The widgets, in display order.
    #[serde(default)]
    pub widgets: Vec<Widget>,
}

/// The default grid width.
pub const DEFAULT_COLUMNS: u32 = 12;

fn default_columns() -> u32 {
    DEFAULT_COLUMNS
}

impl Dashboard {
    /// An empty dashboard with a 12-column grid.
    #[must_use]
    pub fn new(id: DashboardId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            columns: DEFAULT_COLUMNS,
            widgets: Vec::new(),
        }
    }

    /// Parses a dashboard document. Only types are checked here; call
    /// [`validate`](Self::validate) for the rules.
    ///
    /// # Errors
    ///
    /// [`CoreError::MalformedJson`] with line and column, for a syntax error or a value of the
    /// wrong shape, including a bad colour, dashboard id or aggregation (e.g. a percentile
    /// rank out of (0, 100] such as `"p0"`).
    pub fn from_json(json: &[u8]) -> Result<Self, CoreError> {
        serde_json::from_slice(json).map_err(|e| CoreError::from_json(&e))
    }

    /// The dashboard as a JSON document.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The widget with id `id`, if any.
    #[must_use]
    pub fn widget(&self, id: Uuid) -> Option<&Widget> {
        self.widgets.iter().find(|w| w.widget_id == id)
    }

    /// Every rule this dashboard breaks, in document order (empty when it is valid).
    ///
    /// For a widget that overlaps others, the first of them in document order is named.
    /// For n widgets the time is O(n log n) plus terms bounded by the grid: its compressed
    /// cells (distinct column edges × distinct row edges, at most 2²⁰) and n · sqrt(cells).
    /// Past that budget (many widgets far outside the grid the limits allow), overlaps are
    /// looked for only inside `columns` (at most [`SchemaLimits::max_columns`]) ×
    /// [`SchemaLimits::max_rows`]: a widget that reaches outside is reported for that
    /// already, and for it the overlap named may be a later widget, or none. Only when the
    /// limits' own grid is over the budget too (`max_columns × max_rows` > 2²⁰) are all
    /// pairs compared.
    #[must_use]
    pub fn violations(&self, limits: &SchemaLimits) -> Vec<SchemaViolation> {
        let mut out = Vec::new();
        check_name(&self.name, limits.max_name_len, "name", &mut out);
        if self.columns == 0 || self.columns > limits.max_columns {
            out.push(SchemaViolation::new(
                "columns",
                format!(
                    "is {}; the grid must have 1 to {} columns",
                    self.columns, limits.max_columns
                ),
            ));
        }
        if self.widgets.len() > limits.max_widgets {
            out.push(SchemaViolation::new(
                "widgets",
                format!(
                    "has {} widgets, the limit is {} (SchemaLimits::max_widgets)",
                    self.widgets.len(),
                    limits.max_widgets
                ),
            ));
        }
        // Both rules between widgets in O(n log n): the first earlier widget with the same
        // id, and the first earlier widget sharing a grid cell (see the `grid` module).
        let mut first_with_id: HashMap<Uuid, usize> = HashMap::with_capacity(self.widgets.len());
        let positions: Vec<GridPos> = self.widgets.iter().map(|w| w.display.position).collect();
        let overlaps = grid::first_overlaps(
            &positions,
            (self.columns.min(limits.max_columns), limits.max_rows),
            grid::CELL_BUDGET,
        );
        for ((i, w), overlap) in self.widgets.iter().enumerate().zip(overlaps) {
            let prefix = format!("widgets[{i}].");
            let j = *first_with_id.entry(w.widget_id).or_insert(i);
            if j != i {
                out.push(SchemaViolation::new(
                    format!("{prefix}widget_id"),
                    format!(
                        "{} is also the id of widgets[{j}]; widget ids must be unique",
                        w.widget_id
                    ),
                ));
            }
            if w.dashboard_id != self.id {
                out.push(SchemaViolation::new(
                    format!("{prefix}dashboard_id"),
                    format!(
                        "is `{}` but the widget is in dashboard `{}`",
                        w.dashboard_id, self.id
                    ),
                ));
            }
            w.check(limits, &prefix, &mut out);
            let p = w.display.position;
            if self.columns > 0 && u64::from(p.x) + u64::from(p.w) > u64::from(self.columns) {
                out.push(SchemaViolation::new(
                    format!("{prefix}display_config.position"),
                    format!(
                        "x + w = {} exceeds the grid width of {} columns",
                        u64::from(p.x) + u64::from(p.w),
                        self.columns
                    ),
                ));
            }
            if let Some(j) = overlap {
                out.push(SchemaViolation::new(
                    format!("{prefix}display_config.position"),
                    format!(
                        "({p}) overlaps widgets[{j}] ({}); widgets may not share grid cells",
                        self.widgets[j].display.position
                    ),
                ));
            }
        }
        out
    }

    /// Checks every schema rule and reports all violations at once.
    ///
    /// Rules (path: rule):
    /// - `name`: not empty or blank, at most [`SchemaLimits::max_name_len`] bytes;
    /// - `columns`: 1 to [`SchemaLimits::max_columns`];
    /// - `widgets`: at most [`SchemaLimits::max_widgets`];
    /// - `widgets[i].widget_id`: not nil, unique in the dashboard;
    /// - `widgets[i].dashboard_id`: equal to the dashboard's `id`;
    /// - `widgets[i].title`: as `name`;
    /// - `widgets[i].metric_name`: the event rule of [`check_metric_name`];
    /// - `widgets[i].window_seconds`: 1 to [`SchemaLimits::max_window`] (the store's retention);
    /// - `widgets[i].refresh_interval_seconds`: finite, positive, at least
    ///   [`SchemaLimits::min_refresh_interval`];
    /// - `widgets[i].tag_filter`, `widgets[i].group_by`: valid tag keys ([`check_tag_key`])
    ///   and value lengths;
    /// - `widgets[i].stale_after_seconds`: when set, finite, positive, at most
    ///   [`Widget::MAX_STALE_AFTER_SECONDS`];
    /// - `widgets[i].display_config`: labels at most [`SchemaLimits::max_label_len`] bytes;
    ///   thresholds finite and strictly ascending; `min`/`max` finite with `min < max`;
    ///   `position` at least 1×1, inside the grid's columns and [`SchemaLimits::max_rows`],
    ///   not overlapping another widget.
    ///
    /// Rules that a type already enforces are checked when the JSON is decoded: dashboard id
    /// charset, colours (`#rrggbb`), aggregation names and percentile ranks in (0, 100] with at
    /// most 6 decimal places.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSchema`] listing every violation with its path, e.g.
    /// `widgets[2].window_seconds`.
    pub fn validate(&self, limits: &SchemaLimits) -> Result<(), CoreError> {
        into_result(self.violations(limits))
    }
}

fn into_result(violations: Vec<SchemaViolation>) -> Result<(), CoreError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CoreError::InvalidSchema { violations })
    }
}

fn check_name(name: &str, max_len: usize, path: &str, out: &mut Vec<SchemaViolation>) {
    if name.trim().is_empty() {
        out.push(SchemaViolation::new(path, "is empty; give it a name"));
    } else if name.len() > max_len {
        out.push(SchemaViolation::new(
            path,
            format!("is {} bytes, the limit is {max_len}", name.len()),
        ));
    }
}

/// Limits checked by [`Dashboard::validate`] and [`Widget::validate`].
///
/// Build with [`Default`] and the `with_*` setters; every field is also public to read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaLimits {
    /// The longest window a widget may ask for: the window store's retention. Default 1 hour.
    pub max_window: Duration,
    /// The shortest refresh interval. Default 100 ms.
    pub min_refresh_interval: Duration,
    /// Most widgets per dashboard. Default 100.
    pub max_widgets: usize,
    /// Widest grid, in columns. Default 48.
    pub max_columns: u32,
    /// Tallest grid, in rows (a widget may not reach below it). Default 1,000.
    pub max_rows: u32,
    /// Longest dashboard name or widget title, in bytes. Default 200.
    pub max_name_len: usize,
    /// Longest unit or axis label, in bytes. Default 64.
    pub max_label_len: usize,
    /// Most thresholds per widget. Default 16.
    pub max_thresholds: usize,
    /// Longest metric name, in bytes. Default 200 (as for events).
    pub max_metric_name_len: usize,
    /// Most conditions in a tag filter. Default 32 (as tags per event).
    pub max_filter_tags: usize,
    /// Longest tag key, in bytes. Default 128 (as for events).
    pub max_tag_key_len: usize,
    /// Longest tag value in a filter, in bytes. Default 256 (as for events).
    pub max_tag_value_len: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_window: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_millis(100),
            max_widgets: 100,
            max_columns: 48,
            max_rows: 1000,
            max_name_len: 200,
            max_label_len: 64,
            max_thresholds: 16,
            max_metric_name_len: 200,
            max_filter_tags: 32,
            max_tag_key_len: 128,
            max_tag_value_len: 256,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl SchemaLimits {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_window`](Self::max_window).
    with_max_window: max_window: Duration;
    /// Sets [`min_refresh_interval`](Self::min_refresh_interval).
    with_min_refresh_interval: min_refresh_interval: Duration;
    /// Sets [`max_widgets`](Self::max_widgets).
    with_max_widgets: max_widgets: usize;
    /// Sets [`max_columns`](Self::max_columns).
    with_max_columns: max_columns: u32;
    /// Sets [`max_rows`](Self::max_rows).
    with_max_rows: max_rows: u32;
    /// Sets [`max_name_len`](Self::max_name_len).
    with_max_name_len: max_name_len: usize;
    /// Sets [`max_label_len`](Self::max_label_len).
    with_max_label_len: max_label_len: usize;
    /// Sets [`max_thresholds`](Self::max_thresholds).
    with_max_thresholds: max_thresholds: usize;
    /// Sets [`max_metric_name_len`](Self::max_metric_name_len).
    with_max_metric_name_len: max_metric_name_len: usize;
    /// Sets [`max_filter_tags`](Self::max_filter_tags).
    with_max_filter_tags: max_filter_tags: usize;
    /// Sets [`max_tag_key_len`](Self::max_tag_key_len).
    with_max_tag_key_len: max_tag_key_len: usize;
    /// Sets [`max_tag_value_len`](Self::max_tag_value_len).
    with_max_tag_value_len: max_tag_value_len: usize;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dashboard_ids_may_not_start_with_a_dot() {
        for id in [".", "..", "...", ".hidden", ".ops.json"] {
            let err = DashboardId::new(id).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("`{id}`")) && msg.contains("may not start with a dot"),
                "{msg}"
            );
        }
        for id in ["ops", "v1.2", "a..b", "ops.", "_x", "-x"] {
            assert_eq!(
                DashboardId::new(id).map(|d| d.to_string()).ok().as_deref(),
                Some(id)
            );
        }
        // JSON decoding applies the same rule.
        let err = Dashboard::from_json(br#"{"id": "..", "name": "x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("may not start with a dot"),
            "{err}"
        );
    }

    fn widget(id: u128, dash: &str, pos: GridPos) -> Widget {
        Widget {
            widget_id: Uuid::from_u128(id),
            dashboard_id: DashboardId::new(dash).unwrap(),
            title: "w".into(),
            metric_name: "m".into(),
            aggregation: Aggregation::Count,
            window_seconds: 60,
            refresh_interval_seconds: 1.0,
            tag_filter: TagFilter::new(),
            group_by: None,
            stale_after_seconds: None,
            display: DisplayConfig::new(ChartType::Stat, pos),
        }
    }

    /// The rules between widgets as they were checked before: every pair compared. The
    /// oracle for [`Dashboard::violations`].
    fn pairwise_violations(d: &Dashboard, limits: &SchemaLimits) -> Vec<SchemaViolation> {
        let mut out = Vec::new();
        check_name(&d.name, limits.max_name_len, "name", &mut out);
        if d.columns == 0 || d.columns > limits.max_columns {
            out.push(SchemaViolation::new(
                "columns",
                format!(
                    "is {}; the grid must have 1 to {} columns",
                    d.columns, limits.max_columns
                ),
            ));
        }
        if d.widgets.len() > limits.max_widgets {
            out.push(SchemaViolation::new(
                "widgets",
                format!(
                    "has {} widgets, the limit is {} (SchemaLimits::max_widgets)",
                    d.widgets.len(),
                    limits.max_widgets
                ),
            ));
        }
        for (i, w) in d.widgets.iter().enumerate() {
            let prefix = format!("widgets[{i}].");
            if let Some(j) = d.widgets[..i]
                .iter()
                .position(|o| o.widget_id == w.widget_id)
            {
                out.push(SchemaViolation::new(
                    format!("{prefix}widget_id"),
                    format!(
                        "{} is also the id of widgets[{j}]; widget ids must be unique",
                        w.widget_id
                    ),
                ));
            }
            if w.dashboard_id != d.id {
                out.push(SchemaViolation::new(
                    format!("{prefix}dashboard_id"),
                    format!(
                        "is `{}` but the widget is in dashboard `{}`",
                        w.dashboard_id, d.id
                    ),
                ));
            }
            w.check(limits, &prefix, &mut out);
            let p = w.display.position;
            if d.columns > 0 && u64::from(p.x) + u64::from(p.w) > u64::from(d.columns) {
                out.push(SchemaViolation::new(
                    format!("{prefix}display_config.position"),
                    format!(
                        "x + w = {} exceeds the grid width of {} columns",
                        u64::from(p.x) + u64::from(p.w),
                        d.columns
                    ),
                ));
            }
            if p.w > 0
                && p.h > 0
                && let Some(j) = d.widgets[..i].iter().position(|o| {
                    o.display.position.w > 0
                        && o.display.position.h > 0
                        && o.display.position.overlaps(&p)
                })
            {
                out.push(SchemaViolation::new(
                    format!("{prefix}display_config.position"),
                    format!(
                        "({p}) overlaps widgets[{j}] ({}); widgets may not share grid cells",
                        d.widgets[j].display.position
                    ),
                ));
            }
        }
        out
    }

    #[test]
    fn overlaps_and_duplicates_name_the_first_earlier_widget() {
        let mut d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops");
        d.widgets = vec![
            widget(1, "ops", GridPos::new(0, 0, 6, 4)),
            widget(2, "ops", GridPos::new(6, 0, 6, 4)),
            widget(1, "ops", GridPos::new(5, 3, 2, 2)),
            widget(1, "ops", GridPos::new(0, 4, 12, 1)),
        ];
        let got: Vec<String> = d
            .violations(&SchemaLimits::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        let id = Uuid::from_u128(1);
        assert_eq!(
            got,
            [
                format!("widgets[2].widget_id: {id} is also the id of widgets[0]; widget ids must be unique"),
                "widgets[2].display_config.position: (2x2 at column 5, row 3) overlaps widgets[0] \
                 (6x4 at column 0, row 0); widgets may not share grid cells"
                    .to_owned(),
                format!("widgets[3].widget_id: {id} is also the id of widgets[0]; widget ids must be unique"),
                "widgets[3].display_config.position: (12x1 at column 0, row 4) overlaps widgets[2] \
                 (2x2 at column 5, row 3); widgets may not share grid cells"
                    .to_owned(),
            ]
        );
        assert_eq!(
            got.len(),
            pairwise_violations(&d, &SchemaLimits::default()).len()
        );
    }

    #[test]
    fn a_large_valid_grid_is_valid() {
        // 12 columns x 1000 rows of 1x1 widgets, exactly the default row limit.
        let mut d = Dashboard::new(DashboardId::new("big").unwrap(), "Big");
        let mut id = 0;
        for y in 0..1000 {
            for x in 0..12 {
                id += 1;
                d.widgets.push(widget(id, "big", GridPos::new(x, y, 1, 1)));
            }
        }
        let limits = SchemaLimits::default().with_max_widgets(20_000);
        assert_eq!(d.violations(&limits), []);
        d.widgets
            .push(widget(id + 1, "big", GridPos::new(11, 999, 1, 1)));
        let v = d.violations(&limits);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].to_string().contains("overlaps widgets[11999]"),
            "{}",
            v[0]
        );
    }

    fn layout() -> impl Strategy<Value = (u32, Vec<(u128, bool, GridPos)>)> {
        let widget = (
            0u128..6,
            prop::bool::weighted(0.9),
            (0u32..14, 0u32..12, 0u32..6, 0u32..5),
        )
            .prop_map(|(id, ours, (x, y, w, h))| (id, ours, GridPos::new(x, y, w, h)));
        (0u32..14, prop::collection::vec(widget, 0..30))
    }

    proptest! {
        #[test]
        fn violations_match_the_pairwise_oracle((columns, ws) in layout()) {
            let mut d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops");
            d.columns = columns;
            d.widgets = ws
                .into_iter()
                .map(|(id, ours, pos)| widget(id, if ours { "ops" } else { "other" }, pos))
                .collect();
            let limits = SchemaLimits::default().with_max_rows(10).with_max_columns(12);
            let got = d.violations(&limits);
            prop_assert_eq!(got.is_empty(), d.validate(&limits).is_ok());
            prop_assert_eq!(got, pairwise_violations(&d, &limits));
        }
    }
}
