//! [`Frame`]: one already-encoded server frame, shared by every receiver.

use bytes::Bytes;

use crate::TransportError;

#[cfg(feature = "ws")]
type Text = tokio_tungstenite::tungstenite::Utf8Bytes;
#[cfg(not(feature = "ws"))]
type Text = Bytes;

/// One encoded server frame: UTF-8 JSON text, cheap to clone.
///
/// A `Frame` is built once (UTF-8 is checked once, at construction) and then
/// cloned for every subscriber: a clone is a reference-count increment, and
/// sending it to a WebSocket or an SSE stream neither re-validates nor copies
/// the text before the socket write. It is the message type the transport
/// puts in the [`Hub`](rtdash_fanout::Hub).
///
/// The publisher encodes what a frame carries (the `rtdash` facade encodes
/// the dashboard frames, `update`, `alert` and `dashboard`); the transport
/// never looks inside. A frame must hold one JSON object with a string
/// `"type"` field, so clients can dispatch on it, and a `"topic"` and
/// `"seq"` when it is published on a topic (see `docs/PROTOCOL.md`);
/// [`push_json_str`](crate::push_json_str) writes escaped strings.
///
/// # Examples
///
/// ```
/// use rtdash_transport::Frame;
///
/// let frame = Frame::from_string(r#"{"type":"notice","text":"hi"}"#.to_owned());
/// let copy = frame.clone(); // no copy of the text
/// assert_eq!(copy.as_str(), frame.as_str());
/// assert_eq!(frame.len(), 29);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    text: Text,
    /// Whether the text contains `\n` or `\r` (SSE must then split it into
    /// several `data:` lines). Computed once.
    multiline: bool,
    /// See [`Frame::event_time`].
    event_time: Option<i64>,
}

impl Frame {
    /// Wraps a `String`; no validation is needed because it is UTF-8.
    #[must_use]
    pub fn from_string(text: String) -> Self {
        let multiline = has_line_break(text.as_bytes());
        Self {
            text: text_from_string(text),
            multiline,
            event_time: None,
        }
    }

    /// Wraps a static string without copying it.
    #[must_use]
    pub fn from_static(text: &'static str) -> Self {
        Self {
            multiline: has_line_break(text.as_bytes()),
            text: text_from_static(text),
            event_time: None,
        }
    }

    /// Wraps bytes after checking, once, that they are UTF-8.
    ///
    /// # Errors
    ///
    /// [`TransportError::InvalidUtf8`] if `bytes` is not valid UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, TransportError> {
        let multiline = has_line_break(&bytes);
        let text = text_from_bytes_checked(bytes)?;
        Ok(Self {
            text,
            multiline,
            event_time: None,
        })
    }

    /// The frame's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        text_as_str(&self.text)
    }

    /// Length of the text in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether the text is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Tags the frame with the event time (ms since the Unix epoch) of the
    /// newest event it reports, for latency accounting: after each socket
    /// write the transport reports event → write time of tagged frames to the
    /// observer set with
    /// [`Transport::observe_write_latency`](crate::Transport::observe_write_latency).
    /// Not part of the text. The `rtdash` facade's `encode_update` sets it.
    #[must_use]
    pub fn with_event_time(mut self, event_time: Option<i64>) -> Self {
        self.event_time = event_time;
        self
    }

    /// The event time the frame was tagged with (see
    /// [`with_event_time`](Self::with_event_time)).
    #[must_use]
    pub fn event_time(&self) -> Option<i64> {
        self.event_time
    }

    /// The text as `Bytes`, sharing the frame's buffer (no copy).
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        text_to_bytes(&self.text)
    }

    /// Whether the text contains a line break (`\n` or `\r`).
    #[cfg_attr(not(feature = "sse"), allow(dead_code))]
    pub(crate) fn is_multiline(&self) -> bool {
        self.multiline
    }

    /// The text in tungstenite's representation (no copy).
    #[cfg(feature = "ws")]
    pub(crate) fn into_ws_text(self) -> Text {
        self.text
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 120;
        let s = self.as_str();
        if s.len() <= SHOWN {
            f.debug_tuple("Frame").field(&s).finish()
        } else {
            f.debug_struct("Frame")
                .field("len", &s.len())
                .field("start", &&s[..s.floor_char_boundary(SHOWN)])
                .finish()
        }
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self::from_string(text)
    }
}

impl TryFrom<Bytes> for Frame {
    type Error = TransportError;

    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        Self::try_from_bytes(bytes)
    }
}

impl rtdash_fanout::Message for Frame {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

fn has_line_break(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b == b'\n' || b == b'\r')
}

fn utf8_error(e: std::str::Utf8Error) -> TransportError {
    TransportError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    }
}

#[cfg(feature = "ws")]
fn text_from_string(text: String) -> Text {
    Text::from(text)
}

#[cfg(feature = "ws")]
fn text_from_bytes_checked(bytes: Bytes) -> Result<Text, TransportError> {
    Text::try_from(bytes).map_err(utf8_error)
}

#[cfg(feature = "ws")]
fn text_from_static(text: &'static str) -> Text {
    Text::from_static(text)
}

#[cfg(feature = "ws")]
fn text_to_bytes(text: &Text) -> Bytes {
    Bytes::from(text.clone())
}

#[cfg(feature = "ws")]
fn text_as_str(text: &Text) -> &str {
    text.as_str()
}

#[cfg(not(feature = "ws"))]
fn text_from_string(text: String) -> Text {
    Bytes::from(text)
}

#[cfg(not(feature = "ws"))]
fn text_from_bytes_checked(bytes: Bytes) -> Result<Text, TransportError> {
    std::str::from_utf8(&bytes).map_err(utf8_error)?;
    Ok(bytes)
}

#[cfg(not(feature = "ws"))]
fn text_from_static(text: &'static str) -> Text {
    Bytes::from_static(text.as_bytes())
}

#[cfg(not(feature = "ws"))]
fn text_to_bytes(text: &Text) -> Bytes {
    text.clone()
}

#[cfg(not(feature = "ws"))]
fn text_as_str(text: &Text) -> &str {
    // Checked at construction, so this never falls back.
    std::str::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_utf8() {
        let err = Frame::try_from_bytes(Bytes::from_static(b"{\"a\":\xff}")).unwrap_err();
        assert!(matches!(
            err,
            TransportError::InvalidUtf8 { valid_up_to: 5 }
        ));
    }

    #[test]
    fn clone_shares_the_buffer() {
        let f = Frame::from_string("{\"type\":\"x\"}".to_owned());
        let a = f.to_bytes();
        let b = f.clone().to_bytes();
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert!(!f.is_multiline());
        assert!(Frame::from_static("{\n}").is_multiline());
    }

    #[test]
    fn debug_truncates_long_frames() {
        let long = format!("{{\"type\":\"x\",\"p\":\"{}\"}}", "é".repeat(200));
        let shown = format!("{:?}", Frame::from_string(long));
        assert!(shown.contains("len"));
        assert!(shown.len() < 300);
    }
}
