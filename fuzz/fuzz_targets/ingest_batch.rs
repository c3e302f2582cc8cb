//! Ingest of untrusted request bodies: `rtdash_core::decode_batch_borrowed` (the fast path
//! the HTTP API uses) beside `decode_batch` (its owned twin), then the facade's
//! `Engine::ingest_json_at` on the same bytes.
//!
//! Checks: no panic; both decoders give the same verdicts (same accepted events, same
//! rejections and messages, same whole-body error); every element is counted once; every
//! accepted event passes `MetricEvent::validate` and survives a JSON round trip unchanged;
//! the engine's report counts every element once.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rtdash::{Engine, EngineConfig, MemoryStore};
use rtdash_core::{
    BorrowedEvent, EventId, MetricEvent, Tags, Timestamp, ValidationLimits, decode_batch,
    decode_batch_borrowed,
};

const NOW: i64 = 1_700_000_000_000;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig::default(), MemoryStore::new())
            .unwrap_or_else(|e| panic!("engine: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_millis(NOW);
    let limits = ValidationLimits::default();
    let borrowed = decode_batch_borrowed(data, &limits, now);
    let owned = decode_batch(data, &limits, now);
    match (&borrowed, &owned) {
        (Ok(b), Ok(o)) => {
            assert_eq!(b.rejected, o.rejected, "same rejections");
            assert_eq!(b.items.len(), o.accepted.len(), "same number accepted");
            let mut seen: Vec<usize> = b
                .items
                .iter()
                .map(BorrowedEvent::index)
                .chain(b.rejected.iter().map(|r| r.index))
                .collect();
            seen.sort_unstable();
            assert!(
                seen.iter().copied().eq(0..seen.len()),
                "every element once: {seen:?}"
            );
            for (item, event) in b.items.iter().zip(&o.accepted) {
                let from_borrowed = match item {
                    BorrowedEvent::Borrowed {
                        metric,
                        tags,
                        event_time,
                        value,
                        id,
                        ..
                    } => MetricEvent {
                        metric_name: (*metric).to_owned(),
                        value: *value,
                        tags: b
                            .tags(tags.clone())
                            .iter()
                            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                            .collect::<Tags>(),
                        event_time: *event_time,
                        id: id.map(|s| EventId::new(s).unwrap_or_else(|e| panic!("id: {e}"))),
                    },
                    BorrowedEvent::Owned { event, .. } => event.clone(),
                };
                assert_eq!(&from_borrowed, event, "same event");
                assert_eq!(event.validate(&limits, now), Ok(()), "accepted is valid");
                let json = serde_json::to_vec(event).unwrap_or_else(|e| panic!("encode: {e}"));
                let again = decode_batch(&json, &limits, now)
                    .unwrap_or_else(|e| panic!("own JSON {}: {e}", String::from_utf8_lossy(&json)));
                assert_eq!(
                    again.accepted.as_slice(),
                    std::slice::from_ref(event),
                    "round trip of {}",
                    String::from_utf8_lossy(&json)
                );
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "same error"),
        _ => panic!("the decoders disagree: {borrowed:?} / {owned:?}"),
    }

    match engine().ingest_json_at(data, now) {
        Ok(report) => {
            let total = report.accepted + report.rejected + report.late + report.duplicates;
            let elements = owned.map(|o| o.len()).unwrap_or(usize::MAX);
            assert_eq!(
                total, elements,
                "the report counts every element once: {report:?}"
            );
            assert_eq!(report.errors.len(), report.rejected, "{report:?}");
        }
        Err(e) => assert!(owned.is_err(), "the engine refused a decodable body: {e}"),
    }
});
