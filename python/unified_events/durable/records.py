"""The payload of one durable-log record: an `Accepted` event, rebuilt exactly by `decode`.

Positions: every record in the log has a u64 position, 1 for the first record ever written,
+1 per record, never reused (retention deletes old segments, numbering continues). One accepted
event = one record. Read records with `unified_events._core.LogReader(f"{data_dir}/log")`:
`read(after_position, max_records, max_bytes) -> [(position, payload)]` returns only complete,
checksummed, durable records, and `last_position()` the last durable one.

Payload layout (version 1; little-endian), fixed header then the fields' bytes in order:

    u8   version (1)
    i64  accepted_at_ms    wall clock when the server accepted the event (not part of Accepted)
    i64  timestamp_ms      Accepted.timestamp_ms (event time)
    9 x u32 lengths        id, topic, event_type, ns, trace_id, session_id, correlation_id,
                           frame, record; 0xFFFFFFFF marks None (only the three optional ids)
    bytes                  the nine fields: UTF-8 text, then the frame and record bytes verbatim

`frame` is the JSON frame subscribers receive: `{"id","type","topic","payload","timestamp"}`.
`record` is the JSON hot-tier row (events.HOT_COLUMNS plus topic, type, payload, timestamp_ms).
For the full 175-column event use `event_columns(accepted)`: for a UnifiedEvent the frame's
`payload` is the whole event as accepted (defaults applied); for a legacy event the row holds the
columns (the row's `payload` is the legacy payload object and is never null; for a UnifiedEvent
it is null, which is how the two are told apart).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from .. import _core
from ..events import HOT_COLUMNS, Accepted

VERSION = 1
_NONE = 0xFFFFFFFF
_HEADER = struct.Struct("<Bqq9I")
# Keys the hot row adds for compatibility; they are not UnifiedEvent columns.
_ROW_EXTRAS = ("topic", "type", "payload", "timestamp_ms")


def encode(accepted: Accepted, accepted_at_ms: int = 0) -> bytes:
    """The record payload of `accepted`. `accepted_at_ms` (the acceptance wall clock) lets a
    restart rebuild the dedup window; it is returned by `decode_with_time`.
    Runs once per published event, so the Rust core writes it (same layout as `encode_py`)."""
    return _core.encode_event_record(accepted, accepted_at_ms)


def encode_py(accepted: Accepted, accepted_at_ms: int = 0) -> bytes:
    """The layout written out in Python: the reference the tests hold the Rust encoder to."""
    a = accepted
    texts = [a.id.encode(), a.topic.encode(), a.event_type.encode(), a.ns.encode()]
    optional = [None if v is None else v.encode() for v in (a.trace_id, a.session_id, a.correlation_id)]
    lengths = [len(t) for t in texts] + [_NONE if v is None else len(v) for v in optional]
    lengths += [len(a.frame), len(a.record)]
    header = _HEADER.pack(VERSION, accepted_at_ms, a.timestamp_ms, *lengths)
    return b"".join([header, *texts, *(v for v in optional if v is not None), a.frame, a.record])


def decode(payload: bytes) -> Accepted:
    """The `Accepted` that `encode` was given, field for field."""
    return decode_with_time(payload)[0]


def decode_with_time(payload: bytes) -> tuple[Accepted, int]:
    """(`Accepted`, accepted_at_ms). ValueError for an unknown version or a short payload."""
    if len(payload) < _HEADER.size:
        raise ValueError(f"log record payload too short ({len(payload)} bytes)")
    version, accepted_at_ms, timestamp_ms, *lengths = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise ValueError(f"log record version {version}: this build reads version {VERSION}")
    view = memoryview(payload)
    offset = _HEADER.size
    fields: list[Any] = []
    for i, n in enumerate(lengths):
        if n == _NONE:
            fields.append(None)
            continue
        if offset + n > len(payload):
            raise ValueError("log record payload truncated")
        chunk = bytes(view[offset:offset + n])
        offset += n
        fields.append(chunk if i >= 7 else chunk.decode())
    event_id, topic, event_type, ns, trace_id, session_id, correlation_id, frame, record = fields
    accepted = Accepted(event_id, topic, event_type, ns, timestamp_ms, trace_id, session_id, correlation_id,
                        frame, record)
    return accepted, accepted_at_ms


def is_unified(accepted: Accepted) -> bool:
    """True when the body was a UnifiedEvent (the row's `payload` is null only then)."""
    return orjson.loads(accepted.record).get("payload") is None


def event_columns(accepted: Accepted) -> dict[str, Any]:
    """The event as UnifiedEvent columns (name -> value; absent columns are missing).

    UnifiedEvent: the frame's payload, i.e. every field the publisher sent plus the defaults
    (`timestamp` filled with the ingestion time when absent). Legacy: the hot row's columns
    (`event_type`/`event_name` = the legacy type, `ns` = the topic, `data` = the payload as JSON
    text), without null columns.
    """
    row = orjson.loads(accepted.record)
    if row.get("payload") is None:
        return dict(orjson.loads(accepted.frame)["payload"])
    return {k: row[k] for k in HOT_COLUMNS if row.get(k) is not None}
