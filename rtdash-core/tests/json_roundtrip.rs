//! JSON round trips: what is written is read back equal, bit for bit for floats.

use std::time::Duration;

use proptest::prelude::*;
use rtdash_core::{
    Aggregation, ChartType, Color, Dashboard, DashboardId, DisplayConfig, EventId, GridPos,
    MetricEvent, Percentile, SeriesKey, TagFilter, Threshold, Timestamp, ValidationLimits, Widget,
    decode_batch,
};
use uuid::Uuid;

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |v| v.is_finite())
}

prop_compose! {
    fn event()(
        metric_name in "[A-Za-z][A-Za-z0-9_.:-]{0,30}",
        value in finite(),
        tags in prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_.-]{0,10}", "\\PC{0,12}", 0..5),
        ms in any::<i64>(),
        id in prop::option::of("\\PC{1,20}"),
    ) -> MetricEvent {
        MetricEvent {
            metric_name,
            value,
            tags,
            event_time: Timestamp::from_millis(ms),
            id: id.map(|s| EventId::new(s).unwrap()),
        }
    }
}

fn aggregation() -> impl Strategy<Value = Aggregation> {
    prop_oneof![
        Just(Aggregation::Count),
        Just(Aggregation::Sum),
        Just(Aggregation::Avg),
        Just(Aggregation::Min),
        Just(Aggregation::Max),
        (1u32..=100_000_000)
            .prop_map(|m| Aggregation::Percentile(Percentile::from_millionths(m).unwrap())),
        Just(Aggregation::Percentile(Percentile::P999)),
    ]
}

fn color() -> impl Strategy<Value = Color> {
    any::<[u8; 3]>().prop_map(|[r, g, b]| Color::from_rgb(r, g, b))
}

prop_compose! {
    fn display()(
        chart in prop::sample::select(vec![
            ChartType::Line, ChartType::Area, ChartType::Gauge,
            ChartType::Stat, ChartType::Table, ChartType::Heatmap,
        ]),
        unit in prop::option::of("\\PC{0,8}"),
        x_axis_label in prop::option::of("\\PC{0,8}"),
        y_axis_label in prop::option::of("\\PC{0,8}"),
        thresholds in prop::collection::vec((finite(), color()), 0..4),
        color in prop::option::of(color()),
        min in prop::option::of(finite()),
        max in prop::option::of(finite()),
        pos in prop::option::of(any::<[u32; 4]>()),
    ) -> DisplayConfig {
        DisplayConfig {
            chart,
            unit,
            x_axis_label,
            y_axis_label,
            thresholds: thresholds.into_iter().map(|(value, color)| Threshold { value, color }).collect(),
            color,
            min,
            max,
            position: pos.map(|p| GridPos::new(p[0], p[1], p[2], p[3])),
        }
    }
}

prop_compose! {
    fn widget(dashboard: String)(
        id in any::<u128>(),
        title in "\\PC{0,20}",
        metric_name in "[a-z][a-z0-9_.]{0,12}",
        aggregation in aggregation(),
        window_seconds in any::<u32>(),
        refresh in finite(),
        filter in prop::collection::btree_map("[a-z]{1,4}", "\\PC{0,6}", 0..3),
        group_by in prop::option::of("[a-z]{1,6}"),
        stale_after_seconds in prop::option::of(finite()),
        display in display(),
        named in any::<bool>(),
    ) -> Widget {
        Widget {
            widget_id: Uuid::from_u128(id),
            dashboard_id: named.then(|| DashboardId::new(dashboard.clone()).unwrap()),
            title,
            metric_name,
            aggregation,
            window_seconds,
            refresh_interval_seconds: refresh,
            tag_filter: TagFilter::from(filter),
            group_by,
            stale_after_seconds,
            display,
        }
    }
}

fn dashboard() -> impl Strategy<Value = Dashboard> {
    (
        "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,15}",
        "\\PC{0,30}",
        any::<u32>(),
    )
        .prop_flat_map(|(id, name, columns)| {
            prop::collection::vec(widget(id.clone()), 0..4).prop_map(move |widgets| Dashboard {
                id: DashboardId::new(id.clone()).unwrap(),
                name: name.clone(),
                columns,
                widgets,
            })
        })
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

proptest! {
    #[test]
    fn event_round_trip(e in event()) {
        let json = serde_json::to_string(&e).unwrap();
        let back: MetricEvent = serde_json::from_str(&json).unwrap();
        prop_assert!(same_bits(back.value, e.value), "{} vs {}", back.value, e.value);
        prop_assert_eq!(back, e);
    }

    #[test]
    fn batch_round_trip(events in prop::collection::vec(event(), 0..20)) {
        let json = serde_json::to_vec(&events).unwrap();
        let limits = ValidationLimits::default()
            .with_max_future_skew(Duration::MAX)
            .with_max_tag_value_len(usize::MAX);
        let batch = decode_batch(&json, &limits, Timestamp::EPOCH).unwrap();
        prop_assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        prop_assert_eq!(batch.accepted, events);
    }

    #[test]
    fn dashboard_round_trip(d in dashboard()) {
        let json = d.to_json();
        let back = Dashboard::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(&back, &d);
        // Pretty-printed JSON reads back the same.
        let pretty = serde_json::to_string_pretty(&d).unwrap();
        prop_assert_eq!(Dashboard::from_json(pretty.as_bytes()).unwrap(), d);
    }

    #[test]
    fn aggregation_round_trip(a in aggregation()) {
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<Aggregation>(&json).unwrap(), a);
        prop_assert_eq!(a.to_string().parse::<Aggregation>().unwrap(), a);
    }

    #[test]
    fn timestamp_text_round_trip(ms in -62_135_596_800_000i64..253_402_300_800_000) {
        // Years 0001 to 9999: the RFC 3339 text reads back as the same instant.
        let t = Timestamp::from_millis(ms);
        prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn series_key_round_trip(e in event()) {
        let key = SeriesKey::of_event(&e).unwrap();
        let json = serde_json::to_string(&key).unwrap();
        prop_assert_eq!(serde_json::from_str::<SeriesKey>(&json).unwrap(), key);
    }
}

#[test]
fn documented_forms() {
    let e = MetricEvent::new(
        "api.latency",
        12.5,
        Timestamp::from_millis(1_700_000_000_000),
    )
    .with_tag("region", "eu")
    .with_id(EventId::new("p1:42").unwrap());
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"metric_name":"api.latency","value":12.5,"tags":{"region":"eu"},"event_time":1700000000000,"id":"p1:42"}"#
    );
    let bare = MetricEvent::new("m", 1.0, Timestamp::EPOCH);
    assert_eq!(
        serde_json::to_string(&bare).unwrap(),
        r#"{"metric_name":"m","value":1.0,"event_time":0}"#
    );

    let mut d = Dashboard::new(DashboardId::new("ops").unwrap(), "Ops");
    let display = DisplayConfig::new(ChartType::Gauge)
        .with_threshold(90.0, Color::from_rgb(255, 0, 0))
        .with_range(0.0, 100.0)
        .with_position(GridPos::new(0, 0, 3, 2));
    d = d.with_widget(
        Widget::new("CPU", "cpu", Aggregation::Percentile(Percentile::P99), 60)
            .with_id(Uuid::from_u128(1))
            .with_refresh(std::time::Duration::from_millis(500))
            .with_display(display),
    );
    assert_eq!(
        d.to_json(),
        concat!(
            r#"{"id":"ops","name":"Ops","columns":12,"widgets":[{"widget_id":"00000000-0000-0000-0000-000000000001","#,
            r#""dashboard_id":"ops","title":"CPU","metric_name":"cpu","aggregation":"p99","window_seconds":60,"#,
            r##""refresh_interval_seconds":0.5,"display_config":{"chart":"gauge","thresholds":[{"value":90.0,"color":"#ff0000"}],"##,
            r#""min":0.0,"max":100.0,"position":{"x":0,"y":0,"w":3,"h":2}}}]}"#
        )
    );
    // `display` is accepted as an alias of `display_config` on input.
    let alias = d.to_json().replace("display_config", "display");
    assert_eq!(Dashboard::from_json(alias.as_bytes()).unwrap(), d);

    // `stale_after_seconds` is omitted when unset and written when set.
    d.widgets[0].stale_after_seconds = Some(5.0);
    let json = d.to_json();
    assert!(
        json.contains(
            r#""refresh_interval_seconds":0.5,"stale_after_seconds":5.0,"display_config""#
        ),
        "{json}"
    );
    assert_eq!(Dashboard::from_json(json.as_bytes()).unwrap(), d);

    // A widget without a dashboard id or a position omits them (and reads back so).
    d.widgets[0].dashboard_id = None;
    d.widgets[0].display.position = None;
    let json = d.to_json();
    assert!(
        !json.contains("dashboard_id") && !json.contains("position"),
        "{json}"
    );
    assert_eq!(Dashboard::from_json(json.as_bytes()).unwrap(), d);
}
