//! The HTTP API as an axum [`Router`] (feature `http`).
//!
//! | route | does |
//! |---|---|
//! | `POST /ingest` | a JSON batch of events (array, or one object); `200` with an [`IngestReport`](crate::IngestReport) naming every refused element by index |
//! | `POST /dashboards` | create a dashboard ([`DashboardDoc`](crate::DashboardDoc) JSON); `201`, `409` if the id is taken |
//! | `GET /dashboards` | `{"dashboards": [doc, …]}` |
//! | `GET /dashboards/{id}` | the document |
//! | `PUT /dashboards/{id}` | create (`201`) or replace (`200`) |
//! | `DELETE /dashboards/{id}` | `204` |
//! | `PATCH /dashboards/{id}/widgets` | a [`WidgetPatch`](crate::WidgetPatch) `{"add", "update", "remove"}`; the updated document |
//! | `GET /dashboards/{id}/widgets/{widget_id}/snapshot` | the widget's current [`WidgetState`](crate::WidgetState) |
//! | `GET /dashboards/{id}/alerts` | `{"alerts": [newest first], "firing": […]}` |
//! | `GET`/`PUT /dashboards/{id}/alert-rules` | the dashboard's [`AlertRule`](crate::AlertRule)s |
//! | `GET /stream/{id}` | WebSocket: a session subscribed to the dashboard (token as `?token=` or `hello`) |
//! | `GET /sse/{id}` | Server-Sent Events: the same frames (token as `?token=` or `Authorization: Bearer`) |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /health` | `{"status": "ok"}` |
//! | `GET /openapi.json` | the OpenAPI 3.1 description of these routes ([`openapi_json`]) |
//!
//! **Reads** (`GET` of dashboards, snapshots, alerts, alert rules and `/metrics`) need a
//! token that the router's authenticator — the one its streams use — accepts, as
//! `Authorization: Bearer <token>` or `?token=` (else `401`); a dashboard in the path must
//! be one the principal may see (else `403`, before the dashboard is looked up, so ids
//! cannot be probed); `GET /dashboards` lists only those; `/metrics` needs a principal
//! that may see every dashboard. [`AllowAll`](crate::AllowAll) is the explicit choice of
//! open reads: it admits requests without a token. `GET /health` and `GET /openapi.json`
//! are always open.
//!
//! The routes that change state (`POST`, `PUT`, `PATCH`, `DELETE`) are open unless the
//! router is wrapped with [`require_writers`], which asks them for a bearer token of its
//! own authenticator (`401`), and lets a token change only the dashboards its principal
//! may see (`403`). The streams check their own tokens (`hello` or `?token=`).
//!
//! Bodies are JSON (`Content-Type: application/json`, else `415`), at most
//! [`EngineConfig::max_body_bytes`](crate::EngineConfig::max_body_bytes) (else `413`).
//! Errors are `{"error": {"code": "…", "message": "…"}}` with the matching status: `400`
//! malformed JSON, `404` unknown dashboard or widget (or no such route), `405` a method the
//! route does not take (with `Allow`), `409` dashboard exists, `413`, `415`, `422` invalid
//! dashboard/widget/alert rule (with `"violations": [{"path", "message"}]` naming each
//! field). The streams' own refusals are the wire protocol's error frame. The frames on the
//! streams are described in the crate documentation.
//!
//! `GET /openapi.json` serves the OpenAPI 3.1 document of all this ([`openapi_json`]),
//! generated from the handlers and the types of the bodies: every route, parameter,
//! request body, response status and body.
//!
//! Changes to dashboards are made on tokio's blocking thread pool (the registry writes
//! them to its [`DashboardStore`](crate::DashboardStore), and a
//! [`FileStore`](crate::FileStore) waits for `fsync`), so a slow store holds up none of the
//! runtime's workers: other requests, the streams and the refresh scheduler go on. A
//! change whose client goes away meanwhile is still made.

mod auth;
mod error;
mod handlers;
mod json;
mod openapi;
mod schemas;
mod serve;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use rtdash_transport::{Authenticator, Transport, TransportConfig};

use crate::{Engine, WidgetKey};
use handlers::{
    Api, alerts, create_dashboard, delete_dashboard, get_alert_rules, get_dashboard, health,
    ingest, list_dashboards, method_not_allowed, metrics, not_found, openapi_document,
    patch_widgets, put_alert_rules, put_dashboard, stream_sse, stream_ws, widget_snapshot,
};

pub use auth::require_writers;
pub use openapi::openapi_json;
pub use serve::{ServeConfig, serve};

/// The HTTP API of `engine` (see the [module documentation](self) for the routes), with a
/// WebSocket/SSE transport made by [`Engine::transport`] from `authenticator` and
/// `config`.
///
/// Serve it with [`serve`] (or `axum::serve`, which sets no deadline for headers or bodies);
/// run [`Engine::run`] beside it, and call [`Engine::close_sessions`] on shutdown.
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
    // Every read of dashboard data passes the reader gate.
    let reads = Router::new()
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
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            auth::reader_gate,
        ));
    Router::new()
        .route("/ingest", post(ingest))
        .merge(reads)
        .route("/stream/{id}", get(stream_ws))
        .route("/sse/{id}", get(stream_sse))
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_document))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}
