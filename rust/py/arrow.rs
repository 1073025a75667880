//! `ArrowSnapshot`: hot-tier rows handed to Python through the Arrow PyCapsule interface
//! (`__arrow_c_stream__`), so pyarrow and DuckDB read the Rust buffers without a copy.

use std::ffi::CStr;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;

use crate::hot::arrow::{SegmentRows, SEGMENT_ROWS};
use crate::query::json_rows::{write_json_rows, RowsQuery};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule};

const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

/// The Arrow C stream capsule over `batches` (the PyCapsule interface's `__arrow_c_stream__`).
/// The capsule owns the stream; a consumer moves it out, and dropping what is left calls its
/// release callback only if it was not taken.
pub fn stream_capsule<'py>(
    py: Python<'py>,
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
) -> PyResult<Bound<'py, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    PyCapsule::new_with_value(
        py,
        FFI_ArrowArrayStream::new(Box::new(reader)),
        STREAM_CAPSULE,
    )
}

/// An immutable set of batches; each `__arrow_c_stream__` call streams them again. Hot-tier rows
/// (`new`) and the archiver's converted rows (`with_schema`) alike.
#[pyclass(name = "ArrowSnapshot", module = "unified_events._core", frozen)]
pub struct PyArrowSnapshot {
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
}

impl PyArrowSnapshot {
    /// Rows of the hot tier (`hot::arrow::schema()`).
    pub fn new(batches: Vec<RecordBatch>) -> Self {
        Self::with_schema(batches, crate::hot::arrow::schema())
    }

    pub fn with_schema(batches: Vec<RecordBatch>, schema: SchemaRef) -> Self {
        Self { batches, schema }
    }
}

#[pymethods]
impl PyArrowSnapshot {
    /// The Arrow C stream capsule. A requested schema is ignored: ours is fixed.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        stream_capsule(py, self.batches.clone(), self.schema.clone())
    }

    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Bytes of the Arrow buffers this snapshot references (shared with the hot tier).
    #[getter]
    fn nbytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The rows as a JSON array of objects, the `rows` of a `/query` answer (see
    /// rust/query/json_rows.rs), and how many were written. `columns`: (column, output key)
    /// pairs, default every column under its name; `text_equals`: (column, value) a row's text
    /// must equal; at most `limit` rows. Written without the GIL.
    #[pyo3(signature = (columns=None, text_equals=None, limit=usize::MAX))]
    fn json_rows<'py>(
        &self,
        py: Python<'py>,
        columns: Option<Vec<(String, String)>>,
        text_equals: Option<(String, String)>,
        limit: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, usize)> {
        let column_index = |name: &str| {
            self.schema
                .index_of(name)
                .map_err(|_| PyKeyError::new_err(format!("no column {name:?}")))
        };
        let columns = match columns {
            Some(pairs) => pairs
                .into_iter()
                .map(|(name, key)| Ok((column_index(&name)?, key)))
                .collect::<PyResult<Vec<_>>>()?,
            None => self.column_names().into_iter().enumerate().collect(),
        };
        let text_equals = match &text_equals {
            Some((name, value)) => Some((column_index(name)?, value.as_str())),
            None => None,
        };
        let query = RowsQuery {
            columns: &columns,
            text_equals,
            limit,
        };
        let batches = &self.batches;
        let (json, written) = py
            .detach(|| {
                let mut json = Vec::new();
                write_json_rows(batches, &query, &mut json).map(|written| (json, written))
            })
            .map_err(|err| PyValueError::new_err(format!("{err:?}")))?;
        Ok((PyBytes::new(py, &json), written))
    }
}

/// The hot tier's live rows by segment, taken on the event loop in one call: a frozen segment
/// is one reference count, and no Python object is made per segment until the SQL worker asks
/// for one it has not cached (`frozen_keys`, `frozen`, `head`, `open`).
///
/// Three parts, in seq order: the head (the oldest frozen segments while eviction is working
/// through them: their rows change from one snapshot to the next), the stable frozen segments,
/// and the open segment. The SQL engine keeps the stable part registered in DuckDB between
/// queries and hands over only the two changing parts per query.
#[pyclass(name = "ArrowSegments", module = "unified_events._core", frozen)]
pub struct PyArrowSegments {
    head: Vec<SegmentRows>,
    frozen: Vec<SegmentRows>,
    open: Option<SegmentRows>,
}

impl PyArrowSegments {
    pub fn new(segments: Vec<SegmentRows>) -> Self {
        let (mut frozen, open): (Vec<SegmentRows>, Vec<SegmentRows>) =
            segments.into_iter().partition(|s| s.frozen);
        // A segment freezes with SEGMENT_ROWS rows, so fewer live ones means eviction has begun.
        let head_len = frozen.iter().take_while(|s| s.live < SEGMENT_ROWS).count();
        let stable = frozen.split_off(head_len);
        Self {
            head: frozen,
            frozen: stable,
            open: open.into_iter().next(),
        }
    }
}

fn snapshot_of<'a>(segments: impl Iterator<Item = &'a SegmentRows>) -> PyArrowSnapshot {
    PyArrowSnapshot::new(segments.flat_map(SegmentRows::batches).collect())
}

#[pymethods]
impl PyArrowSegments {
    /// (first seq, live rows) of each stable frozen segment, in order. A frozen segment's rows
    /// stay the same while its key does, so what is derived from them can be cached under it.
    fn frozen_keys(&self) -> Vec<(u64, usize)> {
        self.frozen.iter().map(|s| (s.first_seq, s.live)).collect()
    }

    /// The rows of the `i`-th stable frozen segment.
    fn frozen(&self, i: usize) -> PyResult<PyArrowSnapshot> {
        self.frozen
            .get(i)
            .map(|s| snapshot_of(std::iter::once(s)))
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("no such frozen segment"))
    }

    /// The live rows of the head: the oldest frozen segments, partly evicted (maybe none).
    fn head(&self) -> PyArrowSnapshot {
        snapshot_of(self.head.iter())
    }

    /// The live rows of the open segment, a copy (maybe none).
    fn open(&self) -> PyArrowSnapshot {
        snapshot_of(self.open.iter())
    }
}
