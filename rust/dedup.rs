//! Dedup cache of (topic, event id) pairs (original-system.md §5.3, bounded).
//!
//! The window counts from first sight: a duplicate does not extend it, and an entry is still a
//! duplicate at exactly `window_ms`. A duplicate does refresh the entry's LRU position, so under
//! memory pressure a hot id outlives cold ones. An expired entry is recorded afresh.
//!
//! Storage is a slab of nodes threaded on an intrusive doubly linked list (most recent at the
//! head) plus a hash map from key to slot: every operation is O(1) except `prune`, which runs
//! from the periodic cleanup and walks the entries once.

use rustc_hash::FxHashMap;

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node {
    key: Box<[u8]>,
    first_seen: i64,
    prev: usize,
    next: usize,
}

#[derive(Debug)]
pub struct DedupCache {
    window_ms: i64,
    max_entries: usize,
    map: FxHashMap<Box<[u8]>, usize>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    duplicates: u64,
    uniques: u64,
    evictions: u64,
}

/// Length-prefixed so that no (topic, id) pair can collide with another, whatever the bytes.
fn make_key(topic: &str, event_id: &str) -> Box<[u8]> {
    let mut k = Vec::with_capacity(8 + topic.len() + event_id.len());
    k.extend_from_slice(&(topic.len() as u64).to_le_bytes());
    k.extend_from_slice(topic.as_bytes());
    k.extend_from_slice(event_id.as_bytes());
    k.into_boxed_slice()
}

impl DedupCache {
    pub fn new(window_ms: i64, max_entries: usize) -> Self {
        Self {
            window_ms,
            max_entries,
            map: FxHashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            duplicates: 0,
            uniques: 0,
            evictions: 0,
        }
    }

    /// True if seen within the window (a duplicate); otherwise records the pair and returns false.
    pub fn check_and_insert(&mut self, topic: &str, event_id: &str, now_ms: i64) -> bool {
        let key = make_key(topic, event_id);
        if let Some(&slot) = self.map.get(&key) {
            self.move_to_head(slot);
            let node = &mut self.nodes[slot];
            if now_ms.saturating_sub(node.first_seen) <= self.window_ms {
                self.duplicates += 1;
                return true;
            }
            node.first_seen = now_ms;
            self.uniques += 1;
            return false;
        }
        self.uniques += 1;
        if self.max_entries == 0 {
            return false;
        }
        if self.map.len() >= self.max_entries {
            self.remove_slot(self.tail);
            self.evictions += 1;
        }
        let node = Node {
            key: key.clone(),
            first_seen: now_ms,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.nodes[s] = node;
                s
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.link_head(slot);
        self.map.insert(key, slot);
        false
    }

    /// Drop expired entries; returns how many.
    pub fn prune(&mut self, now_ms: i64) -> usize {
        let mut removed = 0;
        let mut cur = self.head;
        while cur != NIL {
            let next = self.nodes[cur].next;
            if now_ms.saturating_sub(self.nodes[cur].first_seen) > self.window_ms {
                self.remove_slot(cur);
                removed += 1;
            }
            cur = next;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn uniques(&self) -> u64 {
        self.uniques
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = (self.nodes[slot].prev, self.nodes[slot].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
    }

    fn link_head(&mut self, slot: usize) {
        self.nodes[slot].prev = NIL;
        self.nodes[slot].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = slot;
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
    }

    fn move_to_head(&mut self, slot: usize) {
        if self.head != slot {
            self.unlink(slot);
            self.link_head(slot);
        }
    }

    fn remove_slot(&mut self, slot: usize) {
        self.unlink(slot);
        let key = std::mem::take(&mut self.nodes[slot].key);
        self.map.remove(&key);
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_from_first_sight() {
        let mut d = DedupCache::new(1000, 100);
        assert!(!d.check_and_insert("t", "e", 0));
        assert!(d.check_and_insert("t", "e", 500));
        assert!(d.check_and_insert("t", "e", 1000)); // exactly the window: still a duplicate
        assert!(!d.check_and_insert("t", "e", 1001)); // first sight was 0: expired, re-recorded
        assert!(d.check_and_insert("t", "e", 2001));
        assert!(!d.check_and_insert("t", "e", 2002));
        assert_eq!((d.duplicates(), d.uniques()), (3, 3));
    }

    #[test]
    fn acceptance_examples() {
        // §11 E35: three broadcasts with one id -> 2 duplicates, 1 unique.
        let mut d = DedupCache::new(60_000, 100);
        let dups = (0..3)
            .filter(|_| d.check_and_insert("t", "unique-event-id", 0))
            .count();
        assert_eq!((dups, d.duplicates(), d.uniques()), (2, 2, 1));
        // E36: window 1000, clock +2000 -> delivered again.
        let mut d = DedupCache::new(1000, 100);
        assert!(!d.check_and_insert("t", "x", 0));
        assert!(!d.check_and_insert("t", "x", 2000));
        // E37: the same id on two topics is two events.
        let mut d = DedupCache::new(1000, 100);
        assert!(!d.check_and_insert("topic1", "x", 0));
        assert!(!d.check_and_insert("topic2", "x", 0));
        // Keys are unambiguous.
        assert!(!d.check_and_insert("ab", "c", 0));
        assert!(!d.check_and_insert("a", "bc", 0));
    }

    #[test]
    fn lru_eviction_respects_duplicate_refresh() {
        let mut d = DedupCache::new(10_000, 2);
        d.check_and_insert("t", "a", 0);
        d.check_and_insert("t", "b", 1);
        assert!(d.check_and_insert("t", "a", 2)); // a is now most recent
        d.check_and_insert("t", "c", 3); // evicts b
        assert_eq!((d.len(), d.evictions()), (2, 1));
        assert!(d.check_and_insert("t", "a", 4));
        assert!(!d.check_and_insert("t", "b", 5)); // evicted -> new again (evicts c)
        assert!(d.check_and_insert("t", "a", 6));
        assert_eq!(d.evictions(), 2);
    }

    #[test]
    fn prune_and_zero_capacity() {
        let mut d = DedupCache::new(100, 10);
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            d.check_and_insert("t", id, i as i64 * 100);
        }
        assert_eq!(d.prune(250), 2); // a (0) and b (100) are older than 250 - 100
        assert_eq!(d.len(), 1);
        assert!(d.check_and_insert("t", "c", 250));
        assert!(!d.check_and_insert("t", "a", 250));
        assert_eq!(d.prune(10_000), 2);
        assert!(d.is_empty());
        let mut z = DedupCache::new(100, 0);
        assert!(!z.check_and_insert("t", "a", 0));
        assert!(!z.check_and_insert("t", "a", 0));
        assert_eq!(z.len(), 0);
    }
}
