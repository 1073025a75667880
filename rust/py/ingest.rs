//! `accept_legacy_batch` and `LegacyBatch`: the fast path of a legacy batch publish. The batch
//! stays in Rust from the body to the dedup check, the log, the hot tier and the reply; Python
//! sees bytes only where it needs them (fan-out to connected clients).

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::classes::PyDedupCache;
use crate::ingest::canonical::write_json_string;
use crate::ingest::{accept_legacy_batch as accept, IdGen, LegacyEvent};

thread_local! {
    static IDS: RefCell<IdGen> = RefCell::new(IdGen::new());
}

/// The events of a `POST /broadcast` body holding an array of 1..=`max_events` legacy events,
/// or None when the Python path must decide (see rust/ingest/legacy.rs).
#[pyfunction]
#[pyo3(signature = (body, max_events, now_ms, /))]
pub fn accept_legacy_batch(body: &[u8], max_events: usize, now_ms: i64) -> Option<PyLegacyBatch> {
    IDS.with_borrow_mut(|ids| accept(body, max_events, now_ms, ids))
        .map(|events| PyLegacyBatch { events })
}

#[pyclass(name = "LegacyBatch", module = "unified_events._core", frozen)]
pub struct PyLegacyBatch {
    pub(super) events: Vec<LegacyEvent>,
}

impl PyLegacyBatch {
    /// The events `fresh` selects (all when None).
    pub(super) fn selected<'s, 'f>(
        &'s self,
        fresh: &'f Option<Vec<bool>>,
    ) -> impl Iterator<Item = &'s LegacyEvent> + use<'s, 'f> {
        self.events
            .iter()
            .enumerate()
            .filter(move |(i, _)| fresh.as_ref().is_none_or(|f| f.get(*i) == Some(&true)))
            .map(|(_, e)| e)
    }
}

#[pymethods]
impl PyLegacyBatch {
    fn __len__(&self) -> usize {
        self.events.len()
    }

    /// `dedup.check_and_insert` for each event in order: the duplicate flags.
    fn check_dedup(&self, dedup: &Bound<'_, PyDedupCache>, now_ms: i64) -> Vec<bool> {
        let mut dedup = dedup.borrow_mut();
        self.events
            .iter()
            .map(|e| dedup.0.check_and_insert(&e.topic, &e.id, now_ms))
            .collect()
    }

    /// (topic, frame) of the selected events, for fan-out.
    #[pyo3(signature = (fresh = None))]
    fn frames<'py>(
        &self,
        py: Python<'py>,
        fresh: Option<Vec<bool>>,
    ) -> Vec<(&str, Bound<'py, PyBytes>)> {
        let events: Vec<&LegacyEvent> = self.selected(&fresh).collect();
        events
            .into_iter()
            .map(|e| (e.topic.as_str(), PyBytes::new(py, &e.frame)))
            .collect()
    }

    /// Event `i` as the fields of `events.Accepted`, in its field order.
    #[allow(clippy::type_complexity)]
    fn fields<'py>(
        &self,
        py: Python<'py>,
        i: usize,
    ) -> Option<(
        &str,
        &str,
        &str,
        &str,
        i64,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
    )> {
        let e = self.events.get(i)?;
        Some((
            &e.id,
            &e.topic,
            &e.event_type,
            &e.topic,
            e.timestamp_ms,
            None,
            None,
            None,
            PyBytes::new(py, &e.frame),
            PyBytes::new(py, &e.record),
        ))
    }

    /// The event time of the last selected event (None when none is selected).
    #[pyo3(signature = (fresh = None))]
    fn last_timestamp_ms(&self, fresh: Option<Vec<bool>>) -> Option<i64> {
        self.selected(&fresh).last().map(|e| e.timestamp_ms)
    }

    /// The 200 reply of `http._broadcast_batch` when every event was accepted, as
    /// `orjson.dumps` writes it: `{"success","accepted","rejected","results":[...]}`.
    fn reply<'py>(&self, py: Python<'py>, duplicates: Vec<bool>) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(64 + self.events.len() * 96);
        out.extend_from_slice(b"{\"success\":true,\"accepted\":");
        out.extend_from_slice(self.events.len().to_string().as_bytes());
        out.extend_from_slice(b",\"rejected\":0,\"results\":[");
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"index\":");
            out.extend_from_slice(i.to_string().as_bytes());
            out.extend_from_slice(b",\"success\":true,\"id\":");
            write_json_string(&mut out, &e.id);
            out.extend_from_slice(b",\"event_type\":");
            write_json_string(&mut out, &e.event_type);
            if duplicates.get(i) == Some(&true) {
                out.extend_from_slice(b",\"duplicate\":true");
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        PyBytes::new(py, &out)
    }
}
