"""The Rust fast path (cold/fast.py, rust/cold/mod.rs) builds exactly the table the Python conversion builds."""

from __future__ import annotations

import random
import string
from itertools import cycle
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cold.util import unified
from unified_events import _core
from unified_events.cold.convert import Converted, convert_batch
from unified_events.cold.fast import _converter, convert_raw, convert_records
from unified_events.cold.schema import arrow_schema
from unified_events.durable import encode, records
from unified_events.events import Accepted, parse_body

NOW_US = 1_764_000_000_000_000


def decode(raw: bytes) -> tuple[Accepted, int | None]:  # as DurableLogSource.decode
    accepted, accepted_at_ms = records.decode_with_time(raw)
    return accepted, accepted_at_ms or None


def reference(batch: list[tuple[int, bytes]]) -> tuple[pa.Table | None, list[tuple[Any, ...]]]:
    """What the archiver did before the fast path: decode each record, then convert_batch."""
    decoded, dead = [], []
    for position, raw in batch:
        try:
            decoded.append((position, *decode(raw)))
        except Exception as exc:  # noqa: BLE001
            dead.append((position, None, f"cannot decode the log record: {type(exc).__name__}: {exc}", raw))
    converted = convert_batch(decoded, NOW_US)
    return converted.table, sorted(dead + converted.dead)


def raw_event(event: dict[str, Any], frame_extra: dict[str, Any] | None = None) -> Accepted:
    """An Accepted whose frame payload is `event` as is (no validation): values acceptance would
    refuse still reach the archiver from older logs, and must be dead-lettered the same way."""
    frame = {"id": event.get("id"), "type": event.get("event_type"), "topic": "t",
             "payload": event, "timestamp": 0, **(frame_extra or {})}
    return Accepted(str(event.get("id")), "t", str(event.get("event_type")), "t", 0, None, None, None,
                    orjson.dumps(frame), orjson.dumps({"payload": None}))


def varied_batch(rng: random.Random) -> list[tuple[int, bytes]]:
    accepted: list[Accepted] = []
    for i in range(300):  # the common case, with JSON, numbers, booleans, timestamps
        accepted.append(parse_body(unified(
            i, event_type=("trace", "log", "metric")[i % 3], http_status=200 + i % 5, duration_ms=rng.random() * 9,
            metric_value=i, is_root=i % 2 == 0, data={"i": i, "f": 0.1 * i, "s": "é\n\"", "l": [1, None, True]},
            attributes=["a", i], labels="already text", log_message="ünï \u2028 \\ \"q\"", timestamp_ns=10**18 + i,
            resource_id=("r1", "other/r2", None)[i % 3], timestamp=f"2024-0{1 + i % 9}-1{i % 10}T1{i % 10}:2{i % 10}:3{i % 10}.{i % 1000:03d}Z")))
    accepted += [
        parse_body(unified(1000)),  # no timestamp: the server fills it in
        parse_body(unified(1001, timestamp=1705314000000, started_at="2024-01-15T10:20:30+02:00",
                           day="2024-01-15", hour=7, ingested_at="2020-01-01T00:00:00.000Z")),
        parse_body(unified(1002, visibility="internal", resource_ns="other", schema_version=3)),
        parse_body(unified(1003, http_method=5, log_message=1.5, is_leaf=True, depth=3.0)),
        parse_body({"topic": "chat.room1", "event": {"id": "legacy-1", "type": "message", "payload": {"t": "hi"},
                                                     "timestamp": 1705314000000}}),
        parse_body({"topic": "chat.room2", "event": {"id": "legacy-2", "payload": {}}}),
        # poison: each must reach the dead-letter table with convert.py's reason
        raw_event({**unified(2000), "http_status": "two hundred"}),
        raw_event({**unified(2001), "hour": 1 << 40}),
        raw_event({**unified(2002), "day": "yesterday"}),
        raw_event({**unified(2003), "timestamp": "2024-13-01T00:00:00.000Z"}),
        raw_event({**unified(2004), "ns": ""}),
        raw_event({**unified(2005), "is_root": "yes"}),
        raw_event({**unified(2006), "timestamp": "0000-01-01T00:00:00.000Z"}),
        raw_event({**unified(2007), "duration_ms": "fast"}),
        raw_event({**unified(2008), "timestamp": "2024-02-30T00:00:00.000Z"}),
        # odd but fine, taken by Python: a duplicate-looking frame, a numeric string for a long
        raw_event({**unified(2100), "timestamp_ns": "123", "timestamp": "2024-01-15T10:20:30.123456Z"}),
        raw_event({**unified(2101), "timestamp": "9999-12-29T00:00:00.000Z"}),
    ]
    batch = [(10 + n, encode(a, 0 if n % 7 == 0 else 1_700_000_000_000 + n)) for n, a in enumerate(accepted)]
    batch += [(900, b"\x09not a record"), (901, b"\x01" + b"\x00" * 20), (902, batch[0][1][:-3])]
    rng.shuffle(batch)
    return batch


def assert_same(batch: list[tuple[int, bytes]], fast: Converted | None = None) -> None:
    """`fast` (default: convert_records of the batch) is the table and dead letters of the reference."""
    table, dead = reference(batch)
    fast = convert_records(batch, decode, NOW_US) if fast is None else fast
    assert sorted(fast.dead) == dead
    if table is None:
        assert fast.table is None and fast.rows == 0
        return
    assert fast.table is not None and fast.rows == table.num_rows
    assert fast.table.schema.equals(arrow_schema(), check_metadata=True)
    assert fast.table.equals(table), _first_difference(fast.table, table)


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    for name in a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        if x != y:
            i = next(i for i, (p, q) in enumerate(zip(x, y)) if p != q)
            return f"column {name} row {i}: fast {x[i]!r}, reference {y[i]!r}"
    return "schemas differ"


def test_fast_path_builds_the_reference_table() -> None:
    batch = varied_batch(random.Random(4))
    assert_same(batch)
    _, fallback = _converter().convert([raw for _, raw in batch], NOW_US)
    assert len(fallback) < 40, "the common case must not fall back to Python"
    assert len(reference(batch)[1]) == 12  # 9 poison events + 3 undecodable records


def test_all_poison_and_empty() -> None:
    assert_same([(1, b"\x09x"), (2, encode(raw_event({**unified(1), "depth": "deep"}), 5))])
    assert_same([])


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(string.ascii_letters, max_size=4), inner, max_size=3)),
    max_leaves=6)
columns_tried = ["trace_id", "depth", "is_leaf", "duration_ms", "hour", "day", "timestamp", "started_at",
                 "data", "attributes", "resource_id", "resource_ns", "schema_version", "timestamp_ns", "id", "ns"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(columns_tried), json_values, max_size=5), max_size=12))
def test_random_values_match(overrides: list[dict[str, Any]]) -> None:
    batch = []
    for i, extra in enumerate(overrides):
        try:
            body = orjson.loads(orjson.dumps({**unified(i), **extra}))
        except orjson.JSONEncodeError:  # integers beyond 64 bits
            continue
        batch.append((i + 1, encode(raw_event(body), i)))
    assert_same(batch)


def test_rows_sorted_in_rust_when_nothing_falls_back() -> None:
    # Same event_type, ns and timestamp for many rows: ties must keep the input order.
    rng = random.Random(7)
    bodies = [unified(i, event_type=rng.choice(["trace", "log"]), ns=rng.choice(["a", "B", "é"]),
                      timestamp=rng.choice(["2024-01-01T00:00:00.000Z", "2023-12-31T23:59:59.999Z"]))
              for i in range(400)]
    batch = [(i + 1, encode(raw_event(b), 1_700_000_000_000)) for i, b in enumerate(bodies)]
    _, fallback = _converter().convert([raw for _, raw in batch], NOW_US)
    assert fallback == []
    assert_same(batch)


def test_parallel_conversion_builds_the_serial_table() -> None:
    # Enough records for three threads (rust/cold/mod.rs: at least 4096 each), with fallbacks, poison
    # and ties spread over every chunk: the rows' order and the fallback list must not change.
    rng = random.Random(11)
    batch = []
    for copy in range(40):
        batch += [(copy * 1000 + position, raw) for position, raw in varied_batch(rng)]
    raws = [raw for _, raw in batch]
    serial, serial_fallback = _converter().convert(raws, NOW_US, 1)
    serial_table = pa.table(serial)
    for threads in (2, 3, 8):
        parallel, fallback = _converter().convert(raws, NOW_US, threads)
        assert fallback == serial_fallback
        assert pa.table(parallel).equals(serial_table), _first_difference(pa.table(parallel), serial_table)
    assert len(batch) > 3 * 4096 and len(serial_fallback) > 30
    assert_same(batch)  # and the default (one thread per core) gives the reference table


def test_raw_reads_convert_to_the_reference_table(tmp_path: Path) -> None:
    # The archiver's path: records stay in Rust (`LogReader.read_raw`), several reads make one
    # batch, `convert_raw` converts them in place; the records Python converts (legacy events,
    # values needing conversion) and the poison and undecodable ones are taken out by index.
    payloads = [raw for _, raw in varied_batch(random.Random(5))]
    log = _core.DurableLog(str(tmp_path / "log"), durability="none", segment_bytes=64 << 10)
    last = log.append(payloads)
    log.close()
    records = list(zip(range(1, last + 1), payloads))
    reader = _core.LogReader(str(tmp_path / "log"))
    parts: list[_core.RawRecords] = []
    limits = cycle([(50, 1 << 20), (7, 1 << 20), (100, 3000), (100, 1)])  # by records, by bytes, one
    while True:
        after = parts[-1].position(len(parts[-1]) - 1) if parts else 0
        max_records, max_bytes = next(limits)
        part = reader.read_raw(after, max_records, max_bytes)
        expected = _core.LogReader(str(tmp_path / "log")).read(after, max_records, max_bytes)
        assert part.records() == expected
        assert len(part) == len(expected) and part.nbytes == sum(len(raw) for _, raw in expected)
        if not part:
            break
        assert len(part) <= max_records and (len(part) == 1 or part.nbytes <= max_bytes)
        assert [(part.position(i), part.payload(i)) for i in range(len(part))] == expected
        with pytest.raises(IndexError):
            part.payload(len(part))
        parts.append(part)
    assert len(parts) > 10 and [r for part in parts for r in part.records()] == records
    assert_same(records, convert_raw(parts, decode, NOW_US))
    # The fast path's own output: the same rows and fallback indices as from Python bytes.
    raw_table, raw_fallback = _converter().convert_raw(parts, NOW_US, 1)
    table, fallback = _converter().convert(payloads, NOW_US, 1)
    assert raw_fallback == fallback and len(fallback) > 10
    assert pa.table(raw_table).equals(pa.table(table))
