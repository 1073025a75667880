//! One record on disk: `[len u32 LE][crc32 u32 LE][position u64 LE][payload; len]`.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

pub const HEADER_LEN: u64 = 16;
/// Written at the start of every segment; the last byte is the format version.
pub const SEGMENT_MAGIC: &[u8; 8] = b"UELOG\0\0\x01";
/// Larger lengths can only come from garbage (bodies are capped far below this).
pub const MAX_PAYLOAD: usize = 256 << 20;

pub fn checksum(len: u32, position: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&position.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Bytes one record takes on disk.
pub fn encoded_len(payload: &[u8]) -> u64 {
    HEADER_LEN + payload.len() as u64
}

pub fn encode_into(buf: &mut Vec<u8>, position: u64, payload: &[u8]) {
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(len, position, payload).to_le_bytes());
    buf.extend_from_slice(&position.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Reads records of one segment in order, checking each. The first record that is short,
/// out of sequence or fails its checksum ends the scan: everything from there is a torn tail
/// (or bytes the writer is still writing).
pub struct Scanner {
    reader: BufReader<File>,
    /// File offset just past the last good record.
    pub offset: u64,
    /// The position the next record must have.
    pub next_position: u64,
    /// Records after this position are not returned (nor consumed): the durable bound.
    pub limit: u64,
}

impl Scanner {
    /// Open `path` (a segment whose first record is `first_position`) after its magic.
    /// A file shorter than the magic or with another magic scans as empty (offset 0).
    pub fn open(path: &std::path::Path, first_position: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let mut reader = BufReader::with_capacity(256 << 10, file);
        let mut magic = [0u8; 8];
        let offset = match reader.read_exact(&mut magic) {
            Ok(()) if &magic == SEGMENT_MAGIC => SEGMENT_MAGIC.len() as u64,
            Ok(()) | Err(_) => 0,
        };
        let mut s = Self {
            reader,
            offset,
            next_position: first_position,
            limit: u64::MAX,
        };
        if offset == 0 {
            s.next_position = 0; // unusable: `next` yields nothing
        }
        Ok(s)
    }

    /// Continue at a known good point (a reader's cursor).
    pub fn seek(&mut self, offset: u64, next_position: u64) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        self.next_position = next_position;
        Ok(())
    }

    /// The next good record, or None at the end of the good records.
    pub fn next_record(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut payload = Vec::new();
        Ok(self.next_record_into(&mut payload)?.map(|p| (p, payload)))
    }

    /// `next_record`, appending the payload to `buf` (one buffer for many records, no allocation
    /// per record); returns its position. On None `buf` is as it was.
    pub fn next_record_into(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
        if self.next_position == 0 {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN as usize];
        if !read_full(&mut self.reader, &mut header)? {
            return self.stop();
        }
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let position = u64::from_le_bytes(header[8..16].try_into().unwrap());
        if position != self.next_position || len as usize > MAX_PAYLOAD || position > self.limit {
            return self.stop();
        }
        let start = buf.len();
        buf.resize(start + len as usize, 0);
        let payload = &mut buf[start..];
        if !read_full(&mut self.reader, payload)? || checksum(len, position, payload) != crc {
            buf.truncate(start);
            return self.stop();
        }
        self.offset += HEADER_LEN + len as u64;
        self.next_position += 1;
        Ok(Some(position))
    }

    /// After a stop the reader's buffer is past `offset`: re-seek so a later call retries there
    /// (the writer may have completed the record meanwhile).
    fn stop(&mut self) -> io::Result<Option<u64>> {
        self.reader.seek(SeekFrom::Start(self.offset))?;
        Ok(None)
    }
}

/// Fill `buf`; false on a clean or partial end of file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
