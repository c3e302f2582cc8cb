//! The crate's error types.

use std::time::Duration;

/// Errors from configuring or running the transport.
///
/// Configuration mistakes and failures of one connection are reported with
/// this type. The messages name the field or limit involved and say what to
/// change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Frame bytes were not valid UTF-8.
    #[error("frame is not valid UTF-8 (at byte {valid_up_to}); frames must be UTF-8 JSON text")]
    InvalidUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid transport configuration: `{field}` {problem}")]
    InvalidConfig {
        /// The setter or field name.
        field: &'static str,
        /// What is wrong with it and what to change.
        problem: String,
    },
    /// A client message was larger than the configured limit.
    #[error("client message of {size} bytes exceeds `max_message_bytes` ({max} bytes)")]
    MessageTooBig {
        /// Size of the offending message in bytes (as far as known).
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The peer broke the transport protocol (for WebSocket: RFC 6455).
    #[error("protocol violation by the peer: {0}")]
    Protocol(String),
    /// A write did not complete within `write_timeout`.
    #[error("write did not complete within `write_timeout` ({0:?}); the peer is not reading")]
    WriteTimeout(Duration),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// An I/O error on the socket or listener.
    #[error("I/O error while {context}: {message}")]
    Io {
        /// What the transport was doing.
        context: &'static str,
        /// The operating system's message.
        message: String,
    },
}

impl TransportError {
    #[cfg(feature = "ws")]
    pub(crate) fn io(context: &'static str, err: &std::io::Error) -> Self {
        Self::Io {
            context,
            message: err.to_string(),
        }
    }
}

/// Why an [`Authenticator`](crate::Authenticator) refused a token.
///
/// Each variant maps to a documented close code (see
/// [`AuthError::close_code`]): a client can tell "get a new token" from
/// "you may not connect" from "try again later".
///
/// # Examples
///
/// ```
/// use rtdash_transport::{AuthError, Authenticator, CloseCode, StaticTokens};
///
/// let refused = futures::executor::block_on(StaticTokens::new().authenticate("guess"));
/// let err = refused.unwrap_err();
/// assert_eq!(err, AuthError::Invalid("unknown token".into()));
/// assert_eq!(err.close_code(), CloseCode::AuthFailed);
/// assert_eq!(err.close_code().code(), 4001);
/// // An expired token: the client should get a new one and reconnect.
/// assert_eq!(AuthError::Expired.close_code().code(), 4009);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is malformed, has a bad signature or is unknown.
    #[error("authentication failed: {0}")]
    Invalid(String),
    /// The token was valid once but has expired.
    #[error("token expired; obtain a new token and reconnect")]
    Expired,
    /// The token is valid but its subject may not connect here.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The authenticator could not decide (e.g. its backend is down).
    #[error("authentication unavailable, try again later: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The close code a session sends when authentication fails this way.
    ///
    /// `Invalid` → [`CloseCode::AuthFailed`](crate::CloseCode::AuthFailed) (4001),
    /// `Expired` → [`CloseCode::TokenExpired`](crate::CloseCode::TokenExpired) (4009),
    /// `Forbidden` → [`CloseCode::Forbidden`](crate::CloseCode::Forbidden) (4003),
    /// `Unavailable` → [`CloseCode::TryAgainLater`](crate::CloseCode::TryAgainLater) (1013).
    #[must_use]
    pub fn close_code(&self) -> crate::CloseCode {
        match self {
            Self::Invalid(_) => crate::CloseCode::AuthFailed,
            Self::Expired => crate::CloseCode::TokenExpired,
            Self::Forbidden(_) => crate::CloseCode::Forbidden,
            Self::Unavailable(_) => crate::CloseCode::TryAgainLater,
        }
    }
}
