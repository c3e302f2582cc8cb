//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rtdash_fanout::{Event, Hub, HubConfig, Subscription, TryRecvError};

pub type TestHub = Hub<u32, u32, Arc<str>>;
pub type TestSub = Subscription<u32, u32, Arc<str>>;

pub fn hub() -> TestHub {
    Hub::new(HubConfig::default())
}

pub fn msg(s: impl AsRef<str>) -> Arc<str> {
    Arc::from(s.as_ref())
}

/// Everything ready now.
pub fn drain(sub: &TestSub) -> Vec<Event<u32, Arc<str>>> {
    let mut out = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(ev) => out.push(ev),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return out,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// Applies events to a client-side view of one topic: key-less messages are
/// ignored, message text is "key=value". Returns the last seq seen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct View {
    pub seq: u64,
    pub values: BTreeMap<String, String>,
}

impl View {
    pub fn apply_text(&mut self, text: &str) {
        for kv in text.split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                self.values.insert(k.to_owned(), v.to_owned());
            }
        }
    }
}
