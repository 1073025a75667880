//! `ColdConverter`: durable-log records -> the cold tier's Arrow batch (core: `crate::cold`),
//! handed to pyarrow through the Arrow PyCapsule stream interface, without a copy.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use arrow_schema::ArrowError;

use super::arrow::PyArrowSnapshot;
use super::log::PyRawRecords;
use crate::cold::{default_threads, Column, Converted, Converter, Kind};

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
    ) -> PyResult<(PyArrowSnapshot, Vec<usize>)> {
        let threads = threads.unwrap_or_else(default_threads);
        let converted = py.detach(|| {
            let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
            self.0.convert_with_threads(&slices, now_us, threads)
        });
        Self::result(converted)
    }

    /// `convert` of the records of `batches` (`LogReader.read_raw`), in order, as one input: a
    /// fallback index counts from the first record of the first batch. No Python object is made
    /// per record.
    #[pyo3(signature = (batches, now_us, threads=None))]
    fn convert_raw(
        &self,
        py: Python<'_>,
        batches: Vec<Bound<'_, PyRawRecords>>,
        now_us: i64,
        threads: Option<usize>,
    ) -> PyResult<(PyArrowSnapshot, Vec<usize>)> {
        let threads = threads.unwrap_or_else(default_threads);
        // Frozen: the buffers cannot change while the GIL is released.
        let batches: Vec<&PyRawRecords> = batches.iter().map(|b| b.get()).collect();
        let converted = py.detach(|| {
            let slices: Vec<&[u8]> = batches.iter().flat_map(|b| b.0.payloads()).collect();
            self.0.convert_with_threads(&slices, now_us, threads)
        });
        Self::result(converted)
    }
}

impl PyColdConverter {
    fn result(converted: Result<Converted, ArrowError>) -> PyResult<(PyArrowSnapshot, Vec<usize>)> {
        let converted = converted.map_err(|e| PyValueError::new_err(e.to_string()))?;
        let schema = converted.batch.schema();
        Ok((
            PyArrowSnapshot::with_schema(vec![converted.batch], schema),
            converted.fallback,
        ))
    }
}
