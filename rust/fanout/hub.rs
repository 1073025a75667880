//! The hub: subscriptions plus per-connection outbound queues.
//!
//! `publish` frames a payload once and queues the same `Arc<[u8]>` for every matching
//! connection that passes its token bucket (checked first, as in the original) and its queue
//! cap. `drain` then hands back, per writable connection, all its frames so the caller can
//! issue one socket write per connection per tick. Connections enter a FIFO "dirty" queue when
//! they first get a frame while writable, so `drain` never scans idle connections.
//!
//! Backpressure (decisions.md): `max_queued_bytes` always applies; `max_pending_messages` only
//! while the transport says it is not writable. A frame over a cap is dropped; the first drop
//! of a burst queues one `backpressure` notice (bypassing the caps) and starts the slow-consumer
//! clock. The burst ends when `drain` empties the queue.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::frame::shared_text_frame;
use crate::error::CoreError;
use crate::ratelimit::TokenBucket;
use crate::topic::SubscriptionIndex;

pub const BACKPRESSURE_NOTICE: &[u8] =
    br#"{"type":"backpressure","message":"Messages being dropped due to backpressure"}"#;

pub type Frame = Arc<[u8]>;

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    pub rate_per_sec: f64,
    pub burst: f64,
    pub max_queued_bytes: usize,
    pub max_pending_messages: usize,
    pub slow_consumer_ms: f64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Frames queued to connections by `publish`/`publish_all`.
    pub delivered: u64,
    pub dropped_rate_limit: u64,
    pub dropped_backpressure: u64,
    pub backpressure_notices: u64,
    pub slow_consumers: u64,
    /// Bytes queued right now, over all connections.
    pub queued_bytes: u64,
}

/// One connection's frames taken by `drain`; `len` is their total size.
#[derive(Debug)]
pub struct Drained {
    pub conn_id: u64,
    pub frames: VecDeque<Frame>,
    pub len: usize,
}

impl Drained {
    /// Copy every frame into `buf`, which must be exactly `len` bytes.
    pub fn write_into(&self, buf: &mut [u8]) {
        let mut at = 0;
        for f in &self.frames {
            buf[at..at + f.len()].copy_from_slice(f);
            at += f.len();
        }
        debug_assert_eq!(at, buf.len());
    }
}

#[derive(Debug)]
struct Conn {
    bucket: TokenBucket,
    queue: VecDeque<Frame>,
    queued_bytes: usize,
    writable: bool,
    /// In `Shared::dirty` (it was queued to while writable and has not been drained since).
    dirty: bool,
    over_cap_since: Option<f64>,
    notice_sent: bool,
    slow_reported: bool,
    /// Last publish that reached this connection: de-duplicates overlapping subscriptions.
    stamp: u64,
}

/// Everything a delivery touches besides the connection itself, split out so `publish` can
/// borrow the index immutably while it mutates queues.
#[derive(Debug)]
struct Shared {
    cfg: HubConfig,
    dirty: VecDeque<u64>,
    /// Connections that are dirty and writable: `has_pending()` without a scan.
    ready: usize,
    /// Connections whose over-cap clock started; pruned by `take_slow_consumers`.
    over_cap: Vec<u64>,
    stats: HubStats,
    notice: Frame,
}

impl Shared {
    fn push(&mut self, id: u64, c: &mut Conn, frame: Frame) {
        c.queued_bytes += frame.len();
        self.stats.queued_bytes += frame.len() as u64;
        c.queue.push_back(frame);
        if !c.dirty && c.writable {
            c.dirty = true;
            self.ready += 1;
            self.dirty.push_back(id);
        }
    }

    /// Rate check, then cap check, then queue. True if the frame was queued.
    fn deliver(&mut self, id: u64, c: &mut Conn, frame: &Frame, now_ms: f64) -> bool {
        if !c.bucket.try_take(now_ms, 1.0) {
            self.stats.dropped_rate_limit += 1;
            return false;
        }
        // An empty queue always takes one frame, so an event larger than the cap still reaches
        // a connection that is keeping up.
        let over_bytes =
            c.queued_bytes > 0 && c.queued_bytes + frame.len() > self.cfg.max_queued_bytes;
        let over_count = !c.writable && c.queue.len() >= self.cfg.max_pending_messages;
        if over_bytes || over_count {
            self.stats.dropped_backpressure += 1;
            if !c.notice_sent {
                c.notice_sent = true;
                self.stats.backpressure_notices += 1;
                let notice = self.notice.clone();
                self.push(id, c, notice);
            }
            if c.over_cap_since.is_none() {
                c.over_cap_since = Some(now_ms);
                self.over_cap.push(id);
            }
            return false;
        }
        self.stats.delivered += 1;
        self.push(id, c, frame.clone());
        true
    }
}

#[derive(Debug)]
pub struct Hub {
    index: SubscriptionIndex,
    conns: FxHashMap<u64, Conn>,
    sh: Shared,
    stamp: u64,
}

impl Hub {
    pub fn new(cfg: HubConfig) -> Self {
        Self {
            index: SubscriptionIndex::new(),
            conns: FxHashMap::default(),
            sh: Shared {
                cfg,
                dirty: VecDeque::new(),
                ready: 0,
                over_cap: Vec::new(),
                stats: HubStats::default(),
                notice: shared_text_frame(BACKPRESSURE_NOTICE),
            },
            stamp: 0,
        }
    }

    pub fn add_connection(&mut self, id: u64, now_ms: f64) -> Result<(), CoreError> {
        if self.conns.contains_key(&id) {
            return Err(CoreError::DuplicateConnection(id));
        }
        let cfg = &self.sh.cfg;
        self.conns.insert(
            id,
            Conn {
                bucket: TokenBucket::new(cfg.rate_per_sec, cfg.burst, now_ms),
                queue: VecDeque::new(),
                queued_bytes: 0,
                writable: true,
                dirty: false,
                over_cap_since: None,
                notice_sent: false,
                slow_reported: false,
                stamp: 0,
            },
        );
        Ok(())
    }

    /// Forget the connection, its queue and its subscriptions. Its stale entries in the dirty
    /// and over-cap lists are skipped lazily.
    pub fn remove_connection(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            if c.dirty && c.writable {
                self.sh.ready -= 1;
            }
            self.sh.stats.queued_bytes -= c.queued_bytes as u64;
        }
        self.index.remove_connection(id);
    }

    pub fn subscribe(&mut self, id: u64, key: &str) -> Result<bool, CoreError> {
        if !self.conns.contains_key(&id) {
            return Err(CoreError::UnknownConnection(id));
        }
        Ok(self.index.subscribe(id, key))
    }

    pub fn unsubscribe(&mut self, id: u64, key: &str) -> bool {
        self.index.unsubscribe(id, key)
    }

    pub fn index(&self) -> &SubscriptionIndex {
        &self.index
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Queue `payload` for every connection with a matching key; returns how many queued it.
    pub fn publish(&mut self, topic: &str, payload: &[u8], now_ms: f64) -> usize {
        let frame = shared_text_frame(payload);
        self.stamp += 1;
        let stamp = self.stamp;
        let (conns, sh) = (&mut self.conns, &mut self.sh);
        let mut queued = 0;
        self.index.for_each_matching_set(topic, |set| {
            for id in set {
                if let Some(c) = conns.get_mut(id) {
                    if c.stamp != stamp {
                        c.stamp = stamp;
                        queued += usize::from(sh.deliver(*id, c, &frame, now_ms));
                    }
                }
            }
        });
        queued
    }

    /// Queue `payload` for every connection, whatever it subscribes to.
    pub fn publish_all(&mut self, payload: &[u8], now_ms: f64) -> usize {
        let frame = shared_text_frame(payload);
        let mut queued = 0;
        for (id, c) in &mut self.conns {
            queued += usize::from(self.sh.deliver(*id, c, &frame, now_ms));
        }
        queued
    }

    /// Queue a control or replay frame, bypassing rate limit and caps. False if unknown.
    pub fn send_control(&mut self, id: u64, payload: &[u8]) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        self.sh.push(id, c, shared_text_frame(payload));
        true
    }

    pub fn set_writable(&mut self, id: u64, writable: bool) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.writable == writable {
            return;
        }
        c.writable = writable;
        if c.dirty {
            // Still in the dirty queue: only its readiness changes.
            if writable {
                self.sh.ready += 1;
            } else {
                self.sh.ready -= 1;
            }
        } else if writable && !c.queue.is_empty() {
            c.dirty = true;
            self.sh.ready += 1;
            self.sh.dirty.push_back(id);
        }
    }

    /// Take every queued frame of up to `max_connections` writable connections, oldest dirty
    /// first. The rest stay dirty for the next call.
    pub fn drain(&mut self, max_connections: usize) -> Vec<Drained> {
        let mut out = Vec::with_capacity(max_connections.min(self.sh.ready));
        while out.len() < max_connections {
            let Some(id) = self.sh.dirty.pop_front() else {
                break;
            };
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if !c.dirty {
                continue; // a stale duplicate entry
            }
            c.dirty = false;
            if !c.writable {
                continue; // set_writable(true) re-queues it
            }
            self.sh.ready -= 1;
            let len = std::mem::take(&mut c.queued_bytes);
            self.sh.stats.queued_bytes -= len as u64;
            c.notice_sent = false;
            c.over_cap_since = None;
            c.slow_reported = false;
            let frames = std::mem::take(&mut c.queue);
            if !frames.is_empty() {
                out.push(Drained {
                    conn_id: id,
                    frames,
                    len,
                });
            }
        }
        out
    }

    pub fn has_pending(&self) -> bool {
        self.sh.ready > 0
    }

    pub fn pending_bytes(&self, id: u64) -> usize {
        self.conns.get(&id).map_or(0, |c| c.queued_bytes)
    }

    /// Connections over their cap for at least `slow_consumer_ms`, each reported once per
    /// over-cap episode. Sorted.
    pub fn take_slow_consumers(&mut self, now_ms: f64) -> Vec<u64> {
        let mut out = Vec::new();
        let (conns, sh) = (&mut self.conns, &mut self.sh);
        let limit = sh.cfg.slow_consumer_ms;
        sh.over_cap.retain(|id| {
            let Some(c) = conns.get_mut(id) else {
                return false;
            };
            match c.over_cap_since {
                Some(_) if c.slow_reported => false,
                Some(since) if now_ms - since >= limit => {
                    c.slow_reported = true;
                    out.push(*id);
                    false
                }
                Some(_) => true,
                None => false,
            }
        });
        sh.stats.slow_consumers += out.len() as u64;
        out.sort_unstable();
        out
    }

    pub fn stats(&self) -> HubStats {
        self.sh.stats
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
