//! Issue #12 point 2: `RequireReaders` and `RequireWriters` are tower layers that guard a
//! host's own routes, in `.route_layer()` or `.layer()` of a `Router<S>`, with the router's
//! semantics, and hand the handler the admitted `Principal`.
#![cfg(feature = "http")]

mod common;

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use common::{read_json, serve_app};
use reqwest::{Client, RequestBuilder, StatusCode};
use rtdash::AllowAll;
use rtdash::http::{RequireReaders, RequireWriters};
use rtdash::transport::{AuthError, Authenticator, Principal, StaticTokens, TopicAccess};

/// The host's state.
#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

/// The host's handler: who the layer admitted.
async fn mine(State(s): State<AppState>, Extension(who): Extension<Principal>) -> String {
    format!("{} {}", s.greeting, who.subject())
}

/// Readers `alice` (sees `ops`) and an expired one; writer `bob`. `GET /mine` and
/// `GET /dashboards/{id}` are behind the reader layer (as a route layer), `POST /mine`
/// behind the writer layer (as a layer).
async fn start() -> String {
    let readers = StaticTokens::new()
        .with_token(
            "reader",
            Principal::new("alice", TopicAccess::topics(["ops"])),
        )
        .with_token(
            "expired",
            Principal::new("old", TopicAccess::all())
                .with_expires_at(SystemTime::now() - Duration::from_secs(5)),
        );
    let writers =
        StaticTokens::new().with_token("writer", Principal::new("bob", TopicAccess::all()));
    let app = Router::<AppState>::new()
        .route("/mine", get(mine).post(mine))
        .route("/dashboards/{id}", get(mine))
        .route_layer(RequireReaders::new(readers))
        .layer(RequireWriters::new(writers))
        .with_state(AppState { greeting: "hi" });
    serve_app(app).await
}

/// Status, `WWW-Authenticate`, and the body (the text, or the JSON error's code).
async fn send(req: RequestBuilder) -> (StatusCode, Option<String>, String) {
    let resp = req.send().await.unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status();
    if status.is_success() {
        return (status, challenge, resp.text().await.unwrap());
    }
    let (_, body) = read_json(resp).await;
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, challenge, code)
}

#[tokio::test]
async fn a_host_route_behind_the_reader_layer() {
    let base = start().await;
    let c = Client::new();
    let get = |path: &str| c.get(format!("{base}{path}"));
    // No token, a token of no reader, an expired one: 401 with the challenge.
    for req in [
        get("/mine"),
        get("/mine").bearer_auth("nope"),
        get("/mine").bearer_auth("writer"),
        get("/mine").bearer_auth("expired"),
    ] {
        let (status, challenge, code) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(code, "unauthorized");
    }
    // A reader's token, in the header or the query: the handler sees its principal.
    let (status, _, text) = send(get("/mine").bearer_auth("reader")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "hi alice"));
    let (status, _, text) = send(get("/mine?token=reader")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "hi alice"));
    // A `/dashboards/{id}` path is scoped to the principal's grant, before the handler.
    let (status, _, text) = send(get("/dashboards/ops").bearer_auth("reader")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "hi alice"));
    let (status, _, code) = send(get("/dashboards/billing").bearer_auth("reader")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
}

#[tokio::test]
async fn a_host_route_behind_the_writer_layer() {
    let base = start().await;
    let c = Client::new();
    let post = || c.post(format!("{base}/mine"));
    // No header, another scheme, a reader's token in the query or the header: 401.
    for req in [
        post(),
        post().header("authorization", "Basic d3JpdGVy"),
        c.post(format!("{base}/mine?token=writer")),
        post().bearer_auth("reader"),
    ] {
        let (status, challenge, code) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(code, "unauthorized");
    }
    let (status, _, text) = send(post().bearer_auth("writer")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "hi bob"));
}

/// An authenticator whose backend is down.
struct Down;

impl Authenticator for Down {
    async fn authenticate(&self, _token: &str) -> Result<Principal, AuthError> {
        Err(AuthError::Unavailable(
            "the identity service is down".into(),
        ))
    }
}

#[tokio::test]
async fn an_unavailable_authenticator_is_a_503_and_allow_all_admits_no_token() {
    let app: Router =
        Router::new()
            .route("/down", get(|| async { "never" }))
            .route_layer(RequireReaders::new(Down))
            .merge(
                Router::new()
                    .route("/down-write", post(|| async { "never" }))
                    .route_layer(RequireWriters::new(Down)),
            )
            .merge(
                Router::new()
                    .route(
                        "/open",
                        get(|Extension(who): Extension<Principal>| async move {
                            who.subject().to_owned()
                        }),
                    )
                    .route_layer(RequireReaders::new(AllowAll)),
            );
    let base = serve_app(app).await;
    let c = Client::new();
    let (status, _, code) = send(c.get(format!("{base}/down")).bearer_auth("t")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable")
    );
    // Writers too: the client may retry later, its token was not judged.
    let (status, _, code) = send(c.post(format!("{base}/down-write")).bearer_auth("t")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable")
    );
    let (status, _, text) = send(c.get(format!("{base}/open"))).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "anonymous"));
}
