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
    let many = format!("[{}]", ["{}"; 3].join(","));
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
    assert_eq!(out.len(), e.record_len());
}

#[test]
fn row_columns_are_the_arrow_columns_in_order() {
    let row: Vec<&str> = ROW.iter().map(|(name, _)| *name).collect();
    let arrow: Vec<&str> = crate::hot::arrow::cell_columns().collect();
    assert_eq!(row, arrow);
}

mod arrow_cells {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::hot::arrow::{ColumnStore, SEGMENT_ROWS};

    /// The Arrow rows of `events` appended from their hot row JSON and from `arrow_cells`.
    fn both_ways(events: &[LegacyEvent]) -> (ColumnStore, ColumnStore, Vec<usize>, Vec<usize>) {
        let (mut parsed, mut cells) = (ColumnStore::new(), ColumnStore::new());
        let (mut parsed_bytes, mut cells_bytes) = (Vec::new(), Vec::new());
        for (seq, e) in (1..).zip(events) {
            parsed_bytes.push(parsed.push(seq, &e.record, &e.frame));
            cells_bytes.push(cells.push_cells(seq, e.arrow_cells(), None));
        }
        (parsed, cells, parsed_bytes, cells_bytes)
    }

    fn assert_same_rows(events: &[LegacyEvent]) {
        let (parsed, cells, parsed_bytes, cells_bytes) = both_ways(events);
        assert_eq!(parsed_bytes, cells_bytes, "the same bytes counted");
        assert_eq!(parsed.snapshot(), cells.snapshot(), "the same Arrow rows");
    }

    /// `arrow_row` vouches that the columns rebuild each event's hot row byte for byte: check
    /// it, with the events in a frozen segment (the only rows `row_json` rebuilds).
    fn assert_rows_rebuild(events: &[LegacyEvent]) {
        assert!(events.iter().all(|e| e.arrow_row().record_rebuilds));
        let mut store = ColumnStore::new();
        for (seq, e) in (1..).zip(events.iter().cycle().take(SEGMENT_ROWS)) {
            store.push_cells(seq, e.arrow_cells(), None);
        }
        for (seq, e) in (1..).zip(events.iter().take(SEGMENT_ROWS)) {
            assert_eq!(
                store.row_json(seq).map(String::into_bytes),
                Some(e.record.clone()),
                "row {seq}"
            );
        }
    }

    fn text() -> impl Strategy<Value = String> {
        // Quotes, backslashes, control characters, non-ASCII: everything JSON escapes or not.
        prop_oneof![
            "[a-z0-9]{1,12}",
            any::<String>(),
            Just("a\"b\\c\n\u{7f}\u{2028}é😀".to_owned()),
        ]
    }

    fn payload() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            proptest::sample::select(vec![
                json!({}),
                json!([]),
                json!(""),
                json!(0),
                json!(false)
            ])
            .prop_map(Some),
            (text(), text(), any::<i64>(), any::<bool>())
                .prop_map(|(k, s, n, b)| Some(json!({ k: s, "n": n, "l": [b, null, {"s": "x"}] }))),
            text().prop_map(|s| Some(Value::String(s))),
        ]
    }

    fn event() -> impl Strategy<Value = Value> {
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(0..4_102_444_800_000i64),
            payload(),
        )
            .prop_map(|(id, event_type, timestamp, payload)| {
                let mut event = serde_json::Map::new();
                if let Some(id) = id {
                    event.insert("id".into(), id.into());
                }
                if let Some(t) = event_type {
                    event.insert("type".into(), t.into());
                }
                if let Some(ts) = timestamp {
                    event.insert("timestamp".into(), ts.into());
                }
                if let Some(p) = payload {
                    event.insert("payload".into(), p);
                }
                json!({"topic": "orders.eu", "event": event})
            })
    }

    #[test]
    fn a_segment_and_more_give_the_same_rows() {
        // Past one frozen segment, so frozen and open rows are both compared.
        let body = r#"{"topic":"t","event":{"type":"x","payload":{"a":"\"q\\"}}}"#;
        let many = format!("[{}]", vec![body; 500].join(","));
        let events: Vec<LegacyEvent> = (0..10).flat_map(|_| batch_of(&many)).collect();
        assert_same_rows(&events);
        assert_rows_rebuild(&events);
    }

    fn batch_of(body: &str) -> Vec<LegacyEvent> {
        accept_legacy_batch(body.as_bytes(), 1000, 1_700_000_000_000, &mut IdGen::new())
            .expect("a fast-path batch")
    }

    proptest! {
        // Each case fills a segment of 4096 rows: fewer cases than the default 256.
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn cells_give_the_row_the_record_gives(events in proptest::collection::vec(event(), 1..20)) {
            let body = serde_json::to_string(&events).unwrap();
            // Events the fast path leaves to Python (non-canonical payloads) have no cells.
            if let Some(accepted) = accept_legacy_batch(body.as_bytes(), 1000, 1_700_000_000_000, &mut IdGen::new()) {
                assert_same_rows(&accepted);
                assert_rows_rebuild(&accepted);
            }
        }
    }
}

#[test]
fn hot_tier_holds_the_same_through_either_insert() {
    use crate::hot::HotTier;
    let body = r#"{"topic":"t","event":{"type":"x","payload":{"a":"\"q\\","n":[1,{}]}}}"#;
    let many = format!("[{}]", vec![body; 1000].join(","));
    let mut ids = IdGen::new();
    let events: Vec<LegacyEvent> = (0..9)
        .flat_map(|_| {
            accept_legacy_batch(many.as_bytes(), 1000, 1_700_000_000_000, &mut ids).unwrap()
        })
        .collect();
    // A budget that evicts, so compaction, eviction and frozen segments all take part.
    let (mut parsed, mut cells) = (
        HotTier::new(i64::MAX, 6 << 20),
        HotTier::new(i64::MAX, 6 << 20),
    );
    for e in &events {
        let meta = e.hot_meta();
        parsed.insert(&meta, &e.frame, &e.record);
        cells.insert_cells(&meta, &e.frame, &e.record, e.arrow_row());
        assert_eq!(parsed.bytes_used(), cells.bytes_used());
    }
    assert!(parsed.len() < events.len(), "the budget evicted");
    assert!(
        parsed.len() > crate::hot::arrow::SEGMENT_ROWS,
        "frozen rows were compacted"
    );
    assert_eq!(parsed.records(), cells.records());
    assert_eq!(parsed.arrow_snapshot(), cells.arrow_snapshot());
}
