//! Names in Redis and the format of one published message.
//!
//! Every key of a topic ends in `{topic}` (a Redis Cluster hash tag: all of a topic's
//! keys live in one slot, so one script can touch them all); the kind of key comes
//! before it, so no two topics' keys can collide whatever their names.
//!
//! | name | type | holds |
//! |---|---|---|
//! | `<prefix>:seq:{topic}` | string | the topic's sequence number (`INCR`) |
//! | `<prefix>:lvc:{topic}` | hash | key → `"<version hi>.<version lo>:<seq>"`: the newest version of each key and the message holding it |
//! | `<prefix>:msg:{topic}` | hash | `<seq>` → message: each message that is the newest of some key, and the last `log_len` messages (the catch-up log) |
//! | `<prefix>:ch:{topic}` | channel | each message as it is published |
//! | `<prefix>:probe:<node>` | channel | a node's liveness probes to itself |
//!
//! A message is a header line and the frame's bytes, exactly as clients get them:
//! `<seq> <event time ms or -> <key>,<key>,...\n<frame>`. Sequence number 0 is a
//! retirement, with no frame: the keys listed no longer exist (a removed widget).

use bytes::Bytes;

use crate::BackplaneError;

/// Key and channel names for one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn key(&self, kind: &str, topic: &str) -> String {
        format!("{}:{kind}:{{{topic}}}", self.prefix)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn channel(&self, topic: &str) -> String {
        self.key("ch", topic)
    }

    /// The topic a message channel belongs to.
    pub(crate) fn topic_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":ch:{")?
            .strip_suffix('}')
    }

    pub(crate) fn probe(&self, node: &str) -> String {
        format!("{}:probe:{node}", self.prefix)
    }
}

/// One message read back from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) seq: u64,
    pub(crate) event_time: Option<i64>,
    /// The keys, comma-separated (empty for a keyless message).
    pub(crate) keys: String,
    /// The frame's bytes.
    pub(crate) frame: Bytes,
}

impl Message {
    /// Parses a message, sharing `raw`'s buffer for the frame.
    pub(crate) fn parse(raw: Bytes) -> Result<Self, BackplaneError> {
        let bad = |why: &str| BackplaneError::Protocol(format!("backplane message: {why}"));
        let nl = raw
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no header line"))?;
        let header = std::str::from_utf8(raw.get(..nl).unwrap_or_default())
            .map_err(|_| bad("header is not UTF-8"))?;
        let mut fields = header.splitn(3, ' ');
        let seq = fields
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("no sequence number"))?;
        let event_time = match fields.next() {
            Some("-") => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| bad("bad event time"))?),
            None => return Err(bad("no event time")),
        };
        let keys = fields.next().ok_or_else(|| bad("no key list"))?.to_owned();
        Ok(Self {
            seq,
            event_time,
            keys,
            frame: raw.slice(nl + 1..),
        })
    }

    /// The keys, one by one.
    pub(crate) fn key_list(&self) -> impl Iterator<Item = &str> {
        self.keys.split(',').filter(|k| !k.is_empty())
    }
}

/// Whether `key` can be used as a key name in a message (no separator in it).
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key
            .bytes()
            .any(|b| b == b',' || b == b' ' || b == b'\n' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_collide_and_round_trip() {
        let n = Names::new("rtdash");
        assert_eq!(n.channel("ops"), "rtdash:ch:{ops}");
        assert_eq!(n.topic_of("rtdash:ch:{ops}"), Some("ops"));
        assert_eq!(n.topic_of("rtdash:ch:{a}:x}"), Some("a}:x"));
        assert_eq!(n.topic_of("other:ch:{ops}"), None);
        // A topic that looks like another's key suffix still gets distinct keys.
        assert_ne!(n.key("seq", "a}:lvc:{b"), n.key("lvc", "b"));
    }

    #[test]
    fn messages_parse_and_bad_ones_are_named() {
        let m =
            Message::parse(Bytes::from_static(b"42 1700 wa,wb\n{\"type\":\"update\"}")).unwrap();
        assert_eq!((m.seq, m.event_time), (42, Some(1700)));
        assert_eq!(m.key_list().collect::<Vec<_>>(), ["wa", "wb"]);
        assert_eq!(&m.frame[..], b"{\"type\":\"update\"}");
        let m = Message::parse(Bytes::from_static(b"7 - \n{}")).unwrap();
        assert_eq!((m.event_time, m.key_list().count()), (None, 0));
        for bad in [
            &b"{}"[..],
            b"x - a\n{}",
            b"-1 - a\n{}",
            b"1 y a\n{}",
            b"1\n{}",
            b"\xff\n",
        ] {
            let e = Message::parse(Bytes::copy_from_slice(bad)).unwrap_err();
            assert!(e.to_string().contains("backplane message"), "{e}");
        }
    }

    #[test]
    fn keys_with_separators_are_refused() {
        assert!(valid_key("w6f1c2a9e"));
        for k in ["", "a,b", "a b", "a\nb", "a:b"] {
            assert!(!valid_key(k), "{k:?}");
        }
    }
}
