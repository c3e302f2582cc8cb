//! The file store: one JSON document per dashboard, written atomically; a crash mid-write
//! never leaves a half-written dashboard, and bad files are reported with their path.

mod common;

use std::fs;

use common::{dashboard, widget};
use rtdash::{Aggregation, DashboardStore, Engine, EngineConfig, FileStore};

#[test]
fn survives_a_crash_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    {
        let store = FileStore::open(dir.path()).unwrap();
        let engine = Engine::new(EngineConfig::default(), store).unwrap();
        engine
            .dashboards()
            .create(dashboard("ops", vec![w.clone()]))
            .unwrap();
    }
    // A crash during the next write leaves a truncated temporary file beside the document.
    let good = fs::read_to_string(dir.path().join("ops.json")).unwrap();
    let tmp = dir.path().join(".ops.json.4242-0.tmp");
    fs::write(&tmp, &good.as_bytes()[..good.len() / 2]).unwrap();
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);

    let store = FileStore::open(dir.path()).unwrap();
    let engine = Engine::new(EngineConfig::default(), store).unwrap();
    let doc = engine.dashboards().get("ops").unwrap();
    assert_eq!(doc.dashboard.widgets, vec![w], "the previous version loads");
    let problems = engine.dashboards().load_problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, tmp);
    assert!(problems[0].reason.contains("interrupted write"));
    assert!(!tmp.exists(), "the leftover is cleaned up");
}

#[test]
fn writes_replace_whole_documents() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let engine = Engine::new(EngineConfig::default(), store).unwrap();
    engine
        .dashboards()
        .create(dashboard("ops", vec![]))
        .unwrap();
    for i in 0..5 {
        let w = widget("ops", "req", Aggregation::Count, 60, 1.0, i);
        engine.dashboards().add_widget("ops", w).unwrap();
    }
    // Only the document remains: no temporary files.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["ops.json"]);
    let store = FileStore::open(dir.path()).unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.dashboards[0].dashboard.widgets.len(), 5);

    engine.dashboards().delete("ops").unwrap();
    assert!(!dir.path().join("ops.json").exists());
}

#[test]
fn corrupt_and_misnamed_files_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("broken.json"), b"{\"id\": \"broken\", \"na").unwrap();
    fs::write(
        dir.path().join("other.json"),
        br#"{"id": "ops", "name": "Operations"}"#,
    )
    .unwrap();
    fs::write(
        dir.path().join("fine.json"),
        br#"{"id": "fine", "name": "Fine"}"#,
    )
    .unwrap();
    fs::write(dir.path().join("README.txt"), b"not a dashboard").unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let engine = Engine::new(EngineConfig::default(), store).unwrap();
    let ids: Vec<_> = engine
        .dashboards()
        .list()
        .iter()
        .map(|d| d.id().to_owned())
        .collect();
    assert_eq!(ids, ["fine"]);
    let problems = engine.dashboards().load_problems();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].path, dir.path().join("broken.json"));
    assert!(
        problems[0].reason.contains("malformed JSON"),
        "{}",
        problems[0]
    );
    assert_eq!(problems[1].path, dir.path().join("other.json"));
    assert!(problems[1].reason.contains("rename"), "{}", problems[1]);
}

#[test]
fn a_failed_write_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("d")).unwrap();
    let engine = Engine::new(EngineConfig::default(), store).unwrap();
    engine
        .dashboards()
        .create(dashboard("ops", vec![]))
        .unwrap();
    // Make the directory disappear: the next write fails with the path in the error.
    fs::remove_dir_all(dir.path().join("d")).unwrap();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let e = engine.dashboards().add_widget("ops", w).unwrap_err();
    assert_eq!(e.code(), "store_failed");
    assert!(e.to_string().contains(".tmp"), "{e}");
    assert!(
        engine
            .dashboards()
            .get("ops")
            .unwrap()
            .dashboard
            .widgets
            .is_empty()
    );
}

#[test]
fn files_that_look_like_dashboards_but_cannot_be_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let doc = |id: &str| format!(r#"{{"id": "{id}", "name": "D"}}"#);
    // Dot-files (written by versions that accepted ids starting with `.`).
    fs::write(dir.path().join(".hidden.json"), doc(".hidden")).unwrap();
    fs::write(dir.path().join("...json"), doc("..")).unwrap();
    fs::write(dir.path().join("bad name.json"), doc("bad name")).unwrap();
    fs::write(dir.path().join("upper.JSON"), doc("upper")).unwrap();
    fs::create_dir(dir.path().join("folder.json")).unwrap();
    fs::write(dir.path().join("fine.json"), doc("fine")).unwrap();
    fs::write(dir.path().join("notes.txt"), b"not a dashboard").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
        fs::write(dir.path().join(name), doc("cafe")).unwrap();
    }

    let loaded = FileStore::open(dir.path()).unwrap().load_all().unwrap();
    let ids: Vec<&str> = loaded.dashboards.iter().map(|d| d.id()).collect();
    assert_eq!(ids, ["fine"]);
    let reported: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut want = vec![
        "...json",
        ".hidden.json",
        "bad name.json",
        "folder.json",
        "upper.JSON",
    ];
    if cfg!(unix) {
        want.insert(0, "caf\u{fffd}.json");
    }
    assert_eq!(reported, want, "{:?}", loaded.problems);
    let reason = |name: &str| {
        let p = loaded
            .problems
            .iter()
            .find(|p| p.path == dir.path().join(name))
            .unwrap();
        p.reason.clone()
    };
    assert!(
        reason(".hidden.json").contains("may not start with a dot"),
        "{}",
        reason(".hidden.json")
    );
    assert!(reason("bad name.json").contains("not allowed"));
    assert!(reason("upper.JSON").contains("lower-case"));
    assert!(reason("folder.json").contains("not a regular file"));
}
