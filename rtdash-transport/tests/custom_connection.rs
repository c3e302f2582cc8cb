//! A host's own transport plugs in through the `Connection` trait; the
//! session logic is tested here without any socket.

use std::time::SystemTime;

use rtdash_transport::{
    CloseCode, Connection, Frame, FrameHub, Incoming, Outgoing, Principal, StaticTokens, Topic,
    TopicAccess, Transport, TransportConfig, TransportError, unix_millis,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A connection made of channels.
struct ChannelConnection {
    from_client: mpsc::Receiver<Incoming>,
    to_client: mpsc::Sender<Value>,
    pending: Vec<Value>,
}

impl Connection for ChannelConnection {
    async fn recv(&mut self) -> Option<Result<Incoming, TransportError>> {
        self.from_client.recv().await.map(Ok)
    }

    async fn feed(&mut self, out: Outgoing<'_>) -> Result<(), TransportError> {
        let v: Value = serde_json::from_str(out.frame.as_str())
            .map_err(|e| TransportError::Protocol(e.to_string()))?;
        if let Some(topic) = out.topic {
            assert_eq!(v["topic"], topic);
            assert_eq!(v["seq"], out.seq);
        }
        self.pending.push(v);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        for v in self.pending.drain(..) {
            self.to_client
                .send(v)
                .await
                .map_err(|_| TransportError::Closed)?;
        }
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        let _ = self
            .to_client
            .send(json!({"closed": code.code(), "reason": reason}))
            .await;
    }
}

#[tokio::test]
async fn a_custom_connection_runs_a_full_session() {
    let auth = StaticTokens::new().with_token("tok", Principal::new("host", TopicAccess::all()));
    let transport = Transport::new(FrameHub::<u8>::default(), auth, TransportConfig::default());
    let (client_tx, from_client) = mpsc::channel(8);
    let (to_client, mut client_rx) = mpsc::channel(8);
    let conn = ChannelConnection {
        from_client,
        to_client,
        pending: Vec::new(),
    };
    let t = transport.clone();
    let session = tokio::spawn(async move { t.run(conn, None).await });

    let send = |v: Value| Incoming::Text(v.to_string());
    client_tx
        .send(send(json!({"type": "hello", "token": "tok"})))
        .await
        .unwrap();
    assert_eq!(client_rx.recv().await.unwrap()["type"], "welcome");
    client_tx
        .send(send(json!({"type": "subscribe", "topics": ["d"]})))
        .await
        .unwrap();
    assert_eq!(client_rx.recv().await.unwrap()["type"], "snapshot");

    let topic: Topic = "d".into();
    let now = unix_millis(SystemTime::now());
    transport.hub().publish_with(&topic, [1u8, 2], |seq| {
        let items = json!([{"widget": "a", "value": 1.0}, {"widget": "b", "value": null}]);
        let update = json!({"type": "update", "topic": "d", "seq": seq, "sent_at": now,
                            "items": items});
        Frame::from_string(update.to_string())
    });
    let up = client_rx.recv().await.unwrap();
    assert_eq!(up["items"].as_array().map(Vec::len), Some(2));

    client_tx.send(Incoming::Binary(3)).await.unwrap();
    let closed = client_rx.recv().await.unwrap();
    assert_eq!(closed["closed"], 1003);
    session.await.unwrap();
    assert_eq!(transport.active_connections(), 0);
}

#[tokio::test]
async fn a_custom_connection_can_bring_a_token() {
    let auth = StaticTokens::new();
    let transport = Transport::new(FrameHub::<u8>::default(), auth, TransportConfig::default());
    let (_client_tx, from_client) = mpsc::channel(1);
    let (to_client, mut client_rx) = mpsc::channel(8);
    let conn = ChannelConnection {
        from_client,
        to_client,
        pending: Vec::new(),
    };
    transport.run(conn, Some("unknown".into())).await;
    assert_eq!(client_rx.recv().await.unwrap()["closed"], 4001);
}
