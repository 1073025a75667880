//! The payload of an event record, as `python/unified_events/durable/records.py` lays it out
//! (version 1): u8 version, i64 accepted_at_ms, i64 timestamp_ms, 9 x u32 field lengths (`ABSENT`
//! for a missing field), then the fields back to back. Written by the publish paths
//! (`ingest::legacy`, `py::log::encode_event_record`), read by the archiver's converter (`cold`).

pub const VERSION: u8 = 1;
/// The fixed part: version, the two times and the nine lengths.
pub const HEADER_LEN: usize = 1 + 8 + 8 + 9 * 4;
/// The length written for a field that is absent (Python's None).
pub const ABSENT: u32 = u32::MAX;
