"""Section 11 G: replay on connect from the hot tier."""

from __future__ import annotations

import time

from tests.conftest import recv_all


def publish_ids(server, topic, n, **event):
    return [server.broadcast(topic, {"id": f"{topic}-{i}", **event}) and f"{topic}-{i}" for i in range(n)]


def test_replay_after_last_event_id_header(server):
    ids = publish_ids(server, "replay", 10)
    ws = server.connect("replay", headers={"Last-Event-ID": ids[4]})
    frames = recv_all(ws)
    assert [f["id"] for f in frames] == ids[5:]
    assert all(isinstance(f["id"], str) and f["topic"] == "replay" for f in frames)


def test_replay_after_last_event_id_query(server):
    ids = publish_ids(server, "replay-qs", 5)
    ws = server.connect("replay-qs", query=f"lastEventId={ids[1]}")
    assert [f["id"] for f in recv_all(ws)] == ids[2:]


def test_replay_from_timestamp(server):
    base = int(time.time() * 1000) - 60_000
    for i in range(5):
        server.broadcast("replay-ts", {"id": f"ts-{i}", "timestamp": base + i * 1000})
    ws = server.connect("replay-ts", query=f"fromTimestamp={base + 2500}")
    assert [f["id"] for f in recv_all(ws)] == ["ts-3", "ts-4"]


def test_replay_truncated_warning(server):
    ws = server.connect("replay-old", query=f"fromTimestamp={int(time.time() * 1000) - 10 * 60_000}")
    frames = recv_all(ws)
    assert frames[0]["type"] == "warning" and frames[0]["code"] == "REPLAY_TRUNCATED"


def test_replay_covers_every_pattern_and_keeps_live_frame_shape(server):
    server.broadcast("rp-a.x", {"id": "rp-0"})
    server.broadcast("rp-b", {"id": "rp-1"})
    server.broadcast("rp-c", {"id": "rp-2"})
    status, _ = server.json("POST", "/broadcast", {"id": "rp-3", "event_type": "log", "event_name": "x", "ns": "rp-b",
                                                   "data": {"k": 1}})
    assert status == 200
    live = server.connect("rp-b")
    ws = server.connect("rp-a.*", "rp-b", query="lastEventId=rp-0", welcome=True)
    frames = recv_all(ws)
    assert [f["id"] for f in frames] == ["rp-1", "rp-3"]
    assert frames[1]["payload"]["event_name"] == "x"  # the whole event, as live frames carry it
    assert recv_all(live) == []


def test_unknown_last_event_id_replays_nothing(server):
    server.broadcast("replay-none", {"id": "rn-1"})
    ws = server.connect("replay-none", query="lastEventId=does-not-exist")
    assert recv_all(ws) == []
