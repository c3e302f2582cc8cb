//! WebSocket sessions inside a host's axum router (feature `axum`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::MethodRouter;
use hyper_util::rt::TokioIo;
use rtdash_fanout::Key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::query::Refusal;
use crate::session::SessionStart;
use crate::{RequestParams, Transport, WsConnection};

impl<K: Key> Transport<K> {
    /// An axum route (`GET`) that upgrades requests to WebSocket sessions.
    ///
    /// Works with any router state `S`. The request may carry `?token=...`
    /// (or `Authorization: Bearer`) and `&topics=a,b`, as with
    /// [`serve`](crate::serve). Sessions started here take part in
    /// [`shutdown`](Self::shutdown); call it from your server's graceful
    /// shutdown, since axum does not track upgraded connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::Router;
    /// use rtdash_transport::{FrameHub, StaticTokens, Transport, TransportConfig};
    ///
    /// let transport = Transport::new(FrameHub::<u64>::default(), StaticTokens::new(), TransportConfig::default());
    /// let app: Router = Router::new().route("/ws", transport.ws_route());
    /// ```
    pub fn ws_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let transport = self.clone();
        axum::routing::get(move |req: Request| {
            let transport = transport.clone();
            async move { transport.ws_upgrade(req) }
        })
    }

    /// Answers a WebSocket upgrade request and starts its session once the
    /// connection is upgraded. Use it from your own handler when you need
    /// to look at the request first.
    ///
    /// Every refusal has the JSON body `{"error":{"code":..,"message":..}}`.
    /// Responds `400` (`bad_request`) to a request that is not a WebSocket
    /// upgrade (RFC 6455 section 4.2.1) and `426` (`upgrade_required`) when
    /// the server cannot upgrade the connection (e.g. HTTP/2). Before
    /// upgrading it refuses an `Origin` outside
    /// [`TransportConfig::with_allowed_origins`](crate::TransportConfig::with_allowed_origins)
    /// (`403`, `forbidden`) and an invalid topic in `?topics=` (`400`,
    /// `bad_request`, the same check as for a `subscribe` message).
    pub fn ws_upgrade(&self, mut req: Request) -> Response {
        let bad_request = |message: &str| Refusal {
            status: 400,
            code: "bad_request",
            message: message.to_owned(),
        };
        if let Err(why) = check_upgrade(req.method(), req.headers()) {
            return bad_request(why).response();
        }
        let params =
            match RequestParams::from_request(self.config(), req.uri().query(), req.headers()) {
                Ok(p) => p,
                Err(refusal) => return refusal.response(),
            };
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
            return bad_request("missing `Sec-WebSocket-Key`").response();
        };
        let accept = derive_accept_key(key.as_bytes());
        let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
            return Refusal {
                status: 426,
                code: "upgrade_required",
                message: "this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)"
                    .to_owned(),
            }
            .response();
        };
        let accepted_at = tokio::time::Instant::now();
        let permit = self.try_acquire();
        let transport = self.clone();
        self.inner.tracker.spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let conn = WsConnection::from_upgraded(TokioIo::new(upgraded), &transport).await;
            let start = SessionStart::new(params.token, params.topics, accepted_at);
            crate::session::run(std::sync::Arc::clone(&transport.inner), conn, start, permit).await;
        });
        // The key is base64: always a valid header value.
        let Ok(accept) = HeaderValue::from_str(&accept) else {
            return Refusal {
                status: 500,
                code: "internal_error",
                message: "the handshake's answer key is not a header value".to_owned(),
            }
            .response();
        };
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        resp
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn check_upgrade(method: &Method, headers: &HeaderMap) -> Result<(), &'static str> {
    if method != Method::GET {
        return Err("WebSocket upgrade requires GET");
    }
    if !header_has_token(headers, header::CONNECTION, "upgrade") {
        return Err("missing `Connection: upgrade`");
    }
    if !header_has_token(headers, header::UPGRADE, "websocket") {
        return Err("missing `Upgrade: websocket`");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("`Sec-WebSocket-Version` must be 13");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_upgrade_headers() {
        let mut h = HeaderMap::new();
        assert!(check_upgrade(&Method::GET, &h).is_err());
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(check_upgrade(&Method::GET, &h).is_err());
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert!(check_upgrade(&Method::GET, &h).is_ok());
        assert!(check_upgrade(&Method::POST, &h).is_err());
    }
}
