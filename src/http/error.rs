//! [`ApiError`]: a refused request, as the status and JSON error body the API answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::json::json_response;
use crate::Error;

/// A refused request: a status and the body `{"error": {"code", "message", …}}`.
///
/// Handlers return `Result<_, ApiError>` and use `?` on the engine's [`Error`]s, which
/// map to their status here (one table for the whole API).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// One more member of the `error` object, e.g. `violations`.
    extra: Option<(&'static str, Value)>,
}

impl ApiError {
    /// An error with `status`, a machine-friendly `code` and a message saying what to fix.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    /// Adds member `key` to the `error` object.
    fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl From<Error> for ApiError {
    /// The status of each kind of engine error: `400` malformed JSON or wrong shape, `413`,
    /// `422` invalid input, `404` unknown ids, `409` dashboard exists, else `500` (logged).
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::MalformedJson { .. } | Error::WrongShape { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::InvalidEvent { .. } | Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::UnknownDashboard { .. } | Error::UnknownWidget { .. } => StatusCode::NOT_FOUND,
            Error::DashboardExists { .. } => StatusCode::CONFLICT,
            Error::IngestLogPending { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
        }
        let err = Self::new(status, e.code(), e.to_string());
        match e {
            Error::Invalid { violations, .. } => err.with(
                "violations",
                violations
                    .iter()
                    .map(|v| json!({"path": v.path, "message": v.message}))
                    .collect(),
            ),
            Error::InvalidEvent { field, .. } => err.with("field", Value::from(field)),
            Error::MalformedJson { line, column, .. } => {
                err.with("position", json!({"line": line, "column": column}))
            }
            _ => err,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({"code": self.code, "message": self.message});
        if let (Some((k, v)), Value::Object(map)) = (self.extra, &mut err) {
            map.insert(k.to_owned(), v);
        }
        json_response(self.status, &json!({ "error": err }))
    }
}
