//! Arrow rows written as a JSON array of objects, the shape of a `/query` answer's `rows`.
//!
//! This is the point-lookup path of `/query` (python/unified_events/sql/point.py): a query like
//! `SELECT * FROM events WHERE trace_id = $1` names its rows through the hot tier's index, and
//! writing those few rows here costs microseconds where DuckDB's per-query fixed cost (binding
//! the 39 Arrow columns, planning, `to_json`) is milliseconds. The values are the ones DuckDB's
//! `to_json` gives for the same columns: text as JSON strings, numbers as numbers, `arrow.json`
//! columns as their JSON value, nulls as null (keys are kept), non-finite doubles as null (what
//! the engine makes of DuckDB's bare `Infinity`). Number spelling may differ (`1e-5` against
//! DuckDB's `0.00001`), the parsed value never does.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field};
use std::io::Write as _;

/// Which rows to write, and which columns under which names.
pub struct RowsQuery<'a> {
    /// (column index in the batches' schema, output key), in output order.
    pub columns: &'a [(usize, String)],
    /// Only rows whose text column at this index equals this value.
    pub text_equals: Option<(usize, &'a str)>,
    /// At most this many rows.
    pub limit: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RowsError {
    /// The column at this index is of a type this writer does not handle (DuckDB will).
    UnsupportedColumn(usize),
    ColumnOutOfRange(usize),
}

/// Appends the JSON array of the matching rows of `batches` to `out`; the number of rows written.
pub fn write_json_rows(
    batches: &[RecordBatch],
    query: &RowsQuery<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, RowsError> {
    let keys: Vec<Vec<u8>> = query
        .columns
        .iter()
        .map(|(_, name)| object_key(name))
        .collect();
    let mut written = 0;
    out.push(b'[');
    for batch in batches {
        if written == query.limit {
            break;
        }
        let columns = query
            .columns
            .iter()
            .map(|&(index, _)| Column::of(batch, index))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match query.text_equals {
            Some((index, value)) => Some((Column::of(batch, index)?, value)),
            None => None,
        };
        for row in 0..batch.num_rows() {
            if written == query.limit {
                break;
            }
            if let Some((column, value)) = &filter {
                if column.text(row) != Some(*value) {
                    continue;
                }
            }
            if written > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (i, (column, key)) in columns.iter().zip(&keys).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key);
                column.write(row, out);
            }
            out.push(b'}');
            written += 1;
        }
    }
    out.push(b']');
    Ok(written)
}

/// `"name":`, escaped once per answer rather than per row.
fn object_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_string(name, &mut key);
    key.push(b':');
    key
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
}

/// One column of one batch, typed once so the per-row writes are a match on a small enum.
enum Column<'a> {
    Text(&'a StringArray),
    /// Text whose value is JSON (Arrow's `arrow.json` extension): written as the value itself.
    Json(&'a StringArray),
    Category(&'a DictionaryArray<Int32Type>, &'a StringArray),
    Int(&'a Int64Array),
    Real(&'a Float64Array),
}

impl<'a> Column<'a> {
    fn of(batch: &'a RecordBatch, index: usize) -> Result<Self, RowsError> {
        if index >= batch.num_columns() {
            return Err(RowsError::ColumnOutOfRange(index));
        }
        let array = batch.column(index);
        let field = batch.schema_ref().field(index).clone();
        Ok(match array.data_type() {
            DataType::Utf8 if is_json(&field) => Column::Json(array.as_string::<i32>()),
            DataType::Utf8 => Column::Text(array.as_string::<i32>()),
            DataType::Int64 => Column::Int(array.as_primitive::<Int64Type>()),
            DataType::Float64 => Column::Real(array.as_primitive::<Float64Type>()),
            DataType::Dictionary(key, value)
                if **key == DataType::Int32 && **value == DataType::Utf8 =>
            {
                let dictionary = array.as_dictionary::<Int32Type>();
                Column::Category(dictionary, dictionary.values().as_string::<i32>())
            }
            _ => return Err(RowsError::UnsupportedColumn(index)),
        })
    }

    /// The text at `row` of a text column, None when null or not text.
    fn text(&self, row: usize) -> Option<&'a str> {
        match self {
            Column::Text(array) | Column::Json(array) => {
                array.is_valid(row).then(|| array.value(row))
            }
            Column::Category(keys, values) => keys
                .is_valid(row)
                .then(|| values.value(keys.keys().value(row) as usize)),
            Column::Int(_) | Column::Real(_) => None,
        }
    }

    fn write(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            Column::Text(_) | Column::Category(..) => match self.text(row) {
                Some(text) => write_string(text, out),
                None => out.extend_from_slice(b"null"),
            },
            Column::Json(array) if array.is_valid(row) => {
                out.extend_from_slice(array.value(row).as_bytes())
            }
            Column::Int(array) if array.is_valid(row) => {
                write!(out, "{}", array.value(row)).expect("writing to a Vec cannot fail")
            }
            Column::Real(array) if array.is_valid(row) && array.value(row).is_finite() => {
                serde_json::to_writer(out, &array.value(row)).expect("writing to a Vec cannot fail")
            }
            _ => out.extend_from_slice(b"null"),
        }
    }
}

fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get("ARROW:extension:name")
        .map(String::as_str)
        == Some("arrow.json")
}

#[cfg(test)]
#[path = "json_rows_tests.rs"]
mod tests;
