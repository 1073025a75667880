"""The durable log: every accepted event is appended here before it is acknowledged.

Layout under `config.data_dir`:

- `log/` : the segmented log written by the server (Rust, `unified_events._core.DurableLog`;
  format in rust/log/mod.rs). Records have u64 positions starting at 1, +1 per event, never
  reused. One record = one accepted event, payload format in `durable.records`.
  Read it from any process with `_core.LogReader(f"{data_dir}/log")`: only complete,
  checksummed, durable records are returned (never a torn tail, never a record the server could
  still lose). `log/durable.pos` holds the last durable position (what `last_position()` reads).

- `archiver/position.json` : written by the archiver (a separate process), read by the server.
  Contract: after each successful Iceberg commit the archiver writes
  `{"position": <last log position included in that commit>, "committed_at_ms": <epoch ms>}`
  to `archiver/position.json.tmp`, fsyncs it and renames it over `archiver/position.json`
  (atomic). The server's cleanup tick reads it and deletes whole log segments whose records are
  all <= `position` AND that were last written more than `hot_tier_retention_ms` ago (the hot
  tier is rebuilt from the log on restart). If the file is absent or unreadable, nothing is
  deleted: without an archiver the log grows until one runs.

Durability (`durability` in the config): `fsync` (default) acknowledges after an fsync shared
by every publisher that arrived while the previous one ran (group commit); `interval` fsyncs
every `durability_interval_ms` and acknowledges at once, so a machine crash or power loss can
lose up to that window of acknowledged events (a process crash loses nothing: the page cache
survives it); `none` never fsyncs and leaves it to the OS.
What a `LogReader` sees: under `fsync` and `interval` only fsynced records (under `interval` the
archiver lags by up to one interval), so it never takes a record a machine crash could take
back. Under `none` it sees records once written; after a machine crash, new records can then
reuse positions the archiver already committed (use `none` only where that is acceptable).
"""

from .records import decode, decode_with_time, encode, event_columns
from .segment_log import SegmentLog, read_archived_position

__all__ = ["SegmentLog", "decode", "decode_with_time", "encode", "event_columns", "read_archived_position"]
