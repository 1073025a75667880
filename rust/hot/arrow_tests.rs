use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::Array;

use super::*;

fn record(id: &str, status: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","event_type":"trace","http_status":{status},"duration_ms":1.5,"data":"{{\"a\":1}}","payload":null,"timestamp_ms":10}}"#
    )
    .into_bytes()
}

fn frame(extra: &str) -> Vec<u8> {
    format!(r#"{{"id":"x","payload":{{"id":"x","event_type":"trace"{extra}}}}}"#).into_bytes()
}

fn rows(store: &ColumnStore) -> usize {
    store.snapshot().iter().map(RecordBatch::num_rows).sum()
}

fn seqs(store: &ColumnStore) -> Vec<i64> {
    let idx = schema().index_of("seq").unwrap();
    store
        .snapshot()
        .iter()
        .flat_map(|b| b.column(idx).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

#[test]
fn typed_columns_and_extra() {
    let mut store = ColumnStore::new();
    store.push(1, &record("a", "500"), &frame(r#","db_system":"postgres""#));
    store.push(2, &record("b", "\"oops\""), &frame(""));
    let batch = &store.snapshot()[0];
    let s = schema();
    let status = batch
        .column(s.index_of("http_status").unwrap())
        .as_primitive::<Int64Type>();
    assert_eq!(status.value(0), 500);
    assert!(
        status.is_null(1),
        "a string in an integer column becomes null"
    );
    let duration = batch
        .column(s.index_of("duration_ms").unwrap())
        .as_primitive::<Float64Type>();
    assert_eq!(duration.value(0), 1.5);
    let data = batch.column(s.index_of("data").unwrap()).as_string::<i32>();
    assert_eq!(
        data.value(0),
        r#"{"a":1}"#,
        "JSON text columns keep the text, unquoted"
    );
    let extra = batch
        .column(s.index_of("extra").unwrap())
        .as_string::<i32>();
    assert_eq!(extra.value(0), r#"{"db_system":"postgres"}"#);
    assert!(extra.is_null(1), "no fields beyond the columns: null");
}

#[test]
fn segments_freeze_and_evicted_rows_disappear() {
    let mut store = ColumnStore::new();
    let n = SEGMENT_ROWS as u64 * 2 + 10;
    for seq in 1..=n {
        store.push(seq, &record("r", "200"), &frame(""));
    }
    assert_eq!(rows(&store), n as usize);
    store.kill(5);
    store.kill(SEGMENT_ROWS as u64 * 2 + 3); // in the open segment
    let got = seqs(&store);
    assert_eq!(got.len(), n as usize - 2);
    assert!(!got.contains(&5) && !got.contains(&(SEGMENT_ROWS as i64 * 2 + 3)));
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "insertion order is kept"
    );
    for seq in 1..=SEGMENT_ROWS as u64 {
        store.kill(seq);
    }
    assert_eq!(store.frozen.len(), 1, "a fully evicted segment is freed");
    assert_eq!(rows(&store), SEGMENT_ROWS + 9);
}

#[test]
fn snapshot_is_unaffected_by_later_changes() {
    let mut store = ColumnStore::new();
    store.push(1, &record("a", "1"), &frame(""));
    let snap = store.snapshot();
    store.push(2, &record("b", "2"), &frame(""));
    store.kill(1);
    assert_eq!(snap.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(seqs(&store), vec![2]);
}

#[test]
fn malformed_record_is_a_row_of_nulls() {
    let mut store = ColumnStore::new();
    store.push(1, b"not json", b"");
    let batch = &store.snapshot()[0];
    assert_eq!(batch.num_rows(), 1);
    assert!(batch.column(0).is_null(0));
}

#[test]
fn snapshot_of_selected_seqs_skips_dead_rows_and_spans_segments() {
    let mut store = ColumnStore::new();
    let n = SEGMENT_ROWS as u64 + 20;
    for seq in 1..=n {
        store.push(seq, &record("r", "200"), &frame(""));
    }
    store.kill(3);
    let last_frozen = SEGMENT_ROWS as u64;
    let wanted = [
        2,
        3,
        4,
        5,
        9,
        last_frozen,
        last_frozen + 1,
        last_frozen + 2,
        n,
    ];
    let batches = store.snapshot_of(&wanted);
    let idx = schema().index_of("seq").unwrap();
    let got: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(idx).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let expected: Vec<i64> = wanted
        .iter()
        .filter(|&&s| s != 3)
        .map(|&s| s as i64)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        batches.len(),
        6,
        "runs: [2] [4,5] [9] [last frozen] [open, open+1] [n]"
    );
}

#[test]
fn escaped_strings_and_keys_are_decoded() {
    let mut store = ColumnStore::new();
    let record = br#"{"id":"a\"b","log_message":"line\nnext","payload":null}"#;
    store.push(1, record, &frame(r#","k\"ey":"v\u00e9","n":[1,2]"#));
    let batch = &store.snapshot()[0];
    let s = schema();
    let text = |name: &str| {
        batch
            .column(s.index_of(name).unwrap())
            .as_string::<i32>()
            .value(0)
            .to_owned()
    };
    assert_eq!(text("id"), "a\"b");
    assert_eq!(text("log_message"), "line\nnext");
    assert_eq!(
        text("extra"),
        r#"{"k\"ey":"v\u00e9","n":[1,2]}"#,
        "values keep their JSON text"
    );
}

#[test]
fn segments_carry_keys_that_change_with_their_rows() {
    let mut store = ColumnStore::new();
    for seq in 1..=SEGMENT_ROWS as u64 + 3 {
        store.push(seq, &record("r", "200"), &frame(""));
    }
    let keys = |s: &ColumnStore| -> Vec<(u64, usize, bool)> {
        s.segments()
            .iter()
            .map(|s| (s.first_seq, s.live, s.frozen))
            .collect()
    };
    assert_eq!(
        keys(&store),
        vec![(1, SEGMENT_ROWS, true), (SEGMENT_ROWS as u64 + 1, 3, false)]
    );
    store.kill(2);
    assert_eq!(keys(&store)[0], (1, SEGMENT_ROWS - 1, true));
    let rows: usize = store
        .segments()
        .iter()
        .flat_map(SegmentRows::batches)
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, SEGMENT_ROWS + 2);
}

/// A hot row as `events.py` writes it: every column, in `COLUMNS` order, compact.
fn full_record(service: &str, seq: u64) -> Vec<u8> {
    let members: Vec<String> = COLUMNS
        .iter()
        .map(|&(name, kind)| {
            let value = match (name, kind) {
                ("service_name", _) => serde_json::to_string(service).unwrap(),
                ("id", _) => format!("\"ev-{seq}\""),
                ("timestamp_ms", _) => seq.to_string(),
                ("duration_ms", _) => "2.5".to_owned(),
                (_, Kind::Cat) => "\"x\"".to_owned(),
                _ => "null".to_owned(),
            };
            format!("\"{name}\":{value}")
        })
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

#[test]
fn categorical_columns_are_dictionaries_and_rows_rebuild_byte_for_byte() {
    let mut store = ColumnStore::new();
    let services = ["api", "wo\"rk\u{e9}r", "db"];
    for seq in 1..=SEGMENT_ROWS as u64 {
        let service = services[seq as usize % services.len()];
        store.push(seq, &full_record(service, seq), &frame(""));
    }
    let batch = &store.snapshot()[0];
    let column = batch.column(schema().index_of("service_name").unwrap());
    let dictionary = column.as_dictionary::<Int32Type>();
    assert_eq!(
        dictionary.values().len(),
        3,
        "each distinct value stored once"
    );
    assert_eq!(dictionary_text(column, 0), Some("wo\"rk\u{e9}r"));
    for seq in [1, 2, 3, SEGMENT_ROWS as u64] {
        let service = services[seq as usize % services.len()];
        let expected = String::from_utf8(full_record(service, seq)).unwrap();
        assert_eq!(store.row_json(seq).as_deref(), Some(expected.as_str()));
    }
}
