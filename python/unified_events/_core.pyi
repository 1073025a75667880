"""Type stubs for the Rust core (`rust/`, bound in `rust/py/`).

Only bytes, str and integers cross this boundary. Decisions (a rate-limit or dedup
outcome, a topic check) are returned values; misuse raises.
Times are milliseconds as the caller sees them (`now_ms`), so tests can drive the clock.
"""

# ---------------------------------------------------------------- topics

def check_topic(topic: str, /) -> tuple[str, str] | None:
    """Validate a topic or subscription pattern (original-system.md §3.2, plus a final `>` segment).

    Returns None when valid, else (error_code, message) with the original's exact texts,
    e.g. ("EMPTY_TOPIC", "Topic cannot be empty").
    """

def topic_matches(pattern: str, topic: str, /) -> bool:
    """The canonical matcher: exact, bare `*`/`**` match all, `P.*` one more segment,
    `P.**` P itself or anything below, `P.>` one or more further segments."""

# ---------------------------------------------------------------- frames

def encode_text_frame(payload: bytes, /) -> bytes:
    """One unmasked server->client WebSocket text frame (FIN set) carrying `payload`."""

def split_frames(data: bytes, /) -> list[bytes]:
    """Inverse of concatenated `encode_text_frame` output: the payloads, in order."""

# ---------------------------------------------------------------- rate limiting

class TokenBucket:
    """Continuous-refill token bucket: tokens = min(burst, tokens + elapsed_s * rate); starts full."""

    def __init__(self, rate_per_sec: float, burst: float, now_ms: float) -> None: ...
    def try_take(self, now_ms: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if available. cost <= 0 always succeeds and takes nothing."""
    def tokens(self, now_ms: float) -> float: ...

# ---------------------------------------------------------------- dedup

class DedupCache:
    """Seen (topic, event id) pairs. The window counts from first sight (a duplicate does not
    extend it; an entry is still a duplicate at exactly `window_ms`). At most `max_entries`
    are kept: when full, the least recently seen entry is evicted."""

    def __init__(self, window_ms: int, max_entries: int) -> None: ...
    def check_and_insert(self, topic: str, event_id: str, now_ms: int) -> bool:
        """True if (topic, event_id) was seen within the window (a duplicate); else records it and returns False."""
    def prune(self, now_ms: int) -> int:
        """Drop expired entries; returns how many."""
    def __len__(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def uniques(self) -> int: ...
    @property
    def evictions(self) -> int: ...

# ---------------------------------------------------------------- hot tier

class HotTier:
    """Insertion-ordered ring of recent events, bounded by retention (event time) and a byte budget.

    Each event carries two JSON documents made by the caller: `frame` (the wire event frame
    sent to subscribers, used for replay) and `record` (the stored hot-tier row, used for queries).
    """

    def __init__(self, retention_ms: int, max_bytes: int) -> None: ...
    def insert(
        self,
        event_id: str,
        topic: str,
        event_type: str,
        ns: str,
        timestamp_ms: int,
        trace_id: str | None,
        session_id: str | None,
        correlation_id: str | None,
        frame: bytes,
        record: bytes,
    ) -> int:
        """Append; returns the event's sequence number (strictly increasing). Evicts the oldest
        events while the byte budget is exceeded."""
    def insert_legacy(self, batch: LegacyBatch, fresh: list[bool] | None = None) -> None:
        """`insert` of each selected event of `batch`, in order (ns = topic, no optional ids)."""
    def evict_expired(self, now_ms: int) -> int:
        """Remove every event with timestamp_ms < now_ms - retention_ms; returns how many."""
    def find(self, field: str, value: str) -> list[bytes]:
        """Records whose `field` equals `value`, in insertion order. `field` is one of
        id, trace_id, session_id, correlation_id, event_type, ns, topic (ValueError otherwise)."""
    def query(self, filters: dict[str, str], after_ms: int | None, limit: int | None) -> list[bytes]:
        """Records matching every equality filter (fields as in `find`), with timestamp_ms > after_ms
        when given, newest first by timestamp (ties: latest inserted first), at most `limit`."""
    def replay_after_id(self, event_id: str, patterns: list[str]) -> list[bytes] | None:
        """Frames of events inserted after `event_id` whose timestamp >= its timestamp and whose topic
        matches any pattern (all topics when `patterns` is empty), ordered by (timestamp, seq).
        None when `event_id` is not in the hot tier."""
    def replay_after_time(self, after_ms: int, patterns: list[str]) -> list[bytes]:
        """Frames of events with timestamp_ms > after_ms matching the patterns, ordered by (timestamp, seq)."""
    def records(self) -> list[bytes]:
        """Every record, in insertion order."""
    def arrow_snapshot(self) -> ArrowSnapshot:
        """The held rows as Arrow columns (the `events` relation of SQL queries), as of this call."""
    def arrow_segments(self) -> ArrowSegments:
        """`arrow_snapshot` by segment, in one cheap call (for the SQL engine's per-segment cache)."""
    def arrow_snapshot_where(self, field: str, value: str, max_rows: int) -> ArrowSnapshot | None:
        """Like `arrow_snapshot`, only the events whose indexed `field` (as in `find`) equals `value`;
        None when more than `max_rows` match."""
    def __len__(self) -> int: ...
    @property
    def bytes_used(self) -> int: ...
    @property
    def last_seq(self) -> int: ...

# ---------------------------------------------------------------- fan-out

class Hub:
    """Subscriptions and per-connection outbound queues.

    `publish` frames the payload once and queues the shared frame for each matching
    connection (after its token bucket and queue cap); `drain` hands back, per connection,
    every queued frame concatenated into one buffer: one socket write per connection.
    A connection that is not writable keeps its frames queued up to `max_queued_bytes` and
    `max_pending_messages`; beyond that, frames are dropped and ONE backpressure notice is
    queued per burst (a burst ends when the queue drains). A connection that stays over the cap
    for `slow_consumer_ms` is reported by `take_slow_consumers`.
    """

    def __init__(
        self,
        rate_per_sec: float,
        burst: float,
        max_queued_bytes: int,
        max_pending_messages: int,
        slow_consumer_ms: int,
    ) -> None: ...
    def add_connection(self, conn_id: int, now_ms: float) -> None:
        """Register a connection (writable, with a full token bucket). ValueError if it exists."""
    def remove_connection(self, conn_id: int) -> None:
        """Forget the connection, its queue and its subscriptions (unknown ids are ignored)."""
    def subscribe(self, conn_id: int, pattern: str) -> bool:
        """Add a subscription key (exact topic or pattern; the caller validated it). False if already held."""
    def unsubscribe(self, conn_id: int, pattern: str) -> bool: ...
    def subscriptions(self, conn_id: int) -> list[str]: ...
    def subscriber_count(self, key: str) -> int:
        """Connections holding exactly this subscription key."""
    def keys(self) -> list[tuple[str, int]]:
        """Every subscription key with at least one subscriber, with its subscriber count."""
    def key_count(self) -> int: ...
    def connection_count(self) -> int: ...
    def matching(self, topic: str) -> list[int]:
        """De-duplicated ids of connections with a key matching `topic` (sorted)."""
    def publish(self, topic: str, payload: bytes, now_ms: float) -> int:
        """Queue one event for every matching connection; returns how many connections got it queued."""
    def publish_all(self, payload: bytes, now_ms: float) -> int:
        """Queue for every connection whatever it subscribes to (the original `broadcast()`)."""
    def send_control(self, conn_id: int, payload: bytes) -> None:
        """Queue a control or replay frame for one connection, bypassing rate limit and caps."""
    def set_writable(self, conn_id: int, writable: bool) -> None: ...
    def drain(self, max_connections: int) -> list[tuple[int, bytes]]:
        """Take the queued frames of up to `max_connections` writable connections (oldest dirty first),
        each as one concatenated buffer of WebSocket frames."""
    def has_pending(self) -> bool:
        """True if a writable connection has frames queued."""
    def pending_bytes(self, conn_id: int) -> int: ...
    def take_slow_consumers(self, now_ms: float) -> list[int]:
        """Connections over their cap for longer than `slow_consumer_ms` (each reported once)."""
    def stats(self) -> dict[str, int]:
        """Counters: delivered (frames queued to connections), dropped_rate_limit,
        dropped_backpressure, backpressure_notices, slow_consumers, queued_bytes (now)."""

class DurableLog:
    """The durable log's single writer (one per log directory; see rust/log/mod.rs for the
    on-disk format and durable/__init__.py for how the server uses it)."""

    def __init__(self, log_dir: str, durability: str = "fsync", interval_ms: int = 100,
                 segment_bytes: int = 64 << 20) -> None:
        """Open or create the log, cutting a torn tail. durability: fsync, interval or none.
        ValueError for another durability, OSError when the directory cannot be used."""
    def append_legacy(self, batch: LegacyBatch, accepted_at_ms: int, fresh: list[bool] | None = None) -> int:
        """`append` of the `records.encode` payloads of the selected events of `batch`."""
    def append(self, payloads: list[bytes]) -> int:
        """Write consecutive records (no fsync; under "fsync" the committer thread writes them just
        before its fsync); returns the position of the last one."""
    def wait_durable(self, position: int, timeout_ms: int) -> int:
        """Block (GIL released) until `position` is durable or the timeout; returns the durable
        position. OSError once a write or fsync has failed (the writer accepts nothing more)."""
    def set_notify_fd(self, fd: int) -> None:
        """Write 1 (8 bytes) to this eventfd after every advance of the durable position or a
        failure (for `loop.add_reader`). The fd must stay open until `close` returns; -1 = off."""
    @property
    def error(self) -> str | None:
        """Why the writer stopped accepting appends (a write or fsync failed), or None."""
    @property
    def last_position(self) -> int: ...
    @property
    def durable_position(self) -> int: ...
    def stats(self) -> dict[str, int]:
        """last_position, durable_position, first_position, segments, bytes_on_disk, fsyncs,
        fsync_total_us, fsync_last_us, fsync_max_us, torn_bytes_cut."""
    def delete_segments(self, up_to_position: int, min_age_ms: int) -> int:
        """Delete whole segments whose records are all <= up_to_position and last written more
        than min_age_ms ago; never the active segment. Returns how many were deleted."""
    def close(self) -> None:
        """fsync everything written and stop the committer thread (idempotent)."""

def encode_event_record(accepted: object, accepted_at_ms: int, /) -> bytes:
    """The durable-log payload of an `events.Accepted` (layout in durable/records.py)."""

def accept_legacy_batch(body: bytes, max_events: int, now_ms: int, /) -> LegacyBatch | None:
    """The events of a POST /broadcast body holding a JSON array of 1..=max_events legacy events,
    validated, defaulted (ids generated, `now_ms` for missing timestamps) and serialised exactly
    as `events.parse_body` would; None when the Python path must decide (any other shape, any
    error, floats, ISO timestamps, repeated keys: see rust/ingest/legacy.rs)."""

class LegacyBatch:
    """Accepted legacy events held in Rust. `fresh` arguments select events (None: all)."""

    def __len__(self) -> int: ...
    def check_dedup(self, dedup: DedupCache, now_ms: int) -> list[bool]:
        """`dedup.check_and_insert(topic, id, now_ms)` for each event in order: duplicate flags."""
    def frames(self, fresh: list[bool] | None = None) -> list[tuple[str, bytes]]:
        """(topic, frame) of the selected events."""
    def fields(self, i: int) -> tuple[str, str, str, str, int, None, None, None, bytes, bytes] | None:
        """Event i as the fields of `events.Accepted`, in order."""
    def last_timestamp_ms(self, fresh: list[bool] | None = None) -> int | None: ...
    def reply(self, duplicates: list[bool]) -> bytes:
        """The batch's 200 reply body, as `http._broadcast_batch` serialises it."""

class LogReader:
    """Read-only view of a log directory, usable from another process while the writer appends.
    Returns only complete, checksummed, durable records: never a torn tail."""

    def __init__(self, log_dir: str) -> None: ...
    def read(self, after_position: int, max_records: int = 10_000,
             max_bytes: int = 64 << 20) -> list[tuple[int, bytes]]:
        """Records with position > after_position, in order, up to max_records and max_bytes of
        payload (at least one when available). If after_position was deleted by retention, the
        read starts at the oldest record left."""
    def read_raw(self, after_position: int, max_records: int = 10_000,
                 max_bytes: int = 64 << 20) -> RawRecords:
        """`read`, the records kept in one Rust buffer (no Python object per record)."""
    def last_position(self) -> int:
        """The last durable position (0 for an empty or missing log)."""
    def first_position(self) -> int:
        """The oldest position still on disk (0 when there is no log)."""
    def first_position_since(self, since_ms: int) -> int | None:
        """First position of the oldest segment written at or after since_ms (epoch ms)."""

class RawRecords:
    """Records `LogReader.read_raw` read; `ColdConverter.convert_raw` converts them in place."""

    def __len__(self) -> int: ...
    @property
    def nbytes(self) -> int:
        """Payload bytes of all the records."""
    def position(self, i: int) -> int:
        """Record i's log position (IndexError out of range)."""
    def payload(self, i: int) -> bytes:
        """Record i's payload, as `read` returns it."""
    def records(self) -> list[tuple[int, bytes]]:
        """Every record as (position, payload), as `read` returns them."""

class ArrowSnapshot:
    """Immutable rows (the hot tier's, or the archiver's converted rows), readable by pyarrow/DuckDB
    through the Arrow PyCapsule interface. Hot-tier frozen segments are shared, not copied."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def nbytes(self) -> int:
        """Bytes of the Arrow buffers referenced (shared with the hot tier)."""
    @property
    def column_names(self) -> list[str]: ...
    def json_rows(
        self,
        columns: list[tuple[str, str]] | None = None,
        text_equals: tuple[str, str] | None = None,
        limit: int = ...,
    ) -> tuple[bytes, int]:
        """The rows as a JSON array of objects (a `/query` answer's `rows`) and their count:
        `columns` as (column, output key) pairs (default: all, by name), only rows whose text
        column equals the value of `text_equals`, at most `limit`. KeyError for an unknown column,
        ValueError for a column type it cannot write."""

class ArrowSegments:
    """The hot tier's live rows by segment, as of `HotTier.arrow_segments()`, in three parts in seq
    order: the head (oldest frozen segments, partly evicted), the stable frozen segments, the open
    segment."""

    def frozen_keys(self) -> list[tuple[int, int]]:
        """(first seq, live rows) per stable frozen segment, in order; a segment's rows stay the same
        while its key does, so derived data can be cached under it."""
    def frozen(self, i: int) -> ArrowSnapshot:
        """The rows of the i-th stable frozen segment."""
    def head(self) -> ArrowSnapshot:
        """The live rows of the head (maybe none)."""
    def open(self) -> ArrowSnapshot:
        """The live rows of the open segment, a copy (maybe none)."""

class ColdConverter:
    """Durable-log record payloads -> the cold tier's columns (cold/fast.py; reference: convert.py).
    `columns`: (name, tsv type, required) per table column, in order."""

    def __init__(self, columns: list[tuple[str, str, bool]]) -> None: ...
    def convert(self, payloads: list[bytes], now_us: int, threads: int | None = None) -> tuple[ArrowSnapshot, list[int]]:
        """(the rows converted, plus column `_input_order`; indices left to the Python converter).
        `threads`: how many to convert on (default: one per core); the result does not depend on it."""
    def convert_raw(self, batches: list[RawRecords], now_us: int,
                    threads: int | None = None) -> tuple[ArrowSnapshot, list[int]]:
        """`convert` of the records of `batches`, in order, as one input (fallback indices count
        from the first batch's first record)."""
