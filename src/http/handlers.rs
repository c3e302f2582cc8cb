//! The route handlers of [`router`](super::router).

use std::sync::Arc;

use axum::extract::{Extension, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rtdash_core::Uuid;
use rtdash_transport::{Principal, Transport};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::check_scope;
use super::error::{ApiError, ErrorBody};
use super::json::{JsonBody, doc_response, json_text, json_value};
use super::schemas::{
    AlertList, AlertRuleList, AlertRulesInput, DashboardDocSchema, DashboardHistorySchema,
    DashboardList, Health, HistorySchema, IngestBody, SseEvent, WidgetPatchSchema, WidgetSchema,
};
use crate::{
    AlertHistoryPage, AlertHistoryQuery, AlertRule, AlertSeverity, AlertState, Catalog,
    DashboardDoc, Engine, Error, IngestReport, Registry, Subject, WidgetKey, WidgetPatch,
    WidgetState,
};

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

/// The writer a [`RequireWriters`](super::RequireWriters) layer admitted, if any.
type Writer = Option<Extension<Principal>>;

/// `Ok` if `writer` (when the router requires writers) may change dashboard `id`, else the
/// `403`. The layer checks the path when it sees `/dashboards/{id}`; this check holds
/// wherever the host applied it (e.g. outside a nested router, where the path has a
/// prefix).
fn may_change(writer: &Writer, id: &str) -> Result<(), ApiError> {
    match writer {
        Some(Extension(w)) => check_scope(w, id, "change"),
        None => Ok(()),
    }
}

/// The path parameters of a route, refused as JSON like every other error: a parameter
/// that is not percent-encoded UTF-8 names nothing that exists (dashboard ids are ASCII,
/// widget ids UUIDs), so it is a `404` (axum's own rejection would be a `400` in plain
/// text).
pub(crate) struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no route for `{}`: {}; path parameters are percent-encoded UTF-8",
                    parts.uri.path(),
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// Whether the server answers and its parts work.
///
/// `200` `{"status": "ok"}` (with a history archive, also `"history_archive": "up"` or
/// `"down"`: an archive outage does not stop the node); `503` `unavailable` (the error shape) while a part the
/// engine depends on is down: its Redis backplane or durable ingest log (feature `redis`), so that a load
/// balancer stops sending clients to a node that cannot serve them fresh values.
/// Always open (no token needed).
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "The server answers and its parts work.", body = Health),
        (status = 503, description = "A part is down (the message names it).", body = ErrorBody),
    ),
)]
pub(crate) async fn health(State(api): State<Api>) -> Response {
    let health = api.engine.health();
    if health.is_healthy() {
        let history_archive = health
            .history_archive
            .map(|up| if up { "up" } else { "down" });
        return json_value(
            StatusCode::OK,
            &Health {
                status: "ok",
                history_archive,
            },
        );
    }
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        if health.backplane == Some(false) {
            "the backplane is down: this node cannot reach Redis, so the values it serves may be stale"
        } else {
            "the ingest log is down: this node cannot reach Redis, so it cannot accept events"
        },
    )
    .into_response()
}

/// This document: the OpenAPI description of the HTTP API.
///
/// Always open (no token needed).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((
        status = 200,
        description = "The OpenAPI 3.1 document.",
        content_type = "application/json",
        body = Object
    )),
)]
pub(crate) async fn openapi_document() -> Response {
    json_text(StatusCode::OK, super::openapi::document().to_owned())
}

/// Ingest a batch of metric events.
///
/// The body is an array of events or one event object. Each element is validated on its
/// own: a refused one is reported with its index in `errors` and never spoils the others,
/// so a batch with bad elements is still a `200`. Late events (past the grace period) and
/// replays (an `id` seen before) are counted, not aggregated.
#[utoipa::path(
    post,
    path = "/ingest",
    tag = "ingest",
    request_body(content = IngestBody, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Every element counted once: accepted, rejected (with its index and reason), late or duplicate.", body = IngestReport),
        (status = 400, description = "`malformed_json` (syntax error, truncated or empty body; with `position`), `wrong_shape` (neither an array nor an object) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit (`EngineConfig::max_body_bytes`, 8 MiB by default).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not `application/json` (or `…+json`).", body = ErrorBody),
        (status = 422, description = "`invalid_event`: the engine's ingest log refused the batch as a whole, with `field` (the default log never does: refused elements are reported in the `200` body).", body = ErrorBody),
        (status = 500, description = "The engine's ingest log failed to append.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), `ingest_log_pending`, or `ingest_log_unavailable` (the durable log, e.g. Redis, cannot append now: nothing is known to be appended; retry the batch, event ids make the retry safe).", body = ErrorBody),
    ),
)]
pub(crate) async fn ingest(State(api): State<Api>, JsonBody(body): JsonBody) -> Answer {
    let report = api.engine.submit_json(&body).await?;
    Ok(json_value(StatusCode::OK, &report))
}

/// Create a dashboard.
///
/// The document is validated as a whole (every broken rule is listed in `violations`)
/// and stored before it is visible.
#[utoipa::path(
    post,
    path = "/dashboards",
    tag = "dashboards",
    request_body(content = DashboardDocSchema, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 201, description = "Created; the stored document.", body = DashboardDocSchema,
            headers(("Location" = String, description = "`/dashboards/{id}` of the new dashboard."))),
        (status = 400, description = "`malformed_json` (with `position`), `wrong_shape` (not an object) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the writer may not change this dashboard.", body = ErrorBody),
        (status = 409, description = "`dashboard_exists`: a dashboard with this id exists; replace it with `PUT /dashboards/{id}`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_dashboard`: a field of the wrong type, an unknown field, or broken rules, each in `violations`.", body = ErrorBody),
        (status = 500, description = "`store_failed`: the dashboard store could not write the document.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), or `shutting_down`: the server is shutting down; retry on another node.", body = ErrorBody),
    ),
)]
pub(crate) async fn create_dashboard(
    State(api): State<Api>,
    writer: Writer,
    JsonBody(body): JsonBody,
) -> Answer {
    let doc = DashboardDoc::from_json(&body)?;
    may_change(&writer, doc.id())?;
    let doc = api.change(|dashboards| dashboards.create(doc)).await?;
    let mut r = doc_response(StatusCode::CREATED, &doc);
    if let Ok(loc) = HeaderValue::from_str(&format!("/dashboards/{}", doc.id())) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// List the dashboards the caller may see.
#[utoipa::path(
    get,
    path = "/dashboards",
    tag = "dashboards",
    params(TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The documents the token's principal may see, ordered by id.", body = DashboardList),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn list_dashboards(
    State(api): State<Api>,
    Extension(reader): Extension<Principal>,
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

/// Get a dashboard document.
#[utoipa::path(
    get,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(DashboardIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The document.", body = DashboardDocSchema),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn get_dashboard(State(api): State<Api>, Params(id): Params<String>) -> Answer {
    let doc = api.dashboard(&id)?;
    Ok(doc_response(StatusCode::OK, &doc))
}

/// Create or replace a dashboard.
///
/// The document's `id` must be the one in the path. Replacing keeps the widgets' live
/// values where the widget is unchanged.
#[utoipa::path(
    put,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(DashboardIdParam),
    request_body(content = DashboardDocSchema, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Replaced; the stored document.", body = DashboardDocSchema),
        (status = 201, description = "Created; the stored document.", body = DashboardDocSchema),
        (status = 400, description = "`malformed_json` (with `position`), `wrong_shape` (not an object) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the writer may not change this dashboard.", body = ErrorBody),
        (status = 404, description = "`not_found`: the id in the path is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_dashboard`: a field of the wrong type, an unknown field, an `id` other than the path's, or broken rules, each in `violations`.", body = ErrorBody),
        (status = 500, description = "`store_failed`: the dashboard store could not write the document.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), or `shutting_down`: the server is shutting down; retry on another node.", body = ErrorBody),
    ),
)]
pub(crate) async fn put_dashboard(
    State(api): State<Api>,
    Params(id): Params<String>,
    writer: Writer,
    JsonBody(body): JsonBody,
) -> Answer {
    may_change(&writer, &id)?;
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

/// Delete a dashboard.
///
/// Its subscribers get a `dashboard` frame with `"event": "deleted"`.
#[utoipa::path(
    delete,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(DashboardIdParam),
    security(("bearer" = []), ()),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the writer may not change this dashboard.", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 500, description = "`store_failed`: the dashboard store could not remove the document.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), or `shutting_down`: the server is shutting down; retry on another node.", body = ErrorBody),
    ),
)]
pub(crate) async fn delete_dashboard(
    State(api): State<Api>,
    Params(id): Params<String>,
    writer: Writer,
) -> Answer {
    may_change(&writer, &id)?;
    api.change(move |dashboards| dashboards.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Add, replace and remove widgets of a dashboard at once.
///
/// The result is validated as a whole; nothing changes unless all of it is valid.
#[utoipa::path(
    patch,
    path = "/dashboards/{id}/widgets",
    tag = "dashboards",
    params(DashboardIdParam),
    request_body(content = WidgetPatchSchema, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The updated document.", body = DashboardDocSchema),
        (status = 400, description = "`malformed_json` (with `position`), `wrong_shape` (not an object) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the writer may not change this dashboard.", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`; `unknown_widget` for an id in `update` or `remove` that the dashboard does not have; `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_widget`: a field of the wrong type or an unknown field, or a result that breaks rules, each in `violations`.", body = ErrorBody),
        (status = 500, description = "`store_failed`: the dashboard store could not write the document.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), or `shutting_down`: the server is shutting down; retry on another node.", body = ErrorBody),
    ),
)]
pub(crate) async fn patch_widgets(
    State(api): State<Api>,
    Params(id): Params<String>,
    writer: Writer,
    JsonBody(body): JsonBody,
) -> Answer {
    may_change(&writer, &id)?;
    api.dashboard(&id)?;
    let patch = WidgetPatch::from_json(&body)?;
    let doc = api
        .change(move |dashboards| dashboards.patch_widgets(&id, &patch))
        .await?;
    Ok(doc_response(StatusCode::OK, &doc))
}

/// The current value of one widget.
///
/// Computed now from the window store (not the last published value).
#[utoipa::path(
    get,
    path = "/dashboards/{id}/widgets/{widget_id}/snapshot",
    tag = "dashboards",
    params(DashboardIdParam, WidgetIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The widget's value now.", body = WidgetState),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, `unknown_widget` (also for a widget id that is not a UUID), or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later. `not_owned`: in a cluster with a partitioned log, another node aggregates the widget's metric (subscribe to the dashboard for its value).", body = ErrorBody),
    ),
)]
pub(crate) async fn widget_snapshot(
    State(api): State<Api>,
    Params((id, widget)): Params<(String, String)>,
) -> Answer {
    let widget = Uuid::parse_str(&widget).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_widget",
            format!("dashboard `{id}` has no widget `{widget}` (widget ids are UUIDs)"),
        )
    })?;
    let state = api.engine.widget_value(&id, widget)?;
    Ok(json_value(StatusCode::OK, &state))
}

/// The history parameters of a query string (`from`, `to`, `range`, `step`; other
/// parameters, such as `token`, are left to others), as a request at `now`.
fn history_request(query: Option<&str>) -> Result<crate::history::HistoryRequest, ApiError> {
    let mut params = crate::history_wire::HistoryParams::default();
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.set_text(name, value)?;
    }
    Ok(params.request(crate::Timestamp::now())?)
}

/// A widget id from a path, or the `404` of an unknown widget.
fn widget_id(dashboard: &str, widget: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(widget).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_widget",
            format!("dashboard `{dashboard}` has no widget `{widget}` (widget ids are UUIDs)"),
        )
    })
}

/// The history of one widget: its value at past times, one point per step.
///
/// Each point is the widget's aggregation over its window ending at the point's time,
/// exactly as the live value was computed, so a page draws the history and then appends
/// the live `update` items whose `window_end` is after the last point's time. Points are
/// compact arrays `[time, value, count]` (`value` is `null` for an average, minimum, maximum
/// or percentile over no event), with a fourth element `start` when the window does not
/// start at `time - window_ms` (data kept at a coarser width): the point covers
/// `[start, time)`. Times are unix milliseconds. Without `step` the server chooses one
/// (at most 300 points: one per bucket for 5 min, per minute for an hour, per 5 min for
/// a day); an explicit step must be a multiple of the bucket width and give at most
/// 2,000 points.
#[utoipa::path(
    get,
    path = "/dashboards/{id}/widgets/{widget_id}/history",
    tag = "dashboards",
    params(DashboardIdParam, WidgetIdParam, HistoryParamsDoc, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The widget's history.", body = HistorySchema),
        (status = 400, description = "`invalid_history_request`, with `field` naming the parameter at fault: not a whole number (`from`, `to`, `range`, `step`), an empty range (`to`, when `from` is not before `to`), a range over 400 days (`from`), `from` and `range` both given (`range`), a step that is not positive, not a multiple of the bucket width or gives more than 2,000 points (`step`).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, `unknown_widget` (also for a widget id that is not a UUID), or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now. `not_owned`: another node aggregates the widget's metric. `history_unavailable`: this node keeps no history (an edge node) or the history archive is unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn widget_history(
    State(api): State<Api>,
    Params((id, widget)): Params<(String, String)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let req = history_request(query.as_deref())?;
    let widget = widget_id(&id, &widget)?;
    let h = api.engine.history(&id, widget, req).await?;
    Ok(json_text(
        StatusCode::OK,
        crate::history_wire::encode_history(&h, None),
    ))
}

/// The histories of every widget of a dashboard, in one answer.
///
/// The same parameters and points as `GET /dashboards/{id}/widgets/{widget_id}/history`,
/// for every widget at once (what a page needs when it opens): `widgets` holds one history
/// per widget that has one; `errors` names each widget that has none and why (e.g.
/// `not_owned` in a cluster).
#[utoipa::path(
    get,
    path = "/dashboards/{id}/history",
    tag = "dashboards",
    params(DashboardIdParam, HistoryParamsDoc, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Every widget's history.", body = DashboardHistorySchema),
        (status = 400, description = "`invalid_history_request`, with `field` naming the parameter at fault (see the widget's history).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn dashboard_history(
    State(api): State<Api>,
    Params(id): Params<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let req = history_request(query.as_deref())?;
    let all = api.engine.dashboard_history(&id, req).await?;
    Ok(json_text(
        StatusCode::OK,
        crate::history_wire::encode_dashboard_history(&id, &req, &all, None),
    ))
}

/// The query parameters of a history.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the parameters; `history_request` reads them.
pub(crate) struct HistoryParamsDoc {
    /// Start of the range, exclusive, in unix milliseconds. Default: `to - range`.
    #[param(example = 1_700_000_000_000_i64)]
    from: Option<i64>,
    /// End of the range, inclusive, in unix milliseconds. Default: now.
    #[param(example = 1_700_000_300_000_i64)]
    to: Option<i64>,
    /// The range's length before `to` in milliseconds, instead of `from`. Default 300000
    /// (5 min).
    #[param(example = 3_600_000)]
    range: Option<i64>,
    /// Milliseconds between points: a multiple of the bucket width, at most 2,000 points.
    /// Default: chosen by the server (at most 300 points).
    #[param(example = 60_000)]
    step: Option<i64>,
}

/// The alerts of a dashboard: its history and those firing now.
#[utoipa::path(
    get,
    path = "/dashboards/{id}/alerts",
    tag = "alerts",
    params(DashboardIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The dashboard's alerts.", body = AlertList),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn alerts(State(api): State<Api>, Params(id): Params<String>) -> Answer {
    api.dashboard(&id)?;
    let mut alerts: Vec<_> = api
        .engine
        .alerts()
        .into_iter()
        .filter(|a| a.dashboard_id == id)
        .collect();
    alerts.reverse();
    let firing: Vec<_> = api
        .engine
        .firing_alerts()
        .into_iter()
        .filter(|a| a.dashboard_id == id)
        .collect();
    Ok(json_value(StatusCode::OK, &AlertList { alerts, firing }))
}

/// The alert history of a dashboard: one record per time a rule fired, newest first.
///
/// Each record holds the rule (name, severity, condition, threshold), the value that
/// crossed, when it started and ended (open while `ended_at` is `null`), its duration and
/// the outcome of each webhook notification. Records are kept in the dashboard store, so
/// they survive a restart (with a file or PostgreSQL store). Page with `before`: pass the
/// `next` of one answer to get the older records after it.
#[utoipa::path(
    get,
    path = "/dashboards/{id}/alert-history",
    tag = "alerts",
    params(DashboardIdParam, AlertHistoryParams, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "One page of records, newest first, and `next` (null on the last page).", body = AlertHistoryPage),
        (status = 400, description = "`invalid_alert_history_query`: a parameter that does not parse or is out of range; `field` names it.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn alert_history(
    State(api): State<Api>,
    Params(id): Params<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let q = alert_history_query(query.as_deref())?;
    let page = api.engine.alert_history(&id, &q)?;
    Ok(json_value(StatusCode::OK, &page))
}

/// The query parameters of an alert history page (others, such as `token`, are left to
/// others).
fn alert_history_query(query: Option<&str>) -> Result<AlertHistoryQuery, Error> {
    fn bad(field: &'static str, reason: String) -> Error {
        Error::InvalidAlertHistoryQuery { field, reason }
    }
    let mut q = AlertHistoryQuery::default();
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "rule" => {
                q.rule =
                    Some(Uuid::parse_str(value).map_err(|_| {
                        bad("rule", format!("{value:?} is not a rule id (a UUID)"))
                    })?);
            }
            "state" => {
                q.state = Some(match value {
                    "firing" => AlertState::Firing,
                    "resolved" => AlertState::Resolved,
                    _ => {
                        return Err(bad(
                            "state",
                            format!("{value:?} is not `firing` or `resolved`"),
                        ));
                    }
                });
            }
            "severity" => {
                q.severity = Some(AlertSeverity::parse(value).ok_or_else(|| {
                    bad(
                        "severity",
                        format!("{value:?} is not `info`, `warning` or `critical`"),
                    )
                })?);
            }
            "from" | "to" => {
                let ms: i64 = value.parse().map_err(|_| {
                    bad(
                        if name == "from" { "from" } else { "to" },
                        format!("{value:?} is not a time in unix milliseconds"),
                    )
                })?;
                let t = Some(crate::Timestamp::from_millis(ms));
                if name == "from" {
                    q.from = t;
                } else {
                    q.to = t;
                }
            }
            "limit" => {
                q.limit = value.parse().map_err(|_| {
                    bad(
                        "limit",
                        format!(
                            "{value:?} is not a number of records from 1 to {}",
                            crate::alert_history::MAX_ALERT_HISTORY_PAGE
                        ),
                    )
                })?;
            }
            "before" => {
                q.before = Some(value.parse().map_err(|_| {
                    bad(
                        "before",
                        format!("{value:?} is not a record number (the `next` of a page)"),
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The query parameters of an alert history page.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the parameters; `alert_history_query` reads them.
pub(crate) struct AlertHistoryParams {
    /// Only this rule's records (a rule id).
    rule: Option<Uuid>,
    /// `firing`: only records still open; `resolved`: only ended ones.
    #[param(pattern = "^(firing|resolved)$")]
    state: Option<String>,
    /// Only records of this severity: `info`, `warning` or `critical`.
    #[param(pattern = "^(info|warning|critical)$")]
    severity: Option<String>,
    /// Only records firing at or after this time (unix ms): ended at or after it, or open.
    #[param(example = 1_700_000_000_000_i64)]
    from: Option<i64>,
    /// Only records that started before this time (unix ms); at least `from`.
    #[param(example = 1_700_000_300_000_i64)]
    to: Option<i64>,
    /// How many records at most: 1 to 200. Default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Only records older than this: the `next` of the previous page.
    #[param(minimum = 0)]
    before: Option<u64>,
}

/// `Ok` if `reader` may see every dashboard, else the `403` naming one it may not: what
/// the routes that span dashboards (metrics, the catalog, previews) need.
fn sees_every_dashboard(api: &Api, reader: &Principal) -> Result<(), ApiError> {
    if let Some(hidden) = api
        .engine
        .dashboards()
        .list()
        .iter()
        .find(|d| !reader.may_see(d.id()))
    {
        check_scope(reader, hidden.id(), "see")?;
    }
    Ok(())
}

/// The metrics the server has seen, for an editor's pickers.
///
/// Each metric with its number of series and its tag keys with their values, sorted. At
/// most 1,000 metrics, 32 tag keys per metric and 64 values per key; `truncated` says
/// when something was left out. In a cluster with a partitioned log, the metrics of the
/// partitions this node owns. The names span every dashboard, so only a principal that may
/// see all of them may read it.
#[utoipa::path(
    get,
    path = "/catalog",
    tag = "dashboards",
    params(TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The metrics seen.", body = Catalog),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see every dashboard.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn catalog(
    State(api): State<Api>,
    Extension(reader): Extension<Principal>,
) -> Answer {
    sees_every_dashboard(&api, &reader)?;
    Ok(json_value(StatusCode::OK, &api.engine.catalog()))
}

/// The value a widget would have now, before it is saved.
///
/// The body is one widget, as in a dashboard's `widgets` (`widget_id` and `dashboard_id`
/// may be omitted). It is validated as when it is added to a dashboard (without the rules
/// that need the dashboard: grid width and overlaps), and its value is computed now from
/// the window store, exactly as a saved widget's would be. It is guarded as the writes are
/// (it is part of editing): where the router requires writers, it needs a writer's token.
/// (On a server with open writes anyone could save a dashboard over any metric, so a
/// preview reveals nothing more.)
#[utoipa::path(
    post,
    path = "/preview",
    tag = "dashboards",
    request_body(content = WidgetSchema, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The widget's value now.", body = WidgetState),
        (status = 400, description = "`malformed_json` (with `position`), `wrong_shape` (not an object) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_widget`: a field of the wrong type, an unknown field, or broken rules, each in `violations` (paths relative to the widget, e.g. `window_seconds`).", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator cannot answer now), or `not_owned`: in a cluster with a partitioned log, another node aggregates the metric.", body = ErrorBody),
    ),
)]
pub(crate) async fn preview(State(api): State<Api>, JsonBody(body): JsonBody) -> Answer {
    let widget = crate::doc::widget_from_json(&body)?;
    let state = api.engine.preview(&widget)?;
    Ok(json_value(StatusCode::OK, &state))
}

/// `{"alert_rules": [rule, …]}` of `doc`.
fn alert_rules_response(doc: &DashboardDoc) -> Response {
    let rules = AlertRuleList {
        alert_rules: doc.alert_rules.clone(),
    };
    json_value(StatusCode::OK, &rules)
}

/// The alert rules of a dashboard.
#[utoipa::path(
    get,
    path = "/dashboards/{id}/alert-rules",
    tag = "alerts",
    params(DashboardIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The dashboard's rules.", body = AlertRuleList),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see this dashboard (checked before the dashboard is looked up).", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn get_alert_rules(State(api): State<Api>, Params(id): Params<String>) -> Answer {
    let doc = api.dashboard(&id)?;
    Ok(alert_rules_response(&doc))
}

/// Replace the alert rules of a dashboard.
///
/// The rules are validated with the dashboard (each on a widget of it, unique ids, a
/// finite threshold, `for_seconds` within 0 to 86,400).
#[utoipa::path(
    put,
    path = "/dashboards/{id}/alert-rules",
    tag = "alerts",
    params(DashboardIdParam),
    request_body(content = AlertRulesInput, content_type = "application/json"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The dashboard's rules now.", body = AlertRuleList),
        (status = 400, description = "`malformed_json` (with `position`) or `bad_request` (the body could not be read).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the router requires writers (`RequireWriters`) and the `Authorization: Bearer` token is missing or refused.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the writer may not change this dashboard.", body = ErrorBody),
        (status = 404, description = "`unknown_dashboard`, or `not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the server's limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the `Content-Type` is not JSON.", body = ErrorBody),
        (status = 422, description = "`invalid_alert_rule`: not a list of rules (a field of the wrong type or an unknown field), or broken rules, each in `violations` (e.g. `alert_rules[0].webhooks[1]`).", body = ErrorBody),
        (status = 500, description = "`store_failed`: the dashboard store could not write the document.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable` (the writers' authenticator of `RequireWriters` cannot answer now; retry later), or `shutting_down`: the server is shutting down; retry on another node.", body = ErrorBody),
    ),
)]
pub(crate) async fn put_alert_rules(
    State(api): State<Api>,
    Params(id): Params<String>,
    writer: Writer,
    JsonBody(body): JsonBody,
) -> Answer {
    may_change(&writer, &id)?;
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
/// the dashboard of the path. An id that is not a valid dashboard id (which no dashboard
/// can have, so refusing it tells nothing of what exists) is refused as the transport
/// refuses a bad topic, `400 bad_request`; a valid id needs no escaping in the query.
fn with_topic(mut req: Request, id: &str) -> Result<Request, ApiError> {
    let refuse = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    if let Err(e) = rtdash_core::DashboardId::new(id) {
        return Err(refuse(e.to_string()));
    }
    let uri = req.uri();
    let pq = match uri.query() {
        Some(q) if !q.is_empty() => format!("{}?{q}&topics={id}", uri.path()),
        _ => format!("{}?topics={id}", uri.path()),
    };
    let uri = pq
        .parse::<Uri>()
        .map_err(|_| refuse("the request URI could not be rewritten".to_owned()))?;
    *req.uri_mut() = uri;
    Ok(req)
}

/// A WebSocket session subscribed to the dashboard.
///
/// Send the WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`,
/// `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`). The token is checked after the
/// upgrade, from `?token=`, `Authorization: Bearer` or the first `hello` message: a
/// refused one closes the socket with code 4001 (`auth_failed`) or 4003 (`forbidden`),
/// so this route never answers `401`. Nothing is looked up before the client has
/// authenticated: an unknown dashboard closes with 4004 (`unknown_topic`) after the 4003
/// check, so ids cannot be probed without a token that may see them, and this route never
/// answers `404` for one. More topics may be named with `?topics=a,b`. The frames are those
/// of the crate documentation's wire protocol.
#[utoipa::path(
    get,
    path = "/stream/{id}",
    tag = "streams",
    params(DashboardIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; the session starts.",
            headers(
                ("Upgrade" = String, description = "`websocket`"),
                ("Connection" = String, description = "`upgrade`"),
                ("Sec-WebSocket-Accept" = String, description = "The handshake's answer key."),
            )),
        (status = 400, description = "`bad_request`: not a WebSocket upgrade request (the message names the missing header), an invalid topic in `?topics=`, or an id that is not a valid dashboard id.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the request's `Origin` is not one the server allows (`TransportConfig::with_allowed_origins`).", body = ErrorBody),
        (status = 404, description = "`not_found` for an id that is not percent-encoded UTF-8.", body = ErrorBody),
        (status = 426, description = "`upgrade_required`: the connection cannot be upgraded (e.g. HTTP/2).", body = ErrorBody),
    ),
)]
pub(crate) async fn stream_ws(
    State(api): State<Api>,
    Params(id): Params<String>,
    req: Request,
) -> Answer {
    Ok(api.transport.ws_upgrade(with_topic(req, &id)?))
}

/// A Server-Sent Events stream of the dashboard's frames.
///
/// The same frames as the WebSocket session, one `message` event each, for
/// `EventSource`. The token comes from `?token=` or `Authorization: Bearer` (a token is
/// required even when the server admits anonymous reads). Snapshot and update events
/// carry an `id`: a reconnecting client sends it back as `Last-Event-ID` (or
/// `?last_event_id=`) and gets only what changed. More topics may be named with
/// `?topics=a,b`. Refusals are HTTP errors before the stream starts, so `EventSource`
/// does not retry them.
#[utoipa::path(
    get,
    path = "/sse/{id}",
    tag = "streams",
    params(DashboardIdParam, TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The event stream; it ends when the server closes the session (a `closing` frame comes first).", body = SseEvent, content_type = "text/event-stream"),
        (status = 400, description = "An id that is not a valid dashboard id, or an invalid or excess topic in `?topics=` (`bad_request`, `too_many_subscriptions`).", body = ErrorBody),
        (status = 401, description = "`auth_failed` (no token, or a token the authenticator refuses) or `token_expired`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see the dashboard (or another topic named).", body = ErrorBody),
        (status = 404, description = "`not_found` for an id that is not percent-encoded UTF-8. An unknown dashboard is told only to a token that may see it, as the stream's `error` event `unknown_topic`.", body = ErrorBody),
        (status = 503, description = "`try_again_later` (too many connections, or the authenticator is unavailable or timed out) or `going_away` (the server is shutting down).", body = ErrorBody),
    ),
)]
pub(crate) async fn stream_sse(
    State(api): State<Api>,
    Params(id): Params<String>,
    req: Request,
) -> Answer {
    Ok(api.transport.sse_response(with_topic(req, &id)?).await)
}

/// The server's metrics, in the Prometheus text format.
///
/// They name every dashboard (subscribers per dashboard), so only a principal that may
/// see all of them may read them.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    params(TokenParam),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: no token (when the server does not admit anonymous reads), or a token the authenticator refuses or that expired.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token's principal may not see every dashboard.", body = ErrorBody),
        (status = 404, description = "`not_found`: the engine's metrics go to the host's recorder (`EngineConfig::metrics` is `MetricsSink::Host`), whose exporter serves them.", body = ErrorBody),
        (status = 503, description = "`auth_unavailable`: the authenticator cannot answer now; retry later.", body = ErrorBody),
    ),
)]
pub(crate) async fn metrics(
    State(api): State<Api>,
    Extension(reader): Extension<Principal>,
) -> Answer {
    sees_every_dashboard(&api, &reader)?;
    let Some(text) = api.engine.render_metrics() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this engine's metrics go to the host's recorder (EngineConfig::metrics): the \
             host's exporter serves them",
        ));
    };
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// The answer to a method a route does not have (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{}` does not take {method}", uri.path()),
    )
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for `{}`", uri.path()),
    )
}

/// The path parameter `{id}`: a dashboard's id.
#[derive(utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)] // Describes the parameter; `Params` reads it.
pub(crate) struct DashboardIdParam(
    /// The dashboard's id (1 to 128 bytes of `A-Z a-z 0-9 _ . -`).
    #[param(example = "ops")]
    String,
);

/// The path parameter `{widget_id}`: a widget's id.
#[derive(utoipa::IntoParams)]
#[into_params(names("widget_id"), parameter_in = Path)]
#[allow(dead_code)] // Describes the parameter; `Params` reads it.
pub(crate) struct WidgetIdParam(
    /// The widget's id, a UUID.
    #[param(example = "0a5e7d3c-0001-4b6e-9a3f-5c2d0e000001")]
    Uuid,
);

/// The query parameter `token`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Describes the parameter; the reader gate and the transport read it.
pub(crate) struct TokenParam {
    /// The caller's token, where `Authorization: Bearer` cannot be sent (browsers'
    /// `EventSource` and WebSocket); the header wins when both are present.
    token: Option<String>,
}
