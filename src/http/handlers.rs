//! The route handlers of [`router`](super::router).

use std::sync::Arc;

use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rtdash_core::Uuid;
use rtdash_transport::Transport;
use serde_json::{Value, json};

use super::auth::{Reader, Writer};
use super::error::ApiError;
use super::json::{JsonBody, doc_response, json_response, json_text, json_value};
use crate::{AlertRule, DashboardDoc, Engine, Error, Registry, Subject, WidgetKey, WidgetPatch};

/// The state every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    pub(crate) engine: Engine,
    pub(crate) transport: Transport<WidgetKey>,
}

impl Api {
    /// Dashboard `id`, or the `404` every route naming a dashboard answers for an unknown
    /// one.
    fn dashboard(&self, id: &str) -> Result<Arc<DashboardDoc>, ApiError> {
        Ok(self.engine.dashboards().get(id)?)
    }

    /// Makes `change` to the dashboards on tokio's blocking thread pool: the registry
    /// writes it to the store (a [`FileStore`](crate::FileStore) waits for `fsync`) under
    /// its write lock, which must not hold up an async worker. The registry's lock keeps the
    /// writes in the order the changes become visible.
    ///
    /// The change is made even if the client goes away (the future is dropped) meanwhile.
    async fn change<T: Send + 'static>(
        &self,
        change: impl FnOnce(&Registry) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || change(engine.dashboards())).await {
            Ok(result) => Ok(result?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down; retry the change on another node",
            )),
        }
    }
}

type Answer = Result<Response, ApiError>;

pub(crate) async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

pub(crate) async fn ingest(State(api): State<Api>, JsonBody(body): JsonBody) -> Answer {
    let report = api.engine.submit_json(&body).await?;
    Ok(json_value(StatusCode::OK, &report))
}

pub(crate) async fn create_dashboard(
    State(api): State<Api>,
    writer: Option<Extension<Writer>>,
    JsonBody(body): JsonBody,
) -> Answer {
    let doc = DashboardDoc::from_json(&body)?;
    if let Some(Extension(w)) = &writer {
        w.check(doc.id())?;
    }
    let doc = api.change(|dashboards| dashboards.create(doc)).await?;
    let mut r = doc_response(StatusCode::CREATED, &doc);
    if let Ok(loc) = HeaderValue::from_str(&format!("/dashboards/{}", doc.id())) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// The dashboards the reader may see.
pub(crate) async fn list_dashboards(
    State(api): State<Api>,
    Extension(reader): Extension<Reader>,
) -> Response {
    let mut body = String::from(r#"{"dashboards":["#);
    let docs = api.engine.dashboards().list();
    for (i, d) in docs.iter().filter(|d| reader.may_see(d.id())).enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&d.to_json());
    }
    body.push_str("]}");
    json_text(StatusCode::OK, body)
}

pub(crate) async fn get_dashboard(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let doc = api.dashboard(&id)?;
    Ok(doc_response(StatusCode::OK, &doc))
}

pub(crate) async fn put_dashboard(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    let doc = DashboardDoc::from_json(&body)?;
    if doc.id() != id {
        return Err(Error::invalid(
            Subject::Dashboard,
            "id",
            format!(
                "is `{}` but the URL names dashboard `{id}`; they must match",
                doc.id()
            ),
        )
        .into());
    }
    let (doc, created) = api.change(|dashboards| dashboards.put(doc)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(doc_response(status, &doc))
}

pub(crate) async fn delete_dashboard(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    api.change(move |dashboards| dashboards.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn patch_widgets(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    api.dashboard(&id)?;
    let patch = WidgetPatch::from_json(&body)?;
    let doc = api
        .change(move |dashboards| dashboards.patch_widgets(&id, &patch))
        .await?;
    Ok(doc_response(StatusCode::OK, &doc))
}

pub(crate) async fn widget_snapshot(
    State(api): State<Api>,
    Path((id, widget)): Path<(String, String)>,
) -> Answer {
    let widget = Uuid::parse_str(&widget).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_widget",
            format!("dashboard `{id}` has no widget `{widget}` (widget ids are UUIDs)"),
        )
    })?;
    let state = api.engine.widget_snapshot(&id, widget)?;
    Ok(json_value(StatusCode::OK, &state))
}

pub(crate) async fn alerts(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    api.dashboard(&id)?;
    let mut history: Vec<_> = api
        .engine
        .alerts()
        .into_iter()
        .filter(|a| a.dashboard_id == id)
        .collect();
    history.reverse();
    let firing: Vec<_> = api
        .engine
        .firing_alerts()
        .into_iter()
        .filter(|a| a.dashboard_id == id)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "alerts": serde_json::to_value(&history).unwrap_or(Value::Null),
            "firing": serde_json::to_value(&firing).unwrap_or(Value::Null),
        }),
    ))
}

/// `{"alert_rules": [rule, …]}` of `doc`.
fn alert_rules_response(doc: &DashboardDoc) -> Response {
    json_response(
        StatusCode::OK,
        &json!({ "alert_rules": serde_json::to_value(&doc.alert_rules).unwrap_or(Value::Null) }),
    )
}

pub(crate) async fn get_alert_rules(State(api): State<Api>, Path(id): Path<String>) -> Answer {
    let doc = api.dashboard(&id)?;
    Ok(alert_rules_response(&doc))
}

pub(crate) async fn put_alert_rules(
    State(api): State<Api>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer {
    api.dashboard(&id)?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| Error::from_json(&e, Subject::AlertRule))?;
    // Either `[rule, …]` or `{"alert_rules": [rule, …]}`.
    let list = match value {
        Value::Object(mut m) => m.remove("alert_rules").unwrap_or(Value::Null),
        v => v,
    };
    let rules: Vec<AlertRule> = serde_json::from_value(list)
        .map_err(|e| Error::invalid(Subject::AlertRule, "alert_rules", e.to_string()))?;
    let doc = api
        .change(move |dashboards| dashboards.set_alert_rules(&id, rules))
        .await?;
    Ok(alert_rules_response(&doc))
}

/// Adds `topics=<id>` to the request's query so the transport subscribes the session to
/// the dashboard of the path.
fn with_topic(mut req: Request, id: &str) -> Result<Request, ApiError> {
    let uri = req.uri();
    let pq = match uri.query() {
        Some(q) if !q.is_empty() => format!("{}?{q}&topics={id}", uri.path()),
        _ => format!("{}?topics={id}", uri.path()),
    };
    let uri = pq.parse::<Uri>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request URI could not be rewritten",
        )
    })?;
    *req.uri_mut() = uri;
    Ok(req)
}

/// The WebSocket stream of dashboard `id`. Nothing is looked up before the session has
/// authenticated its client: the transport then closes with 4003 if the principal may
/// not see the dashboard, 4004 if it does not exist (so ids cannot be probed without a
/// token that may see them).
pub(crate) async fn stream_ws(
    State(api): State<Api>,
    Path(id): Path<String>,
    req: Request,
) -> Answer {
    Ok(api.transport.ws_upgrade(with_topic(req, &id)?))
}

/// The SSE stream of dashboard `id`, checked as [`stream_ws`] (the refusal is the stream's
/// `error` event).
pub(crate) async fn stream_sse(
    State(api): State<Api>,
    Path(id): Path<String>,
    req: Request,
) -> Answer {
    Ok(api.transport.sse_response(with_topic(req, &id)?).await)
}

/// The metrics name every dashboard (subscribers per dashboard): only for a reader who
/// may see all of them.
pub(crate) async fn metrics(
    State(api): State<Api>,
    Extension(reader): Extension<Reader>,
) -> Answer {
    if let Some(hidden) = api
        .engine
        .dashboards()
        .list()
        .iter()
        .find(|d| !reader.may_see(d.id()))
    {
        reader.check(hidden.id())?;
    }
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        api.engine.render_metrics(),
    )
        .into_response())
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for `{}`", uri.path()),
    )
}
