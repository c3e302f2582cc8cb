//! The one error type of the facade.

use std::fmt;
use std::path::PathBuf;

use rtdash_core::{CoreError, SchemaViolation, Uuid};
use rtdash_window::WindowError;

/// Everything that can go wrong in `rtdash`: configuration, bad input (events, dashboards,
/// widgets, alert rules), unknown ids and storage failures.
///
/// Every message names the field, id or file at fault and, where it is not obvious, what to
/// change. [`Error::code`] gives a short machine-friendly name (also the `code` of the HTTP
/// API's error bodies).
///
/// # Examples
///
/// ```
/// use rtdash::{Engine, EngineConfig, Error, MemoryStore};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let err = engine.dashboards().get("billing").unwrap_err();
/// assert!(matches!(&err, Error::UnknownDashboard { id } if id == "billing"));
/// assert_eq!(err.code(), "unknown_dashboard");
/// assert_eq!(
///     err.to_string(),
///     "unknown dashboard `billing`; list the dashboards with GET /dashboards"
/// );
///
/// let err = engine.ingest_json(br#"[{"metric_name": "cpu", "#).unwrap_err();
/// assert!(matches!(err, Error::MalformedJson { line: 1, .. }));
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An [`EngineConfig`](crate::EngineConfig) field breaks a rule.
    #[error("invalid engine config `{field}`: {reason}")]
    InvalidConfig {
        /// The field at fault, e.g. `schema.max_window`.
        field: &'static str,
        /// The rule broken and what to change.
        reason: String,
    },
    /// The request body as a whole is not usable JSON (syntax error, truncated or empty).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// What the parser found wrong.
        message: String,
    },
    /// Well-formed JSON of the wrong overall shape, e.g. a number where an array of events
    /// was expected.
    #[error("{message}")]
    WrongShape {
        /// What was expected and what was found.
        message: String,
    },
    /// A body larger than the configured limit.
    #[error(
        "the body is {size} bytes, the limit is {limit} (EngineConfig::max_body_bytes); send smaller batches"
    )]
    PayloadTooLarge {
        /// Size of the body.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// One metric event was refused; the message names the field, e.g.
    /// `value: NaN is not a finite number`.
    #[error("{field}: {reason}")]
    InvalidEvent {
        /// The field at fault (`metric_name`, `value`, `tags["k"]`, `event_time`, `id`,
        /// `event`, or `series` when the window store refused the series).
        field: String,
        /// What is wrong and the limit that applies.
        reason: String,
    },
    /// A dashboard, widget or alert rule broke one or more rules; every violation is listed
    /// with its JSON path (`widgets[0].window_seconds`, `alert_rules[1].threshold`, ...).
    #[error("invalid {what}: {}", ViolationsDisplay(.violations))]
    Invalid {
        /// What was validated: `dashboard`, `widget` or `alert rule`.
        what: Subject,
        /// Every broken rule, in document order. Never empty.
        violations: Vec<SchemaViolation>,
    },
    /// No dashboard has this id.
    #[error("unknown dashboard `{id}`; list the dashboards with GET /dashboards")]
    UnknownDashboard {
        /// The id asked for.
        id: String,
    },
    /// The dashboard has no widget with this id.
    #[error("dashboard `{dashboard}` has no widget {widget}")]
    UnknownWidget {
        /// The dashboard.
        dashboard: String,
        /// The widget id asked for.
        widget: Uuid,
    },
    /// A dashboard with this id exists already (create only; use update or PUT to replace).
    #[error("dashboard `{id}` exists already; update it instead (PUT /dashboards/{id})")]
    DashboardExists {
        /// The id.
        id: String,
    },
    /// The dashboard store failed to read or write.
    #[error("dashboard store: cannot {action} `{}`: {reason}", .path.display())]
    Store {
        /// What was attempted: `write`, `rename`, `sync`, `read`, `remove`, `list`.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's or the decoder's message.
        reason: String,
    },
    /// An [`EngineCheckpoint`](crate::EngineCheckpoint) could not be read or restored.
    #[error("invalid checkpoint: {reason}")]
    InvalidCheckpoint {
        /// What is wrong with it.
        reason: String,
    },
    /// The synchronous ingest API was used with an ingest log that cannot append without
    /// waiting (a durable log); nothing was appended.
    #[error(
        "the engine's ingest log `{log}` cannot append without waiting: use `Engine::submit_json(..).await`"
    )]
    IngestLogPending {
        /// The log's name.
        log: String,
    },
    /// The ingest log could not append the batch (e.g. Redis is unreachable); nothing of
    /// the batch is known to be appended: retry it (event ids make a retry safe).
    #[error("the ingest log `{log}` could not append the batch: {reason}")]
    IngestLogUnavailable {
        /// The log's name.
        log: String,
        /// Why.
        reason: String,
    },
    /// With a partitioned log, the widget's metric is aggregated by another node of the
    /// cluster: its values reach this node's subscribers through the backplane.
    #[error(
        "metric `{metric}` is aggregated by another node of the cluster: subscribe to the dashboard for its values"
    )]
    NotOwned {
        /// The metric.
        metric: String,
    },
    /// A history request (range, step) is not usable; the message names the field.
    #[error("history request `{field}`: {reason}")]
    InvalidHistoryRequest {
        /// `from`, `to` or `step`.
        field: &'static str,
        /// What is wrong and the limit that applies.
        reason: String,
    },
    /// An alert history query (`limit`, `from`/`to`, `state`, …) is not usable; the message
    /// names the field.
    #[error("alert history query `{field}`: {reason}")]
    InvalidAlertHistoryQuery {
        /// The query parameter at fault.
        field: &'static str,
        /// What is wrong and the limit that applies.
        reason: String,
    },
    /// History could not be read: the archive is unreachable, or this node does not
    /// aggregate (an edge node holds no window store).
    #[error("history is unavailable: {reason}")]
    HistoryUnavailable {
        /// Why.
        reason: String,
    },
}

/// What an [`Error::Invalid`] is about.
///
/// # Examples
///
/// ```
/// use rtdash::{AlertRule, DashboardDoc, Engine, EngineConfig, Error, MemoryStore, Subject, Uuid};
///
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let dashboards = engine.dashboards();
/// dashboards.create(DashboardDoc::from_json(br#"{"id": "ops", "name": "Operations"}"#)?)?;
/// // A rule on a widget the dashboard does not have.
/// let err = dashboards.add_alert_rule("ops", AlertRule::above(Uuid::from_u128(7), 1.0));
/// let Err(Error::Invalid { what, violations }) = err else { panic!("{err:?}") };
/// assert_eq!((what, what.as_str()), (Subject::AlertRule, "alert rule"));
/// assert_eq!(violations[0].path, "alert_rules[0].widget_id");
/// # Ok::<(), rtdash::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// A dashboard document.
    Dashboard,
    /// A widget (or a widget patch).
    Widget,
    /// An alert rule.
    AlertRule,
    /// A metric event.
    Event,
}

impl Subject {
    /// The name used in messages: `dashboard`, `widget`, `alert rule`, `event`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dashboard => "dashboard",
            Self::Widget => "widget",
            Self::AlertRule => "alert rule",
            Self::Event => "event",
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// A short machine-friendly name of the error kind: `invalid_config`, `malformed_json`,
    /// `wrong_shape`, `payload_too_large`, `invalid_event`, `invalid_dashboard`,
    /// `invalid_widget`, `invalid_alert_rule`, `unknown_dashboard`, `unknown_widget`,
    /// `dashboard_exists`, `store_failed`, `invalid_checkpoint`, `ingest_log_pending`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConfig { .. } => "invalid_config",
            Self::MalformedJson { .. } => "malformed_json",
            Self::WrongShape { .. } => "wrong_shape",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::InvalidEvent { .. } => "invalid_event",
            Self::Invalid { what, .. } => match what {
                Subject::Widget => "invalid_widget",
                Subject::AlertRule => "invalid_alert_rule",
                Subject::Event => "invalid_event",
                Subject::Dashboard => "invalid_dashboard",
            },
            Self::UnknownDashboard { .. } => "unknown_dashboard",
            Self::UnknownWidget { .. } => "unknown_widget",
            Self::DashboardExists { .. } => "dashboard_exists",
            Self::Store { .. } => "store_failed",
            Self::InvalidCheckpoint { .. } => "invalid_checkpoint",
            Self::IngestLogPending { .. } => "ingest_log_pending",
            Self::IngestLogUnavailable { .. } => "ingest_log_unavailable",
            Self::NotOwned { .. } => "not_owned",
            Self::InvalidHistoryRequest { .. } => "invalid_history_request",
            Self::InvalidAlertHistoryQuery { .. } => "invalid_alert_history_query",
            Self::HistoryUnavailable { .. } => "history_unavailable",
        }
    }

    pub(crate) fn invalid(
        what: Subject,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            what,
            violations: vec![SchemaViolation::new(path, message)],
        }
    }

    pub(crate) fn store(
        action: &'static str,
        path: impl Into<PathBuf>,
        err: impl fmt::Display,
    ) -> Self {
        Self::Store {
            action,
            path: path.into(),
            reason: err.to_string(),
        }
    }

    /// Maps an error of rtdash-core; `what` names the document for schema errors.
    pub(crate) fn from_core(err: CoreError, what: Subject) -> Self {
        match err {
            CoreError::InvalidEvent { field, reason } => Self::InvalidEvent { field, reason },
            CoreError::InvalidSchema { violations } => Self::Invalid { what, violations },
            CoreError::MalformedJson {
                line,
                column,
                message,
            } => Self::MalformedJson {
                line,
                column,
                message,
            },
            CoreError::NotABatch { found } => Self::WrongShape {
                message: format!(
                    "expected a JSON array of metric events (or a single event object), found {found}"
                ),
            },
            CoreError::InvalidEventId { reason } => Self::InvalidEvent {
                field: "id".into(),
                reason,
            },
            CoreError::TooManySeries { .. } | CoreError::InvalidSeriesKey { .. } => {
                Self::InvalidEvent {
                    field: "series".into(),
                    reason: err.to_string(),
                }
            }
            other => Self::invalid(what, "", other.to_string()),
        }
    }

    /// Maps an error of rtdash-window raised while recording one event.
    pub(crate) fn from_window_record(err: &WindowError) -> Self {
        let field = match err {
            WindowError::NonFiniteValue { .. } => "value",
            WindowError::TimestampOutOfRange { .. } => "event_time",
            _ => "series",
        };
        Self::InvalidEvent {
            field: field.into(),
            reason: err.to_string(),
        }
    }

    /// Maps a `serde_json` error of a request body about `what`.
    pub(crate) fn from_json(err: &serde_json::Error, what: Subject) -> Self {
        let message = err.to_string();
        let message = match message.rfind(" at line ") {
            Some(pos) if err.line() > 0 => message[..pos].to_owned(),
            _ => message,
        };
        match err.classify() {
            serde_json::error::Category::Data => Self::invalid(what, "", message),
            _ => Self::MalformedJson {
                line: err.line(),
                column: err.column(),
                message,
            },
        }
    }
}

struct ViolationsDisplay<'a>(&'a [SchemaViolation]);

impl fmt::Display for ViolationsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if v.path.is_empty() {
                f.write_str(&v.message)?;
            } else {
                write!(f, "{v}")?;
            }
        }
        Ok(())
    }
}
