//! [`AllowAll`]: an authenticator for demos and local development.

use rtdash_transport::{AuthError, Authenticator, Principal, TopicAccess};

/// An [`Authenticator`] that accepts every token and lets it see every dashboard: the
/// host's explicit choice of an open server. The token becomes the subject; no token (an
/// HTTP read without one) is the subject `anonymous`. For demos, tests and local
/// development only — use `StaticTokens`, `JwtAuthenticator` (feature `jwt`) or your own
/// in production.
///
/// # Examples
///
/// ```
/// use rtdash::AllowAll;
/// use rtdash::transport::Authenticator;
///
/// # futures::executor::block_on(async {
/// let p = AllowAll.authenticate("demo").await.unwrap();
/// assert_eq!(p.subject(), "demo");
/// assert!(p.may_see("ops"));
/// assert_eq!(AllowAll.authenticate("").await.unwrap().subject(), "anonymous");
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let subject = if token.is_empty() { "anonymous" } else { token };
        Ok(Principal::new(subject, TopicAccess::all()))
    }
}
