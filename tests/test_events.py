"""`events.py` in process: the legacy frame and row are spliced from pre-serialised values; they
must be byte for byte what `orjson.dumps` gives for the dicts they stand for."""

from __future__ import annotations

import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_events.events import HOT_COLUMNS, generate_id, iso_from_ms, parse_body

text = st.text(min_size=1, max_size=20)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False,
                           allow_infinity=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)


def reference_legacy(event_id: str, event_type: str, topic: str, payload, ts: int) -> tuple[bytes, bytes]:
    """The frame and row as dicts, serialised whole (the implementation before the splicing)."""
    if payload is None:
        payload = {}
    frame = {"id": event_id, "type": event_type, "topic": topic, "payload": payload, "timestamp": ts}
    row = dict.fromkeys(HOT_COLUMNS)
    row.update(id=event_id, event_type=event_type, event_name=event_type, ns=topic, timestamp=iso_from_ms(ts),
               data=orjson.dumps(payload).decode() if payload else None)
    row.update(topic=topic, type=event_type, payload=payload, timestamp_ms=ts)
    return orjson.dumps(frame), orjson.dumps(row)


@settings(max_examples=200, deadline=None)
@given(event_id=text, event_type=text, topic=st.sampled_from(["t.x", "orders", "a-b_c"]), payload=json_values,
       ts=st.integers(0, 4_102_444_800_000))
def test_legacy_frame_and_row_match_the_dict_serialisation(event_id, event_type, topic, payload, ts):
    accepted = parse_body({"topic": topic, "event": {"id": event_id, "type": event_type, "payload": payload,
                                                     "timestamp": ts}})
    assert (accepted.frame, accepted.record) == reference_legacy(event_id, event_type, topic, payload, ts)
    assert list(orjson.loads(accepted.record)) == [*HOT_COLUMNS, "topic", "type", "payload", "timestamp_ms"]


def test_legacy_defaults_match_the_dict_serialisation():
    accepted = parse_body({"event": {}})
    assert (accepted.frame, accepted.record) == reference_legacy(
        accepted.id, "broadcast", "default", None, accepted.timestamp_ms)


def test_generated_ids_keep_the_format_and_do_not_repeat():
    ids = [generate_id(1_700_000_000_000) for _ in range(20_000)]
    assert all(re.fullmatch(r"1700000000000-[0-9a-z]{9}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert {c for i in ids for c in i[14:]} == set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert re.fullmatch(r"\d{13}-[0-9a-z]{9}", generate_id())
