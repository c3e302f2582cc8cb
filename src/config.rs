//! [`EngineConfig`]: every knob of the pipeline, with safe defaults.

use std::num::NonZeroU32;
use std::time::Duration;

use rtdash_core::{SchemaLimits, ValidationLimits};
use rtdash_fanout::{HubConfig, SlowConsumerPolicy};
use rtdash_window::WindowConfig;

use crate::Error;
use crate::MetricsSink;

/// Configuration of an [`Engine`](crate::Engine).
///
/// Build with [`Default`] and the `with_*` setters; every field is public to read.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rtdash::EngineConfig;
///
/// let config = EngineConfig::default()
///     .with_tick(Duration::from_millis(50))
///     .with_alert_history(100);
/// assert_eq!(config.tick, Duration::from_millis(50));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The window store: bucket width, retention (the longest widget window: raise
    /// [`WindowConfig::retention`] to allow longer windows), grace period for late events,
    /// percentile precision, series limit. Default: rtdash-window's default (1 s buckets,
    /// 1 h retention, 30 s grace).
    pub window: WindowConfig,
    /// Rules every ingested event must pass (name and tag lengths, clock skew). Default:
    /// rtdash-core's default.
    pub validation: ValidationLimits,
    /// Rules every dashboard must pass. Default: rtdash-core's default.
    ///
    /// Widget windows follow the window store: the engine validates with
    /// [`effective_schema`](Self::effective_schema), whose
    /// [`retention`](SchemaLimits::retention) is
    /// [`window.retention`](WindowConfig::retention) (any value set here is replaced).
    /// [`max_window`](SchemaLimits::max_window) is unset by default, so raising the
    /// retention alone allows longer windows; set it only to keep windows shorter than the
    /// retention (it may not exceed it).
    pub schema: SchemaLimits,
    /// The fan-out hub's configuration.
    pub hub: HubConfig,
    /// Slow-consumer policy of the in-process subscriptions made by
    /// [`Engine::subscribe`](crate::Engine::subscribe) only. Default: conflate (newest value
    /// per widget). WebSocket and SSE sessions do not use it: they take the policy of their
    /// transport, [`TransportConfig::with_slow_consumer_policy`](crate::TransportConfig::with_slow_consumer_policy).
    pub subscribe_policy: SlowConsumerPolicy,
    /// Granularity of the refresh scheduler in [`Engine::run`](crate::Engine::run): how
    /// often it wakes to evaluate the widgets that are due. A widget's value goes out at
    /// most this much after its refresh interval elapsed. Default 100 ms.
    pub tick: Duration,
    /// How many alert events (firing and resolved) [`Engine::alerts`](crate::Engine::alerts)
    /// keeps. Default 256.
    pub alert_history: usize,
    /// How many alert history records (one per fire, with its resolve and notifications)
    /// the engine keeps and its store loads at start
    /// ([`Engine::alert_history`](crate::Engine::alert_history)); older ones are dropped
    /// and counted. Default 10,000.
    pub alert_records: usize,
    /// A widget value is *stale* when its series had no data for longer than this many
    /// refresh intervals. Default 2. A widget that sets
    /// [`stale_after_seconds`](rtdash_core::Widget::stale_after_seconds) uses that instead
    /// (e.g. for a metric sent less often than the widget refreshes).
    pub stale_after_intervals: NonZeroU32,
    /// How many recent event ids are remembered to drop replayed events (events carrying an
    /// `id` seen before). 0 turns de-duplication off. Default 100,000.
    pub dedup_capacity: usize,
    /// Largest JSON body accepted by [`Engine::ingest_json`](crate::Engine::ingest_json) and
    /// by the HTTP API (larger ones get `413`). Default 8 MiB.
    pub max_body_bytes: usize,
    /// Where the engine's metrics go: the recorder the host installed for the `metrics`
    /// crate ([`MetricsSink::Host`], the default), or a private Prometheus recorder that
    /// [`Engine::render_metrics`](crate::Engine::render_metrics) and the router's
    /// `/metrics` serve ([`MetricsSink::Isolated`]).
    pub metrics: MetricsSink,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            window: WindowConfig::default(),
            validation: ValidationLimits::default(),
            schema: SchemaLimits::default(),
            hub: HubConfig::default(),
            subscribe_policy: SlowConsumerPolicy::default(),
            tick: Duration::from_millis(100),
            alert_history: 256,
            alert_records: 10_000,
            stale_after_intervals: NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN),
            dedup_capacity: 100_000,
            max_body_bytes: 8 << 20,
            metrics: MetricsSink::default(),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl EngineConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`window`](Self::window).
    with_window: window: WindowConfig;
    /// Sets [`validation`](Self::validation).
    with_validation: validation: ValidationLimits;
    /// Sets [`schema`](Self::schema).
    with_schema: schema: SchemaLimits;
    /// Sets [`hub`](Self::hub).
    with_hub: hub: HubConfig;
    /// Sets [`subscribe_policy`](Self::subscribe_policy), the policy of
    /// [`Engine::subscribe`](crate::Engine::subscribe)'s subscriptions (for WebSocket and
    /// SSE sessions, see
    /// [`TransportConfig::with_slow_consumer_policy`](crate::TransportConfig::with_slow_consumer_policy)).
    with_subscribe_policy: subscribe_policy: SlowConsumerPolicy;
    /// Sets [`tick`](Self::tick).
    with_tick: tick: Duration;
    /// Sets [`alert_history`](Self::alert_history).
    with_alert_history: alert_history: usize;
    /// Sets [`alert_records`](Self::alert_records).
    with_alert_records: alert_records: usize;
    /// Sets [`stale_after_intervals`](Self::stale_after_intervals).
    with_stale_after_intervals: stale_after_intervals: NonZeroU32;
    /// Sets [`dedup_capacity`](Self::dedup_capacity).
    with_dedup_capacity: dedup_capacity: usize;
    /// Sets [`max_body_bytes`](Self::max_body_bytes).
    with_max_body_bytes: max_body_bytes: usize;
    /// Sets [`metrics`](Self::metrics).
    with_metrics: metrics: MetricsSink;
}

impl EngineConfig {
    /// The limits the engine validates dashboards against: [`schema`](Self::schema) with
    /// its [`retention`](SchemaLimits::retention) set to
    /// [`window.retention`](WindowConfig::retention), so that the longest window a widget
    /// may ask for follows the window store ([`SchemaLimits::window_limit`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use rtdash::{EngineConfig, WindowConfig};
    ///
    /// let three_hours = Duration::from_secs(3 * 3600);
    /// let config = EngineConfig::default()
    ///     .with_window(WindowConfig::default().with_retention(three_hours));
    /// assert_eq!(config.effective_schema().window_limit(), Some(three_hours));
    /// ```
    #[must_use]
    pub fn effective_schema(&self) -> SchemaLimits {
        self.schema.clone().with_retention(self.window.retention)
    }

    /// Checks the rules that tie the parts together.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field: the window config is invalid
    /// (`window`), `schema.max_window` is set above `window.retention` (widgets could ask for
    /// windows the store cannot answer), `tick` is zero, or `max_body_bytes` is zero.
    pub fn validate(&self) -> Result<(), Error> {
        self.window.validate().map_err(|e| Error::InvalidConfig {
            field: "window",
            reason: e.to_string(),
        })?;
        if let Some(max) = self.schema.max_window
            && max > self.window.retention
        {
            return Err(Error::InvalidConfig {
                field: "schema.max_window",
                reason: format!(
                    "{max:?} exceeds the window store's retention of {:?}; leave \
                     schema.max_window unset to follow the retention, lower it, or raise \
                     window.retention",
                    self.window.retention
                ),
            });
        }
        if self.tick.is_zero() {
            return Err(Error::InvalidConfig {
                field: "tick",
                reason: "is zero; use e.g. 100 ms".into(),
            });
        }
        if self.max_body_bytes == 0 {
            return Err(Error::InvalidConfig {
                field: "max_body_bytes",
                reason: "is zero; use e.g. 8 MiB".into(),
            });
        }
        Ok(())
    }
}
