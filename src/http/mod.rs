//! The HTTP API as an axum [`Router`] (feature `http`).
//!
//! [`router`] mounts every route below; [`Routes`] chooses which (e.g. only the streams
//! and ingest, or no `/metrics` and `/health`). Both give a `Router<S>` for any host state
//! `S`, to nest under a prefix of the host's own router (`.nest("/rt", …)`) beside its
//! routes. [`RequireReaders`] and [`RequireWriters`] are the API's token checks as tower
//! layers, for the host's own routes too; [`serve`] runs a router with the limits a public
//! server needs.
//!
//! | route | group ([`Routes`]) | does |
//! |---|---|---|
//! | `POST /ingest` | ingest | a JSON batch of events (array, or one object); `200` with an [`IngestReport`](crate::IngestReport) naming every refused element by index |
//! | `POST /dashboards` | dashboards | create a dashboard ([`DashboardDoc`](crate::DashboardDoc) JSON); `201`, `409` if the id is taken |
//! | `GET /dashboards` | dashboards | `{"dashboards": [doc, …]}` |
//! | `GET /dashboards/{id}` | dashboards | the document |
//! | `PUT /dashboards/{id}` | dashboards | create (`201`) or replace (`200`) |
//! | `DELETE /dashboards/{id}` | dashboards | `204` |
//! | `PATCH /dashboards/{id}/widgets` | dashboards | a [`WidgetPatch`](crate::WidgetPatch) `{"add", "update", "remove"}`; the updated document |
//! | `GET /dashboards/{id}/widgets/{widget_id}/snapshot` | dashboards | the widget's current [`WidgetState`](crate::WidgetState) |
//! | `GET /dashboards/{id}/widgets/{widget_id}/history` | dashboards | the widget's history: `?from=&to=` (unix ms; default the last 5 min) or `?range=` (ms before `to`), optional `&step=` (ms); points `[time, value, count]` (see `docs/PROTOCOL.md`) |
//! | `GET /dashboards/{id}/history` | dashboards | every widget's history at once (same parameters): `{"widgets": [history, …], "errors": […]}` |
//! | `GET /dashboards/{id}/alerts` | dashboards | `{"alerts": [newest first], "firing": […]}` |
//! | `GET`/`PUT /dashboards/{id}/alert-rules` | dashboards | the dashboard's [`AlertRule`](crate::AlertRule)s |
//! | `GET /stream/{id}` | streams | WebSocket: a session subscribed to the dashboard (token as `?token=` or `hello`) |
//! | `GET /sse/{id}` | streams | Server-Sent Events: the same frames (token as `?token=` or `Authorization: Bearer`) |
//! | `GET /metrics` | metrics | Prometheus text exposition |
//! | `GET /health` | health | `{"status": "ok"}` |
//! | `GET /openapi.json` | openapi | the OpenAPI 3.1 description of these routes ([`openapi_json`]) |
//!
//! **Reads** (`GET` of dashboards, snapshots, histories, alerts, alert rules and `/metrics`) need a
//! token that the router's authenticator — the one its streams use — accepts, as
//! `Authorization: Bearer <token>` or `?token=` (else `401`); a dashboard in the path must
//! be one the principal may see (else `403`, before the dashboard is looked up, so ids
//! cannot be probed); `GET /dashboards` lists only those; `/metrics` needs a principal
//! that may see every dashboard. [`AllowAll`](crate::AllowAll) is the explicit choice of
//! open reads: it admits requests without a token. `GET /health` and `GET /openapi.json`
//! are always open.
//!
//! The routes that change state (`POST`, `PUT`, `PATCH`, `DELETE`) are open unless a
//! [`RequireWriters`] layer guards them (`.layer(RequireWriters::new(writers))`), which asks
//! them for a bearer token of its own authenticator (`401`), and lets a token change only
//! the dashboards its principal may see (`403`). The streams check their own tokens
//! (`hello` or `?token=`).
//!
//! Bodies are JSON (`Content-Type: application/json`, else `415`), at most
//! [`EngineConfig::max_body_bytes`](crate::EngineConfig::max_body_bytes) (else `413`).
//! Errors are `{"error": {"code": "…", "message": "…"}}` with the matching status: `400`
//! malformed JSON, `404` unknown dashboard or widget (or no such route), `405` a method the
//! route does not take (with `Allow`), `409` dashboard exists, `413`, `415`, `422` invalid
//! dashboard/widget/alert rule (with `"violations": [{"path", "message"}]` naming each
//! field). The streams' refusals before they start have the same shape, with the wire
//! protocol's codes (`400 bad_request`, `401 auth_failed`/`token_expired`, `403 forbidden`,
//! `503 try_again_later`/`going_away`, `426 upgrade_required`); inside an open stream,
//! errors are the protocol's `error` frames. The frames on the streams are described in
//! the crate documentation.
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
//!
//! # Examples
//!
//! rtdash under `/rt` beside the host's own routes and state, the host's `/mine` guarded by
//! the same tokens as rtdash's reads:
//!
//! ```no_run
//! use axum::extract::State;
//! use axum::routing::get;
//! use axum::{Extension, Router};
//! use rtdash::http::{RequireReaders, Routes};
//! use rtdash::transport::{Principal, StaticTokens, TopicAccess};
//! use rtdash::{Engine, EngineConfig, MemoryStore, TransportConfig};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     greeting: &'static str,
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
//! let tokens = StaticTokens::new().with_token("t0ken", Principal::new("alice", TopicAccess::all()));
//! let rt = Routes::new(engine.clone(), tokens, TransportConfig::default()).metrics(false);
//! let readers = RequireReaders::for_transport(rt.transport());
//! let app = Router::new()
//!     .route(
//!         "/mine",
//!         get(|State(s): State<AppState>, Extension(who): Extension<Principal>| async move {
//!             format!("{}, {}", s.greeting, who.subject())
//!         }),
//!     )
//!     .route_layer(readers)
//!     .nest("/rt", rt.build())
//!     .with_state(AppState { greeting: "hello" });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

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
    Api, alert_history, alerts, catalog, create_dashboard, dashboard_history, delete_dashboard,
    get_alert_rules, get_dashboard, health, ingest, list_dashboards, method_not_allowed, metrics,
    not_found, openapi_document, patch_widgets, preview, put_alert_rules, put_dashboard,
    stream_sse, stream_ws, widget_history, widget_snapshot,
};

pub use auth::{Authorizing, RequireReaders, RequireWriters};
pub use openapi::openapi_json;
pub use serve::{ServeConfig, serve};

/// The HTTP API of `engine`, every route of the [module documentation](self), with a
/// WebSocket/SSE transport made by [`Engine::transport`] from `authenticator` and
/// `config`: [`Routes::new`] with every group, built.
///
/// The router is a `Router<S>` for any state `S` of the host's: nest it in the host's
/// router (`.nest("/rt", rtdash::http::router(…))`) or serve it alone. Serve it with
/// [`serve`] (or `axum::serve`, which sets no deadline for headers or bodies); start the
/// engine's scheduler with [`Engine::spawn`] beside it, and call
/// [`EngineTask::shutdown`](crate::EngineTask::shutdown) when the server stops (it closes
/// the streams with 1001).
///
/// # Examples
///
/// ```no_run
/// use rtdash::http::{ServeConfig, serve};
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let app: axum::Router = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let task = engine.spawn();
/// serve(listener, app, ServeConfig::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await;
/// task.shutdown().await;
/// # Ok(()) }
/// ```
pub fn router<S: Clone + Send + Sync + 'static>(
    engine: Engine,
    authenticator: impl Authenticator,
    config: TransportConfig,
) -> Router<S> {
    Routes::new(engine, authenticator, config).build()
}

/// Which routes of the HTTP API to mount: a builder of the [`router`], by group (see the
/// table of the [module documentation](self)). Every group is on unless turned off.
///
/// | group | routes |
/// |---|---|
/// | [`streams`](Self::streams) | `GET /stream/{id}` (WebSocket), `GET /sse/{id}` |
/// | [`ingest`](Self::ingest) | `POST /ingest` |
/// | [`dashboards`](Self::dashboards) | `/dashboards…`: the documents, widgets, snapshots, alerts, alert rules |
/// | [`metrics`](Self::metrics) | `GET /metrics` |
/// | [`health`](Self::health) | `GET /health` |
/// | [`openapi`](Self::openapi) | `GET /openapi.json` (it describes every route, mounted or not) |
///
/// Reads keep their token check ([`RequireReaders`] with the transport's authenticator)
/// whichever groups are mounted.
///
/// # Examples
///
/// Only the streams and ingest, nested under `/rt` in a host's router with its own state:
///
/// ```
/// use axum::Router;
/// use axum::extract::State;
/// use axum::routing::get;
/// use rtdash::http::Routes;
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// #[derive(Clone)]
/// struct AppState {
///     name: String,
/// }
///
/// # fn main() -> Result<(), rtdash::Error> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let rt = Routes::new(engine, AllowAll, TransportConfig::default())
///     .dashboards(false)
///     .metrics(false)
///     .health(false)
///     .openapi(false);
/// let app: Router = Router::<AppState>::new()
///     .route("/", get(|State(s): State<AppState>| async move { s.name }))
///     .nest("/rt", rt.build())
///     .with_state(AppState { name: "host".into() });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Routes {
    api: Api,
    streams: bool,
    ingest: bool,
    dashboards: bool,
    metrics: bool,
    health: bool,
    openapi: bool,
    fallback: bool,
}

impl Routes {
    /// Every route of `engine`'s API, with a WebSocket/SSE transport made by
    /// [`Engine::transport`] from `authenticator` (which also checks the reads' tokens) and
    /// `config`.
    pub fn new(engine: Engine, authenticator: impl Authenticator, config: TransportConfig) -> Self {
        let transport = engine.transport(authenticator, config);
        Self::with_transport(engine, transport)
    }

    /// Every route of `engine`'s API, with a transport you made with [`Engine::transport`]
    /// (e.g. to keep a handle on it); its authenticator also checks the reads' tokens.
    pub fn with_transport(engine: Engine, transport: Transport<WidgetKey>) -> Self {
        Self {
            api: Api { engine, transport },
            streams: true,
            ingest: true,
            dashboards: true,
            metrics: true,
            health: true,
            openapi: true,
            fallback: true,
        }
    }

    /// The transport of the streams, whose authenticator checks the reads' tokens (e.g.
    /// for [`RequireReaders::for_transport`] on the host's own routes, or
    /// [`Transport::shutdown`]).
    #[must_use]
    pub fn transport(&self) -> &Transport<WidgetKey> {
        &self.api.transport
    }

    /// Whether to mount `GET /stream/{id}` (WebSocket) and `GET /sse/{id}`. Default on.
    pub fn streams(mut self, on: bool) -> Self {
        self.streams = on;
        self
    }

    /// Whether to mount `POST /ingest`. Default on.
    pub fn ingest(mut self, on: bool) -> Self {
        self.ingest = on;
        self
    }

    /// Whether to mount the `/dashboards…` routes: the documents, their widgets, the
    /// widgets' snapshots, alerts and alert rules. Default on.
    pub fn dashboards(mut self, on: bool) -> Self {
        self.dashboards = on;
        self
    }

    /// Whether to mount `GET /metrics`. Default on. Turn it off to serve
    /// [`Engine::render_metrics`] from a route of the host's.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Whether to mount `GET /health`. Default on.
    pub fn health(mut self, on: bool) -> Self {
        self.health = on;
        self
    }

    /// Whether to mount `GET /openapi.json`. Default on.
    pub fn openapi(mut self, on: bool) -> Self {
        self.openapi = on;
        self
    }

    /// Whether a path that matches no route is answered with the API's JSON `404`
    /// (`not_found`). Default on. Turn it off to `merge` the router into one with a
    /// fallback of its own (axum refuses to merge two fallbacks; a nested router's
    /// fallback only answers paths under its prefix).
    pub fn fallback(mut self, on: bool) -> Self {
        self.fallback = on;
        self
    }

    /// The router of the chosen routes, for any state `S` of the host's.
    pub fn build<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let limit = self.api.engine.config().max_body_bytes;
        let mut app = Router::new();
        if self.ingest {
            app = app.route("/ingest", post(ingest));
        }
        // Every read of dashboard data passes the reader layer, with the streams' tokens.
        let mut reads = Router::new();
        if self.dashboards {
            reads = reads
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
                .route(
                    "/dashboards/{id}/widgets/{widget_id}/history",
                    get(widget_history),
                )
                .route("/dashboards/{id}/history", get(dashboard_history))
                .route("/dashboards/{id}/alerts", get(alerts))
                .route("/dashboards/{id}/alert-history", get(alert_history))
                .route("/catalog", get(catalog))
                .route("/preview", post(preview))
                .route(
                    "/dashboards/{id}/alert-rules",
                    get(get_alert_rules).put(put_alert_rules),
                );
        }
        if self.metrics {
            reads = reads.route("/metrics", get(metrics));
        }
        if self.dashboards || self.metrics {
            // (axum refuses a route layer on a router without routes.)
            app = app.merge(reads.route_layer(RequireReaders::for_transport(&self.api.transport)));
        }
        if self.streams {
            app = app
                .route("/stream/{id}", get(stream_ws))
                .route("/sse/{id}", get(stream_sse));
        }
        if self.health {
            app = app.route("/health", get(health));
        }
        if self.openapi {
            app = app.route("/openapi.json", get(openapi_document));
        }
        app = app.method_not_allowed_fallback(method_not_allowed);
        if self.fallback {
            app = app.fallback(not_found);
        }
        app.layer(DefaultBodyLimit::max(limit)).with_state(self.api)
    }
}
