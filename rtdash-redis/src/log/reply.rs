//! Reading Redis replies of the log (stream entries, a stored checkpoint) without
//! trusting them: anything unexpected becomes an error or a skipped entry, never a panic.

use std::collections::HashMap;

use bytes::Bytes;
use redis::Value;

use super::{PAYLOAD_FIELD, StoredCheckpoint};
use crate::BackplaneError;

/// One stream entry: its id, and its payload (`None` when the entry has no payload
/// field: not written by this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) payload: Option<Bytes>,
}

fn protocol(what: &str) -> BackplaneError {
    BackplaneError::Protocol(what.to_owned())
}

/// The bytes of a string reply.
fn bytes_of(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

/// The text of a string reply.
fn text_of(v: Value) -> Option<String> {
    bytes_of(v).and_then(|b| String::from_utf8(b).ok())
}

/// The entries of an `XRANGE` reply (or of one stream in an `XREAD` reply): an array of
/// `[id, [field, value, ...]]` (the fields may also come as a map).
pub(crate) fn entries(reply: Value) -> Result<Vec<Entry>, BackplaneError> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(protocol("stream entries are not an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else {
            return Err(protocol("a stream entry is not an array"));
        };
        let mut parts = parts.into_iter();
        let id = parts
            .next()
            .and_then(text_of)
            .ok_or_else(|| protocol("a stream entry has no id"))?;
        let pairs: Vec<(Value, Value)> = match parts.next() {
            Some(Value::Array(flat)) => {
                let mut it = flat.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                pairs
            }
            Some(Value::Map(pairs)) => pairs,
            // A deleted entry can come back with no fields.
            _ => Vec::new(),
        };
        let payload = pairs
            .into_iter()
            .find_map(|(k, v)| {
                bytes_of(k)
                    .filter(|k| k.as_slice() == PAYLOAD_FIELD.as_bytes())
                    .and_then(|_| bytes_of(v))
            })
            .map(Bytes::from);
        out.push(Entry { id, payload });
    }
    Ok(out)
}

/// The entries of the one stream an `XREAD` read: `nil` on a timeout, else a map (RESP3)
/// or an array of `[key, entries]` (RESP2).
pub(crate) fn xread(reply: Value) -> Result<Vec<Entry>, BackplaneError> {
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(kv) => kv.into_iter().nth(1).unwrap_or(Value::Nil),
                _ => Value::Nil,
            })
            .collect(),
        _ => return Err(protocol("an XREAD reply is neither a map nor an array")),
    };
    let mut out = Vec::new();
    for stream in streams {
        out.extend(entries(stream)?);
    }
    Ok(out)
}

/// A stored checkpoint from the fields of its hash (`HGETALL`); `None` when the hash is
/// empty (no checkpoint).
pub(crate) fn checkpoint(
    fields: HashMap<String, Vec<u8>>,
    key: &str,
) -> Result<Option<StoredCheckpoint>, BackplaneError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let missing = |field: &str| {
        BackplaneError::Protocol(format!("checkpoint {key} has no valid field {field:?}"))
    };
    let mut fields = fields;
    let data = fields.remove("data").ok_or_else(|| missing("data"))?;
    let offset = fields
        .remove("offset")
        .and_then(|o| String::from_utf8(o).ok())
        .filter(|o| valid_id(o))
        .ok_or_else(|| missing("offset"))?;
    let token = fields
        .remove("token")
        .and_then(|t| String::from_utf8(t).ok())
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| missing("token"))?;
    Ok(Some(StoredCheckpoint {
        data: Bytes::from(data),
        offset,
        token,
    }))
}

/// Whether `id` is a complete stream entry id: `<ms>-<seq>`, both decimal.
pub(crate) fn valid_id(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    id.split_once('-')
        .is_some_and(|(ms, seq)| digits(ms) && digits(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: Vec<Value>) -> Value {
        Value::Array(vec![bulk(id), Value::Array(fields)])
    }

    #[test]
    fn xread_replies_of_both_protocols_parse() {
        let list = Value::Array(vec![
            entry("1-0", vec![bulk("e"), bulk("x")]),
            entry("2-0", vec![bulk("other"), bulk("y"), bulk("e"), bulk("z")]),
        ]);
        let want = vec![
            Entry {
                id: "1-0".into(),
                payload: Some(Bytes::from_static(b"x")),
            },
            Entry {
                id: "2-0".into(),
                payload: Some(Bytes::from_static(b"z")),
            },
        ];
        let resp3 = Value::Map(vec![(bulk("k"), list.clone())]);
        assert_eq!(xread(resp3).ok(), Some(want.clone()));
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("k"), list])]);
        assert_eq!(xread(resp2).ok(), Some(want));
        assert_eq!(xread(Value::Nil).ok(), Some(Vec::new()));
    }

    #[test]
    fn entries_without_payload_are_kept_as_such_and_garbage_is_an_error() {
        let list = Value::Array(vec![
            entry("3-1", vec![bulk("f"), bulk("v")]),
            entry("3-2", vec![bulk("e")]),
            Value::Array(vec![bulk("3-3"), Value::Nil]),
            Value::Array(vec![bulk("3-4"), Value::Map(vec![(bulk("e"), bulk("m"))])]),
        ]);
        let got = entries(list).ok().unwrap_or_default();
        let payloads: Vec<_> = got.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, [None, None, None, Some(Bytes::from_static(b"m"))]);
        assert!(entries(Value::Int(3)).is_err());
        assert!(entries(Value::Array(vec![Value::Int(3)])).is_err());
        assert!(entries(Value::Array(vec![Value::Array(vec![])])).is_err());
        assert!(xread(Value::Int(1)).is_err());
    }

    #[test]
    fn checkpoints_parse_and_bad_ones_name_the_field() {
        let mut fields = HashMap::new();
        assert!(matches!(checkpoint(fields.clone(), "k"), Ok(None)));
        fields.insert("data".to_owned(), b"abc".to_vec());
        fields.insert("offset".to_owned(), b"17-3".to_vec());
        fields.insert("token".to_owned(), b"9".to_vec());
        fields.insert("at_ms".to_owned(), b"1".to_vec());
        let c = checkpoint(fields.clone(), "k").ok().flatten();
        assert_eq!(
            c,
            Some(StoredCheckpoint {
                data: Bytes::from_static(b"abc"),
                offset: "17-3".into(),
                token: 9,
            })
        );
        for (field, bad) in [("offset", &b"17"[..]), ("token", b"-1"), ("token", b"x")] {
            let mut f = fields.clone();
            f.insert(field.to_owned(), bad.to_vec());
            let e = checkpoint(f, "k").err().map(|e| e.to_string());
            assert!(e.as_deref().is_some_and(|e| e.contains(field)), "{e:?}");
        }
        let mut f = fields;
        f.remove("data");
        let e = checkpoint(f, "k").err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("data")), "{e:?}");
    }

    #[test]
    fn stream_ids_are_checked() {
        for ok in ["0-0", "1700000000000-12"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "1", "-", "1-", "-1", "a-1", "1-1-1", "+", "(1-1"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
