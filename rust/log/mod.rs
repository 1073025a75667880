//! The durable log: an append-only sequence of records, each with a monotonically increasing u64
//! **position** (the first record is position 1; 0 means "nothing"), kept in segment files under
//! one directory.
//!
//! On disk (`{dir}`):
//! - `{first_position:020}.seg`: a segment. An 8-byte magic (`UELOG\0\0\x01`), then records
//!   `[len u32 LE][crc32 u32 LE][position u64 LE][payload; len]`, the crc32 (IEEE, crc32fast)
//!   covering len, position and payload. A segment's name is the position of its first record;
//!   segment N+1 starts right after the last record of segment N.
//! - `durable.pos`: the last durable position (16 bytes: the position and its bitwise complement,
//!   so a reader never trusts a half-written value). Readers in other processes read only up to
//!   it, so they never see a record the writer could still lose. It is a hint rewritten in place
//!   (not fsynced): after an OS crash it may be ahead of the data, so readers also stop at the
//!   first record that does not check out, and the writer rewrites it on open.
//!
//! The writer (`LogWriter`) cuts a torn tail on open, rolls segments at a size and makes records
//! durable under a `Durability` policy with group commit. `LogReader` reads from any process.

pub mod event_record;
mod marker;
pub mod reader;
pub mod record;
pub mod segment;
pub mod writer;

pub use reader::LogReader;
pub use writer::{Durability, LogStats, LogWriter};

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
