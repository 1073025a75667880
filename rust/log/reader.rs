//! `LogReader`: reads durable records from any process while the writer appends.
//!
//! It reads only up to `durable.pos`, and stops at the first record that does not check out,
//! so it never returns a torn tail or a record the writer could still lose. Segments the writer
//! deletes meanwhile are skipped: a read after a deleted position starts at the oldest record left.

use std::io;
use std::path::{Path, PathBuf};

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
}

impl LogReader {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            cursor: None,
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
        let durable = marker::load(&self.dir)?;
        let mut out = Vec::new();
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
        let mut bytes = 0usize;
        loop {
            let first = segments[idx];
            let mut scan = match Scanner::open(&segment::path(&self.dir, first), first) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Deleted under us: a retry lists again.
                    self.cursor = None;
                    return if out.is_empty() {
                        self.read(after, max_records, max_bytes)
                    } else {
                        Ok(out)
                    };
                }
                Err(e) => return Err(e),
            };
            let want = out.last().map_or(after + 1, |(p, _)| p + 1).max(first);
            if let Some(c) = &self.cursor {
                if c.segment_first == first && c.next_position <= want && c.next_position > first {
                    scan.seek(c.offset, c.next_position)?;
                }
            }
            scan.limit = durable;
            while let Some((position, payload)) = scan.next_record()? {
                if position < want {
                    continue;
                }
                if !out.is_empty() && bytes + payload.len() > max_bytes {
                    // Not taken: the next read starts at this record.
                    let offset = scan.offset - HEADER_LEN - payload.len() as u64;
                    self.cursor = Some(Cursor {
                        segment_first: first,
                        offset,
                        next_position: position,
                    });
                    return Ok(out);
                }
                bytes += payload.len();
                out.push((position, payload));
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

fn list_or_empty(dir: &Path) -> io::Result<Vec<u64>> {
    match segment::list(dir) {
        Ok(v) => Ok(v),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
