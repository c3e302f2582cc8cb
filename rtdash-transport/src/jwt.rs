//! HS256 JSON Web Token authenticator (feature `jwt`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{AuthError, Authenticator, Principal, TopicAccess};

/// Checks HS256-signed JSON Web Tokens.
///
/// Claims used: `sub` (required, the subject), `exp` (required, expiry in
/// seconds since the Unix epoch), `topics` (optional list of topics the
/// subject may see; an entry ending in `*` is a prefix, `"*"` allows all;
/// missing means none), and `iss`/`aud` when configured. The session closes
/// with code 4009 when `exp` (plus leeway) passes.
///
/// # Examples
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::{Duration, SystemTime};
/// use rtdash_transport::{Authenticator, JwtAuthenticator};
///
/// let auth = JwtAuthenticator::hs256(b"a long shared secret of 32+ bytes!!");
/// let token = auth.issue("alice", &["ops"], SystemTime::now() + Duration::from_secs(60))?;
/// let principal = auth.authenticate(&token).await?;
/// assert_eq!(principal.subject(), "alice");
/// assert!(principal.may_see("ops") && !principal.may_see("hr"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct JwtAuthenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithm", &"HS256")
            .field("leeway_s", &self.validation.leeway)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    topics: Vec<String>,
}

impl JwtAuthenticator {
    /// Verifies tokens signed with HMAC-SHA256 and `secret`. Leeway is 0:
    /// tokens are refused from their `exp` second on.
    #[must_use]
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Audience is checked only when configured.
        validation.validate_aud = false;
        Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
        }
    }

    /// Accepts tokens up to `leeway` after their `exp` (clock skew between
    /// the issuer and this server); whole seconds. The session expiry timer
    /// fires at `exp + leeway`.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Requires the `iss` claim to equal `issuer`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.validation
            .required_spec_claims
            .insert("iss".to_owned());
        self
    }

    /// Requires the `aud` claim to contain `audience`.
    #[must_use]
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation
            .required_spec_claims
            .insert("aud".to_owned());
        self
    }

    /// Signs a token for `subject` allowed to see `topics`, expiring at
    /// `expires_at` (rounded down to the second). For tests, examples and
    /// simple token services.
    ///
    /// # Errors
    ///
    /// [`AuthError::Unavailable`] if signing fails or `expires_at` is before
    /// the Unix epoch.
    pub fn issue(
        &self,
        subject: &str,
        topics: &[&str],
        expires_at: SystemTime,
    ) -> Result<String, AuthError> {
        let exp = expires_at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::Unavailable("`expires_at` is before 1970".to_owned()))?
            .as_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            exp,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Unavailable(format!("cannot sign token: {e}")))
    }

    fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    AuthError::Forbidden(format!("token not meant for this server: {e}"))
                }
                _ => AuthError::Invalid(format!("bad token: {e}")),
            })?;
        let claims = data.claims;
        // An `exp` beyond what the clock can hold is refused, not a panic.
        let expires_at = UNIX_EPOCH
            .checked_add(Duration::from_secs(
                claims.exp.saturating_add(self.validation.leeway),
            ))
            .ok_or_else(|| {
                AuthError::Invalid(format!("bad token: `exp` {} is out of range", claims.exp))
            })?;
        if expires_at <= SystemTime::now() {
            return Err(AuthError::Expired);
        }
        Ok(
            Principal::new(claims.sub, TopicAccess::topics(claims.topics))
                .with_expires_at(expires_at),
        )
    }
}

impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_a_valid_token() {
        let a = JwtAuthenticator::hs256(SECRET);
        let t = a
            .issue(
                "bob",
                &["x", "y.*"],
                SystemTime::now() + Duration::from_secs(30),
            )
            .unwrap();
        let p = a.verify(&t).unwrap();
        assert_eq!(p.subject(), "bob");
        assert!(p.may_see("y.z") && !p.may_see("z"));
        assert!(p.expires_at().is_some());
    }

    #[test]
    fn refuses_bad_tokens() {
        let a = JwtAuthenticator::hs256(SECRET);
        let other = JwtAuthenticator::hs256(b"another secret, also 32 bytes...");
        let t = other
            .issue("bob", &[], SystemTime::now() + Duration::from_secs(30))
            .unwrap();
        assert!(matches!(a.verify(&t), Err(AuthError::Invalid(_))));
        assert!(matches!(a.verify("not.a.jwt"), Err(AuthError::Invalid(_))));
        assert!(matches!(a.verify(""), Err(AuthError::Invalid(_))));
        let old = a
            .issue("bob", &[], SystemTime::now() - Duration::from_secs(10))
            .unwrap();
        assert_eq!(a.verify(&old).unwrap_err(), AuthError::Expired);
    }

    /// Found by the `jwt` fuzz target: a correctly signed `exp` past what `SystemTime`
    /// holds panicked; it is refused. One far ahead but representable is accepted.
    #[test]
    fn an_exp_beyond_the_clock_is_refused_not_a_panic() {
        let a = JwtAuthenticator::hs256(SECRET);
        let sign = |exp: u64| {
            let claims = Claims {
                sub: "bob".into(),
                exp,
                topics: vec![],
            };
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        for exp in [u64::MAX, u64::MAX / 2, i64::MAX as u64] {
            match a.verify(&sign(exp)) {
                Err(AuthError::Invalid(m)) => assert!(m.contains("out of range"), "{m}"),
                Ok(p) => assert!(p.expires_at().is_some(), "{exp}"),
                Err(e) => panic!("{exp}: {e}"),
            }
        }
        assert!(matches!(
            a.verify(&sign(u64::MAX)),
            Err(AuthError::Invalid(_))
        ));
        let far = a.verify(&sign(32_503_680_000)).unwrap(); // year 3000
        assert!(far.expires_at().is_some());
    }

    #[test]
    fn issuer_and_audience() {
        let a = JwtAuthenticator::hs256(SECRET).with_issuer("me");
        let t = a
            .issue("bob", &[], SystemTime::now() + Duration::from_secs(30))
            .unwrap();
        // `issue` does not set `iss`, so a required issuer refuses it.
        assert!(a.verify(&t).is_err());
        assert!(format!("{a:?}").contains("HS256"));
    }
}
