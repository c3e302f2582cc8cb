//! Ingest benchmark of the facade: JSON batches of 1,000 events.
//!
//! Group `ingest_1000`, every entry counting accepted events (throughput = events/s):
//!
//! - `http_loopback_x4`: a real server (the `rtdash::http` router on 127.0.0.1:0, in this
//!   process) and a keep-alive HTTP/1.1 client with 4 connections, each iteration posting
//!   4 batches of 1,000 events concurrently to `POST /ingest` (4,000 events);
//! - `http_loopback_x1`: the same, one batch at a time on one connection;
//! - `engine_ingest_json`: the same bodies through `Engine::ingest_json` in-process (no
//!   HTTP): the ceiling the HTTP path can reach;
//! - `naive_mutex_vec` (baseline): decode the batch with `serde_json` into events and push
//!   each into a `Mutex<Vec<_>>`, one lock per event — what a first attempt looks like,
//!   without validation or aggregation.
//!
//! Run with: `cargo bench --bench ingest` (about 30 s after the build).

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtdash::{
    AllowAll, Engine, EngineConfig, MemoryStore, MetricEvent, Timestamp, TransportConfig,
};

const BATCH: usize = 1_000;
const CONCURRENT: usize = 4;

/// `BATCH` events over 10 metrics × 20 hosts × 4 regions, event times within the last
/// second.
fn body(seed: usize) -> Vec<u8> {
    let now = Timestamp::now().as_millis();
    let regions = ["eu-west", "eu-central", "us-east", "ap-south"];
    let mut out = String::with_capacity(BATCH * 140);
    out.push('[');
    for i in 0..BATCH {
        if i > 0 {
            out.push(',');
        }
        let k = i + seed * BATCH;
        let metric = k % 10;
        let host = (k / 10) % 20;
        let region = regions[(k / 200) % 4];
        let value = ((k * 7919) % 10_000) as f64 / 37.0;
        let t = now - (k % 1000) as i64;
        out.push_str(&format!(
            r#"{{"metric_name":"api.metric{metric}","value":{value},"tags":{{"host":"host-{host:02}","region":"{region}"}},"event_time":{t}}}"#
        ));
    }
    out.push(']');
    out.into_bytes()
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), MemoryStore::new()).expect("engine")
}

fn bench(c: &mut Criterion) {
    let bodies: Vec<Vec<u8>> = (0..CONCURRENT).map(body).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // The server.
    let server_engine = engine();
    let base = rt.block_on(async {
        let app = rtdash::http::router(server_engine.clone(), AllowAll, TransportConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/ingest")
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENT)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let post = |body: Vec<u8>| {
        let client = client.clone();
        let url = base.clone();
        async move {
            let resp = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            assert!(resp.status().is_success(), "status {}", resp.status());
            let bytes = resp.bytes().await.expect("body");
            // `{"accepted":1000,...}`: check without a full parse.
            assert!(bytes.starts_with(b"{\"accepted\":1000,"), "{bytes:?}");
        }
    };
    // Check once that every event is accepted.
    rt.block_on(post(bodies[0].clone()));

    let mut g = c.benchmark_group("ingest_1000");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    g.throughput(Throughput::Elements((BATCH * CONCURRENT) as u64));
    g.bench_function("http_loopback_x4", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = bodies
                    .iter()
                    .map(|body| tokio::spawn(post(body.clone())))
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
            });
        });
    });

    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("http_loopback_x1", |b| {
        b.iter(|| rt.block_on(post(bodies[0].clone())));
    });

    let local = engine();
    g.bench_function("engine_ingest_json", |b| {
        b.iter(|| {
            let r = local.ingest_json(black_box(&bodies[0])).expect("ingest");
            assert_eq!(r.accepted, BATCH);
        });
    });

    let naive: Mutex<Vec<MetricEvent>> = Mutex::new(Vec::new());
    g.bench_function("naive_mutex_vec", |b| {
        b.iter(|| {
            let events: Vec<MetricEvent> =
                serde_json::from_slice(black_box(&bodies[0])).expect("decode");
            for e in events {
                let mut v = naive.lock().expect("lock");
                if v.len() >= 1_000_000 {
                    v.clear();
                }
                v.push(e);
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
