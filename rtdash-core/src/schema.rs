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
///
/// # Examples
///
/// ```
/// use rtdash_core::{Aggregation, ChartType, Widget};
///
/// let w = Widget::new("Latency", "http.latency_ms", Aggregation::P99, 30).with_chart(ChartType::Gauge);
/// assert_eq!(w.display.chart, ChartType::Gauge);
/// assert_eq!(ChartType::Gauge.default_size(), (3, 3));
/// assert_eq!(serde_json::to_string(&ChartType::Heatmap).unwrap(), r#""heatmap""#);
/// ```
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

impl ChartType {
    /// The chart [`Widget::new`] picks for `aggregation`: [`Stat`](Self::Stat) (one big
    /// number) for a count or sum, [`Line`](Self::Line) for the others (an average, an
    /// extreme or a percentile is best read as a trend).
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::{Aggregation, ChartType};
    ///
    /// assert_eq!(ChartType::for_aggregation(Aggregation::Count), ChartType::Stat);
    /// assert_eq!(ChartType::for_aggregation(Aggregation::P99), ChartType::Line);
    /// ```
    #[must_use]
    pub const fn for_aggregation(aggregation: Aggregation) -> Self {
        match aggregation {
            Aggregation::Count | Aggregation::Sum => Self::Stat,
            _ => Self::Line,
        }
    }

    /// The size, in grid cells `(w, h)`, of a widget of this chart type that has no
    /// [`position`](DisplayConfig::position) when it is placed automatically (see
    /// [`Dashboard::place_widgets`]): 3×2 for a stat, 3×3 for a gauge, 6×4 for the others.
    /// The width is cut to the grid's width when the grid is narrower.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::ChartType;
    ///
    /// assert_eq!(ChartType::Stat.default_size(), (3, 2));
    /// assert_eq!(ChartType::Line.default_size(), (6, 4));
    /// ```
    #[must_use]
    pub const fn default_size(self) -> (u32, u32) {
        match self {
            Self::Stat => (3, 2),
            Self::Gauge => (3, 3),
            Self::Line | Self::Area | Self::Table | Self::Heatmap => (6, 4),
        }
    }
}

/// A colour that applies from `value` upwards (up to the next threshold).
///
/// # Examples
///
/// ```
/// use rtdash_core::{ChartType, Color, DisplayConfig};
///
/// let display = DisplayConfig::new(ChartType::Gauge)
///     .with_threshold(0.0, Color::from_rgb(0x2e, 0x7d, 0x32))
///     .with_threshold(80.0, Color::from_rgb(0xc6, 0x28, 0x28));
/// assert_eq!(display.thresholds[1].value, 80.0);
/// assert_eq!(display.thresholds[1].color.to_string(), "#c62828");
/// ```
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
///
/// # Examples
///
/// ```
/// use rtdash_core::GridPos;
///
/// let left = GridPos::new(0, 0, 6, 4);
/// assert!(left.overlaps(&GridPos::new(5, 3, 2, 2)));
/// assert!(!left.overlaps(&GridPos::new(6, 0, 6, 4)));
/// ```
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
///
/// # Examples
///
/// ```
/// use rtdash_core::{ChartType, Color, DisplayConfig, GridPos};
///
/// let display = DisplayConfig::new(ChartType::Gauge)
///     .with_unit("%")
///     .with_range(0.0, 100.0)
///     .with_threshold(90.0, Color::from_rgb(0xff, 0, 0))
///     .with_position(GridPos::new(0, 0, 3, 3));
/// assert_eq!(display.position, Some(GridPos::new(0, 0, 3, 3)));
/// ```
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
    /// Place and size on the grid. `None` (omitted in JSON): the widget is placed
    /// automatically, at its chart type's [default size](ChartType::default_size), in the
    /// first free cells of the grid (see [`Dashboard::place_widgets`]); the rtdash engine
    /// does that when it stores the dashboard, so stored and served documents always have a
    /// position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<GridPos>,
}

impl DisplayConfig {
    /// A display of chart type `chart`, placed automatically ([`position`](Self::position)
    /// `None`), with everything else unset.
    #[must_use]
    pub fn new(chart: ChartType) -> Self {
        Self {
            chart,
            unit: None,
            x_axis_label: None,
            y_axis_label: None,
            thresholds: Vec::new(),
            color: None,
            min: None,
            max: None,
            position: None,
        }
    }

    /// Sets the [`position`](Self::position) (and size) on the grid.
    #[must_use]
    pub fn with_position(mut self, position: GridPos) -> Self {
        self.position = Some(position);
        self
    }

    /// Sets the [`unit`](Self::unit) shown beside values, e.g. `ms`.
    #[must_use]
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Sets the main [`color`](Self::color).
    #[must_use]
    pub fn with_color(mut self, color: Color) -> Self {
        self.color = Some(color);
        self
    }

    /// Adds a [threshold](Self::thresholds): `color` from `value` upwards. Add them in
    /// ascending order of `value` (validation refuses another order).
    #[must_use]
    pub fn with_threshold(mut self, value: f64, color: Color) -> Self {
        self.thresholds.push(Threshold { value, color });
        self
    }

    /// Sets the scale's [`min`](Self::min) and [`max`](Self::max) (gauges).
    #[must_use]
    pub fn with_range(mut self, min: f64, max: f64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
}

/// One widget: a metric aggregated over a sliding window, pushed at a refresh interval.
///
/// Build one with [`Widget::new`] and the `with_*` setters, and add it to a dashboard with
/// [`Dashboard::with_widget`] (which fills in [`dashboard_id`](Self::dashboard_id)); a
/// widget without a [`position`](DisplayConfig::position) is placed in the first free grid
/// cells.
///
/// JSON form (`dashboard_id`, `tag_filter`, `group_by`, `stale_after_seconds` and
/// `display_config.position` may be omitted; unknown fields are rejected):
///
/// ```json
/// {"widget_id": "6f1c…", "dashboard_id": "ops", "title": "p99 latency",
///  "metric_name": "api.request.latency", "aggregation": "p99", "window_seconds": 300,
///  "refresh_interval_seconds": 1.0, "tag_filter": {"region": "eu"}, "group_by": "host",
///  "stale_after_seconds": 5,
///  "display_config": {"chart": "line", "unit": "ms", "position": {"x": 0, "y": 0, "w": 6, "h": 4}}}
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash_core::{Aggregation, ChartType, Dashboard, DashboardId, SchemaLimits, Widget};
///
/// let p99 = Widget::new("p99 latency", "http.latency_ms", Aggregation::P99, 30)
///     .with_filter("region", "eu")
///     .with_refresh(Duration::from_millis(500))
///     .with_unit("ms");
/// assert_eq!(p99.display.chart, ChartType::Line); // chosen from the aggregation
/// assert_eq!(p99.display.position, None); // placed when added to a dashboard
///
/// let dashboard = Dashboard::new(DashboardId::new("ops")?, "Operations")
///     .with_widget(p99)
///     .with_widget(Widget::new("Requests", "http.requests", Aggregation::Count, 60));
/// assert!(dashboard.validate(&SchemaLimits::default()).is_ok());
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// Unique id of the widget (a random v4 UUID is a good choice; the nil UUID is refused).
    pub widget_id: Uuid,
    /// The dashboard this widget belongs to: when set, it must equal the containing
    /// dashboard's id. `None` (omitted in JSON) means the containing dashboard; it is filled
    /// in by [`Dashboard::with_widget`] (and by the rtdash engine when it stores the
    /// dashboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_id: Option<DashboardId>,
    /// Title shown above the widget; not empty.
    pub title: String,
    /// The metric aggregated; follows the event rule of [`check_metric_name`].
    pub metric_name: String,
    /// What is computed.
    pub aggregation: Aggregation,
    /// Length of the sliding window, in whole seconds; 1 to the window store's retention
    /// (and to [`SchemaLimits::max_window`] when that is set), see
    /// [`SchemaLimits::window_limit`].
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

    /// A widget showing `aggregation` of `metric_name` over the last `window_seconds`
    /// seconds, titled `title`: a random v4 id, refreshed every second, all series of the
    /// metric (no tag filter, no grouping), the server's stale rule, and a display of the
    /// chart type [chosen from the aggregation](ChartType::for_aggregation) with no
    /// position (placed automatically, see [`Dashboard::place_widgets`]) and no
    /// [`dashboard_id`](Self::dashboard_id) (filled in by [`Dashboard::with_widget`]).
    ///
    /// Nothing is checked here: [`Dashboard::validate`] (or the engine, when the dashboard
    /// is created) reports every rule the widget breaks, e.g. an empty title or a window
    /// longer than the store's retention.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::{Aggregation, ChartType, Widget};
    ///
    /// let w = Widget::new("Requests", "http.requests", Aggregation::Count, 60);
    /// assert_eq!(w.refresh_interval_seconds, 1.0);
    /// assert_eq!(w.display.chart, ChartType::Stat);
    /// assert!(!w.widget_id.is_nil());
    /// ```
    #[must_use]
    pub fn new(
        title: impl Into<String>,
        metric_name: impl Into<String>,
        aggregation: Aggregation,
        window_seconds: u32,
    ) -> Self {
        Self {
            widget_id: Uuid::new_v4(),
            dashboard_id: None,
            title: title.into(),
            metric_name: metric_name.into(),
            aggregation,
            window_seconds,
            refresh_interval_seconds: 1.0,
            tag_filter: TagFilter::new(),
            group_by: None,
            stale_after_seconds: None,
            display: DisplayConfig::new(ChartType::for_aggregation(aggregation)),
        }
    }

    /// Sets the [`widget_id`](Self::widget_id) (by default a random v4 UUID), e.g. to keep a
    /// widget's id stable across restarts of a host that defines it in code.
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.widget_id = id;
        self
    }

    /// Sets how often the value is pushed (default 1 s); see
    /// [`refresh_interval_seconds`](Self::refresh_interval_seconds).
    #[must_use]
    pub fn with_refresh(mut self, interval: Duration) -> Self {
        self.refresh_interval_seconds = interval.as_secs_f64();
        self
    }

    /// Adds a condition to the [`tag_filter`](Self::tag_filter): only series whose tag `key`
    /// equals `value` are included.
    #[must_use]
    pub fn with_filter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tag_filter = self.tag_filter.with(key, value);
        self
    }

    /// Splits the value by tag `key` (one value per tag value); see
    /// [`group_by`](Self::group_by). A [`Table`](ChartType::Table) or
    /// [`Heatmap`](ChartType::Heatmap) shows one row per group
    /// ([`with_chart`](Self::with_chart)).
    #[must_use]
    pub fn with_group_by(mut self, key: impl Into<String>) -> Self {
        self.group_by = Some(key.into());
        self
    }

    /// Sets after how long without data the value is marked stale; see
    /// [`stale_after_seconds`](Self::stale_after_seconds).
    #[must_use]
    pub fn with_stale_after(mut self, after: Duration) -> Self {
        self.stale_after_seconds = Some(after.as_secs_f64());
        self
    }

    /// Replaces the whole [`display`](Self::display).
    #[must_use]
    pub fn with_display(mut self, display: DisplayConfig) -> Self {
        self.display = display;
        self
    }

    /// Sets the chart type (by default [chosen from the
    /// aggregation](ChartType::for_aggregation)).
    #[must_use]
    pub fn with_chart(mut self, chart: ChartType) -> Self {
        self.display.chart = chart;
        self
    }

    /// Sets the unit shown beside values, e.g. `ms`.
    #[must_use]
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.display.unit = Some(unit.into());
        self
    }

    /// Puts the widget at `position` instead of placing it automatically. Widgets placed
    /// automatically never take cells of a widget with a position.
    #[must_use]
    pub fn with_position(mut self, position: GridPos) -> Self {
        self.display.position = Some(position);
        self
    }

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
    /// use std::time::Duration;
    /// use rtdash_core::{Aggregation, Widget};
    ///
    /// let w = Widget::new("Queue depth", "queue.depth", Aggregation::Max, 60);
    /// assert_eq!(w.stale_after(), None);
    /// let w = w.with_stale_after(Duration::from_millis(2500));
    /// assert_eq!(w.stale_after_seconds, Some(2.5));
    /// assert_eq!(w.stale_after(), Some(Duration::from_millis(2500)));
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
    /// dashboard: grid width, overlaps, duplicate ids and the dashboard id match (a widget
    /// without a position is not checked for one). Paths in the violations are relative to
    /// the widget (`window_seconds`, `display_config.position.w`).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidSchema`] listing every violation.
    pub fn validate(&self, limits: &SchemaLimits) -> Result<(), CoreError> {
        let mut out = Vec::new();
        self.check(limits, self.display.position, "", &mut out);
        into_result(out)
    }

    /// Checks the widget's own rules, with `position` its place on the grid (its own, or
    /// the one automatic placement gives it; `None`: not checked).
    fn check(
        &self,
        limits: &SchemaLimits,
        position: Option<GridPos>,
        prefix: &str,
        out: &mut Vec<SchemaViolation>,
    ) {
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
        if self.window_seconds == 0 {
            out.push(SchemaViolation::new(
                at("window_seconds"),
                "is 0; a window must be at least 1 second",
            ));
        } else if let Some(reason) = limits.window_refusal(self.window_seconds) {
            out.push(SchemaViolation::new(at("window_seconds"), reason));
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
        self.check_display(limits, position, &at("display_config."), out);
    }

    fn check_display(
        &self,
        limits: &SchemaLimits,
        position: Option<GridPos>,
        prefix: &str,
        out: &mut Vec<SchemaViolation>,
    ) {
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
        let Some(p) = position else { return };
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
/// In code, with the builders: widgets without a position are placed in the first free
/// cells of the grid.
///
/// ```
/// use rtdash_core::{Aggregation, Dashboard, DashboardId, GridPos, SchemaLimits, Widget};
///
/// let mut dashboard = Dashboard::new(DashboardId::new("ops")?, "Operations")
///     .with_widget(Widget::new("Errors", "http.errors", Aggregation::Sum, 60)
///         .with_position(GridPos::new(0, 0, 3, 2)))
///     .with_widget(Widget::new("p99", "http.latency_ms", Aggregation::P99, 30))
///     .with_widget(Widget::new("Requests", "http.requests", Aggregation::Count, 60));
/// let limits = SchemaLimits::default();
/// dashboard.validate(&limits)?;
/// dashboard.place_widgets(&limits);
/// let at: Vec<_> = dashboard.widgets.iter().map(|w| w.display.position).collect();
/// assert_eq!(at, [
///     Some(GridPos::new(0, 0, 3, 2)),
///     Some(GridPos::new(3, 0, 6, 4)), // the p99 line: 6×4, beside the first free cell
///     Some(GridPos::new(9, 0, 3, 2)), // the count stat: 3×2
/// ]);
/// assert!(dashboard.widgets.iter().all(|w| w.dashboard_id.as_ref() == Some(&dashboard.id)));
/// # Ok::<(), rtdash_core::CoreError>(())
/// ```
///
/// From JSON (only types are checked when decoding; the rules by
/// [`validate`](Self::validate)):
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
    ///
    /// The id is a [`DashboardId`], checked when it is made ([`DashboardId::new`] is the
    /// fallible step); everything else is checked by [`validate`](Self::validate).
    #[must_use]
    pub fn new(id: DashboardId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            columns: DEFAULT_COLUMNS,
            widgets: Vec::new(),
        }
    }

    /// Sets the grid's width in [`columns`](Self::columns) (default 12).
    #[must_use]
    pub fn with_columns(mut self, columns: u32) -> Self {
        self.columns = columns;
        self
    }

    /// Adds `widget` (after the others) and sets its [`dashboard_id`](Widget::dashboard_id)
    /// to this dashboard's id. A widget without a [position](DisplayConfig::position) keeps
    /// none until [`place_widgets`](Self::place_widgets) runs (the rtdash engine runs it when
    /// it stores the dashboard), so widgets added later with a position are never in its way.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::{Aggregation, Dashboard, DashboardId, Widget};
    ///
    /// let d = Dashboard::new(DashboardId::new("ops")?, "Ops")
    ///     .with_widget(Widget::new("Requests", "http.requests", Aggregation::Count, 60));
    /// assert_eq!(d.widgets[0].dashboard_id.as_ref(), Some(&d.id));
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    #[must_use]
    pub fn with_widget(mut self, mut widget: Widget) -> Self {
        widget.dashboard_id = Some(self.id.clone());
        self.widgets.push(widget);
        self
    }

    /// Gives every widget without a [position](DisplayConfig::position) one: in document
    /// order, each goes at its chart type's [default size](ChartType::default_size) (cut to
    /// the grid's width) into the first free cells, row by row from the top left, never
    /// sharing a cell with a widget that has a position or was placed before it. A widget
    /// without a [`dashboard_id`](Widget::dashboard_id) gets this dashboard's.
    ///
    /// The grid is `columns` wide (at most [`SchemaLimits::max_columns`]) and
    /// [`SchemaLimits::max_rows`] tall; a widget that finds no room in it goes below it (and
    /// [`validate`](Self::validate) then reports it). With more widgets than
    /// [`SchemaLimits::max_widgets`] nothing is placed. Widgets that have a position keep it,
    /// even if it breaks a rule.
    ///
    /// [`validate`](Self::validate) checks a dashboard as this method would place it, so a
    /// valid dashboard stays valid once placed.
    ///
    /// # Examples
    ///
    /// ```
    /// use rtdash_core::{Aggregation, ChartType, Dashboard, DashboardId, GridPos, SchemaLimits, Widget};
    ///
    /// let stat = |title: &str| Widget::new(title, "m", Aggregation::Count, 60);
    /// let mut d = Dashboard::new(DashboardId::new("ops")?, "Ops")
    ///     .with_columns(6)
    ///     .with_widget(stat("a"))
    ///     .with_widget(stat("b").with_position(GridPos::new(3, 0, 3, 1)))
    ///     .with_widget(stat("c"))
    ///     .with_widget(stat("d").with_chart(ChartType::Line));
    /// d.place_widgets(&SchemaLimits::default());
    /// let at: Vec<_> = d.widgets.iter().filter_map(|w| w.display.position).collect();
    /// assert_eq!(at, [
    ///     GridPos::new(0, 0, 3, 2),
    ///     GridPos::new(3, 0, 3, 1),
    ///     GridPos::new(3, 1, 3, 2), // under `b`, the first 3×2 gap in row-major order
    ///     GridPos::new(0, 3, 6, 4), // 6 wide: below everything
    /// ]);
    /// # Ok::<(), rtdash_core::CoreError>(())
    /// ```
    pub fn place_widgets(&mut self, limits: &SchemaLimits) {
        let placed = self.positions(limits);
        for (w, p) in self.widgets.iter_mut().zip(placed) {
            if w.display.position.is_none() {
                w.display.position = p;
            }
            if w.dashboard_id.is_none() {
                w.dashboard_id = Some(self.id.clone());
            }
        }
    }

    /// Every widget's place: its own position, or the one [`place_widgets`] gives it
    /// (`None` only with more widgets than the limit allows).
    ///
    /// [`place_widgets`]: Self::place_widgets
    fn positions(&self, limits: &SchemaLimits) -> Vec<Option<GridPos>> {
        if self.widgets.iter().all(|w| w.display.position.is_some())
            || self.widgets.len() > limits.max_widgets
        {
            return self.widgets.iter().map(|w| w.display.position).collect();
        }
        let slots: Vec<grid::Slot> = self
            .widgets
            .iter()
            .map(|w| match w.display.position {
                Some(p) => grid::Slot::Fixed(p),
                None => {
                    let (w, h) = w.display.chart.default_size();
                    grid::Slot::Auto { w, h }
                }
            })
            .collect();
        let columns = self.columns.min(limits.max_columns).max(1);
        grid::place(&slots, columns, limits.max_rows, grid::CELL_BUDGET)
            .into_iter()
            .map(Some)
            .collect()
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
    ///
    /// Widgets without a position are checked where [`place_widgets`](Self::place_widgets)
    /// puts them; finding their places costs a bitmap of at most 2²⁰ cells of the grid and,
    /// per distinct widget size, one forward scan of it.
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
        // Widgets without a position are checked where `place_widgets` would put them.
        let mut first_with_id: HashMap<Uuid, usize> = HashMap::with_capacity(self.widgets.len());
        let placed = self.positions(limits);
        // A widget left unplaced (only past `max_widgets`) covers no cell.
        let cells: Vec<GridPos> = placed
            .iter()
            .map(|p| p.unwrap_or(GridPos::new(0, 0, 0, 0)))
            .collect();
        let overlaps = grid::first_overlaps(
            &cells,
            (self.columns.min(limits.max_columns), limits.max_rows),
            grid::CELL_BUDGET,
        );
        for (((i, w), overlap), position) in
            self.widgets.iter().enumerate().zip(overlaps).zip(placed)
        {
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
            if let Some(d) = &w.dashboard_id
                && *d != self.id
            {
                out.push(SchemaViolation::new(
                    format!("{prefix}dashboard_id"),
                    format!("is `{d}` but the widget is in dashboard `{}`", self.id),
                ));
            }
            w.check(limits, position, &prefix, &mut out);
            let Some(p) = position else { continue };
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
                        cells[j]
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
    /// - `widgets[i].dashboard_id`: when set, equal to the dashboard's `id`;
    /// - `widgets[i].title`: as `name`;
    /// - `widgets[i].metric_name`: the event rule of [`check_metric_name`];
    /// - `widgets[i].window_seconds`: 1 to [`SchemaLimits::window_limit`] (the store's
    ///   retention, or [`SchemaLimits::max_window`] when that is lower);
    /// - `widgets[i].refresh_interval_seconds`: finite, positive, at least
    ///   [`SchemaLimits::min_refresh_interval`];
    /// - `widgets[i].tag_filter`, `widgets[i].group_by`: valid tag keys ([`check_tag_key`])
    ///   and value lengths;
    /// - `widgets[i].stale_after_seconds`: when set, finite, positive, at most
    ///   [`Widget::MAX_STALE_AFTER_SECONDS`];
    /// - `widgets[i].display_config`: labels at most [`SchemaLimits::max_label_len`] bytes;
    ///   thresholds finite and strictly ascending; `min`/`max` finite with `min < max`;
    ///   `position` at least 1×1, inside the grid's columns and [`SchemaLimits::max_rows`],
    ///   not overlapping another widget. A widget without a position is checked where
    ///   [`place_widgets`](Self::place_widgets) would put it.
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
///
/// # The longest window
///
/// A widget's window may not be longer than the window store keeps data:
/// [`retention`](Self::retention), which the rtdash engine sets from its window store's
/// configuration (`EngineConfig::window.retention`, 1 hour by default). Raising the
/// retention is enough to allow longer windows. [`max_window`](Self::max_window) is an
/// optional, lower limit of the schema's own (`None` by default: the retention alone
/// decides); [`window_limit`](Self::window_limit) is the one that applies, and a refused
/// window's message names the setting that refused it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash_core::SchemaLimits;
///
/// let hour = Duration::from_secs(3600);
/// let limits = SchemaLimits::default().with_retention(3 * hour);
/// assert_eq!(limits.window_limit(), Some(3 * hour));
/// assert_eq!(limits.with_max_window(hour).window_limit(), Some(hour));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaLimits {
    /// The window store's retention: no widget window may be longer. `None` (the default):
    /// not known here, so not checked — the rtdash engine always sets it from its window
    /// store (`EngineConfig::window.retention`), replacing any value set here.
    pub retention: Option<Duration>,
    /// A limit on widget windows of the schema's own, below the retention. `None` (the
    /// default): windows up to the [`retention`](Self::retention) are accepted.
    pub max_window: Option<Duration>,
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
            retention: None,
            max_window: None,
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

impl SchemaLimits {
    /// Sets [`retention`](Self::retention) (the rtdash engine does it from its window
    /// store's configuration).
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Sets [`max_window`](Self::max_window), a limit on widget windows below the
    /// retention.
    #[must_use]
    pub fn with_max_window(mut self, max_window: Duration) -> Self {
        self.max_window = Some(max_window);
        self
    }

    /// The longest window a widget may ask for: the lower of [`retention`](Self::retention)
    /// and [`max_window`](Self::max_window); `None` when neither is set.
    #[must_use]
    pub fn window_limit(&self) -> Option<Duration> {
        match (self.retention, self.max_window) {
            (Some(r), Some(m)) => Some(r.min(m)),
            (r, m) => r.or(m),
        }
    }

    /// Why a window of `seconds` (at least 1) is refused, naming the setting(s) to raise;
    /// `None` when it is accepted.
    fn window_refusal(&self, seconds: u32) -> Option<String> {
        let secs = u64::from(seconds);
        let retention = self.retention.map(|d| d.as_secs());
        let max = self.max_window.map(|d| d.as_secs());
        let over_retention = retention.filter(|&r| secs > r);
        let over_max = max.filter(|&m| secs > m);
        match (over_retention, over_max) {
            (None, None) => None,
            (Some(r), None) => Some(format!(
                "is {secs} s, longer than the window store's retention of {r} s; shorten the \
                 window or raise the retention (`window.retention` of the engine config, \
                 `WindowConfig::with_retention`)"
            )),
            (None, Some(m)) => Some(format!(
                "is {secs} s, longer than the limit of {m} s set by `schema.max_window` \
                 (`SchemaLimits::with_max_window`){}; shorten the window or raise that limit",
                retention
                    .map(|r| format!(", below the window store's retention of {r} s"))
                    .unwrap_or_default()
            )),
            (Some(r), Some(m)) => Some(format!(
                "is {secs} s, longer than both the window store's retention of {r} s and the \
                 limit of {m} s set by `schema.max_window`; shorten the window, or raise both \
                 `window.retention` (`WindowConfig::with_retention`) and `schema.max_window` \
                 (`SchemaLimits::with_max_window`; or leave it unset to follow the retention)"
            )),
        }
    }
}

setters! {
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
        let mut w = Widget::new("w", "m", Aggregation::Count, 60)
            .with_id(Uuid::from_u128(id))
            .with_position(pos);
        w.dashboard_id = Some(DashboardId::new(dash).unwrap());
        w
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
            if let Some(dash) = &w.dashboard_id
                && *dash != d.id
            {
                out.push(SchemaViolation::new(
                    format!("{prefix}dashboard_id"),
                    format!("is `{dash}` but the widget is in dashboard `{}`", d.id),
                ));
            }
            w.check(limits, w.display.position, &prefix, &mut out);
            let p = w.display.position.unwrap();
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
            let pos = |o: &Widget| o.display.position.unwrap();
            if p.w > 0
                && p.h > 0
                && let Some(j) = d.widgets[..i]
                    .iter()
                    .position(|o| pos(o).w > 0 && pos(o).h > 0 && pos(o).overlaps(&p))
            {
                out.push(SchemaViolation::new(
                    format!("{prefix}display_config.position"),
                    format!(
                        "({p}) overlaps widgets[{j}] ({}); widgets may not share grid cells",
                        pos(&d.widgets[j])
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

    #[test]
    fn builders_fill_the_dashboard_id_and_place_widgets() {
        let id = DashboardId::new("ops").unwrap();
        let mut w = Widget::new("p99", "http.latency_ms", Aggregation::P99, 30)
            .with_filter("region", "eu")
            .with_group_by("host")
            .with_stale_after(Duration::from_secs(5))
            .with_refresh(Duration::from_millis(250))
            .with_chart(ChartType::Table)
            .with_unit("ms");
        // A widget naming another dashboard is moved to this one.
        w.dashboard_id = Some(DashboardId::new("other").unwrap());
        let d = Dashboard::new(id.clone(), "Ops")
            .with_columns(8)
            .with_widget(w)
            .with_widget(
                Widget::new("n", "http.requests", Aggregation::Count, 60)
                    .with_position(GridPos::new(0, 0, 2, 2)),
            );
        let w = &d.widgets[0];
        assert_eq!(w.dashboard_id.as_ref(), Some(&id));
        assert_eq!(w.tag_filter, TagFilter::new().with("region", "eu"));
        assert_eq!(
            (
                w.group_by.as_deref(),
                w.stale_after_seconds,
                w.refresh_interval_seconds
            ),
            (Some("host"), Some(5.0), 0.25)
        );
        assert_eq!(
            (w.display.chart, w.display.unit.as_deref()),
            (ChartType::Table, Some("ms"))
        );
        let limits = SchemaLimits::default();
        assert_eq!(d.violations(&limits), []);
        let mut placed = d.clone();
        placed.place_widgets(&limits);
        // 6 x 4 in an 8-column grid, beside the 2 x 2 widget.
        assert_eq!(
            placed.widgets[0].display.position,
            Some(GridPos::new(2, 0, 6, 4))
        );
        // A widget from JSON without a dashboard id gets one when placed.
        let mut bare = d.clone();
        bare.widgets[1].dashboard_id = None;
        bare.place_widgets(&limits);
        assert_eq!(bare.widgets[1].dashboard_id.as_ref(), Some(&id));
        // JSON: an unplaced widget omits its position and reads back the same.
        let json = d.to_json();
        assert!(!json.contains(r#""position":{"x":2"#), "{json}");
        assert_eq!(Dashboard::from_json(json.as_bytes()).unwrap(), d);
    }

    #[test]
    fn an_invalid_built_widget_is_reported_by_validate() {
        let d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops").with_widget(Widget::new(
            " ",
            "http requests",
            Aggregation::Count,
            0,
        ));
        let paths: Vec<String> = d
            .violations(&SchemaLimits::default())
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(
            paths,
            [
                "widgets[0].title",
                "widgets[0].metric_name",
                "widgets[0].window_seconds"
            ]
        );
    }

    #[test]
    fn auto_placed_widgets_past_the_rows_are_reported() {
        let limits = SchemaLimits::default().with_max_rows(4);
        let d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops")
            .with_columns(6)
            .with_widget(Widget::new("a", "m", Aggregation::Avg, 60))
            .with_widget(Widget::new("b", "m", Aggregation::Avg, 60));
        let v: Vec<String> = d
            .violations(&limits)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            v,
            [
                "widgets[1].display_config.position: reaches row 8, beyond the limit of 4 rows \
              (SchemaLimits::max_rows)"
            ]
        );
    }

    #[test]
    fn the_window_refusal_names_the_setting_to_raise() {
        let hour = Duration::from_secs(3600);
        let w = |secs| Widget::new("w", "m", Aggregation::Count, secs);
        let msg = |limits: &SchemaLimits, secs| match w(secs).validate(limits) {
            Err(CoreError::InvalidSchema { violations }) => violations[0].to_string(),
            other => panic!("{other:?}"),
        };
        // No retention known (rtdash-core alone) and no max_window: no limit.
        assert!(w(u32::MAX).validate(&SchemaLimits::default()).is_ok());
        let retention = SchemaLimits::default().with_retention(hour);
        assert!(w(3600).validate(&retention).is_ok());
        let m = msg(&retention, 7200);
        assert!(
            m.contains("retention of 3600 s")
                && m.contains("`window.retention`")
                && !m.contains("max_window"),
            "{m}"
        );
        // Raising the retention is enough.
        assert!(
            w(7200)
                .validate(&retention.clone().with_retention(3 * hour))
                .is_ok()
        );
        // A tighter max_window is named, with the retention it sits below.
        let tight = SchemaLimits::default()
            .with_retention(3 * hour)
            .with_max_window(hour);
        assert_eq!(tight.window_limit(), Some(hour));
        let m = msg(&tight, 7200);
        assert!(
            m.contains("`schema.max_window`") && m.contains("retention of 10800 s"),
            "{m}"
        );
        // Over both: both named.
        let m = msg(&tight, 4 * 3600);
        assert!(
            m.contains("`schema.max_window`") && m.contains("`window.retention`"),
            "{m}"
        );
    }

    proptest! {
        /// Validation checks a dashboard where `place_widgets` puts its widgets: placing
        /// changes no verdict, and a placed widget never overlaps another one.
        #[test]
        fn placing_changes_no_violation(
            (columns, ws) in layout(),
            auto in prop::collection::vec((any::<bool>(), 0usize..6), 0..30),
        ) {
            let charts = [
                ChartType::Stat, ChartType::Line, ChartType::Gauge,
                ChartType::Table, ChartType::Area, ChartType::Heatmap,
            ];
            let mut d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops");
            d.columns = columns;
            for (i, ((id, _, pos), (unplaced, chart))) in ws.into_iter().zip(auto).enumerate() {
                let mut w = widget(id + 10 * i as u128, "ops", pos).with_chart(charts[chart]);
                if unplaced {
                    w.display.position = None;
                }
                d.widgets.push(w);
            }
            let limits = SchemaLimits::default().with_max_rows(10).with_max_columns(12);
            let mut placed = d.clone();
            placed.place_widgets(&limits);
            prop_assert!(placed.widgets.iter().all(|w| w.display.position.is_some()));
            prop_assert_eq!(d.violations(&limits), placed.violations(&limits));
            prop_assert_eq!(d.violations(&limits), pairwise_violations(&placed, &limits));
            for (i, w) in placed.widgets.iter().enumerate() {
                if d.widgets[i].display.position.is_none() {
                    let p = w.display.position.unwrap();
                    let inside = p.y + p.h <= limits.max_rows;
                    let overlap = placed.widgets.iter().enumerate().any(|(j, o)| {
                        let q = o.display.position.unwrap();
                        j != i && q.w > 0 && q.h > 0 && q.overlaps(&p)
                    });
                    prop_assert!(!inside || !overlap, "{:?}", p);
                }
            }
        }

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
