//! A slow dashboard store holds up nothing else: while dashboard changes wait in the
//! store's `put`, `GET /health` answers and WebSocket updates flow, on a current-thread
//! runtime and on a 2-worker one (with as many changes waiting as there are workers).
#![cfg(feature = "http")]

mod common;

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{dashboard, serve, widget};
use futures::StreamExt;
use reqwest::{Client, StatusCode};
use rtdash::{
    Aggregation, DashboardDoc, DashboardId, DashboardStore, Engine, EngineConfig, Error, Loaded,
    MemoryStore, Timestamp,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How long a held `put` waits at most for the test to let it go (a bound, so a broken
/// build fails instead of hanging).
const HOLD_AT_MOST: Duration = Duration::from_secs(10);
/// What "at once" means for a request or an update while the store is held.
const PROMPTLY: Duration = Duration::from_secs(3);

/// A [`MemoryStore`] whose `put` blocks its thread until the test lets it go.
#[derive(Clone, Default)]
struct SlowStore {
    inner: MemoryStore,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

#[derive(Default)]
struct Gate {
    waiting: usize,
    open: bool,
}

impl SlowStore {
    fn waiting(&self) -> usize {
        self.gate
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
    }

    fn open(&self) {
        let (lock, cv) = &*self.gate;
        lock.lock().unwrap_or_else(PoisonError::into_inner).open = true;
        cv.notify_all();
    }
}

impl DashboardStore for SlowStore {
    fn load_all(&self) -> Result<Loaded, Error> {
        self.inner.load_all()
    }

    fn put(&self, doc: &DashboardDoc) -> Result<(), Error> {
        let (lock, cv) = &*self.gate;
        let mut gate = lock.lock().unwrap_or_else(PoisonError::into_inner);
        gate.waiting += 1;
        let (mut gate, _) = cv
            .wait_timeout_while(gate, HOLD_AT_MOST, |g| !g.open)
            .unwrap_or_else(PoisonError::into_inner);
        gate.waiting -= 1;
        drop(gate);
        self.inner.put(doc)
    }

    fn delete(&self, id: &DashboardId) -> Result<(), Error> {
        self.inner.delete(id)
    }
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame within 15 s")
            .expect("stream open")
            .expect("no error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Holds `writes` dashboard changes in the store, then checks that the API and the
/// stream go on.
async fn slow_writes_hold_up_nothing(writes: usize) {
    let w = widget("ops", "api.requests", Aggregation::Count, 60, 0.2, 0);
    let store = SlowStore {
        inner: MemoryStore::new().with_dashboard(dashboard("ops", vec![w])),
        ..SlowStore::default()
    };
    let engine = Engine::new(EngineConfig::default(), store.clone()).unwrap();
    let scheduler = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(std::future::pending()).await }
    });
    let base = serve(engine.clone()).await;
    let client = Client::new();

    let ws_url = format!("{}/stream/ops?token=demo", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");

    // The changes: the first waits in `put`, the others behind it for the registry.
    let changes: Vec<_> = (0..writes)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let body = json!({"id": format!("new{i}"), "name": "New"});
                let resp = client
                    .put(format!("{base}/dashboards/new{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                resp.status()
            })
        })
        .collect();
    let give_up = Instant::now() + PROMPTLY;
    while store.waiting() == 0 {
        assert!(Instant::now() < give_up, "no change reached the store");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the other changes reach the registry's lock.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let asked = Instant::now();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        asked.elapsed() < PROMPTLY,
        "GET /health took {:?} while the store was slow",
        asked.elapsed()
    );

    let now = Timestamp::now().as_millis();
    let events = json!([{"metric_name": "api.requests", "value": 1, "event_time": now}]);
    let resp = client
        .post(format!("{base}/ingest"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = Instant::now();
    let update = loop {
        let frame = next_json(&mut ws).await;
        if frame["type"] == "update" && frame["items"][0]["value"] == 1.0 {
            break frame;
        }
    };
    assert_eq!(update["topic"], "ops");
    assert!(
        sent.elapsed() < PROMPTLY,
        "the update took {:?} while the store was slow",
        sent.elapsed()
    );
    assert!(store.waiting() > 0, "the store was let go too early");
    assert!(changes.iter().all(|c| !c.is_finished()));

    store.open();
    for change in changes {
        assert_eq!(change.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(engine.dashboards().len(), 1 + writes);
    assert_eq!(store.inner.len(), 1 + writes);
    scheduler.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_store_holds_up_nothing_on_a_current_thread_runtime() {
    slow_writes_hold_up_nothing(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_holds_up_nothing_on_two_workers() {
    slow_writes_hold_up_nothing(2).await;
}
