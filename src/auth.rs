//! [`AllowAll`]: an authenticator for demos and local development.

use rtdash_transport::{AuthError, Authenticator, Principal, TopicAccess};

/// An [`Authenticator`] that accepts every non-empty token and lets it see every
/// dashboard; the token becomes the subject. For demos, tests and local development
/// only — use `StaticTokens`, `JwtAuthenticator` (feature `jwt`) or your own in
/// production.
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
/// assert!(AllowAll.authenticate("").await.is_err());
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Invalid("empty token".into()));
        }
        Ok(Principal::new(token, TopicAccess::all()))
    }
}
