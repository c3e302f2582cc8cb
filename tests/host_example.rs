//! `examples/host`: built and run as a user would, then driven from the outside — the host's
//! own routes, rtdash under `/rt` with token checks on reads, writes and streams, live
//! values from the host's producer, one `/metrics`, and a graceful stop on SIGTERM.
#![cfg(all(feature = "http", unix))]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;

struct Host {
    child: Child,
    base: String,
    /// Kept open so that the example's later lines do not hit a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Host {
    let mut child = Command::new(common::build_example("host", &["--features", "http"]))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start examples/host");
    let stdout = child.stdout.take().expect("stdout");
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the address line");
    let base = line
        .trim()
        .strip_prefix("host: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Host {
        child,
        base,
        _stdout: stdout,
    }
}

#[tokio::test]
async fn the_host_example_serves_its_routes_and_rtdash_under_rt() {
    let mut host = start();
    let base = host.base.clone();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    // The host's own route, with its own state.
    let home = get("/").await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert_eq!(home.text().await.unwrap(), "Example shop");

    // rtdash's reads need a viewer's token.
    assert_eq!(
        get("/rt/dashboards").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let listed: Value = get("/rt/dashboards?token=viewer-token")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["dashboards"][0]["id"], "shop");
    assert_eq!(
        listed["dashboards"][0]["widgets"].as_array().unwrap().len(),
        2
    );

    // Writes need the admin's bearer token.
    let doc = json!({"id": "other", "name": "Other", "widgets": []});
    let refused = http
        .post(format!("{base}/rt/dashboards"))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let created = http
        .post(format!("{base}/rt/dashboards"))
        .bearer_auth("admin-token")
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // A stream with a wrong token is refused; with the viewer's it gets live values from
    // the host's producer.
    let ws_base = base.replace("http://", "ws://");
    let (mut bad, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/rt/stream/shop?token=nope"))
            .await
            .unwrap();
    let refused_code = loop {
        match bad.next().await {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(refused_code, 4001);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/rt/stream/shop?token=viewer-token"))
            .await
            .unwrap();
    let update = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "update" {
                        break v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("no update within 10 s");
    assert_eq!(update["topic"], "shop");

    // The widget's value read from Rust by the host's route: orders counted so far.
    let orders: f64 = get("/orders")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(orders >= 1.0, "{orders}");

    // One /metrics: the host's counter and rtdash's, from the host's exporter.
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("host_orders_total"), "{metrics}");
    assert!(metrics.contains("rtdash_ingest_events_total"), "{metrics}");

    // SIGTERM: the stream is closed with 1001 and the process exits 0.
    let pid = host.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => break Some(u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => break None,
            }
        }
    })
    .await
    .expect("stream not closed within 10 s");
    assert_eq!(code, Some(1001));
    let status = tokio::task::spawn_blocking(move || {
        let status = host.child.wait();
        (status, host)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(status.success(), "{status}");
}
