//! Batch decoding: good events are accepted, bad ones rejected one by one, and only
//! malformed JSON as a whole fails the batch.

use std::time::Duration;

use rtdash_core::{
    CoreError, DecodedBatch, MetricEvent, Timestamp, ValidationLimits, decode_batch, decode_event,
};

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn decode(json: &str) -> Result<DecodedBatch, CoreError> {
    decode_batch(json.as_bytes(), &ValidationLimits::default(), NOW)
}

fn rejected(batch: &DecodedBatch) -> Vec<(usize, String)> {
    batch
        .rejected
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect()
}

#[test]
fn mixed_batch_keeps_good_events() {
    let json = r#"[
        {"metric_name": "api.latency", "value": 1.5, "event_time": 1700000000000,
         "tags": {"region": "eu"}, "id": "a-1"},
        {"metric_name": "api.latency", "value": "12", "event_time": 1700000000000},
        {"metric_name": "api.latency", "value": null, "event_time": 1700000000000},
        {"metric_name": "api latency", "value": 2, "event_time": 1700000000000},
        {"metric_name": "api.latency", "value": 1e999, "event_time": 1700000000000},
        {"metric_name": "api.latency", "value": 3, "event_time": "2023-11-14T22:13:20.250Z"},
        {"metric_name": "api.latency", "value": 4, "event_time": 1800000000000},
        "not an event",
        {"metric_name": "api.latency", "value": -1e308, "event_time": 1699999999999,
         "tags": {"region": "x"}}
    ]"#;
    let batch = decode(json).unwrap();
    assert_eq!(batch.len(), 9);
    let values: Vec<f64> = batch.accepted.iter().map(|e| e.value).collect();
    assert_eq!(values, [1.5, 3.0, -1e308]);
    assert_eq!(batch.accepted[0].id.as_ref().unwrap().as_str(), "a-1");
    assert_eq!(batch.accepted[1].event_time.as_millis(), 1_700_000_000_250);
    let r = rejected(&batch);
    let indices: Vec<usize> = r.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [1, 2, 3, 4, 6, 7]);
    assert_eq!(r[0].1, "value: expected a number, found a string");
    assert!(
        r[1].1
            .starts_with("value: is null; expected a finite number"),
        "{}",
        r[1].1
    );
    assert!(
        r[2].1.starts_with("metric_name: character ' ' at byte 3"),
        "{}",
        r[2].1
    );
    assert_eq!(
        r[3].1,
        "value: 1e999 is out of the range of a 64-bit float (it would be infinite)"
    );
    assert!(
        r[4].1.starts_with("event_time: 1800000000000"),
        "{}",
        r[4].1
    );
    assert!(r[4].1.contains("max_future_skew"), "{}", r[4].1);
    assert_eq!(r[5].1, "event: expected a JSON object, found a string");
    assert_eq!(
        batch.rejected[0].to_string(),
        "event [1]: value: expected a number, found a string"
    );
}

#[test]
fn every_element_rejected_is_still_ok() {
    let batch = decode(r#"[1, true, null, [], {}]"#).unwrap();
    assert!(batch.accepted.is_empty());
    let r = rejected(&batch);
    assert_eq!(
        r,
        [
            (
                0,
                "event: expected a JSON object, found a number".to_owned()
            ),
            (
                1,
                "event: expected a JSON object, found a boolean".to_owned()
            ),
            (2, "event: expected a JSON object, found null".to_owned()),
            (
                3,
                "event: expected a JSON object, found an array".to_owned()
            ),
            (
                4,
                "metric_name: missing; expected a string such as \"api.request.latency\""
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn overflowing_numbers_are_per_element() {
    for v in ["1e999", "-1e999", "1.8e308", "123456789e301"] {
        let json = format!(
            r#"[{{"metric_name":"m","value":{v},"event_time":1}},{{"metric_name":"m","value":1,"event_time":1}}]"#
        );
        let batch = decode(&json).unwrap();
        assert_eq!(batch.accepted.len(), 1, "{v}");
        assert_eq!(batch.rejected[0].index, 0);
        assert!(
            batch.rejected[0]
                .error
                .to_string()
                .contains("out of the range"),
            "{v}"
        );
    }
    // Underflow is not an error: it is zero.
    let batch = decode(r#"[{"metric_name":"m","value":1e-999,"event_time":1}]"#).unwrap();
    assert_eq!(batch.accepted[0].value, 0.0);
}

#[test]
fn event_time_forms() {
    let cases = [
        (
            "1.5",
            "event_time: expected integer milliseconds since the Unix epoch, found the non-integer number 1.5",
        ),
        (
            "\"yesterday\"",
            "event_time: invalid timestamp `yesterday`: expected a four-digit year",
        ),
        (
            "18446744073709551615",
            "event_time: timestamp 18446744073709551615 ms is beyond the year 292 million",
        ),
        (
            "{}",
            "event_time: expected integer milliseconds since the Unix epoch (or an RFC 3339 string), found an object",
        ),
        (
            "null",
            "event_time: expected integer milliseconds since the Unix epoch (or an RFC 3339 string), found null",
        ),
    ];
    for (t, want) in cases {
        let json = format!(r#"[{{"metric_name":"m","value":1,"event_time":{t}}}]"#);
        let batch = decode(&json).unwrap();
        let got = batch.rejected[0].error.to_string();
        assert!(got.starts_with(want), "{t}: {got}");
    }
    let batch = decode(r#"[{"metric_name":"m","value":1,"event_time":-5}]"#).unwrap();
    assert_eq!(batch.accepted[0].event_time.as_millis(), -5);
}

#[test]
fn tags_and_id_errors() {
    let cases = [
        (
            r#""tags": null"#,
            "tags: is null; omit `tags` or send {} for an event without tags",
        ),
        (
            r#""tags": "a=b""#,
            "tags: expected an object of string values, found a string",
        ),
        (
            r#""tags": {"host": null}"#,
            "tags[\"host\"]: expected a string value, found null",
        ),
        (
            r#""tags": {"host": "a", "n": 5}"#,
            "tags[\"n\"]: expected a string value, found a number",
        ),
        (
            r#""tags": {"bad key": "a"}"#,
            "tags[\"bad key\"]: character ' ' at byte 3 is not allowed",
        ),
        (r#""id": 42"#, "id: expected a string, found a number"),
        (r#""id": """#, "id: invalid event id: the id is empty"),
        (
            r#""extra": 1"#,
            "extra: unknown field; an event has only metric_name, value, tags, event_time, id",
        ),
    ];
    for (field, want) in cases {
        let json = format!(r#"[{{"metric_name":"m","value":1,"event_time":1,{field}}}]"#);
        let batch = decode(&json).unwrap();
        assert!(batch.accepted.is_empty(), "{field}");
        let got = batch.rejected[0].error.to_string();
        assert!(got.starts_with(want), "{field}: {got}");
    }
    // `"id": null` means no id.
    let batch = decode(r#"[{"metric_name":"m","value":1,"event_time":1,"id":null}]"#).unwrap();
    assert_eq!(batch.accepted[0].id, None);
}

#[test]
fn validation_limits_apply_to_batches() {
    let limits = ValidationLimits::default()
        .with_max_tags(1)
        .with_max_age(Some(Duration::from_secs(10)));
    let json = br#"[
        {"metric_name":"m","value":1,"event_time":1700000000000,"tags":{"a":"1","b":"2"}},
        {"metric_name":"m","value":1,"event_time":1600000000000},
        {"metric_name":"m","value":1,"event_time":1699999995000,"tags":{"a":"1"}}
    ]"#;
    let batch = decode_batch(json, &limits, NOW).unwrap();
    assert_eq!(batch.accepted.len(), 1);
    let r = rejected(&batch);
    assert!(
        r[0].1.starts_with("tags: 2 tags, the limit is 1"),
        "{}",
        r[0].1
    );
    assert!(r[1].1.contains("max_age"), "{}", r[1].1);
}

fn malformed(json: &[u8]) -> (usize, usize, String) {
    match decode_batch(json, &ValidationLimits::default(), NOW) {
        Err(CoreError::MalformedJson {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected MalformedJson, got {other:?}"),
    }
}

#[test]
fn malformed_json_fails_the_whole_batch() {
    let (line, column, message) = malformed(b"[\n  {\"metric_name\": \"m\", \"value\": 1,,}\n]");
    assert_eq!(
        (line, column, message.as_str()),
        (2, 35, "key must be a string")
    );

    let (line, _, message) = malformed(br#"[{"metric_name": "m", "value": 1, "event_time": 1}"#);
    assert_eq!(line, 1);
    assert!(message.contains("EOF"), "{message}");

    let (_, _, message) = malformed(b"   ");
    assert!(message.contains("the input is empty"), "{message}");
    let (_, _, message) = malformed(b"");
    assert!(message.contains("the input is empty"), "{message}");

    // JSON has no NaN or Infinity literals.
    let (_, _, message) = malformed(br#"[{"metric_name":"m","value":NaN,"event_time":1}]"#);
    assert!(message.contains("expected value"), "{message}");

    // Trailing garbage and invalid UTF-8.
    malformed(br#"[] []"#);
    malformed(b"[{\"metric_name\":\"\xff\",\"value\":1,\"event_time\":1}]");
    malformed(b"nonsense");

    let err = decode_batch(b"[,]", &ValidationLimits::default(), NOW).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed JSON at line 1, column 2: "),
        "{err}"
    );
}

#[test]
fn top_level_must_be_array_or_object() {
    for (json, found) in [
        ("\"x\"", "a string"),
        ("42", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ] {
        let err = decode(json).unwrap_err();
        assert_eq!(err, CoreError::NotABatch { found });
        assert_eq!(
            err.to_string(),
            format!(
                "expected a JSON array of metric events (or a single event object), found {found}"
            )
        );
    }
}

#[test]
fn single_object_is_a_batch_of_one() {
    let batch = decode(r#" {"metric_name":"m","value":1,"event_time":1} "#).unwrap();
    assert_eq!(
        batch.accepted,
        [MetricEvent::new("m", 1.0, Timestamp::from_millis(1))]
    );
    let batch = decode(r#"{"metric_name":"m","value":"x","event_time":1}"#).unwrap();
    assert_eq!(batch.rejected[0].index, 0);
}

#[test]
fn empty_array_is_an_empty_batch() {
    let batch = decode(" [ ] ").unwrap();
    assert!(batch.is_empty());
}

#[test]
fn many_events_keep_their_indices() {
    let mut json = String::from("[");
    for i in 0..1000 {
        if i > 0 {
            json.push(',');
        }
        if i % 7 == 3 {
            json.push_str(r#"{"metric_name":"m","value":"bad","event_time":1}"#);
        } else {
            json.push_str(&format!(
                r#"{{"metric_name":"m","value":{i},"event_time":1}}"#
            ));
        }
    }
    json.push(']');
    let batch = decode(&json).unwrap();
    assert_eq!(batch.len(), 1000);
    assert!(batch.rejected.iter().all(|r| r.index % 7 == 3));
    assert!(batch.accepted.iter().all(|e| e.value as usize % 7 != 3));
    assert_eq!(
        batch.rejected.len(),
        (0..1000).filter(|i| i % 7 == 3).count()
    );
}

#[test]
fn decode_single_event() {
    let e = decode_event(
        br#"{"metric_name":"m","value":2.5,"event_time":1,"tags":{"a":"b"}}"#,
        &ValidationLimits::default(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        e,
        MetricEvent::new("m", 2.5, Timestamp::from_millis(1)).with_tag("a", "b")
    );
    let err = decode_event(
        br#"{"metric_name":"m","value":[],"event_time":1}"#,
        &ValidationLimits::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "value: expected a number, found an array");
    let err = decode_event(b"{", &ValidationLimits::default(), NOW).unwrap_err();
    assert!(matches!(err, CoreError::MalformedJson { .. }));
    let err = decode_event(
        br#"{"metric_name":"m","value":NaN}"#,
        &ValidationLimits::default(),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, CoreError::MalformedJson { .. }));
}

/// The fast path's verdicts against the full decoder, element by element.
mod fast_path_oracle {
    use proptest::prelude::*;
    use rtdash_core::{
        BorrowedEvent, EventId, MetricEvent, Timestamp, ValidationLimits, decode_batch,
        decode_batch_borrowed, decode_event,
    };
    use serde_json::value::RawValue;

    const NOW: i64 = 1_700_000_000_000;

    /// Accepted events and refusals, each with its batch index.
    type Verdicts = (Vec<(usize, MetricEvent)>, Vec<(usize, String)>);

    fn limits() -> ValidationLimits {
        ValidationLimits::default().with_max_tags(4)
    }

    fn skew_ms() -> i64 {
        i64::try_from(limits().max_future_skew.as_millis()).unwrap()
    }

    /// `decode_batch_borrowed`, borrowed events turned into owned ones.
    fn fast(body: &[u8]) -> Verdicts {
        let b = decode_batch_borrowed(body, &limits(), Timestamp::from_millis(NOW)).unwrap();
        let ok = b
            .items
            .iter()
            .map(|it| match it {
                BorrowedEvent::Owned { index, event } => (*index, event.clone()),
                BorrowedEvent::Borrowed {
                    index,
                    metric,
                    tags,
                    event_time,
                    value,
                    id,
                } => {
                    let mut e = MetricEvent::new(*metric, *value, *event_time);
                    for (k, v) in b.tags(tags.clone()) {
                        e = e.with_tag(*k, *v);
                    }
                    if let Some(id) = id {
                        e = e.with_id(EventId::new(*id).unwrap());
                    }
                    (*index, e)
                }
            })
            .collect();
        let bad = b
            .rejected
            .iter()
            .map(|r| (r.index, r.error.to_string()))
            .collect();
        (ok, bad)
    }

    /// `decode_batch`.
    fn batch(body: &[u8]) -> Verdicts {
        let b = decode_batch(body, &limits(), Timestamp::from_millis(NOW)).unwrap();
        let rejected: Vec<usize> = b.rejected.iter().map(|r| r.index).collect();
        let ok_idx = (0..b.len()).filter(|i| !rejected.contains(i));
        (
            ok_idx.zip(b.accepted).collect(),
            b.rejected
                .iter()
                .map(|r| (r.index, r.error.to_string()))
                .collect(),
        )
    }

    /// The oracle: every element through `decode_event` (the full decoder and
    /// `MetricEvent::validate`, no fast path).
    fn slow(body: &[u8]) -> Verdicts {
        let elements: Vec<&RawValue> = serde_json::from_slice(body).unwrap();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for (i, raw) in elements.iter().enumerate() {
            match decode_event(raw.get().as_bytes(), &limits(), Timestamp::from_millis(NOW)) {
                Ok(e) => ok.push((i, e)),
                Err(e) => bad.push((i, e.to_string())),
            }
        }
        (ok, bad)
    }

    fn check(body: &str) {
        let want = slow(body.as_bytes());
        assert_eq!(fast(body.as_bytes()), want, "{body}");
        assert_eq!(batch(body.as_bytes()), want, "{body}");
    }

    #[test]
    fn tricky_elements_match_the_full_decoder() {
        let body = format!(
            r#"[{{"metric_name":"a","value":1,"event_time":{NOW}}},
               {{"metric_name":"a\n","value":1,"event_time":{NOW}}},
               {{"metric_name":"a\u0062","value":1,"event_time":{NOW}}},
               {{"metric_name":"a","value":1,"event_time":"2023-11-14T22:13:20Z"}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"tags":null}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"tags":{{"k":"1","k":"2"}}}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"tags":{{"a":"1","b":"2","c":"3","d":"4","e":"5"}}}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"tags":{{"b":"1","a":"2"}}}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"id":null}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"id":""}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"id":"x1"}},
               {{"metric_name":"a","value":1,"event_time":{}}},
               {{"metric_name":"a","value":1,"event_time":{}}},
               {{"metric_name":"a","value":1e999,"event_time":{NOW}}},
               {{"metric_name":"a","value":1,"value":2,"event_time":{NOW}}},
               {{"metric_name":"a","value":1,"event_time":{NOW},"extra":1}},
               {{"metric_name":"a","value":1.5e300,"event_time":1e12}},
               [], null, "x"]"#,
            // The skew limit's edge: the last time accepted, the first refused.
            NOW + skew_ms(),
            NOW + skew_ms() + 1,
        );
        check(&body);
    }

    #[test]
    fn single_object_matches_too() {
        let one = format!(r#"{{"metric_name":"a","value":2,"event_time":{NOW}}}"#);
        assert_eq!(fast(one.as_bytes()), batch(one.as_bytes()));
    }

    #[test]
    fn whole_input_errors_are_the_same() {
        let now = Timestamp::from_millis(NOW);
        for body in [&b""[..], b"[1,", b"\"x\"", b"nul", b"{\"a\":"] {
            let want = decode_batch(body, &limits(), now).map(|_| ());
            let got = decode_batch_borrowed(body, &limits(), now).map(|_| ());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(body));
            assert!(got.is_err());
        }
    }

    fn element() -> impl Strategy<Value = String> {
        let name = prop_oneof!["[a-z][a-z0-9._]{0,6}", "", " a", "a\\\\b", "\\u00e9t\u{e9}"];
        let value = prop_oneof![
            any::<i32>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            Just("1e999".to_owned()),
            Just("\"1\"".to_owned()),
            Just("null".to_owned()),
        ];
        let time = prop_oneof![
            (-400_000i64..400_000).prop_map(|d| (NOW + d).to_string()),
            Just("\"2023-11-14T22:13:20Z\"".to_owned()),
            Just("1.5".to_owned()),
            Just("9223372036854775808".to_owned()),
        ];
        let tags = prop::collection::vec(("[a-c_1]{0,2}", "[x-z]{0,2}"), 0..6).prop_map(|t| {
            let inner: Vec<String> = t.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
            format!("{{{}}}", inner.join(","))
        });
        let id = prop_oneof![Just(None), "[a-z]{0,3}".prop_map(Some)];
        (name, value, time, prop::option::of(tags), id).prop_map(|(n, v, t, tags, id)| {
            let mut s = format!(r#"{{"metric_name":"{n}","value":{v},"event_time":{t}"#);
            if let Some(tags) = tags {
                s.push_str(&format!(r#","tags":{tags}"#));
            }
            if let Some(id) = id {
                s.push_str(&format!(r#","id":"{id}""#));
            }
            s.push('}');
            s
        })
    }

    proptest! {
        #[test]
        fn agrees_with_the_full_decoder(elements in prop::collection::vec(element(), 0..12)) {
            let body = format!("[{}]", elements.join(","));
            let want = slow(body.as_bytes());
            prop_assert_eq!(fast(body.as_bytes()), want.clone());
            prop_assert_eq!(batch(body.as_bytes()), want);
        }
    }
}
