//! The HTTP API as an axum [`Router`] (feature `http`).
//!
//! | route | does |
//! |---|---|
//! | `POST /ingest` | a JSON batch of events (array, or one object); `200` with an [`IngestReport`](crate::IngestReport) naming every refused element by index |
//! | `POST /dashboards` | create a dashboard ([`DashboardDoc`] JSON); `201`, `409` if the id is taken |
//! | `GET /dashboards` | `{"dashboards": [doc, …]}` |
//! | `GET /dashboards/{id}` | the document |
//! | `PUT /dashboards/{id}` | create (`201`) or replace (`200`) |
//! | `DELETE /dashboards/{id}` | `204` |
//! | `PATCH /dashboards/{id}/widgets` | a [`WidgetPatch`] `{"add", "update", "remove"}`; the updated document |
//! | `GET /dashboards/{id}/widgets/{widget_id}/snapshot` | the widget's current [`WidgetState`](crate::WidgetState) |
//! | `GET /dashboards/{id}/alerts` | `{"alerts": [newest first], "firing": […]}` |
//! | `GET`/`PUT /dashboards/{id}/alert-rules` | the dashboard's [`AlertRule`]s |
//! | `GET /stream/{id}` | WebSocket: a session subscribed to the dashboard (token as `?token=` or `hello`) |
//! | `GET /sse/{id}` | Server-Sent Events: the same frames (token as `?token=` or `Authorization: Bearer`) |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /health` | `{"status": "ok"}` |
//!
//! The routes that change state (`POST`, `PUT`, `PATCH`, `DELETE`) are open unless the
//! router is wrapped with [`require_writers`], which asks them for a bearer token of its
//! own authenticator (`401`), and lets a token change only the dashboards its principal
//! may see (`403`). Reads and the streams are not affected: the streams check their own
//! tokens.
//!
//! Bodies are JSON (`Content-Type: application/json`, else `415`), at most
//! [`EngineConfig::max_body_bytes`](crate::EngineConfig::max_body_bytes) (else `413`).
//! Errors are `{"error": {"code": "…", "message": "…"}}` with the matching status: `400`
//! malformed JSON, `404` unknown dashboard or widget, `409` dashboard exists, `413`, `415`,
//! `422` invalid dashboard/widget/alert rule (with `"violations": [{"path", "message"}]`
//! naming each field) or invalid single event. The frames on the streams are described in
//! the crate documentation.

// Helpers return a ready error `Response` by value: it is built once, on the error path.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use rtdash_core::Uuid;
use rtdash_transport::{Authenticator, Principal, Transport, TransportConfig};
use serde_json::{Value, json};

use crate::{AlertRule, DashboardDoc, Engine, Error, WidgetKey, WidgetPatch};

/// The HTTP API of `engine` (see the [module documentation](self) for the routes), with a
/// WebSocket/SSE transport made by [`Engine::transport`] from `authenticator` and
/// `config`.
///
/// Serve it with `axum::serve(listener, router)`; run [`Engine::run`] beside it, and call
/// [`Engine::close_sessions`] on shutdown.
///
/// # Examples
///
/// ```no_run
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let app = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let scheduler = tokio::spawn({
///     let engine = engine.clone();
///     async move { engine.run(std::future::pending()).await }
/// });
/// axum::serve(listener, app).await?;
/// # scheduler.abort();
/// # Ok(()) }
/// ```
pub fn router(
    engine: Engine,
    authenticator: impl Authenticator,
    config: TransportConfig,
) -> Router {
    let transport = engine.transport(authenticator, config);
    router_with_transport(engine, transport)
}

/// Like [`router`], with a transport you made (e.g. to keep a handle on it).
pub fn router_with_transport(engine: Engine, transport: Transport<WidgetKey>) -> Router {
    let limit = engine.config().max_body_bytes;
    let api = Api { engine, transport };
    Router::new()
        .route("/ingest", post(ingest))
        .route("/dashboards", post(create_dashboard).get(list_dashboards))
        .route(
            "/dashboards/{id}",
            get(get_dashboard)
                .put(put_dashboard)
                .delete(delete_dashboard),
        )
        .route("/dashboards/{id}/widgets", patch(patch_widgets))
        .route(
            "/dashboards/{id}/widgets/{widget_id}/snapshot",
            get(widget_snapshot),
        )
        .route("/dashboards/{id}/alerts", get(alerts))
        .route(
            "/dashboards/{id}/alert-rules",
            get(get_alert_rules).put(put_alert_rules),
        )
        .route("/stream/{id}", get(stream_ws))
        .route("/sse/{id}", get(stream_sse))
        .route("/metrics", get(metrics))
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

/// Guards the routes of `router` that change state (`POST`, `PUT`, `PATCH`, `DELETE`):
/// each needs `Authorization: Bearer <token>` that `writers` accepts, else `401` with
/// `WWW-Authenticate: Bearer` and nothing changes. The principal's topic access names the
/// dashboards it may create, replace, delete or edit (else `403`); any writer may
/// `POST /ingest`. `GET` requests and the streams pass untouched (the streams check the
/// tokens of the router's own authenticator).
///
/// Give it an authenticator of writers only (e.g. `StaticTokens` of admin tokens, or a
/// `JwtAuthenticator` with its own key), not the one viewers' tokens pass.
///
/// # Examples
///
/// ```no_run
/// use rtdash::transport::{Principal, StaticTokens, TopicAccess};
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let writers =
///     StaticTokens::new().with_token("admin-secret", Principal::new("admin", TopicAccess::all()));
/// let app = rtdash::http::require_writers(
///     rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default()),
///     writers,
/// );
/// axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
/// # Ok(()) }
/// ```
pub fn require_writers(router: Router, writers: impl Authenticator) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        std::sync::Arc::new(writers),
        writer_gate,
    ))
}

/// The principal [`require_writers`] accepted for a request.
#[derive(Clone)]
struct Writer(Principal);

/// `401` with the JSON error body and a `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> Response {
    let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message, None);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// `403`: the writer may not change dashboard `id`.
fn forbidden(writer: &Writer, id: &str) -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!("`{}` may not change dashboard `{id}`", writer.0.subject()),
        None,
    )
}

async fn writer_gate<A: Authenticator>(
    State(writers): State<std::sync::Arc<A>>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized("this route changes state: send `Authorization: Bearer <token>`");
    };
    let Some(token) = auth
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
    else {
        return unauthorized("the Authorization header must be `Bearer <token>`");
    };
    let principal = match writers.authenticate(token).await {
        Ok(p) => p,
        Err(e) => return unauthorized(&format!("token refused: {e}")),
    };
    if principal
        .expires_at()
        .is_some_and(|at| at <= std::time::SystemTime::now())
    {
        return unauthorized("token expired");
    }
    let writer = Writer(principal);
    // `/dashboards/{id}…`: the dashboard is in the path, checked as sent (ids need no
    // escaping, so a percent-escaped one matches no grant and is refused). `POST
    // /dashboards` names it in the body: `create_dashboard` checks it.
    let path_id = req
        .uri()
        .path()
        .strip_prefix("/dashboards/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    if let Some(id) = path_id
        && !writer.0.may_see(&id)
    {
        return forbidden(&writer, &id);
    }
    req.extensions_mut().insert(writer);
    next.run(req).await
}

#[derive(Clone)]
struct Api {
    engine: Engine,
    transport: Transport<WidgetKey>,
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: Option<(&str, Value)>,
) -> Response {
    let mut err = json!({"code": code, "message": message});
    if let (Some((k, v)), Value::Object(map)) = (extra, &mut err) {
        map.insert(k.to_owned(), v);
    }
    json_response(status, &json!({ "error": err }))
}

/// Maps an engine error to its status and JSON body.
fn error(e: &Error) -> Response {
    let status = match e {
        Error::MalformedJson { .. } | Error::WrongShape { .. } => StatusCode::BAD_REQUEST,
        Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::InvalidEvent { .. } | Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::UnknownDashboard { .. } | Error::UnknownWidget { .. } => StatusCode::NOT_FOUND,
        Error::DashboardExists { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let extra = match e {
        Error::Invalid { violations, .. } => Some((
            "violations",
            violations
                .iter()
                .map(|v| json!({"path": v.path, "message": v.message}))
                .collect(),
        )),
        Error::InvalidEvent { field, .. } => Some(("field", Value::from(field.as_str()))),
        Error::MalformedJson { line, column, .. } => {
            Some(("position", json!({"line": line, "column": column})))
        }
        _ => None,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "request failed");
    }
    error_response(status, e.code(), &e.to_string(), extra)
}

/// Checks the content type and the body of a JSON request.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        let msg = if ct.is_empty() {
            "missing Content-Type; send the body as application/json".to_owned()
        } else {
            format!("Content-Type `{ct}` is not supported; send the body as application/json")
        };
        return Err(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &msg,
            None,
        ));
    }
    body.map_err(|rej| {
        let status = rej.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            error_response(
                status,
                "payload_too_large",
                "the body is larger than the limit (EngineConfig::max_body_bytes); send smaller batches",
                None,
            )
        } else {
            error_response(status, "bad_request", &rej.body_text(), None)
        }
    })
}

async fn ingest(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match api.engine.ingest_json(&body) {
        Ok(report) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&report).unwrap_or(Value::Null),
        ),
        Err(e) => error(&e),
    }
}

fn doc_response(status: StatusCode, doc: &DashboardDoc) -> Response {
    json_text(status, doc.to_json())
}

fn json_text(status: StatusCode, body: String) -> Response {
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

async fn create_dashboard(
    State(api): State<Api>,
    writer: Option<Extension<Writer>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let doc = match DashboardDoc::from_json(&body) {
        Ok(d) => d,
        Err(e) => return error(&e),
    };
    if let Some(Extension(w)) = &writer
        && !w.0.may_see(doc.id())
    {
        return forbidden(w, doc.id());
    }
    let result = api.engine.dashboards().create(doc);
    match result {
        Ok(doc) => {
            let mut r = doc_response(StatusCode::CREATED, &doc);
            if let Ok(loc) = HeaderValue::from_str(&format!("/dashboards/{}", doc.id())) {
                r.headers_mut().insert(header::LOCATION, loc);
            }
            r
        }
        Err(e) => error(&e),
    }
}

async fn list_dashboards(State(api): State<Api>) -> Response {
    let mut body = String::from(r#"{"dashboards":["#);
    for (i, d) in api.engine.dashboards().list().iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&d.to_json());
    }
    body.push_str("]}");
    json_text(StatusCode::OK, body)
}

async fn get_dashboard(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.engine.dashboards().get(&id) {
        Ok(doc) => doc_response(StatusCode::OK, &doc),
        Err(e) => error(&e),
    }
}

async fn put_dashboard(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let doc = match DashboardDoc::from_json(&body) {
        Ok(d) => d,
        Err(e) => return error(&e),
    };
    if doc.id() != id {
        return error(&Error::invalid(
            "dashboard",
            "id",
            format!(
                "is `{}` but the URL names dashboard `{id}`; they must match",
                doc.id()
            ),
        ));
    }
    match api.engine.dashboards().put(doc) {
        Ok((doc, true)) => doc_response(StatusCode::CREATED, &doc),
        Ok((doc, false)) => doc_response(StatusCode::OK, &doc),
        Err(e) => error(&e),
    }
}

async fn delete_dashboard(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.engine.dashboards().delete(&id) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

async fn patch_widgets(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(e) = api.engine.dashboards().get(&id) {
        return error(&e);
    }
    let result =
        WidgetPatch::from_json(&body).and_then(|p| api.engine.dashboards().patch_widgets(&id, &p));
    match result {
        Ok(doc) => doc_response(StatusCode::OK, &doc),
        Err(e) => error(&e),
    }
}

fn parse_widget_id(dashboard: &str, raw: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(raw).map_err(|_| {
        error_response(
            StatusCode::NOT_FOUND,
            "unknown_widget",
            &format!("dashboard `{dashboard}` has no widget `{raw}` (widget ids are UUIDs)"),
            None,
        )
    })
}

async fn widget_snapshot(
    State(api): State<Api>,
    Path((id, widget)): Path<(String, String)>,
) -> Response {
    let widget = match parse_widget_id(&id, &widget) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match api.engine.widget_snapshot(&id, widget) {
        Ok(s) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&s).unwrap_or(Value::Null),
        ),
        Err(e) => error(&e),
    }
}

async fn alerts(State(api): State<Api>, Path(id): Path<String>) -> Response {
    if let Err(e) = api.engine.dashboards().get(&id) {
        return error(&e);
    }
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
    json_response(
        StatusCode::OK,
        &json!({
            "alerts": serde_json::to_value(&history).unwrap_or(Value::Null),
            "firing": serde_json::to_value(&firing).unwrap_or(Value::Null),
        }),
    )
}

async fn get_alert_rules(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.engine.dashboards().get(&id) {
        Ok(doc) => json_response(
            StatusCode::OK,
            &json!({ "alert_rules": serde_json::to_value(&doc.alert_rules).unwrap_or(Value::Null) }),
        ),
        Err(e) => error(&e),
    }
}

async fn put_alert_rules(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(e) = api.engine.dashboards().get(&id) {
        return error(&e);
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(&Error::from_json(&e, "alert rule")),
    };
    // Either `[rule, …]` or `{"alert_rules": [rule, …]}`.
    let list = match value {
        Value::Object(mut m) => m.remove("alert_rules").unwrap_or(Value::Null),
        v => v,
    };
    let rules: Vec<AlertRule> = match serde_json::from_value(list) {
        Ok(r) => r,
        Err(e) => {
            return error(&Error::invalid("alert rule", "alert_rules", e.to_string()));
        }
    };
    match api.engine.dashboards().set_alert_rules(&id, rules) {
        Ok(doc) => json_response(
            StatusCode::OK,
            &json!({ "alert_rules": serde_json::to_value(&doc.alert_rules).unwrap_or(Value::Null) }),
        ),
        Err(e) => error(&e),
    }
}

/// Adds `topics=<id>` to the request's query so the transport subscribes the session to
/// the dashboard of the path.
fn with_topic(mut req: Request, id: &str) -> Result<Request, Response> {
    let uri = req.uri();
    let pq = match uri.query() {
        Some(q) if !q.is_empty() => format!("{}?{q}&topics={id}", uri.path()),
        _ => format!("{}?topics={id}", uri.path()),
    };
    match pq.parse::<Uri>() {
        Ok(u) => {
            *req.uri_mut() = u;
            Ok(req)
        }
        Err(_) => Err(error_response(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request URI could not be rewritten",
            None,
        )),
    }
}

async fn stream_ws(State(api): State<Api>, Path(id): Path<String>, req: Request) -> Response {
    if let Err(e) = api.engine.dashboards().get(&id) {
        return error(&e);
    }
    match with_topic(req, &id) {
        Ok(req) => api.transport.ws_upgrade(req),
        Err(r) => r,
    }
}

async fn stream_sse(State(api): State<Api>, Path(id): Path<String>, req: Request) -> Response {
    if let Err(e) = api.engine.dashboards().get(&id) {
        return error(&e);
    }
    match with_topic(req, &id) {
        Ok(req) => api.transport.sse_response(req).await,
        Err(r) => r,
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        api.engine.render_metrics(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for `{}`", uri.path()),
        None,
    )
}
