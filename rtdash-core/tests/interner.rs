//! The series interner: order independence, dense unique ids, the cardinality guard, and a
//! serde round trip that keeps ids.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rtdash_core::{
    CoreError, MetricEvent, SeriesId, SeriesInterner, SeriesKey, TagFilter, Tags, Timestamp,
};

#[test]
fn tag_order_does_not_matter() {
    let mut i = SeriesInterner::new();
    let a = i
        .get_or_intern("cpu", [("host", "a"), ("dc", "eu"), ("rack", "7")])
        .unwrap();
    for order in [
        [("dc", "eu"), ("host", "a"), ("rack", "7")],
        [("rack", "7"), ("dc", "eu"), ("host", "a")],
        [("host", "a"), ("rack", "7"), ("dc", "eu")],
    ] {
        assert_eq!(i.get("cpu", order), Some(a));
        assert_eq!(i.get_or_intern("cpu", order).unwrap(), a);
    }
    assert_eq!(i.len(), 1);
    let key = i.key(a).unwrap();
    let tags: Vec<_> = key.tags().collect();
    assert_eq!(tags, [("dc", "eu"), ("host", "a"), ("rack", "7")]);
}

#[test]
fn different_series_get_different_ids() {
    let mut i = SeriesInterner::new();
    let ids = [
        i.get_or_intern("cpu", []).unwrap(),
        i.get_or_intern("cpu", [("host", "a")]).unwrap(),
        i.get_or_intern("cpu", [("host", "b")]).unwrap(),
        i.get_or_intern("cpu", [("hostx", "a")]).unwrap(),
        i.get_or_intern("mem", [("host", "a")]).unwrap(),
        i.get_or_intern("cpu", [("host", "a"), ("dc", "eu")])
            .unwrap(),
        // Boundaries between key and value must not blur.
        i.get_or_intern("cpu", [("ho", "sta")]).unwrap(),
        i.get_or_intern("cpu", [("hos", "ta")]).unwrap(),
    ];
    let idx: Vec<usize> = ids.iter().map(|id| id.index()).collect();
    assert_eq!(idx, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(i.series_of_metric("cpu").len(), 7);
    assert_eq!(i.series_of_metric("mem"), &[ids[4]]);
    assert!(i.series_of_metric("disk").is_empty());
    let mut metrics: Vec<&str> = i.metrics().collect();
    metrics.sort_unstable();
    assert_eq!(metrics, ["cpu", "mem"]);
}

#[test]
fn unknown_series_and_bad_input_are_not_found() {
    let mut i = SeriesInterner::new();
    i.get_or_intern("cpu", [("host", "a")]).unwrap();
    assert_eq!(i.get("cpu", []), None);
    assert_eq!(i.get("cpu", [("host", "b")]), None);
    assert_eq!(i.get("cpu", [("host", "a"), ("host", "a")]), None);
    assert_eq!(i.get("", []), None);
    assert_eq!(i.key(SeriesId::from_index(1).unwrap()), None);
}

#[test]
fn invalid_keys_are_refused() {
    let mut i = SeriesInterner::new();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case<'_>; 3] = [
        ("", vec![], "invalid series key: the metric name is empty"),
        (
            "cpu",
            vec![("", "x")],
            "invalid series key: metric `cpu` has a tag with an empty key",
        ),
        (
            "cpu",
            vec![("a", "1"), ("b", "2"), ("a", "3")],
            "invalid series key: metric `cpu` has the tag key `a` more than once",
        ),
    ];
    for (metric, tags, want) in cases {
        let err = i.get_or_intern(metric, tags.iter().copied()).unwrap_err();
        assert_eq!(err.to_string(), want);
        let err = SeriesKey::new(metric, tags).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    assert!(i.is_empty());
}

#[test]
fn cardinality_guard() {
    let mut i = SeriesInterner::with_max_series(2);
    let a = i.get_or_intern("cpu", [("host", "a")]).unwrap();
    let b = i.get_or_intern("cpu", [("host", "b")]).unwrap();
    let err = i.get_or_intern("cpu", [("host", "c")]).unwrap_err();
    assert!(matches!(err, CoreError::TooManySeries { limit: 2, .. }));
    assert!(
        err.to_string().starts_with(
            r#"too many series: interning `cpu{host="c"}` would exceed the limit of 2 series"#
        ),
        "{err}"
    );
    // Known series are still served.
    assert_eq!(i.get_or_intern("cpu", [("host", "a")]).unwrap(), a);
    assert_eq!(i.get_or_intern("cpu", [("host", "b")]).unwrap(), b);
    assert_eq!(i.len(), 2);
    i.set_max_series(3);
    assert_eq!(i.get_or_intern("cpu", [("host", "c")]).unwrap().index(), 2);
    assert_eq!(SeriesInterner::with_max_series(0).max_series(), 0);
    assert!(
        SeriesInterner::with_max_series(0)
            .get_or_intern("x", [])
            .is_err()
    );
}

#[test]
fn interns_events() {
    let mut i = SeriesInterner::new();
    let e = MetricEvent::new("api.latency", 1.0, Timestamp::EPOCH)
        .with_tag("region", "eu")
        .with_tag("host", "a");
    let id = i.intern_event(&e).unwrap();
    assert_eq!(
        i.get("api.latency", [("region", "eu"), ("host", "a")]),
        Some(id)
    );
    assert_eq!(i.intern_event(&e).unwrap(), id);
    let key = SeriesKey::of_event(&e).unwrap();
    assert_eq!(i.key(id), Some(&key));
    assert_eq!(i.get_key(&key), Some(id));
    assert_eq!(key.to_tags(), e.tags);
    assert!(TagFilter::new().with("region", "eu").matches(&key));
    assert!(TagFilter::new().with("region", "eu").matches_tags(&e.tags));
}

#[test]
fn serde_round_trip_keeps_ids() {
    let mut i = SeriesInterner::with_max_series(100);
    for n in 0..20 {
        let host = format!("h{n}");
        let metric = if n % 3 == 0 { "mem" } else { "cpu" };
        i.get_or_intern(metric, [("host", host.as_str()), ("dc", "eu")])
            .unwrap();
    }
    let json = serde_json::to_string(&i).unwrap();
    assert!(
        json.starts_with(r#"[{"metric":"mem","tags":{"dc":"eu","host":"h0"}}"#),
        "{json}"
    );
    let mut restored: SeriesInterner = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.len(), i.len());
    for (id, key) in i.iter() {
        assert_eq!(restored.key(id), Some(key));
        assert_eq!(restored.get_key(key), Some(id));
    }
    assert_eq!(restored.series_of_metric("cpu"), i.series_of_metric("cpu"));
    assert_eq!(restored.series_of_metric("mem"), i.series_of_metric("mem"));
    let next = restored.get_or_intern("disk", []).unwrap();
    assert_eq!(next.index(), 20);
    let cloned = restored.clone();
    assert_eq!(cloned.get("disk", []), Some(next));
}

#[test]
fn bad_serialized_interners_are_refused() {
    let dup = r#"[{"metric":"cpu","tags":{"a":"1"}},{"metric":"cpu","tags":{"a":"1"}}]"#;
    let err = serde_json::from_str::<SeriesInterner>(dup)
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#"`cpu{a="1"}` appears twice"#), "{err}");
    let empty = r#"[{"metric":"","tags":{}}]"#;
    let err = serde_json::from_str::<SeriesInterner>(empty)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the metric name is empty"), "{err}");
    let extra = r#"[{"metric":"cpu","tag":{}}]"#;
    assert!(serde_json::from_str::<SeriesInterner>(extra).is_err());
    let not_list = r#"{"metric":"cpu"}"#;
    assert!(serde_json::from_str::<SeriesInterner>(not_list).is_err());
    let key: SeriesKey = serde_json::from_str(r#"{"metric":"cpu"}"#).unwrap();
    assert_eq!(key.tag_count(), 0);
}

#[test]
fn series_id_from_index() {
    assert_eq!(SeriesId::from_index(5).unwrap().index(), 5);
    assert!(SeriesId::from_index(u32::MAX as usize).is_some());
    #[cfg(target_pointer_width = "64")]
    assert!(SeriesId::from_index(u32::MAX as usize + 1).is_none());
    assert_eq!(
        serde_json::to_string(&SeriesId::from_index(7).unwrap()).unwrap(),
        "7"
    );
}

fn tag_set() -> impl Strategy<Value = Tags> {
    prop::collection::btree_map("[a-c]{1,2}", "[x-z]{0,2}", 0..4)
}

proptest! {
    /// Against an oracle map from (metric, tags) to id: equal keys get equal ids, distinct keys
    /// distinct dense ids, in any tag order.
    #[test]
    fn matches_oracle(ops in prop::collection::vec(("[mn]", tag_set(), any::<prop::sample::Index>()), 1..200)) {
        let mut interner = SeriesInterner::new();
        let mut oracle: BTreeMap<(String, Tags), usize> = BTreeMap::new();
        for (metric, tags, rot) in ops {
            let mut pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if !pairs.is_empty() {
                let r = rot.index(pairs.len());
                pairs.rotate_left(r);
                pairs.reverse();
            }
            let known = oracle.get(&(metric.clone(), tags.clone())).copied();
            prop_assert_eq!(interner.get(&metric, pairs.iter().copied()).map(SeriesId::index), known);
            let next = oracle.len();
            let want = *oracle.entry((metric.clone(), tags.clone())).or_insert(next);
            let id = interner.get_or_intern(&metric, pairs.iter().copied()).unwrap();
            prop_assert_eq!(id.index(), want);
            let key = interner.key(id).unwrap();
            prop_assert_eq!(key.metric(), metric.as_str());
            prop_assert_eq!(key.to_tags(), tags);
        }
        prop_assert_eq!(interner.len(), oracle.len());
        let restored: SeriesInterner = serde_json::from_str(&serde_json::to_string(&interner).unwrap()).unwrap();
        for ((metric, tags), id) in &oracle {
            let got = restored.get(metric, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert_eq!(got.map(SeriesId::index), Some(*id));
        }
    }
}

/// Up to 12 tags (beyond the 8 a lookup keeps on the stack), strings of 0 to 40 characters
/// (across the 8- and 16-byte word boundaries of the hash), some of them multi-byte.
fn wide_tag_set() -> impl Strategy<Value = Tags> {
    prop::collection::btree_map("[a-d]{1,3}|k[a-z0-9é]{8,24}", "[x-zé]{0,40}", 0..12)
}

proptest! {
    /// Against the same oracle with many and long tags, in reversed order half of the time.
    #[test]
    fn matches_oracle_with_many_long_tags(
        ops in prop::collection::vec(("m|metric\\.[a-z]{10,20}", wide_tag_set(), any::<bool>()), 1..80)
    ) {
        let mut interner = SeriesInterner::new();
        let mut oracle: BTreeMap<(String, Tags), usize> = BTreeMap::new();
        for (metric, tags, reverse) in ops {
            let mut pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if reverse {
                pairs.reverse();
            }
            let known = oracle.get(&(metric.clone(), tags.clone())).copied();
            prop_assert_eq!(interner.get(&metric, pairs.iter().copied()).map(SeriesId::index), known);
            let next = oracle.len();
            let want = *oracle.entry((metric.clone(), tags.clone())).or_insert(next);
            let id = interner.get_or_intern(&metric, pairs.iter().copied()).unwrap();
            prop_assert_eq!(id.index(), want);
            let key = interner.key(id).unwrap();
            prop_assert_eq!(interner.get_key(key), Some(id));
            prop_assert_eq!(key.to_tags(), tags);
        }
        prop_assert_eq!(interner.len(), oracle.len());
    }

    /// A key's accessors and ordering agree with the plain (metric, sorted tags) it was built
    /// from: ordered by metric, then tag by tag.
    #[test]
    fn key_agrees_with_plain_oracle(
        a in ("[ab]{1,2}", wide_tag_set()),
        b in ("[ab]{1,2}", wide_tag_set()),
    ) {
        let ka = SeriesKey::new(&a.0, a.1.iter().rev()).unwrap();
        let kb = SeriesKey::new(&b.0, &b.1).unwrap();
        let plain = |(m, t): &(String, Tags)| (m.clone(), t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>());
        prop_assert_eq!(ka.cmp(&kb), plain(&a).cmp(&plain(&b)));
        prop_assert_eq!(ka == kb, a == b);
        prop_assert_eq!(ka.metric(), a.0.as_str());
        prop_assert_eq!(ka.tag_count(), a.1.len());
        let tags: Vec<(&str, &str)> = ka.tags().collect();
        let want: Vec<(&str, &str)> = a.1.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        prop_assert_eq!(tags, want);
        for (k, v) in &a.1 {
            prop_assert_eq!(ka.tag(k), Some(v.as_str()));
        }
        for k in b.1.keys() {
            prop_assert_eq!(ka.tag(k), a.1.get(k).map(String::as_str));
        }
        prop_assert!(ka.matches(&a.0, a.1.iter().rev().map(|(k, v)| (k.as_str(), v.as_str()))));
        let json = serde_json::to_string(&ka).unwrap();
        prop_assert_eq!(serde_json::from_str::<SeriesKey>(&json).unwrap(), ka);
    }
}
