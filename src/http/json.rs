//! JSON in and out: the [`JsonBody`] extractor and the JSON responses.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;
use crate::DashboardDoc;

/// The body of a JSON request, not yet decoded (each route decodes its own document).
///
/// Refuses, in this order: a `Content-Type` other than `application/json` or `…+json`
/// (`415`, also when the body is too large), a body larger than the router's limit,
/// [`EngineConfig::max_body_bytes`](crate::EngineConfig::max_body_bytes) (`413`), and a
/// body that could not be read (`400`).
#[derive(Debug)]
pub(crate) struct JsonBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let wrong_type = unsupported_type(req.headers().get(header::CONTENT_TYPE));
        // The body is read even when the type is wrong, as a client sending it expects.
        let body = Bytes::from_request(req, state).await;
        if let Some(message) = wrong_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ));
        }
        body.map(Self).map_err(|rej| {
            let status = rej.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "payload_too_large",
                    "the body is larger than the limit (EngineConfig::max_body_bytes); send smaller batches",
                )
            } else {
                ApiError::new(status, "bad_request", rej.body_text())
            }
        })
    }
}

/// What is wrong with a request's `Content-Type` for a JSON body, if anything.
fn unsupported_type(content_type: Option<&HeaderValue>) -> Option<String> {
    let ct = content_type.and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        None
    } else if ct.is_empty() {
        Some("missing Content-Type; send the body as application/json".to_owned())
    } else {
        Some(format!(
            "Content-Type `{ct}` is not supported; send the body as application/json"
        ))
    }
}

/// `status` with an `application/json` body of already-encoded JSON text.
pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `status` with `body` as JSON.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

/// `status` with `value` as JSON (through [`Value`], so object members are sorted by name).
pub(crate) fn json_value(status: StatusCode, value: &impl Serialize) -> Response {
    json_response(status, &serde_json::to_value(value).unwrap_or(Value::Null))
}

/// `status` with dashboard document `doc` as JSON.
pub(crate) fn doc_response(status: StatusCode, doc: &DashboardDoc) -> Response {
    json_text(status, doc.to_json())
}
