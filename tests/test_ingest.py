"""The Rust fast path of a legacy batch (`_core.accept_legacy_batch`) against the Python path it
stands in for: whenever it accepts a body, every event, frame, hot row, log record and the reply
must be byte for byte what `events.parse_body`, `records.encode_py` and `http._broadcast_batch`
give; whatever it refuses goes to the Python path unchanged."""

from __future__ import annotations

import json
import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_events import _core
from unified_events.durable import records
from unified_events.errors import EventValidationError
from unified_events.events import Accepted, parse_body

NOW = 1_700_000_000_123

keys = st.text(max_size=6)
strings = st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats(allow_nan=False, allow_infinity=False)
    | strings,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10)
topics = st.sampled_from(["orders", "t.x", "a-b_c", "", "__sys", "a..b", "café", "x" * 300])
maybe_text = st.none() | st.just("") | strings | st.integers(0, 3) | st.booleans()
timestamps = st.none() | st.just("") | st.integers(-5, 2**63) | st.sampled_from(
    [0, 1.5, 253_402_300_799_999, 253_402_300_800_000, "2024-01-01T00:00:00Z", True])


@st.composite
def legacy_bodies(draw):
    event = {}
    for name, values in (("id", maybe_text), ("type", maybe_text), ("topic", st.none() | topics),
                         ("payload", json_values), ("timestamp", timestamps), ("other", json_values)):
        if draw(st.booleans()):
            event[name] = draw(values)
    body = {}
    if draw(st.booleans()):
        body["topic"] = draw(st.none() | topics | st.integers(0, 1))
    if draw(st.integers(0, 9)) > 0:
        body["event"] = event if draw(st.integers(0, 9)) > 0 else draw(json_values)
    if draw(st.integers(0, 19)) == 0:
        body["event_type"] = "trace"
    return body


def encode(items, spaced: bool) -> bytes:
    return json.dumps(items, indent=1 if spaced else None, ensure_ascii=spaced).encode()


def python_path(body, event_id: str, ts: int) -> Accepted:
    """parse_body with the id and timestamp the fast path chose put where it would generate them."""
    body = dict(body)
    event = dict(body.get("event") or {})
    if not event.get("id"):
        event["id"] = event_id
    if event.get("timestamp") in (None, ""):
        event["timestamp"] = ts
    body["event"] = event
    return parse_body(body)


def python_reply(accepted: list[Accepted], duplicates: list[bool]) -> bytes:
    results = []
    for i, (a, dup) in enumerate(zip(accepted, duplicates)):
        item = {"index": i, "success": True, "id": a.id, "event_type": a.event_type}
        if dup:
            item["duplicate"] = True
        results.append(item)
    return orjson.dumps({"success": True, "accepted": len(results), "rejected": 0, "results": results})


def check_batch(items, raw: bytes, max_events: int = 1000) -> _core.LegacyBatch | None:
    batch = _core.accept_legacy_batch(raw, max_events, NOW)
    if batch is None:
        return None
    assert len(batch) == len(items)
    accepted = []
    for i, body in enumerate(items):
        fast = Accepted(*batch.fields(i))
        if not body.get("event") or not (body["event"].get("id")):
            assert re.fullmatch(rf"{NOW}-[0-9a-z]{{9}}", fast.id)
        reference = python_path(body, fast.id, fast.timestamp_ms)
        assert fast == reference
        accepted.append(fast)
        assert records.encode_py(fast, 7) == records.encode_py(reference, 7)
    duplicates = [i % 3 == 1 for i in range(len(items))]
    assert batch.reply(duplicates) == python_reply(accepted, duplicates)
    return batch


@settings(max_examples=400, deadline=None)
@given(items=st.lists(legacy_bodies(), min_size=1, max_size=4), spaced=st.booleans())
def test_fast_path_matches_the_python_path_or_steps_aside(items, spaced):
    raw = encode(items, spaced)
    batch = check_batch(items, raw)
    if batch is None:
        return
    # Everything it accepted, the Python path accepts too (it raises for the rest).
    for body in items:
        try:
            parse_body(body)
        except EventValidationError as exc:  # pragma: no cover - a failure of the test
            raise AssertionError(f"fast path accepted what Python rejects: {exc.body}") from None


@settings(max_examples=200, deadline=None)
@given(payload=json_values)
def test_payloads_without_floats_or_repeats_take_the_fast_path(payload):
    items = [{"topic": "orders", "event": {"type": "t", "payload": payload}}]
    batch = check_batch(items, json.dumps(items).encode())
    assert (batch is None) == (_has_float(payload) or _has_big_int(payload))


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


def _has_big_int(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not (-2**63 <= value < 2**64)
    if isinstance(value, list):
        return any(_has_big_int(v) for v in value)
    if isinstance(value, dict):
        return any(_has_big_int(v) for v in value.values())
    return False


def test_the_benchmark_body_takes_the_fast_path():
    items = [{"topic": "bench", "event": {"type": "bench", "payload": {"seq": 1, "pad": "x" * 160}}}] * 100
    assert check_batch(items, json.dumps(items, separators=(",", ":")).encode()) is not None


def test_refusals():
    for raw in [b"", b"{}", b"[]", b"[1]", b"[{}]x", b'[{"a":1,"a":1}]', b'[{"event":{"payload":1,"payload":2}}]',
                b"\xef\xbb\xbf[{}]", b'[{"event":{"payload":-0}}]', b'[{"event":{"payload":{"a":1,"a":2}}}]']:
        assert _core.accept_legacy_batch(raw, 1000, NOW) is None, raw
    assert _core.accept_legacy_batch(b"[{},{}]", 1, NOW) is None
    assert _core.accept_legacy_batch(b"[{},{}]", 2, NOW) is not None


def test_log_records_and_hot_rows_of_a_batch(tmp_path):
    items = [{"topic": "t", "event": {"id": f"e{i}", "payload": {"i": i}}} for i in range(5)]
    batch = _core.accept_legacy_batch(orjson.dumps(items), 1000, NOW)
    fresh = [True, False, True, True, False]
    log = _core.DurableLog(str(tmp_path / "log"), "none")
    assert log.append_legacy(batch, 42, fresh) == 3
    log.close()
    read = [p for _, p in _core.LogReader(str(tmp_path / "log")).read(0)]
    expected = [Accepted(*batch.fields(i)) for i in (0, 2, 3)]
    assert read == [records.encode_py(a, 42) for a in expected]
    hot = _core.HotTier(60_000, 1 << 20)
    hot.insert_legacy(batch, fresh)
    assert hot.records() == [a.record for a in expected]
    assert [f for _, f in batch.frames(fresh)] == [a.frame for a in expected]
    assert batch.last_timestamp_ms(fresh) == NOW


@settings(max_examples=300, deadline=None)
@given(ts=st.integers(0, 253_402_300_799_999), event_id=strings, topic=topics)
def test_timestamps_ids_and_topics_match_the_python_path(ts, event_id, topic):
    items = [{"topic": topic, "event": {"id": event_id, "timestamp": ts, "payload": {"k": event_id}}}]
    check_batch(items, orjson.dumps(items))
