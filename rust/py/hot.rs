//! `HotTier`: the ring buffer; field names are parsed here so a typo is a ValueError.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::bytes_list;
use super::ingest::PyLegacyBatch;
use crate::hot::{EventMeta, Field, HotTier};

#[pyclass(name = "HotTier", module = "unified_events._core")]
pub struct PyHotTier(HotTier);

#[pymethods]
impl PyHotTier {
    #[new]
    fn new(retention_ms: i64, max_bytes: usize) -> Self {
        Self(HotTier::new(retention_ms, max_bytes))
    }

    #[allow(clippy::too_many_arguments)] // mirrors the contract's positional signature
    fn insert(
        &mut self,
        event_id: &str,
        topic: &str,
        event_type: &str,
        ns: &str,
        timestamp_ms: i64,
        trace_id: Option<&str>,
        session_id: Option<&str>,
        correlation_id: Option<&str>,
        frame: &[u8],
        record: &[u8],
    ) -> u64 {
        let meta = EventMeta {
            id: event_id,
            topic,
            event_type,
            ns,
            timestamp_ms,
            trace_id,
            session_id,
            correlation_id,
        };
        self.0.insert(&meta, frame, record)
    }

    /// Insert the events of a legacy batch that `fresh` selects (all when None), in order:
    /// `insert` for each, without a Python call per event (nor a parse of each hot row: the
    /// batch has the Arrow row's values at hand).
    #[pyo3(signature = (batch, fresh = None))]
    fn insert_legacy(&mut self, batch: &Bound<'_, PyLegacyBatch>, fresh: Option<Vec<bool>>) {
        for e in batch.get().selected(&fresh) {
            let meta = e.hot_meta();
            self.0
                .insert_cells(&meta, &e.frame, &e.record, e.arrow_row());
        }
    }

    fn evict_expired(&mut self, now_ms: i64) -> usize {
        self.0.evict_expired(now_ms)
    }

    fn find<'py>(
        &self,
        py: Python<'py>,
        field: &str,
        value: &str,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let field: Field = field.parse()?;
        Ok(bytes_list(py, self.0.find(field, value)))
    }

    #[pyo3(signature = (filters, after_ms, limit))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        filters: HashMap<String, String>,
        after_ms: Option<i64>,
        limit: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let parsed = filters
            .iter()
            .map(|(f, v)| Ok((f.parse::<Field>()?, v.as_str())))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(bytes_list(py, self.0.query(&parsed, after_ms, limit)))
    }

    fn replay_after_id<'py>(
        &self,
        py: Python<'py>,
        event_id: &str,
        patterns: Vec<String>,
    ) -> Option<Vec<Bound<'py, PyBytes>>> {
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        self.0
            .replay_after_id(event_id, &patterns)
            .map(|v| bytes_list(py, v))
    }

    fn replay_after_time<'py>(
        &self,
        py: Python<'py>,
        after_ms: i64,
        patterns: Vec<String>,
    ) -> Vec<Bound<'py, PyBytes>> {
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        bytes_list(py, self.0.replay_after_time(after_ms, &patterns))
    }

    /// The held rows as Arrow (zero-copy for frozen segments), consistent as of this call.
    fn arrow_snapshot(&self) -> super::arrow::PyArrowSnapshot {
        super::arrow::PyArrowSnapshot::new(self.0.arrow_snapshot())
    }

    /// The held rows by segment (see `ArrowSegments`), consistent as of this call.
    fn arrow_segments(&self) -> super::arrow::PyArrowSegments {
        super::arrow::PyArrowSegments::new(self.0.arrow_segments())
    }

    /// The rows whose indexed `field` equals `value`, or None when more than `max_rows` match.
    fn arrow_snapshot_where(
        &self,
        field: &str,
        value: &str,
        max_rows: usize,
    ) -> PyResult<Option<super::arrow::PyArrowSnapshot>> {
        let field: Field = field.parse()?;
        Ok(self
            .0
            .arrow_snapshot_where(field, value, max_rows)
            .map(super::arrow::PyArrowSnapshot::new))
    }

    fn records<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        bytes_list(py, self.0.records())
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    #[getter]
    fn bytes_used(&self) -> usize {
        self.0.bytes_used()
    }

    #[getter]
    fn last_seq(&self) -> u64 {
        self.0.last_seq()
    }
}
