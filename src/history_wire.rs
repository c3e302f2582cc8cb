//! The wire form of widget history, shared by `GET …/history` and the WebSocket `history`
//! request: the request's parameters (`from`, `to`, `range`, `step`, all in milliseconds)
//! and the compact JSON of a [`History`].
//!
//! A point is an array `[time, value, count]`, or `[time, value, count, start]` when its
//! window does not start at `time - window_ms` (a window over coarser data, see
//! [`history`](crate::history)): the point covers `[start, time)`, `time` being the
//! `window_end` of live update items, so history and live values share one time axis.

use std::fmt::Write as _;
use std::time::Duration;

use rtdash_core::{Timestamp, Uuid};
use rtdash_transport::{ErrorCode, Frame, Request, RequestError, push_json_str};

use crate::history::{History, HistoryRequest};
use crate::{Engine, Error};

/// The range a history request covers when it names neither `from` nor `range`: 5 min.
pub(crate) const DEFAULT_RANGE_MS: i64 = 300_000;

/// A history request's parameters as sent, in milliseconds (unix ms for times).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HistoryParams {
    pub(crate) from: Option<i64>,
    pub(crate) to: Option<i64>,
    pub(crate) range: Option<i64>,
    pub(crate) step: Option<i64>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidHistoryRequest {
        field,
        reason: reason.into(),
    }
}

impl HistoryParams {
    /// Sets parameter `name` from its text; other names are not history parameters
    /// (`Ok(false)`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHistoryRequest`] naming the parameter, when it is not an integer.
    pub(crate) fn set_text(&mut self, name: &str, text: &str) -> Result<bool, Error> {
        let slot = match name {
            "from" => &mut self.from,
            "to" => &mut self.to,
            "range" => &mut self.range,
            "step" => &mut self.step,
            _ => return Ok(false),
        };
        let field = match name {
            "from" => "from",
            "to" => "to",
            "range" => "range",
            _ => "step",
        };
        let v = text.trim().parse::<i64>().map_err(|_| {
            let shown = &text[..text.floor_char_boundary(40)];
            invalid(
                field,
                format!("`{field}` is {shown:?}; expected a whole number of milliseconds"),
            )
        })?;
        *slot = Some(v);
        Ok(true)
    }

    /// The request these parameters make at time `now`: `to` defaults to `now`, `from` to
    /// `to - range`, `range` to 5 min; the engine checks the rest (`from < to`, the step
    /// and the number of points).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHistoryRequest`] naming the parameter: both `from` and `range`, a
    /// `range` or `step` that is not positive.
    pub(crate) fn request(self, now: Timestamp) -> Result<HistoryRequest, Error> {
        let to = self.to.unwrap_or_else(|| now.as_millis());
        let from = match (self.from, self.range) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "range",
                    "give `from` or `range` (the length before `to`), not both",
                ));
            }
            (Some(from), None) => from,
            (None, range) => {
                let range = range.unwrap_or(DEFAULT_RANGE_MS);
                if range <= 0 {
                    return Err(invalid(
                        "range",
                        format!("`range` is {range}; it must be a positive number of milliseconds"),
                    ));
                }
                to.saturating_sub(range)
            }
        };
        let mut req = HistoryRequest::new(Timestamp::from_millis(from), Timestamp::from_millis(to));
        if let Some(step) = self.step {
            let ms = u64::try_from(step)
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| {
                    invalid(
                        "step",
                        format!("`step` is {step}; it must be a positive number of milliseconds"),
                    )
                })?;
            req = req.with_step(Duration::from_millis(ms));
        }
        Ok(req)
    }
}

/// Appends `h` as a `history` object (with the request's `id` when given).
pub(crate) fn push_history(out: &mut String, h: &History, id: Option<&serde_json::Value>) {
    out.push_str(r#"{"type":"history""#);
    if let Some(id) = id {
        let _ = write!(out, r#","id":{id}"#);
    }
    out.push_str(r#","dashboard_id":"#);
    push_json_str(out, &h.dashboard_id);
    let _ = write!(
        out,
        r#","widget_id":"{}","from":{},"to":{},"step_ms":{},"window_ms":{},"series":["#,
        h.widget_id,
        h.from.as_millis(),
        h.to.as_millis(),
        h.step_ms,
        h.window_ms,
    );
    let window = i64::try_from(h.window_ms).unwrap_or(i64::MAX);
    for (i, s) in h.series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"group":"#);
        match &s.group {
            Some(g) => push_json_str(out, g),
            None => out.push_str("null"),
        }
        out.push_str(r#","points":["#);
        for (k, p) in s.points.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let t = p.time.as_millis();
            let _ = write!(out, "[{t},");
            push_number(out, p.value);
            let _ = write!(out, ",{}", p.count);
            let start = p.start.as_millis();
            if start != t.saturating_sub(window) {
                let _ = write!(out, ",{start}");
            }
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
}

/// `h` as a `history` frame.
pub(crate) fn encode_history(h: &History, id: Option<&serde_json::Value>) -> String {
    let points: usize = h.series.iter().map(|s| s.points.len()).sum();
    let mut out = String::with_capacity(256 + points * 32);
    push_history(&mut out, h, id);
    out
}

/// One widget's answer in a dashboard's history: its history, or why there is none.
pub(crate) type WidgetHistory = (Uuid, Result<History, Error>);

/// The histories of a dashboard's widgets as one `dashboard_history` object:
/// `{"type":"dashboard_history","dashboard_id","from","to","widgets":[history, …],
/// "errors":[{"widget_id","code","message"}, …]}`.
pub(crate) fn encode_dashboard_history(
    dashboard: &str,
    req: &HistoryRequest,
    widgets: &[WidgetHistory],
    id: Option<&serde_json::Value>,
) -> String {
    let mut out = String::with_capacity(256 + widgets.len() * 4096);
    out.push_str(r#"{"type":"dashboard_history""#);
    if let Some(id) = id {
        let _ = write!(out, r#","id":{id}"#);
    }
    out.push_str(r#","dashboard_id":"#);
    push_json_str(&mut out, dashboard);
    let _ = write!(
        out,
        r#","from":{},"to":{},"widgets":["#,
        req.from.as_millis(),
        req.to.as_millis()
    );
    let mut first = true;
    for (_, h) in widgets {
        if let Ok(h) = h {
            if !first {
                out.push(',');
            }
            first = false;
            push_history(&mut out, h, None);
        }
    }
    out.push_str(r#"],"errors":["#);
    let mut first = true;
    for (w, h) in widgets {
        if let Err(e) = h {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(
                out,
                r#"{{"widget_id":"{w}","code":"{}","message":"#,
                e.code()
            );
            push_json_str(&mut out, &e.to_string());
            out.push('}');
        }
    }
    out.push_str("]}");
    out
}

/// The `error` frame refusal of `e`, naming the request's field at fault.
pub(crate) fn request_error(e: &Error) -> RequestError {
    let (code, field) = match e {
        Error::InvalidHistoryRequest { field, .. } => (ErrorCode::BadRequest, Some(*field)),
        Error::UnknownDashboard { .. } => (ErrorCode::NotFound, Some("dashboard")),
        Error::UnknownWidget { .. } => (ErrorCode::NotFound, Some("widget")),
        Error::NotOwned { .. } | Error::HistoryUnavailable { .. } => (ErrorCode::Unavailable, None),
        _ => (ErrorCode::Internal, None),
    };
    let r = RequestError::new(code, e.to_string());
    match field {
        Some(f) => r.with_field(f),
        None => r,
    }
}

fn bad(field: &str, message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorCode::BadRequest, message).with_field(field)
}

/// Answers a WebSocket `history` request:
/// `{"type":"history","id","dashboard","widget","from","to","range","step"}` with a
/// `history` frame, or without `widget` with a `dashboard_history` frame, both carrying
/// the request's `id`.
pub(crate) async fn answer_ws(engine: &Engine, request: &Request) -> Result<Frame, RequestError> {
    let msg: serde_json::Map<String, serde_json::Value> = serde_json::from_str(request.text())
        .map_err(|e| {
            RequestError::new(ErrorCode::BadRequest, format!("bad `history` message: {e}"))
        })?;
    let dashboard = match msg.get("dashboard") {
        Some(serde_json::Value::String(d)) => d.as_str(),
        Some(_) => {
            return Err(bad(
                "dashboard",
                "`dashboard` must be a string: a dashboard id",
            ));
        }
        None => {
            return Err(bad(
                "dashboard",
                "`dashboard` is missing: name the dashboard id",
            ));
        }
    };
    // Checked before the dashboard is looked up, so ids cannot be probed.
    if !request.principal().may_see(dashboard) {
        return Err(
            RequestError::new(ErrorCode::Forbidden, "not allowed to see this dashboard")
                .with_field("dashboard"),
        );
    }
    let widget = match msg.get("widget") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(w)) => Some(Uuid::parse_str(w).map_err(|_| {
            bad(
                "widget",
                format!(
                    "`widget` is {:?}; expected a widget id (a UUID)",
                    &w[..w.floor_char_boundary(40)]
                ),
            )
        })?),
        Some(_) => {
            return Err(bad(
                "widget",
                "`widget` must be a string: a widget id (a UUID)",
            ));
        }
    };
    let mut params = HistoryParams::default();
    for name in ["from", "to", "range", "step"] {
        match msg.get(name) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Number(n)) => {
                params
                    .set_text(name, &n.to_string())
                    .map_err(|e| request_error(&e))?;
            }
            Some(_) => {
                return Err(bad(
                    name,
                    format!("`{name}` must be a whole number of milliseconds"),
                ));
            }
        }
    }
    let req = params
        .request(Timestamp::now())
        .map_err(|e| request_error(&e))?;
    let text = match widget {
        Some(w) => {
            let h = engine
                .history(dashboard, w, req)
                .await
                .map_err(|e| request_error(&e))?;
            encode_history(&h, request.id())
        }
        None => {
            let all = engine
                .dashboard_history(dashboard, req)
                .await
                .map_err(|e| request_error(&e))?;
            encode_dashboard_history(dashboard, &req, &all, request.id())
        }
    };
    Ok(Frame::from_string(text))
}

/// A JSON number, or `null` for none (and for a value JSON cannot hold).
fn push_number(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            let _ = write!(out, "{v}");
        }
        _ => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_default_to_the_last_five_minutes_and_name_what_is_wrong() {
        let now = Timestamp::from_millis(1_000_000);
        let r = HistoryParams::default().request(now).expect("valid");
        assert_eq!(
            (r.from.as_millis(), r.to.as_millis(), r.step),
            (700_000, 1_000_000, None)
        );
        let mut p = HistoryParams::default();
        assert!(p.set_text("range", "3600000").expect("a number"));
        assert!(p.set_text("step", "60000").expect("a number"));
        assert!(!p.set_text("token", "x").expect("not ours"));
        let r = p.request(now).expect("valid");
        assert_eq!(r.from.as_millis(), 1_000_000 - 3_600_000);
        assert_eq!(r.step, Some(Duration::from_secs(60)));
        let field = |e: Error| match e {
            Error::InvalidHistoryRequest { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(
                HistoryParams::default()
                    .set_text("from", "soon")
                    .unwrap_err()
            ),
            "from"
        );
        let both = HistoryParams {
            from: Some(1),
            range: Some(1),
            ..Default::default()
        };
        assert_eq!(field(both.request(now).unwrap_err()), "range");
        let zero_step = HistoryParams {
            step: Some(0),
            ..Default::default()
        };
        assert_eq!(field(zero_step.request(now).unwrap_err()), "step");
        let negative = HistoryParams {
            range: Some(-5),
            ..Default::default()
        };
        assert_eq!(field(negative.request(now).unwrap_err()), "range");
    }
}
