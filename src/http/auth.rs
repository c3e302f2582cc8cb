//! Authentication of the HTTP routes: every read of dashboard data needs a token of the
//! router's own authenticator (the one its streams use), scoped by the principal's topic
//! access ([`reader_gate`]); [`require_writers`] guards the routes that change state.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rtdash_transport::{AuthError, Authenticator, Principal, bearer_token, request_token};

use super::error::ApiError;
use super::handlers::Api;

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
        Arc::new(writers),
        writer_gate,
    ))
}

/// The principal [`require_writers`] accepted for a request (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct Writer(Principal);

impl Writer {
    /// `Ok` if the writer may change dashboard `id`, else the `403`.
    pub(crate) fn check(&self, id: &str) -> Result<(), ApiError> {
        check_scope(&self.0, id, "change")
    }
}

/// `Ok` if `principal`'s topic access covers dashboard `id`, else the `403` saying it may
/// not `verb` it.
fn check_scope(principal: &Principal, id: &str, verb: &str) -> Result<(), ApiError> {
    if principal.may_see(id) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("`{}` may not {verb} dashboard `{id}`", principal.subject()),
    ))
}

/// The dashboard a `/dashboards/{id}…` path names, as sent (ids need no escaping, so a
/// percent-escaped one matches no grant and is refused).
fn path_dashboard(path: &str) -> Option<&str> {
    path.strip_prefix("/dashboards/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
}

/// `401` with the JSON error body and a `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn writer_gate<A: Authenticator>(
    State(writers): State<Arc<A>>,
    mut req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized("this route changes state: send `Authorization: Bearer <token>`");
    };
    let Some(token) = auth.to_str().ok().and_then(bearer_token) else {
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
    // `POST /dashboards` names the dashboard in the body: `create_dashboard` checks it.
    if let Some(Err(e)) = path_dashboard(req.uri().path()).map(|id| writer.check(id)) {
        return e.into_response();
    }
    req.extensions_mut().insert(writer);
    next.run(req).await
}

/// The principal the router's authenticator accepted for a read (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct Reader(Principal);

impl Reader {
    /// Whether the reader may see dashboard `id`.
    pub(crate) fn may_see(&self, id: &str) -> bool {
        self.0.may_see(id)
    }

    /// `Ok` if the reader may see dashboard `id`, else the `403`.
    pub(crate) fn check(&self, id: &str) -> Result<(), ApiError> {
        check_scope(&self.0, id, "see")
    }
}

/// Guards the reads of dashboard data (`GET`, `HEAD`): the request needs a token the
/// router's authenticator accepts — `Authorization: Bearer <token>` or `?token=` — else
/// `401` (`503` when the authenticator is unavailable), and a dashboard named in the path
/// must be one the principal may see, else `403`, checked before the dashboard is looked
/// up so that ids cannot be probed. Other methods pass to the writer gate, if any.
///
/// With [`AllowAll`](crate::AllowAll), the host's explicit choice of open reads, a request
/// without a token passes.
pub(crate) async fn reader_gate(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = request_token(req.uri().query(), authorization).unwrap_or_default();
    let principal = match api.transport.authenticate(&token).await {
        Ok(p) => p,
        Err(AuthError::Unavailable(m)) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                format!("authentication unavailable, try again later: {m}"),
            )
            .into_response();
        }
        Err(_) if token.is_empty() => {
            return unauthorized(
                "this route reads dashboard data: send `Authorization: Bearer <token>` or `?token=`",
            );
        }
        Err(e) => return unauthorized(&format!("token refused: {e}")),
    };
    let reader = Reader(principal);
    if let Some(Err(e)) = path_dashboard(req.uri().path()).map(|id| reader.check(id)) {
        return e.into_response();
    }
    req.extensions_mut().insert(reader);
    next.run(req).await
}
