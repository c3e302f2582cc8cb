//! Request parameters from URL queries and headers.

/// Why a WebSocket upgrade or an SSE request is refused before any session
/// starts: an HTTP status and the body of an `error` in the protocol's
/// shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status (400, 403, ...).
    pub(crate) status: u16,
    /// The protocol's error code (`bad_request`, `forbidden`, ...).
    pub(crate) code: &'static str,
    /// What is wrong, for humans.
    pub(crate) message: String,
}

impl Refusal {
    /// The JSON body: `{"type":"error","code":..,"message":..}`.
    pub(crate) fn body(&self) -> String {
        crate::protocol::refusal_body(self.code, &self.message)
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
