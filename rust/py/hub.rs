//! `Hub`: subscriptions and outbound queues. `drain` builds each connection's buffer directly
//! inside a new Python bytes object, so the frames are copied exactly once on the way out.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::fanout::{Hub, HubConfig};

#[pyclass(name = "Hub", module = "unified_events._core")]
pub struct PyHub(Hub);

#[pymethods]
impl PyHub {
    #[new]
    fn new(
        rate_per_sec: f64,
        burst: f64,
        max_queued_bytes: usize,
        max_pending_messages: usize,
        slow_consumer_ms: f64,
    ) -> Self {
        Self(Hub::new(HubConfig {
            rate_per_sec,
            burst,
            max_queued_bytes,
            max_pending_messages,
            slow_consumer_ms,
        }))
    }

    fn add_connection(&mut self, conn_id: u64, now_ms: f64) -> PyResult<()> {
        Ok(self.0.add_connection(conn_id, now_ms)?)
    }

    fn remove_connection(&mut self, conn_id: u64) {
        self.0.remove_connection(conn_id);
    }

    fn subscribe(&mut self, conn_id: u64, pattern: &str) -> PyResult<bool> {
        Ok(self.0.subscribe(conn_id, pattern)?)
    }

    fn unsubscribe(&mut self, conn_id: u64, pattern: &str) -> bool {
        self.0.unsubscribe(conn_id, pattern)
    }

    fn subscriptions(&self, conn_id: u64) -> Vec<&str> {
        self.0
            .index()
            .subscriptions(conn_id)
            .iter()
            .map(|k| &**k)
            .collect()
    }

    fn subscriber_count(&self, key: &str) -> usize {
        self.0.index().subscriber_count(key)
    }

    fn keys(&self) -> Vec<(String, usize)> {
        self.0.index().keys()
    }

    fn key_count(&self) -> usize {
        self.0.index().key_count()
    }

    fn connection_count(&self) -> usize {
        self.0.connection_count()
    }

    fn matching(&self, topic: &str) -> Vec<u64> {
        self.0.index().matching(topic)
    }

    fn publish(&mut self, topic: &str, payload: &[u8], now_ms: f64) -> usize {
        self.0.publish(topic, payload, now_ms)
    }

    fn publish_all(&mut self, payload: &[u8], now_ms: f64) -> usize {
        self.0.publish_all(payload, now_ms)
    }

    /// Unknown ids are ignored: the connection may have closed while a reply was prepared.
    fn send_control(&mut self, conn_id: u64, payload: &[u8]) {
        self.0.send_control(conn_id, payload);
    }

    fn set_writable(&mut self, conn_id: u64, writable: bool) {
        self.0.set_writable(conn_id, writable);
    }

    fn drain<'py>(
        &mut self,
        py: Python<'py>,
        max_connections: usize,
    ) -> PyResult<Vec<(u64, Bound<'py, PyBytes>)>> {
        self.0
            .drain(max_connections)
            .into_iter()
            .map(|d| {
                let buf = PyBytes::new_with(py, d.len, |buf| {
                    d.write_into(buf);
                    Ok(())
                })?;
                Ok((d.conn_id, buf))
            })
            .collect()
    }

    fn has_pending(&self) -> bool {
        self.0.has_pending()
    }

    fn pending_bytes(&self, conn_id: u64) -> usize {
        self.0.pending_bytes(conn_id)
    }

    fn take_slow_consumers(&mut self, now_ms: f64) -> Vec<u64> {
        self.0.take_slow_consumers(now_ms)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.0.stats();
        let d = PyDict::new(py);
        d.set_item("delivered", s.delivered)?;
        d.set_item("dropped_rate_limit", s.dropped_rate_limit)?;
        d.set_item("dropped_backpressure", s.dropped_backpressure)?;
        d.set_item("backpressure_notices", s.backpressure_notices)?;
        d.set_item("slow_consumers", s.slow_consumers)?;
        d.set_item("queued_bytes", s.queued_bytes)?;
        Ok(d)
    }
}
