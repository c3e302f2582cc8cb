//! Dashboard documents from untrusted bodies (`POST /dashboards`, files of a `FileStore`):
//! `rtdash::DashboardDoc::from_json` + `validate`, and `rtdash_core::Dashboard::from_json` +
//! `validate` (the core document without alert rules).
//!
//! Checks: no panic; `validate` agrees with `violations`; a document's own JSON parses back
//! to an equal document with the same violations; placing the widgets that have no position
//! (`place_widgets`) changes no violation; the violations of each widget on its own
//! (`Widget::validate`) do not contradict the dashboard's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtdash::DashboardDoc;
use std::time::Duration;

use rtdash_core::{Dashboard, SchemaLimits};

fuzz_target!(|data: &[u8]| {
    // Default limits, and small ones so that limits are reached with small inputs.
    let limits = [
        SchemaLimits::default(),
        SchemaLimits::default().with_retention(Duration::from_secs(3600)),
        SchemaLimits::default()
            .with_retention(Duration::from_secs(60))
            .with_max_widgets(3)
            .with_max_columns(4)
            .with_max_rows(4)
            .with_max_name_len(8)
            .with_max_label_len(4)
            .with_max_thresholds(2),
    ];
    if let Ok(doc) = DashboardDoc::from_json(data) {
        let json = doc.to_json();
        let back = DashboardDoc::from_json(json.as_bytes())
            .unwrap_or_else(|e| panic!("own JSON does not parse ({e}): {json}"));
        assert_eq!(back, doc, "round trip of {json}");
        for limits in &limits {
            let violations = doc.violations(limits);
            assert_eq!(violations.is_empty(), doc.validate(limits).is_ok());
            assert_eq!(back.violations(limits), violations);
            let mut placed = doc.clone();
            placed.place_widgets(limits);
            assert_eq!(placed.violations(limits), violations, "placing {json}");
        }
    }
    if let Ok(d) = Dashboard::from_json(data) {
        let json = d.to_json();
        let back = Dashboard::from_json(json.as_bytes())
            .unwrap_or_else(|e| panic!("own JSON does not parse ({e}): {json}"));
        assert_eq!(back, d, "round trip of {json}");
        for limits in &limits {
            let violations = d.violations(limits);
            assert_eq!(violations.is_empty(), d.validate(limits).is_ok());
            // A widget that breaks a rule of its own breaks the dashboard too.
            for (i, w) in d.widgets.iter().enumerate() {
                if w.validate(limits).is_err() {
                    let prefix = format!("widgets[{i}].");
                    assert!(
                        violations.iter().any(|v| v.path.starts_with(&prefix)),
                        "widgets[{i}] is invalid alone but not in the dashboard: {json}"
                    );
                }
            }
        }
    }
});
