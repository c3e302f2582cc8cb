//! Alert history (issue #17): every fire and resolve is recorded, kept in the dashboard
//! store (a `FileStore` survives a restart, a damaged line loses only itself), served over
//! REST with paging and filters that refuse bad values by name; the metric catalog and the
//! widget preview an editor uses.
#![cfg(feature = "http")]

mod common;

use common::{batch, dashboard, secs, serve_app, widget};
use reqwest::StatusCode;
use rtdash::{
    Aggregation, AlertHistoryQuery, AlertRule, AlertSeverity, AlertState, AllowAll, Engine,
    EngineConfig, FileStore, MetricsSink, TransportConfig,
};
use serde_json::{Value, json};

/// Dashboard `ops`: a `max cpu over 5 s` widget with a rule `above 80` named "CPU hot".
fn ops(engine: &Engine) -> (rtdash::Uuid, rtdash::Uuid) {
    let w = widget("ops", "cpu", Aggregation::Max, 5, 1.0, 0);
    let wid = w.widget_id;
    let rule = AlertRule::above(wid, 80.0)
        .with_name("CPU hot")
        .with_severity(AlertSeverity::Critical);
    let rid = rule.id;
    let mut doc = dashboard("ops", vec![w]);
    doc.alert_rules.push(rule);
    engine.dashboards().create(doc).unwrap();
    (wid, rid)
}

fn file_engine(dir: &std::path::Path) -> Engine {
    Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        FileStore::open(dir).unwrap(),
    )
    .unwrap()
}

/// Sends `cpu = value` at second `s` and ticks there.
fn at(engine: &Engine, s: i64, value: f64) {
    engine
        .ingest_json_at(&batch(&[("cpu", value, s * 1000)]), secs(s))
        .unwrap();
    engine.tick(secs(s));
}

#[test]
fn the_history_of_a_file_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rule;
    let first_id;
    {
        let engine = file_engine(dir.path());
        (_, rule) = ops(&engine);
        at(&engine, 0, 93.0); // fires
        at(&engine, 10, 20.0); // the 93 left the 5 s window: resolves
        at(&engine, 20, 95.0); // fires again, still open at the "crash"
        // The scheduler's upkeep saved what changed before the last tick; this saves the
        // rest, and then nothing is left to save.
        assert!(engine.save_alert_records().unwrap() >= 1);
        assert_eq!(engine.save_alert_records().unwrap(), 0);
        let page = engine
            .alert_history("ops", &AlertHistoryQuery::default())
            .unwrap();
        assert_eq!(page.records.len(), 2);
        first_id = page.records[1].id;
        // Dropped without a shutdown: only what was saved is on disk.
    }
    let engine = file_engine(dir.path());
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records.len(), 2, "{page:?}");
    let (open, ended) = (&page.records[0], &page.records[1]);
    assert_eq!(ended.id, first_id);
    assert_eq!(ended.rule_id, rule);
    assert_eq!(ended.rule_name.as_deref(), Some("CPU hot"));
    assert_eq!(ended.severity, AlertSeverity::Critical);
    assert_eq!((ended.value, ended.end_value), (Some(93.0), Some(20.0)));
    assert_eq!(ended.started_at, secs(0));
    assert_eq!(ended.ended_at, Some(secs(10)));
    assert_eq!(ended.duration_ms, Some(10_000));
    assert_eq!(open.state(), AlertState::Firing);
    assert_eq!(open.value, Some(95.0));

    // The restarted engine resolves the open record when the value comes back.
    at(&engine, 30, 10.0);
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records[0].id, open.id);
    assert_eq!(page.records[0].ended_at, Some(secs(30)));
    assert_eq!(page.records[0].duration_ms, Some(10_000));
    engine.save_alert_records().unwrap();
    drop(engine);

    // A damaged line (a write cut short) costs only itself.
    let path = dir.path().join("alert-history.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"id\": \"cut-sh");
    std::fs::write(&path, text).unwrap();
    let engine = file_engine(dir.path());
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records.len(), 2);
    assert!(page.records.iter().all(|r| r.ended_at.is_some()));
    // The dashboards themselves load as before (the history file is not one of them).
    assert!(engine.dashboards().contains("ops"));
}

#[test]
fn the_history_file_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        EngineConfig::default()
            .with_metrics(MetricsSink::Isolated)
            .with_alert_records(20),
        FileStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    ops(&engine);
    // 2,000 fires and resolves, saved every few: the file is compacted as it grows (it
    // would hold about 2,000 lines otherwise).
    for i in 0..2000 {
        at(&engine, i * 20, 99.0);
        at(&engine, i * 20 + 10, 1.0);
        if i % 3 == 0 {
            engine.save_alert_records().unwrap();
        }
    }
    engine.save_alert_records().unwrap();
    let lines = std::fs::read_to_string(dir.path().join("alert-history.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(lines <= 1024 + 40, "{lines} lines");
    let all = engine
        .alert_history(
            "ops",
            &AlertHistoryQuery {
                limit: 200,
                ..AlertHistoryQuery::default()
            },
        )
        .unwrap();
    assert_eq!(all.records.len(), 20);
    assert_eq!(all.records[0].started_at, secs(1999 * 20));
    drop(engine);
    let engine = Engine::new(
        EngineConfig::default().with_alert_records(20),
        FileStore::open(dir.path()).unwrap(),
    )
    .unwrap();
    let reloaded = engine
        .alert_history(
            "ops",
            &AlertHistoryQuery {
                limit: 200,
                ..AlertHistoryQuery::default()
            },
        )
        .unwrap();
    let ids = |p: &rtdash::AlertHistoryPage| p.records.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&reloaded), ids(&all));
}

#[test]
fn changing_a_rule_name_or_silence_keeps_it_firing_and_changing_its_threshold_resolves_it() {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        rtdash::MemoryStore::new(),
    )
    .unwrap();
    let (_, rule) = ops(&engine);
    at(&engine, 0, 93.0);
    let edit = |f: &dyn Fn(&mut AlertRule)| {
        let mut doc = (*engine.dashboards().get("ops").unwrap()).clone();
        f(&mut doc.alert_rules[0]);
        engine.dashboards().put(doc).unwrap();
    };
    edit(&|r| {
        r.name = Some("CPU very hot".into());
        r.silenced_until = Some(secs(3600));
    });
    at(&engine, 1, 94.0);
    assert_eq!(engine.firing_alerts().len(), 1);
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records.len(), 1, "no second record: {page:?}");
    edit(&|r| r.threshold = 99.0);
    at(&engine, 2, 94.0);
    let page = engine
        .alert_history("ops", &AlertHistoryQuery::default())
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].rule_id, rule);
    assert_eq!(page.records[0].ended_at, Some(secs(2)));
    assert!(
        page.records[0].message.ends_with("rule changed"),
        "{}",
        page.records[0].message
    );
    assert!(engine.firing_alerts().is_empty());
}

async fn serve(engine: &Engine) -> String {
    let app = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default());
    serve_app(app).await
}

#[tokio::test]
async fn rest_pages_filters_and_refuses_bad_parameters_by_name() {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        rtdash::MemoryStore::new(),
    )
    .unwrap();
    let (_, rule) = ops(&engine);
    for i in 0..7 {
        at(&engine, i * 20, 90.0 + f64::from(u8::try_from(i).unwrap()));
        if i < 6 {
            at(&engine, i * 20 + 10, 1.0);
        }
    }
    let base = serve(&engine).await;
    let client = reqwest::Client::new();
    let get = |q: &str| {
        let url = format!("{base}/dashboards/ops/alert-history{q}");
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    // Pages of 3, newest first, until `next` is null.
    let mut values = Vec::new();
    let mut q = "?limit=3".to_owned();
    loop {
        let (status, body) = get(&q).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let records = body["records"].as_array().unwrap();
        assert!(records.len() <= 3);
        values.extend(records.iter().map(|r| r["value"].as_f64().unwrap()));
        match body["next"].as_u64() {
            Some(n) => q = format!("?limit=3&before={n}"),
            None => break,
        }
    }
    assert_eq!(values, [96.0, 95.0, 94.0, 93.0, 92.0, 91.0, 90.0]);

    let (_, open) = get("?state=firing").await;
    let open = open["records"].as_array().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["value"], 96.0);
    assert_eq!(open[0]["ended_at"], Value::Null);
    assert_eq!(open[0]["severity"], "critical");
    let (_, window) = get(&format!(
        "?state=resolved&from={}&to={}",
        secs(45).as_millis(),
        secs(85).as_millis()
    ))
    .await;
    let window: Vec<_> = window["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect();
    assert_eq!(window, [94.0, 93.0, 92.0]);
    let (_, by_rule) = get(&format!("?rule={rule}&severity=critical&limit=200")).await;
    assert_eq!(by_rule["records"].as_array().unwrap().len(), 7);
    let (_, other) = get(&format!("?rule={}", rtdash::Uuid::new_v4())).await;
    assert_eq!(other["records"], json!([]));

    for (q, field) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=x", "limit"),
        ("?state=open", "state"),
        ("?severity=fatal", "severity"),
        ("?rule=nope", "rule"),
        ("?from=yesterday", "from"),
        ("?from=10&to=5", "from"),
        ("?before=-1", "before"),
    ] {
        let (status, body) = get(q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["error"]["code"], "invalid_alert_history_query", "{q}");
        assert_eq!(body["error"]["field"], field, "{q}");
    }
    let r = client
        .get(format!("{base}/dashboards/nope/alert-history"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_catalog_and_the_preview_serve_an_editor() {
    let engine = Engine::new(
        EngineConfig::default().with_metrics(MetricsSink::Isolated),
        rtdash::MemoryStore::new(),
    )
    .unwrap();
    let now = rtdash::Timestamp::now().as_millis();
    let events = json!([
        {"metric_name": "http.latency", "value": 10, "event_time": now - 500, "tags": {"region": "eu"}},
        {"metric_name": "http.latency", "value": 30, "event_time": now - 400, "tags": {"region": "us"}},
        {"metric_name": "cpu", "value": 0.5, "event_time": now - 300},
    ]);
    engine.ingest_json(events.to_string().as_bytes()).unwrap();
    let base = serve(&engine).await;
    let client = reqwest::Client::new();

    let catalog: Value = client
        .get(format!("{base}/catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["truncated"], false);
    assert_eq!(catalog["metrics"][0]["name"], "cpu");
    assert_eq!(catalog["metrics"][1]["name"], "http.latency");
    assert_eq!(catalog["metrics"][1]["series"], 2);
    assert_eq!(catalog["metrics"][1]["tags"]["region"], json!(["eu", "us"]));

    let preview = |body: String| {
        let client = client.clone();
        let url = format!("{base}/preview");
        async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let widget = json!({"title": "p latency", "metric_name": "http.latency", "aggregation": "max",
        "window_seconds": 60, "refresh_interval_seconds": 1,
        "display_config": {"chart": "stat"}});
    let (status, body) = preview(widget.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], 30.0);
    let mut eu = widget.clone();
    eu["tag_filter"] = json!({"region": "eu"});
    let (_, body) = preview(eu.to_string()).await;
    assert_eq!(body["value"], 10.0);

    // Bad widgets name the field; malformed bodies say where.
    let mut bad = widget.clone();
    bad["window_seconds"] = json!(0);
    let (status, body) = preview(bad.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["violations"][0]["path"], "window_seconds");
    let mut unknown = widget.clone();
    unknown["colour"] = json!("red");
    let (status, body) = preview(unknown.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let (status, body) = preview("[1]".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("wrong_shape"))
    );
    let (status, body) = preview("{\"title\": ".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
}
