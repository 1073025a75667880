use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{json, Value};

use super::*;

fn json_field(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
        .with_metadata([("ARROW:extension:name".to_owned(), "arrow.json".to_owned())].into())
}

/// Columns: text, category, int, real, json; rows chosen to cover nulls, escapes and non-finite.
fn batch(ids: &[Option<&str>], kinds: &[Option<&str>]) -> RecordBatch {
    let n = ids.len();
    let mut kind_builder = StringDictionaryBuilder::<Int32Type>::new();
    for kind in kinds {
        kind_builder.append_option(*kind);
    }
    let reals = [
        Some(40.0),
        Some(f64::NAN),
        None,
        Some(0.1),
        Some(f64::INFINITY),
    ];
    let payloads = [
        Some(r#"{"status":500}"#),
        None,
        Some("[1,2]"),
        Some("\"s\""),
        Some("null"),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids.to_vec())),
        Arc::new(kind_builder.finish()),
        Arc::new(Int64Array::from(
            (0..n as i64)
                .map(|i| (i != 1).then_some(i - 1))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(reals[..n].to_vec())),
        Arc::new(StringArray::from(payloads[..n].to_vec())),
    ];
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new(
            "kind",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        json_field("payload"),
    ]);
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn all_columns() -> Vec<(usize, String)> {
    ["id", "kind", "n", "x", "payload"]
        .iter()
        .enumerate()
        .map(|(i, name)| (i, name.to_string()))
        .collect()
}

fn rows(batches: &[RecordBatch], query: &RowsQuery<'_>) -> (Value, usize) {
    let mut out = Vec::new();
    let n = write_json_rows(batches, query, &mut out).unwrap();
    (serde_json::from_slice(&out).expect("valid JSON"), n)
}

#[test]
fn writes_every_kind_of_value_with_nulls_kept_as_keys() {
    let b = batch(
        &[
            Some("a\"b\\c\n\u{1}é"),
            None,
            Some("c"),
            Some("d"),
            Some("e"),
        ],
        &[
            Some("trace"),
            Some("log"),
            None,
            Some("trace"),
            Some("trace"),
        ],
    );
    let columns = all_columns();
    let query = RowsQuery {
        columns: &columns,
        text_equals: None,
        limit: usize::MAX,
    };
    let (value, n) = rows(&[b], &query);
    assert_eq!(n, 5);
    assert_eq!(
        value,
        json!([
            {"id": "a\"b\\c\n\u{1}é", "kind": "trace", "n": -1, "x": 40.0, "payload": {"status": 500}},
            {"id": null, "kind": "log", "n": null, "x": null, "payload": null},
            {"id": "c", "kind": null, "n": 1, "x": null, "payload": [1, 2]},
            {"id": "d", "kind": "trace", "n": 2, "x": 0.1, "payload": "s"},
            {"id": "e", "kind": "trace", "n": 3, "x": null, "payload": null},
        ])
    );
}

#[test]
fn projects_renames_filters_and_limits_across_batches() {
    let first = batch(&[Some("a"), Some("b")], &[Some("trace"), Some("log")]);
    let second = batch(
        &[Some("c"), Some("d"), Some("e")],
        &[Some("log"), Some("trace"), Some("trace")],
    );
    let columns = vec![(2, "N".to_string()), (0, "event id".to_string())];
    let batches = [first, second];
    let query = RowsQuery {
        columns: &columns,
        text_equals: Some((1, "trace")),
        limit: 2,
    };
    let (value, n) = rows(&batches, &query);
    assert_eq!(n, 2);
    assert_eq!(
        value,
        json!([{"N": -1, "event id": "a"}, {"N": null, "event id": "d"}])
    );
    let unlimited = RowsQuery {
        limit: usize::MAX,
        ..query
    };
    assert_eq!(rows(&batches, &unlimited).1, 3);
}

#[test]
fn no_rows_is_an_empty_array() {
    let columns = all_columns();
    let query = RowsQuery {
        columns: &columns,
        text_equals: None,
        limit: 0,
    };
    let b = batch(&[Some("a")], &[Some("trace")]);
    let mut out = Vec::new();
    assert_eq!(write_json_rows(&[b], &query, &mut out), Ok(0));
    assert_eq!(out, b"[]");
    out.clear();
    assert_eq!(write_json_rows(&[], &query, &mut out), Ok(0));
    assert_eq!(out, b"[]");
}

#[test]
fn refuses_columns_it_cannot_write() {
    let schema = Schema::new(vec![Field::new("flag", DataType::Boolean, true)]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(BooleanArray::from(vec![true]))],
    )
    .unwrap();
    let columns = vec![(0, "flag".to_string())];
    let query = RowsQuery {
        columns: &columns,
        text_equals: None,
        limit: usize::MAX,
    };
    assert_eq!(
        write_json_rows(std::slice::from_ref(&b), &query, &mut Vec::new()),
        Err(RowsError::UnsupportedColumn(0))
    );
    let out_of_range = vec![(3, "x".to_string())];
    let query = RowsQuery {
        columns: &out_of_range,
        text_equals: None,
        limit: usize::MAX,
    };
    assert_eq!(
        write_json_rows(&[b], &query, &mut Vec::new()),
        Err(RowsError::ColumnOutOfRange(3))
    );
}
