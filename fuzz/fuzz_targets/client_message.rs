//! Client text messages of the wire protocol (`hello`, `subscribe`, `unsubscribe`, `ping`),
//! through the transport's public entry point for a connection: `Transport::run` with a
//! scripted `Connection` (the parser itself, `parse_client`, is private to the crate).
//!
//! Input: the first byte chooses whether the session is authenticated up front (a token
//! given to `run`, as for SSE or a URL token) or must say `hello` first; the rest is split
//! at `0xFF` bytes (never part of UTF-8) into text messages, sent in order, after which the
//! client goes away.
//!
//! Checks: no panic, the session ends, and every frame written is one JSON object with a
//! string `type`.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use rtdash_transport::{
    CloseCode, Connection, Frame, FrameHub, Incoming, Outgoing, Principal, StaticTokens, Topic,
    TopicAccess, Transport, TransportConfig, TransportError,
};

/// A client that sends `script`, then goes away; frames are checked as they are fed.
struct Scripted {
    script: VecDeque<String>,
}

impl Connection for Scripted {
    async fn recv(&mut self) -> Option<Result<Incoming, TransportError>> {
        self.script.pop_front().map(|t| Ok(Incoming::Text(t)))
    }

    async fn feed(&mut self, out: Outgoing<'_>) -> Result<(), TransportError> {
        let text = out.frame.as_str();
        let v: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("a frame that is not JSON ({e}): {text}"));
        assert!(
            v["type"].is_string(),
            "a frame without a string `type`: {text}"
        );
        if let Some(topic) = out.topic {
            assert_eq!(v["topic"].as_str(), Some(topic), "{text}");
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        assert!(
            CloseCode::from_code(code.code()) == Some(code),
            "an undocumented close code {code:?} ({reason})"
        );
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let script: VecDeque<String> = rest
        .split(|&b| b == 0xFF)
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let auth = StaticTokens::new()
        .with_token(
            "tok",
            Principal::new("alice", TopicAccess::topics(["ops", "team.*"])),
        )
        .with_token("root", Principal::new("root", TopicAccess::all()));
    let hub = FrameHub::<u8>::default();
    let topic: Topic = "ops".into();
    hub.publish_with(&topic, [1], |seq| {
        Frame::from_string(format!(
            r#"{{"type":"update","topic":"ops","seq":{seq},"items":[]}}"#
        ))
    });
    let transport = Transport::new(hub, auth, TransportConfig::default());
    let token = match mode % 3 {
        0 => None,
        1 => Some("tok".to_owned()),
        _ => Some("root".to_owned()),
    };
    let conn = Scripted { script };
    runtime().block_on(transport.run(conn, token));
    assert_eq!(transport.active_connections(), 0, "the session ended");
});
