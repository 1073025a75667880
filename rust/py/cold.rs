//! `ColdConverter`: durable-log records -> the cold tier's Arrow batch (core: `crate::cold`),
//! handed to pyarrow through the Arrow PyCapsule stream interface, without a copy.

use arrow_array::RecordBatch;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyCapsule;

use crate::cold::{default_threads, Column, Converter, Kind};

#[pyclass(name = "ColdConverter", module = "unified_events._core", frozen)]
pub struct PyColdConverter(Converter);

#[pymethods]
impl PyColdConverter {
    /// `columns`: (name, tsv type, required) for each table column, in order.
    #[new]
    fn new(columns: Vec<(String, String, bool)>) -> PyResult<Self> {
        let columns = columns
            .into_iter()
            .map(|(name, kind, required)| match Kind::parse(&kind) {
                Some(kind) => Ok(Column {
                    name,
                    kind,
                    required,
                }),
                None => Err(PyValueError::new_err(format!(
                    "column {name}: unknown type {kind}"
                ))),
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self(
            Converter::new(columns).map_err(PyValueError::new_err)?,
        ))
    }

    /// (batch, fallback): the converted rows (plus their input index, column `_input_order`) and
    /// the indices of the payloads left to the Python converter. `threads`: how many to convert
    /// on (default: one per core); the result is the same for any number.
    #[pyo3(signature = (payloads, now_us, threads=None))]
    fn convert(
        &self,
        py: Python<'_>,
        payloads: Vec<PyBackedBytes>,
        now_us: i64,
        threads: Option<usize>,
    ) -> PyResult<(PyColdBatch, Vec<usize>)> {
        let threads = threads.unwrap_or_else(default_threads);
        let converted = py.detach(|| {
            let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
            self.0.convert_with_threads(&slices, now_us, threads)
        });
        let converted = converted.map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((PyColdBatch(converted.batch), converted.fallback))
    }
}

/// One record batch, readable once or more through `__arrow_c_stream__` (e.g. `pa.table(batch)`).
#[pyclass(name = "ColdBatch", module = "unified_events._core", frozen)]
pub struct PyColdBatch(RecordBatch);

#[pymethods]
impl PyColdBatch {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        super::arrow::stream_capsule(py, vec![self.0.clone()], self.0.schema())
    }
}
