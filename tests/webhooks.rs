//! Webhook delivery (`rtdash::notify`) against real receivers: an axum server on port 0
//! whose answers the test switches (ok, a status, slow, held), and a port with nothing
//! listening. Retries, no retry of 4xx, the circuit breaker and its half-open trial,
//! isolation of endpoints, bad input and the bounds.
#![cfg(feature = "webhooks")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use rtdash::Error;
use rtdash::notify::{
    BreakerState, DeliveryOutcome, DeliveryReport, WebhookConfig, WebhookDelivery, WebhookNotifier,
};
use tokio::sync::{Semaphore, mpsc};

const WAIT: Duration = Duration::from_secs(10);

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Ok,
    Status(u16),
    /// Answers 200 after this long.
    Slow(Duration),
    /// Waits for a permit of the receiver's gate, then answers 200.
    Hold,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    key: Option<String>,
    content_type: Option<String>,
    user_agent: Option<String>,
    body: Bytes,
}

struct ReceiverState {
    mode: Mutex<Mode>,
    /// Statuses answered first, one per request, before `mode` applies.
    script: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Seen>>,
    arrivals: mpsc::UnboundedSender<Seen>,
    gate: Semaphore,
}

/// A webhook receiver on 127.0.0.1:0.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    arrivals: mpsc::UnboundedReceiver<Seen>,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState {
            mode: Mutex::new(mode),
            script: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
            arrivals: tx,
            gate: Semaphore::new(0),
        });
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            state,
            arrivals,
        }
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    fn requests(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn release(&self, n: usize) {
        self.state.gate.add_permits(n);
    }

    async fn next_arrival(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.arrivals.recv())
            .await
            .expect("no request reached the receiver")
            .expect("receiver gone")
    }
}

async fn handle(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("<not ascii>").to_owned())
    };
    let seen = Seen {
        key: header("idempotency-key"),
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        body,
    };
    state.seen.lock().unwrap().push(seen.clone());
    drop(state.arrivals.send(seen));
    if let Some(status) = state.script.lock().unwrap().pop_front() {
        return StatusCode::from_u16(status).unwrap();
    }
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::Ok => StatusCode::OK,
        Mode::Status(s) => StatusCode::from_u16(s).unwrap(),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
        Mode::Hold => {
            state.gate.acquire().await.unwrap().forget();
            StatusCode::OK
        }
    }
}

/// A URL of a port with nothing listening.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// A notifier whose reports go to the returned channel.
fn notifier(config: WebhookConfig) -> (WebhookNotifier, mpsc::UnboundedReceiver<DeliveryReport>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let n = WebhookNotifier::new(config, Arc::new(move |r| drop(tx.send(r)))).unwrap();
    (n, rx)
}

/// Short durations so that the suite is fast.
fn fast() -> WebhookConfig {
    WebhookConfig::default()
        .with_max_attempts(4)
        .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .with_attempt_timeout(Duration::from_millis(200))
        .with_breaker(100, Duration::from_millis(300))
}

async fn next(reports: &mut mpsc::UnboundedReceiver<DeliveryReport>) -> DeliveryReport {
    tokio::time::timeout(WAIT, reports.recv())
        .await
        .expect("no report in time")
        .expect("reports closed")
}

fn delivery(url: &str, tag: u64) -> WebhookDelivery {
    WebhookDelivery::new(url, format!(r#"{{"n":{tag}}}"#), format!("key-{tag}")).with_tag(tag)
}

#[tokio::test]
async fn delivered_with_the_headers_and_body() {
    let mut rx = Receiver::start(Mode::Ok).await;
    let (n, mut reports) = notifier(fast());
    n.send(delivery(&rx.url, 7));
    let r = next(&mut reports).await;
    assert_eq!(r.outcome, DeliveryOutcome::Delivered);
    assert_eq!(
        (r.tag, r.attempts, r.status, &r.error),
        (7, 1, Some(200), &None)
    );
    assert_eq!(r.url, rx.url);
    assert!(r.at_ms > 1_700_000_000_000, "{}", r.at_ms);
    let seen = rx.next_arrival().await;
    assert_eq!(seen.key.as_deref(), Some("key-7"));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        seen.user_agent.as_deref(),
        Some(concat!("rtdash/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(&seen.body[..], br#"{"n":7}"#);
    let stats = n.stats();
    assert_eq!((stats.delivered, stats.attempts, stats.queued), (1, 1, 0));
    assert_eq!(n.breaker(&rx.url), Some(BreakerState::Closed));
}

#[tokio::test]
async fn retried_until_the_receiver_recovers() {
    let rx = Receiver::start(Mode::Ok).await;
    // 500, 503, 429 then healthy: delivered on the fourth and last attempt.
    rx.script(&[500, 503, 429]);
    let (n, mut reports) = notifier(fast());
    n.send(delivery(&rx.url, 1));
    let r = next(&mut reports).await;
    assert_eq!(r.outcome, DeliveryOutcome::Delivered);
    assert_eq!((r.attempts, r.status, r.error), (4, Some(200), None));
    // Every attempt carried the same idempotency key and body.
    let seen = rx.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.key.as_deref() == Some("key-1")));
    assert!(seen.iter().all(|s| &s.body[..] == br#"{"n":1}"#));

    // A timeout (408) is retried too.
    rx.script(&[408]);
    n.send(delivery(&rx.url, 2));
    let r = next(&mut reports).await;
    assert_eq!((r.outcome, r.attempts), (DeliveryOutcome::Delivered, 2));
    assert_eq!(n.stats().attempts, 6);
}

#[tokio::test]
async fn server_errors_on_every_attempt_fail_with_the_last_status() {
    let rx = Receiver::start(Mode::Status(500)).await;
    let (n, mut reports) = notifier(fast());
    let started = Instant::now();
    n.send(delivery(&rx.url, 3));
    let r = next(&mut reports).await;
    assert_eq!(r.outcome, DeliveryOutcome::Failed);
    assert_eq!((r.attempts, r.status), (4, Some(500)));
    let error = r.error.unwrap();
    assert!(
        error.starts_with("HTTP 500 Internal Server Error"),
        "{error}"
    );
    assert_eq!(rx.requests(), 4);
    // Three backoff waits of at least 10, 20 and 40 ms (jitter keeps at least half).
    assert!(started.elapsed() >= Duration::from_millis(70));
    let stats = n.stats();
    assert_eq!((stats.failed, stats.attempts, stats.delivered), (1, 4, 0));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let rx = Receiver::start(Mode::Status(400)).await;
    let (n, mut reports) = notifier(fast());
    n.send(delivery(&rx.url, 1));
    let r = next(&mut reports).await;
    assert_eq!(r.outcome, DeliveryOutcome::Failed);
    assert_eq!((r.attempts, r.status), (1, Some(400)));
    assert_eq!(r.error.as_deref(), Some("HTTP 400 Bad Request"));
    rx.set(Mode::Status(404));
    n.send(delivery(&rx.url, 2));
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome, r.attempts, r.status),
        (DeliveryOutcome::Failed, 1, Some(404))
    );
    assert_eq!(rx.requests(), 2);
    // A refusal shows the receiver is up: the breaker stays closed.
    assert_eq!(n.breaker(&rx.url), Some(BreakerState::Closed));
}

#[tokio::test]
async fn breaker_opens_refuses_without_requests_then_a_trial_closes_it() {
    let rx = Receiver::start(Mode::Status(503)).await;
    // 3 attempts per delivery, 4 consecutive failures open the breaker.
    let config = fast()
        .with_max_attempts(3)
        .with_breaker(4, Duration::from_millis(300));
    let (n, mut reports) = notifier(config);

    n.send(delivery(&rx.url, 1));
    let r = next(&mut reports).await;
    assert_eq!((r.outcome, r.attempts), (DeliveryOutcome::Failed, 3));
    assert_eq!(n.breaker(&rx.url), Some(BreakerState::Closed));
    // The fourth failed attempt opens it: this delivery stops after one attempt.
    n.send(delivery(&rx.url, 2));
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome, r.attempts, r.status),
        (DeliveryOutcome::Failed, 1, Some(503))
    );
    assert!(r.error.unwrap().contains("circuit breaker opened"));
    let Some(BreakerState::Open { until }) = n.breaker(&rx.url) else {
        panic!("{:?}", n.breaker(&rx.url))
    };
    assert_eq!(rx.requests(), 4);

    // While open: refused at once, no request.
    rx.set(Mode::Ok);
    for tag in 3..6 {
        n.send(delivery(&rx.url, tag));
        let r = next(&mut reports).await;
        assert_eq!(
            (r.tag, r.outcome, r.attempts),
            (tag, DeliveryOutcome::BreakerOpen, 0)
        );
        assert!(r.error.unwrap().contains("circuit breaker open"));
    }
    assert_eq!(rx.requests(), 4);
    let stats = n.stats();
    assert_eq!((stats.breaker_rejected, stats.open_breakers), (3, 1));

    // After the cooldown, a failed trial opens it again for another cooldown.
    tokio::time::sleep_until(until.into()).await;
    assert_eq!(n.breaker(&rx.url), Some(BreakerState::HalfOpen));
    rx.script(&[500]);
    n.send(delivery(&rx.url, 6));
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome, r.attempts, r.status),
        (DeliveryOutcome::Failed, 1, Some(500))
    );
    let Some(BreakerState::Open { until: again }) = n.breaker(&rx.url) else {
        panic!("{:?}", n.breaker(&rx.url))
    };
    assert!(again > until);
    n.send(delivery(&rx.url, 7));
    assert_eq!(
        next(&mut reports).await.outcome,
        DeliveryOutcome::BreakerOpen
    );
    assert_eq!(rx.requests(), 5);

    // The next trial, to a healthy receiver, delivers and closes the breaker.
    tokio::time::sleep_until(again.into()).await;
    n.send(delivery(&rx.url, 8));
    let r = next(&mut reports).await;
    assert_eq!(
        (r.tag, r.outcome, r.attempts),
        (8, DeliveryOutcome::Delivered, 1)
    );
    assert_eq!(n.breaker(&rx.url), Some(BreakerState::Closed));
    n.send(delivery(&rx.url, 9));
    assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);
    assert_eq!(rx.requests(), 7);
    assert_eq!(n.stats().open_breakers, 0);
}

#[tokio::test]
async fn dead_and_slow_endpoints_do_not_delay_a_healthy_one() {
    let healthy = Receiver::start(Mode::Ok).await;
    // Answers long after the attempt timeout.
    let slow = Receiver::start(Mode::Slow(Duration::from_secs(3))).await;
    let dead = dead_url().await;
    let config = WebhookConfig::default()
        .with_max_attempts(5)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .with_attempt_timeout(Duration::from_millis(300))
        .with_breaker(100, Duration::from_secs(30));
    let (n, mut reports) = notifier(config);

    // Each of these takes seconds: 5 attempts, 4 waits of 50 ms to 800 ms.
    for tag in 0..3 {
        n.send(delivery(&slow.url, 100 + tag));
        n.send(delivery(&dead, 200 + tag));
    }
    let mut others = Vec::new();
    for tag in 0..10 {
        let sent = Instant::now();
        n.send(delivery(&healthy.url, tag));
        loop {
            let r = next(&mut reports).await;
            if r.url == healthy.url {
                assert_eq!((r.tag, r.outcome), (tag, DeliveryOutcome::Delivered));
                break;
            }
            others.push(r);
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "delivery {tag} took {:?}",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The others were still failing meanwhile.
    assert!(others.len() < 6, "{others:?}");
    assert!(n.stats().queued > 0);

    assert!(n.flush(Duration::from_secs(60)).await);
    while let Ok(r) = reports.try_recv() {
        others.push(r);
    }
    assert_eq!(others.len(), 6);
    for r in &others {
        assert_eq!(
            (r.outcome, r.attempts, r.status),
            (DeliveryOutcome::Failed, 5, None)
        );
        let error = r.error.as_deref().unwrap();
        if r.url == slow.url {
            assert!(error.contains("no answer within 300ms"), "{error}");
        } else {
            assert_eq!(r.url, dead);
            assert!(error.contains("error sending request"), "{error}");
        }
    }
    // Order is kept per endpoint.
    let tags = |url: &str| -> Vec<u64> {
        others
            .iter()
            .filter(|r| r.url == url)
            .map(|r| r.tag)
            .collect()
    };
    assert_eq!(tags(&slow.url), [100, 101, 102]);
    assert_eq!(tags(&dead), [200, 201, 202]);
    assert_eq!(healthy.requests(), 10);
}

#[tokio::test]
async fn bad_urls_and_keys_are_reported_at_once() {
    let (n, mut reports) = notifier(fast());
    n.send(delivery("ftp://example.com/hook", 1));
    n.send(delivery("not a url", 2));
    n.send(delivery("http://", 3));
    let mut d = delivery("http://127.0.0.1:9/hook", 4);
    d.idempotency_key = "line\nbreak".into();
    n.send(d);
    // Reported synchronously, before `send` returned.
    let r: Vec<DeliveryReport> = std::iter::from_fn(|| reports.try_recv().ok()).collect();
    assert_eq!(r.len(), 4);
    assert!(
        r.iter()
            .all(|r| r.outcome == DeliveryOutcome::Failed && r.attempts == 0)
    );
    let error = |i: usize| r[i].error.clone().unwrap();
    assert!(
        error(0).contains("scheme `ftp` is not supported, use http or https"),
        "{}",
        error(0)
    );
    assert!(
        error(1).contains("`not a url` is not a valid URL"),
        "{}",
        error(1)
    );
    assert!(error(2).contains("not a valid URL"), "{}", error(2));
    assert!(error(3).contains("idempotency_key"), "{}", error(3));
    let stats = n.stats();
    assert_eq!((stats.failed, stats.attempts, stats.endpoints), (4, 0, 0));
}

#[tokio::test]
async fn invalid_config_is_refused_naming_the_field() {
    let err = WebhookNotifier::new(
        WebhookConfig::default().with_queue_per_endpoint(0),
        Arc::new(|_| {}),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "webhooks.queue_per_endpoint",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("1 to"), "{err}");
    let err = WebhookNotifier::new(
        WebhookConfig::default().with_backoff(Duration::from_secs(5), Duration::from_secs(1)),
        Arc::new(|_| {}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("more than backoff_cap"), "{err}");
}

#[test]
fn a_runtime_is_required() {
    let err = WebhookNotifier::new(WebhookConfig::default(), Arc::new(|_| {})).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "webhooks",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("inside a tokio runtime"), "{err}");
}

#[tokio::test]
async fn full_queue_and_too_many_endpoints_drop() {
    let mut rx = Receiver::start(Mode::Hold).await;
    let config = fast().with_queue_per_endpoint(2).with_max_endpoints(1);
    let (n, mut reports) = notifier(config);
    // The first is in flight (held by the receiver), two more wait, the fourth is dropped.
    n.send(delivery(&rx.url, 1));
    rx.next_arrival().await;
    n.send(delivery(&rx.url, 2));
    n.send(delivery(&rx.url, 3));
    n.send(delivery(&rx.url, 4));
    let r = reports.try_recv().expect("reported at once");
    assert_eq!(
        (r.tag, r.outcome, r.attempts),
        (4, DeliveryOutcome::Dropped, 0)
    );
    assert!(r.error.unwrap().contains("queue full"));
    // A second endpoint is past max_endpoints.
    n.send(delivery("http://127.0.0.1:9/other", 5));
    let r = reports.try_recv().expect("reported at once");
    assert_eq!((r.tag, r.outcome), (5, DeliveryOutcome::Dropped));
    assert!(r.error.unwrap().contains("too many endpoints"));
    let stats = n.stats();
    assert_eq!((stats.dropped, stats.queued, stats.endpoints), (2, 3, 1));
    // Nothing drains while the receiver holds the request.
    assert!(!n.flush(Duration::from_millis(100)).await);

    rx.release(3);
    assert!(n.flush(WAIT).await);
    let tags: Vec<(u64, DeliveryOutcome)> = std::iter::from_fn(|| reports.try_recv().ok())
        .map(|r| (r.tag, r.outcome))
        .collect();
    let d = DeliveryOutcome::Delivered;
    assert_eq!(tags, [(1, d), (2, d), (3, d)]);
    assert_eq!(n.stats().delivered, 3);
}

#[tokio::test]
async fn idle_endpoints_are_forgotten_and_restarted() {
    let rx = Receiver::start(Mode::Ok).await;
    let (n, mut reports) = notifier(fast().with_idle_timeout(Duration::from_millis(100)));
    n.send(delivery(&rx.url, 1));
    assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);
    assert_eq!(n.stats().endpoints, 1);
    let deadline = Instant::now() + WAIT;
    while n.stats().endpoints > 0 {
        assert!(
            Instant::now() < deadline,
            "the idle endpoint was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n.breaker(&rx.url), None);
    n.send(delivery(&rx.url, 2));
    assert_eq!(next(&mut reports).await.outcome, DeliveryOutcome::Delivered);
    assert_eq!((rx.requests(), n.stats().endpoints), (2, 1));
}

#[tokio::test]
async fn queued_deliveries_are_sent_after_the_notifier_is_dropped() {
    let mut rx = Receiver::start(Mode::Hold).await;
    let (n, mut reports) = notifier(fast());
    n.send(delivery(&rx.url, 1));
    rx.next_arrival().await;
    n.send(delivery(&rx.url, 2));
    drop(n);
    rx.release(2);
    assert_eq!(next(&mut reports).await.tag, 1);
    assert_eq!(next(&mut reports).await.tag, 2);
    // Then the endpoint's task ends and with it the last sender of the reports.
    assert!(
        tokio::time::timeout(WAIT, reports.recv())
            .await
            .unwrap()
            .is_none()
    );
}

/// rtdash enables no TLS backend (nor do the dev-dependencies): an `https://` delivery
/// fails at once, saying what is missing. (Should a TLS feature be enabled one day, this
/// test fails: then update the module docs' "HTTPS" section.)
#[tokio::test]
async fn https_without_tls_fails_at_once_with_a_hint() {
    let rx = Receiver::start(Mode::Ok).await;
    let (n, mut reports) = notifier(fast());
    let url = rx.url.replace("http://", "https://");
    n.send(delivery(&url, 1));
    let r = next(&mut reports).await;
    assert_eq!(
        (r.outcome, r.attempts, r.status),
        (DeliveryOutcome::Failed, 1, None)
    );
    let error = r.error.unwrap();
    assert!(error.contains("TLS features"), "{error}");
    assert_eq!(rx.requests(), 0);
}
