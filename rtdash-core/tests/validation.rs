//! Every validation rule of events and dashboards, each broken on purpose.

use std::time::Duration;

use rtdash_core::{
    Aggregation, ChartType, Color, CoreError, Dashboard, DashboardId, DisplayConfig, EventId,
    GridPos, MetricEvent, Percentile, SchemaLimits, TagFilter, Threshold, Timestamp,
    ValidationLimits, Widget,
};
use uuid::Uuid;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn event() -> MetricEvent {
    MetricEvent::new("api.request.latency", 12.5, NOW)
        .with_tag("region", "eu")
        .with_tag("host", "a")
}

fn event_error(e: &MetricEvent, limits: &ValidationLimits) -> (String, String) {
    match e.validate(limits, NOW) {
        Err(CoreError::InvalidEvent { field, reason }) => (field, reason),
        other => panic!("expected InvalidEvent, got {other:?}"),
    }
}

fn assert_event_err(e: &MetricEvent, field: &str, reason_contains: &str) {
    let (f, r) = event_error(e, &ValidationLimits::default());
    assert_eq!(f, field, "reason: {r}");
    assert!(
        r.contains(reason_contains),
        "{field}: {r:?} lacks {reason_contains:?}"
    );
}

#[test]
fn valid_event_passes() {
    assert_eq!(event().validate(&ValidationLimits::default(), NOW), Ok(()));
}

#[test]
fn metric_name_rules() {
    let mut e = event();
    e.metric_name = String::new();
    assert_event_err(&e, "metric_name", "is empty");

    e.metric_name = "a".repeat(201);
    assert_event_err(&e, "metric_name", "is 201 bytes, the limit is 200");
    e.metric_name = "a".repeat(200);
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());

    e.metric_name = "api latency".into();
    assert_event_err(&e, "metric_name", "character ' ' at byte 3 is not allowed");
    e.metric_name = "api/latency".into();
    assert_event_err(&e, "metric_name", "'/'");
    e.metric_name = "latenz_µs".into();
    assert_event_err(&e, "metric_name", "'µ'");
    e.metric_name = "1xx".into();
    assert_event_err(&e, "metric_name", "must start with a letter, found '1'");
    e.metric_name = "_private".into();
    assert_event_err(&e, "metric_name", "must start with a letter");
    e.metric_name = ".x".into();
    assert_event_err(&e, "metric_name", "must start with a letter");

    e.metric_name = "Api.request_latency:p-1".into();
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());

    let limits = ValidationLimits::default().with_max_metric_name_len(5);
    e.metric_name = "abcdef".into();
    let (f, r) = event_error(&e, &limits);
    assert_eq!(
        (f.as_str(), r.as_str()),
        ("metric_name", "is 6 bytes, the limit is 5")
    );
}

#[test]
fn value_must_be_finite() {
    for (v, text) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let mut e = event();
        e.value = v;
        let err = e.validate(&ValidationLimits::default(), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("value: {text} is not a finite number")
        );
    }
    let mut e = event();
    for v in [f64::MAX, f64::MIN, -0.0, f64::MIN_POSITIVE, 5e-324] {
        e.value = v;
        assert!(e.validate(&ValidationLimits::default(), NOW).is_ok(), "{v}");
    }
}

#[test]
fn tag_count_limit() {
    let mut e = event();
    for i in 0..31 {
        e.tags.insert(format!("k{i}"), "v".into());
    }
    assert_eq!(e.tags.len(), 33);
    assert_event_err(&e, "tags", "33 tags, the limit is 32");
    e.tags.remove("k0");
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());
    let (f, r) = event_error(&e, &ValidationLimits::default().with_max_tags(2));
    assert_eq!(f, "tags");
    assert!(r.starts_with("32 tags, the limit is 2"), "{r}");
}

#[test]
fn tag_key_rules() {
    let e = event().with_tag("", "x");
    assert_event_err(&e, "tags[\"\"]", "is empty");

    let e = event().with_tag("bad key", "x");
    assert_event_err(
        &e,
        "tags[\"bad key\"]",
        "character ' ' at byte 3 is not allowed",
    );
    let e = event().with_tag("a:b", "x");
    assert_event_err(&e, "tags[\"a:b\"]", "':'");
    let e = event().with_tag("9lives", "x");
    assert_event_err(&e, "tags[\"9lives\"]", "must start with a letter or `_`");

    let long = "k".repeat(129);
    let e = event().with_tag(long.clone(), "x");
    let (f, r) = event_error(&e, &ValidationLimits::default());
    assert!(f.starts_with("tags[\"kkkk"), "{f}");
    assert_eq!(r, "is 129 bytes, the limit is 128");

    let e = event()
        .with_tag("k".repeat(128), "x")
        .with_tag("_internal.v-2", "x");
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());

    let (_, r) = event_error(
        &event().with_tag("abcd", "x"),
        &ValidationLimits::default().with_max_tag_key_len(3),
    );
    assert_eq!(r, "is 4 bytes, the limit is 3");
}

#[test]
fn tag_value_length() {
    let e = event().with_tag("region", "x".repeat(300));
    let err = e.validate(&ValidationLimits::default(), NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"tags["region"]: value is 300 bytes, the limit is 256"#
    );

    let e = event()
        .with_tag("region", "x".repeat(256))
        .with_tag("empty", "");
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());

    let limits = ValidationLimits::default().with_max_tag_value_len(1);
    let (f, r) = event_error(&event(), &limits);
    assert_eq!(f, "tags[\"region\"]");
    assert_eq!(r, "value is 2 bytes, the limit is 1");
}

#[test]
fn event_time_future_skew() {
    let mut e = event();
    assert_eq!(
        ValidationLimits::default().max_future_skew,
        Duration::from_secs(30)
    );
    e.event_time = NOW.saturating_add(Duration::from_secs(30));
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());
    e.event_time = NOW.saturating_add(Duration::from_millis(30_001));
    assert_event_err(&e, "event_time", "is 30001 ms ahead of now");
    assert_event_err(&e, "event_time", "the limit (max_future_skew) is 30000 ms");
    // A clock 4 minutes fast was accepted under the old default of 5 minutes; not now.
    e.event_time = NOW.saturating_add(Duration::from_secs(240));
    assert_event_err(&e, "event_time", "is 240000 ms ahead of now");
    let limits = ValidationLimits::default().with_max_future_skew(Duration::from_secs(300));
    assert!(e.validate(&limits, NOW).is_ok());

    // Seconds sent where milliseconds are expected look like 1970: fine for the skew rule,
    // caught by max_age.
    let limits = ValidationLimits::default().with_max_age(Some(Duration::from_secs(86_400)));
    e.event_time = Timestamp::from_millis(1_700_000_000);
    let (f, r) = event_error(&e, &limits);
    assert_eq!(f, "event_time");
    assert!(r.contains("the limit (max_age) is 86400000 ms"), "{r}");

    // Microseconds sent where milliseconds are expected are far in the future.
    e.event_time = Timestamp::from_millis(1_700_000_000_000_000);
    assert_event_err(&e, "event_time", "check the producer's clock");

    let limits = ValidationLimits::default().with_max_future_skew(Duration::ZERO);
    e.event_time = NOW.saturating_add(Duration::from_millis(1));
    assert_eq!(event_error(&e, &limits).0, "event_time");
    e.event_time = NOW;
    assert!(e.validate(&limits, NOW).is_ok());
}

#[test]
fn event_time_max_age() {
    let limits = ValidationLimits::default().with_max_age(Some(Duration::from_secs(60)));
    let mut e = event();
    e.event_time = NOW.saturating_sub(Duration::from_secs(60));
    assert!(e.validate(&limits, NOW).is_ok());
    e.event_time = NOW.saturating_sub(Duration::from_millis(60_001));
    let (f, r) = event_error(&e, &limits);
    assert_eq!(f, "event_time");
    assert!(r.contains("is 60001 ms before now"), "{r}");
    // Without max_age any age is accepted.
    e.event_time = Timestamp::MIN;
    assert!(e.validate(&ValidationLimits::default(), NOW).is_ok());
}

#[test]
fn event_id_rules() {
    assert!(matches!(
        EventId::new(""),
        Err(CoreError::InvalidEventId { .. })
    ));
    let err = EventId::new("x".repeat(129)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid event id: the id is 129 bytes, the limit is 128"
    );
    assert!(EventId::new("x".repeat(128)).is_ok());
    let e = serde_json::from_str::<EventId>("\"\"").unwrap_err();
    assert!(e.to_string().contains("the id is empty"), "{e}");
}

#[test]
fn first_broken_rule_is_reported() {
    let mut e = event().with_tag("region", "x".repeat(300));
    e.metric_name = "bad name".into();
    e.value = f64::NAN;
    assert_eq!(
        event_error(&e, &ValidationLimits::default()).0,
        "metric_name"
    );
}

// ---------------------------------------------------------------- dashboards

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0b6e_2a36_52a4_4c49_9b8e_3f1d_1f0a_0000 + n)
}

fn widget(n: u128, x: u32) -> Widget {
    let display = DisplayConfig::new(ChartType::Line)
        .with_unit("ms")
        .with_threshold(100.0, Color::from_rgb(255, 170, 0))
        .with_threshold(250.0, Color::from_rgb(255, 0, 0))
        .with_position(GridPos::new(x, 0, 4, 3));
    let mut w = Widget::new(
        format!("Widget {n}"),
        "api.request.latency",
        Aggregation::Percentile(Percentile::P99),
        300,
    )
    .with_id(id(n))
    .with_filter("region", "eu")
    .with_group_by("host")
    .with_display(display);
    w.dashboard_id = Some(DashboardId::new("ops").unwrap());
    w
}

/// The position of a widget that has one.
fn pos(w: &mut Widget) -> &mut GridPos {
    w.display.position.as_mut().expect("placed")
}

fn dashboard() -> Dashboard {
    let mut d = Dashboard::new(DashboardId::new("ops").unwrap(), "Operations");
    d.widgets = vec![widget(1, 0), widget(2, 4), widget(3, 8)];
    d
}

fn violations(d: &Dashboard) -> Vec<(String, String)> {
    match d.validate(&SchemaLimits::default()) {
        Ok(()) => Vec::new(),
        Err(CoreError::InvalidSchema { violations }) => {
            assert!(!violations.is_empty());
            violations
                .into_iter()
                .map(|v| (v.path, v.message))
                .collect()
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Applies `change`, validates, and expects exactly one violation at `path` whose message
/// contains `contains`.
fn expect_one(change: impl FnOnce(&mut Dashboard), path: &str, contains: &str) {
    let mut d = dashboard();
    change(&mut d);
    let v = violations(&d);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].0, path, "{v:#?}");
    assert!(v[0].1.contains(contains), "{:?} lacks {contains:?}", v[0].1);
}

#[test]
fn valid_dashboard_passes() {
    assert_eq!(violations(&dashboard()), Vec::new());
    assert_eq!(dashboard().validate(&SchemaLimits::default()), Ok(()));
}

#[test]
fn dashboard_name_rules() {
    expect_one(|d| d.name = String::new(), "name", "is empty");
    expect_one(|d| d.name = "   ".into(), "name", "is empty");
    expect_one(
        |d| d.name = "n".repeat(201),
        "name",
        "is 201 bytes, the limit is 200",
    );
}

#[test]
fn columns_rules() {
    expect_one(
        |d| {
            d.columns = 0;
        },
        "columns",
        "is 0; the grid must have 1 to 48 columns",
    );
    expect_one(
        |d| {
            d.columns = 49;
        },
        "columns",
        "is 49",
    );
}

#[test]
fn too_many_widgets() {
    let mut d = dashboard();
    d.widgets = (0..101)
        .map(|i| {
            let mut w = widget(i, 0);
            w.display.position = Some(GridPos::new(0, u32::try_from(i).unwrap(), 1, 1));
            w
        })
        .collect();
    let v = violations(&d);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].0, "widgets");
    assert!(
        v[0].1.contains("has 101 widgets, the limit is 100"),
        "{}",
        v[0].1
    );
    let limits = SchemaLimits::default().with_max_widgets(200);
    assert!(d.validate(&limits).is_ok());
}

#[test]
fn widget_id_rules() {
    expect_one(
        |d| d.widgets[1].widget_id = Uuid::nil(),
        "widgets[1].widget_id",
        "nil UUID",
    );
    expect_one(
        |d| d.widgets[2].widget_id = d.widgets[0].widget_id,
        "widgets[2].widget_id",
        "is also the id of widgets[0]; widget ids must be unique",
    );
}

#[test]
fn dashboard_id_must_match() {
    expect_one(
        |d| d.widgets[0].dashboard_id = Some(DashboardId::new("other").unwrap()),
        "widgets[0].dashboard_id",
        "is `other` but the widget is in dashboard `ops`",
    );
}

#[test]
fn title_rules() {
    expect_one(
        |d| d.widgets[0].title = String::new(),
        "widgets[0].title",
        "is empty",
    );
    expect_one(
        |d| d.widgets[0].title = "t".repeat(201),
        "widgets[0].title",
        "limit is 200",
    );
}

#[test]
fn widget_metric_name_rule() {
    expect_one(
        |d| d.widgets[1].metric_name = "bad metric".into(),
        "widgets[1].metric_name",
        "not allowed",
    );
    expect_one(
        |d| d.widgets[1].metric_name = String::new(),
        "widgets[1].metric_name",
        "is empty",
    );
}

#[test]
fn window_rules() {
    expect_one(
        |d| d.widgets[2].window_seconds = 0,
        "widgets[2].window_seconds",
        "is 0; a window must be at least 1 second",
    );
    let hour = Duration::from_secs(3600);
    let retention = SchemaLimits::default().with_retention(hour);
    let mut d = dashboard();
    d.widgets[2].window_seconds = 3601;
    let err = d.validate(&retention).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid schema: widgets[2].window_seconds: is 3601 s, longer than the window store's \
         retention of 3600 s; shorten the window or raise the retention (`window.retention` \
         of the engine config, `WindowConfig::with_retention`)"
    );
    d.widgets[2].window_seconds = 3600;
    assert!(d.validate(&retention).is_ok());
    // The retention alone sets the limit: raising it admits longer windows.
    d.widgets[2].window_seconds = 7200;
    assert!(
        d.validate(&retention.clone().with_retention(2 * hour))
            .is_ok()
    );
    // A max_window below the retention is the limit then, and is named.
    let tight = retention.with_retention(2 * hour).with_max_window(hour);
    let err = d.validate(&tight).unwrap_err().to_string();
    assert!(
        err.contains("limit of 3600 s set by `schema.max_window`"),
        "{err}"
    );
}

#[test]
fn refresh_interval_rules() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        expect_one(
            |d| d.widgets[0].refresh_interval_seconds = bad,
            "widgets[0].refresh_interval_seconds",
            "it must be a positive number of seconds",
        );
    }
    expect_one(
        |d| d.widgets[0].refresh_interval_seconds = 0.05,
        "widgets[0].refresh_interval_seconds",
        "below the minimum of 0.1 s",
    );
    let mut d = dashboard();
    d.widgets[0].refresh_interval_seconds = 0.5;
    assert!(d.validate(&SchemaLimits::default()).is_ok());
    assert_eq!(
        d.widgets[0].refresh_interval(),
        Some(Duration::from_millis(500))
    );
    d.widgets[0].refresh_interval_seconds = f64::NAN;
    assert_eq!(d.widgets[0].refresh_interval(), None);
}

#[test]
fn stale_after_rules() {
    for bad in [0.0, -0.0, -5.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        expect_one(
            |d| d.widgets[1].stale_after_seconds = Some(bad),
            "widgets[1].stale_after_seconds",
            "it must be a positive number of seconds",
        );
    }
    for huge in [86_400.001, 1e9, f64::MAX] {
        expect_one(
            |d| d.widgets[1].stale_after_seconds = Some(huge),
            "widgets[1].stale_after_seconds",
            "longer than the limit of 86400 s (one day)",
        );
    }
    let mut d = dashboard();
    assert_eq!(d.widgets[1].stale_after(), None);
    for ok in [0.001, 2.5, 5.0, 86_400.0] {
        d.widgets[1].stale_after_seconds = Some(ok);
        assert!(d.validate(&SchemaLimits::default()).is_ok(), "{ok}");
    }
    d.widgets[1].stale_after_seconds = Some(2.5);
    assert_eq!(
        d.widgets[1].stale_after(),
        Some(Duration::from_millis(2500))
    );
    d.widgets[1].stale_after_seconds = Some(f64::NAN);
    assert_eq!(d.widgets[1].stale_after(), None);

    // From JSON: the path names the widget, and a single widget reports it unprefixed.
    let json = dashboard().to_json().replacen(
        r#""refresh_interval_seconds":1.0"#,
        r#""refresh_interval_seconds":1.0,"stale_after_seconds":-1"#,
        1,
    );
    let parsed = Dashboard::from_json(json.as_bytes()).unwrap();
    assert_eq!(parsed.widgets[0].stale_after_seconds, Some(-1.0));
    let v = violations(&parsed);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].0, "widgets[0].stale_after_seconds");
    let err = parsed.widgets[0]
        .validate(&SchemaLimits::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stale_after_seconds: is -1; it must be a positive number of seconds"),
        "{err}"
    );
}

#[test]
fn tag_filter_and_group_by_rules() {
    expect_one(
        |d| d.widgets[0].tag_filter = TagFilter::new().with("bad key", "x"),
        "widgets[0].tag_filter[\"bad key\"]",
        "key character ' '",
    );
    expect_one(
        |d| d.widgets[0].tag_filter = TagFilter::new().with("region", "x".repeat(257)),
        "widgets[0].tag_filter[\"region\"]",
        "value is 257 bytes, the limit is 256",
    );
    expect_one(
        |d| d.widgets[0].tag_filter = (0..33).map(|i| (format!("k{i}"), "v")).collect(),
        "widgets[0].tag_filter",
        "has 33 conditions, the limit is 32",
    );
    expect_one(
        |d| d.widgets[0].group_by = Some("1host".into()),
        "widgets[0].group_by",
        "must start with a letter or `_`",
    );
    expect_one(
        |d| d.widgets[0].group_by = Some(String::new()),
        "widgets[0].group_by",
        "is empty",
    );
}

#[test]
fn label_rules() {
    let long = "l".repeat(65);
    expect_one(
        |d| d.widgets[0].display.unit = Some(long.clone()),
        "widgets[0].display_config.unit",
        "is 65 bytes, the limit is 64",
    );
    expect_one(
        |d| d.widgets[0].display.x_axis_label = Some(long.clone()),
        "widgets[0].display_config.x_axis_label",
        "limit is 64",
    );
    expect_one(
        |d| d.widgets[0].display.y_axis_label = Some(long.clone()),
        "widgets[0].display_config.y_axis_label",
        "limit is 64",
    );
}

#[test]
fn threshold_rules() {
    expect_one(
        |d| d.widgets[1].display.thresholds[1].value = f64::NAN,
        "widgets[1].display_config.thresholds[1].value",
        "thresholds must be finite",
    );
    expect_one(
        |d| d.widgets[1].display.thresholds[0].value = f64::NEG_INFINITY,
        "widgets[1].display_config.thresholds[0].value",
        "thresholds must be finite",
    );
    expect_one(
        |d| d.widgets[1].display.thresholds.reverse(),
        "widgets[1].display_config.thresholds[1].value",
        "is 100, not above the previous threshold 250; list thresholds in strictly ascending order",
    );
    expect_one(
        |d| d.widgets[1].display.thresholds[1].value = 100.0,
        "widgets[1].display_config.thresholds[1].value",
        "strictly ascending",
    );
    expect_one(
        |d| {
            let t = d.widgets[1].display.thresholds[0];
            d.widgets[1].display.thresholds = (0..17)
                .map(|i| Threshold {
                    value: f64::from(i),
                    color: t.color,
                })
                .collect();
        },
        "widgets[1].display_config.thresholds",
        "has 17 entries, the limit is 16",
    );
}

#[test]
fn gauge_range_rules() {
    expect_one(
        |d| {
            d.widgets[0].display.chart = ChartType::Gauge;
            d.widgets[0].display.min = Some(10.0);
            d.widgets[0].display.max = Some(10.0);
        },
        "widgets[0].display_config.min",
        "is 10, not below max (10)",
    );
    expect_one(
        |d| d.widgets[0].display.max = Some(f64::INFINITY),
        "widgets[0].display_config.max",
        "is inf; it must be finite",
    );
    expect_one(
        |d| d.widgets[0].display.min = Some(f64::NAN),
        "widgets[0].display_config.min",
        "is NaN; it must be finite",
    );
}

#[test]
fn position_size_rules() {
    expect_one(
        |d| pos(&mut d.widgets[0]).w = 0,
        "widgets[0].display_config.position.w",
        "is 0; a widget is at least 1 column wide",
    );
    expect_one(
        |d| pos(&mut d.widgets[0]).h = 0,
        "widgets[0].display_config.position.h",
        "is 0; a widget is at least 1 row high",
    );
}

#[test]
fn position_inside_grid() {
    expect_one(
        |d| pos(&mut d.widgets[2]).x = 9,
        "widgets[2].display_config.position",
        "x + w = 13 exceeds the grid width of 12 columns",
    );
    expect_one(
        |d| d.widgets[2].display.position = Some(GridPos::new(u32::MAX, 0, u32::MAX, 1)),
        "widgets[2].display_config.position",
        "exceeds the grid width",
    );
    expect_one(
        |d| pos(&mut d.widgets[2]).y = 998,
        "widgets[2].display_config.position",
        "reaches row 1001, beyond the limit of 1000 rows",
    );
    let mut d = dashboard();
    d.columns = 24;
    pos(&mut d.widgets[2]).x = 20;
    assert!(d.validate(&SchemaLimits::default()).is_ok());
}

#[test]
fn overlapping_widgets() {
    expect_one(
        |d| d.widgets[2].display.position = Some(GridPos::new(3, 2, 2, 2)),
        "widgets[2].display_config.position",
        "(2x2 at column 3, row 2) overlaps widgets[0] (4x3 at column 0, row 0); widgets may not share grid cells",
    );
    // Touching edges do not overlap.
    let mut d = dashboard();
    d.widgets[2].display.position = Some(GridPos::new(0, 3, 12, 1));
    assert!(d.validate(&SchemaLimits::default()).is_ok());
}

#[test]
fn all_violations_are_listed_in_order() {
    let mut d = dashboard();
    d.name = String::new();
    d.widgets[0].window_seconds = 0;
    d.widgets[2].refresh_interval_seconds = 0.0;
    d.widgets[2].widget_id = d.widgets[1].widget_id;
    let v = violations(&d);
    let paths: Vec<&str> = v.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "widgets[0].window_seconds",
            "widgets[2].widget_id",
            "widgets[2].refresh_interval_seconds",
        ]
    );
    let text = d
        .validate(&SchemaLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("invalid schema (4 problems): name: is empty"),
        "{text}"
    );
}

#[test]
fn widget_validates_alone() {
    let mut w = widget(1, 0);
    assert!(w.validate(&SchemaLimits::default()).is_ok());
    w.window_seconds = 0;
    pos(&mut w).w = 0;
    let err = w.validate(&SchemaLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid schema (2 problems): window_seconds: is 0; a window must be at least 1 second; \
         display_config.position.w: is 0; a widget is at least 1 column wide"
    );
}

// Rules enforced by types are checked when the JSON is decoded.

fn widget_json(aggregation: &str, color: &str, dashboard_id: &str, chart: &str) -> String {
    format!(
        r#"{{"id": "ops", "name": "Ops", "widgets": [{{
            "widget_id": "0b6e2a36-52a4-4c49-9b8e-3f1d1f0a7c01", "dashboard_id": "{dashboard_id}",
            "title": "t", "metric_name": "m", "aggregation": "{aggregation}",
            "window_seconds": 60, "refresh_interval_seconds": 1,
            "display_config": {{"chart": "{chart}", "color": "{color}",
                                "position": {{"x": 0, "y": 0, "w": 1, "h": 1}}}}}}]}}"#
    )
}

fn decode_err(json: &str) -> String {
    match Dashboard::from_json(json.as_bytes()) {
        Err(CoreError::MalformedJson {
            line,
            column,
            message,
        }) => {
            assert!(line > 0 && column > 0);
            message
        }
        other => panic!("expected MalformedJson, got {other:?}"),
    }
}

#[test]
fn typed_rules_checked_on_decode() {
    let ok = widget_json("p99.9", "#FFaa00", "ops", "heatmap");
    let d = Dashboard::from_json(ok.as_bytes()).unwrap();
    assert!(d.validate(&SchemaLimits::default()).is_ok());

    for rank in ["p0", "p100.5", "p-5"] {
        let m = decode_err(&widget_json(rank, "#ffaa00", "ops", "line"));
        assert!(
            m.contains("must be a number in (0, 100]") || m.contains("unknown aggregation"),
            "{rank}: {m}"
        );
    }
    let m = decode_err(&widget_json("p0", "#ffaa00", "ops", "line"));
    assert!(m.contains("percentile rank 0 is not accepted"), "{m}");
    let m = decode_err(&widget_json("p99.9999999", "#ffaa00", "ops", "line"));
    assert!(m.contains("at most 6 decimal places"), "{m}");
    let m = decode_err(&widget_json("average", "#ffaa00", "ops", "line"));
    assert!(m.contains("unknown aggregation `average`"), "{m}");
    for color in ["red", "#fff", "#ggg000", "ffaa00", "#ffaa001"] {
        let m = decode_err(&widget_json("sum", color, "ops", "line"));
        assert!(m.contains(&format!("invalid colour `{color}`")), "{m}");
    }
    let m = decode_err(&widget_json("sum", "#ffaa00", "o p s", "line"));
    assert!(m.contains("invalid dashboard id `o p s`"), "{m}");
    let m = decode_err(&widget_json("sum", "#ffaa00", "", "line"));
    assert!(m.contains("the id is empty"), "{m}");
    let m = decode_err(&widget_json("sum", "#ffaa00", "ops", "pie"));
    assert!(m.contains("unknown variant `pie`"), "{m}");
}

#[test]
fn unknown_and_missing_fields_rejected_on_decode() {
    let m = decode_err(r#"{"id": "ops", "name": "x", "colums": 12}"#);
    assert!(m.contains("unknown field `colums`"), "{m}");
    let m = decode_err(r#"{"id": "ops"}"#);
    assert!(m.contains("missing field `name`"), "{m}");
    let m = decode_err(r#"{"id": "ops", "name": "x", "columns": -1}"#);
    assert!(m.contains("invalid value"), "{m}");
    let m =
        decode_err(&widget_json("sum", "#ffaa00", "ops", "line").replace("\"title\"", "\"titel\""));
    assert!(m.contains("unknown field `titel`"), "{m}");
    let m = decode_err(r#"{"id": "ops", "name": "x""#);
    assert!(m.contains("EOF"), "{m}");
}

#[test]
fn percentile_and_colour_constructors() {
    assert_eq!(
        Percentile::new(0.0).unwrap_err().to_string(),
        "percentile rank 0 is not accepted: it must be a number in (0, 100] with at most \
         6 decimal places, e.g. 50, 99, 99.9 or 99.999"
    );
    assert_eq!(
        Percentile::new(99.99999999).unwrap_err().to_string(),
        "percentile rank 99.99999999 is not accepted: it must be a number in (0, 100] with at \
         most 6 decimal places, e.g. 50, 99, 99.9 or 99.999"
    );
    assert!(Percentile::new(100.0).is_ok());
    assert!(Percentile::new(f64::NAN).is_err());
    assert!(matches!(
        "#12345".parse::<Color>(),
        Err(CoreError::InvalidColor { .. })
    ));
    assert!(matches!(
        "#12345é".parse::<Color>(),
        Err(CoreError::InvalidColor { .. })
    ));
    assert!(matches!(
        DashboardId::new("a".repeat(129)),
        Err(CoreError::InvalidDashboardId { .. })
    ));
}
