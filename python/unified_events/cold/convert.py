"""Accepted events -> one Arrow table with the 175-column schema.

Where the columns come from:
- A UnifiedEvent: the frame's `payload` is the full event (defaults applied at acceptance).
- A legacy event (`{"topic", "event": {"id", "type", "payload", "timestamp"}}`) maps the way the hot
  tier shows it: `id` -> id, `type` -> event_type and event_name, `topic` -> ns, `payload` -> data
  (JSON text), `timestamp` -> timestamp, and event_source = "legacy". Its event_type is then not one of
  the ten UnifiedEvent kinds (often "broadcast"); it is kept, so the partition says what was sent.

Derived columns, as the original pipeline SQL does them (original-system.md §6.3): `hour` and `day`
from `timestamp` (UTC), resource_ns defaults to ns, resource_id gets the `ns/` prefix when it has no
`/`, visibility defaults to "user", schema_version to 1, ingested_at is when the server accepted
the event (from the log record; the archiver's clock for sources without it). An event without a
timestamp was given its ingestion time at acceptance. Keys that are not one of the 175 columns are
dropped.

A value that does not fit its column (a word in a long column, a number out of range, a bad date)
makes the whole event a poison event: it goes to the dead-letter table with the reason instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Sequence

import orjson
import pyarrow as pa

from ..events import Accepted
from .schema import Column, arrow_schema, columns

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_US_PER_DAY = 86_400_000_000


class PoisonEvent(ValueError):
    """The event cannot be written to the table; the message is the dead-letter reason."""


@dataclass
class Converted:
    table: pa.Table | None  # None when no event converted
    rows: int
    # (log position, event id or None, reason, raw record) for each poison event
    dead: list[tuple[int, str | None, str, bytes]] = field(default_factory=list)


def event_columns(accepted: Accepted) -> dict[str, Any]:
    """The column values of one accepted event, before type conversion (see the module doc)."""
    frame = orjson.loads(accepted.frame)
    payload = frame.get("payload")
    # A UnifiedEvent's frame payload is the event itself: the same id and type as the frame, with
    # event_name and ns filled in at acceptance. (Telling them apart by the frame alone avoids
    # decoding the hot row too; a legacy payload that mimics all four is a UnifiedEvent anyway.)
    if (isinstance(payload, dict) and payload.get("id") == frame["id"]
            and payload.get("event_type") == frame["type"] and "event_name" in payload and "ns" in payload):
        return payload
    return {
        "id": frame["id"], "event_type": frame["type"], "event_name": frame["type"], "ns": frame["topic"],
        "timestamp": frame.get("timestamp"), "event_source": "legacy",
        "data": None if payload in (None, {}) else payload,
    }


# --- per-type converters: return the Arrow-ready Python value or raise PoisonEvent

def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    # An object or array in a plain string column: keep it, as JSON text.
    return orjson.dumps(value).decode()


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _long(value: Any) -> int:
    if isinstance(value, bool):
        raise PoisonEvent(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        result = int(value)  # timestamp_ns travels as a decimal string
    else:
        raise PoisonEvent(f"expected an integer, got {value!r:.80}")
    if not _I64_MIN <= result <= _I64_MAX:
        raise PoisonEvent(f"integer {result} is out of the 64-bit range")
    return result


def _int(value: Any) -> int:
    result = _long(value)
    if not -(1 << 31) <= result < (1 << 31):
        raise PoisonEvent(f"integer {result} is out of the 32-bit range")
    return result


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise PoisonEvent(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise PoisonEvent(f"expected a number, got {value!r:.80}")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise PoisonEvent(f"expected true or false, got {value!r:.80}")


def _timestamp_us(value: Any) -> int:
    """Epoch microseconds from epoch milliseconds (a number) or an ISO-8601 string (UTC if no offset)."""
    if isinstance(value, bool):
        raise PoisonEvent(f"expected a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise PoisonEvent(f"expected a timestamp, got {value!r}")
        us = int(value * 1000)
    elif isinstance(value, str) and len(value) == 24 and value[19] == "." and value[23] == "Z":
        us = _iso_seconds_us(value[:19]) + int(value[20:23]) * 1000  # the server's own format, cached
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PoisonEvent(f"expected an ISO-8601 timestamp, got {value!r:.80}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        us = (dt - _EPOCH) // _ONE_US
    else:
        raise PoisonEvent(f"expected a timestamp, got {value!r:.80}")
    if not _MIN_US <= us <= _MAX_US:
        raise PoisonEvent(f"timestamp {value!r:.80} is out of range (years 1-9999)")
    return us


@lru_cache(maxsize=4096)
def _iso_seconds_us(prefix: str) -> int:
    try:
        return (datetime.fromisoformat(prefix).replace(tzinfo=timezone.utc) - _EPOCH) // _ONE_US
    except ValueError:
        raise PoisonEvent(f"expected an ISO-8601 timestamp, got {prefix!r:.80}") from None


def _date_days(value: Any) -> int:
    if isinstance(value, str):
        try:
            return (datetime.fromisoformat(value[:10]).date() - _EPOCH.date()).days
        except ValueError:
            pass
    raise PoisonEvent(f"expected a date YYYY-MM-DD, got {value!r:.80}")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc) - _EPOCH
_MIN_US = (datetime(1, 1, 2, tzinfo=timezone.utc) - _EPOCH) // _ONE_US
_MAX_US = (datetime(9999, 12, 30, tzinfo=timezone.utc) - _EPOCH) // _ONE_US

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _string, "string(json)": _json_text, "long": _long, "int": _int, "double": _double,
    "boolean": _boolean, "timestamptz(us)": _timestamp_us, "date": _date_days,
}


# The Python type that a column takes as is, skipping its converter (the common case: a string in
# a string column costs one type check per value instead of a call).
_PASS_THROUGH: dict[str, type] = {"string": str, "string(json)": str, "double": float, "boolean": bool}


def _converter_table() -> dict[str, tuple[int, Callable[[Any], Any], type | None]]:
    return {c.name: (i, _CONVERTERS[c.kind], _PASS_THROUGH.get(c.kind)) for i, c in enumerate(columns())}


_BY_NAME = _converter_table()
_COL = {c.name: i for i, c in enumerate(columns())}
_REQUIRED = tuple(_COL[name] for name in ("id", "event_type", "event_name", "ns"))
_TS, _DAY, _HOUR, _NS = _COL["timestamp"], _COL["day"], _COL["hour"], _COL["ns"]
_RES_NS, _RES_ID, _VIS, _SCHEMA_V, _INGESTED = (
    _COL["resource_ns"], _COL["resource_id"], _COL["visibility"], _COL["schema_version"], _COL["ingested_at"])
_WIDTH = len(_COL)


def convert_row(event: dict[str, Any], ingested_us: int) -> dict[int, Any]:
    """One event's typed values by column index (absent = null); raises PoisonEvent."""
    row: dict[int, Any] = {}
    for key, value in event.items():
        entry = _BY_NAME.get(key)
        if entry is None or value is None:
            continue
        index, conv, same = entry
        if type(value) is same:
            row[index] = value
            continue
        try:
            row[index] = conv(value)
        except PoisonEvent as exc:
            raise PoisonEvent(f"column {key}: {exc}") from None
    for index in _REQUIRED:
        if not row.get(index):
            raise PoisonEvent(f"column {columns()[index].name}: required, missing or empty")
    ts = row.get(_TS)
    if ts is None:
        ts = row[_TS] = ingested_us
    row[_DAY] = ts // _US_PER_DAY
    row[_HOUR] = (ts % _US_PER_DAY) // 3_600_000_000
    ns = row[_NS]
    row.setdefault(_RES_NS, ns)
    rid = row.get(_RES_ID)
    if rid is not None and "/" not in rid:
        row[_RES_ID] = f"{ns}/{rid}"
    row.setdefault(_VIS, "user")
    row.setdefault(_SCHEMA_V, 1)
    row[_INGESTED] = ingested_us
    return row


def convert_batch(batch: Sequence[tuple[int, Accepted, int | None]], now_us: int | None = None) -> Converted:
    """Convert a batch; poison events are set aside with their reason, the rest form one table
    sorted by (event_type, ns, timestamp) so each partition's file is written in time order."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    n = len(batch)
    # Column-major from the start: each event writes only the ~20-30 columns it has, and the
    # 175 all-None lists cost one C-level allocation each.
    cols = new_columns(n)
    dead: list[tuple[int, str | None, str, bytes]] = []
    rows = 0
    for position, accepted, accepted_at_ms in batch:
        try:
            ingested_us = now_us if accepted_at_ms is None else accepted_at_ms * 1000
            values = convert_row(event_columns(accepted), ingested_us)
        except Exception as exc:  # noqa: BLE001 - any failure to convert makes a poison event
            reason = str(exc) if isinstance(exc, PoisonEvent) else f"{type(exc).__name__}: {exc}"
            dead.append((position, getattr(accepted, "id", None), reason, accepted.frame))
            continue
        for index, value in values.items():
            cols[index][rows] = value
        rows += 1
    if not rows:
        return Converted(None, 0, dead)
    if rows < n:
        cols = [col[:rows] for col in cols]
    return Converted(columns_to_table(cols, rows), rows, dead)


def new_columns(n: int) -> list[list[Any]]:
    return [[None] * n for _ in range(_WIDTH)]


# Rows are written in this order (so each partition's file is in time order); the sort is stable.
SORT_KEYS = [("event_type", "ascending"), ("ns", "ascending"), ("timestamp", "ascending")]


def columns_to_table(cols: list[list[Any]], n: int, sort: bool = True) -> pa.Table:
    schema = arrow_schema()
    arrays = [_array(col, field_.type, values, n) for col, field_, values in zip(columns(), schema, cols)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    return table.sort_by(SORT_KEYS) if sort else table


def _array(col: Column, type_: pa.DataType, values: list[Any], n: int) -> pa.Array:
    if values.count(None) == n:
        return pa.nulls(n, type_)
    if col.kind == "date":
        return pa.array(values, pa.int32()).cast(pa.date32())
    if col.kind == "timestamptz(us)":
        return pa.array(values, pa.int64()).cast(type_)
    return pa.array(values, type_)
