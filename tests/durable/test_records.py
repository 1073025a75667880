"""The record payload format and the log binding, in process (the log files are real)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_events import _core
from unified_events.durable.records import decode, decode_with_time, encode, encode_py, event_columns
from unified_events.events import parse_body

text = st.text(min_size=1, max_size=20)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(event_id=text, payload=json_values, trace=st.none() | text, ns=st.sampled_from(["a.b", "https://x.io/v1"]))
def test_encode_decode_rebuilds_accepted_exactly(event_id, payload, trace, ns):
    legacy = parse_body({"topic": "t.x", "event": {"id": event_id, "payload": payload}})
    unified = parse_body({"id": event_id, "event_type": "log", "event_name": "n", "ns": ns,
                          "trace_id": trace, "session_id": "", "data": payload})
    for accepted in (legacy, unified):
        assert decode(encode(accepted, 42)) == accepted
        assert encode(accepted, 42) == encode_py(accepted, 42)
        assert decode_with_time(encode(accepted, 42))[1] == 42


def test_event_columns_recovers_both_shapes():
    legacy = parse_body({"topic": "orders", "event": {"id": "L1", "type": "created", "payload": {"n": 1}}})
    cols = event_columns(decode(encode(legacy)))
    assert cols["id"] == "L1" and cols["event_type"] == "created" and cols["ns"] == "orders"
    assert cols["data"] == '{"n":1}'
    unified = parse_body({"id": "U1", "event_type": "metric", "event_name": "m", "ns": "svc",
                          "metric_value": 0, "attributes": {"a": [1]}, "http_status": 0})
    cols = event_columns(decode(encode(unified)))
    assert cols["metric_value"] == 0 and cols["http_status"] == 0 and cols["attributes"] == {"a": [1]}


def test_decode_rejects_unknown_version_and_short_payloads():
    good = encode(parse_body({"topic": "t", "event": {"id": "x"}}))
    with pytest.raises(ValueError, match="version"):
        decode(b"\x09" + good[1:])
    with pytest.raises(ValueError):
        decode(good[:10])
    with pytest.raises(ValueError):
        decode(good[:-1])


def test_bad_durability_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="fsync, interval, none"):
        _core.DurableLog(str(tmp_path / "log"), "sometimes")


def test_reader_in_another_process_sees_durable_records(tmp_path):
    log_dir = str(tmp_path / "log")
    writer = _core.DurableLog(log_dir, "fsync", 100, 4096)
    payloads = [encode(parse_body({"topic": "t", "event": {"id": f"e{i}"}})) for i in range(50)]
    last = writer.append(payloads)
    assert writer.wait_durable(last, 30_000) == last
    script = (
        "import sys; from unified_events import _core; from unified_events.durable.records import decode\n"
        "r = _core.LogReader(sys.argv[1]); got = []\n"
        "while batch := r.read(got[-1][0] if got else 0, 7, 1 << 20): got += batch\n"
        "print(r.last_position(), ','.join(f'{p}:{decode(b).id}' for p, b in got))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, log_dir], capture_output=True, text=True, check=True).stdout
    last_pos, pairs = out.split()
    assert int(last_pos) == 50
    assert pairs.split(",") == [f"{i + 1}:e{i}" for i in range(50)]
    assert writer.stats()["segments"] > 1
    writer.close()
