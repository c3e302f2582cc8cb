//! Webhook delivery: POST opaque JSON bodies to URLs in the background, with retries,
//! exponential backoff and a circuit breaker per endpoint, without ever making the caller
//! wait.
//!
//! The module knows nothing about alerts: a [`WebhookDelivery`] is a URL, a body, an
//! idempotency key and a `tag` of the caller's choosing, and every delivery ends in exactly
//! one [`DeliveryReport`] handed to the callback given to [`WebhookNotifier::new`].
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rtdash::notify::{DeliveryOutcome, WebhookConfig, WebhookDelivery, WebhookNotifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A receiver that accepts every POST to /hooks/alerts.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/hooks/alerts", listener.local_addr()?);
//! let app = axum::Router::new().route("/hooks/alerts", axum::routing::post(|| async { "ok" }));
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! // Reports go to a channel; the callback must return quickly.
//! let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
//! let notifier = WebhookNotifier::new(
//!     WebhookConfig::default(),
//!     Arc::new(move |report| drop(tx.send(report))),
//! )?;
//!
//! let body = r#"{"rule":"cpu-high","state":"firing","value":97.5}"#;
//! notifier.send(WebhookDelivery::new(&url, body, "cpu-high-firing-17").with_tag(17));
//! let report = reports.recv().await.ok_or("no report")?;
//! assert_eq!(report.outcome, DeliveryOutcome::Delivered);
//! assert_eq!((report.tag, report.attempts, report.status), (17, 1, Some(200)));
//!
//! // Not a web URL: reported at once, nothing is sent.
//! notifier.send(WebhookDelivery::new("ftp://example.com/hook", body, "k").with_tag(18));
//! let report = reports.recv().await.ok_or("no report")?;
//! assert_eq!((report.tag, report.outcome.as_str()), (18, "failed"));
//! assert_eq!(report.attempts, 0);
//!
//! // At shutdown: wait for the queues to drain.
//! assert!(notifier.flush(Duration::from_secs(5)).await);
//! assert_eq!(notifier.stats().delivered, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Delivery
//!
//! Each delivery is an HTTP `POST` of the body as given, with `Content-Type:
//! application/json`, `User-Agent: rtdash/<version>` and `Idempotency-Key: <key>` (left out
//! when the key is empty); the key is the same on every attempt of a delivery, so that a
//! receiver can drop the duplicates a retry after a lost response creates. Redirects are
//! not followed (a `3xx` is a failure). An attempt may take at most
//! [`attempt_timeout`](WebhookConfig::attempt_timeout), response body included; the
//! response body is read (up to 4 KiB, for the error text) and otherwise ignored.
//!
//! | answer | outcome |
//! |---|---|
//! | `2xx` | [`Delivered`](DeliveryOutcome::Delivered) |
//! | `408`, `429`, `5xx`, a timeout, a connection error | retried, at most [`max_attempts`](WebhookConfig::max_attempts) attempts in all |
//! | any other status (`4xx`, `3xx`, `1xx`) | [`Failed`](DeliveryOutcome::Failed) at once |
//!
//! # Retries
//!
//! After the `n`-th failed attempt of a delivery the endpoint waits
//! `min(backoff_base × 2ⁿ⁻¹, backoff_cap)`, scaled by a random factor between ½ and 1
//! (jitter, so that many notifiers do not retry in step), then tries again. Nothing else of
//! the answer is honoured (no `Retry-After`).
//!
//! # Endpoints and ordering
//!
//! An endpoint is one URL, exactly as given (`http://a/x` and `http://a/x/` are two). Each
//! has its own bounded queue and its own task, which sends the deliveries in the order of
//! [`send`](WebhookNotifier::send), one request at a time. A slow or dead receiver thus
//! delays only its own queue: never the caller, never another endpoint. The tasks run on
//! the tokio runtime [`WebhookNotifier::new`] was called in.
//!
//! # Circuit breaker
//!
//! [`breaker_failures`](WebhookConfig::breaker_failures) consecutive failed attempts to an
//! endpoint (the retryable failures: `408`, `429`, `5xx`, timeouts, connection errors; any
//! other answer shows the receiver is up and resets the count) **open** its breaker for
//! [`breaker_cooldown`](WebhookConfig::breaker_cooldown):
//!
//! - a delivery retrying when the breaker opens stops at once:
//!   [`Failed`](DeliveryOutcome::Failed) with the attempts made so far;
//! - while it is open, deliveries are reported [`BreakerOpen`](DeliveryOutcome::BreakerOpen)
//!   with 0 attempts, without a request;
//! - after the cooldown it is **half-open**: the next delivery is a single trial attempt.
//!   Success closes the breaker (and the delivery is delivered; a refusal such as a `400`
//!   closes it too, the receiver being up); a retryable failure reports the delivery
//!   [`Failed`](DeliveryOutcome::Failed) and opens the breaker for another cooldown.
//!
//! [`WebhookNotifier::breaker`] shows the state of one endpoint's breaker.
//!
//! # Reports
//!
//! Every delivery given to [`send`](WebhookNotifier::send) ends in exactly one
//! [`DeliveryReport`]. A delivery refused by `send` itself (bad URL or idempotency key, full
//! queue, too many endpoints) is reported at once, on the caller's thread, before `send`
//! returns; every other report comes from the endpoint's task. **The callback must not
//! block or take long**: while it runs, its endpoint sends nothing (hand the report to a
//! channel or update a map, and do the rest elsewhere). It must not panic either (a panic
//! is caught and logged, the report is lost). A report holds the URL as given: when the URL
//! carries a secret (a token in the path, as many chat webhooks do), do not log it as is.
//!
//! # Bounds and memory
//!
//! At most [`max_endpoints`](WebhookConfig::max_endpoints) endpoints exist at a time, each
//! with at most [`queue_per_endpoint`](WebhookConfig::queue_per_endpoint) waiting
//! deliveries; past either bound a delivery is reported
//! [`Dropped`](DeliveryOutcome::Dropped) at once. A waiting delivery costs its body, twice
//! its URL and key, and about 250 bytes, so the worst case is about `max_endpoints ×
//! queue_per_endpoint × body size`:
//! with the defaults and 2 KiB bodies, about 512 MiB; lower the bounds if bodies are large
//! or endpoints many. **The body size is the caller's business**: it is sent as is, never
//! copied (a [`Bytes`] is shared between attempts). An endpoint idle for
//! [`idle_timeout`](WebhookConfig::idle_timeout) whose breaker is not open ends its task
//! and is forgotten (its breaker with it); the next delivery to its URL starts it again.
//!
//! # Shutdown
//!
//! [`WebhookNotifier::flush`] waits until every accepted delivery has been reported. When
//! the last clone of the notifier is dropped, each endpoint's task still sends what is
//! queued, then ends; deliveries still queued when the runtime shuts down are lost
//! unreported.
//!
//! # HTTPS
//!
//! rtdash enables no TLS backend of `reqwest`: `https://` URLs are accepted, but their
//! deliveries fail (at once, with an error saying so) unless the application enables one
//! of reqwest's TLS features, e.g. `reqwest = { version = "0.12", default-features = false,
//! features = ["rustls-tls"] }` in its own `Cargo.toml` (cargo unifies the features).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use crate::Error;

/// `User-Agent` of every request.
const USER_AGENT: &str = concat!("rtdash/", env!("CARGO_PKG_VERSION"));
/// Most bytes of a response body read (and of them, the first 200 characters quoted in a
/// failure's error text).
const MAX_RESPONSE_BYTES: usize = 4096;
const ERROR_BODY_CHARS: usize = 200;
/// Upper bounds of the settings (beyond them a setting is surely a mistake).
const MAX_ATTEMPTS: u32 = 100;
const MAX_QUEUE: usize = 1 << 20;
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Settings of a [`WebhookNotifier`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::notify::WebhookConfig;
///
/// let config = WebhookConfig::default()
///     .with_max_attempts(3)
///     .with_backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .with_queue_per_endpoint(64);
/// assert!(config.validate().is_ok());
///
/// let err = WebhookConfig::default().with_max_attempts(0).validate().unwrap_err();
/// assert!(err.to_string().contains("webhooks.max_attempts"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Most attempts of one delivery, the first included (default 5, 1 to 100).
    pub max_attempts: u32,
    /// Wait after the first failed attempt; it doubles after each further one (default
    /// 250 ms; more than 0, at most `backoff_cap`). See the [module docs](self#retries).
    pub backoff_base: Duration,
    /// Longest wait between two attempts (default 10 s, at most 1 h).
    pub backoff_cap: Duration,
    /// Longest time one attempt may take, from connecting to the end of the response
    /// (default 5 s; more than 0, at most 1 h).
    pub attempt_timeout: Duration,
    /// Most deliveries waiting for one endpoint (default 256, 1 to 1,048,576); a delivery
    /// past it is [`Dropped`](DeliveryOutcome::Dropped). Each waiting delivery holds its
    /// body in memory.
    pub queue_per_endpoint: usize,
    /// Most endpoints (distinct URLs) at a time (default 1,024, at least 1); a delivery to
    /// a new URL past it is [`Dropped`](DeliveryOutcome::Dropped). Each endpoint costs a
    /// task, a queue and its waiting deliveries.
    pub max_endpoints: usize,
    /// Consecutive failed attempts that open an endpoint's circuit breaker (default 5, at
    /// least 1).
    pub breaker_failures: u32,
    /// How long an open breaker refuses deliveries before a trial (default 30 s; more than
    /// 0, at most 1 h).
    pub breaker_cooldown: Duration,
    /// How long an endpoint without deliveries (and with a breaker that is not open) keeps
    /// its task before it is forgotten (default 5 min; more than 0).
    pub idle_timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
            queue_per_endpoint: 256,
            max_endpoints: 1024,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl WebhookConfig {
    /// Sets [`max_attempts`](Self::max_attempts).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`backoff_base`](Self::backoff_base) and [`backoff_cap`](Self::backoff_cap).
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Sets [`attempt_timeout`](Self::attempt_timeout).
    #[must_use]
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`queue_per_endpoint`](Self::queue_per_endpoint).
    #[must_use]
    pub fn with_queue_per_endpoint(mut self, deliveries: usize) -> Self {
        self.queue_per_endpoint = deliveries;
        self
    }

    /// Sets [`max_endpoints`](Self::max_endpoints).
    #[must_use]
    pub fn with_max_endpoints(mut self, endpoints: usize) -> Self {
        self.max_endpoints = endpoints;
        self
    }

    /// Sets [`breaker_failures`](Self::breaker_failures) and
    /// [`breaker_cooldown`](Self::breaker_cooldown).
    #[must_use]
    pub fn with_breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.breaker_failures = failures;
        self.breaker_cooldown = cooldown;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field (`webhooks.max_attempts`,
    /// `webhooks.backoff_base`, ...) and the rule it breaks.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        let duration = |field: &'static str, d: Duration| {
            if d.is_zero() || d > MAX_DURATION {
                bad(field, format!("{d:?}: more than 0 and at most 1 h"))
            } else {
                Ok(())
            }
        };
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return bad(
                "webhooks.max_attempts",
                format!("{}: 1 to {MAX_ATTEMPTS} attempts", self.max_attempts),
            );
        }
        duration("webhooks.backoff_base", self.backoff_base)?;
        duration("webhooks.backoff_cap", self.backoff_cap)?;
        if self.backoff_base > self.backoff_cap {
            return bad(
                "webhooks.backoff_base",
                format!(
                    "{:?} is more than backoff_cap ({:?})",
                    self.backoff_base, self.backoff_cap
                ),
            );
        }
        duration("webhooks.attempt_timeout", self.attempt_timeout)?;
        if self.queue_per_endpoint == 0 || self.queue_per_endpoint > MAX_QUEUE {
            return bad(
                "webhooks.queue_per_endpoint",
                format!("{}: 1 to {MAX_QUEUE} deliveries", self.queue_per_endpoint),
            );
        }
        if self.max_endpoints == 0 {
            return bad("webhooks.max_endpoints", "0: at least 1".to_owned());
        }
        if self.breaker_failures == 0 {
            return bad(
                "webhooks.breaker_failures",
                "0: at least 1 failed attempt".to_owned(),
            );
        }
        duration("webhooks.breaker_cooldown", self.breaker_cooldown)?;
        if self.idle_timeout.is_zero() {
            return bad("webhooks.idle_timeout", "0: more than 0".to_owned());
        }
        Ok(())
    }
}

/// One notification to deliver: an opaque body POSTed to a URL.
///
/// # Examples
///
/// ```
/// use rtdash::notify::WebhookDelivery;
///
/// let d = WebhookDelivery::new("http://hooks.internal/alerts", r#"{"state":"firing"}"#, "rule-7-firing-3")
///     .with_tag(3);
/// assert_eq!((d.tag, d.body.len()), (3, 18));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Where to POST: an `http://` or `https://` URL. The endpoint (queue, breaker) is keyed
    /// by this string exactly as given.
    pub url: String,
    /// The request body, sent as is with `Content-Type: application/json` (it is not
    /// checked to be JSON). Its size is the caller's business: it stays in memory until the
    /// delivery is reported.
    pub body: Bytes,
    /// Sent as the `Idempotency-Key` header on every attempt (left out when empty); visible
    /// ASCII only. Make it unique per notification, e.g. the alert rule id and the sequence
    /// number of the state change.
    pub idempotency_key: String,
    /// The caller's own reference, copied into the [`DeliveryReport`] (default 0).
    pub tag: u64,
}

impl WebhookDelivery {
    /// A delivery of `body` to `url` with tag 0.
    #[must_use]
    pub fn new(
        url: impl Into<String>,
        body: impl Into<Bytes>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            body: body.into(),
            idempotency_key: idempotency_key.into(),
            tag: 0,
        }
    }

    /// Sets [`tag`](Self::tag).
    #[must_use]
    pub fn with_tag(mut self, tag: u64) -> Self {
        self.tag = tag;
        self
    }
}

/// How a delivery ended.
///
/// Serialized in snake case (`"delivered"`, `"failed"`, `"breaker_open"`, `"dropped"`), as
/// [`as_str`](Self::as_str) gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// The receiver answered `2xx`.
    Delivered,
    /// Not delivered: a permanent refusal (`4xx` other than `408`/`429`, `3xx`), the
    /// attempts ran out, the breaker opened during the retries, a half-open trial failed,
    /// or the URL or idempotency key is not usable (0 attempts).
    Failed,
    /// Refused without a request because the endpoint's circuit breaker is open.
    BreakerOpen,
    /// Refused without a request because a bound was reached: the endpoint's queue is full
    /// or there are too many endpoints.
    Dropped,
}

impl DeliveryOutcome {
    /// The name: `delivered`, `failed`, `breaker_open`, `dropped`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::BreakerOpen => "breaker_open",
            Self::Dropped => "dropped",
        }
    }
}

impl fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The end of one delivery, handed to the callback of [`WebhookNotifier::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The delivery's [`tag`](WebhookDelivery::tag).
    pub tag: u64,
    /// The delivery's URL, as given.
    pub url: String,
    /// How it ended.
    pub outcome: DeliveryOutcome,
    /// Requests made (0 when none was: refused by `send`, or breaker open).
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got an answer.
    pub status: Option<u16>,
    /// Why it was not delivered (`None` when delivered): the last attempt's error or
    /// status (with the start of the response body), or why no request was made.
    pub error: Option<String>,
    /// When it ended, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Counters of a [`WebhookNotifier`] since it was created (the last two are current
/// values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Deliveries reported [`Delivered`](DeliveryOutcome::Delivered).
    pub delivered: u64,
    /// Deliveries reported [`Failed`](DeliveryOutcome::Failed).
    pub failed: u64,
    /// Deliveries reported [`Dropped`](DeliveryOutcome::Dropped).
    pub dropped: u64,
    /// Deliveries reported [`BreakerOpen`](DeliveryOutcome::BreakerOpen).
    pub breaker_rejected: u64,
    /// Requests made (every attempt of every delivery).
    pub attempts: u64,
    /// Deliveries accepted and not yet reported (queued or in flight).
    pub queued: u64,
    /// Endpoints that currently exist.
    pub endpoints: u64,
    /// Endpoints whose breaker is currently open (in its cooldown).
    pub open_breakers: u64,
}

/// The state of an endpoint's circuit breaker (see the
/// [module docs](self#circuit-breaker)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Deliveries go through.
    Closed,
    /// Deliveries are refused until `until`.
    Open {
        /// The end of the cooldown.
        until: Instant,
    },
    /// The cooldown is over: the next delivery is a single trial attempt (or it is under
    /// way).
    HalfOpen,
}

/// Delivers [`WebhookDelivery`]s in the background: one bounded queue, one task and one
/// circuit breaker per endpoint. Cheap to clone (the clones share everything).
///
/// See the [module docs](self) for the behaviour and an example.
#[derive(Clone)]
pub struct WebhookNotifier {
    inner: Arc<Inner>,
}

/// What the notifier's handles share.
struct Inner {
    core: Arc<Core>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    runtime: tokio::runtime::Handle,
    next_id: AtomicU64,
}

/// What the endpoint tasks share with the handles (the tasks do not keep [`Inner`] alive:
/// when the last handle goes, the queues close).
struct Core {
    config: WebhookConfig,
    client: reqwest::Client,
    on_report: Arc<dyn Fn(DeliveryReport) + Send + Sync>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    breaker_rejected: AtomicU64,
    attempts: AtomicU64,
    /// Deliveries accepted and not yet reported.
    pending: AtomicU64,
    /// Woken when `pending` drops to 0.
    drained: Notify,
}

/// One endpoint as the handles see it.
struct Endpoint {
    /// Tells this endpoint from a later one of the same URL.
    id: u64,
    tx: mpsc::Sender<Job>,
    breaker: Arc<Mutex<Breaker>>,
}

/// A delivery accepted by `send`, with its checked URL and header.
struct Job {
    delivery: WebhookDelivery,
    url: Url,
    key: Option<HeaderValue>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebhookNotifier {
    /// A notifier with `config`, calling `on_report` once per delivery. Its endpoint tasks
    /// run on the current tokio runtime.
    ///
    /// `on_report` must return quickly and must not block: see the
    /// [module docs](self#reports).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`]: a setting breaks a rule (see
    /// [`WebhookConfig::validate`]), or the call is not made inside a tokio runtime (field
    /// `webhooks`).
    pub fn new(
        config: WebhookConfig,
        on_report: Arc<dyn Fn(DeliveryReport) + Send + Sync>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::InvalidConfig {
            field: "webhooks",
            reason: "a WebhookNotifier must be created inside a tokio runtime (it runs a task \
                     per endpoint there)"
                .to_owned(),
        })?;
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::InvalidConfig {
                field: "webhooks",
                reason: format!("cannot build the HTTP client: {}", error_chain(&e)),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    config,
                    client,
                    on_report,
                    delivered: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                    breaker_rejected: AtomicU64::new(0),
                    attempts: AtomicU64::new(0),
                    pending: AtomicU64::new(0),
                    drained: Notify::new(),
                }),
                endpoints: Mutex::new(HashMap::new()),
                runtime,
                next_id: AtomicU64::new(0),
            }),
        })
    }

    /// Queues `delivery` for its endpoint, starting the endpoint if needed. Never blocks,
    /// never waits for the network.
    ///
    /// A delivery that cannot be queued is reported at once, on this thread, before `send`
    /// returns: [`Failed`](DeliveryOutcome::Failed) for a URL that is not `http://` or
    /// `https://` (or not a URL) and for an idempotency key that is not visible ASCII;
    /// [`Dropped`](DeliveryOutcome::Dropped) when the endpoint's queue is full or a new
    /// endpoint would pass [`max_endpoints`](WebhookConfig::max_endpoints). The report's
    /// `error` says which.
    pub fn send(&self, delivery: WebhookDelivery) {
        let core = &self.inner.core;
        let url = match check_url(&delivery.url) {
            Ok(url) => url,
            Err(why) => return core.refuse(&delivery, DeliveryOutcome::Failed, why),
        };
        let key = if delivery.idempotency_key.is_empty() {
            None
        } else {
            match HeaderValue::from_str(&delivery.idempotency_key) {
                Ok(v) => Some(v),
                Err(_) => {
                    let why = "idempotency_key is not a valid header value: use visible ASCII \
                               characters only"
                        .to_owned();
                    return core.refuse(&delivery, DeliveryOutcome::Failed, why);
                }
            }
        };
        let job = Job { delivery, url, key };
        // Decide under the lock, report after it (the callback may call `send`).
        let refused = {
            let mut endpoints = lock(&self.inner.endpoints);
            let max = core.config.max_endpoints;
            if !endpoints.contains_key(&job.delivery.url) && endpoints.len() >= max {
                Some((
                    job,
                    format!(
                        "too many endpoints: {max} URLs are in use \
                         (WebhookConfig::max_endpoints; an endpoint is forgotten after \
                         idle_timeout without deliveries)"
                    ),
                ))
            } else {
                let endpoint = endpoints
                    .entry(job.delivery.url.clone())
                    .or_insert_with(|| self.start_endpoint(&job.delivery.url));
                core.pending.fetch_add(1, Ordering::SeqCst);
                match endpoint.tx.try_send(job) {
                    Ok(()) => None,
                    Err(mpsc::error::TrySendError::Full(job)) => {
                        core.finish_one();
                        let n = core.config.queue_per_endpoint;
                        Some((
                            job,
                            format!(
                                "queue full: {n} deliveries wait for this endpoint \
                                 (WebhookConfig::queue_per_endpoint)"
                            ),
                        ))
                    }
                    Err(mpsc::error::TrySendError::Closed(job)) => {
                        core.finish_one();
                        endpoints.remove(&job.delivery.url);
                        Some((
                            job,
                            "the endpoint's task has stopped (is the runtime shutting down?)"
                                .to_owned(),
                        ))
                    }
                }
            }
        };
        if let Some((job, why)) = refused {
            core.refuse(&job.delivery, DeliveryOutcome::Dropped, why);
        }
    }

    /// The counters (see [`WebhookStats`]).
    #[must_use]
    pub fn stats(&self) -> WebhookStats {
        let core = &self.inner.core;
        let (endpoints, open_breakers) = {
            let map = lock(&self.inner.endpoints);
            let now = Instant::now();
            let open = map
                .values()
                .filter(|e| lock(&e.breaker).is_open(now))
                .count();
            (map.len(), open)
        };
        WebhookStats {
            delivered: core.delivered.load(Ordering::Relaxed),
            failed: core.failed.load(Ordering::Relaxed),
            dropped: core.dropped.load(Ordering::Relaxed),
            breaker_rejected: core.breaker_rejected.load(Ordering::Relaxed),
            attempts: core.attempts.load(Ordering::Relaxed),
            queued: core.pending.load(Ordering::SeqCst),
            endpoints: endpoints as u64,
            open_breakers: open_breakers as u64,
        }
    }

    /// The state of the circuit breaker of the endpoint `url` (as given to `send`), or
    /// `None` when there is no such endpoint (never used, or forgotten after
    /// [`idle_timeout`](WebhookConfig::idle_timeout)).
    #[must_use]
    pub fn breaker(&self, url: &str) -> Option<BreakerState> {
        let map = lock(&self.inner.endpoints);
        let endpoint = map.get(url)?;
        Some(lock(&endpoint.breaker).state(Instant::now()))
    }

    /// Waits until every delivery accepted so far has been reported (the queues are empty
    /// and no request is in flight), at most `timeout`. Returns whether they were.
    ///
    /// For shutdown and tests; deliveries sent meanwhile are waited for too.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only stops the waiting.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let core = &self.inner.core;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let drained = core.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if core.pending.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return core.pending.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// A new endpoint for `url`, its task started.
    fn start_endpoint(&self, url: &str) -> Endpoint {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let config = &self.inner.core.config;
        let (tx, rx) = mpsc::channel(config.queue_per_endpoint);
        let breaker = Arc::new(Mutex::new(Breaker::new(
            config.breaker_failures,
            config.breaker_cooldown,
        )));
        let task = EndpointTask {
            core: Arc::clone(&self.inner.core),
            inner: Arc::downgrade(&self.inner),
            id,
            url: url.to_owned(),
            breaker: Arc::clone(&breaker),
            backoff: Backoff {
                base: config.backoff_base,
                cap: config.backoff_cap,
            },
            rng: RandomState::new().hash_one(id) | 1,
        };
        drop(self.inner.runtime.spawn(task.run(rx)));
        Endpoint { id, tx, breaker }
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("config", &self.inner.core.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Counts `report`, then hands it to the callback (catching a panic).
    fn report(&self, report: DeliveryReport) {
        let counter = match report.outcome {
            DeliveryOutcome::Delivered => &self.delivered,
            DeliveryOutcome::Failed => &self.failed,
            DeliveryOutcome::BreakerOpen => &self.breaker_rejected,
            DeliveryOutcome::Dropped => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let tag = report.tag;
        if catch_unwind(AssertUnwindSafe(|| (self.on_report)(report))).is_err() {
            tracing::error!(
                tag,
                "the webhook report callback panicked; the report is lost"
            );
        }
    }

    /// Reports a delivery refused by `send`.
    fn refuse(&self, d: &WebhookDelivery, outcome: DeliveryOutcome, why: String) {
        self.report(DeliveryReport {
            tag: d.tag,
            url: d.url.clone(),
            outcome,
            attempts: 0,
            status: None,
            error: Some(why),
            at_ms: now_ms(),
        });
    }

    /// One accepted delivery less.
    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drained.notify_waiters();
        }
    }
}

/// An endpoint's task: takes its deliveries one by one.
struct EndpointTask {
    core: Arc<Core>,
    inner: Weak<Inner>,
    id: u64,
    url: String,
    breaker: Arc<Mutex<Breaker>>,
    backoff: Backoff,
    /// State of the jitter's random numbers.
    rng: u64,
}

impl EndpointTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        loop {
            let job = match tokio::time::timeout(self.core.config.idle_timeout, rx.recv()).await {
                Ok(Some(job)) => job,
                // The last handle is gone and the queue is drained.
                Ok(None) => return,
                Err(_idle) if self.retire(&rx) => return,
                Err(_idle) => continue,
            };
            let report = self.deliver(job).await;
            self.core.report(report);
            self.core.finish_one();
        }
    }

    /// After `idle_timeout` without a delivery: forgets the endpoint and returns `true`,
    /// unless a delivery is waiting or its breaker is open (decided under the endpoints'
    /// lock, so that no `send` queues meanwhile).
    fn retire(&self, rx: &mpsc::Receiver<Job>) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            // The handles are gone: `recv` returns the rest of the queue, then `None`.
            return false;
        };
        let mut map = lock(&inner.endpoints);
        if !rx.is_empty() || lock(&self.breaker).is_open(Instant::now()) {
            return false;
        }
        if map.get(&self.url).is_some_and(|e| e.id == self.id) {
            map.remove(&self.url);
        }
        true
    }

    /// Delivers one job: the breaker's verdict, then the attempts.
    async fn deliver(&mut self, job: Job) -> DeliveryReport {
        let mut report = DeliveryReport {
            tag: job.delivery.tag,
            url: job.delivery.url.clone(),
            outcome: DeliveryOutcome::Failed,
            attempts: 0,
            status: None,
            error: None,
            at_ms: 0,
        };
        let max_attempts = match lock(&self.breaker).admit(Instant::now()) {
            Admit::Normal => self.core.config.max_attempts,
            Admit::Trial => 1,
            Admit::Refused { remaining } => {
                report.outcome = DeliveryOutcome::BreakerOpen;
                report.error = Some(format!(
                    "circuit breaker open for {remaining:?} more, after {} consecutive failed \
                     attempts; no request made",
                    self.core.config.breaker_failures
                ));
                report.at_ms = now_ms();
                return report;
            }
        };
        loop {
            report.attempts += 1;
            self.core.attempts.fetch_add(1, Ordering::Relaxed);
            let result = attempt(&self.core, &job).await;
            if !self.settle(result, &mut report, max_attempts) {
                break;
            }
            let jitter = next_unit(&mut self.rng);
            tokio::time::sleep(self.backoff.delay(report.attempts, jitter)).await;
        }
        report.at_ms = now_ms();
        report
    }
}

impl EndpointTask {
    /// Records the end of an attempt in `report` and the breaker; returns whether to try
    /// again (after a wait).
    fn settle(
        &self,
        result: AttemptResult,
        report: &mut DeliveryReport,
        max_attempts: u32,
    ) -> bool {
        let mut breaker = lock(&self.breaker);
        match result {
            AttemptResult::Delivered(status) => {
                breaker.on_answer();
                report.outcome = DeliveryOutcome::Delivered;
                report.status = Some(status);
                report.error = None;
                false
            }
            AttemptResult::Refused { status, error } => {
                if status.is_some() {
                    breaker.on_answer();
                }
                report.status = status;
                report.error = Some(error);
                false
            }
            AttemptResult::Retry { status, error } => {
                report.status = status;
                if breaker.on_failure(Instant::now()) {
                    report.error = Some(format!(
                        "{error}; the circuit breaker opened (no more attempts for {:?})",
                        self.core.config.breaker_cooldown
                    ));
                    return false;
                }
                report.error = Some(error);
                report.attempts < max_attempts
            }
        }
    }
}

/// The end of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum AttemptResult {
    Delivered(u16),
    /// Not to be retried.
    Refused {
        status: Option<u16>,
        error: String,
    },
    /// To be retried (if attempts and the breaker allow).
    Retry {
        status: Option<u16>,
        error: String,
    },
}

/// One POST of `job`.
async fn attempt(core: &Core, job: &Job) -> AttemptResult {
    let mut request = core
        .client
        .post(job.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .timeout(core.config.attempt_timeout)
        .body(job.delivery.body.clone());
    if let Some(key) = &job.key {
        request = request.header(HeaderName::from_static("idempotency-key"), key.clone());
    }
    match request.send().await {
        Ok(mut response) => {
            let status = response.status();
            // Read a little of the body: for the error text, and so that the connection
            // can be reused. Its errors do not matter, the status is the answer.
            let mut body = Vec::new();
            while body.len() < MAX_RESPONSE_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            classify_status(status.as_u16(), &String::from_utf8_lossy(&body))
        }
        Err(e) => classify_error(&e, core.config.attempt_timeout),
    }
}

/// What an answer with `status` (and the start of its `body`) means.
fn classify_status(status: u16, body: &str) -> AttemptResult {
    if (200..300).contains(&status) {
        return AttemptResult::Delivered(status);
    }
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut error = format!("HTTP {status} {reason}").trim_end().to_owned();
    let body = body.trim();
    if !body.is_empty() {
        error.push_str(": ");
        error.extend(body.chars().take(ERROR_BODY_CHARS));
    }
    let status = Some(status);
    if matches!(status, Some(408 | 429 | 500..=599)) {
        AttemptResult::Retry { status, error }
    } else {
        AttemptResult::Refused { status, error }
    }
}

/// What a failed request means: timeouts and connection or transfer errors are retried,
/// a request that cannot be built (or an `https://` URL without TLS) is not.
fn classify_error(e: &reqwest::Error, timeout: Duration) -> AttemptResult {
    if e.is_timeout() {
        return AttemptResult::Retry {
            status: None,
            error: format!("no answer within {timeout:?} (WebhookConfig::attempt_timeout)"),
        };
    }
    let error = error_chain(e);
    if e.is_builder() {
        return AttemptResult::Refused {
            status: None,
            error,
        };
    }
    classify_transport(error)
}

/// A connection or transfer error by its message: hyper-util's "scheme is not http"
/// means an `https://` URL and no TLS backend, which no retry mends.
fn classify_transport(error: String) -> AttemptResult {
    if error.contains("scheme is not http") {
        AttemptResult::Refused {
            status: None,
            error: format!(
                "{error} (https:// needs one of reqwest's TLS features, e.g. `rustls-tls`; see \
                 rtdash::notify, \"HTTPS\")"
            ),
        }
    } else {
        AttemptResult::Retry {
            status: None,
            error,
        }
    }
}

/// `e` and its sources, joined with `: ` (each message once).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

/// Checks that `url` is an `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<Url, String> {
    let shown: String = url.chars().take(100).collect();
    let parsed = Url::parse(url).map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "`{shown}`: the scheme `{other}` is not supported, use http or https"
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}` has no host"));
    }
    Ok(parsed)
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random number in `[0, 1)` (splitmix64 on `state`).
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, as a fraction.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The wait between attempts: exponential, capped, with jitter.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// The wait after the `failed`-th failed attempt (1-based): `base × 2^(failed-1)`, at
    /// most `cap`, scaled by `½ + ½ × jitter` (`jitter` in `[0, 1]`).
    fn delay(&self, failed: u32, jitter: f64) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A circuit breaker's state machine; the time is passed in.
#[derive(Clone, Debug)]
struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Circuit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    /// Requests go through; `failures` consecutive failed attempts so far.
    Closed { failures: u32 },
    /// Refused until `until`.
    Open { until: Instant },
    /// A trial attempt is under way.
    Trial,
}

/// The breaker's verdict on a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    /// Closed: up to `max_attempts` attempts.
    Normal,
    /// Half-open: a single trial attempt.
    Trial,
    /// Open: no request, for `remaining` more.
    Refused { remaining: Duration },
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Circuit::Closed { failures: 0 },
        }
    }

    /// Whether a delivery starting at `now` may make requests (starting a trial after the
    /// cooldown).
    fn admit(&mut self, now: Instant) -> Admit {
        match self.state {
            Circuit::Closed { .. } => Admit::Normal,
            Circuit::Open { until } if now < until => Admit::Refused {
                remaining: until - now,
            },
            Circuit::Open { .. } | Circuit::Trial => {
                self.state = Circuit::Trial;
                Admit::Trial
            }
        }
    }

    /// The receiver answered (not with a retryable failure): closes the breaker.
    fn on_answer(&mut self) {
        self.state = Circuit::Closed { failures: 0 };
    }

    /// An attempt failed at `now`; returns whether this opened the breaker.
    fn on_failure(&mut self, now: Instant) -> bool {
        match self.state {
            Circuit::Closed { failures } if failures + 1 < self.threshold => {
                self.state = Circuit::Closed {
                    failures: failures + 1,
                };
                false
            }
            Circuit::Closed { .. } | Circuit::Trial => {
                self.state = Circuit::Open {
                    until: now + self.cooldown,
                };
                true
            }
            // Not reached (no attempt while open); keep the cooldown.
            Circuit::Open { .. } => false,
        }
    }

    /// Whether it refuses deliveries at `now`.
    fn is_open(&self, now: Instant) -> bool {
        matches!(self.state, Circuit::Open { until } if now < until)
    }

    /// The state as shown to users at `now`.
    fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            Circuit::Closed { .. } => BreakerState::Closed,
            Circuit::Open { until } if now < until => BreakerState::Open { until },
            Circuit::Open { .. } | Circuit::Trial => BreakerState::HalfOpen,
        }
    }
}

/// A [`WebhookNotifier`] as the engine's [`AlertNotifier`](crate::AlertNotifier): the
/// default notifier of an engine built with feature `webhooks`
/// ([`EngineBuilder::notifier`](crate::EngineBuilder::notifier) replaces it, e.g. with
/// other [`WebhookConfig`] settings). Each report becomes the
/// [`NotifyResult`](crate::alert_history::NotifyResult) of the notification it belongs to.
///
/// Holds one callback per delivery not yet reported: as many as the notifier's queues
/// hold (each delivery ends in exactly one report).
pub struct AlertWebhooks {
    notifier: WebhookNotifier,
    pending: Arc<Mutex<HashMap<u64, crate::alert_history::NotifyDone>>>,
    next_tag: AtomicU64,
}

impl fmt::Debug for AlertWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertWebhooks")
            .field("stats", &self.notifier.stats())
            .finish_non_exhaustive()
    }
}

impl AlertWebhooks {
    /// Alert webhooks delivered with `config`.
    ///
    /// # Errors
    ///
    /// As [`WebhookNotifier::new`]: a bad setting, or no tokio runtime.
    pub fn new(config: WebhookConfig) -> Result<Self, Error> {
        let pending: Arc<Mutex<HashMap<u64, crate::alert_history::NotifyDone>>> = Arc::default();
        let reports = Arc::clone(&pending);
        let notifier = WebhookNotifier::new(
            config,
            Arc::new(move |r: DeliveryReport| {
                let done = reports
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&r.tag);
                if let Some(done) = done {
                    done(crate::alert_history::NotifyResult {
                        outcome: match r.outcome {
                            DeliveryOutcome::Delivered => crate::NotificationOutcome::Delivered,
                            DeliveryOutcome::BreakerOpen => crate::NotificationOutcome::BreakerOpen,
                            DeliveryOutcome::Dropped => crate::NotificationOutcome::Dropped,
                            DeliveryOutcome::Failed => crate::NotificationOutcome::Failed,
                        },
                        attempts: r.attempts,
                        status: r.status,
                        error: r.error,
                        at: crate::Timestamp::from_millis(r.at_ms),
                    });
                }
            }),
        )?;
        Ok(Self {
            notifier,
            pending,
            next_tag: AtomicU64::new(0),
        })
    }

    /// The notifier (its [`stats`](WebhookNotifier::stats), breakers, `flush`).
    #[must_use]
    pub fn notifier(&self) -> &WebhookNotifier {
        &self.notifier
    }
}

impl crate::AlertNotifier for AlertWebhooks {
    fn notify(&self, url: &str, key: &str, body: Vec<u8>, done: crate::alert_history::NotifyDone) {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        // Registered before `send`, which may report at once (on this thread).
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tag, done);
        self.notifier
            .send(WebhookDelivery::new(url, body, key).with_tag(tag));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_between_half_and_full() {
        let b = Backoff {
            base: 250 * MS,
            cap: 10_000 * MS,
        };
        let full: Vec<Duration> = (1..=8).map(|n| b.delay(n, 1.0)).collect();
        let expected: Vec<Duration> = [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]
            .iter()
            .map(|&ms| ms * MS)
            .collect();
        assert_eq!(full, expected);
        assert_eq!(b.delay(3, 0.0), 500 * MS);
        assert_eq!(b.delay(3, 0.5), 750 * MS);
        // Out-of-range jitter is clamped; huge attempt numbers do not overflow.
        assert_eq!(b.delay(3, 7.0), 1000 * MS);
        assert_eq!(b.delay(u32::MAX, 1.0), 10_000 * MS);
        assert_eq!(b.delay(0, 1.0), 250 * MS);
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let mut state = 42;
        let xs: Vec<f64> = (0..1000).map(|_| next_unit(&mut state)).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 1000 * MS);
        assert_eq!(b.admit(t0), Admit::Normal);
        assert!(!b.on_failure(t0));
        assert!(!b.on_failure(t0));
        // An answer resets the count.
        b.on_answer();
        assert!(!b.on_failure(t0));
        assert!(!b.on_failure(t0));
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.on_failure(t0 + 10 * MS));
        let until = t0 + 1010 * MS;
        assert_eq!(b.state(t0 + 10 * MS), BreakerState::Open { until });
        assert!(b.is_open(t0 + 10 * MS));
        assert_eq!(
            b.admit(t0 + 510 * MS),
            Admit::Refused {
                remaining: 500 * MS
            }
        );
        assert_eq!(b.state(until), BreakerState::HalfOpen);
        assert!(!b.is_open(until));
    }

    #[test]
    fn half_open_trial_closes_on_success_and_reopens_on_failure() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, 100 * MS);
        assert!(b.on_failure(t0));
        // After the cooldown: one trial; a failure opens it for another cooldown.
        assert_eq!(b.admit(t0 + 100 * MS), Admit::Trial);
        assert_eq!(b.state(t0 + 100 * MS), BreakerState::HalfOpen);
        assert!(b.on_failure(t0 + 150 * MS));
        assert_eq!(
            b.state(t0 + 150 * MS),
            BreakerState::Open {
                until: t0 + 250 * MS
            }
        );
        assert!(matches!(b.admit(t0 + 200 * MS), Admit::Refused { .. }));
        // The next trial succeeds: closed, with a fresh count.
        assert_eq!(b.admit(t0 + 250 * MS), Admit::Trial);
        b.on_answer();
        assert_eq!(b.state(t0 + 250 * MS), BreakerState::Closed);
        assert_eq!(b.admit(t0 + 250 * MS), Admit::Normal);
    }

    #[test]
    fn statuses_are_delivered_retried_or_refused() {
        assert_eq!(classify_status(200, ""), AttemptResult::Delivered(200));
        assert_eq!(classify_status(204, "x"), AttemptResult::Delivered(204));
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(classify_status(s, ""), AttemptResult::Retry { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
        for s in [301, 400, 401, 404, 410, 422] {
            assert!(
                matches!(classify_status(s, ""), AttemptResult::Refused { status: Some(x), .. } if x == s),
                "{s}"
            );
        }
        let AttemptResult::Refused { error, .. } = classify_status(400, "  missing field `x`\n")
        else {
            panic!()
        };
        assert_eq!(error, "HTTP 400 Bad Request: missing field `x`");
        let AttemptResult::Retry { error, .. } = classify_status(500, &"y".repeat(1000)) else {
            panic!()
        };
        assert_eq!(error.len(), "HTTP 500 Internal Server Error: ".len() + 200);
    }

    #[test]
    fn https_without_tls_is_not_retried_other_transport_errors_are() {
        let no_tls = "error sending request for url (https://h/): client error (Connect): \
                      invalid URL, scheme is not http";
        let AttemptResult::Refused { error, .. } = classify_transport(no_tls.to_owned()) else {
            panic!()
        };
        assert!(error.contains("TLS features"), "{error}");
        assert!(matches!(
            classify_transport("connection refused".to_owned()),
            AttemptResult::Retry { status: None, .. }
        ));
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("https://hooks.example.com/a?b=c").is_ok());
        let err = check_url("ftp://example.com/x").unwrap_err();
        assert!(err.contains("scheme `ftp` is not supported"), "{err}");
        let err = check_url("not a url").unwrap_err();
        assert!(err.contains("is not a valid URL"), "{err}");
        assert!(check_url("http://").is_err());
        assert!(check_url("").is_err());
    }

    #[test]
    fn config_rules_name_the_field() {
        assert!(WebhookConfig::default().validate().is_ok());
        let field = |c: WebhookConfig| match c.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let d = WebhookConfig::default;
        assert_eq!(field(d().with_max_attempts(0)), "webhooks.max_attempts");
        assert_eq!(field(d().with_max_attempts(101)), "webhooks.max_attempts");
        assert_eq!(
            field(d().with_backoff(Duration::ZERO, MS)),
            "webhooks.backoff_base"
        );
        assert_eq!(field(d().with_backoff(2 * MS, MS)), "webhooks.backoff_base");
        assert_eq!(
            field(d().with_backoff(MS, Duration::from_secs(7200))),
            "webhooks.backoff_cap"
        );
        assert_eq!(
            field(d().with_attempt_timeout(Duration::ZERO)),
            "webhooks.attempt_timeout"
        );
        assert_eq!(
            field(d().with_queue_per_endpoint(0)),
            "webhooks.queue_per_endpoint"
        );
        assert_eq!(field(d().with_max_endpoints(0)), "webhooks.max_endpoints");
        assert_eq!(field(d().with_breaker(0, MS)), "webhooks.breaker_failures");
        assert_eq!(
            field(d().with_breaker(1, Duration::ZERO)),
            "webhooks.breaker_cooldown"
        );
        assert_eq!(
            field(d().with_idle_timeout(Duration::ZERO)),
            "webhooks.idle_timeout"
        );
    }

    #[test]
    fn outcomes_serialize_in_snake_case() {
        for o in [
            DeliveryOutcome::Delivered,
            DeliveryOutcome::Failed,
            DeliveryOutcome::BreakerOpen,
            DeliveryOutcome::Dropped,
        ] {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
            assert_eq!(serde_json::from_str::<DeliveryOutcome>(&json).unwrap(), o);
        }
    }
}
