"""Turning request bodies into accepted events: validation, defaults, the wire frame and the hot row.

Two body shapes come from the original system (original-system.md §2 E2):
- legacy `{"topic"?, "event"?: {"id"?, "type"?, "topic"?, "payload"?, "timestamp"?}}`
- UnifiedEvent: any subset of the 175 columns; chosen when `event_type` or `event_name` is truthy.

Both become an `Accepted`: the wire frame subscribers receive (live and replay alike) and the
hot-tier row, each serialised once here.
"""

from __future__ import annotations

import re
import string
import time
from random import getrandbits
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from . import _core, codes
from .errors import EventValidationError

EVENT_TYPES = ("trace", "metric", "log", "cdc", "track", "page", "vital", "replay", "tail", "snippet")

# The hot-tier row: the 27 columns of the original DDL, the 6 it also stored, and compatibility
# columns (original-system.md §5.1). `payload` is the legacy payload object; `timestamp_ms` lets
# queries compare epoch milliseconds.
HOT_COLUMNS = (
    "id", "event_type", "event_name", "ns", "trace_id", "span_id", "parent_id", "session_id",
    "correlation_id", "depth", "is_leaf", "is_root", "timestamp", "outcome", "http_url", "http_status",
    "duration_ms", "service_name", "vital_name", "vital_value", "vital_rating", "log_level",
    "log_message", "actor_id", "data", "attributes", "properties",
    "error_message", "http_method", "http_host", "metric_name", "metric_value", "metric_unit",
)
JSON_TEXT_COLUMNS = frozenset(("data", "attributes", "properties"))

_ID_ALPHABET = string.digits + string.ascii_lowercase
# Every 3-char base36 string, so an id suffix is 3 lookups (`random.choices` took ~2 µs).
_ID_TRIPLES = tuple(a + b + c for a in _ID_ALPHABET for b in _ID_ALPHABET for c in _ID_ALPHABET)
_ID_SPACE = 36**9  # the 9-char suffixes; 64 random bits modulo this: bias below 1e-5
_UNSAFE_TOPIC_RUN = re.compile(r"[^A-Za-z0-9_\-]+")


def _legacy_row_template() -> bytes:
    """The hot row of a legacy event as `orjson.dumps` writes the dict (HOT_COLUMNS in order, then
    topic, type, payload, timestamp_ms), with a `%b` for each value it sets and null for the rest:
    id, event_type, event_name, ns, timestamp, data, topic, type, payload, timestamp_ms."""
    filled = {"id", "event_type", "event_name", "ns", "timestamp", "data"}
    members = [f'"{col}":%b' if col in filled else f'"{col}":null' for col in HOT_COLUMNS]
    members += ['"topic":%b', '"type":%b', '"payload":%b', '"timestamp_ms":%b']
    return ("{" + ",".join(members) + "}").encode()


_LEGACY_ROW = _legacy_row_template()


@dataclass(slots=True)
class Accepted:
    """An event that passed validation, ready for dedup, the log, the hot tier and fan-out."""

    id: str
    topic: str
    event_type: str
    ns: str
    timestamp_ms: int
    trace_id: str | None
    session_id: str | None
    correlation_id: str | None
    frame: bytes
    record: bytes


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def generate_id(ms: int | None = None) -> str:
    """The original's id format: `<epoch ms>-<9 random base36 chars>`."""
    high, low = divmod(getrandbits(64) % _ID_SPACE, 46656)
    high, mid = divmod(high, 46656)
    return f"{now_ms() if ms is None else ms}-{_ID_TRIPLES[high]}{_ID_TRIPLES[mid]}{_ID_TRIPLES[low]}"


_iso_second_cache: tuple[int, str] = (-1, "")


def iso_from_ms(ms: int) -> str:
    """`2024-01-01T00:00:00.000Z`. Runs once per accepted event, and formatting a date costs
    several microseconds, so the text of the most recent second is reused."""
    global _iso_second_cache
    second = ms // 1000
    cached_second, prefix = _iso_second_cache
    if second != cached_second:
        t = time.gmtime(second)
        prefix = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        _iso_second_cache = (second, prefix)
    return f"{prefix}.{ms % 1000:03d}Z"


def topic_error(topic: object) -> str | None:
    """The validation message for a topic, or None when valid."""
    if not isinstance(topic, str):
        return "Topic must be a string"
    problem = _core.check_topic(topic)
    return None if problem is None else problem[1]


def topic_for_ns(ns: str) -> str:
    """The broadcast topic of an `ns`.

    A plain ns is its own topic. A URL-like ns (`https://api.example.com`, `workers://my-worker`)
    loses its scheme and every run of characters a topic cannot hold becomes one dot:
    `https://api.example.com:8080/v1` -> `api.example.com.8080.v1`.
    """
    if "://" not in ns:
        return ns
    rest = ns.split("://", 1)[1]
    parts = [p for p in rest.split(".") if p]
    cleaned = ".".join(_UNSAFE_TOPIC_RUN.sub(".", p).strip(".") for p in parts)
    return re.sub(r"\.{2,}", ".", cleaned).strip(".") or "default"


def parse_body(body: Any) -> Accepted:
    """Accept one event body (legacy or UnifiedEvent); raise EventValidationError with the HTTP body."""
    if not isinstance(body, dict):
        raise EventValidationError("Request body must be a JSON object")
    if body.get("event_type") or body.get("event_name"):
        return accept_unified(body)
    event = body.get("event")
    if event is not None and not isinstance(event, dict):
        raise EventValidationError("event must be a JSON object")
    return accept_legacy(body.get("topic"), event or {})


def accept_legacy(topic: Any, event: dict[str, Any]) -> Accepted:
    effective = topic or event.get("topic") or "default"
    problem = topic_error(effective)
    if problem is not None:
        raise EventValidationError(f"Invalid topic: {problem}", code=codes.INVALID_TOPIC)
    event_id = event.get("id") or generate_id()
    if not isinstance(event_id, str):
        raise EventValidationError("event.id must be a string")
    event_type = event.get("type") or "broadcast"
    if not isinstance(event_type, str):
        raise EventValidationError("event.type must be a string")
    payload = event.get("payload")
    if payload is None:
        payload = {}
    ts = parse_timestamp_ms(event.get("timestamp"), "event.timestamp")
    # Each value is serialised once and spliced into both documents (see _LEGACY_ROW).
    id_json, type_json, topic_json = orjson.dumps(event_id), orjson.dumps(event_type), orjson.dumps(effective)
    payload_json, ts_json = orjson.dumps(payload), orjson.dumps(ts)
    frame = b'{"id":%b,"type":%b,"topic":%b,"payload":%b,"timestamp":%b}' % (
        id_json, type_json, topic_json, payload_json, ts_json)
    record = _LEGACY_ROW % (
        id_json, type_json, type_json, topic_json, b'"%b"' % iso_from_ms(ts).encode(),
        orjson.dumps(payload_json.decode()) if payload else b"null",
        topic_json, type_json, payload_json, ts_json)
    return Accepted(event_id, effective, event_type, effective, ts, None, None, None, frame, record)


def accept_unified(partial: dict[str, Any]) -> Accepted:
    event: dict[str, Any] = {"event_type": "trace", "event_name": "unknown", "ns": "default"}
    event.update(partial)
    if "id" not in partial:
        event["id"] = generate_id()
    issues = lazy_issues(event)
    if issues:
        raise EventValidationError(
            "Invalid UnifiedEvent", {"success": False, "error": "Invalid UnifiedEvent", "details": issues}
        )
    ns = event["ns"]
    topic = topic_for_ns(ns)
    problem = topic_error(topic)
    if problem is not None:
        raise EventValidationError(f"Invalid topic (ns): {problem}", code=codes.INVALID_TOPIC)
    ts = parse_timestamp_ms(event.get("timestamp"), "timestamp")
    if event.get("timestamp") is None:
        event["timestamp"] = iso_from_ms(ts)
    _check_timestamp_ns(event.get("timestamp_ns"))
    frame = {"id": event["id"], "type": event["event_type"], "topic": topic, "payload": event, "timestamp": ts}
    row = {col: _column(event, col) for col in HOT_COLUMNS}
    if isinstance(row["timestamp"], (int, float)):
        row["timestamp"] = iso_from_ms(ts)
    row.update(topic=topic, type=event["event_type"], payload=None, timestamp_ms=ts)
    return Accepted(
        event["id"], topic, event["event_type"], ns, ts,
        _opt_str(event.get("trace_id")), _opt_str(event.get("session_id")), _opt_str(event.get("correlation_id")),
        orjson.dumps(frame), orjson.dumps(row),
    )


def error_event(code: str, message: str, event_id: str | None = None,
                context: Any = None, severity: str | None = None) -> dict[str, Any]:
    """The legacy body of a `broadcastError` event on the `_errors` topic (original §2)."""
    info: dict[str, Any] = {"code": code, "message": message}
    if event_id is not None:
        info["eventId"] = event_id
    if context is not None:
        info["context"] = context
    if severity is not None:
        info["severity"] = severity
    return {"topic": codes.ERRORS_TOPIC, "event": {"type": "error", "payload": info}}


def lazy_issues(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The original's lazy schema: the four required fields (zod-style issues, empty when valid)."""
    issues: list[dict[str, Any]] = []
    for name in ("id", "event_name", "ns"):
        value = event.get(name)
        if not isinstance(value, str) or value == "":
            issues.append({"code": "invalid_type" if not isinstance(value, str) else "too_small",
                           "path": [name], "message": f"{name} must be a non-empty string"})
    if event.get("event_type") not in EVENT_TYPES:
        issues.append({"code": "invalid_enum_value", "path": ["event_type"], "options": list(EVENT_TYPES),
                       "received": event.get("event_type"),
                       "message": f"event_type must be one of {', '.join(EVENT_TYPES)}"})
    return issues


def _column(event: dict[str, Any], col: str) -> Any:
    value = event.get(col)
    if col in JSON_TEXT_COLUMNS and value is not None and not isinstance(value, str):
        return orjson.dumps(value).decode()
    return value


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_timestamp_ms(value: Any, field: str) -> int:
    """Epoch ms from a number (ms) or an ISO-8601 string; now when missing."""
    if value is None or value == "":
        return now_ms()
    if isinstance(value, bool):
        raise EventValidationError(f"{field} must be epoch milliseconds or an ISO-8601 string")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EventValidationError(f"{field} must be epoch milliseconds or an ISO-8601 string") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    raise EventValidationError(f"{field} must be epoch milliseconds or an ISO-8601 string")


def _check_timestamp_ns(value: Any) -> None:
    """`timestamp_ns` is a 64-bit integer: an integer or a decimal string (JSON numbers lose precision)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return
    if isinstance(value, str) and value.isdigit():
        return
    raise EventValidationError("timestamp_ns must be an integer or a decimal string")
