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
//! Group `ingest_log_1000` (with `--features redis`): the same bodies through
//! `Engine::submit_json` into the durable log (Redis Streams, 8 partitions, on a
//! `redis-server` the bench starts with AOF on): `log_aof_always_x1` /
//! `log_aof_always_x4` (one batch at a time / 4 concurrently, `appendfsync always`),
//! `log_aof_everysec_x4` (Redis's default AOF policy), `log_aof_always_x4_recorded`
//! (end to end: an aggregator in the same process owns every partition, and an
//! iteration ends once its events are in the window store), beside `engine_ingest_json`
//! in memory in the same group.
//!
//! Run with: `cargo bench --bench ingest` (about 30 s after the build), and
//! `cargo bench --features redis --bench ingest -- ingest_log` for the log.

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

/// A 2-worker runtime, as the machine has 2 cores.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), MemoryStore::new()).expect("engine")
}

fn bench(c: &mut Criterion) {
    let bodies: Vec<Vec<u8>> = (0..CONCURRENT).map(body).collect();
    let rt = runtime();

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

/// Ingest through the durable log: `submit_json` resolves once Redis acknowledged the
/// batch's entries (one per partition the batch touches).
#[cfg(feature = "redis")]
fn bench_log(c: &mut Criterion) {
    use rtdash::redis::{Backplane, BackplaneConfig, LogConfig};
    use rtdash_redis::test_server::RedisServer;

    let bodies: Vec<Vec<u8>> = (0..CONCURRENT).map(body).collect();
    let rt = runtime();
    let always = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let everysec = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    // An appending node only (no partition owner in this process): what is measured is
    // the path to an acknowledged append.
    let log_engine = |url: String| {
        rt.block_on(async move {
            let backplane = Backplane::new(&url, BackplaneConfig::new("bench")).expect("backplane");
            let log = backplane
                .stream_log(LogConfig::default())
                .expect("stream log");
            Engine::builder(EngineConfig::default())
                .aggregate(false)
                .durable_log(log)
                .build()
                .expect("engine")
        })
    };
    let on_always = log_engine(always.url());
    let on_everysec = log_engine(everysec.url());
    let submit = |engine: &Engine, body: &[u8]| {
        let engine = engine.clone();
        let body = body.to_vec();
        async move {
            let r = engine.submit_json(&body).await.expect("append");
            assert_eq!(r.accepted, BATCH);
        }
    };
    let x4 = |engine: &Engine| {
        rt.block_on(async {
            let tasks: Vec<_> = bodies
                .iter()
                .map(|b| tokio::spawn(submit(engine, b)))
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
    };

    let mut g = c.benchmark_group("ingest_log_1000");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("log_aof_always_x1", |b| {
        b.iter(|| rt.block_on(submit(&on_always, &bodies[0])));
    });
    let local = engine();
    g.bench_function("engine_ingest_json", |b| {
        b.iter(|| {
            let r = local.ingest_json(black_box(&bodies[0])).expect("ingest");
            assert_eq!(r.accepted, BATCH);
        });
    });
    g.throughput(Throughput::Elements((BATCH * CONCURRENT) as u64));
    g.bench_function("log_aof_always_x4", |b| b.iter(|| x4(&on_always)));
    g.bench_function("log_aof_everysec_x4", |b| b.iter(|| x4(&on_everysec)));

    // End to end: an aggregator in this process owns every partition and records what
    // it reads back; an iteration ends once its 4,000 events are in the window store.
    let e2e_server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let aggregator = rt.block_on(async {
        let backplane = Backplane::new(&e2e_server.url(), BackplaneConfig::new("bench-agg"))
            .expect("backplane");
        let log = backplane
            .stream_log(LogConfig::default())
            .expect("stream log");
        let engine = Engine::builder(EngineConfig::default())
            .durable_log(log)
            .build()
            .expect("engine");
        while engine.owned_partitions().len() < 8 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        engine
    });
    g.bench_function("log_aof_always_x4_recorded", |b| {
        b.iter(|| {
            let target = aggregator.window_stats().accepted + (BATCH * CONCURRENT) as u64;
            x4(&aggregator);
            rt.block_on(async {
                while aggregator.window_stats().accepted < target {
                    tokio::task::yield_now().await;
                }
            });
        });
    });
    g.finish();
}

#[cfg(not(feature = "redis"))]
fn bench_log(_: &mut Criterion) {}

/// Series and events per series of the checkpoint group.
const CP_SERIES: usize = 10_000;
const CP_EVENTS_PER_SERIES: usize = 30;

/// The checkpoint group's events: `CP_SERIES` series of one metric, each with
/// `CP_EVENTS_PER_SERIES` events over the last 10 minutes, as JSON batches of 1,000.
fn checkpoint_bodies() -> Vec<Vec<u8>> {
    let now = Timestamp::now().as_millis();
    let mut events = Vec::with_capacity(CP_SERIES * CP_EVENTS_PER_SERIES);
    for k in 0..CP_EVENTS_PER_SERIES {
        for host in 0..CP_SERIES {
            let t = now - 600_000 + (k * 20_000 + host % 20_000) as i64;
            let value = ((host * 31 + k * 7919) % 10_000) as f64 / 13.0;
            events.push(format!(
                r#"{{"metric_name":"api.latency","value":{value},"tags":{{"host":"host-{host:05}"}},"event_time":{t}}}"#
            ));
        }
    }
    events
        .chunks(BATCH)
        .map(|c| format!("[{}]", c.join(",")).into_bytes())
        .collect()
}

/// A partition's checkpoint with 10,000 series (percentiles on, default 1 h windows):
/// taking it (`Engine::checkpoint` + JSON), restoring it into a fresh engine, and, as
/// the baseline, what a node without a checkpoint does: replay every event.
fn bench_checkpoint(c: &mut Criterion) {
    let bodies = checkpoint_bodies();
    let source = engine();
    for b in &bodies {
        source.ingest_json(b).expect("ingest");
    }
    assert_eq!(source.window_stats().series, CP_SERIES);
    let json = source.checkpoint().to_json();
    eprintln!(
        "checkpoint of {CP_SERIES} series, {} events: {} bytes ({:.1} MiB)",
        CP_SERIES * CP_EVENTS_PER_SERIES,
        json.len(),
        json.len() as f64 / (1024.0 * 1024.0)
    );

    let mut g = c.benchmark_group("checkpoint_10k_series");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("take_to_json", |b| {
        b.iter(|| black_box(source.checkpoint().to_json()));
    });
    g.bench_function("restore_from_json", |b| {
        b.iter(|| {
            let fresh = engine();
            let cp = rtdash::EngineCheckpoint::from_json(black_box(&json)).expect("parse");
            fresh.restore(cp).expect("restore");
            black_box(fresh)
        });
    });
    g.bench_function("replay_events_baseline", |b| {
        b.iter(|| {
            let fresh = engine();
            for body in &bodies {
                fresh.ingest_json(body).expect("ingest");
            }
            black_box(fresh)
        });
    });
    #[cfg(feature = "redis")]
    {
        // The write itself: one `SET` of the bytes (the CHECKPOINT script does an `HSET`
        // of them, a compare and an `XTRIM`) to a redis-server with AOF on.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = rtdash_redis::test_server::RedisServer::start_with(&[
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]);
        let client = redis::Client::open(server.url()).expect("client");
        let mut conn = rt
            .block_on(client.get_multiplexed_async_connection())
            .expect("connect");
        g.bench_function("write_to_redis", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let () = redis::cmd("SET")
                        .arg("ckpt")
                        .arg(&json[..])
                        .query_async(&mut conn)
                        .await
                        .expect("SET");
                });
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_log, bench_checkpoint);
criterion_main!(benches);
