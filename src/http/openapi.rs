//! The OpenAPI 3.1 document of the HTTP API, generated from the code: the routes and
//! their responses from the handlers' `#[utoipa::path]` attributes, the bodies from the
//! types' schemas. Served at `GET /openapi.json`; [`openapi_json`] gives it to hosts.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail, Position, Violation};
use super::handlers;
use super::schemas::{
    AlertList, AlertRuleList, AlertRulesInput, ChartTypeSchema, DashboardDocSchema,
    DashboardHistorySchema, DashboardList, DisplayConfigSchema, EventTime, GridPosSchema, Health,
    HistoryErrorSchema, HistorySchema, HistorySeriesSchema, IngestBody, MetricEventSchema,
    SseEvent, ThresholdSchema, WidgetPatchSchema, WidgetSchema,
};
use crate::{
    AlertCondition, AlertEvent, AlertHistoryPage, AlertRecord, AlertRule, AlertSeverity,
    AlertState, Catalog, CatalogMetric, GroupValue, IngestError, IngestReport, NotificationOutcome,
    NotificationRecord, WidgetState,
};

/// The description of the API as a whole (the document's `info.description`).
const DESCRIPTION: &str = "\
Ingest metric events, manage dashboards, widgets and alert rules, and stream every \
widget's live value over WebSocket or Server-Sent Events.

**Reads** (`GET` of dashboards, snapshots, histories, alerts, alert rules and `/metrics`) need a token \
that the server's authenticator accepts, as `Authorization: Bearer <token>` or `?token=`, \
else `401`; a server configured with `AllowAll` admits reads without a token. A dashboard \
in the path must be one the token's principal may see, else `403`. **Changes** (`POST`, \
`PUT`, `PATCH`, `DELETE`) are open unless the server requires writers \
(`rtdash::http::RequireWriters`): then they need `Authorization: Bearer <token>` of a \
writer (`401`) who may change the dashboard (`403`). `GET /health` and \
`GET /openapi.json` are always open.

Request bodies are JSON (`Content-Type: application/json`, else `415`) of at most the \
server's limit (8 MiB by default, else `413`). Every error is \
`{\"error\": {\"code\", \"message\", …}}`, the streams' refusals before they start \
included (with the wire protocol's codes); only inside an open stream are errors the \
protocol's `error` frames. A path that matches no route is a `404` with `code` \
`not_found`.";

/// The document's structure: every route of [`router`](super::router) and the schemas.
#[derive(OpenApi)]
#[openapi(
    info(title = "rtdash HTTP API", description = DESCRIPTION),
    paths(
        handlers::ingest,
        handlers::create_dashboard,
        handlers::list_dashboards,
        handlers::get_dashboard,
        handlers::put_dashboard,
        handlers::delete_dashboard,
        handlers::patch_widgets,
        handlers::widget_snapshot,
        handlers::widget_history,
        handlers::dashboard_history,
        handlers::alerts,
        handlers::alert_history,
        handlers::catalog,
        handlers::preview,
        handlers::get_alert_rules,
        handlers::put_alert_rules,
        handlers::stream_ws,
        handlers::stream_sse,
        handlers::metrics,
        handlers::health,
        handlers::openapi_document,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        Violation,
        Position,
        IngestBody,
        MetricEventSchema,
        EventTime,
        IngestReport,
        IngestError,
        DashboardDocSchema,
        DashboardList,
        WidgetSchema,
        DisplayConfigSchema,
        ChartTypeSchema,
        ThresholdSchema,
        GridPosSchema,
        WidgetPatchSchema,
        WidgetState,
        GroupValue,
        AlertRule,
        AlertCondition,
        AlertRulesInput,
        AlertRuleList,
        AlertEvent,
        AlertState,
        AlertList,
        AlertSeverity,
        AlertHistoryPage,
        AlertRecord,
        NotificationRecord,
        NotificationOutcome,
        Catalog,
        CatalogMetric,
        SseEvent,
        HistorySchema,
        HistorySeriesSchema,
        DashboardHistorySchema,
        HistoryErrorSchema,
        Health,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "ingest", description = "Metric events in."),
        (name = "dashboards", description = "Dashboards, their widgets and the widgets' values."),
        (name = "alerts", description = "Threshold alert rules and the alerts they raised."),
        (name = "streams", description = "Live frames of a dashboard: WebSocket and Server-Sent Events."),
        (name = "operations", description = "Health, metrics and this document."),
    ),
)]
struct ApiDoc;

/// Adds the `bearer` security scheme the operations name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>`: a token of the server's authenticator \
                         (reads, streams) or of its writers' (changes, with `RequireWriters`). \
                         Reads and streams also take it as `?token=`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub(crate) fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        // The document is made of strings, maps and numbers: serializing cannot fail.
        ApiDoc::openapi().to_pretty_json().unwrap_or_default()
    })
}

/// The OpenAPI 3.1 document of [`router`](super::router)'s HTTP API, as JSON: every
/// route, method, parameter, request body, response status and body, and the bearer
/// security scheme. The router serves the same text at `GET /openapi.json`.
///
/// It is generated from the code (the handlers and the types of the bodies), so it
/// changes with the API; use it to generate clients or to test a server against it.
///
/// # Examples
///
/// ```
/// let doc: serde_json::Value = serde_json::from_str(&rtdash::http::openapi_json())?;
/// assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
/// assert!(doc["paths"]["/dashboards/{id}"]["put"].is_object());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn openapi_json() -> String {
    document().to_owned()
}
