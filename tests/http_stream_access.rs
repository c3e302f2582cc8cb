//! The streams of the HTTP router refuse what the reads refuse (issue #11, hole 0): no
//! 404 before authentication (ids cannot be probed), a dashboard the principal may not see
//! is closed with 4003 before any data, an unknown one with 4004 after authentication, and
//! clients cannot make the hub hold topics of their own naming.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use common::serve_app;
use futures::{SinkExt, StreamExt};
use rtdash::transport::{Principal, StaticTokens, TopicAccess};
use rtdash::{Engine, TransportConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> (Engine, String) {
    let engine = common::engine_with_dashboards(&["ops", "billing"]);
    let tokens = StaticTokens::new()
        .with_token(
            "ops-reader",
            Principal::new("ops-reader", TopicAccess::topics(["ops"])),
        )
        .with_token("all-reader", Principal::new("all", TopicAccess::all()));
    let app = rtdash::http::router(engine.clone(), tokens, TransportConfig::default());
    let base = serve_app(app).await;
    (engine, base.replace("http://", "ws://"))
}

type Ws = common::Ws;

async fn connect(url: &str) -> Ws {
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(resp.status(), 101, "{url}");
    ws
}

/// The frames before the close, and the close code.
async fn until_close(ws: &mut Ws) -> (Vec<Value>, u16) {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for close")
        {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(Some(f)))) => return (frames, u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn refused_streams_close_before_any_data_and_ids_cannot_be_probed() {
    let (_engine, base) = start().await;
    for (path, code) in [
        // A wrong token: 4001 whether the dashboard exists or not (no 404 first).
        ("/stream/ops?token=wrong", 4001),
        ("/stream/no-such-dashboard?token=wrong", 4001),
        // A token for another dashboard: 4003, known or not.
        ("/stream/billing?token=ops-reader", 4003),
        ("/stream/no-such-dashboard?token=ops-reader", 4003),
        // A token that may see it: now it may learn that it does not exist.
        ("/stream/no-such-dashboard?token=all-reader", 4004),
    ] {
        let mut ws = connect(&format!("{base}{path}")).await;
        let (frames, got) = until_close(&mut ws).await;
        assert_eq!(got, code, "{path}");
        assert!(
            frames.is_empty(),
            "{path}: no welcome or data before: {frames:?}"
        );
    }
    // The same with the token in `hello`.
    let mut ws = connect(&format!("{base}/stream/billing")).await;
    ws.send(Message::text(
        json!({"type": "hello", "token": "ops-reader"}).to_string(),
    ))
    .await
    .unwrap();
    let (frames, got) = until_close(&mut ws).await;
    assert_eq!(got, 4003);
    assert!(frames.is_empty(), "{frames:?}");
    // And the allowed one streams.
    let mut ws = connect(&format!("{base}/stream/ops?token=ops-reader")).await;
    let first: Value = match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(first["type"], "welcome");
}

#[tokio::test]
async fn subscribing_names_that_are_not_dashboards_holds_nothing() {
    let (engine, base) = start().await;
    let before = engine.hub().stats().topics;
    let mut ws = connect(&format!("{base}/stream/ops?token=all-reader")).await;
    let mut errors = 0;
    for round in 0..5 {
        let names: Vec<String> = (0..60).map(|i| format!("junk-{round}-{i}")).collect();
        ws.send(Message::text(
            json!({"type": "subscribe", "topics": names, "id": round}).to_string(),
        ))
        .await
        .unwrap();
        // One error frame per name, echoing the request id.
        while errors < (round + 1) * 60 {
            let msg = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
            let Some(Ok(Message::Text(t))) = msg else {
                panic!("{msg:?}")
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "error" {
                assert_eq!(v["code"], "unknown_topic", "{v}");
                assert_eq!(v["id"], round);
                errors += 1;
            }
        }
    }
    // The dashboard's own topic may be new; no junk name is held.
    let during = engine.hub().stats().topics;
    assert!(during <= before + 1, "{before} → {during}");
}

#[tokio::test]
async fn sse_refuses_an_unknown_dashboard_after_authentication() {
    let (_engine, base) = start().await;
    let http = base.replace("ws://", "http://");
    let client = reqwest::Client::new();
    let body = |path: &str| {
        let req = client.get(format!("{http}{path}"));
        async move {
            let resp = tokio::time::timeout(WAIT, req.send())
                .await
                .unwrap()
                .unwrap();
            let status = resp.status();
            let text = tokio::time::timeout(WAIT, resp.text())
                .await
                .unwrap()
                .unwrap();
            (status, text)
        }
    };
    let (status, text) = body("/sse/no-such-dashboard?token=all-reader").await;
    assert_eq!(status, 200);
    assert!(text.contains("unknown_topic"), "{text}");
    let (_, text) = body("/sse/no-such-dashboard?token=ops-reader").await;
    assert!(
        text.contains("forbidden") && !text.contains("unknown_topic"),
        "{text}"
    );
}

#[tokio::test]
async fn a_path_id_cannot_smuggle_more_topics() {
    let (_engine, base) = start().await;
    // `ops,billing` or `ops&topics=billing` (percent-encoded in the path) would have named
    // a second dashboard once written into the query; they are not dashboard ids: 400.
    for path in [
        "/stream/ops%2Cbilling?token=all-reader",
        "/stream/ops%26topics%3Dbilling?token=all-reader",
        "/stream/%F1%AE%9D%8B?token=all-reader",
    ] {
        match tokio_tungstenite::connect_async(format!("{base}{path}")).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 400, "{path}");
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(
                    body["error"]["code"].as_str(),
                    Some("bad_request"),
                    "{path}: {body}"
                );
                assert!(body.get("type").is_none(), "{path}: {body}");
            }
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
    }
}

/// Issue #12 point 11: the streams' refusals before they start answer the API's error
/// shape `{"error": {"code", "message"}}` (with the protocol's codes), not the
/// protocol's `error` frame.
#[tokio::test]
async fn stream_refusals_are_the_api_error_shape() {
    let (_engine, base) = start().await;
    let http = base.replace("ws://", "http://");
    let client = reqwest::Client::new();
    for (path, status, code) in [
        ("/sse/ops", 401, "auth_failed"),
        ("/sse/ops?token=nope", 401, "auth_failed"),
        ("/sse/billing?token=ops-reader", 403, "forbidden"),
        ("/sse/ops%2Cbilling?token=all-reader", 400, "bad_request"),
        ("/sse/ops?token=all-reader&topics=%01", 400, "bad_request"),
        // A plain GET of the WebSocket route is not an upgrade.
        ("/stream/ops?token=all-reader", 400, "bad_request"),
    ] {
        let resp = tokio::time::timeout(WAIT, client.get(format!("{http}{path}")).send())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
        assert!(body.get("type").is_none(), "{path}: {body}");
    }
}
