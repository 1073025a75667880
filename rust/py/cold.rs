//! `ColdConverter`: durable-log records -> the cold tier's Arrow batch (core: `crate::cold`),
//! handed to pyarrow through the Arrow PyCapsule stream interface, without a copy.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use super::arrow::PyArrowSnapshot;
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
    ) -> PyResult<(PyArrowSnapshot, Vec<usize>)> {
        let threads = threads.unwrap_or_else(default_threads);
        let converted = py.detach(|| {
            let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
            self.0.convert_with_threads(&slices, now_us, threads)
        });
        let converted = converted.map_err(|e| PyValueError::new_err(e.to_string()))?;
        let schema = converted.batch.schema();
        Ok((
            PyArrowSnapshot::with_schema(vec![converted.batch], schema),
            converted.fallback,
        ))
    }
}
