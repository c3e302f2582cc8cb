//! [`ApiError`]: a refused request, as the status and JSON error body the API answers.
//!
//! The body is serialized from [`ErrorBody`], the type whose schema the OpenAPI document
//! gives for every error response, so the two cannot drift apart.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::json::json_text;
use crate::Error;

/// The body of every error the API answers, the streams' refusals included:
/// `{"error": {"code", "message", …}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {
    "code": "invalid_dashboard",
    "message": "invalid dashboard: widgets[0].window_seconds: is 0; a window must be at least 1 second",
    "violations": [{"path": "widgets[0].window_seconds", "message": "is 0; a window must be at least 1 second"}]
}}))]
pub(crate) struct ErrorBody {
    /// What was refused and why.
    error: ErrorDetail,
}

/// What was refused and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A short machine-friendly name of the error: `malformed_json`, `wrong_shape`,
    /// `bad_request`, `unauthorized`, `forbidden`, `auth_unavailable`, `not_found`,
    /// `unknown_dashboard`, `unknown_widget`, `dashboard_exists`, `payload_too_large`,
    /// `unsupported_media_type`, `invalid_event`, `invalid_dashboard`, `invalid_widget`,
    /// `invalid_alert_rule`, `ingest_log_pending`, `shutting_down`, `store_failed`,
    /// `invalid_history_request`, `history_unavailable`, `not_owned`; and for
    /// the refusals of the streams (`/stream/{id}`, `/sse/{id}`) before they start, the
    /// wire protocol's codes: `auth_failed`, `token_expired`, `too_many_subscriptions`,
    /// `try_again_later`, `going_away`, `upgrade_required`, …
    code: &'static str,
    /// What is wrong and what to change, for humans.
    message: String,
    /// For `422` on a dashboard, widget or alert rule: every rule broken, with its JSON
    /// path in the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    violations: Option<Vec<Violation>>,
    /// For `422` on a metric event: the field at fault (`metric_name`, `value`,
    /// `tags["k"]`, `event_time`, `id`, `event` or `series`). For `400
    /// invalid_history_request`: the query parameter at fault (`from`, `to`, `range` or
    /// `step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<String>,
    /// For `400 malformed_json`: where the parser stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    position: Option<Position>,
}

/// One broken rule of a document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Violation {
    /// The JSON path of the field at fault, e.g. `widgets[0].window_seconds` (empty when
    /// the rule is about the whole document).
    path: String,
    /// What is wrong.
    message: String,
}

/// A place in a request body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Position {
    /// 1-based line (0 when unknown).
    line: usize,
    /// 1-based column (0 when unknown).
    column: usize,
}

/// A refused request: a status and the body `{"error": {"code", "message", …}}`.
///
/// Handlers return `Result<_, ApiError>` and use `?` on the engine's [`Error`]s, which
/// map to their status here (one table for the whole API).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    /// An error with `status`, a machine-friendly `code` and a message saying what to fix.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                violations: None,
                field: None,
                position: None,
            },
        }
    }
}

impl From<Error> for ApiError {
    /// The status of each kind of engine error: `400` malformed JSON, wrong shape or a bad history or alert history query, `413`,
    /// `422` invalid input, `404` unknown ids, `409` dashboard exists, `503` ingest log
    /// pending or unavailable, a metric aggregated by another node and history unavailable, else `500` (logged).
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::MalformedJson { .. }
            | Error::WrongShape { .. }
            | Error::InvalidHistoryRequest { .. }
            | Error::InvalidAlertHistoryQuery { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InvalidEvent { .. } | Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::UnknownDashboard { .. } | Error::UnknownWidget { .. } => StatusCode::NOT_FOUND,
            Error::DashboardExists { .. } => StatusCode::CONFLICT,
            Error::IngestLogPending { .. }
            | Error::IngestLogUnavailable { .. }
            | Error::NotOwned { .. }
            | Error::HistoryUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
        }
        let mut err = Self::new(status, e.code(), e.to_string());
        match e {
            Error::Invalid { violations, .. } => {
                err.detail.violations = Some(
                    violations
                        .into_iter()
                        .map(|v| Violation {
                            path: v.path,
                            message: v.message,
                        })
                        .collect(),
                );
            }
            Error::InvalidEvent { field, .. } => err.detail.field = Some(field),
            Error::InvalidHistoryRequest { field, .. }
            | Error::InvalidAlertHistoryQuery { field, .. } => {
                err.detail.field = Some(field.to_owned());
            }
            Error::MalformedJson { line, column, .. } => {
                err.detail.position = Some(Position { line, column });
            }
            _ => {}
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.detail };
        // Serializing plain strings and numbers cannot fail.
        json_text(
            self.status,
            serde_json::to_string(&body).unwrap_or_default(),
        )
    }
}
