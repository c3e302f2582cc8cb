//! Authentication: the [`Authenticator`] trait, [`Principal`] and a static
//! token table.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use crate::AuthError;

/// Turns a client's token into a [`Principal`], or refuses it.
///
/// A session calls it exactly once, before any data flows: with the token of
/// the client's `hello` message, or with the token from the URL
/// (`?token=...`) or the `Authorization: Bearer ...` header. A refusal closes
/// the session with the code of [`AuthError::close_code`].
///
/// Implementations may do I/O (ask an identity service); the future must be
/// `Send`. Sessions wait at most `hello_timeout` for hello and token check
/// together.
///
/// # Examples
///
/// ```
/// use rtdash_transport::{AuthError, Authenticator, Principal, TopicAccess};
///
/// struct OnlyAlice;
///
/// impl Authenticator for OnlyAlice {
///     async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
///         if token == "alice-secret" {
///             Ok(Principal::new("alice", TopicAccess::topics(["ops", "sales.*"])))
///         } else {
///             Err(AuthError::Invalid("unknown token".into()))
///         }
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `token` and returns who it belongs to and what it may see.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] saying why the token is refused.
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`Authenticator`] so the transport holds
/// `Arc<dyn DynAuthenticator>` and stays generic only over the hub key.
pub(crate) trait DynAuthenticator: Send + Sync + 'static {
    fn authenticate_boxed<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Principal, AuthError>>;
}

impl<A: Authenticator> DynAuthenticator for A {
    fn authenticate_boxed<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(self.authenticate(token))
    }
}

/// Who a client is, what it may see, and until when.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use rtdash_transport::{Principal, TopicAccess};
///
/// let p = Principal::new("alice", TopicAccess::topics(["ops", "team-a.*"]))
///     .with_expires_at(SystemTime::now() + Duration::from_secs(3600));
/// assert!(p.may_see("ops"));
/// assert!(p.may_see("team-a.latency"));
/// assert!(!p.may_see("payroll"));
/// ```
#[derive(Debug, Clone)]
pub struct Principal {
    subject: String,
    access: TopicAccess,
    expires_at: Option<SystemTime>,
}

impl Principal {
    /// A principal with no expiry.
    #[must_use]
    pub fn new(subject: impl Into<String>, access: TopicAccess) -> Self {
        Self {
            subject: subject.into(),
            access,
            expires_at: None,
        }
    }

    /// Sets when the credential expires: the session is closed with
    /// [`CloseCode::TokenExpired`](crate::CloseCode::TokenExpired) (4009)
    /// at that moment.
    #[must_use]
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The subject (user or service name), sent back in `welcome`.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// When the credential expires, if it does.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// What the principal may subscribe to.
    #[must_use]
    pub fn access(&self) -> &TopicAccess {
        &self.access
    }

    /// Whether the principal may subscribe to `topic`.
    #[must_use]
    pub fn may_see(&self, topic: &str) -> bool {
        self.access.allows(topic)
    }
}

/// The set of topics (dashboards or raw topics) a principal may see.
///
/// Cheap to clone.
///
/// # Examples
///
/// ```
/// use rtdash_transport::TopicAccess;
///
/// let listed = TopicAccess::topics(["ops", "team-a.*"]);
/// assert!(listed.allows("ops") && listed.allows("team-a.latency"));
/// assert!(!listed.allows("team-b.latency"));
///
/// // Or ask the host's own ACL, once per subscribe request.
/// let public = TopicAccess::predicate(|topic| topic.starts_with("public."));
/// assert!(public.allows("public.status") && !public.allows("ops"));
/// assert!(TopicAccess::all().allows("ops") && !TopicAccess::none().allows("ops"));
/// ```
#[derive(Clone)]
pub struct TopicAccess(Access);

#[derive(Clone)]
enum Access {
    All,
    Listed {
        exact: Arc<HashSet<String>>,
        prefixes: Arc<[String]>,
    },
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl TopicAccess {
    /// Every topic.
    #[must_use]
    pub fn all() -> Self {
        Self(Access::All)
    }

    /// No topic at all.
    #[must_use]
    pub fn none() -> Self {
        Self::topics(std::iter::empty::<String>())
    }

    /// The listed topics. An entry ending in `*` allows every topic that
    /// starts with what precedes the `*` (`"team-a.*"`, or `"*"` for all).
    #[must_use]
    pub fn topics<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut exact = HashSet::new();
        let mut prefixes = Vec::new();
        for t in topics {
            let t: String = t.into();
            match t.strip_suffix('*') {
                Some(p) => prefixes.push(p.to_owned()),
                None => {
                    exact.insert(t);
                }
            }
        }
        Self(Access::Listed {
            exact: Arc::new(exact),
            prefixes: prefixes.into(),
        })
    }

    /// Topics for which `allowed` returns true (e.g. a lookup in the host's
    /// dashboard ACL). It is called once per subscribe request.
    #[must_use]
    pub fn predicate(allowed: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(Access::Predicate(Arc::new(allowed)))
    }

    /// Whether `topic` is allowed.
    #[must_use]
    pub fn allows(&self, topic: &str) -> bool {
        match &self.0 {
            Access::All => true,
            Access::Listed { exact, prefixes } => {
                exact.contains(topic) || prefixes.iter().any(|p| topic.starts_with(p.as_str()))
            }
            Access::Predicate(f) => f(topic),
        }
    }
}

impl std::fmt::Debug for TopicAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Access::All => f.write_str("TopicAccess::All"),
            Access::Listed { exact, prefixes } => f
                .debug_struct("TopicAccess::Listed")
                .field("exact", exact)
                .field("prefixes", prefixes)
                .finish(),
            Access::Predicate(_) => f.write_str("TopicAccess::Predicate(..)"),
        }
    }
}

/// An [`Authenticator`] with a fixed table of tokens, for examples, tests
/// and internal tools.
///
/// Lookups are not constant-time; do not use it where tokens may be guessed
/// by timing. Use `JwtAuthenticator` (feature `jwt`) or your own
/// [`Authenticator`] in production.
///
/// # Examples
///
/// ```
/// use rtdash_transport::{Principal, StaticTokens, TopicAccess};
///
/// let auth = StaticTokens::new()
///     .with_token("t-alice", Principal::new("alice", TopicAccess::all()))
///     .with_token("t-bob", Principal::new("bob", TopicAccess::topics(["sales"])));
/// assert_eq!(auth.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, Principal>,
}

impl StaticTokens {
    /// An empty table (refuses everything).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>, principal: Principal) -> Self {
        self.tokens.insert(token.into(), principal);
        self
    }

    /// Number of tokens.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Authenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let p = self
            .tokens
            .get(token)
            .ok_or_else(|| AuthError::Invalid("unknown token".to_owned()))?;
        match p.expires_at {
            Some(at) if at <= SystemTime::now() => Err(AuthError::Expired),
            _ => Ok(p.clone()),
        }
    }
}

/// The token of an `Authorization` header value `Bearer <token>`: the scheme in any
/// case, spaces around the token ignored. `None` for another scheme or an empty token.
///
/// The transport takes a session's token from this header when the URL has none; a host
/// checking its own routes with an [`Authenticator`] can read the header the same way.
///
/// # Examples
///
/// ```
/// use rtdash_transport::bearer_token;
///
/// assert_eq!(bearer_token("Bearer abc"), Some("abc"));
/// assert_eq!(bearer_token(" bearer  abc "), Some("abc"));
/// assert_eq!(bearer_token("Basic abc"), None);
/// assert_eq!(bearer_token("Bearer "), None);
/// ```
#[must_use]
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// The token a plain HTTP request carries, where a stream request carries it too: the
/// `Authorization: Bearer` header (`authorization`, the header's value), else a non-empty
/// `token` parameter of the URL query (`query`, percent-encoded). `None` when neither is
/// there.
///
/// # Examples
///
/// ```
/// use rtdash_transport::request_token;
///
/// assert_eq!(request_token(Some("a=1&token=t%201"), None).as_deref(), Some("t 1"));
/// assert_eq!(request_token(Some("token=q"), Some("Bearer h")).as_deref(), Some("h"));
/// assert_eq!(request_token(Some("token="), Some("Basic x")), None);
/// ```
#[cfg(any(feature = "ws", feature = "sse"))]
#[must_use]
pub fn request_token(query: Option<&str>, authorization: Option<&str>) -> Option<String> {
    if let Some(t) = authorization.and_then(bearer_token) {
        return Some(t.to_owned());
    }
    crate::query::parse(query).token
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_bearer() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn access_rules() {
        let a = TopicAccess::topics(["ops", "team.*"]);
        assert!(a.allows("ops"));
        assert!(a.allows("team.x"));
        assert!(a.allows("team."));
        assert!(!a.allows("team"));
        assert!(!a.allows("opsx"));
        assert!(TopicAccess::topics(["*"]).allows("anything"));
        assert!(!TopicAccess::none().allows("ops"));
        assert!(TopicAccess::all().allows(""));
        let p = TopicAccess::predicate(|t| t.len() == 3);
        assert!(p.allows("abc") && !p.allows("ab"));
        assert!(format!("{p:?}").contains("Predicate"));
    }

    #[tokio::test]
    async fn static_tokens() {
        let auth = StaticTokens::new()
            .with_token("ok", Principal::new("a", TopicAccess::all()))
            .with_token(
                "old",
                Principal::new("b", TopicAccess::all())
                    .with_expires_at(SystemTime::now() - Duration::from_secs(1)),
            );
        assert_eq!(auth.authenticate("ok").await.unwrap().subject(), "a");
        assert_eq!(
            auth.authenticate("old").await.unwrap_err(),
            AuthError::Expired
        );
        assert!(matches!(
            auth.authenticate("").await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            auth.authenticate_boxed("nope").await,
            Err(AuthError::Invalid(_))
        ));
    }
}
