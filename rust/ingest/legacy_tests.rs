use super::*;

fn batch(body: &str) -> Option<Vec<LegacyEvent>> {
    accept_legacy_batch(body.as_bytes(), 1000, 1_700_000_000_000, &mut IdGen::new())
}

#[test]
fn builds_the_frame_and_row_of_a_full_event() {
    let events = batch(
        r#"[{"topic":"orders","event":{"id":"e1","type":"t","payload":{"a":[1,"x"]},"timestamp":5}}]"#,
    )
    .unwrap();
    let e = &events[0];
    assert_eq!(
        (
            e.id.as_str(),
            e.topic.as_str(),
            e.event_type.as_str(),
            e.timestamp_ms
        ),
        ("e1", "orders", "t", 5)
    );
    assert_eq!(
        std::str::from_utf8(&e.frame).unwrap(),
        r#"{"id":"e1","type":"t","topic":"orders","payload":{"a":[1,"x"]},"timestamp":5}"#
    );
    let row = std::str::from_utf8(&e.record).unwrap();
    assert!(row.starts_with(
        r#"{"id":"e1","event_type":"t","event_name":"t","ns":"orders","trace_id":null"#
    ));
    assert!(row.contains(r#""timestamp":"1970-01-01T00:00:00.005Z""#));
    assert!(row.contains(r#""data":"{\"a\":[1,\"x\"]}""#));
    assert!(
        row.ends_with(r#""topic":"orders","type":"t","payload":{"a":[1,"x"]},"timestamp_ms":5}"#)
    );
}

#[test]
fn applies_the_defaults() {
    let e = &batch(r#"[{"event":{"topic":""}}, {}]"#).unwrap()[1];
    assert_eq!(
        (e.topic.as_str(), e.event_type.as_str(), e.timestamp_ms),
        ("default", "broadcast", 1_700_000_000_000)
    );
    assert!(e.id.starts_with("1700000000000-"));
    assert!(std::str::from_utf8(&e.record)
        .unwrap()
        .contains(r#""data":null"#));
}

#[test]
fn leaves_everything_unusual_to_the_python_path() {
    for body in [
        "{}",
        "[]",
        r#"[{"topic":"a b c d e f g h i j k l"}, 1]"#,
        r#"[{"event_type":"trace"}]"#,
        r#"[{"topic":5}]"#,
        r#"[{"topic":"__x"}]"#,
        r#"[{"event":{"id":7}}]"#,
        r#"[{"event":{"timestamp":"2024-01-01T00:00:00Z"}}]"#,
        r#"[{"event":{"timestamp":1.5}}]"#,
        r#"[{"event":{"timestamp":-1}}]"#,
        r#"[{"event":{"payload":{"x":0.5}}}]"#,
        r#"[{"event":{"payload":1},"event":{}}]"#,
        r#"[{"topic":"a"},]"#,
    ] {
        assert_eq!(batch(body), None, "{body}");
    }
    let many = format!("[{}]", vec!["{}"; 3].join(","));
    assert!(accept_legacy_batch(many.as_bytes(), 2, 0, &mut IdGen::new()).is_none());
}

#[test]
fn encodes_the_log_record_layout() {
    let e = &batch(r#"[{"topic":"t","event":{"id":"i","type":"y"}}]"#).unwrap()[0];
    let mut out = Vec::new();
    e.encode_record(42, &mut out);
    assert_eq!(out[0], 1);
    assert_eq!(i64::from_le_bytes(out[1..9].try_into().unwrap()), 42);
    assert_eq!(
        i64::from_le_bytes(out[9..17].try_into().unwrap()),
        1_700_000_000_000
    );
    let len = |i: usize| u32::from_le_bytes(out[17 + 4 * i..21 + 4 * i].try_into().unwrap());
    assert_eq!((len(0), len(1), len(3), len(4)), (1, 1, 1, u32::MAX));
    assert_eq!(out.len(), 53 + 4 + e.frame.len() + e.record.len());
}
