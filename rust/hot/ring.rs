//! Insertion-ordered ring of recent events with equality indexes.
//!
//! Entries sit in a `VecDeque` in strictly increasing `seq`, so `seq -> entry` is a binary
//! search and the indexes store seqs, not positions that would shift on eviction. Every index
//! list is kept exact: eviction removes the entry's seqs (O(1) from the front in the common
//! oldest-first case, a binary search otherwise), so lookups never meet stale seqs.
//! Retention is by event time, and events may arrive out of timestamp order, so
//! `evict_expired` filters the whole ring; it runs from the periodic cleanup, not per insert.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::str::FromStr;

use rustc_hash::FxHashMap;

use super::arrow::{Cell, ColumnStore, COLUMN_COUNT};
use crate::error::CoreError;
use crate::topic::PatternKind;

/// Bookkeeping per entry beyond its strings and documents (entry struct, deque slot, index
/// slots and hash-map nodes), so `bytes_used` tracks real memory roughly, not just payloads.
/// The entry's Arrow row (`arrow::ColumnStore::push`) is counted too.
pub const ENTRY_OVERHEAD: usize = 256;

/// JSON rows checked against their Arrow columns per insert: more than one, so the check keeps up
/// with inserts, and few, so it never stalls one insert (a frozen segment is 4096 rows).
const COMPACT_PER_INSERT: usize = 2;

/// An event's Arrow row as a caller that built the event has it at hand (`HotTier::insert_cells`).
#[derive(Debug)]
pub struct ArrowRow<'a> {
    /// What `ColumnStore::push` would read from the hot row JSON, one cell per column.
    pub cells: [Option<Cell<'a>>; COLUMN_COUNT],
    pub extra: Option<String>,
    /// The hot row JSON is byte for byte what `ColumnStore::row_json` rebuilds from these
    /// cells (compact, in `COLUMNS` order, strings escaped as serde_json does), so the row
    /// compaction need not rebuild it to check. Debug builds check anyway.
    pub record_rebuilds: bool,
}

/// The indexed fields, in the order of `Entry::fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    TraceId,
    SessionId,
    CorrelationId,
    EventType,
    Ns,
    Topic,
}

const FIELD_COUNT: usize = 7;

impl FromStr for Field {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, CoreError> {
        Ok(match s {
            "id" => Self::Id,
            "trace_id" => Self::TraceId,
            "session_id" => Self::SessionId,
            "correlation_id" => Self::CorrelationId,
            "event_type" => Self::EventType,
            "ns" => Self::Ns,
            "topic" => Self::Topic,
            other => return Err(CoreError::UnknownField(other.to_owned())),
        })
    }
}

/// The indexed columns of one event, as given to [`HotTier::insert`].
#[derive(Debug, Clone, Copy)]
pub struct EventMeta<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub event_type: &'a str,
    pub ns: &'a str,
    pub timestamp_ms: i64,
    pub trace_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    timestamp_ms: i64,
    fields: [Option<Box<str>>; FIELD_COUNT],
    frame: Box<[u8]>,
    /// The hot row JSON; None once the Arrow columns are known to rebuild it exactly.
    record: Option<Box<[u8]>>,
    /// The inserter vouched that `record` is the form the Arrow columns rebuild
    /// (`ArrowRow::record_rebuilds`): compaction drops it without rebuilding it to compare.
    record_rebuilds: bool,
    bytes: usize,
}

impl Entry {
    fn field(&self, f: Field) -> Option<&str> {
        self.fields[f as usize].as_deref()
    }

    fn topic(&self) -> &str {
        self.field(Field::Topic).unwrap_or("")
    }
}

type Index = FxHashMap<Box<str>, VecDeque<u64>>;

#[derive(Debug)]
pub struct HotTier {
    retention_ms: i64,
    max_bytes: usize,
    entries: VecDeque<Entry>,
    indexes: [Index; FIELD_COUNT],
    bytes_used: usize,
    last_seq: u64,
    /// The same rows as Arrow columns, for SQL.
    columns: ColumnStore,
    /// Next seq whose JSON row may be dropped once its segment is frozen (see `compact_rows`).
    compact_from: u64,
}

fn unindex(indexes: &mut [Index; FIELD_COUNT], e: &Entry) {
    for (index, value) in indexes.iter_mut().zip(&e.fields) {
        let Some(value) = value else { continue };
        let Some(seqs) = index.get_mut(value) else {
            continue;
        };
        if seqs.front() == Some(&e.seq) {
            seqs.pop_front();
        } else if let Ok(i) = seqs.binary_search(&e.seq) {
            seqs.remove(i);
        }
        if seqs.is_empty() {
            index.remove(value);
        }
    }
}

/// Pre-classified replay patterns; empty means every topic.
fn topic_filter<'p>(patterns: &[&'p str]) -> impl Fn(&str) -> bool + 'p {
    let kinds: Vec<PatternKind<'p>> = patterns.iter().map(|p| PatternKind::of(p)).collect();
    move |topic| kinds.is_empty() || kinds.iter().any(|k| k.matches(topic))
}

impl HotTier {
    pub fn new(retention_ms: i64, max_bytes: usize) -> Self {
        Self {
            retention_ms,
            max_bytes,
            entries: VecDeque::new(),
            indexes: Default::default(),
            bytes_used: 0,
            last_seq: 0,
            columns: ColumnStore::new(),
            compact_from: 1,
        }
    }

    /// Append an event; returns its seq. Evicts the oldest while over the byte budget, but
    /// never the event just added: one event larger than the budget is kept on its own.
    pub fn insert(&mut self, meta: &EventMeta<'_>, frame: &[u8], record: &[u8]) -> u64 {
        let seq = self.last_seq + 1;
        let arrow_bytes = self.columns.push(seq, record, frame);
        self.insert_entry(meta, frame, record, arrow_bytes, false)
    }

    /// `insert` for a caller that has the Arrow row's values already (`ColumnStore::push_cells`):
    /// the same row without parsing `record` again. `row` must be what `record` holds.
    pub fn insert_cells(
        &mut self,
        meta: &EventMeta<'_>,
        frame: &[u8],
        record: &[u8],
        row: ArrowRow<'_>,
    ) -> u64 {
        let seq = self.last_seq + 1;
        let arrow_bytes = self.columns.push_cells(seq, row.cells, row.extra);
        self.insert_entry(meta, frame, record, arrow_bytes, row.record_rebuilds)
    }

    /// The rest of an insert once the Arrow row of seq `last_seq + 1` is appended.
    fn insert_entry(
        &mut self,
        meta: &EventMeta<'_>,
        frame: &[u8],
        record: &[u8],
        arrow_bytes: usize,
        record_rebuilds: bool,
    ) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        let fields: [Option<&str>; FIELD_COUNT] = [
            Some(meta.id),
            meta.trace_id,
            meta.session_id,
            meta.correlation_id,
            Some(meta.event_type),
            Some(meta.ns),
            Some(meta.topic),
        ];
        let bytes = ENTRY_OVERHEAD
            + frame.len()
            + record.len()
            + arrow_bytes
            + fields.iter().flatten().map(|s| s.len()).sum::<usize>();
        for (index, value) in self.indexes.iter_mut().zip(fields) {
            if let Some(v) = value {
                match index.get_mut(v) {
                    Some(seqs) => seqs.push_back(seq),
                    None => {
                        index.insert(v.into(), VecDeque::from([seq]));
                    }
                }
            }
        }
        self.entries.push_back(Entry {
            seq,
            timestamp_ms: meta.timestamp_ms,
            fields: fields.map(|v| v.map(Into::into)),
            frame: frame.into(),
            record: Some(record.into()),
            record_rebuilds,
            bytes,
        });
        self.bytes_used += bytes;
        self.compact_rows(COMPACT_PER_INSERT);
        while self.bytes_used > self.max_bytes && self.entries.len() > 1 {
            let old = self.entries.pop_front().expect("len > 1");
            self.bytes_used -= old.bytes;
            unindex(&mut self.indexes, &old);
            self.columns.kill(old.seq);
        }
        seq
    }

    /// Drop the JSON row of up to `budget` events in frozen segments whose row the Arrow columns
    /// rebuild byte for byte; the row is then rebuilt on read. Memory: the row is ~half an entry.
    fn compact_rows(&mut self, budget: usize) {
        let frozen_below = self.columns.frozen_below();
        for _ in 0..budget {
            let seq = self.compact_from;
            if seq >= frozen_below {
                return;
            }
            self.compact_from += 1;
            let Some(i) = self.position(seq) else {
                continue;
            };
            let entry = &self.entries[i];
            let Some(row) = &entry.record else { continue };
            let rebuilds = if entry.record_rebuilds {
                debug_assert_eq!(
                    self.columns.row_json(seq).as_deref().map(str::as_bytes),
                    Some(&**row),
                    "a row vouched for rebuilds byte for byte"
                );
                self.columns.holds_live_frozen(seq)
            } else {
                self.columns
                    .row_json(seq)
                    .is_some_and(|rebuilt| *rebuilt.as_bytes() == **row)
            };
            if rebuilds {
                let entry = &mut self.entries[i];
                let len = entry.record.take().map_or(0, |row| row.len());
                entry.bytes -= len;
                self.bytes_used -= len;
            }
        }
    }

    fn record<'s>(&'s self, e: &'s Entry) -> Cow<'s, [u8]> {
        match &e.record {
            Some(row) => Cow::Borrowed(row),
            None => Cow::Owned(
                self.columns
                    .row_json(e.seq)
                    .expect("a compacted row is live in a frozen segment")
                    .into_bytes(),
            ),
        }
    }

    /// Remove every event with `timestamp_ms < now_ms - retention_ms`; returns how many.
    pub fn evict_expired(&mut self, now_ms: i64) -> usize {
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let before = self.entries.len();
        let (indexes, bytes_used) = (&mut self.indexes, &mut self.bytes_used);
        let columns = &mut self.columns;
        self.entries.retain(|e| {
            let keep = e.timestamp_ms >= cutoff;
            if !keep {
                *bytes_used -= e.bytes;
                unindex(indexes, e);
                columns.kill(e.seq);
            }
            keep
        });
        before - self.entries.len()
    }

    fn position(&self, seq: u64) -> Option<usize> {
        // Entries leave from the front only, so their seqs are usually contiguous: try the
        // offset from the first before searching.
        let first = self.entries.front()?.seq;
        let guess = usize::try_from(seq.checked_sub(first)?).ok()?;
        if self.entries.get(guess).is_some_and(|e| e.seq == seq) {
            return Some(guess);
        }
        self.entries.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    fn seqs(&self, field: Field, value: &str) -> Option<&VecDeque<u64>> {
        self.indexes[field as usize].get(value)
    }

    /// Records whose `field` equals `value`, in insertion order.
    pub fn find(&self, field: Field, value: &str) -> Vec<Cow<'_, [u8]>> {
        self.seqs(field, value).map_or_else(Vec::new, |seqs| {
            seqs.iter()
                .filter_map(|&s| self.position(s))
                .map(|i| self.record(&self.entries[i]))
                .collect()
        })
    }

    /// Records matching every filter, with `timestamp_ms > after_ms` when given, newest first
    /// (ties: latest inserted first), at most `limit`. Candidates come from the filter with the
    /// shortest index list; with no filter, the whole ring is scanned.
    pub fn query(
        &self,
        filters: &[(Field, &str)],
        after_ms: Option<i64>,
        limit: Option<usize>,
    ) -> Vec<Cow<'_, [u8]>> {
        let keep = |e: &Entry| {
            after_ms.is_none_or(|a| e.timestamp_ms > a)
                && filters.iter().all(|(f, v)| e.field(*f) == Some(*v))
        };
        let mut hits: Vec<&Entry> = if filters.is_empty() {
            self.entries.iter().filter(|e| keep(e)).collect()
        } else {
            let lists: Option<Vec<&VecDeque<u64>>> =
                filters.iter().map(|(f, v)| self.seqs(*f, v)).collect();
            let Some(shortest) = lists.and_then(|l| l.into_iter().min_by_key(|s| s.len())) else {
                return Vec::new();
            };
            shortest
                .iter()
                .filter_map(|&s| self.position(s).map(|i| &self.entries[i]))
                .filter(|e| keep(e))
                .collect()
        };
        hits.sort_unstable_by_key(|e| std::cmp::Reverse((e.timestamp_ms, e.seq)));
        if let Some(n) = limit {
            hits.truncate(n);
        }
        hits.into_iter().map(|e| self.record(e)).collect()
    }

    /// Frames inserted after `event_id` with a timestamp >= its timestamp, matching the
    /// patterns, by (timestamp, seq). None when `event_id` is not held. With several events
    /// of that id, the oldest held one is the reference.
    pub fn replay_after_id(&self, event_id: &str, patterns: &[&str]) -> Option<Vec<&[u8]>> {
        let seq = *self.seqs(Field::Id, event_id)?.front()?;
        let pos = self.position(seq)?;
        let since = self.entries[pos].timestamp_ms;
        let wanted = topic_filter(patterns);
        Some(
            self.sorted_frames(
                self.entries
                    .range(pos + 1..)
                    .filter(|e| e.timestamp_ms >= since && wanted(e.topic())),
            ),
        )
    }

    /// Frames with `timestamp_ms > after_ms` matching the patterns, by (timestamp, seq).
    pub fn replay_after_time(&self, after_ms: i64, patterns: &[&str]) -> Vec<&[u8]> {
        let wanted = topic_filter(patterns);
        self.sorted_frames(
            self.entries
                .iter()
                .filter(|e| e.timestamp_ms > after_ms && wanted(e.topic())),
        )
    }

    fn sorted_frames<'s>(&'s self, it: impl Iterator<Item = &'s Entry>) -> Vec<&'s [u8]> {
        let mut hits: Vec<&Entry> = it.collect();
        // Already in seq order, so a stable sort on timestamp gives (timestamp, seq).
        hits.sort_by_key(|e| e.timestamp_ms);
        hits.into_iter().map(|e| &*e.frame).collect()
    }

    /// Every record, in insertion order.
    pub fn records(&self) -> Vec<Cow<'_, [u8]>> {
        self.entries.iter().map(|e| self.record(e)).collect()
    }

    /// The held events as Arrow batches (`arrow::schema()`), consistent as of this call.
    pub fn arrow_snapshot(&self) -> Vec<arrow_array::RecordBatch> {
        self.columns.snapshot()
    }

    /// `arrow_snapshot` split by segment, for consumers that cache per frozen segment
    /// (see `arrow::ColumnStore::segments`).
    pub fn arrow_segments(&self) -> Vec<super::arrow::SegmentRows> {
        self.columns.segments()
    }

    /// Like `arrow_snapshot`, restricted to the events whose indexed `field` equals `value`;
    /// None when more than `max_rows` match (a full snapshot is then cheaper to scan).
    pub fn arrow_snapshot_where(
        &self,
        field: Field,
        value: &str,
        max_rows: usize,
    ) -> Option<Vec<arrow_array::RecordBatch>> {
        let Some(seqs) = self.seqs(field, value) else {
            return Some(Vec::new());
        };
        if seqs.len() > max_rows {
            return None;
        }
        let seqs: Vec<u64> = seqs.iter().copied().collect();
        Some(self.columns.snapshot_of(&seqs))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
