//! Messages longer than `max_frame_bytes` go out as a text frame and
//! continuation frames (so tungstenite's per-connection write buffer stays
//! small), and clients still see one whole message.
#![cfg(feature = "ws")]

mod common;

use std::num::NonZeroUsize;

use common::*;
use rtdash_transport::TransportConfig;

const MAX_FRAME: usize = 256;

fn config() -> TransportConfig {
    TransportConfig::default().with_max_frame_bytes(NonZeroUsize::new(MAX_FRAME).unwrap())
}

#[tokio::test]
async fn a_long_snapshot_is_fragmented_on_the_wire() {
    let server = start(config()).await;
    // 40 widgets: a snapshot of several KiB, an update of ~200 bytes.
    for key in 0..40 {
        server.publish("dash", key, f64::from(key) + 0.5);
    }
    let mut raw = RawClient::connect(server.addr, "?token=good&topics=dash").await;

    // welcome: short, one final text frame.
    let (fin, opcode, welcome) = raw.read_frame_fin().await;
    assert!(
        fin && opcode == 0x1,
        "welcome frame fin {fin} opcode {opcode}"
    );
    let welcome: serde_json::Value = serde_json::from_slice(&welcome).unwrap();
    assert_eq!(welcome["type"], "welcome");

    // snapshot: a text frame without FIN, continuation frames, the last with FIN.
    let (fin, opcode, first) = raw.read_frame_fin().await;
    assert_eq!((fin, opcode), (false, 0x1), "first fragment");
    assert!(first.len() <= MAX_FRAME);
    let mut message = first;
    let mut fragments = 1;
    loop {
        let (fin, opcode, piece) = raw.read_frame_fin().await;
        assert_eq!(opcode, 0x0, "continuation frame");
        assert!(
            !piece.is_empty() && piece.len() <= MAX_FRAME,
            "{}",
            piece.len()
        );
        message.extend_from_slice(&piece);
        fragments += 1;
        if fin {
            break;
        }
    }
    let snapshot: serde_json::Value =
        serde_json::from_slice(&message).expect("the fragments rebuild one JSON message");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], 40);
    assert_eq!(snapshot["frames"].as_array().unwrap().len(), 40);
    assert!(
        fragments >= message.len() / MAX_FRAME,
        "{fragments} fragments"
    );

    // A short update after it is one frame again.
    server.publish("dash", 3, 7.0);
    let (fin, opcode, update) = raw.read_frame_fin().await;
    assert!(fin && opcode == 0x1);
    let update: serde_json::Value = serde_json::from_slice(&update).unwrap();
    assert_eq!(update["seq"], 41);
}

#[tokio::test]
async fn a_websocket_client_sees_whole_messages() {
    let server = start(config()).await;
    for key in 0..40 {
        server.publish("dash", key, f64::from(key));
    }
    let (mut ws, _) = hello(&server.url(""), "good").await;
    let snap = subscribe(&mut ws, "dash").await;
    assert_eq!(snap["frames"].as_array().unwrap().len(), 40);
    for i in 0..20 {
        server.publish("dash", i, 100.0 + f64::from(i));
    }
    let seqs = read_updates_until(&mut ws, "dash", 60).await;
    assert_eq!(seqs, (41..=60).collect::<Vec<_>>());
}
