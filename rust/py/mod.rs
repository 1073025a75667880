//! The Python binding, `unified_events._core` (contract: python/unified_events/_core.pyi).
//! The only code that knows about PyO3: it converts arguments, calls the core and turns
//! `CoreError` into `ValueError`. Only bytes, str and integers cross the boundary.

mod arrow;
mod classes;
mod cold;
mod hot;
mod hub;
mod ingest;
mod log;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::CoreError;
use crate::fanout;
use crate::topic;

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> Self {
        PyValueError::new_err(e.to_string())
    }
}

/// Python bytes for each slice.
fn bytes_list<'py, B: AsRef<[u8]>>(py: Python<'py>, items: Vec<B>) -> Vec<Bound<'py, PyBytes>> {
    items
        .into_iter()
        .map(|b| PyBytes::new(py, b.as_ref()))
        .collect()
}

/// None when valid, else (error_code, message) with the original's texts.
#[pyfunction]
#[pyo3(signature = (topic, /))]
fn check_topic(topic: &str) -> Option<(&'static str, String)> {
    topic::check_topic(topic).err().map(|e| (e.code, e.message))
}

/// The canonical matcher used for fan-out, replay and permission checks.
#[pyfunction]
#[pyo3(signature = (pattern, topic, /))]
fn topic_matches(pattern: &str, topic: &str) -> bool {
    topic::topic_matches(pattern, topic)
}

/// One unmasked server->client WebSocket text frame carrying `payload`.
#[pyfunction]
#[pyo3(signature = (payload, /))]
fn encode_text_frame<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let len = fanout::frame::header_len(payload.len()) + payload.len();
    PyBytes::new_with(py, len, |buf| {
        fanout::frame::fill_text_frame(buf, payload);
        Ok(())
    })
}

/// The payloads of concatenated `encode_text_frame` output, in order.
#[pyfunction]
#[pyo3(signature = (data, /))]
fn split_frames<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    Ok(bytes_list(py, fanout::split_frames(data)?))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_topic, m)?)?;
    m.add_function(wrap_pyfunction!(topic_matches, m)?)?;
    m.add_function(wrap_pyfunction!(encode_text_frame, m)?)?;
    m.add_function(wrap_pyfunction!(split_frames, m)?)?;
    m.add_class::<classes::PyTokenBucket>()?;
    m.add_class::<classes::PyDedupCache>()?;
    m.add_class::<hot::PyHotTier>()?;
    m.add_class::<hub::PyHub>()?;
    m.add_class::<log::PyDurableLog>()?;
    m.add_function(wrap_pyfunction!(log::encode_event_record, m)?)?;
    m.add_class::<log::PyLogReader>()?;
    m.add_class::<log::PyRawRecords>()?;
    m.add_function(wrap_pyfunction!(ingest::accept_legacy_batch, m)?)?;
    m.add_class::<ingest::PyLegacyBatch>()?;
    m.add_class::<arrow::PyArrowSnapshot>()?;
    m.add_class::<arrow::PyArrowSegments>()?;
    m.add_class::<cold::PyColdConverter>()?;
    Ok(())
}
