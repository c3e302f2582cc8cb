//! Authentication of HTTP routes as tower layers: [`RequireReaders`] guards reads (the
//! router uses it on every read of dashboard data, with the authenticator of its streams),
//! [`RequireWriters`] the routes that change state. Both also guard a host's own routes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use rtdash_fanout::Key;
use rtdash_transport::{
    AuthError, Authenticator, Principal, Transport, bearer_token, request_token,
};
use tower_http::auth::{
    AsyncAuthorizeRequest, AsyncRequireAuthorization, AsyncRequireAuthorizationLayer,
};
use tower_layer::Layer;

use super::error::ApiError;

/// The future of [`RequireReaders`]' and [`RequireWriters`]' check of one request: the
/// request (with the [`Principal`] as an extension) to pass on, or the refusal to answer.
pub type Authorizing<B> =
    Pin<Box<dyn Future<Output = Result<Request<B>, Response<Body>>> + Send + 'static>>;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Checks tokens: an [`Authenticator`] or a transport's, behind one object-safe type.
trait CheckToken: Send + Sync + 'static {
    fn check<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>>;
}

/// Tokens checked by an [`Authenticator`].
struct ByAuthenticator<A>(A);

impl<A: Authenticator> CheckToken for ByAuthenticator<A> {
    fn check<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(self.0.authenticate(token))
    }
}

/// Tokens checked by a transport's authenticator (the one its streams use).
struct ByTransport<K: Key>(Transport<K>);

impl<K: Key> CheckToken for ByTransport<K> {
    fn check<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(self.0.authenticate(token))
    }
}

/// The authenticator of a layer, shared by its clones.
#[derive(Clone)]
struct Tokens(Arc<dyn CheckToken>);

impl Tokens {
    /// The principal of `token`, or why not ([`AuthError::Expired`] past its expiry).
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let principal = self.0.check(token).await?;
        if principal
            .expires_at()
            .is_some_and(|at| at <= SystemTime::now())
        {
            return Err(AuthError::Expired);
        }
        Ok(principal)
    }
}

/// Guards reads (`GET`, `HEAD`) with a token that `authenticator` accepts, as a tower
/// [`Layer`] for `.layer()` or `.route_layer()` of any axum `Router<S>` (or any tower
/// service answering `Response<axum::body::Body>`).
///
/// A read needs the token as `Authorization: Bearer <token>` or `?token=`; without one, or
/// with one the authenticator refuses or that has expired, it is answered `401` with
/// `WWW-Authenticate: Bearer`, and `503` when the authenticator is
/// [`Unavailable`](AuthError::Unavailable). A request whose path (as the layer sees it:
/// inside a nested router, without the prefix) is `/dashboards/{id}…` with a dashboard the
/// principal may not see is answered `403` before any handler runs, so ids cannot be
/// probed. An admitted request carries the [`Principal`] as a request extension: a handler
/// reads it with `Extension<Principal>`. Other methods pass untouched (see
/// [`RequireWriters`]). With [`AllowAll`](crate::AllowAll), the explicit choice of open
/// reads, a request without a token passes (as `anonymous`).
///
/// Refusals have the API's error body `{"error": {"code", "message"}}`, with `code`
/// `unauthorized`, `forbidden` or `auth_unavailable`.
///
/// [`router`](super::router) guards its reads with this layer and its streams'
/// authenticator ([`for_transport`](Self::for_transport)).
///
/// # Examples
///
/// A host route that needs a reader's token, and sees who it is:
///
/// ```
/// use axum::routing::get;
/// use axum::{Extension, Router};
/// use rtdash::http::RequireReaders;
/// use rtdash::transport::{Principal, StaticTokens, TopicAccess};
///
/// let readers =
///     StaticTokens::new().with_token("t0ken", Principal::new("alice", TopicAccess::all()));
/// let app: Router = Router::new()
///     .route(
///         "/mine",
///         get(|Extension(who): Extension<Principal>| async move { who.subject().to_owned() }),
///     )
///     .route_layer(RequireReaders::new(readers));
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireReaders {
    tokens: Tokens,
}

impl RequireReaders {
    /// Reads need a token that `authenticator` accepts.
    pub fn new(authenticator: impl Authenticator) -> Self {
        Self {
            tokens: Tokens(Arc::new(ByAuthenticator(authenticator))),
        }
    }

    /// Reads need a token that `transport`'s authenticator accepts: the tokens its streams
    /// take (e.g. [`Routes::transport`](super::Routes::transport)).
    pub fn for_transport<K: Key>(transport: &Transport<K>) -> Self {
        Self {
            tokens: Tokens(Arc::new(ByTransport(transport.clone()))),
        }
    }
}

impl fmt::Debug for RequireReaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireReaders").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RequireReaders {
    type Service = AsyncRequireAuthorization<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        AsyncRequireAuthorizationLayer::new(self.clone()).layer(inner)
    }
}

impl<B: Send + 'static> AsyncAuthorizeRequest<B> for RequireReaders {
    type RequestBody = B;
    type ResponseBody = Body;
    type Future = Authorizing<B>;

    fn authorize(&mut self, request: Request<B>) -> Self::Future {
        Box::pin(admit_reader(self.tokens.clone(), request))
    }
}

/// Guards the requests that change state (every method but `GET`, `HEAD` and `OPTIONS`)
/// with `Authorization: Bearer <token>` of `authenticator`, as a tower [`Layer`] for
/// `.layer()` or `.route_layer()` of any axum `Router<S>` (or any tower service answering
/// `Response<axum::body::Body>`).
///
/// Without the header, with another scheme, or with a token the authenticator refuses or
/// that has expired, the request is answered `401` with `WWW-Authenticate: Bearer` and
/// nothing changes; when the authenticator cannot answer
/// ([`Unavailable`](AuthError::Unavailable)), `503` `auth_unavailable` (retry later), as
/// for readers. A request whose path (as the layer sees it: inside a nested router,
/// without the prefix) is `/dashboards/{id}…` with a dashboard the principal may not see is
/// answered `403` before any handler runs. An admitted request carries the [`Principal`] as
/// a request extension (`Extension<Principal>`); rtdash's own handlers scope every change
/// by it (a writer may create, replace, delete or edit only the dashboards its principal
/// may see, wherever the layer is applied), and any writer may `POST /ingest`. `GET`,
/// `HEAD` and `OPTIONS` pass untouched: [`router`](super::router)'s streams and reads check
/// the tokens of its own authenticator.
///
/// Give it an authenticator of writers only (e.g. `StaticTokens` of admin tokens, or a
/// `JwtAuthenticator` with its own key), not the one viewers' tokens pass. Refusals have
/// the API's error body `{"error": {"code", "message"}}` (`unauthorized`, `forbidden`,
/// `auth_unavailable`).
///
/// # Examples
///
/// ```no_run
/// use rtdash::http::RequireWriters;
/// use rtdash::transport::{Principal, StaticTokens, TopicAccess};
/// use rtdash::{AllowAll, Engine, EngineConfig, MemoryStore, TransportConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::new(EngineConfig::default(), MemoryStore::new())?;
/// let writers =
///     StaticTokens::new().with_token("admin-secret", Principal::new("admin", TopicAccess::all()));
/// let app: axum::Router = rtdash::http::router(engine.clone(), AllowAll, TransportConfig::default())
///     .layer(RequireWriters::new(writers));
/// axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireWriters {
    tokens: Tokens,
}

impl RequireWriters {
    /// Changes need a bearer token that `authenticator` accepts.
    pub fn new(authenticator: impl Authenticator) -> Self {
        Self {
            tokens: Tokens(Arc::new(ByAuthenticator(authenticator))),
        }
    }
}

impl fmt::Debug for RequireWriters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireWriters").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RequireWriters {
    type Service = AsyncRequireAuthorization<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        AsyncRequireAuthorizationLayer::new(self.clone()).layer(inner)
    }
}

impl<B: Send + 'static> AsyncAuthorizeRequest<B> for RequireWriters {
    type RequestBody = B;
    type ResponseBody = Body;
    type Future = Authorizing<B>;

    fn authorize(&mut self, request: Request<B>) -> Self::Future {
        Box::pin(admit_writer(self.tokens.clone(), request))
    }
}

/// `Ok` if `principal`'s topic access covers dashboard `id`, else the `403` saying it may
/// not `verb` it.
pub(crate) fn check_scope(principal: &Principal, id: &str, verb: &str) -> Result<(), ApiError> {
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
fn unauthorized(message: &str) -> Response<Body> {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The answer to a token the authenticator did not accept: `503` when it could not
/// answer (retry later), else `401`.
fn refused(error: &AuthError) -> Response<Body> {
    match error {
        AuthError::Unavailable(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            format!("authentication unavailable, try again later: {m}"),
        )
        .into_response(),
        AuthError::Expired => unauthorized("the token has expired; obtain a new one"),
        e => unauthorized(&format!("token refused: {e}")),
    }
}

/// [`RequireReaders`]' check of one request.
async fn admit_reader<B>(
    tokens: Tokens,
    mut req: Request<B>,
) -> Result<Request<B>, Response<Body>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(req);
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = request_token(req.uri().query(), authorization).unwrap_or_default();
    let principal = match tokens.authenticate(&token).await {
        Ok(p) => p,
        Err(e @ AuthError::Unavailable(_)) => return Err(refused(&e)),
        Err(_) if token.is_empty() => {
            return Err(unauthorized(
                "this route needs a token: send `Authorization: Bearer <token>` or `?token=`",
            ));
        }
        Err(e) => return Err(refused(&e)),
    };
    if let Some(id) = path_dashboard(req.uri().path()) {
        check_scope(&principal, id, "see").map_err(IntoResponse::into_response)?;
    }
    req.extensions_mut().insert(principal);
    Ok(req)
}

/// [`RequireWriters`]' check of one request.
async fn admit_writer<B>(
    tokens: Tokens,
    mut req: Request<B>,
) -> Result<Request<B>, Response<Body>> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(req);
    }
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "this route changes state: send `Authorization: Bearer <token>`",
        ));
    };
    let Some(token) = auth.to_str().ok().and_then(bearer_token).map(str::to_owned) else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    };
    let principal = tokens.authenticate(&token).await.map_err(|e| refused(&e))?;
    // `POST /dashboards` names the dashboard in the body: the handler checks it.
    if let Some(id) = path_dashboard(req.uri().path()) {
        check_scope(&principal, id, "change").map_err(IntoResponse::into_response)?;
    }
    req.extensions_mut().insert(principal);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::path_dashboard;

    #[test]
    fn the_dashboard_of_a_path() {
        assert_eq!(path_dashboard("/dashboards/ops"), Some("ops"));
        assert_eq!(path_dashboard("/dashboards/ops/widgets"), Some("ops"));
        assert_eq!(path_dashboard("/dashboards/%6Fps"), Some("%6Fps"));
        assert_eq!(path_dashboard("/dashboards/"), None);
        assert_eq!(path_dashboard("/dashboards"), None);
        assert_eq!(path_dashboard("/rt/dashboards/ops"), None);
    }
}
