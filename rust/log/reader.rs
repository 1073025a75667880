//! `LogReader`: reads durable records from any process while the writer appends.
//!
//! It reads only up to `durable.pos`, and stops at the first record that does not check out,
//! so it never returns a torn tail or a record the writer could still lose. Segments the writer
//! deletes meanwhile are skipped: a read after a deleted position starts at the oldest record left.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::marker;
use super::record::{Scanner, HEADER_LEN};
use super::segment;

/// Where the previous read stopped, so sequential reads do not rescan a segment.
struct Cursor {
    segment_first: u64,
    offset: u64,
    next_position: u64,
}

pub struct LogReader {
    dir: PathBuf,
    cursor: Option<Cursor>,
    spare: Spare,
}

/// The payload buffer of the last `RawBatch` dropped, for the next read. A batch is tens to
/// hundreds of MB: a fresh buffer each time was fresh pages, faulted in and zeroed by the kernel
/// (about half the CPU of a read). The archiver holds one batch at a time, so one spare is
/// enough; it keeps that much memory while idle.
type Spare = Arc<Mutex<Option<Vec<u8>>>>;

impl LogReader {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            cursor: None,
            spare: Spare::default(),
        }
    }

    /// The last durable position (0 when the log is empty or does not exist yet).
    pub fn last_position(&self) -> io::Result<u64> {
        marker::load(&self.dir)
    }

    /// The position of the oldest record still on disk (1 for a fresh log, 0 when no log).
    pub fn first_position(&self) -> io::Result<u64> {
        Ok(list_or_empty(&self.dir)?.first().copied().unwrap_or(0))
    }

    /// First position of the oldest segment last modified at or after `since` (epoch ms); the
    /// records before it were all written before `since`. None when every segment is older.
    pub fn first_position_since(&self, since_ms: i64) -> io::Result<Option<u64>> {
        for first in list_or_empty(&self.dir)? {
            let modified = match std::fs::metadata(segment::path(&self.dir, first)) {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let ms = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            if ms >= since_ms {
                return Ok(Some(first));
            }
        }
        Ok(None)
    }

    /// Up to `max_records` records with position > `after`, in order, stopping before
    /// `max_bytes` of payload (but always at least one record when one is available).
    pub fn read(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let raw = self.read_raw(after, max_records, max_bytes)?;
        Ok((0..raw.len())
            .map(|i| (raw.position(i), raw.payload(i).to_vec()))
            .collect())
    }

    /// `read`, the payloads back to back in one buffer (no allocation per record).
    pub fn read_raw(
        &mut self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> io::Result<RawBatch> {
        let durable = marker::load(&self.dir)?;
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut out = RawBatch {
            data: spare.unwrap_or_default(),
            ends: Vec::new(),
            positions: Vec::new(),
            spare: Some(self.spare.clone()),
        };
        if after >= durable || max_records == 0 {
            return Ok(out);
        }
        let segments = list_or_empty(&self.dir)?;
        // The segment holding after + 1, or the oldest one if that was deleted.
        let Some(mut idx) = segments
            .iter()
            .rposition(|&f| f <= after + 1)
            .or(if segments.is_empty() { None } else { Some(0) })
        else {
            return Ok(out);
        };
        loop {
            let first = segments[idx];
            let mut scan = match Scanner::open(&segment::path(&self.dir, first), first) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Deleted under us: a retry lists again.
                    self.cursor = None;
                    return if out.is_empty() {
                        self.read_raw(after, max_records, max_bytes)
                    } else {
                        Ok(out)
                    };
                }
                Err(e) => return Err(e),
            };
            let want = out.last_position().map_or(after + 1, |p| p + 1).max(first);
            if let Some(c) = &self.cursor {
                if c.segment_first == first && c.next_position <= want && c.next_position > first {
                    scan.seek(c.offset, c.next_position)?;
                }
            }
            scan.limit = durable;
            let mut start = out.data.len();
            while let Some(position) = scan.next_record_into(&mut out.data)? {
                let len = out.data.len() - start;
                if position < want {
                    out.data.truncate(start);
                    continue;
                }
                if !out.is_empty() && start + len > max_bytes {
                    // Not taken: the next read starts at this record.
                    out.data.truncate(start);
                    let offset = scan.offset - HEADER_LEN - len as u64;
                    self.cursor = Some(Cursor {
                        segment_first: first,
                        offset,
                        next_position: position,
                    });
                    return Ok(out);
                }
                out.ends.push(out.data.len());
                out.positions.push(position);
                start = out.data.len();
                if out.len() >= max_records {
                    break;
                }
            }
            let next = scan.next_position;
            self.cursor = Some(Cursor {
                segment_first: first,
                offset: scan.offset,
                next_position: next,
            });
            // Continue into the next segment only when it starts right where this one ended.
            if out.len() >= max_records
                || next > durable
                || idx + 1 >= segments.len()
                || segments[idx + 1] != next
            {
                return Ok(out);
            }
            idx += 1;
        }
    }
}

/// Records read by `LogReader::read_raw`: payloads back to back in one buffer, with each
/// record's end offset and position.
#[derive(Default)]
pub struct RawBatch {
    data: Vec<u8>,
    ends: Vec<usize>,
    positions: Vec<u64>,
    /// Where `data` goes when the batch is dropped (its reader's spare).
    spare: Option<Spare>,
}

impl Drop for RawBatch {
    fn drop(&mut self) {
        if let Some(spare) = &self.spare {
            let mut data = std::mem::take(&mut self.data);
            data.clear();
            let mut slot = spare.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_none_or(|s| s.capacity() < data.capacity()) {
                *slot = Some(data);
            }
        }
    }
}

impl RawBatch {
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Payload bytes of all records (what `max_bytes` limits).
    pub fn payload_bytes(&self) -> usize {
        self.data.len()
    }

    pub fn position(&self, i: usize) -> u64 {
        self.positions[i]
    }

    pub fn last_position(&self) -> Option<u64> {
        self.positions.last().copied()
    }

    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    pub fn payloads(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.payload(i))
    }
}

fn list_or_empty(dir: &Path) -> io::Result<Vec<u64>> {
    match segment::list(dir) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Durability, LogWriter};

    #[test]
    fn read_raw_holds_what_read_returns() {
        let tmp = tempfile::tempdir().unwrap();
        let payloads: Vec<Vec<u8>> = (1..=40u64)
            .map(|i| format!("record-{i}-{}", "y".repeat((i % 13) as usize)).into_bytes())
            .collect();
        let w = LogWriter::open(tmp.path(), Durability::None, 300).unwrap(); // many segments
        let slices: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
        w.append(&slices[..25]).unwrap();
        w.append(&slices[25..]).unwrap();
        w.close().unwrap();
        for (after, max_records, max_bytes) in [
            (0, 100, 1 << 20),
            (3, 7, 1 << 20),
            (5, 100, 1),
            (9, 100, 60),
            (39, 5, 10),
            (40, 5, 10),
        ] {
            let raw = LogReader::new(tmp.path())
                .read_raw(after, max_records, max_bytes)
                .unwrap();
            let read = LogReader::new(tmp.path())
                .read(after, max_records, max_bytes)
                .unwrap();
            assert_eq!(raw.len(), read.len());
            assert_eq!(raw.last_position(), read.last().map(|r| r.0));
            for (i, (position, payload)) in read.iter().enumerate() {
                assert_eq!((raw.position(i), raw.payload(i)), (*position, &payload[..]));
                assert_eq!(&payloads[*position as usize - 1], payload);
            }
            let bytes: usize = read.iter().map(|r| r.1.len()).sum();
            assert_eq!(raw.payload_bytes(), bytes);
            assert!(
                raw.len() <= 1 || bytes <= max_bytes,
                "({after}, {max_records}, {max_bytes})"
            );
        }
        // Reads that continue where the previous stopped (the cursor) see every record once.
        let mut reader = LogReader::new(tmp.path());
        let mut seen = Vec::new();
        loop {
            let raw = reader.read_raw(seen.len() as u64, 6, 80).unwrap();
            if raw.is_empty() {
                break;
            }
            seen.extend(raw.payloads().map(<[u8]>::to_vec));
        }
        assert_eq!(seen, payloads);
        // Each read above reused the buffer of the one before (dropped): the same allocation.
        let first = reader.read_raw(0, 40, 1 << 20).unwrap();
        let (at, capacity) = (first.data.as_ptr(), first.data.capacity());
        drop(first);
        let again = reader.read_raw(10, 40, 1 << 20).unwrap();
        assert_eq!((again.data.as_ptr(), again.data.capacity()), (at, capacity));
        assert_eq!(again.payload(0), &payloads[10][..]);
    }
}
