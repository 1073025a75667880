//! `TokenBucket` and `DedupCache`: thin wrappers, decisions returned as bools.

use pyo3::prelude::*;

use crate::dedup::DedupCache;
use crate::ratelimit::TokenBucket;

#[pyclass(name = "TokenBucket", module = "unified_events._core")]
pub struct PyTokenBucket(TokenBucket);

#[pymethods]
impl PyTokenBucket {
    #[new]
    fn new(rate_per_sec: f64, burst: f64, now_ms: f64) -> Self {
        Self(TokenBucket::new(rate_per_sec, burst, now_ms))
    }

    #[pyo3(signature = (now_ms, cost = 1.0))]
    fn try_take(&mut self, now_ms: f64, cost: f64) -> bool {
        self.0.try_take(now_ms, cost)
    }

    fn tokens(&mut self, now_ms: f64) -> f64 {
        self.0.tokens(now_ms)
    }
}

#[pyclass(name = "DedupCache", module = "unified_events._core")]
pub struct PyDedupCache(pub(super) DedupCache);

#[pymethods]
impl PyDedupCache {
    #[new]
    fn new(window_ms: i64, max_entries: usize) -> Self {
        Self(DedupCache::new(window_ms, max_entries))
    }

    fn check_and_insert(&mut self, topic: &str, event_id: &str, now_ms: i64) -> bool {
        self.0.check_and_insert(topic, event_id, now_ms)
    }

    fn prune(&mut self, now_ms: i64) -> usize {
        self.0.prune(now_ms)
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    #[getter]
    fn duplicates(&self) -> u64 {
        self.0.duplicates()
    }

    #[getter]
    fn uniques(&self) -> u64 {
        self.0.uniques()
    }

    #[getter]
    fn evictions(&self) -> u64 {
        self.0.evictions()
    }
}
