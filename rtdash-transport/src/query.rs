//! Request parameters from URL queries and headers, and the refusal of a
//! request before any session starts.

/// Why a WebSocket upgrade or an SSE request is refused before any session
/// starts: an HTTP status and the error it answers.
///
/// The body is `{"error":{"code":..,"message":..}}`, the shape of every
/// error of the rtdash HTTP API (not the protocol's `error` frame, which
/// only travels inside an open session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status (400, 403, ...).
    pub(crate) status: u16,
    /// The error code (`bad_request`, `forbidden`, ...).
    pub(crate) code: &'static str,
    /// What is wrong, for humans.
    pub(crate) message: String,
}

impl Refusal {
    /// A refusal with `status`, `code` and `message`.
    #[cfg(feature = "sse")]
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body: `{"error":{"code":..,"message":..}}`.
    pub(crate) fn body(&self) -> String {
        let mut body = String::from(r#"{"error":{"code":"#);
        crate::protocol::push_json_str(&mut body, self.code);
        body.push_str(r#","message":"#);
        crate::protocol::push_json_str(&mut body, &self.message);
        body.push_str("}}");
        body
    }

    /// The refusal as an HTTP response with its JSON body.
    #[cfg(any(feature = "axum", feature = "sse"))]
    pub(crate) fn response(&self) -> axum::response::Response {
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::IntoResponse;
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(),
        )
            .into_response()
    }

    /// The first topic that fails [`check_topic`](crate::protocol::check_topic), as a 400.
    pub(crate) fn check_topics(topics: &[String]) -> Result<(), Self> {
        match topics
            .iter()
            .find_map(|t| crate::protocol::check_topic(t).err())
        {
            None => Ok(()),
            Some(message) => Err(Self {
                status: 400,
                code: "bad_request",
                message,
            }),
        }
    }
}

/// What a URL query carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) token: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) last_event_id: Option<String>,
}

/// Parses `token=..&topics=a,b&topic=c&last_event_id=..` (percent-encoded;
/// `topics` may repeat and is comma-separated). Unknown keys are ignored.
pub(crate) fn parse(query: Option<&str>) -> Query {
    let mut out = Query::default();
    let Some(q) = query else {
        return out;
    };
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "token" if !v.is_empty() => out.token = Some(v.into_owned()),
            "topics" | "topic" => out.topics.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            ),
            "last_event_id" | "lastEventId" if !v.is_empty() => {
                out.last_event_id = Some(v.into_owned());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_bodies_are_the_api_error_shape() {
        let r = Refusal {
            status: 403,
            code: "forbidden",
            message: "no \"ops\"\n".to_owned(),
        };
        let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "forbidden", "message": "no \"ops\"\n"}})
        );
    }

    #[test]
    fn parses_queries() {
        let q = parse(Some("token=a%20b&topics=x,y&topic=z&topics=&other=1"));
        assert_eq!(q.token.as_deref(), Some("a b"));
        assert_eq!(q.topics, ["x", "y", "z"]);
        assert_eq!(parse(None), Query::default());
        assert_eq!(parse(Some("%%%&&=")), Query::default());
        assert_eq!(
            parse(Some("last_event_id=1%3A2")).last_event_id.as_deref(),
            Some("1:2")
        );
    }
}
