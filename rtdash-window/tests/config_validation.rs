//! Every rule of `WindowConfig::validate`, each broken on purpose.

use std::time::Duration;

use rtdash_window::{Rollup, WindowConfig, WindowError, WindowStore};

fn field_of(config: WindowConfig) -> &'static str {
    match WindowStore::new(config.clone()) {
        Err(WindowError::InvalidConfig { field, reason }) => {
            assert!(!reason.is_empty());
            assert_eq!(
                config.validate(),
                Err(WindowError::InvalidConfig { field, reason })
            );
            field
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn default_is_valid() {
    assert_eq!(WindowConfig::default().validate(), Ok(()));
    assert_eq!(WindowConfig::default().with_rollup(None).validate(), Ok(()));
}

#[test]
fn bucket_width_rules() {
    let c = WindowConfig::default();
    assert_eq!(
        field_of(c.clone().with_bucket_width(Duration::ZERO)),
        "bucket_width"
    );
    assert_eq!(
        field_of(c.clone().with_bucket_width(Duration::from_micros(1500))),
        "bucket_width"
    );
    assert_eq!(field_of(c.with_bucket_width(Duration::MAX)), "bucket_width");
}

#[test]
fn retention_rules() {
    let c = WindowConfig::default();
    // Not a multiple of the bucket width.
    assert_eq!(
        field_of(c.clone().with_retention(MS(3_600_500))),
        "retention"
    );
    // Shorter than a bucket.
    assert_eq!(
        field_of(c.clone().with_rollup(None).with_retention(MS(500))),
        "retention"
    );
    // Not a multiple of the roll-up width.
    assert_eq!(
        field_of(c.clone().with_retention(MS(3_630_000))),
        "retention"
    );
    assert_eq!(
        field_of(c.with_retention(Duration::from_nanos(1))),
        "retention"
    );
}

#[test]
fn grace_rules() {
    let c = WindowConfig::default();
    assert_eq!(
        field_of(c.clone().with_grace(Duration::from_secs(3601))),
        "grace"
    );
    assert_eq!(
        field_of(c.clone().with_grace(Duration::from_nanos(10))),
        "grace"
    );
    assert_eq!(c.with_grace(Duration::ZERO).validate(), Ok(()));
}

#[test]
fn rollup_rules() {
    let c = WindowConfig::default();
    let r = |w: u64, f: u64| Some(Rollup::new(MS(w), MS(f)));
    // Width not a multiple of the bucket width, equal to it, or zero.
    assert_eq!(
        field_of(c.clone().with_rollup(r(1_500, 300_000))),
        "rollup.width"
    );
    assert_eq!(
        field_of(c.clone().with_rollup(r(1_000, 300_000))),
        "rollup.width"
    );
    assert_eq!(
        field_of(c.clone().with_rollup(r(0, 300_000))),
        "rollup.width"
    );
    // Fine span zero, not a multiple, or not shorter than the retention.
    assert_eq!(
        field_of(c.clone().with_rollup(r(60_000, 0))),
        "rollup.fine_span"
    );
    assert_eq!(
        field_of(c.clone().with_rollup(r(60_000, 1_500))),
        "rollup.fine_span"
    );
    assert_eq!(
        field_of(c.clone().with_rollup(r(60_000, 3_600_000))),
        "rollup.fine_span"
    );
    assert_eq!(c.with_rollup(r(2_000, 1_000)).validate(), Ok(()));
}

#[test]
fn precision_rules() {
    let c = WindowConfig::default();
    assert_eq!(
        field_of(c.clone().with_percentile_precision(0)),
        "percentile_precision"
    );
    assert_eq!(
        field_of(c.clone().with_percentile_precision(13)),
        "percentile_precision"
    );
    // Checked even when percentiles are off, so turning them on later cannot fail.
    assert_eq!(
        field_of(
            c.clone()
                .with_percentiles(false)
                .with_percentile_precision(200)
        ),
        "percentile_precision"
    );
    assert_eq!(c.clone().with_percentile_precision(1).validate(), Ok(()));
    assert_eq!(c.with_percentile_precision(12).validate(), Ok(()));
}

#[test]
fn max_series_rules() {
    let c = WindowConfig::default();
    assert_eq!(field_of(c.clone().with_max_series(0)), "max_series");
    if usize::BITS > 32 {
        assert_eq!(
            field_of(c.clone().with_max_series(usize::MAX)),
            "max_series"
        );
    }
    assert_eq!(c.with_max_series(1).validate(), Ok(()));
}

#[test]
fn too_many_buckets_per_series() {
    // 1 ms buckets over a day without roll-up: 86.4 M buckets per series.
    let c = WindowConfig::default()
        .with_rollup(None)
        .with_bucket_width(MS(1))
        .with_retention(Duration::from_secs(86_400));
    assert_eq!(field_of(c), "bucket_width");
}

#[test]
fn late_buffer_of_zero_is_valid() {
    assert_eq!(
        WindowConfig::default()
            .with_late_buffer_capacity(0)
            .validate(),
        Ok(())
    );
}

#[test]
fn messages_name_the_field_and_the_fix() {
    let err = WindowConfig::default()
        .with_retention(MS(3_600_500))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`retention`"), "{err}");
    assert!(err.contains("multiple of the bucket width"), "{err}");
}
