//! `DurableLog` (the writer, one per data dir) and `LogReader` (read-only, any process).
//! Blocking calls (waiting for an fsync, reading segments, closing) release the GIL.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::ingest::LegacyEvent;
use crate::log::event_record::{ABSENT, HEADER_LEN, VERSION};
use crate::log::reader::RawBatch;
use crate::log::{Durability, LogReader, LogWriter};

#[pyclass(name = "DurableLog", module = "unified_events._core")]
pub struct PyDurableLog(LogWriter);

#[pymethods]
impl PyDurableLog {
    #[new]
    #[pyo3(signature = (log_dir, durability = "fsync", interval_ms = 100, segment_bytes = 64 << 20))]
    fn new(
        py: Python<'_>,
        log_dir: PathBuf,
        durability: &str,
        interval_ms: u64,
        segment_bytes: u64,
    ) -> PyResult<Self> {
        let durability = match durability {
            "fsync" => Durability::Fsync,
            "interval" => Durability::Interval(Duration::from_millis(interval_ms.max(1))),
            "none" => Durability::None,
            other => {
                return Err(PyValueError::new_err(format!(
                    "durability '{other}': expected one of fsync, interval, none"
                )))
            }
        };
        Ok(Self(py.detach(|| {
            LogWriter::open(&log_dir, durability, segment_bytes)
        })?))
    }

    /// Write the payloads as consecutive records (no fsync; under `fsync` the committer thread
    /// writes them before its fsync); returns the last position.
    fn append(&self, payloads: Vec<Bound<'_, PyBytes>>) -> PyResult<u64> {
        let slices: Vec<&[u8]> = payloads.iter().map(|b| b.as_bytes()).collect();
        Ok(self.0.append(&slices)?)
    }

    /// Write the log records of the legacy-batch events `fresh` selects (all when None), as
    /// `append` of their `records.encode` payloads; returns the last position.
    #[pyo3(signature = (batch, accepted_at_ms, fresh = None))]
    fn append_legacy(
        &self,
        batch: &Bound<'_, super::ingest::PyLegacyBatch>,
        accepted_at_ms: i64,
        fresh: Option<Vec<bool>>,
    ) -> PyResult<u64> {
        // Every payload into one buffer (one allocation per batch, not one per event).
        let batch = batch.get();
        let total = batch.selected(&fresh).map(LegacyEvent::record_len).sum();
        let mut encoded = Vec::with_capacity(total);
        let mut ends = Vec::new();
        for e in batch.selected(&fresh) {
            e.encode_record(accepted_at_ms, &mut encoded);
            ends.push(encoded.len());
        }
        let payloads: Vec<&[u8]> = std::iter::once(0)
            .chain(ends.iter().copied())
            .zip(&ends)
            .map(|(start, &end)| &encoded[start..end])
            .collect();
        Ok(self.0.append(&payloads)?)
    }

    /// Block (without the GIL) until `position` is durable or `timeout_ms` passes; returns the
    /// durable position. Raises OSError once the writer has failed.
    fn wait_durable(&self, py: Python<'_>, position: u64, timeout_ms: u64) -> PyResult<u64> {
        Ok(py.detach(|| {
            self.0
                .wait_durable(position, Duration::from_millis(timeout_ms))
        })?)
    }

    /// Write 1 (8 bytes) to this eventfd after every advance of the durable position or a
    /// failure, so an event loop can `add_reader` it. The fd must stay open until `close`
    /// returns; -1 turns it off.
    fn set_notify_fd(&self, fd: i32) {
        self.0.set_notify_fd(fd)
    }

    /// Why the writer stopped accepting appends (a write or fsync failed), or None.
    #[getter]
    fn error(&self) -> Option<String> {
        self.0.error()
    }

    #[getter]
    fn last_position(&self) -> u64 {
        self.0.last_position()
    }

    #[getter]
    fn durable_position(&self) -> u64 {
        self.0.durable_position()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.0.stats();
        let d = PyDict::new(py);
        d.set_item("last_position", s.last_position)?;
        d.set_item("durable_position", s.durable_position)?;
        d.set_item("first_position", s.first_position)?;
        d.set_item("segments", s.segments)?;
        d.set_item("bytes_on_disk", s.bytes_on_disk)?;
        d.set_item("fsyncs", s.fsyncs)?;
        d.set_item("fsync_total_us", s.fsync_total_us)?;
        d.set_item("fsync_last_us", s.fsync_last_us)?;
        d.set_item("fsync_max_us", s.fsync_max_us)?;
        d.set_item("torn_bytes_cut", s.torn_bytes_cut)?;
        Ok(d)
    }

    /// Delete whole segments whose records are all <= `up_to_position` and that were last
    /// written more than `min_age_ms` ago (never the active one). Returns how many.
    fn delete_segments(
        &self,
        py: Python<'_>,
        up_to_position: u64,
        min_age_ms: u64,
    ) -> PyResult<usize> {
        Ok(py.detach(|| {
            self.0
                .delete_segments(up_to_position, Duration::from_millis(min_age_ms))
        })?)
    }

    /// fsync everything written and stop the committer (idempotent).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.0.close())?)
    }
}

#[pyclass(name = "LogReader", module = "unified_events._core")]
pub struct PyLogReader(LogReader);

#[pymethods]
impl PyLogReader {
    #[new]
    fn new(log_dir: PathBuf) -> Self {
        Self(LogReader::new(&log_dir))
    }

    /// Durable records with position > `after_position`, in order: at most `max_records`, and
    /// stopping before `max_bytes` of payload (at least one record when any is available).
    #[pyo3(signature = (after_position, max_records = 10_000, max_bytes = 64 << 20))]
    fn read<'py>(
        &mut self,
        py: Python<'py>,
        after_position: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> PyResult<Vec<(u64, Bound<'py, PyBytes>)>> {
        let reader = &mut self.0;
        let raw = py.detach(|| reader.read_raw(after_position, max_records, max_bytes))?;
        Ok(py_records(py, &raw))
    }

    /// `read`, without a Python object per record: the payloads stay in one Rust buffer, which
    /// `ColdConverter.convert_raw` converts directly.
    #[pyo3(signature = (after_position, max_records = 10_000, max_bytes = 64 << 20))]
    fn read_raw(
        &mut self,
        py: Python<'_>,
        after_position: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> PyResult<PyRawRecords> {
        let reader = &mut self.0;
        let raw = py.detach(|| reader.read_raw(after_position, max_records, max_bytes))?;
        Ok(PyRawRecords(raw))
    }

    /// The last durable position (0 for an empty or missing log).
    fn last_position(&self) -> PyResult<u64> {
        Ok(self.0.last_position()?)
    }

    /// The position of the oldest record still on disk (0 when there is no log).
    fn first_position(&self) -> PyResult<u64> {
        Ok(self.0.first_position()?)
    }

    /// First position of the oldest segment written at or after `since_ms` (epoch ms), or None.
    fn first_position_since(&self, since_ms: i64) -> PyResult<Option<u64>> {
        Ok(self.0.first_position_since(since_ms)?)
    }
}

/// Records `LogReader.read_raw` read, in a Rust buffer. Python asks only for what it needs: the
/// count and size, positions, and the payload of a record the fast path leaves to Python.
#[pyclass(name = "RawRecords", module = "unified_events._core", frozen)]
pub struct PyRawRecords(pub RawBatch);

#[pymethods]
impl PyRawRecords {
    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// Payload bytes of all the records.
    #[getter]
    fn nbytes(&self) -> usize {
        self.0.payload_bytes()
    }

    /// Record `i`'s position (IndexError out of range, OverflowError when negative).
    fn position(&self, i: usize) -> PyResult<u64> {
        self.check(i)?;
        Ok(self.0.position(i))
    }

    /// The payload of record `i`.
    fn payload<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyBytes>> {
        self.check(i)?;
        Ok(PyBytes::new(py, self.0.payload(i)))
    }

    /// Every record as `(position, payload)`, as `LogReader.read` returns them.
    fn records<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, PyBytes>)> {
        py_records(py, &self.0)
    }
}

/// Every record of `raw` as `(position, payload)`: what `LogReader.read` returns.
fn py_records<'py>(py: Python<'py>, raw: &RawBatch) -> Vec<(u64, Bound<'py, PyBytes>)> {
    (0..raw.len())
        .map(|i| (raw.position(i), PyBytes::new(py, raw.payload(i))))
        .collect()
}

impl PyRawRecords {
    fn check(&self, i: usize) -> PyResult<()> {
        if i < self.0.len() {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "record {i} of {}",
                self.0.len()
            )))
        }
    }
}

/// The record payload of an `Accepted` (records.encode): the hot path of every publish, so it
/// reads the attributes directly and writes the bytes once.
#[pyfunction]
#[pyo3(signature = (accepted, accepted_at_ms, /))]
pub fn encode_event_record<'py>(
    py: Python<'py>,
    accepted: &Bound<'py, PyAny>,
    accepted_at_ms: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    use pyo3::intern;
    use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
    let text = |name: &Bound<'py, pyo3::types::PyString>| -> PyResult<PyBackedStr> {
        accepted.getattr(name)?.extract()
    };
    let opt = |name: &Bound<'py, pyo3::types::PyString>| -> PyResult<Option<PyBackedStr>> {
        accepted.getattr(name)?.extract()
    };
    let texts = [
        Some(text(intern!(py, "id"))?),
        Some(text(intern!(py, "topic"))?),
        Some(text(intern!(py, "event_type"))?),
        Some(text(intern!(py, "ns"))?),
        opt(intern!(py, "trace_id"))?,
        opt(intern!(py, "session_id"))?,
        opt(intern!(py, "correlation_id"))?,
    ];
    let timestamp_ms: i64 = accepted.getattr(intern!(py, "timestamp_ms"))?.extract()?;
    let frame: PyBackedBytes = accepted.getattr(intern!(py, "frame"))?.extract()?;
    let record: PyBackedBytes = accepted.getattr(intern!(py, "record"))?.extract()?;
    let parts: Vec<Option<&[u8]>> = texts
        .iter()
        .map(|t| t.as_ref().map(|s| s.as_bytes()))
        .chain([Some(&frame[..]), Some(&record[..])])
        .collect();
    let total = HEADER_LEN + parts.iter().flatten().map(|p| p.len()).sum::<usize>();
    PyBytes::new_with(py, total, |buf| {
        buf[0] = VERSION;
        buf[1..9].copy_from_slice(&accepted_at_ms.to_le_bytes());
        buf[9..17].copy_from_slice(&timestamp_ms.to_le_bytes());
        let mut at = HEADER_LEN;
        for (i, part) in parts.iter().enumerate() {
            let len = part.map_or(ABSENT, |p| p.len() as u32);
            buf[17 + 4 * i..21 + 4 * i].copy_from_slice(&len.to_le_bytes());
            if let Some(p) = part {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        }
        Ok(())
    })
}
