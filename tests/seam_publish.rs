//! The publish seam: the engine works against a publisher written here, which assigns its
//! own sequence numbers and keeps its own last values — as a backplane would — and can
//! still deliver to the engine's local subscribers through the hub it was given.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{batch, dashboard, drain, item, t, updates, widget};
use rtdash::publish::{HubPublisher, Payload, Publication, Publisher};
use rtdash::{Aggregation, AlertRule, AlertState, Engine, EngineConfig, WidgetKey};
use serde_json::Value;

/// What the recording publisher saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A publication: topic, kind, keys, cached, the frame it encoded.
    Published {
        topic: String,
        kind: &'static str,
        keys: Vec<WidgetKey>,
        cached: bool,
        frame: Value,
    },
    /// A retirement.
    Retired { topic: String, keys: Vec<WidgetKey> },
}

/// A publisher with its own per-topic sequence and last-value cache, recording every call.
#[derive(Default)]
struct Recording {
    seen: Mutex<Vec<Seen>>,
    seq: Mutex<HashMap<String, u64>>,
    last: Mutex<HashMap<(String, WidgetKey), Value>>,
}

impl Publisher for Recording {
    fn publish(&self, p: &Publication<'_>) {
        let topic = p.topic.to_string();
        let seq = {
            let mut seqs = self.seq.lock().unwrap();
            let s = seqs.entry(topic.clone()).or_insert(0);
            *s += 1;
            *s
        };
        let frame: Value = serde_json::from_str(p.encode(seq).as_str()).unwrap();
        let kind = match p.payload {
            Payload::Update(_) => "update",
            Payload::Alert(_) => "alert",
            Payload::Dashboard(_) => "dashboard",
            _ => "other",
        };
        let keys = p.keys();
        let mut last = self.last.lock().unwrap();
        for k in &keys {
            last.insert((topic.clone(), *k), frame.clone());
        }
        self.seen.lock().unwrap().push(Seen::Published {
            topic,
            kind,
            keys,
            cached: p.cached,
            frame,
        });
    }

    fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]) {
        let mut last = self.last.lock().unwrap();
        for k in keys {
            last.remove(&(topic.to_string(), *k));
        }
        self.seen.lock().unwrap().push(Seen::Retired {
            topic: topic.to_string(),
            keys: keys.to_vec(),
        });
    }
}

impl Recording {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

#[test]
fn the_engine_publishes_every_frame_through_its_publisher() {
    let rec = Arc::new(Recording::default());
    let engine = Engine::builder(EngineConfig::default())
        .publisher({
            let rec = Arc::clone(&rec);
            move |_hub| rec
        })
        .build()
        .unwrap();
    let w = widget("ops", "req", Aggregation::Sum, 60, 1.0, 0);
    let wid = w.widget_id;
    let other = widget("ops", "req", Aggregation::Count, 60, 1.0, 1);
    let oid = other.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w, other]))
        .unwrap();

    // A dashboard change: one uncached `dashboard` frame, seq 1 of the publisher's own.
    let seen = rec.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let Seen::Published {
        topic,
        kind,
        keys,
        cached,
        frame,
    } = &seen[0]
    else {
        panic!("{seen:?}")
    };
    assert_eq!(
        (topic.as_str(), *kind, *cached),
        ("ops", "dashboard", false)
    );
    assert!(keys.is_empty());
    assert_eq!(
        (frame["event"].as_str(), frame["seq"].as_u64()),
        (Some("created"), Some(1))
    );

    // A tick: one update frame for both widgets, keyed by both, with the publisher's seq.
    engine
        .ingest_json_at(&batch(&[("req", 5.0, -10), ("req", 7.0, -5)]), t(0))
        .unwrap();
    let tick = engine.tick(t(0));
    assert_eq!(tick.frames_published, 1);
    let seen = rec.take();
    let [
        Seen::Published {
            kind: "update",
            keys,
            cached: true,
            frame,
            ..
        },
    ] = seen.as_slice()
    else {
        panic!("{seen:?}")
    };
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&WidgetKey::Widget(wid)) && keys.contains(&WidgetKey::Widget(oid)));
    assert_eq!(frame["seq"], 2);
    assert_eq!(item(frame, wid).unwrap()["value"], 12.0);

    // The engine's own hub saw nothing: this publisher did not forward.
    let sub = engine.subscribe("ops").unwrap();
    assert!(updates(&drain(&sub)).is_empty());

    // An alert rule fires: a cached `alert` frame keyed by the rule.
    let rule = AlertRule::above(wid, 10.0);
    let rule_id = rule.id;
    engine.dashboards().add_alert_rule("ops", rule).unwrap();
    rec.take();
    engine
        .ingest_json_at(&batch(&[("req", 1.0, 900)]), t(900))
        .unwrap();
    let tick = engine.tick(t(1000));
    assert_eq!(tick.alerts.len(), 1);
    assert_eq!(tick.alerts[0].state, AlertState::Firing);
    let seen = rec.take();
    let alert = seen
        .iter()
        .find(|s| matches!(s, Seen::Published { kind: "alert", .. }))
        .unwrap_or_else(|| panic!("{seen:?}"));
    let Seen::Published { keys, cached, .. } = alert else {
        unreachable!()
    };
    assert_eq!(keys, &[WidgetKey::Alert(rule_id)]);
    assert!(cached);

    // Removing the widget (and with it the firing rule): the tick retires both keys before
    // it publishes, and the rule's resolution goes out uncached.
    engine.dashboards().remove_widget("ops", wid).unwrap();
    rec.take();
    let tick = engine.tick(t(1100));
    assert_eq!(tick.alerts.len(), 1);
    assert_eq!(tick.alerts[0].state, AlertState::Resolved);
    let seen = rec.take();
    let Seen::Retired { topic, keys } = &seen[0] else {
        panic!("retire first: {seen:?}")
    };
    assert_eq!(topic, "ops");
    assert!(keys.contains(&WidgetKey::Widget(wid)) && keys.contains(&WidgetKey::Alert(rule_id)));
    let resolution = seen
        .iter()
        .find(|s| matches!(s, Seen::Published { kind: "alert", .. }))
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(matches!(resolution, Seen::Published { cached: false, keys, .. } if keys.is_empty()));
    let last = rec.last.lock().unwrap();
    assert!(!last.contains_key(&("ops".to_owned(), WidgetKey::Widget(wid))));
    assert!(!last.contains_key(&("ops".to_owned(), WidgetKey::Alert(rule_id))));
    // The remaining widget's value is still cached.
    assert!(last.contains_key(&("ops".to_owned(), WidgetKey::Widget(oid))));
}

/// A publisher that records and forwards to the engine's hub, as a backplane's edge
/// delivers to local sessions: subscribers see the same gap-free frames as with the
/// default publisher.
#[test]
fn a_publisher_can_deliver_to_local_subscribers_through_the_hub() {
    struct Tee {
        hub: HubPublisher,
        count: Mutex<usize>,
    }
    impl Publisher for Tee {
        fn publish(&self, p: &Publication<'_>) {
            *self.count.lock().unwrap() += 1;
            self.hub.publish(p);
        }
        fn retire(&self, topic: &Arc<str>, keys: &[WidgetKey]) {
            self.hub.retire(topic, keys);
        }
    }
    let tee = Arc::new(Mutex::new(None::<Arc<Tee>>));
    let engine = Engine::builder(EngineConfig::default())
        .publisher({
            let tee = Arc::clone(&tee);
            move |hub| {
                let t = Arc::new(Tee {
                    hub: HubPublisher::new(hub.clone()),
                    count: Mutex::new(0),
                });
                *tee.lock().unwrap() = Some(Arc::clone(&t));
                t
            }
        })
        .build()
        .unwrap();
    let w = widget("ops", "req", Aggregation::Count, 60, 1.0, 0);
    let wid = w.widget_id;
    engine
        .dashboards()
        .create(dashboard("ops", vec![w]))
        .unwrap();
    let sub = engine.subscribe("ops").unwrap();
    drain(&sub);
    let mut seqs = Vec::new();
    for i in 0..3 {
        engine
            .ingest_json_at(&batch(&[("req", 1.0, i * 1000)]), t(i * 1000))
            .unwrap();
        engine.tick(t(i * 1000));
        let frames = drain(&sub);
        let u = updates(&frames);
        assert_eq!(u.len(), 1, "{frames:?}");
        assert_eq!(item(u[0], wid).unwrap()["value"], (i + 1) as f64);
        seqs.push(u[0]["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs[1], seqs[0] + 1);
    assert_eq!(seqs[2], seqs[1] + 1);
    let tee = tee.lock().unwrap().clone().unwrap();
    // One dashboard frame and three updates went through it.
    assert_eq!(*tee.count.lock().unwrap(), 4);
}
