//! rtdash-fanout benchmarks: the hub beside `tokio::sync::broadcast` (one shared
//! ring, no per-subscriber policy) in the same groups.
//!
//! Run with: `cargo bench --bench fanout` (about 1 min after the build). Groups:
//! - `fanout_publish_drain/{1,100,10000}`: publish one message to N subscribers, then
//!   every subscriber takes it with `try_recv`; throughput is deliveries.
//! - `fanout_publish_only/10000`: the publish call alone (queues drained untimed).
//! - then a publish→receive latency histogram with 10,000 async receivers on a
//!   tokio runtime, printed as p50/p99/p99.9/max for both (skipped when a filter
//!   that does not match `latency` is given).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use hdrhistogram::Histogram;
use rtdash_fanout::{Event, Hub, HubConfig, SlowConsumerPolicy, Subscription};
use tokio::sync::{Notify, broadcast};

const SIZES: [usize; 3] = [1, 100, 10_000];

fn payload() -> Bytes {
    Bytes::from(vec![b'x'; 64])
}

type BenchHub = Hub<u32, u32, Bytes>;

fn our_subscribers(
    hub: &BenchHub,
    n: usize,
    policy: SlowConsumerPolicy,
) -> Vec<Subscription<u32, u32, Bytes>> {
    (0..n)
        .map(|_| {
            let s = hub.subscribe(policy);
            s.subscribe(1).unwrap_or_else(|e| panic!("subscribe: {e}"));
            // The (empty) snapshot.
            let _ = s.try_recv();
            s
        })
        .collect()
}

fn publish_drain(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_publish_drain");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    let msg = payload();
    for &n in &SIZES {
        group.throughput(Throughput::Elements(n as u64));

        let (tx, _) = broadcast::channel::<Bytes>(16);
        let mut rxs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
        group.bench_with_input(BenchmarkId::new("tokio_broadcast", n), &n, |b, _| {
            b.iter(|| {
                tx.send(msg.clone()).unwrap_or_else(|_| panic!("send"));
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap_or_else(|e| panic!("{e}")));
                }
            });
        });
        drop(rxs);

        for (name, policy) in [
            ("hub_conflate", SlowConsumerPolicy::default()),
            (
                "hub_drop_oldest",
                SlowConsumerPolicy::drop_oldest(1024, 1 << 20).unwrap_or_else(|e| panic!("{e}")),
            ),
        ] {
            let hub = BenchHub::new(HubConfig::default());
            let subs = our_subscribers(&hub, n, policy);
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    hub.publish(&1, 0, msg.clone());
                    for s in &subs {
                        black_box(s.try_recv().unwrap_or_else(|e| panic!("{e}")));
                    }
                });
            });
        }
    }
    group.finish();
}

fn publish_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_publish_only");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    let msg = payload();
    let n = 10_000;
    group.throughput(Throughput::Elements(n as u64));

    let (tx, _) = broadcast::channel::<Bytes>(16);
    let mut rxs: Vec<_> = (0..n).map(|_| tx.subscribe()).collect();
    group.bench_with_input(BenchmarkId::new("tokio_broadcast", n), &n, |b, _| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                tx.send(msg.clone()).unwrap_or_else(|_| panic!("send"));
                total += t.elapsed();
                for rx in &mut rxs {
                    black_box(rx.try_recv().unwrap_or_else(|e| panic!("{e}")));
                }
            }
            total
        });
    });
    drop(rxs);

    let hub = BenchHub::new(HubConfig::default());
    let subs = our_subscribers(&hub, n, SlowConsumerPolicy::default());
    group.bench_with_input(BenchmarkId::new("hub_conflate", n), &n, |b, _| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                hub.publish(&1, 0, msg.clone());
                total += t.elapsed();
                for s in &subs {
                    black_box(s.try_recv().unwrap_or_else(|e| panic!("{e}")));
                }
            }
            total
        });
    });
    group.finish();
}

/// Shared state of one latency run: the publish instant of the current round
/// (ns since `origin`), each receiver's latency of the round, and a countdown.
struct Round {
    origin: Instant,
    started: AtomicU64,
    latencies: Vec<AtomicU64>,
    received: AtomicUsize,
    done: Notify,
}

impl Round {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            started: AtomicU64::new(0),
            latencies: (0..n).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            done: Notify::new(),
        })
    }

    fn record(&self, i: usize) {
        let now = self.origin.elapsed().as_nanos() as u64;
        let lat = now.saturating_sub(self.started.load(Ordering::Acquire));
        self.latencies[i].store(lat, Ordering::Relaxed);
        if self.received.fetch_add(1, Ordering::AcqRel) + 1 == self.latencies.len() {
            self.done.notify_one();
        }
    }

    fn start(&self) {
        self.received.store(0, Ordering::Release);
        self.started
            .store(self.origin.elapsed().as_nanos() as u64, Ordering::Release);
    }

    async fn finish(&self, hist: &mut Histogram<u64>) {
        self.done.notified().await;
        for l in &self.latencies {
            hist.saturating_record(l.load(Ordering::Relaxed).max(1));
        }
    }
}

fn print(name: &str, n: usize, rounds: usize, h: &Histogram<u64>, round_time: Duration) {
    let us = |v: u64| v as f64 / 1_000.0;
    println!(
        "latency/{name}/{n} subscribers, {rounds} rounds: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us; \
         mean time until all {n} received: {:.0} us",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        round_time.as_secs_f64() * 1e6 / rounds as f64,
    );
}

/// Publish → receive latency with `n` receivers, each its own tokio task
/// waiting in `recv`. One message per round; the next round starts once every
/// receiver got the previous one.
fn latency(n: usize, rounds: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let msg = payload();

    // tokio::sync::broadcast
    {
        let (tx, _) = broadcast::channel::<Bytes>(16);
        let round = Round::new(n);
        for i in 0..n {
            let mut rx = tx.subscribe();
            let round = Arc::clone(&round);
            rt.spawn(async move {
                while rx.recv().await.is_ok() {
                    round.record(i);
                }
            });
        }
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .unwrap_or_else(|e| panic!("{e}"));
        let elapsed = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            for _ in 0..rounds {
                round.start();
                tx.send(msg.clone()).unwrap_or_else(|_| panic!("send"));
                round.finish(&mut hist).await;
            }
            t.elapsed()
        });
        print("tokio_broadcast", n, rounds, &hist, elapsed);
    }

    // rtdash-fanout hub, Conflate policy
    {
        let hub = BenchHub::new(HubConfig::default());
        let round = Round::new(n);
        for i in 0..n {
            let sub = hub.subscribe(SlowConsumerPolicy::default());
            sub.subscribe(1)
                .unwrap_or_else(|e| panic!("subscribe: {e}"));
            let round = Arc::clone(&round);
            rt.spawn(async move {
                while let Some(ev) = sub.recv().await {
                    if let Event::Message { .. } = ev {
                        round.record(i);
                    }
                }
            });
        }
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .unwrap_or_else(|e| panic!("{e}"));
        let elapsed = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            for _ in 0..rounds {
                round.start();
                hub.publish(&1, 0, msg.clone());
                round.finish(&mut hist).await;
            }
            t.elapsed()
        });
        print("hub_conflate", n, rounds, &hist, elapsed);
        drop(hub);
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    publish_drain(&mut c);
    publish_only(&mut c);
    c.final_summary();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let filter = args.iter().find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"latency".contains(f.as_str())) {
        return;
    }
    if bench_mode {
        latency(10_000, 300);
    } else {
        // `cargo test --benches`: a smoke run.
        latency(100, 3);
    }
}
