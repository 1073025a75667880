//! `durable.pos`: the last durable position, shared with reader processes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const FILE: &str = "durable.pos";

pub struct Marker(File);

impl Marker {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE))?;
        Ok(Self(file))
    }

    /// One 16-byte write in place; readers check the complement.
    pub fn store(&self, position: u64) -> io::Result<()> {
        let mut buf = [0u8; 16];
        buf[..8].copy_from_slice(&position.to_le_bytes());
        buf[8..].copy_from_slice(&(!position).to_le_bytes());
        self.0.write_all_at(&buf, 0)
    }
}

/// The position in `dir/durable.pos`; 0 when absent or empty. Retries a value caught mid-write.
pub fn load(dir: &Path) -> io::Result<u64> {
    let file = match File::open(dir.join(FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for _ in 0..100 {
        let mut buf = [0u8; 16];
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        let pos = u64::from_le_bytes(buf[..8].try_into().unwrap());
        let check = u64::from_le_bytes(buf[8..].try_into().unwrap());
        if check == !pos {
            return Ok(pos);
        }
        std::thread::yield_now();
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "durable.pos is corrupt",
    ))
}
